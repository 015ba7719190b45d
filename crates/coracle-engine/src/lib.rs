//! `coracle-engine`: the run state machine.
//!
//! An [`Engine`] holds the state of one run. It is driven by [`Event`]s (a task finished, the
//! user asked to cancel) and answers each with [`Command`]s for the edge to carry out, in
//! order: record a task's new state, launch an executor, cancel one, finish the run. It does
//! no I/O and reads no clock: the same spec, arguments and events always give the same
//! commands, so it is tested without processes.
//!
//! The run is a tree of nodes: the root DAG, the tasks of each DAG, and nested DAGs' tasks
//! below them. Conditions, loops and exit handlers (a later step) become further node kinds
//! in the same tree.

mod condition;
mod outputs;
mod platform;
mod resolve;
mod resources;
mod state;

pub use outputs::collect_outputs;
pub use platform::{Builtin, EmptyDir, EnvFrom, TaskPlatform, VolumeFrom};
pub use resources::{Limits, Resources, parse_cpu_millis, parse_memory_bytes};
pub use state::Engine;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Index of a node (a task instance) within one run.
pub type NodeId = usize;

/// What the engine needs to know about the run besides the spec and its arguments.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub run_id: String,
    /// The run's name (`{{$.pipeline_job_name}}`).
    pub run_name: String,
    /// Where output artifacts go: `{pipeline_root}/{run_id}/{task_path}/{output_key}`.
    pub pipeline_root: String,
    /// The run's own directory; each task gets `{run_dir}/tasks/{task_path}`.
    pub run_dir: String,
    /// RFC 3339 creation time (`{{$.pipeline_job_create_time_utc}}`).
    pub create_time: String,
    /// How many executor tasks may run at once (at least 1).
    pub parallelism: usize,
    /// What the machine offers; declared requests are fitted into it.
    pub capacity: Resources,
    /// Whether tasks may reuse cached results (`--no-cache` turns it off).
    pub cache_enabled: bool,
    /// When the run is a retry of an earlier attempt: what to keep from it.
    pub resume: Resume,
}

/// What a retried run keeps from its earlier attempts.
#[derive(Clone, Debug, Default)]
pub struct Resume {
    /// Outputs of executor tasks that already succeeded, by task path: they are not run again.
    pub reuse: BTreeMap<String, Io>,
    /// The attempt number each task path starts at (one past its last recorded attempt).
    pub next_attempt: BTreeMap<String, u32>,
}

/// An artifact as tasks see it.
#[derive(Clone, Debug, PartialEq)]
pub struct ArtifactValue {
    pub name: String,
    pub uri: String,
    pub schema_title: String,
    pub schema_version: String,
    pub metadata: Map<String, Value>,
}

/// A set of parameter and artifact values (a task's inputs or outputs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Io {
    pub parameters: BTreeMap<String, Value>,
    pub artifacts: BTreeMap<String, Vec<ArtifactValue>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    Pending,
    Running,
    Succeeded,
    /// Outputs reused from an earlier run (counts as success).
    Cached,
    Failed,
    Skipped,
    Canceled,
}

impl TaskState {
    pub fn is_terminal(self) -> bool {
        !matches!(self, TaskState::Pending | TaskState::Running)
    }

    /// Ended well: ran and succeeded, or reused a cached result.
    pub fn succeeded(self) -> bool {
        matches!(self, TaskState::Succeeded | TaskState::Cached)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
    Canceled,
}

/// A task's state changed: record it before acting on any later command.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskUpdate {
    pub node: NodeId,
    /// Unique within the run: `add-numbers`, `my-sub-dag/inner-task`.
    pub task_path: String,
    pub name: String,
    pub component: String,
    pub parent_path: Option<String>,
    pub is_dag: bool,
    pub attempt: u32,
    pub state: TaskState,
    pub inputs: Option<Io>,
    pub outputs: Option<Io>,
    pub error: Option<String>,
    /// The task succeeded in an earlier attempt of the run and was not run again.
    pub reused: bool,
}

/// What to read back when an executor task ends.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputPlan {
    /// The executor output JSON file (`outputs.outputFile`).
    pub executor_output_file: String,
    /// Declared output parameters: type and the file a container component writes.
    pub parameters: BTreeMap<String, (coracle_spec::ParameterType, String)>,
    /// Declared output artifacts as planned (uri, type, empty metadata).
    pub artifacts: BTreeMap<String, ArtifactValue>,
}

/// Start an executor task.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    pub node: NodeId,
    pub task_path: String,
    pub attempt: u32,
    pub image: String,
    /// Resolved command followed by resolved args.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The task's own directory: its working directory, log and output files live here.
    pub task_dir: String,
    pub executor_input: Value,
    pub outputs: OutputPlan,
    /// Directories that must exist before the task starts (output locations).
    pub dirs_to_create: Vec<String>,
    /// Requests, as scheduling counts them.
    pub resources: Resources,
    pub limits: Limits,
    /// The executor's Kubernetes settings, names resolved.
    pub platform: TaskPlatform,
    /// Set when the executor is a stand-in the edge carries out itself (CreatePVC): then
    /// `argv` is empty and nothing is launched.
    pub builtin: Option<Builtin>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunFinished {
    pub state: RunState,
    pub error: Option<String>,
    /// The pipeline's outputs (`root.dag.outputs`), when it succeeded.
    pub outputs: Io,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Update(TaskUpdate),
    Launch(Box<Launch>),
    Cancel {
        node: NodeId,
    },
    /// Look the task up in the cache: `material` is what determines its outputs, with input
    /// artifacts by URI (the edge hashes their content). Answer with `Event::CacheChecked`.
    CheckCache {
        node: NodeId,
        material: Value,
        /// The task's own limit on the age of a reused result (seconds), if it has one.
        max_staleness_s: Option<u64>,
    },
    /// Send `Event::RetryDue` for this task after the delay (a retry's back-off).
    RetryAfter {
        node: NodeId,
        delay_ms: u64,
    },
    Finish(RunFinished),
}

#[derive(Clone, Debug, PartialEq)]
pub enum TaskResult {
    /// The task ended well; its outputs as read by [`collect_outputs`].
    Succeeded(Io),
    Failed(String),
    /// Stopped on the engine's request.
    Canceled,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    TaskFinished {
        node: NodeId,
        result: TaskResult,
    },
    /// The answer to `Command::CheckCache`: the cached outputs, if any.
    CacheChecked {
        node: NodeId,
        hit: Option<Io>,
    },
    /// A retry's back-off has passed.
    RetryDue {
        node: NodeId,
    },
    CancelRequested,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline uses something this engine cannot run yet.
    #[error("{path}: {message}")]
    Unsupported { path: String, message: String },
}
