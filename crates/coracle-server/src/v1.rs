//! KFP's v1beta1 REST API (`/apis/v1beta1`), what `kfp.Client` of kfp 1.8 calls, over the same
//! store and the same run, upload and schedule code as v2beta1: a second set of wire shapes, no
//! second behaviour.
//!
//! Routes:
//! - `GET /healthz`
//! - experiments: `POST/GET /experiments`, `GET/DELETE /experiments/{id}`,
//!   `POST /experiments/{id}:archive | :unarchive`
//! - pipelines: `POST/GET /pipelines`, `GET/DELETE /pipelines/{id}`,
//!   `GET /pipelines/{id}/templates`, `POST /pipelines/upload | /pipelines/upload_version`
//!   (multipart `uploadfile`), `POST/GET /pipeline_versions`,
//!   `GET/DELETE /pipeline_versions/{id}`, `GET /pipeline_versions/{id}/templates`
//! - runs: `POST/GET /runs`, `GET/DELETE /runs/{id}`, `POST /runs/{id}:archive | :unarchive`,
//!   `POST /runs/{id}/terminate | /runs/{id}/retry`,
//!   `GET /runs/{id}/nodes/{node_id}/artifacts/{name}:read`
//! - jobs (recurring runs): `POST/GET /jobs`, `GET/DELETE /jobs/{id}`,
//!   `POST /jobs/{id}/enable | /jobs/{id}/disable`
//!
//! Shapes: snake_case fields, ids as `id`, int64 as strings, RFC 3339 times, enums by name
//! (`STORAGESTATE_ARCHIVED`, `EXPERIMENT`, `OWNER`); links between resources are
//! `resource_references` (`{key: {type, id}, name, relationship}`). A run's `status` is the
//! Argo phase KFP v1 shows (`Pending`, `Running`, `Succeeded`, `Failed`, `Terminating`; a
//! terminated run ends `Failed`, as its workflow does), its `metrics` are read from its
//! `system.Metrics` artifacts (`mlpipeline-metrics`), and `pipeline_runtime.workflow_manifest`
//! is an Argo-like Workflow whose `status.nodes` carry each task's phase and parameters. List
//! filters use v1's spelling (`op`, `key`, `string_value`), `id` and `name` as keys.
//! Errors are the same body as v2beta1 (`{error, code, message, details}`).

mod experiments;
mod jobs;
mod pipelines;
mod runs;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use coracle_store::listing::ListRequest;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::list::ListParams;
use crate::wire::kind_of;
use crate::{ApiError, AppState};

/// Largest request body: an upload, or a run carrying its workflow inline.
const MAX_BODY_BYTES: usize = crate::pipelines::MAX_UPLOAD_BYTES + (1 << 20);

/// The v1beta1 routes, to nest under `/apis/v1beta1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(experiments::routes())
        .merge(pipelines::routes())
        .merge(runs::routes())
        .merge(jobs::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn healthz() -> axum::Json<Value> {
    axum::Json(json!({
        "commit_sha": "",
        "tag_name": env!("CARGO_PKG_VERSION"),
        "multi_user": false,
    }))
}

// ---- resource references --------------------------------------------------------------------

/// `ApiResourceType`, by name; numbers as protobuf's JSON may write them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResourceType {
    Experiment,
    Job,
    Pipeline,
    PipelineVersion,
    Namespace,
}

impl ResourceType {
    fn as_str(self) -> &'static str {
        match self {
            ResourceType::Experiment => "EXPERIMENT",
            ResourceType::Job => "JOB",
            ResourceType::Pipeline => "PIPELINE",
            ResourceType::PipelineVersion => "PIPELINE_VERSION",
            ResourceType::Namespace => "NAMESPACE",
        }
    }

    fn parse(value: &Value) -> Option<ResourceType> {
        match value {
            Value::String(name) => match name.as_str() {
                "EXPERIMENT" => Some(ResourceType::Experiment),
                "JOB" => Some(ResourceType::Job),
                "PIPELINE" => Some(ResourceType::Pipeline),
                "PIPELINE_VERSION" => Some(ResourceType::PipelineVersion),
                "NAMESPACE" => Some(ResourceType::Namespace),
                _ => None,
            },
            Value::Number(number) => match number.as_i64() {
                Some(1) => Some(ResourceType::Experiment),
                Some(2) => Some(ResourceType::Job),
                Some(3) => Some(ResourceType::Pipeline),
                Some(4) => Some(ResourceType::PipelineVersion),
                Some(5) => Some(ResourceType::Namespace),
                _ => None,
            },
            _ => None,
        }
    }
}

/// One `ApiResourceReference` as the API writes it.
fn reference(kind: ResourceType, id: &str, name: Option<&str>, owner: bool) -> Value {
    let mut reference = json!({
        "key": {"type": kind.as_str(), "id": id},
        "relationship": if owner { "OWNER" } else { "CREATOR" },
    });
    if let Some(name) = name.filter(|name| !name.is_empty()) {
        reference["name"] = json!(name);
    }
    reference
}

/// The `resource_references` of a request body as (type, id) pairs; `at` names the body in
/// messages (`run`).
fn read_references(
    body: &Map<String, Value>,
    at: &str,
) -> Result<Vec<(ResourceType, String)>, ApiError> {
    let list = match body.get("resource_references") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "invalid {at}.resource_references: expected a list, found {}",
                kind_of(other)
            )));
        }
    };
    list.iter()
        .enumerate()
        .map(|(index, item)| {
            let at = format!("{at}.resource_references[{index}].key");
            let key = item.get("key").and_then(Value::as_object).ok_or_else(|| {
                ApiError::invalid(format!("invalid {at}: missing (give {{type, id}})"))
            })?;
            let kind = key.get("type").unwrap_or(&Value::Null);
            let kind = ResourceType::parse(kind).ok_or_else(|| {
                ApiError::invalid(format!(
                    "invalid {at}.type: {kind} is not EXPERIMENT, JOB, PIPELINE, \
                     PIPELINE_VERSION or NAMESPACE"
                ))
            })?;
            match key.get("id") {
                Some(Value::String(id)) if !id.is_empty() => Ok((kind, id.clone())),
                _ => Err(ApiError::invalid(format!("invalid {at}.id: missing"))),
            }
        })
        .collect()
}

/// The id of the one reference of `kind`, if any; two of them are a 400.
fn referenced(
    references: &[(ResourceType, String)],
    kind: ResourceType,
    at: &str,
) -> Result<Option<String>, ApiError> {
    let mut found = references.iter().filter(|(k, _)| *k == kind);
    let first = found.next().map(|(_, id)| id.clone());
    if found.next().is_some() {
        return Err(ApiError::invalid(format!(
            "invalid {at}.resource_references: more than one {} reference",
            kind.as_str()
        )));
    }
    Ok(first)
}

// ---- shapes shared by the collections -------------------------------------------------------

/// `ApiExperimentStorageState` / `ApiRunStorageState`.
fn storage_state(state: coracle_store::run_api::StorageState) -> &'static str {
    match state {
        coracle_store::run_api::StorageState::Available => "STORAGESTATE_AVAILABLE",
        coracle_store::run_api::StorageState::Archived => "STORAGESTATE_ARCHIVED",
    }
}

/// A parameter value as v1 carries it: text, other values as JSON.
fn parameter_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `[{name, value}]` of a parameters object.
fn parameter_list(parameters: &Value) -> Vec<Value> {
    parameters
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| json!({"name": name, "value": parameter_text(value)}))
        .collect()
}

/// A list response: the items under `key` (left out when empty), `total_size`, and
/// `next_page_token` when there is a next page.
fn list_json(key: &str, items: Vec<Value>, total_size: i64, next_page_token: &str) -> Value {
    let mut body = Map::new();
    if !items.is_empty() {
        body.insert(key.to_owned(), Value::Array(items));
    }
    body.insert("total_size".to_owned(), json!(total_size));
    if !next_page_token.is_empty() {
        body.insert("next_page_token".to_owned(), json!(next_page_token));
    }
    Value::Object(body)
}

// ---- list parameters ------------------------------------------------------------------------

/// The list parameters of a v1 request.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    page_token: Option<String>,
    page_size: Option<String>,
    sort_by: Option<String>,
    filter: Option<String>,
    #[serde(rename = "resource_reference_key.type")]
    reference_type: Option<String>,
    #[serde(rename = "resource_reference_key.id")]
    reference_id: Option<String>,
    /// `GET /pipeline_versions` spells it without `_reference`.
    #[serde(rename = "resource_key.type")]
    key_type: Option<String>,
    #[serde(rename = "resource_key.id")]
    key_id: Option<String>,
}

impl ListQuery {
    /// The store request; `keys` renames v1 keys to the store's (`id` → `run_id`), in
    /// `sort_by` and in the filter.
    fn to_request(&self, keys: &[(&str, &str)]) -> Result<ListRequest, ApiError> {
        let rename = |key: &str| {
            keys.iter()
                .find(|(from, _)| *from == key)
                .map_or(key, |(_, to)| *to)
                .to_owned()
        };
        let sort_by = self.sort_by.as_deref().map(|text| {
            let mut words = text.split_whitespace();
            match words.next() {
                Some(key) => std::iter::once(rename(key).as_str())
                    .chain(words)
                    .collect::<Vec<_>>()
                    .join(" "),
                None => String::new(),
            }
        });
        let filter = match self.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            Some(text) => Some(v1_filter(text, &rename)?),
            None => None,
        };
        ListParams {
            page_size: self.page_size.clone(),
            page_token: self.page_token.clone(),
            sort_by,
            filter,
        }
        .to_request()
    }

    /// The id of the resource the list is scoped to when it is of `kind` (`NAMESPACE` scopes
    /// are accepted and ignored: one user).
    fn scope(&self, kind: ResourceType) -> Result<Option<String>, ApiError> {
        let (kind_text, id) = match (&self.reference_type, &self.key_type) {
            (Some(kind), _) => (kind, &self.reference_id),
            (None, Some(kind)) => (kind, &self.key_id),
            (None, None) => return Ok(None),
        };
        let given = ResourceType::parse(&Value::String(kind_text.clone()));
        match given {
            Some(given) if given == kind => Ok(id.clone().filter(|id| !id.is_empty())),
            Some(ResourceType::Namespace) => Ok(None),
            _ if kind_text.is_empty() || kind_text == "UNKNOWN_RESOURCE_TYPE" => Ok(None),
            _ if kind == ResourceType::Namespace => Err(ApiError::invalid(format!(
                "invalid resource_reference_key.type {kind_text:?}: this list is scoped only by \
                 NAMESPACE"
            ))),
            _ => Err(ApiError::invalid(format!(
                "invalid resource_reference_key.type {kind_text:?}: this list is scoped by {} \
                 (or NAMESPACE)",
                kind.as_str()
            ))),
        }
    }
}

/// A v1 filter (`{"predicates": [{"op", "key", "string_value"}]}`) in the v2 spelling the
/// list parser reads: `op` becomes `operation`, keys are renamed, and storage states lose
/// their `STORAGESTATE_` prefix.
fn v1_filter(text: &str, rename: &dyn Fn(&str) -> String) -> Result<String, ApiError> {
    let mut json: Value = serde_json::from_str(text)
        .map_err(|error| ApiError::invalid(format!("invalid filter: not JSON: {error}")))?;
    let predicates = json
        .get_mut("predicates")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten();
    for predicate in predicates {
        let Value::Object(predicate) = predicate else {
            continue;
        };
        if let Some(op) = predicate.remove("op") {
            predicate.entry("operation").or_insert(op);
        }
        let key = match predicate.get("key") {
            Some(Value::String(key)) => rename(key),
            _ => continue,
        };
        let is_storage_state = key == "storage_state";
        predicate.insert("key".to_owned(), Value::String(key));
        if is_storage_state {
            for (field, value) in predicate.iter_mut() {
                if field == "key" || field == "operation" {
                    continue;
                }
                strip_storage_prefix(value);
            }
        }
    }
    Ok(json.to_string())
}

fn strip_storage_prefix(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let Some(rest) = text.strip_prefix("STORAGESTATE_") {
                *text = rest.to_owned();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_storage_prefix),
        Value::Object(object) => object.values_mut().for_each(strip_storage_prefix),
        _ => {}
    }
}

/// A JSON request body as an object; `what` names it in messages.
fn json_object(what: &str, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(format!(
            "invalid {what}: the request has no JSON body"
        )));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(ApiError::invalid(format!(
            "invalid {what}: expected a JSON object, found {}",
            kind_of(&other)
        ))),
        Err(error) => Err(ApiError::invalid(format!(
            "invalid {what}: the body is not JSON: {error}"
        ))),
    }
}

/// An optional string field of a request body; `at` names the body.
fn text_field(body: &Map<String, Value>, name: &str, at: &str) -> Result<String, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(ApiError::invalid(format!(
            "invalid {at}.{name}: expected a string, found {}",
            kind_of(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_store::listing::{FilterValue, Op};

    #[test]
    fn v1_filters_read_as_v2() {
        let query = ListQuery {
            filter: Some(
                r#"{"predicates": [
                    {"op": 1, "key": "name", "stringValue": "x"},
                    {"op": "EQUALS", "key": "id", "string_value": "abc"},
                    {"op": 2, "key": "storage_state", "stringValue": "STORAGESTATE_ARCHIVED"}
                ]}"#
                .to_owned(),
            ),
            sort_by: Some("id desc".to_owned()),
            ..ListQuery::default()
        };
        let request = query
            .to_request(&[("id", "run_id"), ("name", "display_name")])
            .unwrap();
        let filter: Vec<(String, Op, FilterValue)> = request
            .filter
            .into_iter()
            .map(|p| (p.key, p.op, p.value))
            .collect();
        assert_eq!(
            filter,
            vec![
                (
                    "display_name".to_owned(),
                    Op::Equals,
                    FilterValue::String("x".into())
                ),
                (
                    "run_id".to_owned(),
                    Op::Equals,
                    FilterValue::String("abc".into())
                ),
                (
                    "storage_state".to_owned(),
                    Op::NotEquals,
                    FilterValue::String("ARCHIVED".into())
                ),
            ]
        );
        let sort = request.sort.unwrap();
        assert_eq!((sort.key.as_str(), sort.descending), ("run_id", true));
    }

    #[test]
    fn bad_filters_say_so() {
        let query = ListQuery {
            filter: Some("{".to_owned()),
            ..ListQuery::default()
        };
        let error = query.to_request(&[]).unwrap_err();
        assert!(error.message.starts_with("invalid filter"), "{error}");
        let query = ListQuery {
            filter: Some(r#"{"predicates": [{"op": 4, "key": "a", "stringValue": "x"}]}"#.into()),
            ..ListQuery::default()
        };
        let error = query.to_request(&[]).unwrap_err();
        assert!(error.message.contains("unknown operation 4"), "{error}");
    }

    #[test]
    fn scopes() {
        let query = ListQuery {
            reference_type: Some("EXPERIMENT".into()),
            reference_id: Some("e1".into()),
            ..ListQuery::default()
        };
        assert_eq!(
            query.scope(ResourceType::Experiment).unwrap(),
            Some("e1".to_owned())
        );
        let namespace = ListQuery {
            reference_type: Some("NAMESPACE".into()),
            reference_id: Some("kubeflow".into()),
            ..ListQuery::default()
        };
        assert_eq!(namespace.scope(ResourceType::Experiment).unwrap(), None);
        let pipeline = ListQuery {
            key_type: Some("PIPELINE".into()),
            key_id: Some("p".into()),
            ..ListQuery::default()
        };
        assert_eq!(
            pipeline.scope(ResourceType::Pipeline).unwrap(),
            Some("p".to_owned())
        );
        assert!(query.scope(ResourceType::Pipeline).is_err());
    }

    #[test]
    fn references_are_read_and_named() {
        let body = json!({"resource_references": [
            {"key": {"type": "EXPERIMENT", "id": "e"}, "relationship": "OWNER"},
            {"key": {"type": 4, "id": "v"}, "relationship": "CREATOR"},
        ]});
        let references = read_references(body.as_object().unwrap(), "run").unwrap();
        assert_eq!(
            references,
            vec![
                (ResourceType::Experiment, "e".to_owned()),
                (ResourceType::PipelineVersion, "v".to_owned())
            ]
        );
        let bad = json!({"resource_references": [{"key": {"type": "TEAM", "id": "x"}}]});
        let error = read_references(bad.as_object().unwrap(), "run").unwrap_err();
        assert!(
            error
                .message
                .starts_with("invalid run.resource_references[0].key.type"),
            "{error}"
        );
        let twice = [
            (ResourceType::Experiment, "a".to_owned()),
            (ResourceType::Experiment, "b".to_owned()),
        ];
        assert!(referenced(&twice, ResourceType::Experiment, "run").is_err());
    }
}
