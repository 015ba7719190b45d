//! The local process backend.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::net::unix::pipe::Receiver;
use tokio::sync::OnceCell;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::bootstrap::{
    KfpBootstrap, looks_like_kfp_python, parse_kfp_bootstrap, scan_pip_requirements,
};
use crate::guardian::Guardian;
use crate::image::{is_python_image, python_version_of_image};
use crate::logs::{self, LogSink};
use crate::mounts;
use crate::pyenv::{self, EnvRequest, Interpreter, PythonEnv};
use crate::sys::{self, ChildSetup};
use crate::zygote::{self, ChildExit, Zygote, ZygoteTask};
use crate::{Error, ExitOutcome, LogLine, TaskLaunch};

/// How long a canceled task gets between SIGTERM and SIGKILL, unless
/// [`ProcessExecutor::set_cancel_grace`] says otherwise.
pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(3);
/// After a task's main process exited and its leftovers were killed, how long we keep reading
/// its pipes (only a process that escaped its group, e.g. by `setsid`, can hold them longer).
const LOG_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
const EXECUTOR_MODULE: &str = "kfp.dsl.executor_main";

/// Managed Python environments.
#[derive(Debug, Clone)]
pub struct PythonOptions {
    /// Where managed environments live (`$CORACLE_HOME/python-envs`).
    pub envs_dir: PathBuf,
    /// Interpreter to base managed environments on. Default: `python3.X` matching a
    /// `python:3.X` image when it is on `PATH`, else `python3`.
    pub interpreter: Option<PathBuf>,
    /// An existing environment (venv or prefix) to run components in as is: no installs.
    pub use_env: Option<PathBuf>,
    /// Never run pip; a task needing an environment that does not exist yet fails clearly.
    pub offline: bool,
}

#[derive(Debug, Clone)]
pub struct ProcessExecutorOptions {
    pub python: PythonOptions,
    /// Live log lines of every task (for the terminal view).
    pub log_lines: Option<UnboundedSender<LogLine>>,
}

/// Runs tasks as local processes. Cheap to clone; clones share workers and running tasks.
#[derive(Clone)]
pub struct ProcessExecutor {
    inner: Arc<Inner>,
}

type Slot<T> = Arc<OnceCell<T>>;

struct Inner {
    python: PythonOptions,
    log_lines: Option<UnboundedSender<LogLine>>,
    cancel_grace_ms: AtomicU64,
    guardian: Guardian,
    tasks: Mutex<HashMap<u64, Arc<TaskControl>>>,
    next_task_id: AtomicU64,
    shut_down: AtomicBool,
    interpreters: Mutex<HashMap<String, Slot<Interpreter>>>,
    /// Image → the interpreter its environments are built from, once found usable.
    image_interpreters: Mutex<HashMap<String, String>>,
    envs: Mutex<HashMap<(String, EnvRequest), Slot<PythonEnv>>>,
    zygotes: Mutex<HashMap<PathBuf, Slot<Option<Arc<Zygote>>>>>,
}

/// How a launch will run.
enum Plan {
    /// Run `argv` on the host with `env` added.
    Host {
        argv: Vec<String>,
        env: Vec<(String, String)>,
    },
    /// A recognised kfp lightweight component, in `env`.
    Kfp {
        env: PythonEnv,
        bootstrap: KfpBootstrap,
    },
}

/// A started process (or worker child) and its output pipes.
struct Started {
    pid: u32,
    /// Whether the orphan guardian already knows the process group.
    guarded: bool,
    waiter: Waiter,
    stdout: Receiver,
    stderr: Receiver,
    temp_dir: Option<PathBuf>,
}

enum Waiter {
    Process(tokio::process::Child),
    Worker(oneshot::Receiver<ChildExit>),
}

impl ProcessExecutor {
    pub fn new(options: ProcessExecutorOptions) -> Self {
        ProcessExecutor {
            inner: Arc::new(Inner {
                python: options.python,
                log_lines: options.log_lines,
                cancel_grace_ms: AtomicU64::new(DEFAULT_CANCEL_GRACE.as_millis() as u64),
                guardian: Guardian::default(),
                tasks: Mutex::new(HashMap::new()),
                next_task_id: AtomicU64::new(1),
                shut_down: AtomicBool::new(false),
                interpreters: Mutex::new(HashMap::new()),
                image_interpreters: Mutex::new(HashMap::new()),
                envs: Mutex::new(HashMap::new()),
                zygotes: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Time between SIGTERM and SIGKILL when a task is canceled (default 3 s); applies to
    /// cancels requested afterwards.
    pub fn set_cancel_grace(&self, grace: Duration) {
        self.inner
            .cancel_grace_ms
            .store(grace.as_millis() as u64, Ordering::Relaxed);
    }

    /// Starts a task. `Err` means it could not be started; the message says why.
    pub async fn launch(&self, task: TaskLaunch) -> Result<RunningTask, Error> {
        let inner = &self.inner;
        if inner.shut_down.load(Ordering::SeqCst) {
            return Err(Error::ShutDown {
                task_key: task.task_key,
            });
        }
        if task.argv.is_empty() || task.argv[0].is_empty() {
            return Err(Error::EmptyCommand {
                task_key: task.task_key,
            });
        }
        let file = File::create(&task.log_path).map_err(|source| Error::LogFile {
            task_key: task.task_key.clone(),
            path: task.log_path.clone(),
            source,
        })?;
        let mut sink = LogSink::new(task.task_key.clone(), file, inner.log_lines.clone());
        sink.set_redactions(&task.redact);
        let started = match self.check_volumes(&task).await {
            Err(error) => Err(error),
            Ok(()) => match self.plan(&task, &mut sink).await {
                Ok(Plan::Host { argv, env }) => self.spawn_host(&task, &argv, &env, None).await,
                Ok(Plan::Kfp { env, bootstrap }) => self.start_kfp(&task, &env, &bootstrap).await,
                Err(error) => Err(error),
            },
        };
        match started {
            Ok(started) => Ok(self.track(&task, started, sink)),
            Err(error) => {
                // The log file says why there is no output.
                sink.note(&format!("coracle: failed to {error}"));
                Err(error)
            }
        }
    }

    /// Kills every running task and stops the Python workers; later launches fail.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.shut_down.store(true, Ordering::SeqCst);
        let controls: Vec<Arc<TaskControl>> = lock(&inner.tasks).values().cloned().collect();
        for control in controls {
            control.kill_now();
        }
        let slots: Vec<Slot<Option<Arc<Zygote>>>> =
            lock(&inner.zygotes).drain().map(|(_, slot)| slot).collect();
        for slot in slots {
            if let Some(Some(worker)) = slot.get() {
                worker.shutdown().await;
            }
        }
        inner.guardian.stop();
    }

    /// Pids of the running Python workers (for diagnostics and tests).
    pub fn python_worker_pids(&self) -> Vec<u32> {
        lock(&self.inner.zygotes)
            .values()
            .filter_map(|slot| slot.get().cloned().flatten())
            .filter(|worker| worker.is_alive())
            .filter_map(|worker| worker.pid())
            .collect()
    }

    /// A task with volumes needs private mount namespaces; without them it fails before
    /// anything is prepared for it.
    async fn check_volumes(&self, task: &TaskLaunch) -> Result<(), Error> {
        if task.mounts.is_empty() {
            return Ok(());
        }
        let answer = match mounts::known_private_mounts() {
            Some(answer) => answer,
            // The first check forks a probe process: not on a runtime thread.
            None => tokio::task::spawn_blocking(mounts::check_private_mounts)
                .await
                .unwrap_or_else(|join_error| {
                    Err(format!("the private mount check panicked: {join_error}"))
                }),
        };
        answer.map_err(|reason| Error::Start {
            task_key: task.task_key.clone(),
            reason: format!("{reason}; run with --executor docker to use volumes"),
        })
    }

    async fn plan(&self, task: &TaskLaunch, sink: &mut LogSink) -> Result<Plan, Error> {
        if let Some(bootstrap) = parse_kfp_bootstrap(&task.argv) {
            let request = EnvRequest::for_kfp(
                bootstrap.kfp_version.as_deref(),
                &bootstrap.packages,
                &bootstrap.pip_options,
            );
            let env = self.python_env(task, &request, sink).await?;
            return Ok(Plan::Kfp { env, bootstrap });
        }
        if let Some(mut requirements) = crate::bootstrap_v1::parse_v1_pip_prelude(&task.argv) {
            // A KFP v1 component with packages: run as written in an environment that has
            // them; its own `pip install` finds them there without an index.
            requirements.sort();
            requirements.dedup();
            let request = EnvRequest {
                requirements,
                pip_options: Vec::new(),
            };
            let env = self.python_env(task, &request, sink).await?;
            let mut vars = self.python_vars(task, &env, false);
            vars.push(("PIP_NO_INDEX".into(), "1".into()));
            return Ok(Plan::Host {
                argv: task.argv.clone(),
                env: vars,
            });
        }
        let kfp_like = looks_like_kfp_python(&task.argv);
        if !kfp_like && !is_python_image(&task.image) {
            return Ok(Plan::Host {
                argv: task.argv.clone(),
                env: task.env.clone(),
            });
        }
        let request = if kfp_like {
            let (kfp_version, packages, pip_options) = scan_pip_requirements(&task.argv);
            EnvRequest::for_kfp(kfp_version.as_deref(), &packages, &pip_options)
        } else {
            EnvRequest::bare()
        };
        let env = self.python_env(task, &request, sink).await?;
        let mut vars = self.python_vars(task, &env, false);
        if self.inner.python.offline || self.inner.python.use_env.is_some() {
            // The command's own `pip install` may find its requirements satisfied, never fetch.
            vars.push(("PIP_NO_INDEX".into(), "1".into()));
        }
        Ok(Plan::Host {
            argv: task.argv.clone(),
            env: vars,
        })
    }

    /// The task's variables plus what running inside `env` needs.
    fn python_vars(
        &self,
        task: &TaskLaunch,
        env: &PythonEnv,
        kfp_runtime: bool,
    ) -> Vec<(String, String)> {
        let mut vars = task.env.clone();
        let base_path = task
            .env
            .iter()
            .rev()
            .find(|(key, _)| key == "PATH")
            .map(|(_, value)| value.clone())
            .or_else(|| std::env::var("PATH").ok())
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_string());
        vars.push(("PATH".into(), format!("{}:{base_path}", env.bin.display())));
        vars.push(("VIRTUAL_ENV".into(), env.root.display().to_string()));
        if kfp_runtime {
            vars.push(("_KFP_RUNTIME".into(), "true".into()));
        }
        vars
    }

    /// The interpreter for `image`: the one given in the options; else `python3.X` for a
    /// `python:3.X` image when it is on `PATH` and runs (a version manager's shim may be on
    /// `PATH` for a version that is not installed); else `python3`, with a note in the task's
    /// log saying which version stands in for the image's.
    async fn interpreter_name(&self, image: &str, sink: &mut LogSink) -> String {
        if let Some(interpreter) = &self.inner.python.interpreter {
            return interpreter.display().to_string();
        }
        if let Some(name) = lock(&self.inner.image_interpreters).get(image) {
            return name.clone();
        }
        let mut chosen = "python3".to_string();
        if let Some((3, minor)) = python_version_of_image(image) {
            let versioned = format!("python3.{minor}");
            if pyenv::find_on_path(&versioned).is_some() {
                match self.interpreter(&versioned).await {
                    Ok(_) => chosen = versioned,
                    Err(e) => sink.note(&format!(
                        "coracle: {versioned} (for image {image}) does not run here ({e}); using python3"
                    )),
                }
            } else {
                sink.note(&format!(
                    "coracle: no {versioned} on PATH for image {image}; using python3"
                ));
            }
        }
        lock(&self.inner.image_interpreters).insert(image.to_string(), chosen.clone());
        chosen
    }

    async fn python_env(
        &self,
        task: &TaskLaunch,
        request: &EnvRequest,
        sink: &mut LogSink,
    ) -> Result<PythonEnv, Error> {
        let inner = &self.inner;
        if let Some(path) = &inner.python.use_env {
            return pyenv::existing_env(path);
        }
        let interpreter_name = self.interpreter_name(&task.image, sink).await;
        let slot = lock(&inner.envs)
            .entry((interpreter_name.clone(), request.clone()))
            .or_default()
            .clone();
        let env = slot
            .get_or_try_init(|| async {
                let interpreter = self.interpreter(&interpreter_name).await?;
                let name = request.env_name(&interpreter);
                let envs_dir = &inner.python.envs_dir;
                if let Some(env) = pyenv::ready_env(envs_dir, &name, request.has_kfp()) {
                    return Ok(env);
                }
                if inner.python.offline {
                    return Err(Error::Offline {
                        env: name,
                        requirements: request.describe(),
                        envs_dir: envs_dir.clone(),
                    });
                }
                sink.note(&format!(
                    "coracle: creating python environment {name} (python {}, {}); this happens once, its log is {}",
                    interpreter.version,
                    request.describe(),
                    envs_dir.join(format!("{name}.log")).display()
                ));
                let envs_dir = envs_dir.clone();
                let request = request.clone();
                tokio::task::spawn_blocking(move || {
                    pyenv::create_env(&envs_dir, &name, &interpreter, &request)
                })
                .await
                .unwrap_or_else(|join_error| {
                    Err(Error::Interpreter {
                        interpreter: interpreter_name.clone(),
                        reason: format!("environment creation panicked: {join_error}"),
                    })
                })
            })
            .await?;
        Ok(env.clone())
    }

    async fn interpreter(&self, name: &str) -> Result<Interpreter, Error> {
        let slot = lock(&self.inner.interpreters)
            .entry(name.to_string())
            .or_default()
            .clone();
        slot.get_or_try_init(|| pyenv::probe_interpreter(name))
            .await
            .cloned()
    }

    /// Runs a recognised kfp component: through the environment's worker when possible, else
    /// as `python -m kfp.dsl.executor_main` directly. Never `sh`, never `pip`.
    async fn start_kfp(
        &self,
        task: &TaskLaunch,
        env: &PythonEnv,
        bootstrap: &KfpBootstrap,
    ) -> Result<Started, Error> {
        let vars = self.python_vars(task, env, true);
        // Variables read at interpreter start cannot be honoured by an already running worker,
        // and the worker's children share its mount namespace, so volumes need their own.
        let needs_fresh_interpreter = !task.mounts.is_empty()
            || task
                .env
                .iter()
                .any(|(key, _)| key.starts_with("PYTHON") && key != "PYTHONUNBUFFERED");
        if !needs_fresh_interpreter
            && env.has_kfp
            && let Some(worker) = self.zygote(env).await
        {
            match self.start_in_worker(task, &worker, &vars, bootstrap).await {
                Ok(started) => return Ok(started),
                Err(reason) => {
                    tracing::warn!(task_key = %task.task_key, env = %worker.env_name, %reason, "python worker could not start the task; running it directly");
                }
            }
        }
        let temp_dir = write_component_module(&task.work_dir, &task.task_key, &bootstrap.source)
            .map_err(|error| Error::Start {
                task_key: task.task_key.clone(),
                reason: format!("cannot write the component's source to a temporary file: {error}"),
            })?;
        let module_path = temp_dir.join("ephemeral_component.py");
        let mut argv = vec![
            env.python.display().to_string(),
            "-m".to_string(),
            EXECUTOR_MODULE.to_string(),
            "--component_module_path".to_string(),
            module_path.display().to_string(),
        ];
        argv.extend(bootstrap.args.iter().cloned());
        match self
            .spawn_host(task, &argv, &vars, Some(temp_dir.clone()))
            .await
        {
            Ok(started) => Ok(started),
            Err(error) => {
                let _ = std::fs::remove_dir_all(&temp_dir);
                Err(error)
            }
        }
    }

    async fn start_in_worker(
        &self,
        task: &TaskLaunch,
        worker: &Zygote,
        vars: &[(String, String)],
        bootstrap: &KfpBootstrap,
    ) -> Result<Started, String> {
        let mut environment: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        environment.extend(vars.iter().cloned());
        let environment: Vec<(String, String)> = environment.into_iter().collect();
        let unbuffered = environment
            .iter()
            .any(|(key, value)| key == "PYTHONUNBUFFERED" && !value.is_empty());
        let (stdout, stdout_write) =
            sys::log_pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
        let (stderr, stderr_write) =
            sys::log_pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
        let (pid, exited) = worker
            .run(
                ZygoteTask {
                    cwd: &task.work_dir,
                    env: &environment,
                    args: &bootstrap.args,
                    source: &bootstrap.source,
                    unbuffered,
                },
                stdout_write,
                stderr_write,
            )
            .await?;
        Ok(Started {
            pid,
            guarded: false,
            waiter: Waiter::Worker(exited),
            stdout,
            stderr,
            temp_dir: None,
        })
    }

    /// The environment's worker, started on first use; `None` when it cannot run (then the
    /// failure was logged once and tasks run directly).
    async fn zygote(&self, env: &PythonEnv) -> Option<Arc<Zygote>> {
        for _attempt in 0..2 {
            let slot = lock(&self.inner.zygotes)
                .entry(env.root.clone())
                .or_default()
                .clone();
            let worker = slot
                .get_or_init(|| async { self.start_zygote(env).await })
                .await
                .clone();
            match worker {
                Some(worker) if worker.is_alive() => return Some(worker),
                Some(_dead) => {
                    // It died (killed, crashed); start a new one in a fresh slot.
                    let mut zygotes = lock(&self.inner.zygotes);
                    if zygotes
                        .get(&env.root)
                        .is_some_and(|current| Arc::ptr_eq(current, &slot))
                    {
                        zygotes.remove(&env.root);
                    }
                }
                None => return None,
            }
        }
        None
    }

    async fn start_zygote(&self, env: &PythonEnv) -> Option<Arc<Zygote>> {
        if self.inner.shut_down.load(Ordering::SeqCst) {
            return None;
        }
        let script = match zygote::install_script(&self.inner.python.envs_dir) {
            Ok(script) => script,
            Err(error) => {
                tracing::warn!(env = %env.name, %error, "cannot write the python worker script; components will start a fresh interpreter each");
                return None;
            }
        };
        let base_path =
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let mut vars: Vec<(std::ffi::OsString, std::ffi::OsString)> = Vec::new();
        vars.push((
            "PATH".into(),
            format!("{}:{base_path}", env.bin.display()).into(),
        ));
        vars.push(("VIRTUAL_ENV".into(), env.root.clone().into_os_string()));
        vars.push(("_KFP_RUNTIME".into(), "true".into()));
        let started = std::time::Instant::now();
        match Zygote::start(&env.name, &env.python, &script, vars).await {
            Ok(worker) => {
                tracing::debug!(env = %env.name, pid = ?worker.pid(), elapsed_ms = started.elapsed().as_millis() as u64, "python worker ready");
                Some(worker)
            }
            Err(reason) => {
                tracing::warn!(env = %env.name, %reason, "python worker unavailable; components will start a fresh interpreter each");
                None
            }
        }
    }

    async fn spawn_host(
        &self,
        task: &TaskLaunch,
        argv: &[String],
        env: &[(String, String)],
        temp_dir: Option<PathBuf>,
    ) -> Result<Started, Error> {
        let start_error = |reason: String| Error::Start {
            task_key: task.task_key.clone(),
            reason,
        };
        let (stdout, stdout_write) =
            sys::log_pipe().map_err(|e| start_error(format!("cannot create a pipe: {e}")))?;
        let (stderr, stderr_write) =
            sys::log_pipe().map_err(|e| start_error(format!("cannot create a pipe: {e}")))?;
        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .envs(env.iter().map(|(key, value)| (key, value)))
            .current_dir(&task.work_dir)
            .stdin(std::process::Stdio::null())
            .stdout(stdout_write)
            .stderr(stderr_write)
            .process_group(0);
        // Plain tasks are spawned with posix_spawn (no PDEATHSIG, see `ChildSetup`): what
        // keeps them from outliving Coracle is the orphan guardian, told of the new process
        // group on the spawner thread the moment it exists. Tasks with volumes make their
        // mount namespace between fork and exec; paying for a fork anyway, they also get
        // PDEATHSIG.
        let mount_plan = if task.mounts.is_empty() {
            None
        } else {
            Some(Arc::new(
                mounts::prepare(&task.mounts, &task.work_dir).map_err(start_error)?,
            ))
        };
        let inner = self.inner.clone();
        let child = sys::spawn(
            command,
            ChildSetup {
                die_with_parent: mount_plan.is_some(),
                fd3: None,
                mounts: mount_plan.clone(),
            },
            Some(Box::new(move |pid| inner.guardian.register(pid))),
        )
        .await
        .map_err(|error| {
            let reason = mount_plan
                .as_ref()
                .and_then(|plan| plan.failure(&error))
                .unwrap_or_else(|| describe_spawn_error(&argv[0], &task.work_dir, &error));
            start_error(reason)
        })?;
        let pid = child
            .id()
            .ok_or_else(|| start_error("the process vanished right after it started".into()))?;
        Ok(Started {
            pid,
            guarded: true,
            waiter: Waiter::Process(child),
            stdout,
            stderr,
            temp_dir,
        })
    }

    fn track(&self, task: &TaskLaunch, started: Started, sink: LogSink) -> RunningTask {
        let inner = &self.inner;
        let id = inner.next_task_id.fetch_add(1, Ordering::Relaxed);
        let control = Arc::new(TaskControl {
            task_key: task.task_key.clone(),
            pgid: started.pid,
            state: Mutex::new(ControlState::default()),
            grace: Duration::from_millis(inner.cancel_grace_ms.load(Ordering::Relaxed)),
            runtime: tokio::runtime::Handle::current(),
        });
        if !started.guarded {
            inner.guardian.register(started.pid);
        }
        lock(&inner.tasks).insert(id, control.clone());
        let pump = tokio::spawn(logs::pump(started.stdout, started.stderr, sink));
        RunningTask {
            id,
            control,
            waiter: Some(started.waiter),
            raw_outcome: None,
            outcome: None,
            pump: Some(pump),
            temp_dir: started.temp_dir,
            inner: self.inner.clone(),
            released: false,
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for control in lock(&self.tasks).values() {
            control.kill_now();
        }
    }
}

fn describe_spawn_error(program: &str, work_dir: &Path, error: &std::io::Error) -> String {
    if !work_dir.is_dir() {
        return format!("working directory {} does not exist", work_dir.display());
    }
    match error.kind() {
        std::io::ErrorKind::NotFound => {
            format!("program {program:?} not found (looked up on PATH)")
        }
        std::io::ErrorKind::PermissionDenied => format!("program {program:?} is not executable"),
        _ => format!("cannot run {program:?}: {error}"),
    }
}

/// Writes `source` as `ephemeral_component.py` in a fresh directory inside the task's working
/// directory (not under `/tmp`, which a volume of the task may cover).
fn write_component_module(
    work_dir: &Path,
    task_key: &str,
    source: &str,
) -> std::io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let safe_key: String = task_key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let dir = work_dir.join(format!(
        ".coracle-kfp-{}-{}-{safe_key}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("ephemeral_component.py"), source)?;
    Ok(dir)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Default)]
struct ControlState {
    finished: bool,
    cancel_requested: bool,
}

struct TaskControl {
    task_key: String,
    /// The task's main process, leader of its own process group.
    pgid: u32,
    state: Mutex<ControlState>,
    grace: Duration,
    runtime: tokio::runtime::Handle,
}

impl TaskControl {
    fn cancel(self: &Arc<Self>) {
        {
            let mut state = lock(&self.state);
            if state.finished || state.cancel_requested {
                return;
            }
            state.cancel_requested = true;
            tracing::debug!(task_key = %self.task_key, pgid = self.pgid, "canceling task: SIGTERM to its process group");
            sys::signal_group(self.pgid, Signal::SIGTERM);
        }
        let control = self.clone();
        self.runtime.spawn(async move {
            tokio::time::sleep(control.grace).await;
            control.kill_now();
        });
    }

    /// SIGKILL to the whole group unless the task is already reaped; the task then ends as
    /// [`ExitOutcome::Killed`].
    fn kill_now(&self) {
        let mut state = lock(&self.state);
        if !state.finished {
            state.cancel_requested = true;
            sys::signal_group(self.pgid, Signal::SIGKILL);
        }
    }

    /// Marks the main process reaped; returns whether a cancel was requested before.
    fn finish(&self) -> bool {
        let mut state = lock(&self.state);
        state.finished = true;
        state.cancel_requested
    }
}

/// A started task. Dropping it before [`RunningTask::wait`] returned kills the task.
pub struct RunningTask {
    id: u64,
    control: Arc<TaskControl>,
    waiter: Option<Waiter>,
    raw_outcome: Option<ExitOutcome>,
    outcome: Option<ExitOutcome>,
    pump: Option<JoinHandle<()>>,
    temp_dir: Option<PathBuf>,
    inner: Arc<Inner>,
    released: bool,
}

/// Cancels one task; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Canceler {
    control: Arc<TaskControl>,
}

impl Canceler {
    /// SIGTERM to the task's process group, SIGKILL after the grace period if it still runs.
    /// Does nothing once the task has ended.
    pub fn cancel(&self) {
        self.control.cancel();
    }
}

impl RunningTask {
    pub fn pid(&self) -> Option<u32> {
        Some(self.control.pgid)
    }

    pub fn canceler(&self) -> Canceler {
        Canceler {
            control: self.control.clone(),
        }
    }

    /// Waits for the task to end; its log file is complete and closed when this returns.
    /// Calling it again returns the same outcome.
    pub async fn wait(&mut self) -> ExitOutcome {
        if let Some(outcome) = &self.outcome {
            return outcome.clone();
        }
        if self.raw_outcome.is_none() {
            let raw = match self.waiter.as_mut() {
                Some(Waiter::Process(child)) => match child.wait().await {
                    Ok(status) => outcome_of(status),
                    Err(error) => {
                        tracing::warn!(task_key = %self.control.task_key, %error, "cannot wait for task process");
                        ExitOutcome::Signaled(libc::SIGKILL)
                    }
                },
                Some(Waiter::Worker(exited)) => match exited.await {
                    Ok(ChildExit::Code(code)) => ExitOutcome::Exited(code),
                    Ok(ChildExit::Signal(signal)) => ExitOutcome::Signaled(signal),
                    Ok(ChildExit::Lost) | Err(_) => {
                        tracing::warn!(task_key = %self.control.task_key, "the python worker running this task died");
                        ExitOutcome::Signaled(libc::SIGKILL)
                    }
                },
                None => ExitOutcome::Signaled(libc::SIGKILL),
            };
            self.raw_outcome = Some(raw);
        }
        let canceled = self.control.finish();
        // What the main process left behind dies with it, as in a container.
        sys::signal_group(self.control.pgid, Signal::SIGKILL);
        if let Some(mut pump) = self.pump.take()
            && tokio::time::timeout(LOG_DRAIN_TIMEOUT, &mut pump)
                .await
                .is_err()
        {
            tracing::warn!(task_key = %self.control.task_key, "a process that left the task's process group still holds its output; log closed without it");
            pump.abort();
        }
        self.release();
        let raw = self
            .raw_outcome
            .clone()
            .unwrap_or(ExitOutcome::Signaled(libc::SIGKILL));
        let outcome = if canceled { ExitOutcome::Killed } else { raw };
        self.outcome = Some(outcome.clone());
        outcome
    }

    fn release(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        self.inner.guardian.unregister(self.control.pgid);
        lock(&self.inner.tasks).remove(&self.id);
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for RunningTask {
    fn drop(&mut self) {
        if self.outcome.is_none() {
            self.control.kill_now();
            self.control.finish();
            self.release();
        }
    }
}

impl std::fmt::Debug for ProcessExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessExecutor")
            .field("python", &self.inner.python)
            .field("running_tasks", &lock(&self.inner.tasks).len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RunningTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningTask")
            .field("task_key", &self.control.task_key)
            .field("pid", &self.control.pgid)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Canceler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canceler")
            .field("task_key", &self.control.task_key)
            .field("pid", &self.control.pgid)
            .finish()
    }
}

fn outcome_of(status: std::process::ExitStatus) -> ExitOutcome {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitOutcome::Exited(code),
        (None, Some(signal)) => ExitOutcome::Signaled(signal),
        (None, None) => ExitOutcome::Signaled(libc::SIGKILL),
    }
}
