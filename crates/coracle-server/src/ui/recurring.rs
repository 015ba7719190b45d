//! Recurring run pages: the list with the create form (`#recurring-form`, sent by
//! `coracle.js` to `POST /apis/v2beta1/recurringruns`), and one recurring run with its status,
//! trigger, parameters, enable/disable/delete buttons and the runs it made.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use coracle_store::listing::{FilterValue, ListRequest, Op, Predicate, Sort};
use coracle_store::run_api::StorageState;
use serde::Deserialize;
use serde_json::Value;

use super::catalog::{
    RecurringRow, next_page_link, page_request, plain_spec, recurring_rows, trigger_text,
};
use super::runs::{RunsTable, runs_table};
use super::{PageError, PageResult, path_segment, show_value, time};
use crate::AppState;

/// How many pipelines, and versions of each, the create form offers.
const FORM_PIPELINES: u32 = 50;
const FORM_VERSIONS: u32 = 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/recurring", get(recurring_list))
        .route("/recurring/{recurring_run_id}", get(recurring_details))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    page_token: Option<String>,
    /// `{pipeline_id}/{version_id}` to preselect in the form.
    version: Option<String>,
}

/// One choice of the form's pipeline version select.
struct VersionOption {
    /// `{pipeline_id}/{version_id}`.
    value: String,
    label: String,
    selected: bool,
}

struct ExperimentOption {
    experiment_id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "recurring_list.html")]
struct RecurringListPage {
    recurring: Vec<RecurringRow>,
    total: i64,
    next_page: String,
    versions: Vec<VersionOption>,
    experiments: Vec<ExperimentOption>,
}

fn sorted_by_name(page_size: u32) -> ListRequest {
    ListRequest {
        page_size,
        page_token: None,
        sort: Some(Sort {
            key: "display_name".to_owned(),
            descending: false,
        }),
        filter: Vec::new(),
    }
}

async fn recurring_list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let page = state
        .store
        .list_recurring_runs(&page_request(query.page_token.as_deref()), None)
        .await?;
    let recurring = recurring_rows(&state, &page.items).await?;

    // The form's choices: the pipelines by name, each with its newest versions.
    let preselected = query.version.unwrap_or_default();
    let mut versions = Vec::new();
    let pipelines = state
        .store
        .list_pipelines(None, &sorted_by_name(FORM_PIPELINES))
        .await?;
    let newest = ListRequest {
        page_size: FORM_VERSIONS,
        ..page_request(None)
    };
    for pipeline in &pipelines.items {
        let page = state
            .store
            .list_pipeline_versions(&pipeline.pipeline_id, &newest)
            .await?;
        for version in page.items {
            let value = format!("{}/{}", pipeline.pipeline_id, version.pipeline_version_id);
            versions.push(VersionOption {
                selected: value == preselected,
                label: format!("{} — {}", pipeline.display_name, version.display_name),
                value,
            });
        }
    }
    let mut experiments_request = sorted_by_name(200);
    experiments_request.filter.push(Predicate {
        key: "storage_state".to_owned(),
        op: Op::Equals,
        value: FilterValue::String(StorageState::Available.as_str().to_owned()),
    });
    let experiments = state
        .store
        .list_experiments(None, &experiments_request)
        .await?
        .items
        .into_iter()
        .map(|experiment| ExperimentOption {
            experiment_id: experiment.experiment_id,
            name: experiment.display_name,
        })
        .collect();
    super::page(&RecurringListPage {
        recurring,
        total: page.total_size,
        next_page: next_page_link("/recurring", &page),
        versions,
        experiments,
    })
}

struct ParameterRow {
    name: String,
    value: String,
}

#[derive(Template)]
#[template(path = "recurring_run.html")]
struct RecurringRunPage {
    recurring_run_id: String,
    name: String,
    description: String,
    status: String,
    trigger: String,
    start_time: String,
    end_time: String,
    max_concurrency: i64,
    no_catchup: bool,
    pipeline: String,
    pipeline_link: String,
    experiment: String,
    experiment_id: String,
    created: String,
    updated: String,
    last_fired: String,
    error: String,
    parameters: Vec<ParameterRow>,
    table: RunsTable,
    runs_total: i64,
    next_page: String,
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    page_token: Option<String>,
}

/// A time field of a trigger's schedule, as the page shows it.
fn schedule_time(trigger: &Value, names: &[&str]) -> String {
    trigger
        .as_object()
        .into_iter()
        .flat_map(|object| object.values())
        .filter_map(|schedule| names.iter().find_map(|name| schedule.get(*name)))
        .map(show_value)
        .next()
        .unwrap_or_default()
}

async fn recurring_details(
    State(state): State<AppState>,
    Path(recurring_run_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> PageResult {
    let Some(record) = state.store.get_recurring_run(&recurring_run_id).await? else {
        return Err(PageError::not_found(format!(
            "recurring run {recurring_run_id:?} not found"
        )));
    };
    let row = recurring_rows(&state, std::slice::from_ref(&record))
        .await?
        .pop()
        .ok_or_else(|| PageError::not_found("recurring run"))?;
    let mut request = page_request(query.page_token.as_deref());
    request.filter.push(Predicate {
        key: "recurring_run_id".to_owned(),
        op: Op::Equals,
        value: FilterValue::String(recurring_run_id.clone()),
    });
    let runs = state.store.list_api_runs(&request, None).await?;
    let table = runs_table(&state, &runs.items).await?;
    let parameters = record
        .runtime_config
        .get("parameters")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, value)| ParameterRow {
            name: name.clone(),
            value: show_value(value),
        })
        .collect();
    let base = format!("/recurring/{}", path_segment(&recurring_run_id));
    let pipeline = match (&record.pipeline_spec, row.pipeline_link.is_empty()) {
        (Some(spec), true) => plain_spec(spec)
            .pointer("/pipelineInfo/name")
            .map(show_value)
            .map(|name| format!("{name} (spec given inline)"))
            .unwrap_or(row.pipeline),
        _ => row.pipeline,
    };
    super::page(&RecurringRunPage {
        recurring_run_id: record.recurring_run_id.clone(),
        name: record.display_name.clone(),
        description: record.description.clone(),
        status: record.mode.status().to_owned(),
        trigger: trigger_text(&record.trigger),
        start_time: schedule_time(&record.trigger, &["start_time", "startTime"]),
        end_time: schedule_time(&record.trigger, &["end_time", "endTime"]),
        max_concurrency: record.max_concurrency,
        no_catchup: record.no_catchup,
        pipeline,
        pipeline_link: row.pipeline_link,
        experiment: row.experiment,
        experiment_id: row.experiment_id,
        created: time(Some(record.created_at)),
        updated: time(Some(record.updated_at)),
        last_fired: time(record.last_fired_at),
        error: record.error.clone().unwrap_or_default(),
        parameters,
        table,
        runs_total: runs.total_size,
        next_page: next_page_link(&base, &runs),
    })
}
