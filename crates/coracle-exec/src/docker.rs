//! The Docker backend: every task is a container of a Docker engine, with the meaning it would
//! have as a pod's container on Kubernetes.
//!
//! - the spec's command replaces the image's entrypoint (`Entrypoint = argv[0]`,
//!   `Cmd = argv[1..]`); the image's default user and the engine's default network;
//! - the task's shared paths (its task directory, the pipeline root, inputs kept elsewhere) are
//!   bind-mounted read-write at their own paths, so what the task writes the host reads; its
//!   volumes at their mount paths; limits and requests become the container's cgroup settings;
//!   GPUs become an `nvidia` device request;
//! - stdout and stderr are attached before the container starts and go, line by line, to the
//!   task's log file and the live log channel, secrets masked;
//! - every container carries `coracle.*` labels naming the Coracle process that made it; it is
//!   removed when its task ends, fails to start, is canceled or dropped, or the executor shuts
//!   down, and containers of Coracle processes that died without cleaning up are removed by
//!   the next [`DockerExecutor::connect`] on the same host.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as EngineError;
use bollard::models::{
    ContainerCreateBody, DeviceRequest, HostConfig, Mount as EngineMount, MountType,
};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, CreateImageOptions, KillContainerOptions,
    ListContainersOptions, RemoveContainerOptions, WaitContainerOptions,
};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::executor::DEFAULT_CANCEL_GRACE;
use crate::logs::{ChunkedLog, LogSink};
use crate::{Error, ExitOutcome, LogLine, LogStream, TaskLaunch};

/// Set to `true` on every container Coracle creates.
pub(crate) const LABEL_MANAGED: &str = "coracle.managed";
/// The pid of the Coracle process that created the container.
pub(crate) const LABEL_PID: &str = "coracle.pid";
/// A random id of the Coracle process that created the container, new at every start.
pub(crate) const LABEL_BOOT: &str = "coracle.boot";
/// The host name of the machine that process runs on.
pub(crate) const LABEL_HOST: &str = "coracle.host";
/// When that process started (clock ticks since the host booted), telling it from a later
/// process that got the same pid.
pub(crate) const LABEL_PID_START: &str = "coracle.pid_start";
/// The task the container runs.
pub(crate) const LABEL_TASK_KEY: &str = "coracle.task_key";

const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// How long `connect` waits for the engine to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// After the container exited, how long we keep reading its output.
const LOG_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Pull events reported at most this often per layer and status (progress is not).
const QUIET_PULL_STATUSES: [&str; 3] = ["Downloading", "Extracting", "Waiting"];

/// How to reach the engine and what to tell watchers.
#[derive(Debug, Clone, Default)]
pub struct DockerOptions {
    /// The engine's address (`unix:///var/run/docker.sock`, `tcp://…`); default: `DOCKER_HOST`,
    /// else the local socket.
    pub host: Option<String>,
    /// Live log lines of every task.
    pub log_lines: Option<UnboundedSender<LogLine>>,
}

/// Runs tasks as containers. Cheap to clone; clones share the connection and the tasks.
#[derive(Clone)]
pub struct DockerExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    docker: Docker,
    /// Where the engine was reached (for messages).
    host: String,
    log_lines: Option<UnboundedSender<LogLine>>,
    cancel_grace_ms: Arc<AtomicU64>,
    tasks: Mutex<HashMap<u64, Arc<TaskControl>>>,
    next_task_id: AtomicU64,
    shut_down: AtomicBool,
    /// Images found present; a container create that says otherwise clears the entry.
    present_images: Mutex<HashSet<String>>,
    /// One pull at a time per image.
    pulls: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Who this process is, as the labels of its containers say.
struct Identity {
    pid: u32,
    boot: String,
    host: String,
    pid_start: Option<u64>,
}

fn identity() -> &'static Identity {
    static IDENTITY: OnceLock<Identity> = OnceLock::new();
    IDENTITY.get_or_init(|| {
        let pid = std::process::id();
        Identity {
            pid,
            boot: uuid::Uuid::new_v4().simple().to_string(),
            host: host_name(),
            pid_start: process_start_time(pid),
        }
    })
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_default()
}

/// When `pid` started (field 22 of `/proc/<pid>/stat`); `None` when no such live process.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields after the command name start at field 3 (state).
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

/// Whether a managed container's labels name a Coracle process of this host that is gone.
/// Containers of other hosts, of live processes and unlabelled ones are left alone.
fn is_leftover(labels: &HashMap<String, String>, me: &Identity) -> bool {
    if labels.get(LABEL_BOOT) == Some(&me.boot) {
        return false;
    }
    if let Some(host) = labels.get(LABEL_HOST)
        && *host != me.host
    {
        return false;
    }
    let Some(pid) = labels
        .get(LABEL_PID)
        .and_then(|pid| pid.parse::<u32>().ok())
    else {
        return false;
    };
    if pid == me.pid {
        // Our pid, another boot id: an earlier process that had our pid.
        return true;
    }
    match process_start_time(pid) {
        None => true,
        Some(start) => labels
            .get(LABEL_PID_START)
            .and_then(|label| label.parse::<u64>().ok())
            .is_some_and(|recorded| recorded != start),
    }
}

impl DockerExecutor {
    /// Connects to the engine (negotiating the API version) and removes containers that
    /// Coracle processes of this host left behind when they died; a clear error when no
    /// engine answers.
    pub async fn connect(options: DockerOptions) -> Result<Self, Error> {
        let (host, origin) = match (&options.host, std::env::var("DOCKER_HOST")) {
            (Some(host), _) => (host.clone(), "given"),
            (None, Ok(host)) if !host.is_empty() => (host, "from DOCKER_HOST"),
            _ => (DEFAULT_HOST.to_string(), "the default socket"),
        };
        let address = if host.starts_with('/') {
            format!("unix://{host}")
        } else {
            host.clone()
        };
        let unreachable = |reason: String| {
            Error::Docker(format!(
                "no engine answers at {address} ({origin}): {reason}; start dockerd (or point DOCKER_HOST at a running engine), or use the process backend (--executor process)"
            ))
        };
        let docker = Docker::connect_with_host(&address).map_err(|e| unreachable(e.to_string()))?;
        let docker = match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
            Ok(Ok(docker)) => docker,
            Ok(Err(error)) => return Err(unreachable(engine_message(&error))),
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {}s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        };
        let version = docker.client_version();
        tracing::debug!(host = %address, api = %format!("{}.{}", version.major_version, version.minor_version), "connected to the docker engine");
        let executor = DockerExecutor {
            inner: Arc::new(Inner {
                docker,
                host: address,
                log_lines: options.log_lines,
                cancel_grace_ms: Arc::new(AtomicU64::new(DEFAULT_CANCEL_GRACE.as_millis() as u64)),
                tasks: Mutex::new(HashMap::new()),
                next_task_id: AtomicU64::new(1),
                shut_down: AtomicBool::new(false),
                present_images: Mutex::new(HashSet::new()),
                pulls: Mutex::new(HashMap::new()),
            }),
        };
        executor.remove_leftovers().await;
        Ok(executor)
    }

    /// The engine's address this executor uses.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// The random id of this Coracle process, the value of the [`LABEL_BOOT`] label of every
    /// container it creates.
    pub fn boot_id() -> &'static str {
        &identity().boot
    }

    /// Names of the containers (running or not) that this Coracle process created and that
    /// still exist (for diagnostics and tests).
    pub async fn containers(&self) -> Result<Vec<String>, Error> {
        let summaries = self
            .list(&format!("{LABEL_BOOT}={}", identity().boot))
            .await?;
        Ok(summaries
            .into_iter()
            .filter_map(|summary| summary.names?.into_iter().next())
            .map(|name| name.trim_start_matches('/').to_string())
            .collect())
    }

    async fn list(
        &self,
        label_filter: &str,
    ) -> Result<Vec<bollard::models::ContainerSummary>, Error> {
        let filters = HashMap::from([("label".to_string(), vec![label_filter.to_string()])]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        self.inner
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|error| {
                Error::Docker(format!(
                    "list containers at {}: {}",
                    self.inner.host,
                    engine_message(&error)
                ))
            })
    }

    async fn remove_leftovers(&self) {
        let summaries = match self.list(&format!("{LABEL_MANAGED}=true")).await {
            Ok(summaries) => summaries,
            Err(error) => {
                tracing::warn!(%error, "cannot look for containers left by earlier Coracle processes");
                return;
            }
        };
        let me = identity();
        for summary in summaries {
            let (Some(id), Some(labels)) = (summary.id, summary.labels) else {
                continue;
            };
            if !is_leftover(&labels, me) {
                continue;
            }
            let name = summary
                .names
                .and_then(|names| names.into_iter().next())
                .unwrap_or_else(|| id.clone());
            tracing::info!(container = %name, pid = ?labels.get(LABEL_PID), "removing a container left by a Coracle process that is gone");
            if let Err(error) = remove_container(&self.inner.docker, &id).await {
                tracing::warn!(container = %name, %error, "cannot remove a leftover container");
            }
        }
    }

    /// Starts a task as a container (pulling its image first when it is missing). `Err`
    /// means it could not be started; the message says why, and so does the task's log.
    pub async fn launch(&self, task: TaskLaunch) -> Result<DockerTask, Error> {
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
        let log = Arc::new(Mutex::new(ChunkedLog::new(sink)));
        match self.start(&task, &log).await {
            Ok(started) => Ok(started),
            Err(error) => {
                // The log file says why there is no output.
                note(&log, &format!("coracle: failed to {error}"));
                Err(error)
            }
        }
    }

    async fn start(&self, task: &TaskLaunch, log: &SharedLog) -> Result<DockerTask, Error> {
        let inner = &self.inner;
        let start_error = |reason: String| Error::Start {
            task_key: task.task_key.clone(),
            reason,
        };
        let began = std::time::Instant::now();
        self.ensure_image(task, log).await?;
        let config = container_config(task).map_err(start_error)?;
        let name = container_name(&task.task_key);
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let mut created = inner
            .docker
            .create_container(Some(options.clone()), config.clone())
            .await;
        if let Err(error) = &created
            && is_not_found(error)
        {
            // The image went away since we saw it: look (and pull) again, once.
            lock(&inner.present_images).remove(&task.image);
            self.ensure_image(task, log).await?;
            created = inner.docker.create_container(Some(options), config).await;
        }
        let id = match created {
            Ok(response) => response.id,
            Err(error) => {
                return Err(start_error(format!(
                    "the engine refused to create the container: {}",
                    engine_message(&error)
                )));
            }
        };
        let created_ms = began.elapsed().as_millis() as u64;
        let task_id = inner.next_task_id.fetch_add(1, Ordering::Relaxed);
        let control = Arc::new(TaskControl {
            task_key: task.task_key.clone(),
            id: id.clone(),
            name: name.clone(),
            docker: inner.docker.clone(),
            state: Mutex::new(ControlState::default()),
            grace_ms: inner.cancel_grace_ms.clone(),
            runtime: tokio::runtime::Handle::current(),
        });
        lock(&inner.tasks).insert(task_id, control.clone());
        let forget = || async {
            control.remove().await;
            lock(&inner.tasks).remove(&task_id);
        };
        if inner.shut_down.load(Ordering::SeqCst) {
            forget().await;
            return Err(Error::ShutDown {
                task_key: task.task_key.clone(),
            });
        }
        let attach_options = AttachContainerOptions {
            stream: true,
            stdout: true,
            stderr: true,
            logs: false,
            stdin: false,
            detach_keys: None,
        };
        let output = match inner
            .docker
            .attach_container(&id, Some(attach_options))
            .await
        {
            Ok(attached) => attached.output,
            Err(error) => {
                forget().await;
                return Err(start_error(format!(
                    "cannot attach to the container's output: {}",
                    engine_message(&error)
                )));
            }
        };
        let attached_ms = began.elapsed().as_millis() as u64;
        let (stop_pump, stop_signal) = oneshot::channel();
        let pump = tokio::spawn(pump(output, log.clone(), stop_signal));
        if let Err(error) = inner.docker.start_container(&id, None).await {
            forget().await;
            drain(pump, stop_pump, &task.task_key).await;
            return Err(start_error(format!(
                "the container did not start: {}",
                engine_message(&error)
            )));
        }
        tracing::debug!(
            task_key = %task.task_key,
            container = %name,
            created_ms,
            attached_ms,
            started_ms = began.elapsed().as_millis() as u64,
            "container started"
        );
        Ok(DockerTask {
            task_id,
            control,
            pump: Some((pump, stop_pump)),
            log: Some(log.clone()),
            exit: None,
            outcome: None,
            inner: self.inner.clone(),
        })
    }

    /// Makes sure `task.image` is present, pulling it when it is not.
    async fn ensure_image(&self, task: &TaskLaunch, log: &SharedLog) -> Result<(), Error> {
        let inner = &self.inner;
        let image = task.image.as_str();
        if image.is_empty() {
            return Err(Error::Start {
                task_key: task.task_key.clone(),
                reason: "the task names no container image".into(),
            });
        }
        if lock(&inner.present_images).contains(image) {
            return Ok(());
        }
        let gate = lock(&inner.pulls)
            .entry(image.to_string())
            .or_default()
            .clone();
        let _one_pull = gate.lock().await;
        if lock(&inner.present_images).contains(image) {
            return Ok(());
        }
        match inner.docker.inspect_image(image).await {
            Ok(_) => {}
            Err(error) if is_not_found(&error) => self.pull(task, log).await?,
            Err(error) => {
                return Err(Error::Start {
                    task_key: task.task_key.clone(),
                    reason: format!("cannot inspect image {image}: {}", engine_message(&error)),
                });
            }
        }
        lock(&inner.present_images).insert(image.to_string());
        Ok(())
    }

    async fn pull(&self, task: &TaskLaunch, log: &SharedLog) -> Result<(), Error> {
        let image = task.image.as_str();
        let reference = pull_reference(image);
        note(
            log,
            &format!("coracle: image {image} is not present locally; pulling {reference}"),
        );
        let cannot_pull = |message: String| Error::Start {
            task_key: task.task_key.clone(),
            reason: format!(
                "image {image} is not present locally and cannot be pulled: {message}; make it available with `docker pull {reference}` where a registry is reachable, `docker load` from a saved archive, or `docker tag <local image> {image}`"
            ),
        };
        let options = CreateImageOptions {
            from_image: Some(reference.clone()),
            ..Default::default()
        };
        let mut events = self.inner.docker.create_image(Some(options), None, None);
        let mut reported: HashSet<(String, String)> = HashSet::new();
        while let Some(event) = events.next().await {
            match event {
                Ok(info) => {
                    let status = info.status.unwrap_or_default();
                    let id = info.id.unwrap_or_default();
                    if status.is_empty()
                        || (QUIET_PULL_STATUSES.contains(&status.as_str())
                            && !reported.insert((id.clone(), status.clone())))
                    {
                        continue;
                    }
                    if id.is_empty() {
                        note(log, &format!("coracle: pull {reference}: {status}"));
                    } else {
                        note(log, &format!("coracle: pull {reference}: {id}: {status}"));
                    }
                }
                Err(error) => return Err(cannot_pull(engine_message(&error))),
            }
        }
        match self.inner.docker.inspect_image(image).await {
            Ok(_) => {
                note(log, &format!("coracle: pulled {reference}"));
                Ok(())
            }
            Err(error) => Err(cannot_pull(format!(
                "the pull ended but the image is still missing ({})",
                engine_message(&error)
            ))),
        }
    }

    /// Stops and removes every container this executor started that still exists; later
    /// launches fail with [`Error::ShutDown`].
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.shut_down.store(true, Ordering::SeqCst);
        let controls: Vec<Arc<TaskControl>> = lock(&inner.tasks).values().cloned().collect();
        futures_util::future::join_all(controls.into_iter().map(|control| async move {
            control.mark_canceled();
            control.remove().await;
        }))
        .await;
    }

    /// Time between SIGTERM and SIGKILL when a task is canceled (default 3 s); applies to
    /// cancels requested afterwards.
    pub fn set_cancel_grace(&self, grace: Duration) {
        self.inner
            .cancel_grace_ms
            .store(grace.as_millis() as u64, Ordering::Relaxed);
    }
}

/// A task's log, shared by its output pump and whoever writes notes into it; the file
/// closes when the last holder lets go.
type SharedLog = Arc<Mutex<ChunkedLog>>;

fn note(log: &SharedLog, message: &str) {
    lock(log).note(message);
}

/// The container's configuration for `task`.
fn container_config(task: &TaskLaunch) -> Result<ContainerCreateBody, String> {
    let me = identity();
    let mut labels: HashMap<String, String> = task
        .labels
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    labels.insert(LABEL_MANAGED.into(), "true".into());
    labels.insert(LABEL_PID.into(), me.pid.to_string());
    labels.insert(LABEL_BOOT.into(), me.boot.clone());
    labels.insert(LABEL_HOST.into(), me.host.clone());
    if let Some(start) = me.pid_start {
        labels.insert(LABEL_PID_START.into(), start.to_string());
    }
    labels.insert(LABEL_TASK_KEY.into(), task.task_key.clone());

    let resources = &task.resources;
    let mut host_config = HostConfig {
        mounts: Some(mounts(task)?),
        ..Default::default()
    };
    if let Some(millis) = resources.cpu_limit_millis {
        host_config.nano_cpus = Some(saturating_i64(millis.saturating_mul(1_000_000)));
    }
    if let Some(millis) = resources.cpu_request_millis {
        host_config.cpu_shares = Some(saturating_i64((millis.saturating_mul(1024) / 1000).max(2)));
    }
    if let Some(bytes) = resources.memory_limit_bytes {
        host_config.memory = Some(saturating_i64(bytes));
        // No swap beyond the limit, as on a cluster.
        host_config.memory_swap = Some(saturating_i64(bytes));
    }
    if let Some(bytes) = resources.memory_request_bytes {
        let bytes = match resources.memory_limit_bytes {
            Some(limit) => bytes.min(limit),
            None => bytes,
        };
        host_config.memory_reservation = Some(saturating_i64(bytes));
    }
    if !resources.gpu_devices.is_empty() {
        host_config.device_requests = Some(vec![DeviceRequest {
            driver: Some("nvidia".into()),
            device_ids: Some(resources.gpu_devices.clone()),
            capabilities: Some(vec![vec!["gpu".into()]]),
            ..Default::default()
        }]);
    }
    let working_dir = (!task.work_dir.as_os_str().is_empty())
        .then(|| path_string(&task.work_dir))
        .transpose()?;
    Ok(ContainerCreateBody {
        image: Some(task.image.clone()),
        entrypoint: Some(vec![task.argv[0].clone()]),
        cmd: Some(task.argv[1..].to_vec()),
        env: Some(
            task.env
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect(),
        ),
        working_dir,
        labels: Some(labels),
        attach_stdin: Some(false),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(false),
        tty: Some(false),
        host_config: Some(host_config),
        ..Default::default()
    })
}

/// Bind mounts: the task's volumes at their targets, and each shared path at its own path
/// (read-write). A shared path inside another one, or at a volume's target, is not mounted
/// again; one that does not exist yet is created as a directory, so that what the task writes
/// there reaches the host.
fn mounts(task: &TaskLaunch) -> Result<Vec<EngineMount>, String> {
    let mut mounts = Vec::new();
    let mut targets: HashSet<PathBuf> = HashSet::new();
    for mount in &task.mounts {
        if !mount.target.is_absolute() {
            return Err(format!(
                "volume mount path {} is not absolute",
                mount.target.display()
            ));
        }
        if !targets.insert(mount.target.clone()) {
            return Err(format!(
                "two volumes are mounted at {}",
                mount.target.display()
            ));
        }
        mounts.push(EngineMount {
            typ: Some(MountType::BIND),
            source: Some(path_string(&mount.source)?),
            target: Some(path_string(&mount.target)?),
            read_only: Some(mount.read_only),
            ..Default::default()
        });
    }
    let mut shared: Vec<&PathBuf> = task
        .shared_paths
        .iter()
        .filter(|path| path.is_absolute())
        .collect();
    shared.sort();
    shared.dedup();
    let mut kept: Vec<&PathBuf> = Vec::new();
    for path in shared {
        if targets.contains(path.as_path()) || kept.iter().any(|outer| path.starts_with(outer)) {
            continue;
        }
        if !path.exists() {
            std::fs::create_dir_all(path).map_err(|error| {
                format!("cannot create shared directory {}: {error}", path.display())
            })?;
        }
        kept.push(path);
        let path = path_string(path)?;
        mounts.push(EngineMount {
            typ: Some(MountType::BIND),
            source: Some(path.clone()),
            target: Some(path),
            read_only: Some(false),
            ..Default::default()
        });
    }
    Ok(mounts)
}

fn path_string(path: &Path) -> Result<String, String> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| format!("path {} is not valid UTF-8", path.display()))
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// `coracle-<task key, as Docker allows>-<8 random hex digits>`.
fn container_name(task_key: &str) -> String {
    let key: String = task_key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(120)
        .collect();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("coracle-{key}-{}", &random[..8])
}

/// The reference to pull: `image` with `:latest` when it names neither a tag nor a digest
/// (the engine would pull every tag otherwise).
fn pull_reference(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// The engine's own words for an error.
fn engine_message(error: &EngineError) -> String {
    match error {
        EngineError::DockerResponseServerError { message, .. } if !message.is_empty() => {
            message.clone()
        }
        EngineError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

fn is_not_found(error: &EngineError) -> bool {
    matches!(
        error,
        EngineError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Force-removes a container; one that is already gone (or going) is fine.
async fn remove_container(docker: &Docker, id: &str) -> Result<(), String> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(EngineError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(EngineError::DockerResponseServerError {
            status_code: 409,
            message,
        }) if message.contains("already in progress") => Ok(()),
        Err(error) => Err(engine_message(&error)),
    }
}

type OutputStream = Pin<Box<dyn Stream<Item = Result<LogOutput, EngineError>> + Send>>;

/// Copies the container's attached output into the log until it ends (or `stop` fires),
/// then writes the last partial lines.
async fn pump(mut output: OutputStream, log: SharedLog, mut stop: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            item = output.next() => match item {
                Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                    lock(&log).feed(LogStream::Stdout, &message);
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    lock(&log).feed(LogStream::Stderr, &message);
                }
                Some(Ok(LogOutput::StdIn { .. })) => {}
                Some(Err(error)) => {
                    tracing::debug!(%error, "container output stream ended with an error");
                    break;
                }
                None => break,
            },
            _ = &mut stop => break,
        }
    }
    lock(&log).finish();
}

/// Waits (a bounded time) for the pump to reach the end of the output, then stops it.
async fn drain(mut pump: JoinHandle<()>, stop: oneshot::Sender<()>, task_key: &str) {
    if tokio::time::timeout(LOG_DRAIN_TIMEOUT, &mut pump)
        .await
        .is_err()
    {
        tracing::warn!(%task_key, "the container's output did not end after it exited; log closed without the rest");
        let _ = stop.send(());
        let _ = pump.await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Default)]
struct ControlState {
    /// The container's exit was seen, or the task was dropped.
    finished: bool,
    cancel_requested: bool,
    removed: bool,
}

struct TaskControl {
    task_key: String,
    id: String,
    name: String,
    docker: Docker,
    state: Mutex<ControlState>,
    grace_ms: Arc<AtomicU64>,
    runtime: tokio::runtime::Handle,
}

impl TaskControl {
    /// SIGTERM now, SIGKILL after the grace period unless the container ended.
    fn cancel(self: &Arc<Self>) {
        {
            let mut state = lock(&self.state);
            if state.finished || state.cancel_requested {
                return;
            }
            state.cancel_requested = true;
        }
        let grace = Duration::from_millis(self.grace_ms.load(Ordering::Relaxed));
        tracing::debug!(task_key = %self.task_key, container = %self.name, ?grace, "canceling task: SIGTERM to its container");
        let control = self.clone();
        self.runtime.spawn(async move {
            control.signal("SIGTERM").await;
            tokio::time::sleep(grace).await;
            if !lock(&control.state).finished {
                control.signal("SIGKILL").await;
            }
        });
    }

    async fn signal(&self, signal: &str) {
        let options = KillContainerOptions {
            signal: signal.to_string(),
        };
        if let Err(error) = self.docker.kill_container(&self.id, Some(options)).await {
            // Mostly: it is not running any more.
            tracing::debug!(task_key = %self.task_key, container = %self.name, %signal, error = %engine_message(&error), "cannot signal container");
        }
    }

    fn mark_canceled(&self) {
        let mut state = lock(&self.state);
        if !state.finished {
            state.cancel_requested = true;
        }
    }

    /// Marks the container ended; returns whether a cancel was requested before.
    fn finish(&self) -> bool {
        let mut state = lock(&self.state);
        state.finished = true;
        state.cancel_requested
    }

    /// Force-removes the container (killing it if it runs); once.
    async fn remove(&self) {
        if lock(&self.state).removed {
            return;
        }
        match remove_container(&self.docker, &self.id).await {
            Ok(()) => lock(&self.state).removed = true,
            Err(error) => {
                tracing::warn!(task_key = %self.task_key, container = %self.name, %error, "cannot remove container");
            }
        }
    }
}

/// A started container. Dropping it before [`DockerTask::wait`] returned removes the
/// container (killing the task).
pub struct DockerTask {
    task_id: u64,
    control: Arc<TaskControl>,
    pump: Option<(JoinHandle<()>, oneshot::Sender<()>)>,
    log: Option<SharedLog>,
    /// The container's exit code once seen (`Err`: we lost track of it).
    exit: Option<Result<i64, String>>,
    outcome: Option<ExitOutcome>,
    inner: Arc<Inner>,
}

/// Stops one container; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct DockerCanceler {
    control: Arc<TaskControl>,
}

impl DockerTask {
    pub fn canceler(&self) -> DockerCanceler {
        DockerCanceler {
            control: self.control.clone(),
        }
    }

    /// The container's id.
    pub fn container_id(&self) -> &str {
        &self.control.id
    }

    /// The container's name (`coracle-<task key>-<random>`).
    pub fn container_name(&self) -> &str {
        &self.control.name
    }

    /// Waits for the container to exit, then removes it; the log file is complete and
    /// closed when this returns. Calling it again returns the same outcome.
    pub async fn wait(&mut self) -> ExitOutcome {
        if let Some(outcome) = &self.outcome {
            return outcome.clone();
        }
        let began = std::time::Instant::now();
        if self.exit.is_none() {
            self.exit = Some(wait_exit(&self.control.docker, &self.control.id).await);
        }
        let exited_ms = began.elapsed().as_millis() as u64;
        let canceled = self.control.finish();
        if let Some((pump, stop)) = self.pump.take() {
            drain(pump, stop, &self.control.task_key).await;
        }
        let exit = self
            .exit
            .clone()
            .unwrap_or_else(|| Err("no exit code".into()));
        let message = match &exit {
            Ok(0) => None,
            _ if canceled => None,
            Ok(_) => self.oom_killed().await.then(|| {
                "coracle: the container was killed for exceeding its memory limit".to_string()
            }),
            Err(reason) => Some(format!(
                "coracle: lost track of the container {}: {reason}",
                self.control.name
            )),
        };
        if let Some(log) = self.log.take() {
            if let Some(message) = message {
                note(&log, &message);
            }
            // The pump has ended: this was the last holder, the file closes.
            drop(log);
        }
        let drained_ms = began.elapsed().as_millis() as u64;
        self.control.remove().await;
        lock(&self.inner.tasks).remove(&self.task_id);
        tracing::debug!(
            task_key = %self.control.task_key,
            container = %self.control.name,
            exited_ms,
            drained_ms,
            removed_ms = began.elapsed().as_millis() as u64,
            "container ended and removed"
        );
        let outcome = match exit {
            _ if canceled => ExitOutcome::Killed,
            Ok(code) => ExitOutcome::Exited(i32::try_from(code).unwrap_or(-1)),
            Err(_) => ExitOutcome::Signaled(libc::SIGKILL),
        };
        self.outcome = Some(outcome.clone());
        outcome
    }

    async fn oom_killed(&self) -> bool {
        match self
            .control
            .docker
            .inspect_container(&self.control.id, None)
            .await
        {
            Ok(details) => details
                .state
                .and_then(|state| state.oom_killed)
                .unwrap_or(false),
            Err(error) => {
                tracing::debug!(task_key = %self.control.task_key, error = %engine_message(&error), "cannot inspect the exited container");
                false
            }
        }
    }
}

/// The container's exit code, once it is not running.
async fn wait_exit(docker: &Docker, id: &str) -> Result<i64, String> {
    let options = WaitContainerOptions {
        condition: "not-running".into(),
    };
    let mut answers = docker.wait_container(id, Some(options));
    match answers.next().await {
        Some(Ok(answer)) => Ok(answer.status_code),
        Some(Err(EngineError::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(error)) => Err(engine_message(&error)),
        None => Err("the engine closed the wait without an exit code".into()),
    }
}

impl Drop for DockerTask {
    fn drop(&mut self) {
        if self.outcome.is_some() {
            return;
        }
        self.control.mark_canceled();
        self.control.finish();
        if let Some((pump, stop)) = self.pump.take() {
            let _ = stop.send(());
            drop(pump);
        }
        lock(&self.inner.tasks).remove(&self.task_id);
        let control = self.control.clone();
        self.control.runtime.spawn(async move {
            control.remove().await;
        });
    }
}

impl DockerCanceler {
    /// SIGTERM to the container's main process, SIGKILL after the grace period if it still
    /// runs (as `docker stop`); the task then ends as [`ExitOutcome::Killed`]. Does nothing
    /// once the task has ended.
    pub fn cancel(&self) {
        self.control.cancel();
    }
}

impl std::fmt::Debug for DockerExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerExecutor")
            .field("host", &self.inner.host)
            .field("running_tasks", &lock(&self.inner.tasks).len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DockerTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerTask")
            .field("task_key", &self.control.task_key)
            .field("container", &self.control.name)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DockerCanceler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerCanceler")
            .field("task_key", &self.control.task_key)
            .field("container", &self.control.name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_docker_rules() {
        let name = container_name("run 1/train:model@2 é");
        assert!(name.starts_with("coracle-run-1-train-model-2---"), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        );
        assert!(container_name(&"x".repeat(500)).len() < 200);
    }

    #[test]
    fn pull_references_name_a_tag() {
        assert_eq!(pull_reference("alpine"), "alpine:latest");
        assert_eq!(pull_reference("python:3.11"), "python:3.11");
        assert_eq!(
            pull_reference("localhost:5000/team/img"),
            "localhost:5000/team/img:latest"
        );
        assert_eq!(pull_reference("img@sha256:abc"), "img@sha256:abc");
    }

    #[test]
    fn leftovers_are_containers_of_gone_processes_of_this_host() {
        let me = Identity {
            pid: std::process::id(),
            boot: "me".into(),
            host: "here".into(),
            pid_start: process_start_time(std::process::id()),
        };
        let labels = |pid: u32, boot: &str, host: &str, start: Option<u64>| {
            let mut labels = HashMap::from([
                (LABEL_PID.to_string(), pid.to_string()),
                (LABEL_BOOT.to_string(), boot.to_string()),
                (LABEL_HOST.to_string(), host.to_string()),
            ]);
            if let Some(start) = start {
                labels.insert(LABEL_PID_START.to_string(), start.to_string());
            }
            labels
        };
        let parent = std::os::unix::process::parent_id();
        let parent_start = process_start_time(parent);
        // Ours.
        assert!(!is_leftover(
            &labels(me.pid, "me", "here", me.pid_start),
            &me
        ));
        // Our pid, another boot: a dead predecessor.
        assert!(is_leftover(&labels(me.pid, "old", "here", None), &me));
        // A live process (our parent) that made it.
        assert!(!is_leftover(
            &labels(parent, "p", "here", parent_start),
            &me
        ));
        // That pid now belongs to a later process.
        assert!(is_leftover(
            &labels(parent, "p", "here", parent_start.map(|s| s + 1)),
            &me
        ));
        // No such process.
        assert!(is_leftover(
            &labels(u32::MAX - 1, "gone", "here", None),
            &me
        ));
        // Another host's.
        assert!(!is_leftover(
            &labels(u32::MAX - 1, "gone", "there", None),
            &me
        ));
    }
}
