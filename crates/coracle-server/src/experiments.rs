//! Experiments: `POST /experiments`, `GET /experiments` (list; `kfp.Client` finds one by
//! name with a `display_name` EQUALS filter), `GET` / `DELETE /experiments/{id}`, and
//! `POST /experiments/{id}:archive` (with the experiment's runs, in one transaction; its
//! recurring runs are disabled) / `:unarchive` (the experiment only).
//!
//! Runs made without an experiment go to the "Default" experiment
//! (`Store::default_experiment_id`), made the first time it is needed.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use chrono::Utc;
use coracle_store::ExperimentRecord;
use coracle_store::run_api::StorageState;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::list::{ApiQuery, ListParams, split_action};
use crate::pipelines::{page_json, parse_body};
use crate::wire::api_time;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/experiments",
            get(list_experiments).post(create_experiment),
        )
        .route(
            "/experiments/{experiment_id}",
            get(get_experiment)
                .delete(delete_experiment)
                .post(experiment_action),
        )
}

/// `V2beta1Experiment` as a request carries it (output fields are ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExperimentBody {
    display_name: String,
    description: String,
    namespace: String,
}

/// `V2beta1Experiment`. An experiment without runs has `last_run_created_at` at the Unix
/// epoch, as KFP shows it.
pub fn experiment_json(experiment: &ExperimentRecord) -> Value {
    json!({
        "experiment_id": experiment.experiment_id,
        "display_name": experiment.display_name,
        "description": experiment.description,
        "created_at": api_time(&experiment.created_at),
        "namespace": experiment.namespace,
        "storage_state": experiment.storage_state.as_str(),
        "last_run_created_at": experiment
            .last_run_created_at
            .as_ref()
            .map_or_else(|| "1970-01-01T00:00:00Z".to_owned(), api_time),
    })
}

async fn create_experiment(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body: ExperimentBody = parse_body("experiment", body)?;
    if body.display_name.trim().is_empty() {
        return Err(ApiError::invalid(
            "invalid experiment: display_name: missing",
        ));
    }
    let experiment = ExperimentRecord {
        experiment_id: uuid::Uuid::new_v4().to_string(),
        display_name: body.display_name,
        description: body.description,
        namespace: body.namespace,
        storage_state: StorageState::Available,
        created_at: Utc::now(),
        last_run_created_at: None,
    };
    state.store.insert_experiment(&experiment).await?;
    Ok(Json(experiment_json(&experiment)))
}

#[derive(Debug, Default, Deserialize)]
struct ListExperimentsQuery {
    #[serde(flatten)]
    list: ListParams,
    namespace: Option<String>,
}

async fn list_experiments(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListExperimentsQuery>,
) -> Result<Json<Value>, ApiError> {
    let request = query.list.to_request()?;
    let namespace = query.namespace.as_deref().filter(|ns| !ns.is_empty());
    let page = state.store.list_experiments(namespace, &request).await?;
    Ok(Json(page_json("experiments", &page, experiment_json)))
}

const API: &str = "/apis/v2beta1";

/// The id of `{api}/experiments/{segment}` for a method that takes no action suffix.
pub(crate) fn experiment_id<'a>(
    api: &str,
    method: &str,
    segment: &'a str,
) -> Result<&'a str, ApiError> {
    crate::list::plain_id(segment, &format!("{method} {api}/experiments/{{id}}"))
}

async fn get_experiment(
    State(state): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let experiment_id = experiment_id(API, "GET", &segment)?;
    let experiment = state
        .store
        .get_experiment(experiment_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("experiment {experiment_id:?} not found")))?;
    Ok(Json(experiment_json(&experiment)))
}

async fn delete_experiment(
    State(state): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<Value>, ApiError> {
    delete(&state, API, &segment).await
}

/// `DELETE {api}/experiments/{id}`, for both API versions.
pub(crate) async fn delete(
    state: &AppState,
    api: &str,
    segment: &str,
) -> Result<Json<Value>, ApiError> {
    let experiment_id = experiment_id(api, "DELETE", segment)?;
    state.store.delete_experiment(experiment_id).await?;
    Ok(Json(json!({})))
}

/// `POST /experiments/{id}:archive` and `:unarchive`.
async fn experiment_action(
    State(state): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<Value>, ApiError> {
    archive_action(&state, API, &segment).await
}

/// `POST {api}/experiments/{id}:archive` (its runs too) and `:unarchive`, for both API
/// versions.
pub(crate) async fn archive_action(
    state: &AppState,
    api: &str,
    segment: &str,
) -> Result<Json<Value>, ApiError> {
    let (experiment_id, action) = split_action(segment);
    let storage_state = match action {
        Some("archive") => StorageState::Archived,
        Some("unarchive") => StorageState::Available,
        Some(other) => {
            return Err(ApiError::not_found(format!(
                "no API route POST {api}/experiments/{{id}}:{other}; the actions are \
                 :archive and :unarchive"
            )));
        }
        None => {
            return Err(ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "POST {api}/experiments/{{id}} needs an action: {{id}}:archive or \
                     {{id}}:unarchive"
                ),
            ));
        }
    };
    state
        .store
        .set_experiment_storage_state(experiment_id, storage_state)
        .await?;
    Ok(Json(json!({})))
}
