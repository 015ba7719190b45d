//! Pipelines and their versions: `POST /pipelines`, `POST /pipelines/create` (a pipeline with
//! its first version), `GET /pipelines[/{id}]`, `GET /pipelines/names/{name}`,
//! `DELETE /pipelines/{id}` (`cascade=true` to delete one that has versions), versions under
//! `/pipelines/{id}/versions[/{version_id}]`, and the uploads `POST /pipelines/upload` and
//! `POST /pipelines/upload_version` (multipart field `uploadfile`).
//!
//! Every spec is checked as `coracle run` checks a file before anything is stored: a pipeline
//! file may be YAML or JSON (with an optional platforms document), or a `.zip` / `.tar.gz`
//! package holding one; a bad one is a 400 whose message names the file and the spec path.
//! Uploads larger than [`MAX_UPLOAD_BYTES`] (32 MiB, as KFP documents) are refused with 413.
//!
//! A version's `pipeline_spec` is the spec as a JSON object, or `{"pipeline_spec",
//! "platform_spec"}` when the file has a platforms document (as the SDK sends such a spec);
//! it is stored in that form. Version lists leave the spec out (fetch one version for it).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::routing::{get, post};
use chrono::Utc;
use coracle_store::listing::Page;
use coracle_store::{PipelineRecord, PipelineVersionRecord, Tags};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::list::{ApiQuery, ListParams};
use crate::wire::api_time;
use crate::{ApiError, AppState};

/// Largest pipeline file an upload may carry.
pub const MAX_UPLOAD_BYTES: usize = 32 << 20;

/// Room for the multipart framing around the file.
const MULTIPART_OVERHEAD_BYTES: usize = 1 << 20;

/// Largest JSON body of the other pipeline requests (a spec inline).
const MAX_JSON_BYTES: usize = 32 << 20;

pub fn routes() -> Router<AppState> {
    let uploads = Router::new()
        .route("/pipelines/upload", post(upload_pipeline))
        .route("/pipelines/upload_version", post(upload_pipeline_version))
        .layer(DefaultBodyLimit::max(
            MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES,
        ));
    Router::new()
        .route("/pipelines", get(list_pipelines).post(create_pipeline))
        .route("/pipelines/create", post(create_pipeline_and_version))
        .route("/pipelines/names/{name}", get(get_pipeline_by_name))
        .route(
            "/pipelines/{pipeline_id}",
            get(get_pipeline).delete(delete_pipeline),
        )
        .route(
            "/pipelines/{pipeline_id}/versions",
            get(list_versions).post(create_version),
        )
        .route(
            "/pipelines/{pipeline_id}/versions/{pipeline_version_id}",
            get(get_version).delete(delete_version),
        )
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .merge(uploads)
}

// ---- wire shapes ----------------------------------------------------------------------------

/// `V2beta1Pipeline` as a request carries it (output fields are ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PipelineBody {
    name: String,
    display_name: String,
    description: String,
    namespace: String,
    tags: Option<Tags>,
}

/// `V2beta1PipelineVersion` as a request carries it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VersionBody {
    pipeline_id: String,
    name: String,
    display_name: String,
    description: String,
    code_source_url: String,
    package_url: Option<UrlBody>,
    pipeline_spec: Option<Value>,
    tags: Option<Tags>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UrlBody {
    pipeline_url: String,
}

/// `V2beta1CreatePipelineAndVersionRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CreatePipelineAndVersionBody {
    pipeline: Option<PipelineBody>,
    pipeline_version: Option<VersionBody>,
}

/// `V2beta1Pipeline`.
pub fn pipeline_json(pipeline: &PipelineRecord) -> Value {
    let mut body = json!({
        "pipeline_id": pipeline.pipeline_id,
        "name": pipeline.name,
        "display_name": pipeline.display_name,
        "description": pipeline.description,
        "created_at": api_time(&pipeline.created_at),
        "namespace": pipeline.namespace,
    });
    if !pipeline.tags.is_empty() {
        body["tags"] = json!(pipeline.tags);
    }
    body
}

/// `V2beta1PipelineVersion`; `spec` is left out of listings.
pub fn version_json(version: &PipelineVersionRecord, spec: Option<&Value>) -> Value {
    let mut body = json!({
        "pipeline_id": version.pipeline_id,
        "pipeline_version_id": version.pipeline_version_id,
        "name": version.name,
        "display_name": version.display_name,
        "description": version.description,
        "created_at": api_time(&version.created_at),
        "code_source_url": version.code_source_url,
    });
    if !version.package_url.is_empty() {
        body["package_url"] = json!({"pipeline_url": version.package_url});
    }
    if let Some(spec) = spec {
        body["pipeline_spec"] = spec.clone();
    }
    if !version.tags.is_empty() {
        body["tags"] = json!(version.tags);
    }
    body
}

/// A list response: `{<items_key>: [...], total_size, next_page_token}`, the list and the
/// token left out when empty (as KFP leaves out empty fields).
pub fn page_json<T>(items_key: &str, page: &Page<T>, item: impl Fn(&T) -> Value) -> Value {
    let mut body = Map::new();
    if !page.items.is_empty() {
        body.insert(
            items_key.to_owned(),
            Value::Array(page.items.iter().map(item).collect()),
        );
    }
    body.insert("total_size".to_owned(), json!(page.total_size));
    if !page.next_page_token.is_empty() {
        body.insert(
            "next_page_token".to_owned(),
            json!(page.next_page_token.clone()),
        );
    }
    Value::Object(body)
}

/// A JSON body into `T`; a 400 names the field at fault (`pipeline.name: invalid type: …`).
/// A body over the size limit is a 413.
pub(crate) fn parse_body<T: DeserializeOwned>(
    what: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            format!("invalid {what}: {}", rejection.body_text()),
        )
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(format!(
            "invalid {what}: the request has no JSON body"
        )));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(&body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            ApiError::invalid(format!("invalid {what}: {inner}"))
        } else {
            ApiError::invalid(format!("invalid {what}: {path}: {inner}"))
        }
    })
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The pipeline a create request describes: `name` falls back to `display_name` and the other
/// way round; one of them is needed.
fn new_pipeline(body: PipelineBody, what: &str) -> Result<PipelineRecord, ApiError> {
    let name = first_non_empty(&body.name, &body.display_name).to_owned();
    if name.is_empty() {
        return Err(ApiError::invalid(format!(
            "invalid {what}: name: missing (give name or display_name)"
        )));
    }
    Ok(PipelineRecord {
        pipeline_id: new_id(),
        display_name: first_non_empty(&body.display_name, &name).to_owned(),
        name,
        description: body.description,
        namespace: body.namespace,
        tags: body.tags.unwrap_or_default(),
        created_at: Utc::now(),
    })
}

fn first_non_empty<'a>(first: &'a str, second: &'a str) -> &'a str {
    if first.trim().is_empty() {
        second
    } else {
        first
    }
}

/// A version of `pipeline_id` and its spec, from a request body; the name defaults to
/// `default_name`.
fn new_version(
    body: VersionBody,
    pipeline_id: &str,
    default_name: &str,
    what: &str,
) -> Result<(PipelineVersionRecord, Value), ApiError> {
    let package_url = body
        .package_url
        .map(|url| url.pipeline_url)
        .unwrap_or_default();
    let spec = match body.pipeline_spec {
        Some(spec) if !spec.is_null() => spec_from_json(&spec, &format!("{what}.pipeline_spec"))?,
        _ if !package_url.is_empty() => {
            return Err(ApiError::invalid(format!(
                "invalid {what}.package_url {package_url:?}: this server does not fetch \
                 pipelines from URLs; give pipeline_spec, or upload the file with POST \
                 /apis/v2beta1/pipelines/upload_version"
            )));
        }
        _ => {
            return Err(ApiError::invalid(format!(
                "invalid {what}: pipeline_spec: missing (give the pipeline spec as a JSON \
                 object)"
            )));
        }
    };
    let name = first_non_empty(&body.name, &body.display_name);
    let name = first_non_empty(name, default_name).to_owned();
    if name.is_empty() {
        return Err(ApiError::invalid(format!(
            "invalid {what}: name: missing (give name or display_name)"
        )));
    }
    let version = PipelineVersionRecord {
        pipeline_version_id: new_id(),
        pipeline_id: pipeline_id.to_owned(),
        display_name: first_non_empty(&body.display_name, &name).to_owned(),
        name,
        description: body.description,
        code_source_url: body.code_source_url,
        package_url,
        tags: body.tags.unwrap_or_default(),
        created_at: Utc::now(),
    };
    Ok((version, spec))
}

/// A spec given as JSON (the spec object, or `{pipeline_spec, platform_spec}`), checked, in
/// its stored form.
fn spec_from_json(value: &Value, what: &str) -> Result<Value, ApiError> {
    let text = match value {
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
                "invalid {what}: expected a JSON object, found {}",
                match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    Value::String(_) => "a string",
                    Value::Array(_) => "a list",
                    Value::Object(_) => "an object",
                }
            )));
        }
    };
    load_spec(what, text.as_bytes())
}

/// Loads and checks a pipeline file (`source_name` names it in messages) into the stored form.
pub(crate) fn load_spec(source_name: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    let pipeline = coracle_spec::load_bytes(source_name, bytes).map_err(|error| {
        let message = match error {
            coracle_spec::Error::Invalid {
                source_name,
                issues,
            } => {
                let issues: Vec<String> = issues.0.iter().map(ToString::to_string).collect();
                format!("{source_name}: invalid pipeline: {}", issues.join("; "))
            }
            other => other.to_string(),
        };
        ApiError::invalid(message)
    })?;
    // The platforms document travels beside the spec here, as the SDK sends it.
    let mut plain = pipeline.spec;
    plain.platforms = None;
    let spec = serde_json::to_value(&plain)
        .map_err(|error| ApiError::internal(format!("failed to encode the spec: {error}")))?;
    Ok(match pipeline.platforms {
        // The platforms document, as the SDK's `platform_spec` carries it.
        Some(platforms) => json!({
            "pipeline_spec": spec,
            "platform_spec": {"platforms": platforms},
        }),
        None => spec,
    })
}

// ---- pipelines ------------------------------------------------------------------------------

async fn create_pipeline(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body: PipelineBody = parse_body("pipeline", body)?;
    let pipeline = new_pipeline(body, "pipeline")?;
    state.store.insert_pipeline(&pipeline, None).await?;
    Ok(Json(pipeline_json(&pipeline)))
}

async fn create_pipeline_and_version(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body: CreatePipelineAndVersionBody = parse_body("request", body)?;
    let pipeline = new_pipeline(
        body.pipeline
            .ok_or_else(|| ApiError::invalid("invalid request: pipeline: missing"))?,
        "pipeline",
    )?;
    let (version, spec) = new_version(
        body.pipeline_version
            .ok_or_else(|| ApiError::invalid("invalid request: pipeline_version: missing"))?,
        &pipeline.pipeline_id,
        &pipeline.name,
        "pipeline_version",
    )?;
    let version = PipelineVersionRecord {
        created_at: pipeline.created_at,
        ..version
    };
    state
        .store
        .insert_pipeline(&pipeline, Some((&version, &spec)))
        .await?;
    Ok(Json(pipeline_json(&pipeline)))
}

async fn get_pipeline(
    State(state): State<AppState>,
    Path(pipeline_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let pipeline = find_pipeline(&state, &pipeline_id).await?;
    Ok(Json(pipeline_json(&pipeline)))
}

pub(crate) async fn find_pipeline(
    state: &AppState,
    pipeline_id: &str,
) -> Result<PipelineRecord, ApiError> {
    state
        .store
        .get_pipeline(pipeline_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("pipeline {pipeline_id:?} not found")))
}

#[derive(Debug, Default, Deserialize)]
struct NamespaceQuery {
    namespace: Option<String>,
}

async fn get_pipeline_by_name(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<NamespaceQuery>,
) -> Result<Json<Value>, ApiError> {
    let namespace = query.namespace.unwrap_or_default();
    let pipeline = state
        .store
        .get_pipeline_by_name(&namespace, &name)
        .await?
        .ok_or_else(|| {
            if namespace.is_empty() {
                ApiError::not_found(format!("pipeline named {name:?} not found"))
            } else {
                ApiError::not_found(format!(
                    "pipeline named {name:?} not found in namespace {namespace:?}"
                ))
            }
        })?;
    Ok(Json(pipeline_json(&pipeline)))
}

#[derive(Debug, Default, Deserialize)]
struct ListPipelinesQuery {
    #[serde(flatten)]
    list: ListParams,
    namespace: Option<String>,
}

async fn list_pipelines(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListPipelinesQuery>,
) -> Result<Json<Value>, ApiError> {
    let request = query.list.to_request()?;
    let namespace = query.namespace.as_deref().filter(|ns| !ns.is_empty());
    let page = state.store.list_pipelines(namespace, &request).await?;
    Ok(Json(page_json("pipelines", &page, pipeline_json)))
}

#[derive(Debug, Default, Deserialize)]
struct DeletePipelineQuery {
    cascade: Option<String>,
}

async fn delete_pipeline(
    State(state): State<AppState>,
    Path(pipeline_id): Path<String>,
    ApiQuery(query): ApiQuery<DeletePipelineQuery>,
) -> Result<Json<Value>, ApiError> {
    // The spellings of a boolean query parameter KFP's gateway accepts.
    let cascade = match query.cascade.as_deref() {
        None | Some("" | "0" | "f" | "F" | "false" | "False" | "FALSE") => false,
        Some("1" | "t" | "T" | "true" | "True" | "TRUE") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "invalid cascade {other:?}: expected true or false"
            )));
        }
    };
    state.store.delete_pipeline(&pipeline_id, cascade).await?;
    Ok(Json(json!({})))
}

// ---- versions -------------------------------------------------------------------------------

async fn create_version(
    State(state): State<AppState>,
    Path(pipeline_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body: VersionBody = parse_body("pipeline_version", body)?;
    if !body.pipeline_id.is_empty() && body.pipeline_id != pipeline_id {
        return Err(ApiError::invalid(format!(
            "invalid pipeline_version.pipeline_id {:?}: the path names pipeline {pipeline_id:?}",
            body.pipeline_id
        )));
    }
    let pipeline = find_pipeline(&state, &pipeline_id).await?;
    let (version, spec) = new_version(body, &pipeline_id, &pipeline.name, "pipeline_version")?;
    state.store.insert_pipeline_version(&version, &spec).await?;
    Ok(Json(version_json(&version, Some(&spec))))
}

async fn get_version(
    State(state): State<AppState>,
    Path((pipeline_id, pipeline_version_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (version, spec) = state
        .store
        .get_pipeline_version(&pipeline_id, &pipeline_version_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "pipeline version {pipeline_version_id:?} of pipeline {pipeline_id:?} not found"
            ))
        })?;
    Ok(Json(version_json(&version, Some(&spec))))
}

async fn list_versions(
    State(state): State<AppState>,
    Path(pipeline_id): Path<String>,
    ApiQuery(list): ApiQuery<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let request = list.to_request()?;
    let page = state
        .store
        .list_pipeline_versions(&pipeline_id, &request)
        .await?;
    Ok(Json(page_json("pipeline_versions", &page, |version| {
        version_json(version, None)
    })))
}

async fn delete_version(
    State(state): State<AppState>,
    Path((pipeline_id, pipeline_version_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    state
        .store
        .delete_pipeline_version(&pipeline_id, &pipeline_version_id)
        .await?;
    Ok(Json(json!({})))
}

// ---- uploads --------------------------------------------------------------------------------

/// The query parameters of the uploads (v2beta1 and v1beta1 spell them alike).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct UploadQuery {
    pub(crate) name: Option<String>,
    pub(crate) display_name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) namespace: Option<String>,
    /// `pipelineid` in KFP's spelling.
    pub(crate) pipelineid: Option<String>,
    /// A JSON object of string values.
    pub(crate) tags: Option<String>,
}

impl UploadQuery {
    pub(crate) fn tags(&self) -> Result<Tags, ApiError> {
        match self.tags.as_deref().filter(|tags| !tags.trim().is_empty()) {
            None => Ok(Tags::new()),
            Some(text) => serde_json::from_str(text).map_err(|error| {
                ApiError::invalid(format!(
                    "invalid tags {text:?}: expected a JSON object of strings: {error}"
                ))
            }),
        }
    }
}

/// The uploaded file: its name (the part's file name, `pipeline.yaml` if none) and bytes.
pub(crate) async fn read_upload(
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(String, Vec<u8>), ApiError> {
    let mut multipart = multipart.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            format!(
                "invalid upload: {}; send the pipeline file as multipart/form-data field \
                 \"uploadfile\"",
                rejection.body_text()
            ),
        )
    })?;
    let mut fields = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name != "uploadfile" {
            fields.push(name);
            continue;
        }
        let file_name = field
            .file_name()
            .filter(|file_name| !file_name.is_empty())
            .unwrap_or("pipeline.yaml")
            .to_owned();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if bytes.len() + chunk.len() > MAX_UPLOAD_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        return Ok((file_name, bytes));
    }
    Err(ApiError::invalid(if fields.is_empty() {
        "invalid upload: no file; send it as the multipart/form-data field \"uploadfile\""
            .to_owned()
    } else {
        format!(
            "invalid upload: no field \"uploadfile\" (found {}); send the pipeline file in \
             the multipart/form-data field \"uploadfile\"",
            fields
                .iter()
                .map(|name| format!("{name:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }))
}

fn too_large() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the uploaded pipeline is larger than {} MiB",
            MAX_UPLOAD_BYTES >> 20
        ),
    )
}

fn multipart_error(error: MultipartError) -> ApiError {
    let status = error.status();
    if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return too_large();
    }
    ApiError::new(status, format!("invalid upload: {}", error.body_text()))
}

/// A file name without its pipeline extension: the default name of what it makes.
fn base_name(file_name: &str) -> &str {
    let file_name = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    for extension in [".tar.gz", ".tgz", ".yaml", ".yml", ".json", ".zip"] {
        if file_name.len() > extension.len() && file_name.to_ascii_lowercase().ends_with(extension)
        {
            return &file_name[..file_name.len() - extension.len()];
        }
    }
    file_name
}

async fn upload_pipeline(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    query.tags()?;
    let (file_name, bytes) = read_upload(multipart).await?;
    let (pipeline, _, _) = insert_uploaded_pipeline(&state, &query, &file_name, &bytes).await?;
    Ok(Json(pipeline_json(&pipeline)))
}

/// Checks a pipeline file and stores it as a new pipeline with its first version, named by
/// the query (else by the file's name). Returns the pipeline, the version and its spec.
pub(crate) async fn insert_uploaded_pipeline(
    state: &AppState,
    query: &UploadQuery,
    file_name: &str,
    bytes: &[u8],
) -> Result<(PipelineRecord, PipelineVersionRecord, Value), ApiError> {
    let tags = query.tags()?;
    let spec = load_spec(file_name, bytes)?;
    let name = first_non_empty(
        query.name.as_deref().unwrap_or_default(),
        query.display_name.as_deref().unwrap_or_default(),
    );
    let name = first_non_empty(name, base_name(file_name)).to_owned();
    let pipeline = new_pipeline(
        PipelineBody {
            name,
            display_name: query.display_name.clone().unwrap_or_default(),
            description: query.description.clone().unwrap_or_default(),
            namespace: query.namespace.clone().unwrap_or_default(),
            tags: Some(tags),
        },
        "upload",
    )?;
    let version = PipelineVersionRecord {
        pipeline_version_id: new_id(),
        pipeline_id: pipeline.pipeline_id.clone(),
        name: pipeline.name.clone(),
        display_name: pipeline.display_name.clone(),
        description: pipeline.description.clone(),
        code_source_url: String::new(),
        package_url: String::new(),
        tags: Tags::new(),
        created_at: pipeline.created_at,
    };
    state
        .store
        .insert_pipeline(&pipeline, Some((&version, &spec)))
        .await?;
    Ok((pipeline, version, spec))
}

async fn upload_pipeline_version(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    query.tags()?;
    let pipeline_id = upload_target(&query)?;
    find_pipeline(&state, &pipeline_id).await?;
    let (file_name, bytes) = read_upload(multipart).await?;
    let (version, spec) = insert_uploaded_version(&state, &query, &file_name, &bytes).await?;
    Ok(Json(version_json(&version, Some(&spec))))
}

/// The pipeline an upload of a version adds to (`pipelineid`).
fn upload_target(query: &UploadQuery) -> Result<String, ApiError> {
    query
        .pipelineid
        .clone()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ApiError::invalid("invalid upload: pipelineid: missing (the pipeline to add to)")
        })
}

/// Checks a pipeline file and stores it as a new version of the pipeline `pipelineid` of the
/// query, named by the query (else by the file's name). Returns the version and its spec.
pub(crate) async fn insert_uploaded_version(
    state: &AppState,
    query: &UploadQuery,
    file_name: &str,
    bytes: &[u8],
) -> Result<(PipelineVersionRecord, Value), ApiError> {
    let tags = query.tags()?;
    let pipeline_id = upload_target(query)?;
    let pipeline = find_pipeline(state, &pipeline_id).await?;
    let spec = load_spec(file_name, bytes)?;
    let name = first_non_empty(
        query.name.as_deref().unwrap_or_default(),
        query.display_name.as_deref().unwrap_or_default(),
    );
    let name = first_non_empty(name, base_name(file_name)).to_owned();
    let version = PipelineVersionRecord {
        pipeline_version_id: new_id(),
        pipeline_id: pipeline.pipeline_id,
        display_name: first_non_empty(query.display_name.as_deref().unwrap_or_default(), &name)
            .to_owned(),
        name,
        description: query.description.clone().unwrap_or_default(),
        code_source_url: String::new(),
        package_url: String::new(),
        tags,
        created_at: Utc::now(),
    };
    state.store.insert_pipeline_version(&version, &spec).await?;
    Ok((version, spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names() {
        assert_eq!(base_name("add.yaml"), "add");
        assert_eq!(base_name("dir/add.tar.gz"), "add");
        assert_eq!(base_name("C:\\x\\Add.YML"), "Add");
        assert_eq!(base_name("pkg.zip"), "pkg");
        assert_eq!(base_name(".yaml"), ".yaml");
        assert_eq!(base_name("plain"), "plain");
    }
}
