//! v1 runs over the same runs as v2beta1: created with `crate::runs::create_run`, driven by the
//! same orchestrator.
//!
//! A run is made from `pipeline_spec.workflow_manifest` (the workflow kfp 1.8 compiles, as
//! JSON or YAML text; `pipeline_manifest`, a v2 spec as text, works too) or from a stored
//! pipeline (`pipeline_spec.pipeline_id`, its default version) or version (a `PIPELINE_VERSION`
//! resource reference); its experiment is its `EXPERIMENT` reference (else "Default"). The
//! parameters are `pipeline_spec.parameters` (`[{name, value}]`, text) or
//! `pipeline_spec.runtime_config.parameters` (`{name: {string_value | int_value |
//! double_value}}`); a parameter `pipeline-root` (kfp's name for it) is the run's pipeline root.
//!
//! `GET /runs/{id}` answers `ApiRunDetail`: `{run, pipeline_runtime: {workflow_manifest}}`.

use std::collections::HashMap;
use std::path::Path as FilePath;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use base64::Engine as _;
use coracle_store::listing::{FilterValue, Op, Predicate};
use coracle_store::run_api::{ApiRun, ApiRunSummary, RunApiFields, StorageState};
use coracle_store::{RunRecord, RunState, TaskRecord, TaskState};
use serde_json::{Map, Value, json};

use super::{
    ListQuery, ResourceType, json_object, list_json, parameter_list, read_references, reference,
    referenced, storage_state, text_field,
};
use crate::list::{ApiQuery, plain_id, split_action};
use crate::runs::{NewRun, PipelineSource};
use crate::wire::{api_time, kind_of};
use crate::{ApiError, AppState};

const KEYS: &[(&str, &str)] = &[("id", "run_id")];

/// The largest `mlpipeline-metrics` file read for the metrics' formats.
const MAX_METRICS_FILE_BYTES: u64 = 1 << 20;

/// KFP's name of the pipeline-root parameter.
const ROOT_PARAMETER: &str = "pipeline-root";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs", get(list).post(create))
        .route("/runs/{id}", get(get_one).delete(delete_one).post(action))
        .route("/runs/{id}/terminate", post(terminate))
        .route("/runs/{id}/retry", post(retry))
        .route(
            "/runs/{id}/nodes/{node_id}/artifacts/{artifact}",
            get(read_artifact),
        )
}

// ---- reading a run or job body --------------------------------------------------------------

/// Where a v1 run or job takes its pipeline from.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum V1Pipeline {
    /// The text of a compiled pipeline, and the field it came in.
    Manifest { text: String, field: &'static str },
    /// A stored pipeline; its default version when no version is named.
    Version {
        pipeline_id: String,
        version_id: Option<String>,
    },
}

/// What a v1 run or job body says about the run to make.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct V1RunSpec {
    pub pipeline: V1Pipeline,
    pub parameters: Map<String, Value>,
    pub pipeline_root: Option<String>,
    pub experiment_id: Option<String>,
}

/// Reads `pipeline_spec` and `resource_references` of a v1 run or job body (`at` names it:
/// `run`, `job`), finding the pipeline of a named version.
pub(super) async fn read_run_spec(
    state: &AppState,
    body: &Map<String, Value>,
    at: &str,
) -> Result<V1RunSpec, ApiError> {
    let references = read_references(body, at)?;
    let experiment_id = referenced(&references, ResourceType::Experiment, at)?;
    let version_id = referenced(&references, ResourceType::PipelineVersion, at)?;
    let pipeline_reference = referenced(&references, ResourceType::Pipeline, at)?;
    let spec_at = format!("{at}.pipeline_spec");
    let spec = match body.get("pipeline_spec") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(spec)) => spec.clone(),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "invalid {spec_at}: expected an object, found {}",
                kind_of(other)
            )));
        }
    };
    let workflow = text_field(&spec, "workflow_manifest", &spec_at)?;
    let manifest = text_field(&spec, "pipeline_manifest", &spec_at)?;
    let pipeline_id = Some(text_field(&spec, "pipeline_id", &spec_at)?)
        .filter(|id| !id.is_empty())
        .or(pipeline_reference);
    let inline = match (workflow.trim().is_empty(), manifest.trim().is_empty()) {
        (false, _) => Some(V1Pipeline::Manifest {
            text: workflow,
            field: "workflow_manifest",
        }),
        (true, false) => Some(V1Pipeline::Manifest {
            text: manifest,
            field: "pipeline_manifest",
        }),
        (true, true) => None,
    };
    let pipeline = match (inline, pipeline_id, version_id) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(ApiError::invalid(format!(
                "invalid {spec_at}: give either a workflow manifest or a pipeline (pipeline_id \
                 or a PIPELINE_VERSION reference), not both"
            )));
        }
        (Some(inline), None, None) => inline,
        (None, pipeline_id, Some(version_id)) => {
            let (version, _) = super::pipelines::find_version(state, &version_id).await?;
            if let Some(pipeline_id) = pipeline_id
                && pipeline_id != version.pipeline_id
            {
                return Err(ApiError::invalid(format!(
                    "invalid {spec_at}.pipeline_id {pipeline_id:?}: version {version_id:?} is \
                     a version of pipeline {:?}",
                    version.pipeline_id
                )));
            }
            V1Pipeline::Version {
                pipeline_id: version.pipeline_id,
                version_id: Some(version_id),
            }
        }
        (None, Some(pipeline_id), None) => V1Pipeline::Version {
            pipeline_id,
            version_id: None,
        },
        (None, None, None) => {
            return Err(ApiError::invalid(format!(
                "invalid {spec_at}: it needs a workflow_manifest, a pipeline_id or a \
                 PIPELINE_VERSION resource reference"
            )));
        }
    };
    let (mut parameters, mut pipeline_root) = runtime_config(&spec, &spec_at)?;
    for (name, value) in listed_parameters(&spec, &spec_at)? {
        parameters.insert(name, value);
    }
    if let Some(root) = parameters.remove(ROOT_PARAMETER)
        && pipeline_root.is_none()
    {
        pipeline_root = Some(super::parameter_text(&root)).filter(|root| !root.is_empty());
    }
    Ok(V1RunSpec {
        pipeline,
        parameters,
        pipeline_root,
        experiment_id,
    })
}

/// `pipeline_spec.parameters`: `[{name, value}]`.
fn listed_parameters(spec: &Map<String, Value>, at: &str) -> Result<Map<String, Value>, ApiError> {
    let list = match spec.get("parameters") {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "invalid {at}.parameters: expected a list of {{name, value}}, found {}",
                kind_of(other)
            )));
        }
    };
    let mut parameters = Map::new();
    for (index, item) in list.iter().enumerate() {
        let at = format!("{at}.parameters[{index}]");
        let Value::Object(item) = item else {
            return Err(ApiError::invalid(format!(
                "invalid {at}: expected {{name, value}}, found {}",
                kind_of(item)
            )));
        };
        let name = text_field(item, "name", &at)?;
        if name.is_empty() {
            return Err(ApiError::invalid(format!("invalid {at}.name: missing")));
        }
        let value = match item.get("value") {
            None | Some(Value::Null) => Value::String(String::new()),
            Some(value) => value.clone(),
        };
        parameters.insert(name, value);
    }
    Ok(parameters)
}

/// `pipeline_spec.runtime_config`: `{parameters: {name: ApiValue}, pipeline_root}`.
fn runtime_config(
    spec: &Map<String, Value>,
    at: &str,
) -> Result<(Map<String, Value>, Option<String>), ApiError> {
    let at = format!("{at}.runtime_config");
    let config = match spec.get("runtime_config") {
        None | Some(Value::Null) => return Ok((Map::new(), None)),
        Some(Value::Object(config)) => config,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "invalid {at}: expected an object, found {}",
                kind_of(other)
            )));
        }
    };
    let root = Some(text_field(config, "pipeline_root", &at)?).filter(|root| !root.is_empty());
    let mut parameters = Map::new();
    match config.get("parameters") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            for (name, value) in given {
                let value = api_value(value).map_err(|why| {
                    ApiError::invalid(format!("invalid {at}.parameters.{name}: {why}"))
                })?;
                parameters.insert(name.clone(), value);
            }
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "invalid {at}.parameters: expected an object, found {}",
                kind_of(other)
            )));
        }
    }
    Ok((parameters, root))
}

/// An `ApiValue` (`{int_value: "3"}`, `{double_value: 0.5}`, `{string_value: "x"}`) as JSON;
/// any other value is taken as it is.
fn api_value(value: &Value) -> Result<Value, String> {
    let Value::Object(object) = value else {
        return Ok(value.clone());
    };
    if let Some(int) = object.get("int_value") {
        return match int {
            Value::Number(_) => Ok(int.clone()),
            Value::String(text) => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("int_value {text:?} is not a whole number")),
            other => Err(format!(
                "int_value: expected a number, found {}",
                kind_of(other)
            )),
        };
    }
    if let Some(double) = object.get("double_value") {
        return match double {
            Value::Number(_) => Ok(double.clone()),
            other => Err(format!(
                "double_value: expected a number, found {}",
                kind_of(other)
            )),
        };
    }
    if let Some(text) = object.get("string_value") {
        return Ok(text.clone());
    }
    Ok(value.clone())
}

// ---- the JSON of a run ----------------------------------------------------------------------

/// `status` of a v1 run: the phase KFP v1 shows. A terminated run ends `Failed`, as its Argo
/// workflow does.
pub(super) fn run_status(state: RunState) -> &'static str {
    match state {
        RunState::Pending => "Pending",
        RunState::Running => "Running",
        RunState::Succeeded => "Succeeded",
        RunState::Failed | RunState::Canceled => "Failed",
        RunState::Canceling => "Terminating",
    }
}

/// The Argo phase of a task.
fn node_phase(state: TaskState) -> &'static str {
    match state {
        TaskState::Pending => "Pending",
        TaskState::Running => "Running",
        TaskState::Succeeded | TaskState::Cached => "Succeeded",
        TaskState::Failed | TaskState::Canceled => "Failed",
        TaskState::Skipped => "Skipped",
    }
}

/// `ApiRun`.
fn run_json(item: &ApiRunSummary, experiment_name: Option<&str>, metrics: Vec<Value>) -> Value {
    let ApiRunSummary { run, api } = item;
    let mut pipeline_spec = json!({
        "pipeline_name": run.pipeline_name,
        "parameters": parameter_list(&run.parameters),
    });
    let mut references = Vec::new();
    if let Some(experiment_id) = &api.experiment_id {
        references.push(reference(
            ResourceType::Experiment,
            experiment_id,
            experiment_name,
            true,
        ));
    }
    if let Some(pipeline_id) = &api.pipeline_id {
        pipeline_spec["pipeline_id"] = json!(pipeline_id);
    }
    if let Some(version_id) = &api.pipeline_version_id {
        references.push(reference(
            ResourceType::PipelineVersion,
            version_id,
            None,
            false,
        ));
    }
    if let Some(job_id) = &api.recurring_run_id {
        references.push(reference(ResourceType::Job, job_id, None, false));
    }
    let mut body = json!({
        "id": run.run_id,
        "name": run.display_name,
        "storage_state": storage_state(api.storage_state),
        "description": api.description,
        "pipeline_spec": pipeline_spec,
        "resource_references": references,
        "service_account": api.service_account,
        "created_at": api_time(&run.created_at),
        "scheduled_at": api_time(&api.scheduled_at.unwrap_or(run.created_at)),
        "status": run_status(run.state),
    });
    if let Some(finished_at) = &run.finished_at {
        body["finished_at"] = json!(api_time(finished_at));
    }
    match (&run.error, run.state) {
        (Some(error), _) => body["error"] = json!(error),
        (None, RunState::Canceled) => body["error"] = json!("the run was terminated"),
        _ => {}
    }
    if !metrics.is_empty() {
        body["metrics"] = Value::Array(metrics);
    }
    body
}

/// The run's metrics (`ApiRunMetric`) from its tasks' `system.Metrics` output artifacts (a
/// cached task's too): one per numeric metadata entry, with the format the
/// `mlpipeline-metrics` file gives it, if any.
async fn run_metrics(tasks: &[TaskRecord]) -> Vec<Value> {
    let mut metrics = Vec::new();
    for task in latest_attempts(tasks) {
        for list in task.outputs["artifacts"]
            .as_object()
            .into_iter()
            .flat_map(|lists| lists.values())
        {
            for artifact in list.as_array().into_iter().flatten() {
                if artifact["type"] != "system.Metrics" {
                    continue;
                }
                let Some(values) = artifact["metadata"].as_object() else {
                    continue;
                };
                let formats = match artifact["uri"].as_str() {
                    Some(uri) => metric_formats(uri).await,
                    None => HashMap::new(),
                };
                for (name, value) in values {
                    let Some(number) = value.as_f64() else {
                        continue;
                    };
                    let format = formats.get(name).map_or("UNSPECIFIED", String::as_str);
                    metrics.push(json!({
                        "name": name,
                        "node_id": task.task_id,
                        "number_value": number,
                        "format": format,
                    }));
                }
            }
        }
    }
    metrics
}

/// The latest attempt of each task, in the order the tasks first appear.
fn latest_attempts(tasks: &[TaskRecord]) -> Vec<&TaskRecord> {
    let mut latest: Vec<&TaskRecord> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for task in tasks {
        match index.get(task.task_id.as_str()) {
            Some(&at) if latest[at].attempt >= task.attempt => {}
            Some(&at) => latest[at] = task,
            None => {
                index.insert(task.task_id.as_str(), latest.len());
                latest.push(task);
            }
        }
    }
    latest
}

/// `name → RAW | PERCENTAGE` from a v1 metrics file (`{"metrics": [{name, format}]}`);
/// nothing when the file is missing, large or not such JSON.
async fn metric_formats(uri: &str) -> HashMap<String, String> {
    let path = FilePath::new(uri.strip_prefix("file://").unwrap_or(uri));
    let small = tokio::fs::metadata(path)
        .await
        .is_ok_and(|m| m.is_file() && m.len() <= MAX_METRICS_FILE_BYTES);
    if !small {
        return HashMap::new();
    }
    let Ok(text) = tokio::fs::read(path).await else {
        return HashMap::new();
    };
    let Ok(document) = serde_json::from_slice::<Value>(&text) else {
        return HashMap::new();
    };
    document["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|metric| {
            let name = metric["name"].as_str()?;
            let format = metric["format"].as_str()?.to_ascii_uppercase();
            matches!(format.as_str(), "RAW" | "PERCENTAGE").then(|| (name.to_owned(), format))
        })
        .collect()
}

/// An Argo-like Workflow of the run, as `pipeline_runtime.workflow_manifest` carries it: its
/// parameters, phase and times, and a node per task (its latest attempt) with its phase,
/// times, input and output parameters (outputs named `{task}-{output}`, as kfp 1.8 names
/// them) and output artifacts.
fn workflow_json(run: &RunRecord, api: &RunApiFields, tasks: &[TaskRecord]) -> Value {
    let latest = latest_attempts(tasks);
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for task in &latest {
        if let Some(parent) = &task.parent_task_id {
            children
                .entry(parent.as_str())
                .or_default()
                .push(task.task_id.as_str());
        }
    }
    let mut nodes = Map::new();
    for task in &latest {
        let kids = children.get(task.task_id.as_str());
        let named = |io: &Value| -> Vec<Value> {
            io["parameters"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, value)| {
                    json!({"name": format!("{}-{key}", task.name), "value": super::parameter_text(value)})
                })
                .collect()
        };
        let artifacts: Vec<Value> = task.outputs["artifacts"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(key, list)| {
                let uri = list.get(0)?.get("uri")?.as_str()?;
                Some(json!({
                    "name": format!("{}-{key}", task.name),
                    "path": uri.strip_prefix("file://").unwrap_or(uri),
                }))
            })
            .collect();
        let inputs: Vec<Value> = task.inputs["parameters"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(key, value)| json!({"name": key, "value": super::parameter_text(value)}))
            .collect();
        let mut node = json!({
            "id": task.task_id,
            "name": format!("{}.{}", run.display_name, task.task_id.replace('/', ".")),
            "displayName": task.name,
            "type": if kids.is_some() { "DAG" } else { "Pod" },
            "phase": node_phase(task.state),
            "inputs": {"parameters": inputs},
            "outputs": {"parameters": named(&task.outputs), "artifacts": artifacts},
        });
        if let Some(kids) = kids {
            node["children"] = json!(kids);
        }
        if let Some(started_at) = &task.started_at {
            node["startedAt"] = json!(api_time(started_at));
        }
        if let Some(finished_at) = &task.finished_at {
            node["finishedAt"] = json!(api_time(finished_at));
        }
        if let Some(error) = &task.error {
            node["message"] = json!(error);
        }
        if task.state == TaskState::Cached {
            node["message"] = json!("cached");
        }
        nodes.insert(task.task_id.clone(), node);
    }
    let phase = match run.state {
        RunState::Canceling => "Running",
        other => run_status(other),
    };
    let mut status = json!({"phase": phase, "nodes": nodes});
    if let Some(started_at) = &run.started_at {
        status["startedAt"] = json!(api_time(started_at));
    }
    if let Some(finished_at) = &run.finished_at {
        status["finishedAt"] = json!(api_time(finished_at));
    }
    if let Some(error) = &run.error {
        status["message"] = json!(error);
    }
    let mut labels = json!({"pipeline/runid": run.run_id});
    if let Some(experiment_id) = &api.experiment_id {
        labels["pipelines.kubeflow.org/experiment_id"] = json!(experiment_id);
    }
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": run.display_name,
            "uid": run.run_id,
            "creationTimestamp": api_time(&run.created_at),
            "labels": labels,
            "annotations": {"pipelines.kubeflow.org/run_name": run.display_name},
        },
        "spec": {"arguments": {"parameters": parameter_list(&run.parameters)}},
        "status": status,
    })
}

/// Experiment names by id, read once per request.
#[derive(Default)]
struct ExperimentNames(HashMap<String, Option<String>>);

impl ExperimentNames {
    async fn get(
        &mut self,
        state: &AppState,
        id: &Option<String>,
    ) -> Result<Option<String>, ApiError> {
        let Some(id) = id else {
            return Ok(None);
        };
        if let Some(name) = self.0.get(id) {
            return Ok(name.clone());
        }
        let name = state
            .store
            .get_experiment(id)
            .await?
            .map(|experiment| experiment.display_name);
        self.0.insert(id.clone(), name.clone());
        Ok(name)
    }
}

/// `ApiRunDetail` of a run.
pub(super) async fn run_detail(state: &AppState, run_id: &str) -> Result<Value, ApiError> {
    let ApiRun { run, api } = state
        .store
        .get_api_run(run_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run {run_id:?} not found")))?;
    let tasks = state.store.list_tasks(run_id).await?;
    let metrics = run_metrics(&tasks).await;
    let experiment_name = ExperimentNames::default()
        .get(state, &api.experiment_id)
        .await?;
    let summary = ApiRunSummary {
        run: coracle_store::RunSummary::from(run.clone()),
        api: api.clone(),
    };
    let mut body = run_json(&summary, experiment_name.as_deref(), metrics);
    if api.pipeline_version_id.is_none() {
        body["pipeline_spec"]["pipeline_manifest"] = json!(run.pipeline_spec.to_string());
    }
    let workflow = workflow_json(&run, &api, &tasks);
    Ok(json!({
        "run": body,
        "pipeline_runtime": {"workflow_manifest": workflow.to_string()},
    }))
}

// ---- handlers -------------------------------------------------------------------------------

async fn create(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = json_object("run", &body)?;
    let spec = read_run_spec(&state, &body, "run").await?;
    let source = match spec.pipeline {
        V1Pipeline::Manifest { text, .. } => PipelineSource::Spec(Value::String(text)),
        V1Pipeline::Version {
            pipeline_id,
            version_id,
        } => PipelineSource::Version {
            pipeline_id,
            pipeline_version_id: version_id,
        },
    };
    let request = NewRun {
        display_name: text_field(&body, "name", "run")?,
        description: text_field(&body, "description", "run")?,
        experiment_id: spec.experiment_id,
        source,
        parameters: spec.parameters,
        pipeline_root: spec.pipeline_root,
        service_account: text_field(&body, "service_account", "run")?,
        recurring_run_id: None,
        scheduled_at: None,
    };
    let created = crate::runs::create_run(&state, request).await?;
    let run_id = created["run_id"]
        .as_str()
        .ok_or_else(|| ApiError::internal("failed to read the new run's id"))?;
    Ok(Json(run_detail(&state, run_id).await?))
}

async fn get_one(
    State(state): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let run_id = plain_id(&segment, "GET /apis/v1beta1/runs/{id}")?;
    Ok(Json(run_detail(&state, run_id).await?))
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let mut request = query.to_request(KEYS)?;
    let mut experiment_id = None;
    let scope_type = query.reference_type.as_deref().unwrap_or_default();
    let scope_id = query.reference_id.clone().unwrap_or_default();
    match ResourceType::parse(&Value::String(scope_type.to_owned())) {
        _ if scope_id.is_empty() => {}
        Some(ResourceType::Experiment) => experiment_id = Some(scope_id),
        Some(kind @ (ResourceType::PipelineVersion | ResourceType::Job)) => {
            let key = if kind == ResourceType::Job {
                "recurring_run_id"
            } else {
                "pipeline_version_id"
            };
            request.filter.push(Predicate {
                key: key.to_owned(),
                op: Op::Equals,
                value: FilterValue::String(scope_id),
            });
        }
        Some(ResourceType::Namespace) => {}
        _ => {
            return Err(ApiError::invalid(format!(
                "invalid resource_reference_key.type {scope_type:?}: runs are listed by \
                 EXPERIMENT, PIPELINE_VERSION, JOB or NAMESPACE"
            )));
        }
    }
    let page = state
        .store
        .list_api_runs(&request, experiment_id.as_deref())
        .await?;
    let mut names = ExperimentNames::default();
    let mut items = Vec::with_capacity(page.items.len());
    for item in &page.items {
        let tasks = state.store.list_tasks(&item.run.run_id).await?;
        let metrics = run_metrics(&tasks).await;
        let name = names.get(&state, &item.api.experiment_id).await?;
        items.push(run_json(item, name.as_deref(), metrics));
    }
    Ok(Json(list_json(
        "runs",
        items,
        page.total_size,
        &page.next_page_token,
    )))
}

async fn delete_one(
    State(state): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let run_id = plain_id(&segment, "DELETE /apis/v1beta1/runs/{id}")?;
    crate::runs::delete(&state, run_id).await?;
    Ok(Json(json!({})))
}

/// `POST /runs/{id}:archive | :unarchive` (and v2's `:terminate | :retry`).
async fn action(
    State(state): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (run_id, action) = split_action(&segment);
    match action {
        Some("archive") => {
            crate::runs::set_storage_state(&state, run_id, StorageState::Archived).await
        }
        Some("unarchive") => {
            crate::runs::set_storage_state(&state, run_id, StorageState::Available).await
        }
        Some("terminate") => crate::runs::terminate(&state, run_id).await,
        Some("retry") => crate::runs::retry(&state, run_id).await,
        Some("reportMetrics") => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "cannot report metrics of run {run_id:?}: a run's metrics are read from its \
                 tasks' mlpipeline-metrics outputs"
            ),
        )),
        Some(other) => Err(ApiError::not_found(format!(
            "no API route POST /apis/v1beta1/runs/{{id}}:{other}: the run actions are \
             :archive, :unarchive, /terminate and /retry"
        ))),
        None => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "POST /apis/v1beta1/runs/{run_id} is not an API route; did you mean \
                 /runs/{run_id}/retry?"
            ),
        )),
    }
    .map(Json)
}

async fn terminate(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    crate::runs::terminate(&state, &run_id).await.map(Json)
}

async fn retry(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    crate::runs::retry(&state, &run_id).await.map(Json)
}

/// `GET /runs/{id}/nodes/{node_id}/artifacts/{name}:read`: the artifact's file as KFP v1 gives
/// it, a gzipped tar holding the file, base64 in `data`. `name` is the task's output key, or
/// kfp 1.8's `{task}-{output}`.
async fn read_artifact(
    State(state): State<AppState>,
    Path((run_id, node_id, artifact)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (name, action) = split_action(&artifact);
    if action != Some("read") {
        return Err(ApiError::not_found(format!(
            "no API route GET /apis/v1beta1/runs/{{id}}/nodes/{{node_id}}/artifacts/{artifact}: \
             use …/artifacts/{name}:read"
        )));
    }
    crate::runs::existing_run(&state, &run_id).await?;
    let tasks = state.store.list_tasks(&run_id).await?;
    let task = tasks
        .iter()
        .filter(|task| task.task_id == node_id)
        .max_by_key(|task| task.attempt)
        .ok_or_else(|| {
            ApiError::not_found(format!("run {run_id:?} has no task (node) {node_id:?}"))
        })?;
    let key = match task.outputs["artifacts"].get(name) {
        Some(_) => name.to_owned(),
        None => name
            .strip_prefix(&format!("{}-", task.name))
            .unwrap_or(name)
            .to_owned(),
    };
    let (path, bytes) = crate::runs::artifact_file(&state, &run_id, &node_id, &key).await?;
    let file_name = path
        .file_name()
        .map_or_else(|| key.clone(), |name| name.to_string_lossy().into_owned());
    let archive = tar_gz(&file_name, &bytes).map_err(|error| {
        ApiError::internal(format!(
            "failed to pack artifact {key:?} of task {node_id:?}: {error}"
        ))
    })?;
    Ok(Json(json!({
        "data": base64::engine::general_purpose::STANDARD.encode(archive),
    })))
}

/// A gzipped tar holding one file.
fn tar_gz(name: &str, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut archive = tar::Builder::new(encoder);
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    archive.append_data(&mut header, name, bytes)?;
    archive.into_inner()?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_values() {
        assert_eq!(api_value(&json!({"int_value": "3"})).unwrap(), json!(3));
        assert_eq!(
            api_value(&json!({"double_value": 0.5})).unwrap(),
            json!(0.5)
        );
        assert_eq!(
            api_value(&json!({"string_value": "x"})).unwrap(),
            json!("x")
        );
        assert_eq!(api_value(&json!("plain")).unwrap(), json!("plain"));
        assert!(
            api_value(&json!({"int_value": "x"}))
                .unwrap_err()
                .contains("int_value")
        );
    }

    #[test]
    fn statuses_end_where_the_v1_client_stops_waiting() {
        // kfp 1.8's wait_for_run_completion stops at succeeded, failed, skipped or error.
        let done = ["succeeded", "failed", "skipped", "error"];
        for state in RunState::ALL {
            let status = run_status(*state).to_lowercase();
            assert_eq!(
                done.contains(&status.as_str()),
                state.is_terminal(),
                "{state} shows as {status}"
            );
        }
    }

    #[test]
    fn packed_artifacts_unpack() {
        let archive = tar_gz("data", b"hello").unwrap();
        let decoder = flate2::read::GzDecoder::new(archive.as_slice());
        let mut tar = tar::Archive::new(decoder);
        let mut entries = tar.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("data"));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
        assert_eq!(text, "hello");
    }
}
