//! v1 experiments: `ApiExperiment` is `{id, name, description, created_at, storage_state,
//! resource_references}` over the same experiments as v2beta1.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::get;
use chrono::Utc;
use coracle_store::ExperimentRecord;
use coracle_store::run_api::StorageState;
use serde_json::{Value, json};

use super::{
    ListQuery, ResourceType, json_object, list_json, read_references, reference, referenced,
    storage_state, text_field,
};
use crate::list::ApiQuery;
use crate::wire::api_time;
use crate::{ApiError, AppState};

/// v1 list keys that the store names otherwise.
const KEYS: &[(&str, &str)] = &[("id", "experiment_id")];

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/experiments", get(list).post(create))
        .route(
            "/experiments/{id}",
            get(get_one).delete(delete_one).post(action),
        )
}

/// `ApiExperiment`.
pub(super) fn experiment_json(experiment: &ExperimentRecord) -> Value {
    let references: Vec<Value> = if experiment.namespace.is_empty() {
        Vec::new()
    } else {
        vec![reference(
            ResourceType::Namespace,
            &experiment.namespace,
            None,
            true,
        )]
    };
    json!({
        "id": experiment.experiment_id,
        "name": experiment.display_name,
        "description": experiment.description,
        "created_at": api_time(&experiment.created_at),
        "resource_references": references,
        "storage_state": storage_state(experiment.storage_state),
    })
}

async fn create(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = json_object("experiment", &body)?;
    let name = text_field(&body, "name", "experiment")?;
    if name.trim().is_empty() {
        return Err(ApiError::invalid("invalid experiment: name: missing"));
    }
    let references = read_references(&body, "experiment")?;
    let namespace =
        referenced(&references, ResourceType::Namespace, "experiment")?.unwrap_or_default();
    let experiment = ExperimentRecord {
        experiment_id: uuid::Uuid::new_v4().to_string(),
        display_name: name,
        description: text_field(&body, "description", "experiment")?,
        namespace,
        storage_state: StorageState::Available,
        created_at: Utc::now(),
        last_run_created_at: None,
    };
    state.store.insert_experiment(&experiment).await?;
    Ok(Json(experiment_json(&experiment)))
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let request = query.to_request(KEYS)?;
    // A NAMESPACE scope is accepted and ignored (one user); any other is refused.
    query.scope(ResourceType::Namespace)?;
    let page = state.store.list_experiments(None, &request).await?;
    let items = page.items.iter().map(experiment_json).collect();
    Ok(Json(list_json(
        "experiments",
        items,
        page.total_size,
        &page.next_page_token,
    )))
}

const API: &str = "/apis/v1beta1";

async fn get_one(
    State(state): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let experiment_id = crate::experiments::experiment_id(API, "GET", &segment)?;
    let experiment = state
        .store
        .get_experiment(experiment_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("experiment {experiment_id:?} not found")))?;
    Ok(Json(experiment_json(&experiment)))
}

async fn delete_one(
    State(state): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<Value>, ApiError> {
    crate::experiments::delete(&state, API, &segment).await
}

/// `POST /experiments/{id}:archive` (its runs too) and `:unarchive`.
async fn action(
    State(state): State<AppState>,
    Path(segment): Path<String>,
) -> Result<Json<Value>, ApiError> {
    crate::experiments::archive_action(&state, API, &segment).await
}
