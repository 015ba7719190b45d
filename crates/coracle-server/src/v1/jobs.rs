//! v1 jobs: the recurring runs of v2beta1, created, scheduled and fired by the same code.
//!
//! `ApiJob`: `{id, name, description, pipeline_spec, resource_references, service_account,
//! max_concurrency, trigger: {cron_schedule | periodic_schedule}, mode: ENABLED | DISABLED,
//! enabled, no_catchup, created_at, updated_at, status, error}`. A job's workflow manifest is
//! translated and checked when the job is made and kept in the spec's stored form.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use coracle_store::recurring::{RecurringRunMode, RecurringRunRecord};
use serde_json::{Map, Value, json};

use super::runs::{V1Pipeline, read_run_spec};
use super::{
    ListQuery, ResourceType, json_object, list_json, parameter_list, reference, text_field,
};
use crate::list::ApiQuery;
use crate::wire::{api_time, kind_of};
use crate::{ApiError, AppState};

const KEYS: &[(&str, &str)] = &[("id", "recurring_run_id"), ("name", "display_name")];

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/jobs", get(list).post(create))
        .route("/jobs/{id}", get(get_one).delete(delete_one))
        .route("/jobs/{id}/enable", post(enable))
        .route("/jobs/{id}/disable", post(disable))
}

/// `ApiJob`.
fn job_json(record: &RecurringRunRecord) -> Value {
    let parameters = record
        .runtime_config
        .get("parameters")
        .cloned()
        .unwrap_or(Value::Null);
    let mut pipeline_spec = json!({"parameters": parameter_list(&parameters)});
    let mut references = Vec::new();
    if let Some(experiment_id) = &record.experiment_id {
        references.push(reference(
            ResourceType::Experiment,
            experiment_id,
            None,
            true,
        ));
    }
    if let Some(pipeline_id) = &record.pipeline_id {
        pipeline_spec["pipeline_id"] = json!(pipeline_id);
    }
    if let Some(version_id) = &record.pipeline_version_id {
        references.push(reference(
            ResourceType::PipelineVersion,
            version_id,
            None,
            false,
        ));
    }
    if let Some(spec) = &record.pipeline_spec {
        let plain = crate::ui::catalog::plain_spec(spec);
        if let Some(name) = plain.pointer("/pipelineInfo/name") {
            pipeline_spec["pipeline_name"] = name.clone();
        }
        pipeline_spec["pipeline_manifest"] = json!(spec.to_string());
    }
    let enabled = record.mode == RecurringRunMode::Enable;
    let mut body = json!({
        "id": record.recurring_run_id,
        "name": record.display_name,
        "description": record.description,
        "pipeline_spec": pipeline_spec,
        "resource_references": references,
        "service_account": record.service_account,
        "max_concurrency": record.max_concurrency.to_string(),
        "trigger": record.trigger,
        "mode": if enabled { "ENABLED" } else { "DISABLED" },
        "created_at": api_time(&record.created_at),
        "updated_at": api_time(&record.updated_at),
        "status": if enabled { "Enabled" } else { "Disabled" },
        "enabled": enabled,
        "no_catchup": record.no_catchup,
    });
    if let Some(error) = &record.error {
        body["error"] = json!(error);
    }
    body
}

/// `POST /jobs`: the job as a v2beta1 recurring run, made by the same code.
async fn create(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = json_object("job", &body)?;
    let spec = read_run_spec(&state, &body, "job").await?;
    let mut recurring = Map::new();
    recurring.insert(
        "display_name".into(),
        json!(text_field(&body, "name", "job")?),
    );
    recurring.insert(
        "description".into(),
        json!(text_field(&body, "description", "job")?),
    );
    recurring.insert(
        "service_account".into(),
        json!(text_field(&body, "service_account", "job")?),
    );
    if let Some(experiment_id) = &spec.experiment_id {
        recurring.insert("experiment_id".into(), json!(experiment_id));
    }
    match spec.pipeline {
        V1Pipeline::Manifest { text, field } => {
            // Kept as the stored form of a spec (what an upload stores), not as text.
            let stored = crate::pipelines::load_spec(
                &format!("job.pipeline_spec.{field}"),
                text.as_bytes(),
            )?;
            recurring.insert("pipeline_spec".into(), stored);
        }
        V1Pipeline::Version {
            pipeline_id,
            version_id,
        } => {
            recurring.insert(
                "pipeline_version_reference".into(),
                json!({"pipeline_id": pipeline_id, "pipeline_version_id": version_id}),
            );
        }
    }
    let mut runtime_config = json!({"parameters": spec.parameters});
    if let Some(root) = spec.pipeline_root {
        runtime_config["pipeline_root"] = json!(root);
    }
    recurring.insert("runtime_config".into(), runtime_config);
    for field in ["trigger", "max_concurrency"] {
        if let Some(value) = body.get(field).filter(|value| !value.is_null()) {
            recurring.insert(field.into(), value.clone());
        }
    }
    let no_catchup = match body.get("no_catchup") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(value)) => *value,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "invalid job.no_catchup: expected true or false, found {}",
                kind_of(other)
            )));
        }
    };
    recurring.insert("no_catchup".into(), json!(no_catchup));
    // v1 says `enabled` (false when absent); `mode` ENABLED / DISABLED is read too.
    let enabled = match body.get("enabled") {
        Some(Value::Bool(enabled)) => *enabled,
        None | Some(Value::Null) => match body.get("mode") {
            None | Some(Value::Null) => false,
            Some(Value::String(mode)) => matches!(mode.as_str(), "ENABLED" | "ENABLE"),
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "invalid job.mode: {other} is not ENABLED or DISABLED"
                )));
            }
        },
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "invalid job.enabled: expected true or false, found {}",
                kind_of(other)
            )));
        }
    };
    recurring.insert(
        "mode".into(),
        json!(if enabled { "ENABLE" } else { "DISABLE" }),
    );
    let record = crate::recurring::create_recurring_run(&state, &Value::Object(recurring)).await?;
    Ok(Json(job_json(&record)))
}

async fn get_one(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = crate::recurring::existing(&state, &job_id).await?;
    Ok(Json(job_json(&record)))
}

async fn delete_one(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    crate::recurring::delete(&state, &job_id).await?;
    Ok(Json(json!({})))
}

async fn enable(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    crate::recurring::set_mode(&state, &job_id, RecurringRunMode::Enable).await?;
    Ok(Json(json!({})))
}

async fn disable(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    crate::recurring::set_mode(&state, &job_id, RecurringRunMode::Disable).await?;
    Ok(Json(json!({})))
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let request = query.to_request(KEYS)?;
    let experiment_id = query.scope(ResourceType::Experiment)?;
    let page = state
        .store
        .list_recurring_runs(&request, experiment_id.as_deref())
        .await?;
    let items = page.items.iter().map(job_json).collect();
    Ok(Json(list_json(
        "jobs",
        items,
        page.total_size,
        &page.next_page_token,
    )))
}
