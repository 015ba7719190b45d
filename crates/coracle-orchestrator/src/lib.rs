//! `coracle-orchestrator`: drives one run. It feeds the engine's state machine with events,
//! carries out its commands (record in the store, launch or cancel through an executor,
//! finish), and reports progress to whoever watches (the terminal view, later the server).
//!
//! Invariants:
//! - every task or run state change is written to the store before the next command acts on
//!   it, so what the store says is never behind what was started;
//! - a run this loop owns always ends in a terminal state in the store, also when the loop
//!   itself fails (the run is then recorded FAILED with the reason);
//! - reading a task's outputs (files) happens here, at the edge; their meaning is decided by
//!   `coracle_engine::collect_outputs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use coracle_engine::{
    Builtin, Command, Engine, Event, Io, Launch, NodeId, Resources, Resume, RunConfig, RunState,
    TaskResult, TaskState, TaskUpdate,
};
use coracle_exec::{Executor, ExitOutcome, TaskCanceler, TaskLaunch};
use coracle_spec::PipelineSpec;
use coracle_store::{ArtifactRecord, CacheEntry, RunRecord, Store, TaskRecord};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

mod pod;
mod v1_outputs;

/// The machine's GPU devices: `CORACLE_GPUS` (a comma-separated list of device numbers, empty
/// for none) when set, else the devices `nvidia-smi -L` lists, else none.
pub fn detect_gpus() -> Vec<String> {
    if let Ok(list) = std::env::var("CORACLE_GPUS") {
        return list
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect();
    }
    let Ok(output) = std::process::Command::new("nvidia-smi")
        .arg("-L")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    if !output.status.success() {
        return Vec::new();
    }
    gpus_of_nvidia_smi_list(&String::from_utf8_lossy(&output.stdout))
}

/// The device numbers in `nvidia-smi -L` output (`GPU 0: NVIDIA H100 … (UUID: GPU-…)`).
fn gpus_of_nvidia_smi_list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("GPU ")?;
            let index = rest.split(':').next()?.trim();
            index.parse::<u32>().ok().map(|i| i.to_string())
        })
        .collect()
}

#[cfg(test)]
mod gpu_tests {
    #[test]
    fn nvidia_smi_list_gives_device_numbers() {
        let text = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1b2c3d4e-0000-1111-2222-333344445555)\n\
                    GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-9f8e7d6c-0000-1111-2222-333344445555)\n\
                      MIG 1g.10gb     Device  0: (UUID: MIG-aaaa)\n";
        assert_eq!(super::gpus_of_nvidia_smi_list(text), ["0", "1"]);
        assert!(super::gpus_of_nvidia_smi_list("No devices were found\n").is_empty());
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] coracle_engine::Error),
    #[error(transparent)]
    Store(#[from] coracle_store::Error),
    #[error(transparent)]
    Artifacts(#[from] coracle_artifacts::Error),
    #[error("failed to write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Internal(String),
    #[error("cannot retry run {run_id}: {why}")]
    NotRetryable { run_id: String, why: String },
    #[error("cannot resume run {run_id}: {why}")]
    NotResumable { run_id: String, why: String },
    /// The run cannot start on this machine as configured (nothing ran).
    #[error("cannot run this pipeline here: {0}")]
    NotRunnable(String),
}

/// How to run: limits and locations.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The data directory; runs live in `{home}/runs/{run_id}`.
    pub home: PathBuf,
    /// Where artifacts go; `None`: the spec's local default root, else `{home}/artifacts`.
    pub pipeline_root: Option<String>,
    pub parallelism: usize,
    /// What the machine offers (`gpus` = `gpu_devices.len()`).
    pub capacity: Resources,
    /// The machine's GPUs as `nvidia-smi` numbers them; each task that asks for GPUs gets
    /// its own (see [`detect_gpus`]).
    pub gpu_devices: Vec<String>,
    /// A name for the run; default `{pipeline name}-{UTC time}`.
    pub run_name: Option<String>,
    /// Whether tasks may reuse cached results.
    pub cache_enabled: bool,
    /// Cached results older than this are not reused.
    pub cache_max_staleness: Option<std::time::Duration>,
    /// The longest the run may take; past it, what runs is stopped and the run FAILED.
    pub timeout: Option<std::time::Duration>,
    /// The longest one attempt of a task may take; past it, the attempt FAILED (and is
    /// retried when the task has retries left).
    pub task_timeouts: TaskTimeouts,
}

/// Time limits for task attempts: one for every task, and some by task name.
#[derive(Clone, Debug, Default)]
pub struct TaskTimeouts {
    pub default: Option<std::time::Duration>,
    /// By task name (the name in the pipeline, at any depth) or by full task path.
    pub by_task: BTreeMap<String, std::time::Duration>,
}

impl TaskTimeouts {
    /// The limit for the task at `task_path` (`outer/loop/3/train` is named `train`).
    pub fn for_task(&self, task_path: &str) -> Option<std::time::Duration> {
        let name = task_path.rsplit('/').next().unwrap_or(task_path);
        self.by_task
            .get(task_path)
            .or_else(|| self.by_task.get(name))
            .copied()
            .or(self.default)
    }
}

/// `90s`, `1m30s` style text for a duration in messages.
fn show_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        format!("{:.3}s", d.as_secs_f64())
    } else {
        let secs = d.as_secs();
        match (secs / 3600, secs % 3600 / 60, secs % 60) {
            (0, 0, s) => format!("{s}s"),
            (0, m, 0) => format!("{m}m"),
            (0, m, s) => format!("{m}m{s}s"),
            (h, 0, 0) => format!("{h}h"),
            (h, m, s) => format!("{h}h{m}m{s}s"),
        }
    }
}

/// What watchers are told while a run goes on.
#[derive(Clone, Debug)]
pub enum Progress {
    RunStarted {
        run_id: String,
        run_name: String,
        run_dir: PathBuf,
    },
    Task {
        update: Box<TaskUpdate>,
        log_path: Option<PathBuf>,
        at: DateTime<Utc>,
    },
    /// Something the user should know that is not an error (a setting passed over).
    Note(String),
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub run_id: String,
    pub run_name: String,
    pub state: RunState,
    pub error: Option<String>,
    pub outputs: Io,
    /// The task whose failure failed the run, with its log file.
    pub failed_task: Option<(String, PathBuf)>,
}

/// Starts and watches runs on one executor and store.
#[derive(Clone)]
pub struct Orchestrator {
    store: Store,
    executor: Executor,
}

struct Running {
    canceler: TaskCanceler,
}

/// Per-task facts the store row needs that the engine does not keep (times, paths).
#[derive(Default)]
struct TaskBook {
    /// The attempt these facts belong to; a new attempt starts a fresh book.
    attempt: u32,
    started_at: Option<DateTime<Utc>>,
    log_path: Option<PathBuf>,
    task_dir: Option<String>,
    inputs: Value,
    exit_code: Option<i64>,
    /// The task's cache key, when it was looked up (its result is stored under it).
    cache_key: Option<String>,
}

impl Orchestrator {
    pub fn new(store: Store, executor: impl Into<Executor>) -> Self {
        Orchestrator {
            store,
            executor: executor.into(),
        }
    }

    /// Runs a pipeline to its end. `arguments` were checked by
    /// `coracle_spec::resolve_arguments`. Setting `cancel` to true cancels the run.
    pub async fn run(
        &self,
        spec: Arc<PipelineSpec>,
        arguments: BTreeMap<String, Value>,
        options: RunOptions,
        progress: mpsc::UnboundedSender<Progress>,
        cancel: watch::Receiver<bool>,
    ) -> Result<RunOutcome, Error> {
        let (mut record, note) = new_run_record(&spec, &arguments, &options);
        if let Some(note) = note {
            let _ = progress.send(Progress::Note(note));
        }
        record.state = coracle_store::RunState::Running;
        record.started_at = Some(record.created_at);
        self.execute(
            spec,
            arguments,
            record,
            Resume::default(),
            Start::Insert,
            options,
            progress,
            cancel,
        )
        .await
    }

    /// Runs a pipeline whose run record someone else wrote (a server, which records the run
    /// PENDING with fields of its own before it starts): the run becomes RUNNING and goes to
    /// its end as with [`Orchestrator::run`]. `record` is what [`new_run_record`] made, as
    /// stored. A spec the engine refuses ends the run FAILED.
    pub async fn run_record(
        &self,
        record: RunRecord,
        spec: Arc<PipelineSpec>,
        arguments: BTreeMap<String, Value>,
        options: RunOptions,
        progress: mpsc::UnboundedSender<Progress>,
        cancel: watch::Receiver<bool>,
    ) -> Result<RunOutcome, Error> {
        self.store
            .set_run_state(
                &record.run_id,
                coracle_store::RunState::Running,
                None,
                Utc::now(),
            )
            .await?;
        self.execute(
            spec,
            arguments,
            record,
            Resume::default(),
            Start::Recorded,
            options,
            progress,
            cancel,
        )
        .await
    }

    /// Runs a failed or canceled run again from where it stopped: tasks that succeeded keep
    /// their outputs and are not run again; the others start a new attempt. Same run id.
    pub async fn retry(
        &self,
        run_id: &str,
        options: RunOptions,
        progress: mpsc::UnboundedSender<Progress>,
        cancel: watch::Receiver<bool>,
    ) -> Result<RunOutcome, Error> {
        let record = self
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| Error::NotRetryable {
                run_id: run_id.to_string(),
                why: "there is no such run".into(),
            })?;
        if !matches!(
            record.state,
            coracle_store::RunState::Failed | coracle_store::RunState::Canceled
        ) {
            return Err(Error::NotRetryable {
                run_id: run_id.to_string(),
                why: format!(
                    "it is {}; only failed or canceled runs can be retried",
                    record.state.as_str()
                ),
            });
        }
        let (spec, arguments) = stored_spec(&record)?;
        let mut resume = Resume::default();
        for task in latest_attempts(self.store.list_tasks(run_id).await?) {
            resume_after(&mut resume, task);
        }
        self.continue_run(record, spec, arguments, resume, options, progress, cancel)
            .await
    }

    /// Carries on with a run whose driving process stopped without ending it (a server that
    /// crashed or was stopped): the run must be PENDING, RUNNING or CANCELING. Attempts left
    /// RUNNING are recorded FAILED (`interrupted`) and run again as new attempts; tasks that
    /// succeeded keep their outputs and are not run again; tasks that had not started yet
    /// start under their recorded attempt. A CANCELING run is not carried on: its open tasks
    /// are recorded CANCELED and the run ends CANCELED.
    pub async fn resume(
        &self,
        run_id: &str,
        options: RunOptions,
        progress: mpsc::UnboundedSender<Progress>,
        cancel: watch::Receiver<bool>,
    ) -> Result<RunOutcome, Error> {
        let not_resumable = |why: String| Error::NotResumable {
            run_id: run_id.to_string(),
            why,
        };
        let record = self
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| not_resumable("there is no such run".into()))?;
        if record.state.is_terminal() {
            return Err(not_resumable(format!(
                "it already ended {}",
                record.state.as_str()
            )));
        }
        let now = Utc::now();
        let tasks = latest_attempts(self.store.list_tasks(run_id).await?);
        if record.state == coracle_store::RunState::Canceling {
            let open: Vec<TaskRecord> = tasks
                .into_iter()
                .filter(|t| !t.state.is_terminal())
                .map(|t| TaskRecord {
                    state: coracle_store::TaskState::Canceled,
                    finished_at: Some(now),
                    ..t
                })
                .collect();
            self.store.upsert_tasks(&open).await?;
            self.store
                .set_run_state(run_id, coracle_store::RunState::Canceled, None, now)
                .await?;
            return Ok(RunOutcome {
                run_id: record.run_id,
                run_name: record.display_name,
                state: RunState::Canceled,
                error: None,
                outputs: Io::default(),
                failed_task: None,
            });
        }
        let (spec, arguments) = stored_spec(&record)?;
        let mut resume = Resume::default();
        let mut interrupted = Vec::new();
        for task in tasks {
            let is_dag = spec
                .components
                .get(&task.component)
                .is_some_and(|c| c.dag.is_some());
            match task.state {
                // A DAG is only a container: it goes on under the same attempt.
                coracle_store::TaskState::Running if is_dag => {
                    resume
                        .next_attempt
                        .insert(task.task_id, task.attempt as u32);
                }
                coracle_store::TaskState::Running => {
                    resume
                        .next_attempt
                        .insert(task.task_id.clone(), task.attempt as u32 + 1);
                    interrupted.push(TaskRecord {
                        state: coracle_store::TaskState::Failed,
                        error: Some(INTERRUPTED.into()),
                        finished_at: Some(now),
                        ..task
                    });
                }
                // Not started, or skipped by a condition (which decides the same again):
                // the same attempt's row is written over.
                coracle_store::TaskState::Pending | coracle_store::TaskState::Skipped => {
                    resume
                        .next_attempt
                        .insert(task.task_id, task.attempt as u32);
                }
                _ => resume_after(&mut resume, task),
            }
        }
        self.store.upsert_tasks(&interrupted).await?;
        self.continue_run(record, spec, arguments, resume, options, progress, cancel)
            .await
    }

    /// Marks a stored run RUNNING again and drives it with `resume`.
    #[allow(clippy::too_many_arguments)]
    async fn continue_run(
        &self,
        record: RunRecord,
        spec: PipelineSpec,
        arguments: BTreeMap<String, Value>,
        resume: Resume,
        options: RunOptions,
        progress: mpsc::UnboundedSender<Progress>,
        cancel: watch::Receiver<bool>,
    ) -> Result<RunOutcome, Error> {
        let record = RunRecord {
            state: coracle_store::RunState::Running,
            error: None,
            ..record
        };
        self.store
            .set_run_state(
                &record.run_id,
                coracle_store::RunState::Running,
                None,
                Utc::now(),
            )
            .await?;
        self.execute(
            Arc::new(spec),
            arguments,
            record,
            resume,
            Start::Recorded,
            options,
            progress,
            cancel,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        spec: Arc<PipelineSpec>,
        arguments: BTreeMap<String, Value>,
        record: RunRecord,
        resume: Resume,
        start: Start,
        options: RunOptions,
        progress: mpsc::UnboundedSender<Progress>,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<RunOutcome, Error> {
        let run_id = record.run_id.clone();
        let run_name = record.display_name.clone();
        let run_dir = options.home.join("runs").join(&run_id);
        // Volumes on the process backend need private mount namespaces: when this machine
        // does not allow them, the run fails before anything runs.
        if let (Executor::Process(_), true) = (&self.executor, pod::spec_has_mounts(&spec)) {
            let check = tokio::task::spawn_blocking(coracle_exec::check_private_mounts)
                .await
                .unwrap_or_else(|e| Err(format!("the mount check stopped: {e}")));
            if let Err(why) = check {
                let error = Error::NotRunnable(format!(
                    "this pipeline mounts volumes, and {why}; run it with --executor docker"
                ));
                if start == Start::Recorded {
                    self.store
                        .set_run_state(
                            &run_id,
                            coracle_store::RunState::Failed,
                            Some(&error.to_string()),
                            Utc::now(),
                        )
                        .await?;
                }
                return Err(error);
            }
        }
        let config = RunConfig {
            run_id: run_id.clone(),
            run_name: run_name.clone(),
            pipeline_root: record.pipeline_root.clone(),
            run_dir: run_dir.display().to_string(),
            create_time: record
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            parallelism: options.parallelism,
            capacity: options.capacity,
            cache_enabled: options.cache_enabled,
            resume,
        };
        let started = Engine::start(Arc::clone(&spec), arguments, config)
            .map_err(Error::from)
            .and_then(|started| {
                coracle_artifacts::prepare_dirs(&[run_dir.join("tasks").display().to_string()])?;
                Ok(started)
            });
        let (mut engine, commands) = match (started, start) {
            (Ok(started), _) => started,
            (Err(e), Start::Insert) => return Err(e),
            (Err(e), Start::Recorded) => {
                // The run is in the store as RUNNING: it must not stay so.
                let message = match &e {
                    Error::Engine(e) => format!("cannot run this pipeline: {e}"),
                    e => format!("internal error: {e}"),
                };
                self.store
                    .set_run_state(
                        &run_id,
                        coracle_store::RunState::Failed,
                        Some(&message),
                        Utc::now(),
                    )
                    .await?;
                return Err(e);
            }
        };
        if start == Start::Insert {
            self.store.insert_run(&record).await?;
        }
        let _ = progress.send(Progress::RunStarted {
            run_id: run_id.clone(),
            run_name: run_name.clone(),
            run_dir: run_dir.clone(),
        });
        let now = Utc::now();
        let mut driver = Driver {
            store: self.store.clone(),
            executor: self.executor.clone(),
            run_id: run_id.clone(),
            progress,
            running: BTreeMap::new(),
            book: BTreeMap::new(),
            events: mpsc::unbounded_channel(),
            finished: None,
            first_failed: None,
            cache_not_before: options
                .cache_max_staleness
                .map(|age| now - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX)),
            task_timeouts: options.task_timeouts.clone(),
            deadline: options
                .timeout
                .map(|limit| (tokio::time::Instant::now() + limit, limit)),
            timed_out: None,
            home: options.home.clone(),
            run_dir: run_dir.clone(),
            pipeline_root: record.pipeline_root.clone(),
            warned: Default::default(),
            machine_has_gpus: !options.gpu_devices.is_empty(),
            gpus_free: options.gpu_devices.clone(),
            gpus_held: BTreeMap::new(),
        };
        let result = driver.drive(&mut engine, commands, &mut cancel).await;
        if let Err(e) = result {
            // The loop itself broke: stop what runs and record the run as failed.
            for running in driver.running.values() {
                running.canceler.cancel();
            }
            let message = format!("internal error: {e}");
            let _ = self
                .store
                .set_run_state(
                    &run_id,
                    coracle_store::RunState::Failed,
                    Some(&message),
                    Utc::now(),
                )
                .await;
            return Err(e);
        }
        let finished = driver
            .finished
            .take()
            .expect("drive returns once the run finished");
        Ok(RunOutcome {
            run_id,
            run_name,
            state: finished.state,
            error: finished.error,
            outputs: finished.outputs,
            failed_task: driver.first_failed,
        })
    }
}

/// The error of a task attempt that was running when its driving process stopped.
pub const INTERRUPTED: &str = "interrupted: Coracle stopped while the task ran";

/// Whether [`Orchestrator::execute`] records the run or finds it recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    Insert,
    Recorded,
}

/// The record of a new run of `spec`, PENDING, created now, named and rooted as `options`
/// say: the name defaults to `{pipeline name}-{UTC time}`, the root to the spec's local
/// default root, else `{home}/artifacts`. The note says when the spec's root was passed over.
pub fn new_run_record(
    spec: &PipelineSpec,
    arguments: &BTreeMap<String, Value>,
    options: &RunOptions,
) -> (RunRecord, Option<String>) {
    let created_at = Utc::now();
    let pipeline_name = spec.pipeline_info.name.clone();
    let run_name = options
        .run_name
        .clone()
        .unwrap_or_else(|| format!("{pipeline_name}-{}", created_at.format("%Y%m%d-%H%M%S")));
    let (pipeline_root, note) = coracle_artifacts::choose_pipeline_root(
        options.pipeline_root.as_deref(),
        spec.default_pipeline_root.as_deref(),
        &options.home.join("artifacts"),
    );
    let record = RunRecord {
        run_id: uuid::Uuid::new_v4().to_string(),
        display_name: run_name,
        pipeline_name,
        pipeline_spec: serde_json::to_value(spec).unwrap_or(Value::Null),
        parameters: serde_json::to_value(arguments).unwrap_or(Value::Null),
        pipeline_root,
        state: coracle_store::RunState::Pending,
        error: None,
        outputs: Value::Null,
        created_at,
        started_at: None,
        finished_at: None,
    };
    (record, note)
}

/// The spec and arguments a run was stored with.
fn stored_spec(record: &RunRecord) -> Result<(PipelineSpec, BTreeMap<String, Value>), Error> {
    let spec: PipelineSpec = serde_json::from_value(record.pipeline_spec.clone()).map_err(|e| {
        Error::Internal(format!(
            "the stored spec of run {} cannot be read: {e}",
            record.run_id
        ))
    })?;
    let arguments: BTreeMap<String, Value> =
        serde_json::from_value(record.parameters.clone()).unwrap_or_default();
    Ok((spec, arguments))
}

/// The latest attempt of each task of a run, by task id.
fn latest_attempts(tasks: Vec<TaskRecord>) -> Vec<TaskRecord> {
    let mut latest: BTreeMap<String, TaskRecord> = BTreeMap::new();
    for task in tasks {
        if latest
            .get(&task.task_id)
            .is_none_or(|t| t.attempt <= task.attempt)
        {
            latest.insert(task.task_id.clone(), task);
        }
    }
    latest.into_values().collect()
}

/// The latest attempt of a task decides: reuse what it produced when it succeeded (and its
/// files are still there), else run the task again as the next attempt.
fn resume_after(resume: &mut Resume, task: TaskRecord) {
    let succeeded = matches!(
        task.state,
        coracle_store::TaskState::Succeeded | coracle_store::TaskState::Cached
    );
    match cached_io(&task.outputs).filter(|_| succeeded) {
        Some(io) => {
            resume.reuse.insert(task.task_id, io);
        }
        None => {
            resume
                .next_attempt
                .insert(task.task_id, task.attempt as u32 + 1);
        }
    }
}

/// A task's end as its waiter reports it, with the exit code when there was one.
type TaskEnded = (Event, Option<i64>);

/// A task update turned into what the store keeps.
struct Prepared {
    record: TaskRecord,
    artifacts: Vec<ArtifactRecord>,
    cache_entry: Option<CacheEntry>,
    update: TaskUpdate,
    log_path: Option<PathBuf>,
    at: DateTime<Utc>,
}

struct Driver {
    store: Store,
    executor: Executor,
    run_id: String,
    progress: mpsc::UnboundedSender<Progress>,
    running: BTreeMap<NodeId, Running>,
    book: BTreeMap<NodeId, TaskBook>,
    /// Task endings from the waiting tasks, with the exit code when there was one.
    events: (
        mpsc::UnboundedSender<TaskEnded>,
        mpsc::UnboundedReceiver<TaskEnded>,
    ),
    finished: Option<coracle_engine::RunFinished>,
    first_failed: Option<(String, PathBuf)>,
    /// Cached results older than this are not reused.
    cache_not_before: Option<DateTime<Utc>>,
    task_timeouts: TaskTimeouts,
    /// When the run must be over, and how long that was.
    deadline: Option<(tokio::time::Instant, std::time::Duration)>,
    /// Set once the run's time limit stopped it: the reason the run FAILED.
    timed_out: Option<String>,
    home: PathBuf,
    run_dir: PathBuf,
    pipeline_root: String,
    /// Settings already warned about in this run (warned once each).
    warned: std::collections::BTreeSet<String>,
    machine_has_gpus: bool,
    gpus_free: Vec<String>,
    gpus_held: BTreeMap<NodeId, Vec<String>>,
}

impl Driver {
    /// Answers a cache look-up: hashes the input artifacts' content into the key, finds an
    /// entry no older than the run's and the task's limits allow, and checks that the files it
    /// points to are still there.
    async fn check_cache(
        &mut self,
        node: NodeId,
        material: Value,
        max_staleness_s: Option<u64>,
    ) -> Result<(), Error> {
        let key = tokio::task::spawn_blocking(move || cache_key(material))
            .await
            .map_err(|e| Error::Internal(format!("cache key computation stopped: {e}")))??;
        let task_not_before = max_staleness_s.map(|s| {
            let age = i64::try_from(s)
                .ok()
                .and_then(chrono::Duration::try_seconds)
                .unwrap_or(chrono::Duration::MAX);
            Utc::now()
                .checked_sub_signed(age)
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        });
        // The stricter (later) of the two limits.
        let not_before = self.cache_not_before.max(task_not_before);
        let entry = self.store.get_cache_entry(&key, not_before).await?;
        self.book.entry(node).or_default().cache_key = Some(key);
        let hit = entry.and_then(|e| cached_io(&e.outputs));
        let _ = self
            .events
            .0
            .send((Event::CacheChecked { node, hit }, None));
        Ok(())
    }

    async fn drive(
        &mut self,
        engine: &mut Engine,
        first: Vec<Command>,
        cancel: &mut watch::Receiver<bool>,
    ) -> Result<(), Error> {
        self.apply(first).await?;
        let mut cancel_sent = false;
        let mut watch_open = true;
        // `coracle runs terminate` (another process) marks the run CANCELING in the store.
        let mut poll = tokio::time::interval(std::time::Duration::from_millis(250));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let (deadline, limit) = match self.deadline {
            Some((at, limit)) => (Some(at), limit),
            None => (None, std::time::Duration::ZERO),
        };
        let expired = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now));
        tokio::pin!(expired);
        while self.finished.is_none() {
            let event = tokio::select! {
                ended = self.events.1.recv() => {
                    let (event, exit_code) = ended.expect("the driver holds a sender");
                    if let (Event::TaskFinished { node, .. }, Some(code)) = (&event, exit_code) {
                        self.book.entry(*node).or_default().exit_code = Some(code);
                    }
                    event
                }
                changed = cancel.changed(), if !cancel_sent && watch_open => {
                    if changed.is_err() {
                        watch_open = false;
                        continue;
                    }
                    if !*cancel.borrow() {
                        continue;
                    }
                    cancel_sent = true;
                    Event::CancelRequested
                }
                () = &mut expired, if deadline.is_some() && !cancel_sent => {
                    self.timed_out = Some(format!("run timed out after {}", show_duration(limit)));
                    cancel_sent = true;
                    Event::CancelRequested
                }
                _ = poll.tick(), if !cancel_sent => {
                    if self.store.run_state(&self.run_id).await? != Some(coracle_store::RunState::Canceling) {
                        continue;
                    }
                    cancel_sent = true;
                    Event::CancelRequested
                }
            };
            if let Event::TaskFinished { node, .. } = &event {
                self.running.remove(node);
                self.release_gpus(*node);
            }
            let commands = engine.handle(event);
            self.apply(commands).await?;
        }
        Ok(())
    }

    async fn apply(&mut self, commands: Vec<Command>) -> Result<(), Error> {
        // Consecutive updates are written together; each batch is in the store before the
        // next command is carried out.
        let mut batch = Vec::new();
        for command in commands {
            if let Command::Update(update) = command {
                batch.push(self.prepare_record(update));
                continue;
            }
            self.flush(&mut batch).await?;
            match command {
                Command::Update(_) => unreachable!("updates are batched above"),
                Command::Launch(launch) => self.launch(*launch).await?,
                Command::Cancel { node } => {
                    if let Some(r) = self.running.get(&node) {
                        r.canceler.cancel();
                    }
                }
                Command::CheckCache {
                    node,
                    material,
                    max_staleness_s,
                } => self.check_cache(node, material, max_staleness_s).await?,
                Command::RetryAfter { node, delay_ms } => {
                    let sender = self.events.0.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                        let _ = sender.send((Event::RetryDue { node }, None));
                    });
                }
                Command::Finish(mut finished) => {
                    if let (Some(reason), RunState::Canceled) = (&self.timed_out, finished.state) {
                        finished.state = RunState::Failed;
                        finished.error = Some(reason.clone());
                    }
                    let state = match finished.state {
                        RunState::Succeeded => coracle_store::RunState::Succeeded,
                        RunState::Canceled => coracle_store::RunState::Canceled,
                        RunState::Failed | RunState::Running => coracle_store::RunState::Failed,
                    };
                    if finished.state == RunState::Succeeded {
                        self.store
                            .set_run_outputs(&self.run_id, &io_json(&finished.outputs))
                            .await?;
                    }
                    self.store
                        .set_run_state(&self.run_id, state, finished.error.as_deref(), Utc::now())
                        .await?;
                    self.finished = Some(finished);
                }
            }
        }
        self.flush(&mut batch).await
    }

    /// Writes prepared task records (a task and the artifacts it produced in one
    /// transaction), then tells the watchers.
    async fn flush(&mut self, batch: &mut Vec<Prepared>) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        // A task taken over from an earlier attempt keeps the row that attempt wrote.
        batch.retain(|p| {
            if p.update.reused {
                let _ = self.progress.send(Progress::Task {
                    update: Box::new(p.update.clone()),
                    log_path: None,
                    at: p.at,
                });
            }
            !p.update.reused
        });
        if batch.is_empty() {
            return Ok(());
        }
        if batch.iter().all(|p| p.artifacts.is_empty()) {
            let records: Vec<TaskRecord> = batch.iter().map(|p| p.record.clone()).collect();
            self.store.upsert_tasks(&records).await?;
        } else {
            for p in batch.iter() {
                self.store
                    .upsert_task_with_artifacts(&p.record, &p.artifacts)
                    .await?;
            }
        }
        for entry in batch.iter().filter_map(|p| p.cache_entry.as_ref()) {
            self.store.put_cache_entry(entry).await?;
        }
        for p in batch.drain(..) {
            let _ = self.progress.send(Progress::Task {
                update: Box::new(p.update),
                log_path: p.log_path,
                at: p.at,
            });
        }
        Ok(())
    }

    fn prepare_record(&mut self, update: TaskUpdate) -> Prepared {
        let now = Utc::now();
        let book = self.book.entry(update.node).or_default();
        if book.attempt != update.attempt {
            let inputs = std::mem::take(&mut book.inputs);
            *book = TaskBook {
                attempt: update.attempt,
                inputs,
                ..TaskBook::default()
            };
        }
        if update.state == TaskState::Running && book.started_at.is_none() {
            book.started_at = Some(now);
        }
        if let Some(inputs) = &update.inputs {
            book.inputs = io_json(inputs);
        }
        let state = match update.state {
            TaskState::Pending => coracle_store::TaskState::Pending,
            TaskState::Running => coracle_store::TaskState::Running,
            TaskState::Succeeded => coracle_store::TaskState::Succeeded,
            TaskState::Cached => coracle_store::TaskState::Cached,
            TaskState::Failed => coracle_store::TaskState::Failed,
            TaskState::Skipped => coracle_store::TaskState::Skipped,
            TaskState::Canceled => coracle_store::TaskState::Canceled,
        };
        let record = TaskRecord {
            run_id: self.run_id.clone(),
            task_id: update.task_path.clone(),
            attempt: i64::from(update.attempt),
            name: update.name.clone(),
            component: update.component.clone(),
            parent_task_id: update.parent_path.clone(),
            state,
            inputs: book.inputs.clone(),
            outputs: update.outputs.as_ref().map(io_json).unwrap_or(Value::Null),
            exit_code: book.exit_code,
            error: update.error.clone(),
            log_path: book.log_path.as_ref().map(|p| p.display().to_string()),
            work_dir: book.task_dir.clone(),
            started_at: book.started_at,
            finished_at: update.state.is_terminal().then_some(now),
        };
        let cache_entry = match (&book.cache_key, update.state, &update.outputs) {
            (Some(key), TaskState::Succeeded, Some(outputs)) => Some(CacheEntry {
                cache_key: key.clone(),
                run_id: self.run_id.clone(),
                task_id: update.task_path.clone(),
                outputs: cache_outputs(outputs),
                created_at: now,
            }),
            _ => None,
        };
        let mut artifacts = Vec::new();
        if update.state == TaskState::Succeeded && !update.is_dag {
            for (key, list) in update.outputs.iter().flat_map(|o| o.artifacts.iter()) {
                for (index, a) in list.iter().enumerate() {
                    artifacts.push(ArtifactRecord {
                        artifact_id: format!("{}/{}/{key}/{index}", self.run_id, update.task_path),
                        run_id: self.run_id.clone(),
                        producer_task_id: update.task_path.clone(),
                        output_key: key.clone(),
                        name: a.name.clone(),
                        uri: a.uri.clone(),
                        schema_title: a.schema_title.clone(),
                        schema_version: a.schema_version.clone(),
                        metadata: Value::Object(a.metadata.clone()),
                        created_at: now,
                    });
                }
            }
        }
        if update.state == TaskState::Failed
            && !update.is_dag
            && self.first_failed.is_none()
            && let Some(log) = &book.log_path
        {
            self.first_failed = Some((update.task_path.clone(), log.clone()));
        }
        let log_path = book.log_path.clone();
        Prepared {
            record,
            artifacts,
            cache_entry,
            update,
            log_path,
            at: now,
        }
    }

    async fn launch(&mut self, launch: Launch) -> Result<(), Error> {
        let node = launch.node;
        let task_dir = PathBuf::from(&launch.task_dir);
        let log_path = task_dir.join("task.log");
        coracle_artifacts::prepare_dirs(&launch.dirs_to_create)?;
        write_file(
            &task_dir.join("executor_input.json"),
            launch.executor_input.to_string().as_bytes(),
        )?;
        let book = self.book.entry(node).or_default();
        book.log_path = Some(log_path.clone());
        book.task_dir = Some(launch.task_dir.clone());
        let sender = self.events.0.clone();
        if let Some(builtin) = &launch.builtin {
            let result = self.builtin(builtin, &launch).await;
            let _ = write_file(&log_path, builtin_log(builtin, &result).as_bytes());
            let result = match result {
                Ok(()) => read_outputs(&launch.outputs).await,
                Err(error) => TaskResult::Failed(error),
            };
            let _ = sender.send((Event::TaskFinished { node, result }, None));
            return Ok(());
        }
        for note in &launch.platform.not_applied {
            if self.warned.insert(note.clone()) {
                let _ = self.progress.send(Progress::Note(format!(
                    "task {}: {note} has no meaning on one machine: kept in the run record, not applied",
                    launch.task_path
                )));
            }
        }
        let gpu_devices = self.take_gpus(node, launch.resources.gpus);
        if launch.platform != coracle_engine::TaskPlatform::default() || !gpu_devices.is_empty() {
            write_file(
                &task_dir.join("pod.json"),
                pod::describe(&launch.platform, &gpu_devices)
                    .to_string()
                    .as_bytes(),
            )?;
        }
        let prepared = pod::prepare(&self.store, &self.home, &self.run_id, &launch).await;
        let pod = match prepared {
            Ok(pod) => pod,
            Err(error) => {
                let _ = write_file(
                    &log_path,
                    format!("coracle: failed to start: {error}\n").as_bytes(),
                );
                let _ = sender.send((
                    Event::TaskFinished {
                        node,
                        result: TaskResult::Failed(format!("failed to start: {error}")),
                    },
                    None,
                ));
                return Ok(());
            }
        };
        let mut env = launch.env.clone();
        env.extend(pod.env);
        if self.machine_has_gpus {
            // Dedicated devices: a task sees the GPUs it was given and no others.
            let visible = gpu_devices.join(",");
            env.push(("CUDA_VISIBLE_DEVICES".into(), visible.clone()));
            env.push((
                "NVIDIA_VISIBLE_DEVICES".into(),
                if visible.is_empty() {
                    "void".into()
                } else {
                    visible
                },
            ));
        }
        let mut labels = pod.labels;
        labels.insert("coracle.run_id".into(), self.run_id.clone());
        labels.insert("coracle.task_path".into(), launch.task_path.clone());
        let task = TaskLaunch {
            task_key: launch.task_path.clone(),
            image: launch.image.clone(),
            argv: launch.argv.clone(),
            env,
            work_dir: task_dir.clone(),
            log_path,
            mounts: pod.mounts,
            shared_paths: self.shared_paths(&launch),
            resources: coracle_exec::TaskResources {
                cpu_limit_millis: launch.limits.cpu_millis,
                memory_limit_bytes: launch.limits.memory_bytes,
                cpu_request_millis: Some(launch.resources.cpu_millis).filter(|m| *m > 0),
                memory_request_bytes: Some(launch.resources.memory_bytes).filter(|b| *b > 0),
                gpu_devices,
            },
            labels,
            redact: pod.redact,
        };
        let scratch = pod.scratch;
        match self.executor.launch(task).await {
            Err(e) => {
                pod::remove_scratch(&scratch);
                let _ = sender.send((
                    Event::TaskFinished {
                        node,
                        result: TaskResult::Failed(format!("failed to start: {e}")),
                    },
                    None,
                ));
                // Keep the engine's view consistent: it considers the task running until told.
            }
            Ok(mut running) => {
                self.running.insert(
                    node,
                    Running {
                        canceler: running.canceler(),
                    },
                );
                let outputs = launch.outputs;
                let limit = self.task_timeouts.for_task(&launch.task_path).or(launch
                    .platform
                    .timeout_seconds
                    .map(std::time::Duration::from_secs));
                tokio::spawn(async move {
                    let mut timed_out = false;
                    let outcome = match limit {
                        None => running.wait().await,
                        Some(limit) => {
                            let canceler = running.canceler();
                            let wait = running.wait();
                            tokio::pin!(wait);
                            tokio::select! {
                                outcome = &mut wait => outcome,
                                () = tokio::time::sleep(limit) => {
                                    timed_out = true;
                                    canceler.cancel();
                                    wait.await
                                }
                            }
                        }
                    };
                    pod::remove_scratch(&scratch);
                    let exit_code = match outcome {
                        ExitOutcome::Exited(code) => Some(i64::from(code)),
                        _ => None,
                    };
                    let result = match outcome {
                        _ if timed_out => TaskResult::Failed(format!(
                            "timed out after {}",
                            show_duration(limit.unwrap_or_default())
                        )),
                        ExitOutcome::Exited(0) => read_outputs(&outputs).await,
                        ExitOutcome::Exited(code) => {
                            TaskResult::Failed(format!("exit code {code}"))
                        }
                        ExitOutcome::Signaled(signal) => {
                            TaskResult::Failed(format!("killed by signal {signal}"))
                        }
                        ExitOutcome::Killed => TaskResult::Canceled,
                        ExitOutcome::FailedToStart(e) => {
                            TaskResult::Failed(format!("failed to start: {e}"))
                        }
                    };
                    let _ = sender.send((Event::TaskFinished { node, result }, exit_code));
                });
            }
        }
        Ok(())
    }

    /// Host paths a task reads or writes under their own names: the run's directory (task
    /// directories, the workspace), the pipeline root when it is local, and input artifacts
    /// kept elsewhere (imported files, cached results of other runs).
    fn shared_paths(&self, launch: &Launch) -> Vec<PathBuf> {
        let mut paths = vec![self.run_dir.clone()];
        let root = Path::new(&self.pipeline_root);
        if root.is_absolute() {
            paths.push(root.to_path_buf());
        }
        if let Some(inputs) = launch
            .executor_input
            .pointer("/inputs/artifacts")
            .and_then(Value::as_object)
        {
            for list in inputs.values() {
                for artifact in list["artifacts"].as_array().into_iter().flatten() {
                    if let Some(uri) = artifact["uri"].as_str() {
                        let path = Path::new(uri.strip_prefix("file://").unwrap_or(uri));
                        if path.is_absolute()
                            && path.exists()
                            && !paths.iter().any(|p| path.starts_with(p))
                        {
                            paths.push(path.to_path_buf());
                        }
                    }
                }
            }
        }
        paths
    }

    /// Free GPU devices for `node`, which asked for `count` (the engine only launches a task
    /// whose GPUs fit what is free).
    fn take_gpus(&mut self, node: NodeId, count: u32) -> Vec<String> {
        let count = (count as usize).min(self.gpus_free.len());
        if count == 0 {
            return Vec::new();
        }
        let taken: Vec<String> = self.gpus_free.drain(..count).collect();
        self.gpus_held.insert(node, taken.clone());
        taken
    }

    fn release_gpus(&mut self, node: NodeId) {
        if let Some(devices) = self.gpus_held.remove(&node) {
            self.gpus_free.extend(devices);
            self.gpus_free.sort();
        }
    }

    /// Carries out a stand-in executor (CreatePVC, DeletePVC); on success its outputs are
    /// in their files.
    async fn builtin(&mut self, builtin: &Builtin, launch: &Launch) -> Result<(), String> {
        match builtin {
            Builtin::CreateVolume {
                name,
                size,
                access_modes,
                storage_class,
                annotations,
            } => {
                let record = coracle_store::VolumeRecord {
                    name: name.clone(),
                    created_at: Utc::now(),
                    created_by_run: Some(self.run_id.clone()),
                    size: size.clone(),
                    access_modes: access_modes.clone(),
                    storage_class: storage_class.clone(),
                    annotations: annotations.clone(),
                };
                self.store
                    .create_volume(&record)
                    .await
                    .map_err(|e| format!("cannot create volume {name:?}: {e}"))?;
                let dir = coracle_store::volume_dir(&self.home, name);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                if let Some((_, file)) = launch.outputs.parameters.get("name") {
                    write_file(Path::new(file), name.as_bytes()).map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Builtin::DeleteVolume { name } => {
                let deleted = self
                    .store
                    .delete_volume(name)
                    .await
                    .map_err(|e| format!("cannot delete volume {name:?}: {e}"))?;
                if !deleted {
                    return Err(format!("volume {name:?} does not exist"));
                }
                let dir = coracle_store::volume_dir(&self.home, name);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
                }
                Ok(())
            }
        }
    }
}

/// The log of a stand-in executor: what Coracle did in its place.
fn builtin_log(builtin: &Builtin, result: &Result<(), String>) -> String {
    let what = match builtin {
        Builtin::CreateVolume { name, .. } => format!("create volume {name}"),
        Builtin::DeleteVolume { name } => format!("delete volume {name}"),
    };
    match result {
        Ok(()) => format!("coracle: {what}: done\n"),
        Err(error) => format!("coracle: failed to {what}: {error}\n"),
    }
}

async fn read_outputs(plan: &coracle_engine::OutputPlan) -> TaskResult {
    let executor_output = tokio::fs::read_to_string(&plan.executor_output_file)
        .await
        .ok();
    let mut files = BTreeMap::new();
    for (name, (_, file)) in &plan.parameters {
        if let Ok(text) = tokio::fs::read_to_string(file).await {
            files.insert(name.clone(), text);
        }
    }
    v1_outputs::parameters_from_artifacts(plan, &mut files).await;
    match coracle_engine::collect_outputs(plan, executor_output.as_deref(), &files) {
        Ok(mut io) => {
            v1_outputs::metrics_metadata(&mut io).await;
            TaskResult::Succeeded(io)
        }
        Err(e) => TaskResult::Failed(e),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(|source| Error::Write {
        path: path.display().to_string(),
        source,
    })
}

/// The cache key: SHA-256 of the material with each input artifact's URI replaced by a
/// digest of its content.
fn cache_key(mut material: Value) -> Result<String, Error> {
    use sha2::{Digest, Sha256};
    if let Some(artifacts) = material.get_mut("artifacts").and_then(Value::as_object_mut) {
        for list in artifacts.values_mut() {
            for artifact in list.as_array_mut().into_iter().flatten() {
                let uri = artifact["uri"].as_str().unwrap_or_default().to_string();
                let digest = coracle_artifacts::content_digest(&uri)?
                    .unwrap_or_else(|| format!("absent:{uri}"));
                artifact["uri"] = Value::String(digest);
            }
        }
    }
    Ok(format!(
        "sha256:{:x}",
        Sha256::digest(material.to_string().as_bytes())
    ))
}

/// Outputs as a cache entry keeps them: as stored for tasks, plus the artifact files that
/// existed, so that a hit whose files are gone can be told from one that never had any.
fn cache_outputs(io: &Io) -> Value {
    let mut value = io_json(io);
    let files: Vec<&str> = io
        .artifacts
        .values()
        .flatten()
        .filter(|a| coracle_artifacts::local_path(&a.uri).is_ok_and(|p| p.exists()))
        .map(|a| a.uri.as_str())
        .collect();
    value["files"] = json!(files);
    value
}

/// The outputs of a cache entry, if all its artifact files are still there.
fn cached_io(value: &Value) -> Option<Io> {
    for file in value["files"].as_array().into_iter().flatten() {
        let path = coracle_artifacts::local_path(file.as_str()?).ok()?;
        if !path.exists() {
            return None;
        }
    }
    let mut io = Io::default();
    for (k, v) in value["parameters"].as_object()? {
        io.parameters.insert(k.clone(), v.clone());
    }
    for (k, list) in value["artifacts"].as_object()? {
        let mut artifacts = Vec::new();
        for a in list.as_array()? {
            artifacts.push(coracle_engine::ArtifactValue {
                name: a["name"].as_str()?.to_string(),
                uri: a["uri"].as_str()?.to_string(),
                schema_title: a["type"].as_str()?.to_string(),
                schema_version: a["schema_version"].as_str().unwrap_or("0.0.1").to_string(),
                metadata: a["metadata"].as_object().cloned().unwrap_or_default(),
            });
        }
        io.artifacts.insert(k.clone(), artifacts);
    }
    Some(io)
}

/// The JSON form of a set of values, as stored and printed:
/// `{"parameters": {...}, "artifacts": {name: [{uri, type, metadata}]}}`.
pub fn io_json(io: &Io) -> Value {
    let artifacts: serde_json::Map<String, Value> = io
        .artifacts
        .iter()
        .map(|(k, list)| {
            let list: Vec<Value> = list
                .iter()
                .map(|a| json!({"name": a.name, "uri": a.uri, "type": a.schema_title, "schema_version": a.schema_version, "metadata": Value::Object(a.metadata.clone())}))
                .collect();
            (k.clone(), Value::Array(list))
        })
        .collect();
    json!({"parameters": io.parameters, "artifacts": artifacts})
}
