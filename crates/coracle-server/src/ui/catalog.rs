//! Catalog pages: pipelines (list and upload, one pipeline with its versions, the selected
//! version's graph and inputs, a new-version upload), experiments (list and create, one
//! experiment with its runs and recurring runs), and `POST /ui/pipelines/upload-url`, which
//! fetches a pipeline file from a URL and stores it through the API's upload route.
//!
//! Uploads, creation, archiving and deletion are done by `coracle.js` calling the JSON API;
//! these handlers only read the store, one page (50 rows) at a time.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use coracle_store::listing::{ListRequest, Page};
use coracle_store::run_api::StorageState;
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt as _;

use super::runs::{RunsTable, runs_table};
use super::{PageError, PageResult, graph, path_segment, show_value, time};
use crate::pipelines::{MAX_UPLOAD_BYTES, parse_body};
use crate::{ApiError, AppState};

/// Rows per page of every catalog list.
pub const PAGE_SIZE: u32 = 50;

/// How long fetching a pipeline from a URL may take, in all.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/pipelines", get(pipelines_list))
        .route("/pipelines/{pipeline_id}", get(pipeline_details))
        .route("/experiments", get(experiments_list))
        .route("/experiments/{experiment_id}", get(experiment_details))
        .route("/ui/pipelines/upload-url", post(upload_from_url))
}

/// A list request for one page of `PAGE_SIZE` rows in the collection's default order.
pub(crate) fn page_request(page_token: Option<&str>) -> ListRequest {
    ListRequest {
        page_size: PAGE_SIZE,
        page_token: page_token
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .map(str::to_owned),
        sort: None,
        filter: Vec::new(),
    }
}

/// The link to the next page of `base` (which may carry a query already), or empty.
pub(crate) fn next_page_link<T>(base: &str, page: &Page<T>) -> String {
    if page.next_page_token.is_empty() {
        return String::new();
    }
    let joiner = if base.contains('?') { '&' } else { '?' };
    format!(
        "{base}{joiner}page_token={}",
        path_segment(&page.next_page_token)
    )
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    page_token: Option<String>,
}

// ---- pipelines ------------------------------------------------------------------------------

struct PipelineRow {
    pipeline_id: String,
    name: String,
    description: String,
    created: String,
    versions: i64,
}

#[derive(Template)]
#[template(path = "pipelines.html")]
struct PipelinesPage {
    pipelines: Vec<PipelineRow>,
    total: i64,
    next_page: String,
}

async fn pipelines_list(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> PageResult {
    let page = state
        .store
        .list_pipelines(None, &page_request(query.page_token.as_deref()))
        .await?;
    let mut pipelines = Vec::with_capacity(page.items.len());
    let count_only = ListRequest {
        page_size: 1,
        ..page_request(None)
    };
    for pipeline in &page.items {
        let versions = state
            .store
            .list_pipeline_versions(&pipeline.pipeline_id, &count_only)
            .await?
            .total_size;
        pipelines.push(PipelineRow {
            pipeline_id: pipeline.pipeline_id.clone(),
            name: pipeline.display_name.clone(),
            description: pipeline.description.clone(),
            created: time(Some(pipeline.created_at)),
            versions,
        });
    }
    super::page(&PipelinesPage {
        pipelines,
        total: page.total_size,
        next_page: next_page_link("/pipelines", &page),
    })
}

struct VersionRow {
    version_id: String,
    name: String,
    description: String,
    created: String,
    selected: bool,
}

struct InputRow {
    name: String,
    kind: String,
    default: String,
    optional: bool,
}

#[derive(Template)]
#[template(path = "pipeline.html")]
struct PipelinePage {
    pipeline_id: String,
    name: String,
    description: String,
    created: String,
    versions: Vec<VersionRow>,
    versions_total: i64,
    next_page: String,
    /// The selected version; empty when the pipeline has none.
    version_id: String,
    version_name: String,
    graph: String,
    inputs: Vec<InputRow>,
    spec: String,
}

#[derive(Debug, Default, Deserialize)]
struct PipelineQuery {
    version: Option<String>,
    page_token: Option<String>,
}

/// The stored spec of a version without its platforms document (stored beside it).
pub(crate) fn plain_spec(stored: &Value) -> &Value {
    match stored.get("pipeline_spec") {
        Some(spec) if spec.is_object() => spec,
        _ => stored,
    }
}

/// The root inputs of a spec as rows: parameters (type, default, optional) then artifacts.
fn input_rows(spec: &coracle_spec::PipelineSpec) -> Vec<InputRow> {
    let parameters = spec.root.input_parameters().map(|(name, input)| InputRow {
        name: name.clone(),
        kind: input.parameter_type.as_str().to_owned(),
        // As the parameter's type reads it: an integer's `12.0` (as KFP compiles it) is 12.
        default: input
            .default_value
            .as_ref()
            .map(|value| {
                let typed = coracle_spec::value::coerce(input.parameter_type, value);
                show_value(typed.as_ref().unwrap_or(value))
            })
            .unwrap_or_default(),
        optional: input.is_optional || input.default_value.is_some(),
    });
    let artifacts = spec.root.input_artifacts().map(|(name, input)| InputRow {
        name: name.clone(),
        kind: input.artifact_type.schema_title.clone(),
        default: String::new(),
        optional: input.is_optional,
    });
    parameters.chain(artifacts).collect()
}

async fn pipeline_details(
    State(state): State<AppState>,
    Path(pipeline_id): Path<String>,
    Query(query): Query<PipelineQuery>,
) -> PageResult {
    let Some(pipeline) = state.store.get_pipeline(&pipeline_id).await? else {
        return Err(PageError::not_found(format!(
            "pipeline {pipeline_id:?} not found"
        )));
    };
    let page = state
        .store
        .list_pipeline_versions(&pipeline_id, &page_request(query.page_token.as_deref()))
        .await?;
    let wanted = query
        .version
        .as_deref()
        .filter(|version| !version.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            page.items
                .first()
                .map(|version| version.pipeline_version_id.clone())
        });
    let selected = match &wanted {
        Some(version_id) => {
            let found = state
                .store
                .get_pipeline_version(&pipeline_id, version_id)
                .await?;
            Some(found.ok_or_else(|| {
                PageError::not_found(format!(
                    "pipeline {:?} has no version {version_id:?}",
                    pipeline.display_name
                ))
            })?)
        }
        None => None,
    };
    let (version_id, version_name, graph, inputs, spec) = match &selected {
        Some((version, stored)) => {
            let plain = plain_spec(stored);
            let (graph, inputs) =
                match serde_json::from_value::<coracle_spec::PipelineSpec>(plain.clone()) {
                    Ok(spec) => (
                        graph::pipeline_graph(&spec, &BTreeMap::new()),
                        input_rows(&spec),
                    ),
                    Err(error) => (
                        format!(
                            "<p class=\"muted\">this version's spec cannot be drawn: {}</p>",
                            escape(&error.to_string())
                        ),
                        Vec::new(),
                    ),
                };
            (
                version.pipeline_version_id.clone(),
                version.display_name.clone(),
                graph,
                inputs,
                serde_json::to_string_pretty(stored).unwrap_or_default(),
            )
        }
        None => Default::default(),
    };
    let base = format!("/pipelines/{}", path_segment(&pipeline_id));
    let versions = page
        .items
        .iter()
        .map(|version| VersionRow {
            selected: version.pipeline_version_id == version_id,
            version_id: version.pipeline_version_id.clone(),
            name: version.display_name.clone(),
            description: version.description.clone(),
            created: time(Some(version.created_at)),
        })
        .collect();
    super::page(&PipelinePage {
        next_page: next_page_link(&base, &page),
        pipeline_id: pipeline.pipeline_id,
        name: pipeline.display_name,
        description: pipeline.description,
        created: time(Some(pipeline.created_at)),
        versions,
        versions_total: page.total_size,
        version_id,
        version_name,
        graph,
        inputs,
        spec,
    })
}

/// Text for an HTML string built by hand.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

// ---- upload by URL --------------------------------------------------------------------------

/// The body of `POST /ui/pipelines/upload-url`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UrlUpload {
    url: String,
    name: String,
    description: String,
    /// Set: add the file as a new version of this pipeline.
    pipeline_id: String,
}

/// Fetches `url` (http or https, at most `MAX_UPLOAD_BYTES`) and hands the file to
/// `POST /pipelines/upload` (or `/pipelines/upload_version` with `pipeline_id`), so it is
/// checked and stored exactly as an upload; answers what that route answers.
async fn upload_from_url(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: UrlUpload = parse_body("upload", body)?;
    let url = request.url.trim().to_owned();
    if url.is_empty() {
        return Err(ApiError::invalid("invalid upload: url: missing"));
    }
    let lower = url.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err(ApiError::invalid(format!(
            "invalid upload: url {url:?}: only http:// and https:// URLs can be fetched"
        )));
    }
    let fetch_url = url.clone();
    let bytes = tokio::task::spawn_blocking(move || fetch(&fetch_url))
        .await
        .map_err(|error| ApiError::internal(format!("failed to fetch {url}: {error}")))??;
    let file_name = file_name_of(&url);
    tracing::info!(%url, bytes = bytes.len(), "pipeline fetched for upload");

    let mut query = Vec::new();
    if !request.name.trim().is_empty() {
        query.push(format!("name={}", query_value(request.name.trim())));
    }
    if !request.description.is_empty() {
        query.push(format!("description={}", query_value(&request.description)));
    }
    let route = if request.pipeline_id.is_empty() {
        "/pipelines/upload"
    } else {
        query.push(format!("pipelineid={}", query_value(&request.pipeline_id)));
        "/pipelines/upload_version"
    };
    let boundary = format!("coracle-{}", uuid::Uuid::new_v4().simple());
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"uploadfile\"; \
         filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
        file_name.replace(['"', '\r', '\n'], "_")
    )
    .into_bytes();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let upload = Request::post(format!("{route}?{}", query.join("&")))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .map_err(|error| ApiError::internal(format!("failed to build the upload: {error}")))?;
    let answer = crate::pipelines::routes()
        .with_state(state)
        .oneshot(upload)
        .await
        .map_err(|error| ApiError::internal(format!("failed to store the upload: {error}")))?;
    Ok(answer.into_response())
}

/// The last path segment of a URL, or `pipeline.yaml`.
pub(crate) fn file_name_of(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = without_query
        .split_once("://")
        .map_or(without_query, |(_, rest)| rest);
    match after_scheme.split_once('/') {
        Some((_, path)) => match path.rsplit('/').next() {
            Some(last) if !last.is_empty() => last.to_owned(),
            _ => "pipeline.yaml".to_owned(),
        },
        None => "pipeline.yaml".to_owned(),
    }
}

/// A query parameter value, percent-encoded.
fn query_value(text: &str) -> String {
    path_segment(text).replace('/', "%2F")
}

/// Downloads `url`: its body when the answer is 2xx and at most `MAX_UPLOAD_BYTES` long.
pub(crate) fn fetch(url: &str) -> Result<Vec<u8>, ApiError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_global(Some(FETCH_TIMEOUT))
        .max_redirects(5)
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|error| {
        ApiError::invalid(format!(
            "failed to fetch {url}: it cannot be reached ({error})"
        ))
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(ApiError::invalid(format!(
            "failed to fetch {url}: the server answered HTTP {status}"
        )));
    }
    response
        .body_mut()
        .with_config()
        .limit(MAX_UPLOAD_BYTES as u64)
        .read_to_vec()
        .map_err(|error| match error {
            ureq::Error::BodyExceedsLimit(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "failed to fetch {url}: the file is larger than {} MiB",
                    MAX_UPLOAD_BYTES >> 20
                ),
            ),
            other => ApiError::invalid(format!(
                "failed to fetch {url}: the download broke off ({other})"
            )),
        })
}

// ---- experiments ----------------------------------------------------------------------------

struct ExperimentRow {
    experiment_id: String,
    name: String,
    description: String,
    created: String,
    last_run: String,
    archived: bool,
}

#[derive(Template)]
#[template(path = "experiments.html")]
struct ExperimentsPage {
    experiments: Vec<ExperimentRow>,
    total: i64,
    next_page: String,
}

async fn experiments_list(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> PageResult {
    let page = state
        .store
        .list_experiments(None, &page_request(query.page_token.as_deref()))
        .await?;
    let experiments = page
        .items
        .iter()
        .map(|experiment| ExperimentRow {
            experiment_id: experiment.experiment_id.clone(),
            name: experiment.display_name.clone(),
            description: experiment.description.clone(),
            created: time(Some(experiment.created_at)),
            last_run: time(experiment.last_run_created_at),
            archived: experiment.storage_state == StorageState::Archived,
        })
        .collect();
    super::page(&ExperimentsPage {
        experiments,
        total: page.total_size,
        next_page: next_page_link("/experiments", &page),
    })
}

/// One row of a recurring runs table.
pub(crate) struct RecurringRow {
    pub recurring_run_id: String,
    pub name: String,
    pub status: String,
    pub trigger: String,
    pub pipeline: String,
    pub pipeline_link: String,
    pub experiment: String,
    pub experiment_id: String,
    pub created: String,
}

/// A trigger object as a phrase: `cron 0 0 * * * *`, `every 60 s`, `once`.
pub(crate) fn trigger_text(trigger: &Value) -> String {
    let schedule = |names: &[&str]| names.iter().find_map(|name| trigger.get(*name));
    if let Some(cron) = schedule(&["cron_schedule", "cronSchedule"]) {
        return format!(
            "cron {}",
            cron.get("cron").map(show_value).unwrap_or_default()
        );
    }
    if let Some(periodic) = schedule(&["periodic_schedule", "periodicSchedule"]) {
        let seconds = periodic
            .get("interval_second")
            .or_else(|| periodic.get("intervalSecond"))
            .map(show_value)
            .unwrap_or_default();
        return format!("every {seconds} s");
    }
    "once".to_owned()
}

/// Rows for recurring runs, with their pipelines' and experiments' names (one lookup each).
pub(crate) async fn recurring_rows(
    state: &AppState,
    records: &[coracle_store::recurring::RecurringRunRecord],
) -> Result<Vec<RecurringRow>, PageError> {
    let mut pipelines: HashMap<String, String> = HashMap::new();
    let mut experiments: HashMap<String, String> = HashMap::new();
    let mut rows = Vec::with_capacity(records.len());
    for record in records {
        let (pipeline, pipeline_link) = match &record.pipeline_id {
            Some(pipeline_id) => {
                if !pipelines.contains_key(pipeline_id) {
                    let name = state
                        .store
                        .get_pipeline(pipeline_id)
                        .await?
                        .map(|p| p.display_name)
                        .unwrap_or_else(|| format!("{pipeline_id} (deleted)"));
                    pipelines.insert(pipeline_id.clone(), name);
                }
                let mut link = format!("/pipelines/{}", path_segment(pipeline_id));
                if let Some(version_id) = &record.pipeline_version_id {
                    link.push_str(&format!("?version={}", path_segment(version_id)));
                }
                (pipelines[pipeline_id].clone(), link)
            }
            None => (
                record
                    .pipeline_spec
                    .as_ref()
                    .and_then(|spec| plain_spec(spec).pointer("/pipelineInfo/name"))
                    .map(show_value)
                    .unwrap_or_else(|| "(inline spec)".to_owned()),
                String::new(),
            ),
        };
        let experiment_id = record.experiment_id.clone().unwrap_or_default();
        if !experiment_id.is_empty() && !experiments.contains_key(&experiment_id) {
            let name = state
                .store
                .get_experiment(&experiment_id)
                .await?
                .map(|e| e.display_name)
                .unwrap_or_default();
            experiments.insert(experiment_id.clone(), name);
        }
        rows.push(RecurringRow {
            recurring_run_id: record.recurring_run_id.clone(),
            name: record.display_name.clone(),
            status: record.mode.status().to_owned(),
            trigger: trigger_text(&record.trigger),
            pipeline,
            pipeline_link,
            experiment: experiments.get(&experiment_id).cloned().unwrap_or_default(),
            experiment_id,
            created: time(Some(record.created_at)),
        });
    }
    Ok(rows)
}

#[derive(Template)]
#[template(path = "experiment.html")]
struct ExperimentPage {
    experiment_id: String,
    name: String,
    description: String,
    created: String,
    archived: bool,
    table: RunsTable,
    runs_total: i64,
    next_page: String,
    recurring: Vec<RecurringRow>,
    recurring_total: i64,
}

async fn experiment_details(
    State(state): State<AppState>,
    Path(experiment_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> PageResult {
    let Some(experiment) = state.store.get_experiment(&experiment_id).await? else {
        return Err(PageError::not_found(format!(
            "experiment {experiment_id:?} not found"
        )));
    };
    let runs = state
        .store
        .list_api_runs(
            &page_request(query.page_token.as_deref()),
            Some(&experiment_id),
        )
        .await?;
    let table = runs_table(&state, &runs.items).await?;
    let recurring = state
        .store
        .list_recurring_runs(&page_request(None), Some(&experiment_id))
        .await?;
    let base = format!("/experiments/{}", path_segment(&experiment_id));
    super::page(&ExperimentPage {
        next_page: next_page_link(&base, &runs),
        runs_total: runs.total_size,
        table,
        recurring: recurring_rows(&state, &recurring.items).await?,
        recurring_total: recurring.total_size,
        archived: experiment.storage_state == StorageState::Archived,
        experiment_id: experiment.experiment_id,
        name: experiment.display_name,
        description: experiment.description,
        created: time(Some(experiment.created_at)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_of_urls() {
        assert_eq!(file_name_of("http://h/x/add.yaml?raw=1"), "add.yaml");
        assert_eq!(file_name_of("https://h/pkg.tar.gz#frag"), "pkg.tar.gz");
        assert_eq!(file_name_of("http://h/"), "pipeline.yaml");
        assert_eq!(file_name_of("http://h"), "pipeline.yaml");
    }

    #[test]
    fn triggers_as_text() {
        assert_eq!(
            trigger_text(&serde_json::json!({"cron_schedule": {"cron": "0 0 * * * *"}})),
            "cron 0 0 * * * *"
        );
        assert_eq!(
            trigger_text(&serde_json::json!({"periodic_schedule": {"interval_second": "60"}})),
            "every 60 s"
        );
        assert_eq!(trigger_text(&serde_json::json!({})), "once");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(query_value("a b&c=d/e"), "a%20b%26c%3Dd%2Fe");
    }
}
