//! v1 pipelines and pipeline versions over the same catalog as v2beta1. A pipeline's default
//! version is its newest unless `default_version/{id}` set one (until the next upload, as in
//! KFP v1). Uploads go through the v2beta1 upload code (the file is checked as
//! `coracle run` checks one: a KFP v1 Argo Workflow is translated on load).
//!
//! `ApiPipeline`: `{id, created_at, name, description, parameters, default_version}`;
//! `ApiPipelineVersion`: `{id, name, created_at, parameters, code_source_url, package_url,
//! resource_references: [PIPELINE owner], description}`; `parameters` are the root's input
//! parameters with their defaults as text. Templates are the stored spec, as JSON text (which
//! YAML readers read), its platforms document after `---` when it has one.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::routing::{get, post};
use coracle_store::listing::ListRequest;
use coracle_store::{PipelineRecord, PipelineVersionRecord};
use serde_json::{Map, Value, json};

use super::{
    ListQuery, ResourceType, json_object, list_json, read_references, reference, referenced,
    text_field,
};
use crate::list::ApiQuery;
use crate::pipelines::{UploadQuery, insert_uploaded_pipeline, insert_uploaded_version};
use crate::wire::api_time;
use crate::{ApiError, AppState};

const PIPELINE_KEYS: &[(&str, &str)] = &[("id", "pipeline_id")];
const VERSION_KEYS: &[(&str, &str)] = &[("id", "pipeline_version_id")];

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/pipelines", get(list_pipelines).post(create_pipeline))
        .route("/pipelines/upload", post(upload_pipeline))
        .route("/pipelines/upload_version", post(upload_version))
        .route("/pipelines/{id}", get(get_pipeline).delete(delete_pipeline))
        .route("/pipelines/{id}/templates", get(get_pipeline_template))
        .route(
            "/pipelines/{id}/default_version/{version_id}",
            post(set_default_version),
        )
        .route(
            "/pipeline_versions",
            get(list_versions).post(create_version),
        )
        .route(
            "/pipeline_versions/{id}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/pipeline_versions/{id}/templates",
            get(get_version_template),
        )
}

// ---- shapes ---------------------------------------------------------------------------------

/// The root input parameters of a stored spec, `[{name, value}]` (`value`: the default as
/// text, left out when there is none).
fn spec_parameters(stored: &Value) -> Vec<Value> {
    let plain = crate::ui::catalog::plain_spec(stored);
    let Ok(spec) = serde_json::from_value::<coracle_spec::PipelineSpec>(plain.clone()) else {
        return Vec::new();
    };
    spec.root
        .input_parameters()
        .map(|(name, input)| {
            let mut parameter = json!({"name": name});
            if let Some(default) = &input.default_value {
                parameter["value"] = json!(super::parameter_text(default));
            }
            parameter
        })
        .collect()
}

/// `ApiPipelineVersion`; `spec` gives its parameters.
fn version_json(version: &PipelineVersionRecord, spec: Option<&Value>) -> Value {
    let mut body = json!({
        "id": version.pipeline_version_id,
        "name": version.name,
        "created_at": api_time(&version.created_at),
        "code_source_url": version.code_source_url,
        "description": version.description,
        "resource_references": [reference(
            ResourceType::Pipeline,
            &version.pipeline_id,
            None,
            true,
        )],
    });
    if let Some(spec) = spec {
        body["parameters"] = Value::Array(spec_parameters(spec));
    }
    if !version.package_url.is_empty() {
        body["package_url"] = json!({"pipeline_url": version.package_url});
    }
    body
}

/// `ApiPipeline` with its default version, when it has one.
fn pipeline_json(
    pipeline: &PipelineRecord,
    default_version: Option<&(PipelineVersionRecord, Value)>,
) -> Value {
    let mut body = json!({
        "id": pipeline.pipeline_id,
        "created_at": api_time(&pipeline.created_at),
        "name": pipeline.name,
        "description": pipeline.description,
    });
    if let Some((version, spec)) = default_version {
        body["parameters"] = Value::Array(spec_parameters(spec));
        body["default_version"] = version_json(version, Some(spec));
    }
    body
}

/// The default version of a pipeline (the newest unless one was set) with its spec.
async fn default_version(
    state: &AppState,
    pipeline_id: &str,
) -> Result<Option<(PipelineVersionRecord, Value)>, ApiError> {
    let Some((version_id, _)) = state
        .store
        .pipeline_version_spec_text(pipeline_id, None)
        .await?
    else {
        return Ok(None);
    };
    Ok(state
        .store
        .get_pipeline_version(pipeline_id, &version_id)
        .await?)
}

/// A version and its spec found by its id alone (v1 names versions without their pipeline).
pub(super) async fn find_version(
    state: &AppState,
    version_id: &str,
) -> Result<(PipelineVersionRecord, Value), ApiError> {
    let mut request = ListRequest {
        page_size: coracle_store::listing::MAX_PAGE_SIZE,
        page_token: None,
        sort: None,
        filter: Vec::new(),
    };
    loop {
        let page = state.store.list_pipelines(None, &request).await?;
        for pipeline in &page.items {
            if let Some(found) = state
                .store
                .get_pipeline_version(&pipeline.pipeline_id, version_id)
                .await?
            {
                return Ok(found);
            }
        }
        if page.next_page_token.is_empty() {
            return Err(ApiError::not_found(format!(
                "pipeline version {version_id:?} not found"
            )));
        }
        request.page_token = Some(page.next_page_token);
    }
}

/// A stored spec as template text: the spec, then its platforms document after `---`.
fn template_json(stored: &Value) -> Value {
    let text = match (stored.get("pipeline_spec"), stored.get("platform_spec")) {
        (Some(spec), Some(platform)) if spec.is_object() => format!(
            "{}\n---\n{}\n",
            pretty(spec),
            pretty(platform.get("platforms").map_or(platform, |p| p))
        ),
        _ => format!("{}\n", pretty(stored)),
    };
    json!({"template": text})
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

// ---- pipelines ------------------------------------------------------------------------------

async fn upload_pipeline(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    query.tags()?;
    let (file_name, bytes) = crate::pipelines::read_upload(multipart).await?;
    let (pipeline, version, spec) =
        insert_uploaded_pipeline(&state, &query, &file_name, &bytes).await?;
    Ok(Json(pipeline_json(&pipeline, Some(&(version, spec)))))
}

async fn upload_version(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    query.tags()?;
    if let Some(pipeline_id) = query.pipelineid.as_deref().filter(|id| !id.is_empty()) {
        crate::pipelines::find_pipeline(&state, pipeline_id).await?;
    }
    let (file_name, bytes) = crate::pipelines::read_upload(multipart).await?;
    let (version, spec) = insert_uploaded_version(&state, &query, &file_name, &bytes).await?;
    Ok(Json(version_json(&version, Some(&spec))))
}

/// Downloads a pipeline file for `POST /pipelines` and `POST /pipeline_versions`.
async fn fetch(url: &str, at: &str) -> Result<(String, Vec<u8>), ApiError> {
    let url = url.trim().to_owned();
    let lower = url.to_ascii_lowercase();
    if url.is_empty() {
        return Err(ApiError::invalid(format!(
            "invalid {at}: missing (give the http(s) URL of the pipeline file, or upload it \
             with POST /apis/v1beta1/pipelines/upload)"
        )));
    }
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err(ApiError::invalid(format!(
            "invalid {at} {url:?}: only http:// and https:// URLs can be fetched"
        )));
    }
    let fetch_url = url.clone();
    let bytes = tokio::task::spawn_blocking(move || crate::ui::catalog::fetch(&fetch_url))
        .await
        .map_err(|error| ApiError::internal(format!("failed to fetch {url}: {error}")))??;
    Ok((crate::ui::catalog::file_name_of(&url), bytes))
}

/// The `pipeline_url` of a body's `url` / `package_url` object.
fn url_of(body: &Map<String, Value>, field: &str, at: &str) -> Result<String, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::Object(url)) => text_field(url, "pipeline_url", &format!("{at}.{field}")),
        Some(other) => Err(ApiError::invalid(format!(
            "invalid {at}.{field}: expected {{pipeline_url}}, found {}",
            crate::wire::kind_of(other)
        ))),
    }
}

/// `POST /pipelines` `{name, description, url: {pipeline_url}}`: the file is fetched and
/// stored as an upload.
async fn create_pipeline(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = json_object("pipeline", &body)?;
    let url = url_of(&body, "url", "pipeline")?;
    let query = UploadQuery {
        name: Some(text_field(&body, "name", "pipeline")?),
        description: Some(text_field(&body, "description", "pipeline")?),
        ..UploadQuery::default()
    };
    let (file_name, bytes) = fetch(&url, "pipeline.url.pipeline_url").await?;
    let (pipeline, version, spec) =
        insert_uploaded_pipeline(&state, &query, &file_name, &bytes).await?;
    Ok(Json(pipeline_json(&pipeline, Some(&(version, spec)))))
}

async fn get_pipeline(
    State(state): State<AppState>,
    Path(pipeline_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let pipeline = crate::pipelines::find_pipeline(&state, &pipeline_id).await?;
    let default = default_version(&state, &pipeline_id).await?;
    Ok(Json(pipeline_json(&pipeline, default.as_ref())))
}

async fn list_pipelines(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let request = query.to_request(PIPELINE_KEYS)?;
    query.scope(ResourceType::Namespace)?;
    let page = state.store.list_pipelines(None, &request).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for pipeline in &page.items {
        let default = default_version(&state, &pipeline.pipeline_id).await?;
        items.push(pipeline_json(pipeline, default.as_ref()));
    }
    Ok(Json(list_json(
        "pipelines",
        items,
        page.total_size,
        &page.next_page_token,
    )))
}

/// Deletes a pipeline with all its versions, as KFP v1 does.
async fn delete_pipeline(
    State(state): State<AppState>,
    Path(pipeline_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.store.delete_pipeline(&pipeline_id, true).await?;
    Ok(Json(json!({})))
}

async fn get_pipeline_template(
    State(state): State<AppState>,
    Path(pipeline_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    crate::pipelines::find_pipeline(&state, &pipeline_id).await?;
    let (_, spec) = default_version(&state, &pipeline_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("pipeline {pipeline_id:?} has no versions")))?;
    Ok(Json(template_json(&spec)))
}

/// Makes a version the pipeline's default: the version `get_pipeline` shows and a run of the
/// pipeline without a version runs, until another version is uploaded.
async fn set_default_version(
    State(state): State<AppState>,
    Path((pipeline_id, version_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    crate::pipelines::find_pipeline(&state, &pipeline_id).await?;
    state
        .store
        .set_default_pipeline_version(&pipeline_id, &version_id)
        .await?;
    Ok(Json(json!({})))
}

// ---- versions -------------------------------------------------------------------------------

/// `POST /pipeline_versions` `{name, description, package_url: {pipeline_url},
/// resource_references: [{key: {type: PIPELINE, id}}]}`: the file is fetched and stored as an
/// uploaded version.
async fn create_version(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = json_object("pipeline_version", &body)?;
    let references = read_references(&body, "pipeline_version")?;
    let pipeline_id = referenced(&references, ResourceType::Pipeline, "pipeline_version")?
        .ok_or_else(|| {
            ApiError::invalid(
                "invalid pipeline_version.resource_references: name the pipeline with a \
                 PIPELINE reference",
            )
        })?;
    crate::pipelines::find_pipeline(&state, &pipeline_id).await?;
    let url = url_of(&body, "package_url", "pipeline_version")?;
    let query = UploadQuery {
        name: Some(text_field(&body, "name", "pipeline_version")?),
        description: Some(text_field(&body, "description", "pipeline_version")?),
        pipelineid: Some(pipeline_id),
        ..UploadQuery::default()
    };
    let (file_name, bytes) = fetch(&url, "pipeline_version.package_url.pipeline_url").await?;
    let (version, spec) = insert_uploaded_version(&state, &query, &file_name, &bytes).await?;
    Ok(Json(version_json(&version, Some(&spec))))
}

async fn get_version(
    State(state): State<AppState>,
    Path(version_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (version, spec) = find_version(&state, &version_id).await?;
    Ok(Json(version_json(&version, Some(&spec))))
}

async fn get_version_template(
    State(state): State<AppState>,
    Path(version_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (_, spec) = find_version(&state, &version_id).await?;
    Ok(Json(template_json(&spec)))
}

async fn delete_version(
    State(state): State<AppState>,
    Path(version_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (version, _) = find_version(&state, &version_id).await?;
    state
        .store
        .delete_pipeline_version(&version.pipeline_id, &version_id)
        .await?;
    Ok(Json(json!({})))
}

/// `GET /pipeline_versions?resource_key.type=PIPELINE&resource_key.id=…`.
async fn list_versions(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let request = query.to_request(VERSION_KEYS)?;
    let pipeline_id = query.scope(ResourceType::Pipeline)?.ok_or_else(|| {
        ApiError::invalid(
            "invalid resource_key: name the pipeline whose versions to list \
             (resource_key.type=PIPELINE&resource_key.id=…)",
        )
    })?;
    let page = state
        .store
        .list_pipeline_versions(&pipeline_id, &request)
        .await?;
    let items = page
        .items
        .iter()
        .map(|version| version_json(version, None))
        .collect();
    Ok(Json(list_json(
        "versions",
        items,
        page.total_size,
        &page.next_page_token,
    )))
}
