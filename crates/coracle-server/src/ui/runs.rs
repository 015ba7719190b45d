//! Run pages: the runs list (filter, sort, pages, metric columns), a run's details (graph with
//! live status, parameters, spec, events, artifacts), a task's panel (inputs, outputs, command,
//! attempts, streaming log), the status the run page polls, and the new-run form.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use askama::Template;
use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use coracle_store::listing::{FilterValue, ListRequest, Op, Predicate, Sort};
use coracle_store::run_api::{ApiRunSummary, StorageState};
use coracle_store::{ArtifactRecord, TaskRecord};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{PageError, PageResult, charts, duration, graph, page, path_segment, show_value, time};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/runs", get(runs_list))
        .route("/runs/new", get(new_run))
        .route("/runs/{run_id}", get(run_details))
        .route("/runs/{run_id}/status.json", get(run_status))
        .route("/runs/{run_id}/tasks/{*task}", get(task_panel_or_log))
}

// ---- the runs list --------------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct RunsQuery {
    /// Name contains.
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    experiment_id: Option<String>,
    /// `created_at desc` (default), `display_name`, `finished_at desc`, …
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    page_size: Option<u32>,
    #[serde(default)]
    page_token: Option<String>,
    /// `1`: the archived runs instead of the available ones.
    #[serde(default)]
    archived: Option<String>,
}

/// One row of a runs table.
pub struct RunRow {
    pub run_id: String,
    pub name: String,
    pub state: String,
    pub duration: String,
    pub pipeline: String,
    pub pipeline_link: String,
    pub experiment: String,
    pub experiment_id: String,
    pub started: String,
    /// One cell per metric column, in the table's column order.
    pub metrics: Vec<String>,
}

/// Rows of runs with their metric columns (the scalar metrics of each run's `system.Metrics`
/// artifacts), as the runs list and the experiment page show them.
pub struct RunsTable {
    pub rows: Vec<RunRow>,
    pub metric_names: Vec<String>,
    /// Where a metric's header links (sorting the list by it), per metric column; empty
    /// where the headers are plain text (tables that do not sort).
    pub metric_links: Vec<MetricLink>,
}

impl RunsTable {
    /// Each metric column's name with its header link, if it has one.
    pub fn metric_headers(&self) -> Vec<(&str, Option<&MetricLink>)> {
        self.metric_names
            .iter()
            .enumerate()
            .map(|(index, name)| (name.as_str(), self.metric_links.get(index)))
            .collect()
    }
}

/// A metric column's header link: the list sorted by that metric.
pub struct MetricLink {
    pub href: String,
    /// The header's `aria-sort` (`descending`, `ascending`) on the column the list is sorted
    /// by, else empty (the stylesheet draws an arrow from it).
    pub aria_sort: &'static str,
}

/// Builds the rows for `runs`: one artifact query per run (a page holds at most 200) and one
/// experiment lookup per distinct experiment.
pub async fn runs_table(state: &AppState, runs: &[ApiRunSummary]) -> Result<RunsTable, PageError> {
    let mut experiments: HashMap<String, String> = HashMap::new();
    let mut per_run: Vec<BTreeMap<String, f64>> = Vec::with_capacity(runs.len());
    let mut names = BTreeSet::new();
    for item in runs {
        let mut metrics = BTreeMap::new();
        for artifact in state.store.list_artifacts(&item.run.run_id).await? {
            if artifact.schema_title == "system.Metrics" {
                for (name, value) in charts::scalar_metrics(&artifact.metadata) {
                    names.insert(name.clone());
                    metrics.insert(name, value);
                }
            }
        }
        per_run.push(metrics);
        if let Some(id) = &item.api.experiment_id
            && !experiments.contains_key(id)
        {
            let name = state
                .store
                .get_experiment(id)
                .await?
                .map(|e| e.display_name)
                .unwrap_or_default();
            experiments.insert(id.clone(), name);
        }
    }
    let metric_names: Vec<String> = names.into_iter().collect();
    let rows = runs
        .iter()
        .zip(per_run)
        .map(|(item, metrics)| {
            let run = &item.run;
            let experiment_id = item.api.experiment_id.clone().unwrap_or_default();
            RunRow {
                run_id: run.run_id.clone(),
                name: run.display_name.clone(),
                state: run.state.as_str().to_string(),
                duration: duration(run.started_at, run.finished_at),
                pipeline: run.pipeline_name.clone(),
                pipeline_link: item
                    .api
                    .pipeline_id
                    .as_ref()
                    .map(|p| format!("/pipelines/{}", path_segment(p)))
                    .unwrap_or_default(),
                experiment: experiments.get(&experiment_id).cloned().unwrap_or_default(),
                experiment_id,
                started: time(run.started_at.or(Some(run.created_at))),
                metrics: metric_names
                    .iter()
                    .map(|name| metrics.get(name).map(|v| number(*v)).unwrap_or_default())
                    .collect(),
            }
        })
        .collect();
    Ok(RunsTable {
        rows,
        metric_names,
        metric_links: Vec::new(),
    })
}

/// A metric as a cell shows it: integral values without `.0`, others with up to 6 digits.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        let text = format!("{value:.6}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    table: RunsTable,
    total: i64,
    q: String,
    state: String,
    sort: String,
    archived: bool,
    experiment_id: String,
    next_page: String,
    states: Vec<&'static str>,
    sorts: Vec<(String, String)>,
}

const SORTS: [(&str, &str); 6] = [
    ("created_at desc", "newest first"),
    ("created_at", "oldest first"),
    ("display_name", "name A–Z"),
    ("display_name desc", "name Z–A"),
    ("finished_at desc", "finished last"),
    ("finished_at", "finished first"),
];

async fn runs_list(State(state): State<AppState>, Query(query): Query<RunsQuery>) -> PageResult {
    let mut filter = vec![Predicate {
        key: "storage_state".into(),
        op: Op::Equals,
        value: FilterValue::String(
            if query.archived.as_deref() == Some("1") {
                StorageState::Archived
            } else {
                StorageState::Available
            }
            .as_str()
            .into(),
        ),
    }];
    let q = query.q.clone().unwrap_or_default();
    if !q.trim().is_empty() {
        filter.push(Predicate {
            key: "display_name".into(),
            op: Op::IsSubstring,
            value: FilterValue::String(q.trim().into()),
        });
    }
    let run_state = query.state.clone().unwrap_or_default();
    if !run_state.is_empty() {
        filter.push(Predicate {
            key: "state".into(),
            op: Op::Equals,
            value: FilterValue::String(run_state.clone()),
        });
    }
    let sort_text = query
        .sort
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "created_at desc".into());
    let sort = crate::list::parse_sort_by(&sort_text)
        .map_err(|e| PageError::bad_request(format!("sort: {}", e.message)))?;
    let request = ListRequest {
        page_size: query.page_size.unwrap_or(50).clamp(1, 200),
        page_token: query.page_token.clone().filter(|t| !t.is_empty()),
        sort: sort.or(Some(Sort {
            key: "created_at".into(),
            descending: true,
        })),
        filter,
    };
    let experiment_id = query.experiment_id.clone().unwrap_or_default();
    let page_of_runs = state
        .store
        .list_api_runs(
            &request,
            Some(experiment_id.as_str()).filter(|e| !e.is_empty()),
        )
        .await?;
    // The list's other parameters, for links that change the sort or the page.
    let mut rest = String::new();
    for (key, value) in [
        ("q", q.as_str()),
        ("state", run_state.as_str()),
        ("experiment_id", experiment_id.as_str()),
    ] {
        if !value.is_empty() {
            rest.push_str(&format!("&{key}={}", encode(value)));
        }
    }
    if query.archived.as_deref() == Some("1") {
        rest.push_str("&archived=1");
    }
    if let Some(size) = query.page_size {
        rest.push_str(&format!("&page_size={size}"));
    }
    let next_page = if page_of_runs.next_page_token.is_empty() {
        String::new()
    } else {
        format!(
            "/runs?page_token={}&sort={}{rest}",
            encode(&page_of_runs.next_page_token),
            encode(&sort_text)
        )
    };
    let mut table = runs_table(&state, &page_of_runs.items).await?;
    // A metric's header sorts by it, highest first; on the sorted column it reverses.
    let current = request.sort.as_ref();
    table.metric_links = table
        .metric_names
        .iter()
        .map(|name| {
            let key = format!("metric:{name}");
            let sorted = current.filter(|sort| sort.key == key);
            let next = match sorted {
                Some(sort) if sort.descending => format!("{key} asc"),
                _ => format!("{key} desc"),
            };
            MetricLink {
                href: format!("/runs?sort={}{rest}", encode(&next)),
                aria_sort: match sorted {
                    Some(sort) if sort.descending => "descending",
                    Some(_) => "ascending",
                    None => "",
                },
            }
        })
        .collect();
    let mut sorts: Vec<(String, String)> = SORTS
        .iter()
        .map(|(key, label)| ((*key).to_owned(), (*label).to_owned()))
        .collect();
    if let Some(sort) = current
        && let Some(name) = sort.key.strip_prefix("metric:")
        && !sorts.iter().any(|(key, _)| *key == sort_text)
    {
        let order = if sort.descending {
            "highest first"
        } else {
            "lowest first"
        };
        sorts.push((sort_text.clone(), format!("{name}, {order}")));
    }
    page(&RunsPage {
        table,
        total: page_of_runs.total_size,
        q,
        state: run_state,
        sort: sort_text,
        archived: query.archived.as_deref() == Some("1"),
        experiment_id,
        next_page,
        states: coracle_store::RunState::ALL
            .iter()
            .map(|s| s.as_str())
            .collect(),
        sorts,
    })
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

// ---- a run ----------------------------------------------------------------------------------

struct ParameterRow {
    name: String,
    value: String,
}

struct EventRow {
    at: String,
    state: String,
    error: String,
}

struct ArtifactRow {
    artifact_id: String,
    name: String,
    task: String,
    schema: String,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    run_id: String,
    name: String,
    state: String,
    error: String,
    pipeline: String,
    pipeline_link: String,
    experiment: String,
    experiment_id: String,
    created: String,
    duration: String,
    archived: bool,
    terminal: bool,
    graph: String,
    parameters: Vec<ParameterRow>,
    outputs: String,
    spec: String,
    events: Vec<EventRow>,
    artifacts: Vec<ArtifactRow>,
}

async fn run_details(
    State(state): State<AppState>,
    UrlPath(run_id): UrlPath<String>,
) -> PageResult {
    let Some(found) = state.store.get_api_run(&run_id).await? else {
        return Err(PageError::not_found(format!("run {run_id} not found")));
    };
    let run = found.run;
    let api = found.api;
    let tasks = state.store.list_tasks(&run.run_id).await?;
    let spec: Option<coracle_spec::PipelineSpec> =
        serde_json::from_value(run.pipeline_spec.clone()).ok();
    let graph = match &spec {
        Some(spec) => graph::pipeline_graph(spec, &node_states(&tasks)),
        None => String::from("<p class=\"muted\">this run's spec cannot be drawn</p>"),
    };
    let experiment = match &api.experiment_id {
        Some(id) => state
            .store
            .get_experiment(id)
            .await?
            .map(|e| e.display_name)
            .unwrap_or_default(),
        None => String::new(),
    };
    let parameters = match &run.parameters {
        Value::Object(map) => map
            .iter()
            .map(|(name, value)| ParameterRow {
                name: name.clone(),
                value: show_value(value),
            })
            .collect(),
        _ => Vec::new(),
    };
    let events = state
        .store
        .run_state_history(&run.run_id)
        .await?
        .into_iter()
        .map(|change| EventRow {
            at: time(Some(change.at)),
            state: change.state.as_str().to_string(),
            error: change.error.unwrap_or_default(),
        })
        .collect();
    let artifacts = state
        .store
        .list_artifacts(&run.run_id)
        .await?
        .into_iter()
        .map(|a: ArtifactRecord| ArtifactRow {
            artifact_id: a.artifact_id,
            name: a.output_key,
            task: a.producer_task_id,
            schema: a.schema_title,
        })
        .collect();
    let mut shown_spec = run.pipeline_spec.clone();
    if let Value::Object(map) = &mut shown_spec {
        map.remove("platforms");
    }
    page(&RunPage {
        run_id: run.run_id.clone(),
        name: run.display_name.clone(),
        state: run.state.as_str().to_string(),
        error: run.error.clone().unwrap_or_default(),
        pipeline: run.pipeline_name.clone(),
        pipeline_link: api
            .pipeline_id
            .as_ref()
            .map(|p| format!("/pipelines/{}", path_segment(p)))
            .unwrap_or_default(),
        experiment,
        experiment_id: api.experiment_id.clone().unwrap_or_default(),
        created: time(Some(run.created_at)),
        duration: duration(run.started_at, run.finished_at),
        archived: api.storage_state == StorageState::Archived,
        terminal: run.state.is_terminal(),
        graph,
        parameters,
        outputs: if run.outputs.is_null() {
            String::new()
        } else {
            serde_json::to_string_pretty(&run.outputs).unwrap_or_default()
        },
        spec: serde_json::to_string_pretty(&shown_spec).unwrap_or_default(),
        events,
        artifacts,
    })
}

/// Each task path's latest attempt state and attempt count.
fn node_states(tasks: &[TaskRecord]) -> BTreeMap<String, graph::NodeStatus> {
    let mut latest: BTreeMap<String, (i64, String, u32)> = BTreeMap::new();
    for task in tasks {
        let entry = latest
            .entry(task.task_id.clone())
            .or_insert((-1, String::new(), 0));
        entry.2 += 1;
        if task.attempt >= entry.0 {
            entry.0 = task.attempt;
            entry.1 = task.state.as_str().to_string();
        }
    }
    latest
        .into_iter()
        .map(|(path, (_, state, attempts))| (path, graph::NodeStatus { state, attempts }))
        .collect()
}

/// What the run page polls: the run's state and each task's.
async fn run_status(
    State(state): State<AppState>,
    UrlPath(run_id): UrlPath<String>,
) -> Result<Response, PageError> {
    let Some(summary) = state.store.get_api_run_summary(&run_id).await? else {
        return Err(PageError::not_found(format!("run {run_id} not found")));
    };
    let tasks = state.store.list_tasks(&run_id).await?;
    let by_path = node_states(&tasks);
    let states: serde_json::Map<String, Value> = by_path
        .iter()
        .map(|(path, status)| {
            (
                path.clone(),
                json!({"state": status.state, "attempts": status.attempts}),
            )
        })
        .collect();
    // The graph's nodes are static paths (a loop's body once): their merged states.
    let graph = match state.store.get_api_run(&run_id).await? {
        Some(found) => {
            serde_json::from_value::<coracle_spec::PipelineSpec>(found.run.pipeline_spec)
                .map(|spec| {
                    serde_json::to_value(graph::aggregate_states(&spec, &by_path))
                        .unwrap_or_default()
                })
                .unwrap_or_default()
        }
        None => Value::Null,
    };
    let run = summary.run;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "state": run.state.as_str(),
            "terminal": run.state.is_terminal(),
            "error": run.error,
            "duration": duration(run.started_at, run.finished_at),
            "tasks": states,
            "graph": graph,
        })),
    )
        .into_response())
}

// ---- a task ---------------------------------------------------------------------------------

struct AttemptRow {
    attempt: i64,
    state: String,
    started: String,
    duration: String,
    exit_code: String,
    error: String,
}

#[derive(Template)]
#[template(path = "task_panel.html")]
struct TaskPanel {
    run_id: String,
    task_path: String,
    task_link: String,
    name: String,
    state: String,
    attempt: i64,
    started: String,
    finished: String,
    duration: String,
    exit_code: String,
    error: String,
    inputs: Vec<ParameterRow>,
    outputs: Vec<ParameterRow>,
    command: String,
    attempts: Vec<AttemptRow>,
    has_log: bool,
    log_done: bool,
    pod: String,
}

#[derive(Deserialize, Default)]
struct LogQuery {
    #[serde(default)]
    attempt: Option<i64>,
    #[serde(default)]
    offset: Option<u64>,
}

/// `/runs/{id}/tasks/{path}` (the panel) and `/runs/{id}/tasks/{path}/log` (log bytes).
async fn task_panel_or_log(
    State(state): State<AppState>,
    UrlPath((run_id, task)): UrlPath<(String, String)>,
    Query(query): Query<LogQuery>,
) -> PageResult {
    match task.strip_suffix("/log") {
        Some(task_path) => task_log(&state, &run_id, task_path, &query).await,
        None => task_panel(&state, &run_id, &task).await,
    }
}

async fn attempts_of(
    state: &AppState,
    run_id: &str,
    task_path: &str,
) -> Result<Vec<TaskRecord>, PageError> {
    let mut attempts: Vec<TaskRecord> = state
        .store
        .list_tasks(run_id)
        .await?
        .into_iter()
        .filter(|t| t.task_id == task_path)
        .collect();
    if attempts.is_empty() {
        if state.store.get_api_run_summary(run_id).await?.is_none() {
            return Err(PageError::not_found(format!("run {run_id} not found")));
        }
        return Err(PageError::not_found(format!(
            "run {run_id} has no task {task_path:?} (yet)"
        )));
    }
    attempts.sort_by_key(|t| t.attempt);
    Ok(attempts)
}

fn io_rows(io: &Value, kind: &str) -> Vec<ParameterRow> {
    let mut rows = Vec::new();
    if let Some(map) = io.get("parameters").and_then(Value::as_object) {
        for (name, value) in map {
            rows.push(ParameterRow {
                name: name.clone(),
                value: show_value(value),
            });
        }
    }
    if let Some(map) = io.get("artifacts").and_then(Value::as_object) {
        for (name, list) in map {
            let uris: Vec<String> = list
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.get("uri").and_then(Value::as_str).map(str::to_string))
                .collect();
            rows.push(ParameterRow {
                name: format!("{name} ({kind} artifact)"),
                value: uris.join(", "),
            });
        }
    }
    rows
}

async fn task_panel(state: &AppState, run_id: &str, task_path: &str) -> PageResult {
    let attempts = attempts_of(state, run_id, task_path).await?;
    let latest = attempts.last().expect("attempts is not empty");
    // The resolved command, as the executor input and the spec give it.
    let command = latest
        .work_dir
        .as_ref()
        .and_then(|dir| std::fs::read_to_string(Path::new(dir).join("executor_input.json")).ok())
        .map(|text| {
            serde_json::from_str::<Value>(&text)
                .map(|v| serde_json::to_string_pretty(&v).unwrap_or(text.clone()))
                .unwrap_or(text)
        })
        .unwrap_or_default();
    let pod = latest
        .work_dir
        .as_ref()
        .and_then(|dir| std::fs::read_to_string(Path::new(dir).join("pod.json")).ok())
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
        .unwrap_or_default();
    page(&TaskPanel {
        run_id: run_id.to_string(),
        task_path: task_path.to_string(),
        task_link: format!(
            "/runs/{}/tasks/{}",
            path_segment(run_id),
            path_segment(task_path)
        ),
        name: latest.name.clone(),
        state: latest.state.as_str().to_string(),
        attempt: latest.attempt,
        started: time(latest.started_at),
        finished: time(latest.finished_at),
        duration: duration(latest.started_at, latest.finished_at),
        exit_code: latest.exit_code.map(|c| c.to_string()).unwrap_or_default(),
        error: latest.error.clone().unwrap_or_default(),
        inputs: io_rows(&latest.inputs, "input"),
        outputs: io_rows(&latest.outputs, "output"),
        command,
        attempts: attempts
            .iter()
            .map(|t| AttemptRow {
                attempt: t.attempt,
                state: t.state.as_str().to_string(),
                started: time(t.started_at),
                duration: duration(t.started_at, t.finished_at),
                exit_code: t.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                error: t.error.clone().unwrap_or_default(),
            })
            .collect(),
        has_log: log_file(state, run_id, latest).is_some(),
        log_done: latest.state.is_terminal(),
        pod,
    })
}

/// The log file of a task attempt: as recorded, or — while the attempt runs, before its
/// record names it — where every attempt's log is (`runs/{run}/tasks/{path}[.retry-N]/task.log`).
fn log_file(state: &AppState, run_id: &str, task: &TaskRecord) -> Option<std::path::PathBuf> {
    if let Some(path) = &task.log_path {
        return Some(std::path::PathBuf::from(path));
    }
    if task.state != coracle_store::TaskState::Running {
        return None;
    }
    let suffix = if task.attempt == 0 {
        String::new()
    } else {
        format!(".retry-{}", task.attempt)
    };
    Some(
        state
            .home
            .join("runs")
            .join(run_id)
            .join("tasks")
            .join(format!("{}{suffix}", task.task_id))
            .join("task.log"),
    )
}

/// The most a log request returns at once.
const LOG_CHUNK: u64 = 256 * 1024;

async fn task_log(state: &AppState, run_id: &str, task_path: &str, query: &LogQuery) -> PageResult {
    let attempts = attempts_of(state, run_id, task_path).await?;
    let task = match query.attempt {
        Some(n) => attempts.iter().find(|t| t.attempt == n).ok_or_else(|| {
            PageError::not_found(format!("task {task_path:?} has no attempt {n}"))
        })?,
        None => attempts.last().expect("attempts is not empty"),
    };
    let done = task.state.is_terminal();
    let offset = query.offset.unwrap_or(0);
    let bytes = match log_file(state, run_id, task) {
        Some(path) => read_from(&path, offset, LOG_CHUNK).unwrap_or_default(),
        None => Vec::new(),
    };
    let next = offset + bytes.len() as u64;
    // Done only once the whole file was sent.
    let all_sent = bytes.len() < LOG_CHUNK as usize;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (
                header::HeaderName::from_static("x-log-offset"),
                next.to_string(),
            ),
            (
                header::HeaderName::from_static("x-task-done"),
                if done && all_sent { "1" } else { "0" }.to_string(),
            ),
        ],
        bytes,
    )
        .into_response())
}

fn read_from(path: &Path, offset: u64, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

// ---- the new-run form -----------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct NewRunQuery {
    #[serde(default)]
    pipeline: Option<String>,
    #[serde(default)]
    version: Option<String>,
}

struct FormParameter {
    name: String,
    kind: String,
    default: String,
    checked: bool,
    optional: bool,
}

struct ExperimentOption {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "run_new.html")]
struct NewRunPage {
    pipeline_id: String,
    pipeline_name: String,
    version_id: String,
    version_name: String,
    parameters: Vec<FormParameter>,
    experiments: Vec<ExperimentOption>,
    default_name: String,
}

async fn new_run(State(state): State<AppState>, Query(query): Query<NewRunQuery>) -> PageResult {
    let pipeline_id = query
        .pipeline
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| PageError::bad_request("choose a pipeline first (?pipeline=ID)"))?;
    let Some(pipeline) = state.store.get_pipeline(&pipeline_id).await? else {
        return Err(PageError::not_found(format!(
            "pipeline {pipeline_id} not found"
        )));
    };
    let Some((version_id, spec_text)) = state
        .store
        .pipeline_version_spec_text(
            &pipeline_id,
            query.version.as_deref().filter(|v| !v.is_empty()),
        )
        .await?
    else {
        return Err(PageError::not_found(
            "this pipeline has no such version to run",
        ));
    };
    let version_name = state
        .store
        .get_pipeline_version(&pipeline_id, &version_id)
        .await?
        .map(|(version, _)| version.display_name)
        .unwrap_or_default();
    let spec_value: Value = serde_json::from_str(&spec_text).unwrap_or(Value::Null);
    let spec_value = spec_value
        .get("pipeline_spec")
        .cloned()
        .unwrap_or(spec_value);
    let parameters = spec_value
        .pointer("/root/inputDefinitions/parameters")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(name, p)| {
                    let kind = p
                        .get("parameterType")
                        .and_then(Value::as_str)
                        .unwrap_or("STRING")
                        .to_string();
                    let default = p.get("defaultValue");
                    FormParameter {
                        name: name.clone(),
                        checked: default == Some(&Value::Bool(true)),
                        default: match (kind.as_str(), default) {
                            (_, None) => String::new(),
                            ("LIST" | "STRUCT", Some(v)) => v.to_string(),
                            (_, Some(v)) => show_value(v),
                        },
                        optional: p.get("isOptional").and_then(Value::as_bool) == Some(true)
                            || default.is_some(),
                        kind,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let request = ListRequest {
        page_size: 200,
        page_token: None,
        sort: None,
        filter: vec![Predicate {
            key: "storage_state".into(),
            op: Op::Equals,
            value: FilterValue::String(StorageState::Available.as_str().into()),
        }],
    };
    let experiments = state
        .store
        .list_experiments(None, &request)
        .await?
        .items
        .into_iter()
        .map(|e| ExperimentOption {
            id: e.experiment_id,
            name: e.display_name,
        })
        .collect();
    page(&NewRunPage {
        default_name: format!(
            "{}-{}",
            pipeline.display_name,
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ),
        pipeline_id,
        pipeline_name: pipeline.display_name,
        version_id,
        version_name,
        parameters,
        experiments,
    })
}
