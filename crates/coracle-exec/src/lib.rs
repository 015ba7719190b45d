//! Executor backends: running one task's fully resolved command and reporting how it ended.
//!
//! Owns the local process backend ([`ProcessExecutor`]), the managed Python environments that
//! let lightweight KFP Python components run without their `pip install` bootstrap, and the
//! Docker backend ([`DockerExecutor`]); [`Executor`] is the one face over both. It does not
//! decide what runs next, touches no database and resolves no placeholders: it gets a finished
//! argv ([`TaskLaunch`]) and gives back a [`LaunchedTask`].
//!
//! The Docker backend runs each task as a container of its image: the command replaces the
//! image's entrypoint; [`TaskLaunch::shared_paths`] are bind-mounted at their own paths and
//! [`TaskLaunch::mounts`] at their targets; limits and GPU devices become the container's;
//! output is attached from the start and goes through the same log sink as a process's.
//! Missing images are pulled (a clear start error when that fails). Every container carries
//! `coracle.*` labels naming the process that made it and is removed when its task ends, in
//! every way; containers of a Coracle process that died are removed at the next connect.
//!
//! How a task runs:
//! - a command that is exactly the kfp SDK's lightweight-component bootstrap
//!   ([`parse_kfp_bootstrap`]) runs without `sh` or `pip`: a warm Python worker (one per
//!   environment, started on first use, `kfp.dsl.executor_main` already imported) forks a child
//!   for it, in a managed environment holding the pinned kfp and the component's packages;
//! - other commands of Python images (`python:*`) or that look like kfp Python components run
//!   as given, with the managed environment's `bin` first on `PATH`;
//! - everything else runs on the host as given (`image` is ignored: that is what the process
//!   backend means).
//!
//! Volumes ([`TaskLaunch::mounts`]): a task with mounts runs in a private mount namespace of
//! its own, made by its child between fork and exec: each source is bind-mounted at its mount
//! path (read-only ones remounted read-only), unseen by the host and by other tasks. Without
//! `CAP_SYS_ADMIN` the child first enters a user namespace mapping only Coracle's uid and gid.
//! Missing mount points are created on the host and left there, empty (removing one could
//! detach it under another task). Such tasks never run in the Python worker, and as they pay
//! for a fork anyway they also get `PR_SET_PDEATHSIG`; tasks without mounts keep
//! `posix_spawn`. Where the machine refuses private mount namespaces
//! ([`check_private_mounts`]), tasks with mounts fail to start and say to use Docker.
//!
//! Invariants:
//! - every task is its own process group; cancel signals the whole group (SIGTERM, then SIGKILL
//!   after a grace period); when a task's main process exits, what is left of its group is
//!   killed, as a container's processes die with it;
//! - no process outlives Coracle: a small `sh` guardian kills the process groups of tasks still
//!   running if Coracle dies abruptly (even by SIGKILL); a plain task's group is registered
//!   with it on the spawner thread right after `posix_spawn` returns. The Python worker and the
//!   interpreters Coracle starts itself also get `PR_SET_PDEATHSIG(SIGKILL)` (forked from one
//!   long-lived thread, since the signal follows the forking thread); plain tasks do not,
//!   because that forces a full `fork` of Coracle and doubles the cost of a spawn. Dropping a
//!   [`RunningTask`] kills its task; [`ProcessExecutor::shutdown`] kills everything;
//! - stdout and stderr are appended, line by line as they come, to the task's log file and sent
//!   on the live log channel, with [`TaskLaunch::redact`] values masked; the file is complete
//!   and closed when [`LaunchedTask::wait`] returns;
//! - the user's own Python is never installed into: Python images get managed virtual
//!   environments under `envs_dir`, built once (atomically, under a file lock) and reused
//!   without network afterwards; `offline` forbids pip entirely.

mod backend;
mod bootstrap;
mod bootstrap_v1;
mod docker;
mod executor;
mod guardian;
mod image;
mod logs;
mod mounts;
mod pyenv;
mod sys;
mod zygote;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use backend::{Executor, LaunchedTask, TaskCanceler};
pub use bootstrap::{
    KfpBootstrap, looks_like_kfp_python, parse_kfp_bootstrap, scan_pip_requirements,
};
pub use docker::{DockerCanceler, DockerExecutor, DockerOptions, DockerTask};
pub use executor::{
    Canceler, DEFAULT_CANCEL_GRACE, ProcessExecutor, ProcessExecutorOptions, PythonOptions,
    RunningTask,
};
pub use image::{is_python_image, python_version_of_image};
pub use mounts::check_private_mounts;
pub use pyenv::DEFAULT_KFP_VERSION;

/// One task to start.
#[derive(Debug, Clone, Default)]
pub struct TaskLaunch {
    /// Unique per run, task and attempt; used in messages and log lines.
    pub task_key: String,
    /// The container image the spec names (`python:3.11`, `alpine`).
    pub image: String,
    /// The resolved command and arguments; `argv[0]` is looked up on `PATH`.
    pub argv: Vec<String>,
    /// The spec's environment variables, added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// The child's working directory; must exist.
    pub work_dir: PathBuf,
    /// Created (truncated) at launch; receives stdout and stderr interleaved by line.
    pub log_path: PathBuf,
    /// Volumes (PVC directories, secret and config-map files, empty dirs, the workspace) the
    /// task sees at their mount paths.
    pub mounts: Vec<Mount>,
    /// Host paths the task reads or writes under their own names (its task directory, the
    /// pipeline root, input artifacts kept elsewhere). The process backend sees them anyway;
    /// the Docker backend bind-mounts each at the same path in the container.
    pub shared_paths: Vec<PathBuf>,
    /// Limits and requests, and the GPU devices given to the task.
    pub resources: TaskResources,
    /// Labels and annotations of the task's pod (`coracle.*` ones are Coracle's own).
    pub labels: BTreeMap<String, String>,
    /// Values (secrets) masked as `***` in the task's log and live log lines.
    pub redact: Vec<String>,
}

/// A host directory or file that a task sees at `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: PathBuf,
    /// An absolute path inside the task's view of the filesystem.
    pub target: PathBuf,
    pub read_only: bool,
}

/// A task's resource settings, parsed. Requests are what scheduling counts; limits are
/// enforced by the backends that can (Docker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskResources {
    pub cpu_limit_millis: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub cpu_request_millis: Option<u64>,
    pub memory_request_bytes: Option<u64>,
    /// The GPU devices given to this task (as `nvidia-smi` numbers them); the task's
    /// environment already has `CUDA_VISIBLE_DEVICES`/`NVIDIA_VISIBLE_DEVICES` set to them.
    pub gpu_devices: Vec<String>,
}

/// Which of a task's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One line of a task's output, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub task_key: String,
    pub stream: LogStream,
    pub line: String,
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitOutcome {
    /// The task's main process exited with this status.
    Exited(i32),
    /// The task's main process was killed by this signal, not by us.
    Signaled(i32),
    /// We stopped it: [`Canceler::cancel`] was called before it ended.
    Killed,
    /// It could not be started. This backend reports start failures as `Err` from
    /// [`ProcessExecutor::launch`]; backends that learn of them later (an image pull) use this.
    FailedToStart(String),
}

impl ExitOutcome {
    pub fn success(&self) -> bool {
        matches!(self, ExitOutcome::Exited(0))
    }
}

/// Errors of this crate; messages read well after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("start task {task_key}: the command is empty")]
    EmptyCommand { task_key: String },
    #[error("start task {task_key}: cannot create log file {}: {source}", path.display())]
    LogFile {
        task_key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("start task {task_key}: {reason}")]
    Start { task_key: String, reason: String },
    #[error("create python environment {env}: {reason} (see {})", log.display())]
    PythonEnv {
        env: String,
        log: PathBuf,
        reason: String,
    },
    #[error(
        "prepare python environment {env} ({requirements}): it is not installed and offline mode does not run pip; run once without offline mode to create it in {}",
        envs_dir.display()
    )]
    Offline {
        env: String,
        requirements: String,
        envs_dir: PathBuf,
    },
    #[error("use python interpreter {interpreter}: {reason}")]
    Interpreter { interpreter: String, reason: String },
    #[error("use python environment {}: {reason}", path.display())]
    UseEnv { path: PathBuf, reason: String },
    #[error("use the docker engine: {0}")]
    Docker(String),
    #[error("start task {task_key}: the executor is shut down")]
    ShutDown { task_key: String },
}
