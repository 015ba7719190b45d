//! Runs: the API routes (`/runs…`), the JSON shape of a run and of its tasks, and the executor
//! that carries out runs created through the API in this process (and resumes the server's
//! unfinished runs when it starts).
//!
//! A run made here is stored PENDING with `driver = 'server'` before anything runs, then driven
//! by the same orchestrator as `coracle run`. When the server stops (SIGTERM, Ctrl-C, a crash),
//! its runs stay as the store has them; [`resume_unfinished`] at the next start carries each on
//! (`Orchestrator::resume`): attempts that were running are recorded FAILED (`interrupted`) and
//! run again, tasks that succeeded are not.
//!
//! Routes (under `/apis/v2beta1`):
//! - `POST /runs`, `GET /runs`, `GET /runs/{id}`, `DELETE /runs/{id}`
//! - `POST /runs/{id}:archive | :unarchive | :terminate | :retry`
//! - `GET /runs/{id}/nodes/{task_id}/artifacts/{output_key}:read` → `{"data": base64}`

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use coracle_orchestrator::Progress;
use coracle_spec::PipelineSpec;
use coracle_store::run_api::{
    ApiRun, ApiRunSummary, DRIVER_SERVER, RunApiFields, RunStateChange, StorageState,
};
use coracle_store::{RunRecord, RunState, TaskRecord, TaskState};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use crate::list::{ApiQuery, ListParams, plain_id, split_action};
use crate::wire::{api_time, field, kind_of};
use crate::{ApiError, AppState};

/// The largest artifact file `…:read` returns.
const MAX_ARTIFACT_READ_BYTES: u64 = 32 << 20;

/// How long deleting a live run waits for it to stop.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// gRPC codes of a run's `error`.
const CODE_CANCELLED: u16 = 1;
const CODE_UNKNOWN: u16 = 2;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs", get(list_runs).post(create_run_handler))
        .route(
            "/runs/{run_id}",
            get(get_run).delete(delete_run).post(run_action),
        )
        .route(
            "/runs/{run_id}/nodes/{node_id}/artifacts/{artifact}",
            get(read_artifact),
        )
}

// ---- the runs this server drives ------------------------------------------------------------

/// The runs this server is driving, by run id: what terminate, delete and shutdown need.
#[derive(Default)]
pub struct Registry {
    live: Mutex<HashMap<String, LiveRun>>,
}

struct LiveRun {
    cancel: watch::Sender<bool>,
    /// Becomes true when the run's driver ends (or closes if it was aborted).
    done: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// What a driver does.
enum Job {
    /// A run recorded by [`create_run`].
    New {
        record: Box<RunRecord>,
        spec: Arc<PipelineSpec>,
        arguments: BTreeMap<String, Value>,
    },
    /// A failed or canceled run again, under the same id.
    Retry,
    /// A run left unfinished by an earlier server.
    Resume,
}

/// What a driver reports once it has started the run (or failed to).
type Started = oneshot::Receiver<Result<(), coracle_orchestrator::Error>>;

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveRun>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this server is driving the run.
    pub fn is_live(&self, run_id: &str) -> bool {
        self.lock().contains_key(run_id)
    }

    /// How many runs this server is driving.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tells the run's driver to cancel it; false if this server is not driving it.
    fn cancel(&self, run_id: &str) -> bool {
        match self.lock().get(run_id) {
            Some(live) => {
                let _ = live.cancel.send(true);
                true
            }
            None => false,
        }
    }

    /// Waits (at most `limit`) until this server no longer drives the run.
    async fn wait_until_stopped(&self, run_id: &str, limit: Duration) -> bool {
        let done = self.lock().get(run_id).map(|live| live.done.clone());
        let Some(mut done) = done else {
            return true;
        };
        tokio::time::timeout(limit, done.wait_for(|done| *done))
            .await
            .is_ok()
    }

    /// Starts driving a run in the background. Refused (412) while this server already
    /// drives it.
    fn launch(&self, state: &AppState, run_id: &str, job: Job) -> Result<Started, ApiError> {
        let mut live = self.lock();
        if live.contains_key(run_id) {
            return Err(ApiError::precondition(format!(
                "run {run_id:?} is still running in this server"
            )));
        }
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let (done_tx, done_rx) = watch::channel(false);
        let (started_tx, started_rx) = oneshot::channel();
        let state = state.clone();
        let id = run_id.to_owned();
        // The lock is held until the entry is in, so the driver's own removal comes after.
        let task = tokio::spawn(async move {
            drive(&state, &id, job, cancel_rx, started_tx).await;
            state.runs.lock().remove(&id);
            let _ = done_tx.send(true);
        });
        live.insert(
            run_id.to_owned(),
            LiveRun {
                cancel: cancel_tx,
                done: done_rx,
                task,
            },
        );
        Ok(started_rx)
    }

    /// Stops driving every run, leaving each as the store has it (RUNNING, `driver =
    /// 'server'`): the next start resumes them. The tasks' processes are the executor's to
    /// stop (`ProcessExecutor::shutdown`), after this.
    pub async fn shutdown(&self) {
        let runs: Vec<(String, LiveRun)> = self.lock().drain().collect();
        for (run_id, live) in runs {
            live.task.abort();
            let _ = live.task.await;
            tracing::info!(run_id = %run_id, "left the run to be resumed at the next start");
        }
    }
}

/// Drives one run to its end, reporting when it has started.
async fn drive(
    state: &AppState,
    run_id: &str,
    job: Job,
    cancel: watch::Receiver<bool>,
    started: oneshot::Sender<Result<(), coracle_orchestrator::Error>>,
) {
    let (progress_tx, progress_rx) = mpsc::unbounded_channel();
    let options = state.run_options.clone();
    let orchestrator = state.orchestrator.clone();
    let run = async move {
        match job {
            Job::New {
                record,
                spec,
                arguments,
            } => {
                orchestrator
                    .run_record(*record, spec, arguments, options, progress_tx, cancel)
                    .await
            }
            Job::Retry => {
                orchestrator
                    .retry(run_id, options, progress_tx, cancel)
                    .await
            }
            Job::Resume => {
                orchestrator
                    .resume(run_id, options, progress_tx, cancel)
                    .await
            }
        }
    };
    tokio::pin!(run);
    let mut started = Some(started);
    // Progress is read only until the run has started: nobody watches the rest.
    let mut progress_rx = Some(progress_rx);
    let result = loop {
        let Some(receiver) = progress_rx.as_mut() else {
            break (&mut run).await;
        };
        tokio::select! {
            result = &mut run => break result,
            message = receiver.recv() => match message {
                Some(Progress::RunStarted { .. }) => {
                    if let Some(started) = started.take() {
                        let _ = started.send(Ok(()));
                    }
                    progress_rx = None;
                }
                Some(_) => {}
                None => progress_rx = None,
            },
        }
    };
    match result {
        Ok(outcome) => {
            tracing::info!(run_id = %run_id, state = ?outcome.state, "run ended");
            if let Some(started) = started.take() {
                let _ = started.send(Ok(()));
            }
        }
        Err(error) => {
            tracing::warn!(run_id = %run_id, error = %error, "run stopped with an error");
            if let Some(started) = started.take() {
                let _ = started.send(Err(error));
            }
        }
    }
}

/// Carries on with every run an earlier server left unfinished (PENDING, RUNNING or
/// CANCELING with `driver = 'server'`). Returns their ids.
pub async fn resume_unfinished(state: &AppState) -> Result<Vec<String>, ApiError> {
    let run_ids = state.store.unfinished_run_ids(DRIVER_SERVER).await?;
    for run_id in &run_ids {
        tracing::info!(run_id = %run_id, "resuming a run the server left unfinished");
        state.runs.launch(state, run_id, Job::Resume)?;
    }
    Ok(run_ids)
}

// ---- creating a run -------------------------------------------------------------------------

/// Where a new run's pipeline comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum PipelineSource {
    /// A compiled spec: the spec object, or `{pipeline_spec, platform_spec}`, or YAML text.
    Spec(Value),
    /// A stored pipeline version; its newest version when `pipeline_version_id` is `None`.
    Version {
        pipeline_id: String,
        pipeline_version_id: Option<String>,
    },
}

/// A run to create: what `POST /runs` takes, and what a recurring run fires.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRun {
    /// Empty: `{pipeline name}-{UTC time}`.
    pub display_name: String,
    pub description: String,
    /// `None` (or empty): the Default experiment.
    pub experiment_id: Option<String>,
    pub source: PipelineSource,
    /// The pipeline's parameters, checked and coerced against its root inputs.
    pub parameters: Map<String, Value>,
    /// A local directory (or `file://` URI); `None`: the spec's, else `{home}/artifacts`.
    pub pipeline_root: Option<String>,
    pub service_account: String,
    /// The recurring run that fired this run.
    pub recurring_run_id: Option<String>,
    /// When the recurring run meant this run to start.
    pub scheduled_at: Option<DateTime<Utc>>,
}

impl NewRun {
    /// Reads a `V2beta1Run` body (snake_case or camelCase fields): `display_name`,
    /// `description`, `experiment_id`, `pipeline_spec` or `pipeline_version_reference`
    /// (`{pipeline_id, pipeline_version_id}`), `runtime_config{parameters, pipeline_root}`,
    /// `service_account`. Other fields (ids, states, times a client echoes back) are ignored.
    pub fn from_json(body: &Value) -> Result<NewRun, ApiError> {
        let Value::Object(body) = body else {
            return Err(ApiError::invalid(format!(
                "invalid run: expected a JSON object, found {}",
                kind_of(body)
            )));
        };
        let text = |names: &[&str]| string_field(body, names, "run");
        let display_name = text(&["display_name", "displayName"])?.unwrap_or_default();
        let description = text(&["description"])?.unwrap_or_default();
        let experiment_id = text(&["experiment_id", "experimentId"])?.filter(|id| !id.is_empty());
        let service_account = text(&["service_account", "serviceAccount"])?.unwrap_or_default();

        let spec = field(body, &["pipeline_spec", "pipelineSpec"]);
        let reference = field(
            body,
            &["pipeline_version_reference", "pipelineVersionReference"],
        );
        let legacy_version = text(&["pipeline_version_id", "pipelineVersionId"])?;
        let source = match (spec, reference) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "invalid run: give either pipeline_spec or pipeline_version_reference, \
                     not both",
                ));
            }
            (Some(spec), None) => PipelineSource::Spec(spec.clone()),
            (None, Some(Value::Object(reference))) => {
                let at = "run.pipeline_version_reference";
                let pipeline_id = string_field(reference, &["pipeline_id", "pipelineId"], at)?
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| {
                        ApiError::invalid(format!("invalid {at}: pipeline_id is missing"))
                    })?;
                let pipeline_version_id =
                    string_field(reference, &["pipeline_version_id", "pipelineVersionId"], at)?
                        .filter(|id| !id.is_empty());
                PipelineSource::Version {
                    pipeline_id,
                    pipeline_version_id,
                }
            }
            (None, Some(other)) => {
                return Err(ApiError::invalid(format!(
                    "invalid run.pipeline_version_reference: expected an object, found {}",
                    kind_of(other)
                )));
            }
            (None, None) if legacy_version.as_deref().is_some_and(|v| !v.is_empty()) => {
                return Err(ApiError::invalid(
                    "invalid run: pipeline_version_id alone is not enough; give \
                     pipeline_version_reference {pipeline_id, pipeline_version_id}",
                ));
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "invalid run: it needs a pipeline_spec or a pipeline_version_reference",
                ));
            }
        };

        let (parameters, pipeline_root) = match field(body, &["runtime_config", "runtimeConfig"]) {
            None => (Map::new(), None),
            Some(Value::Object(config)) => {
                let at = "run.runtime_config";
                let parameters = match field(config, &["parameters"]) {
                    None => Map::new(),
                    Some(Value::Object(parameters)) => parameters.clone(),
                    Some(other) => {
                        return Err(ApiError::invalid(format!(
                            "invalid {at}.parameters: expected an object, found {}",
                            kind_of(other)
                        )));
                    }
                };
                let root = string_field(config, &["pipeline_root", "pipelineRoot"], at)?
                    .filter(|root| !root.is_empty());
                (parameters, root)
            }
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "invalid run.runtime_config: expected an object, found {}",
                    kind_of(other)
                )));
            }
        };
        Ok(NewRun {
            display_name,
            description,
            experiment_id,
            source,
            parameters,
            pipeline_root,
            service_account,
            recurring_run_id: None,
            scheduled_at: None,
        })
    }
}

/// Creates a run and starts it in this server: checks the pipeline and its parameters
/// (a bad one is a 400 and nothing is stored), records the run PENDING with `driver =
/// 'server'` in its experiment, and hands it to the orchestrator, which makes it RUNNING.
/// Returns the run as `GET /runs/{id}` shows it.
/// Checks that `request` could run now (its spec or version, parameters, pipeline root, and
/// what the engine supports), storing nothing: what a recurring run is checked with when it is
/// created, so that a bad one is refused then rather than failing at every firing.
pub async fn check_new_run(state: &AppState, request: &NewRun) -> Result<(), ApiError> {
    prepare(state, request).await.map(|_| ())
}

/// The submitted spec as given, the parsed spec and the resolved arguments of `request`.
async fn prepare(
    state: &AppState,
    request: &NewRun,
) -> Result<(Value, Arc<PipelineSpec>, BTreeMap<String, Value>), ApiError> {
    let spec_value = match &request.source {
        PipelineSource::Spec(value) => value.clone(),
        PipelineSource::Version {
            pipeline_id,
            pipeline_version_id,
        } => {
            let found = state
                .store
                .pipeline_version_spec_text(pipeline_id, pipeline_version_id.as_deref())
                .await?;
            let Some((_, text)) = found else {
                return Err(ApiError::not_found(match pipeline_version_id {
                    Some(version) => {
                        format!(
                            "pipeline version {version:?} of pipeline {pipeline_id:?} not found"
                        )
                    }
                    None => format!("pipeline {pipeline_id:?} not found, or it has no versions"),
                }));
            };
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
    };
    let spec = parse_spec(&spec_value)?;
    let given: BTreeMap<String, Value> = request.parameters.clone().into_iter().collect();
    let arguments = coracle_spec::resolve_arguments(&spec, &given).map_err(|issues| {
        ApiError::invalid(format!(
            "invalid run.runtime_config.parameters: {}",
            one_line(&issues.to_string())
        ))
    })?;
    if let Some(root) = &request.pipeline_root {
        check_pipeline_root(root)?;
    }
    let spec = Arc::new(spec);
    check_runnable(state, &spec, &arguments)?;
    Ok((spec_value, spec, arguments))
}

pub async fn create_run(state: &AppState, request: NewRun) -> Result<Value, ApiError> {
    let (spec_value, spec, arguments) = prepare(state, &request).await?;
    let experiment_id = match &request.experiment_id {
        Some(id) => id.clone(),
        None => state.store.default_experiment_id().await?,
    };
    let mut options = state.run_options.clone();
    options.pipeline_root = request.pipeline_root.clone();
    options.run_name = Some(request.display_name.clone()).filter(|name| !name.is_empty());
    let (mut record, _note) = coracle_orchestrator::new_run_record(&spec, &arguments, &options);
    // Kept as the client sent it (the engine's model would add every defaulted field).
    if let Some(mut original) = submitted_spec(&spec_value) {
        // The platforms document stays with the stored spec, so that a retried or resumed
        // run keeps its volumes and secrets; the API shows it beside the spec, as sent.
        if let (Some(platforms), Value::Object(map)) = (&spec.platforms, &mut original) {
            map.insert(
                "platforms".into(),
                serde_json::to_value(platforms).unwrap_or(Value::Null),
            );
        }
        record.pipeline_spec = original;
    }
    let (pipeline_id, pipeline_version_id) = match &request.source {
        PipelineSource::Spec(_) => (None, None),
        PipelineSource::Version { pipeline_id, .. } => {
            // The version actually used (the newest, when none was named).
            let version = match &request.source {
                PipelineSource::Version {
                    pipeline_version_id: Some(version),
                    ..
                } => Some(version.clone()),
                _ => state
                    .store
                    .pipeline_version_spec_text(pipeline_id, None)
                    .await?
                    .map(|(version, _)| version),
            };
            (Some(pipeline_id.clone()), version)
        }
    };
    let api = RunApiFields {
        experiment_id: Some(experiment_id),
        description: request.description.clone(),
        storage_state: StorageState::Available,
        namespace: String::new(),
        pipeline_id,
        pipeline_version_id,
        recurring_run_id: request.recurring_run_id.clone(),
        service_account: request.service_account.clone(),
        scheduled_at: request.scheduled_at,
        driver: DRIVER_SERVER.to_owned(),
    };
    state.store.insert_api_run(&record, &api).await?;
    let run_id = record.run_id.clone();
    tracing::info!(run_id = %run_id, name = %record.display_name, "run created");
    state.runs.launch(
        state,
        &run_id,
        Job::New {
            record: Box::new(record),
            spec,
            arguments,
        },
    )?;
    run_view(state, &run_id).await
}

/// A spec as the API carries it: the spec object, `{pipeline_spec, platform_spec}` as the SDK
/// sends a spec with a platform part, or the text of a pipeline file. Checked as `coracle run`
/// checks a file.
fn parse_spec(value: &Value) -> Result<PipelineSpec, ApiError> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Object(object) if object.contains_key("pipeline_spec") => {
            let spec = &object["pipeline_spec"];
            match object.get("platform_spec") {
                Some(Value::Object(platform)) if !platform.is_empty() => {
                    format!("{spec}\n---\n{}", Value::Object(platform.clone()))
                }
                _ => spec.to_string(),
            }
        }
        Value::Object(_) => value.to_string(),
        other => {
            return Err(ApiError::invalid(format!(
                "invalid run.pipeline_spec: expected an object, found {}",
                kind_of(other)
            )));
        }
    };
    let pipeline = coracle_spec::load_bytes("run.pipeline_spec", text.as_bytes()).map_err(
        |error| match error {
            coracle_spec::Error::Format { message, .. } => {
                ApiError::invalid(format!("invalid run.pipeline_spec: {message}"))
            }
            coracle_spec::Error::Invalid { issues, .. } => ApiError::invalid(format!(
                "invalid run.pipeline_spec: {}",
                one_line(&issues.to_string())
            )),
            other => ApiError::invalid(format!("invalid run.pipeline_spec: {other}")),
        },
    )?;
    Ok(pipeline.spec)
}

/// The spec object of a spec as the API carries it (`None` for YAML text).
fn submitted_spec(value: &Value) -> Option<Value> {
    match value {
        Value::Object(object) if object.contains_key("pipeline_spec") => {
            Some(object["pipeline_spec"].clone()).filter(Value::is_object)
        }
        Value::Object(_) => Some(value.clone()),
        _ => None,
    }
}

/// Refuses (400) what the engine cannot run, before anything is stored.
fn check_runnable(
    state: &AppState,
    spec: &Arc<PipelineSpec>,
    arguments: &BTreeMap<String, Value>,
) -> Result<(), ApiError> {
    let config = coracle_engine::RunConfig {
        run_id: String::new(),
        run_name: String::new(),
        pipeline_root: String::new(),
        run_dir: String::new(),
        create_time: String::new(),
        parallelism: 1,
        capacity: state.run_options.capacity,
        cache_enabled: false,
        resume: Default::default(),
    };
    coracle_engine::Engine::start(Arc::clone(spec), arguments.clone(), config)
        .map(|_| ())
        .map_err(|error| ApiError::invalid(format!("cannot run this pipeline: {error}")))
}

/// A pipeline root must be a local absolute path (or a `file://` URI).
fn check_pipeline_root(root: &str) -> Result<(), ApiError> {
    let path = root.strip_prefix("file://").unwrap_or(root);
    if root.contains("://") && !root.starts_with("file://") {
        return Err(ApiError::invalid(format!(
            "invalid run.runtime_config.pipeline_root {root:?}: only local directories \
             (an absolute path or a file:// URI) are supported"
        )));
    }
    if !std::path::Path::new(path).is_absolute() {
        return Err(ApiError::invalid(format!(
            "invalid run.runtime_config.pipeline_root {root:?}: it must be an absolute path"
        )));
    }
    Ok(())
}

// ---- handlers -------------------------------------------------------------------------------

async fn create_run_handler(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("invalid run: the body is not JSON: {e}")))?;
    let request = NewRun::from_json(&body)?;
    Ok(Json(create_run(&state, request).await?))
}

async fn get_run(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let run_id = plain_id(&run_id, "GET /runs/{id}")?;
    Ok(Json(run_view(&state, run_id).await?))
}

/// `GET /runs` query parameters.
#[derive(Debug, Default, Deserialize)]
struct ListRunsQuery {
    #[serde(flatten)]
    list: ListParams,
    experiment_id: Option<String>,
    /// Accepted and ignored: this server has one user.
    #[allow(dead_code)]
    namespace: Option<String>,
}

async fn list_runs(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListRunsQuery>,
) -> Result<Json<Value>, ApiError> {
    let request = query.list.to_request()?;
    let experiment_id = query.experiment_id.as_deref().filter(|id| !id.is_empty());
    let page = state.store.list_api_runs(&request, experiment_id).await?;
    let runs: Vec<Value> = page.items.iter().map(summary_json).collect();
    let mut body = json!({"total_size": page.total_size});
    if !runs.is_empty() {
        body["runs"] = Value::Array(runs);
    }
    if !page.next_page_token.is_empty() {
        body["next_page_token"] = Value::String(page.next_page_token);
    }
    Ok(Json(body))
}

async fn delete_run(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let run_id = plain_id(&run_id, "DELETE /runs/{id}")?;
    delete(&state, run_id).await?;
    Ok(Json(json!({})))
}

/// Deletes a run, stopping it first when this server drives it; its logs and task
/// directories go with it, its artifacts under the pipeline root stay.
pub(crate) async fn delete(state: &AppState, run_id: &str) -> Result<(), ApiError> {
    let run = existing_run(state, run_id).await?;
    if state.runs.cancel(run_id) {
        let _ = state.store.request_cancel(run_id).await;
        if !state.runs.wait_until_stopped(run_id, STOP_WAIT).await {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("run {run_id:?} is still stopping; try again"),
            ));
        }
    }
    state.store.delete_run(run_id).await?;
    let run_dir = state.home.join("runs").join(&run.run.run_id);
    if let Err(error) = tokio::fs::remove_dir_all(&run_dir).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(run_id = %run_id, error = %error, "could not remove the run's directory");
    }
    Ok(())
}

/// `POST /runs/{id}:archive | :unarchive | :terminate | :retry`.
async fn run_action(
    State(state): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (run_id, action) = split_action(&segment);
    let Some(action) = action else {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("POST /runs/{run_id} is not an API route; did you mean /runs/{run_id}:retry?"),
        ));
    };
    match action {
        "archive" => set_storage_state(&state, run_id, StorageState::Archived).await,
        "unarchive" => set_storage_state(&state, run_id, StorageState::Available).await,
        "terminate" => terminate(&state, run_id).await,
        "retry" => retry(&state, run_id).await,
        other => Err(ApiError::not_found(format!(
            "no API route POST /runs/{{id}}:{other}: the run actions are archive, unarchive, \
             terminate and retry"
        ))),
    }
    .map(Json)
}

pub(crate) async fn set_storage_state(
    state: &AppState,
    run_id: &str,
    storage_state: StorageState,
) -> Result<Value, ApiError> {
    state
        .store
        .set_run_storage_state(run_id, storage_state)
        .await?;
    Ok(json!({}))
}

/// Asks the run to stop: it becomes CANCELING, its tasks are stopped and it ends CANCELED.
/// A run driven elsewhere (`coracle run`) is stopped by its own process, which watches the
/// store.
pub(crate) async fn terminate(state: &AppState, run_id: &str) -> Result<Value, ApiError> {
    let run_state = state.store.request_cancel(run_id).await?;
    if run_state.is_terminal() {
        return Err(ApiError::precondition(format!(
            "run {run_id:?} already ended {run_state}; only a pending or running run can be \
             terminated"
        )));
    }
    state.runs.cancel(run_id);
    Ok(json!({}))
}

/// Runs a failed or canceled run again under the same id, in this server: tasks that
/// succeeded are kept. Answers once the run is RUNNING again.
pub(crate) async fn retry(state: &AppState, run_id: &str) -> Result<Value, ApiError> {
    let run = existing_run(state, run_id).await?;
    if state.runs.is_live(run_id) && run.run.state.is_terminal() {
        // Its driver is writing its last records.
        state
            .runs
            .wait_until_stopped(run_id, Duration::from_secs(5))
            .await;
    }
    if !matches!(run.run.state, RunState::Failed | RunState::Canceled) {
        return Err(ApiError::precondition(format!(
            "run {run_id:?} is {}; only a failed or canceled run can be retried",
            run.run.state
        )));
    }
    state.store.set_run_driver(run_id, DRIVER_SERVER).await?;
    let started = state.runs.launch(state, run_id, Job::Retry)?;
    match started.await {
        Ok(Ok(())) | Err(_) => Ok(json!({})),
        Ok(Err(error @ coracle_orchestrator::Error::NotRetryable { .. })) => {
            Err(ApiError::precondition(error.to_string()))
        }
        Ok(Err(coracle_orchestrator::Error::Engine(error))) => Err(ApiError::invalid(format!(
            "cannot run this pipeline: {error}"
        ))),
        Ok(Err(error)) => Err(ApiError::internal(format!(
            "failed to retry run {run_id:?}: {error}"
        ))),
    }
}

/// `GET /runs/{run_id}/nodes/{task_id}/artifacts/{output_key}:read`: the content of a
/// task's output artifact file, base64 in `data`.
async fn read_artifact(
    State(state): State<AppState>,
    Path((run_id, node_id, artifact)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (name, action) = split_action(&artifact);
    if action != Some("read") {
        return Err(ApiError::not_found(format!(
            "no API route GET /runs/{{id}}/nodes/{{node_id}}/artifacts/{artifact}: use \
             …/artifacts/{name}:read"
        )));
    }
    let (_, bytes) = artifact_file(&state, &run_id, &node_id, name).await?;
    Ok(Json(json!({
        "data": base64::engine::general_purpose::STANDARD.encode(bytes),
    })))
}

/// The path and content of the file of output artifact `name` of task `node_id` (its latest
/// attempt) of a run: 404 when there is no such artifact or file, 412 for a directory, 413
/// for a file over [`MAX_ARTIFACT_READ_BYTES`].
pub(crate) async fn artifact_file(
    state: &AppState,
    run_id: &str,
    node_id: &str,
    name: &str,
) -> Result<(std::path::PathBuf, Vec<u8>), ApiError> {
    existing_run(state, run_id).await?;
    let tasks = state.store.list_tasks(run_id).await?;
    let task = tasks
        .iter()
        .filter(|task| task.task_id == node_id)
        .max_by_key(|task| task.attempt)
        .ok_or_else(|| {
            ApiError::not_found(format!("run {run_id:?} has no task (node) {node_id:?}"))
        })?;
    let uri = task.outputs["artifacts"][name]
        .as_array()
        .and_then(|list| list.first())
        .and_then(|artifact| artifact["uri"].as_str())
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "task {node_id:?} of run {run_id:?} has no output artifact {name:?}"
            ))
        })?;
    let path = std::path::PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri));
    let metadata = tokio::fs::metadata(&path).await.map_err(|_| {
        ApiError::not_found(format!(
            "the file of artifact {name:?} of task {node_id:?} ({uri}) no longer exists"
        ))
    })?;
    if metadata.is_dir() {
        return Err(ApiError::precondition(format!(
            "artifact {name:?} of task {node_id:?} is a directory ({uri}); only files can be read"
        )));
    }
    if metadata.len() > MAX_ARTIFACT_READ_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "artifact {name:?} of task {node_id:?} is {} bytes; at most {} can be read \
                 through the API (the file is {uri})",
                metadata.len(),
                MAX_ARTIFACT_READ_BYTES
            ),
        ));
    }
    let bytes = tokio::fs::read(&path).await.map_err(|error| {
        ApiError::internal(format!("failed to read artifact file {uri}: {error}"))
    })?;
    Ok((path, bytes))
}

pub(crate) async fn existing_run(
    state: &AppState,
    run_id: &str,
) -> Result<ApiRunSummary, ApiError> {
    state
        .store
        .get_api_run_summary(run_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run {run_id:?} not found")))
}

// ---- the JSON of a run ----------------------------------------------------------------------

/// A run as `GET /runs/{id}` shows it: with its spec, state history and task details.
pub async fn run_view(state: &AppState, run_id: &str) -> Result<Value, ApiError> {
    let ApiRun { run, api } = state
        .store
        .get_api_run(run_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run {run_id:?} not found")))?;
    let history = state.store.run_state_history(run_id).await?;
    let tasks = state.store.list_tasks(run_id).await?;
    let artifacts = state.store.list_artifacts(run_id).await?;
    let uri_ids: HashMap<&str, &str> = artifacts
        .iter()
        .map(|a| (a.uri.as_str(), a.artifact_id.as_str()))
        .collect();
    let summary = coracle_store::RunSummary::from(run.clone());
    let mut body = summary_json(&ApiRunSummary {
        run: summary,
        api: api.clone(),
    });
    if api.pipeline_version_id.is_none() {
        let mut spec = run.pipeline_spec.clone();
        let platforms = match &mut spec {
            Value::Object(map) => map.remove("platforms"),
            _ => None,
        };
        body["pipeline_spec"] = match platforms {
            Some(platforms) => json!({
                "pipeline_spec": spec,
                "platform_spec": {"platforms": platforms},
            }),
            None => spec,
        };
    }
    body["state_history"] = Value::Array(history.iter().map(history_json).collect());
    body["run_details"] = json!({
        "task_details": task_details(&run, &tasks, &uri_ids),
    });
    Ok(body)
}

/// A run without its spec, history or tasks: what listings show.
fn summary_json(item: &ApiRunSummary) -> Value {
    let ApiRunSummary { run, api } = item;
    let mut body = json!({
        "run_id": run.run_id,
        "display_name": run.display_name,
        "description": api.description,
        "storage_state": api.storage_state.as_str(),
        "runtime_config": {
            "parameters": run.parameters,
            "pipeline_root": run.pipeline_root,
        },
        "service_account": api.service_account,
        "created_at": api_time(&run.created_at),
        // A run that no schedule fired was meant to start when it was made.
        "scheduled_at": api_time(&api.scheduled_at.unwrap_or(run.created_at)),
        "state": run.state.as_str(),
    });
    if let Some(experiment_id) = &api.experiment_id {
        body["experiment_id"] = json!(experiment_id);
    }
    if let Some(version_id) = &api.pipeline_version_id {
        body["pipeline_version_reference"] = json!({
            "pipeline_id": api.pipeline_id,
            "pipeline_version_id": version_id,
        });
    }
    if let Some(finished_at) = &run.finished_at {
        body["finished_at"] = json!(api_time(finished_at));
    }
    if let Some(error) = run_error(run.state, run.error.as_deref()) {
        body["error"] = error;
    }
    if let Some(recurring_run_id) = &api.recurring_run_id {
        body["recurring_run_id"] = json!(recurring_run_id);
    }
    body
}

fn run_error(state: RunState, error: Option<&str>) -> Option<Value> {
    let code = match state {
        RunState::Canceled => CODE_CANCELLED,
        _ => CODE_UNKNOWN,
    };
    error.map(|message| status_json(code, message))
}

fn status_json(code: u16, message: &str) -> Value {
    json!({"code": code, "message": message, "details": []})
}

fn history_json(change: &RunStateChange) -> Value {
    let mut entry = json!({
        "update_time": api_time(&change.at),
        "state": change.state.as_str(),
    });
    if let Some(error) = run_error(change.state, change.error.as_deref()) {
        entry["error"] = error;
    }
    entry
}

/// One detail per task (its latest attempt; earlier attempts show in its state history).
fn task_details(
    run: &RunRecord,
    tasks: &[TaskRecord],
    uri_ids: &HashMap<&str, &str>,
) -> Vec<Value> {
    // Task ids in the order their first attempt appears (start order).
    let mut order: Vec<&str> = Vec::new();
    let mut attempts: HashMap<&str, Vec<&TaskRecord>> = HashMap::new();
    for task in tasks {
        let entry = attempts.entry(task.task_id.as_str()).or_default();
        if entry.is_empty() {
            order.push(task.task_id.as_str());
        }
        entry.push(task);
    }
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for task_id in &order {
        let latest = latest(&attempts[task_id]);
        if let Some(parent) = &latest.parent_task_id {
            children.entry(parent.as_str()).or_default().push(task_id);
        }
    }
    order
        .iter()
        .map(|task_id| {
            let mut all = attempts[task_id].clone();
            all.sort_by_key(|task| task.attempt);
            let task = latest(&all);
            let first = all[0];
            let create_time = first
                .started_at
                .or(first.finished_at)
                .unwrap_or(run.created_at);
            let mut detail = json!({
                "run_id": run.run_id,
                "task_id": task.task_id,
                "display_name": task.name,
                "create_time": api_time(&create_time),
                "state": task_state(task.state),
                "inputs": artifact_lists(&task.inputs, uri_ids),
                "outputs": artifact_lists(&task.outputs, uri_ids),
                "state_history": all.iter().flat_map(|attempt| task_history(attempt)).collect::<Vec<Value>>(),
                "input_parameters": task.inputs.get("parameters").cloned().unwrap_or_else(|| json!({})),
                "output_parameters": task.outputs.get("parameters").cloned().unwrap_or_else(|| json!({})),
                "attempt": task.attempt,
            });
            if let Some(started_at) = &task.started_at {
                detail["start_time"] = json!(api_time(started_at));
            }
            if let Some(finished_at) = &task.finished_at {
                detail["end_time"] = json!(api_time(finished_at));
            }
            if let (Some(error), TaskState::Failed) = (&task.error, task.state) {
                detail["error"] = status_json(CODE_UNKNOWN, error);
            }
            if let Some(parent) = &task.parent_task_id {
                detail["parent_task_id"] = json!(parent);
            }
            if let Some(children) = children.get(task_id) {
                detail["child_tasks"] = children
                    .iter()
                    .map(|child| json!({"task_id": child}))
                    .collect();
            }
            detail
        })
        .collect()
}

fn latest<'a>(attempts: &[&'a TaskRecord]) -> &'a TaskRecord {
    attempts
        .iter()
        .copied()
        .max_by_key(|task| task.attempt)
        .expect("a task has at least one attempt")
}

/// A task's state as the API names it: a cached result counts as success.
fn task_state(state: TaskState) -> &'static str {
    match state {
        TaskState::Pending => "PENDING",
        TaskState::Running => "RUNNING",
        TaskState::Succeeded | TaskState::Cached => "SUCCEEDED",
        TaskState::Failed => "FAILED",
        TaskState::Skipped => "SKIPPED",
        TaskState::Canceled => "CANCELED",
    }
}

fn task_history(task: &TaskRecord) -> Vec<Value> {
    let mut history = Vec::new();
    if let Some(started_at) = &task.started_at {
        history.push(json!({"update_time": api_time(started_at), "state": "RUNNING"}));
    }
    if let Some(finished_at) = &task.finished_at {
        let mut entry =
            json!({"update_time": api_time(finished_at), "state": task_state(task.state)});
        if let (Some(error), TaskState::Failed) = (&task.error, task.state) {
            entry["error"] = status_json(CODE_UNKNOWN, error);
        }
        history.push(entry);
    }
    history
}

/// `{"artifacts": {key: [{uri, …}]}}` of a task's stored inputs or outputs as the API's
/// `{key: {"artifact_ids": [...]}}`. An artifact this run recorded has its id; one from
/// elsewhere (a cache hit, an import) is named by its URI.
fn artifact_lists(io: &Value, uri_ids: &HashMap<&str, &str>) -> Value {
    let mut lists = Map::new();
    for (key, list) in io["artifacts"].as_object().into_iter().flatten() {
        let ids: Vec<Value> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|artifact| artifact["uri"].as_str())
            .map(|uri| json!(uri_ids.get(uri).copied().unwrap_or(uri)))
            .collect();
        lists.insert(key.clone(), json!({"artifact_ids": ids}));
    }
    Value::Object(lists)
}

// ---- reading request bodies -----------------------------------------------------------------

fn string_field(
    object: &Map<String, Value>,
    names: &[&str],
    at: &str,
) -> Result<Option<String>, ApiError> {
    match field(object, names) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(ApiError::invalid(format!(
            "invalid {at}.{}: expected a string, found {}",
            names[0],
            kind_of(other)
        ))),
    }
}

/// Issues one per line become one line (`; `-separated), as an error message wants.
fn one_line(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("; ")
}
