//! `GET /apis/v2beta1/openapi.json`: an OpenAPI 3 description of every path and method this
//! server serves, built from one table ([`OPERATIONS`]). A test requests each operation in it
//! and checks that the router serves it, so the document and the routes cannot drift apart.

use std::sync::OnceLock;

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

async fn openapi_json() -> Json<Value> {
    Json(document().clone())
}

/// Query parameters of every list.
const LIST: &[&str] = &["page_token", "page_size", "sort_by", "filter"];

/// One operation: method, path under `/apis/v2beta1` (KFP's `{id}:action` form), operation id,
/// tag, summary, query parameters, request body schema (`"multipart"`: an upload), response
/// schema.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub operation_id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub query: &'static [&'static [&'static str]],
    pub body: Option<&'static str>,
    pub response: &'static str,
}

macro_rules! op {
    ($method:literal $path:literal $id:literal $tag:literal $summary:literal,
     query: [$($query:expr),*], body: $body:expr, response: $response:literal) => {
        Operation {
            method: $method,
            path: $path,
            operation_id: $id,
            tag: $tag,
            summary: $summary,
            query: &[$($query),*],
            body: $body,
            response: $response,
        }
    };
}

/// Every operation served, in the document's order.
pub const OPERATIONS: &[Operation] = &[
    op!("get" "/healthz" "HealthzService_GetHealthz" "Healthz"
        "The server's version and settings.",
        query: [], body: None, response: "GetHealthzResponse"),
    op!("get" "/openapi.json" "OpenApi_Get" "OpenAPI"
        "This document.",
        query: [], body: None, response: "Object"),
    // Pipelines.
    op!("post" "/pipelines" "PipelineService_CreatePipeline" "PipelineService"
        "Creates a pipeline (without versions).",
        query: [], body: Some("Pipeline"), response: "Pipeline"),
    op!("get" "/pipelines" "PipelineService_ListPipelines" "PipelineService"
        "Lists pipelines, newest first unless sort_by says otherwise.",
        query: [&["namespace"], LIST], body: None, response: "ListPipelinesResponse"),
    op!("post" "/pipelines/create" "PipelineService_CreatePipelineAndVersion" "PipelineService"
        "Creates a pipeline and its first version together.",
        query: [], body: Some("CreatePipelineAndVersionRequest"), response: "Pipeline"),
    op!("get" "/pipelines/names/{name}" "PipelineService_GetPipelineByName" "PipelineService"
        "Finds a pipeline by name (in a namespace).",
        query: [&["namespace"]], body: None, response: "Pipeline"),
    op!("get" "/pipelines/{pipeline_id}" "PipelineService_GetPipeline" "PipelineService"
        "Gets a pipeline.",
        query: [], body: None, response: "Pipeline"),
    op!("delete" "/pipelines/{pipeline_id}" "PipelineService_DeletePipeline" "PipelineService"
        "Deletes a pipeline; one with versions only with cascade=true.",
        query: [&["cascade"]], body: None, response: "Object"),
    op!("post" "/pipelines/{pipeline_id}/versions" "PipelineService_CreatePipelineVersion"
        "PipelineService" "Adds a version (with its pipeline_spec) to a pipeline.",
        query: [], body: Some("PipelineVersion"), response: "PipelineVersion"),
    op!("get" "/pipelines/{pipeline_id}/versions" "PipelineService_ListPipelineVersions"
        "PipelineService" "Lists the versions of a pipeline (without their specs).",
        query: [LIST], body: None, response: "ListPipelineVersionsResponse"),
    op!("get" "/pipelines/{pipeline_id}/versions/{pipeline_version_id}"
        "PipelineService_GetPipelineVersion" "PipelineService"
        "Gets a pipeline version with its spec.",
        query: [], body: None, response: "PipelineVersion"),
    op!("delete" "/pipelines/{pipeline_id}/versions/{pipeline_version_id}"
        "PipelineService_DeletePipelineVersion" "PipelineService"
        "Deletes a pipeline version.",
        query: [], body: None, response: "Object"),
    op!("post" "/pipelines/upload" "PipelineUploadService_UploadPipeline"
        "PipelineUploadService"
        "Uploads a pipeline file (YAML, JSON, .zip or .tar.gz, at most 32 MiB) as a new \
         pipeline with one version.",
        query: [&["name", "display_name", "description", "namespace", "tags"]],
        body: Some("multipart"), response: "Pipeline"),
    op!("post" "/pipelines/upload_version" "PipelineUploadService_UploadPipelineVersion"
        "PipelineUploadService"
        "Uploads a pipeline file as a new version of the pipeline pipelineid.",
        query: [&["name", "display_name", "pipelineid", "description", "tags"]],
        body: Some("multipart"), response: "PipelineVersion"),
    // Experiments.
    op!("post" "/experiments" "ExperimentService_CreateExperiment" "ExperimentService"
        "Creates an experiment.",
        query: [], body: Some("Experiment"), response: "Experiment"),
    op!("get" "/experiments" "ExperimentService_ListExperiments" "ExperimentService"
        "Lists experiments.",
        query: [LIST, &["namespace"]], body: None, response: "ListExperimentsResponse"),
    op!("get" "/experiments/{experiment_id}" "ExperimentService_GetExperiment"
        "ExperimentService" "Gets an experiment.",
        query: [], body: None, response: "Experiment"),
    op!("delete" "/experiments/{experiment_id}" "ExperimentService_DeleteExperiment"
        "ExperimentService" "Deletes an experiment (its runs stay).",
        query: [], body: None, response: "Object"),
    op!("post" "/experiments/{experiment_id}:archive" "ExperimentService_ArchiveExperiment"
        "ExperimentService" "Archives an experiment and its runs.",
        query: [], body: None, response: "Object"),
    op!("post" "/experiments/{experiment_id}:unarchive"
        "ExperimentService_UnarchiveExperiment" "ExperimentService"
        "Restores an archived experiment (its runs stay archived).",
        query: [], body: None, response: "Object"),
    // Runs.
    op!("post" "/runs" "RunService_CreateRun" "RunService"
        "Creates and starts a run of a pipeline_spec or a pipeline version.",
        query: [&["experiment_id"]], body: Some("Run"), response: "Run"),
    op!("get" "/runs" "RunService_ListRuns" "RunService"
        "Lists runs.",
        query: [&["namespace", "experiment_id"], LIST], body: None, response: "ListRunsResponse"),
    op!("get" "/runs/{run_id}" "RunService_GetRun" "RunService"
        "Gets a run with its task details.",
        query: [&["experiment_id"]], body: None, response: "Run"),
    op!("delete" "/runs/{run_id}" "RunService_DeleteRun" "RunService"
        "Deletes a run (stopping it first if it is running).",
        query: [&["experiment_id"]], body: None, response: "Object"),
    op!("post" "/runs/{run_id}:archive" "RunService_ArchiveRun" "RunService"
        "Archives a run.",
        query: [&["experiment_id"]], body: None, response: "Object"),
    op!("post" "/runs/{run_id}:unarchive" "RunService_UnarchiveRun" "RunService"
        "Restores an archived run.",
        query: [&["experiment_id"]], body: None, response: "Object"),
    op!("post" "/runs/{run_id}:terminate" "RunService_TerminateRun" "RunService"
        "Stops a running run.",
        query: [&["experiment_id"]], body: None, response: "Object"),
    op!("post" "/runs/{run_id}:retry" "RunService_RetryRun" "RunService"
        "Re-runs a failed or canceled run, reusing the tasks that succeeded.",
        query: [&["experiment_id"]], body: None, response: "Object"),
    op!("get" "/runs/{run_id}/nodes/{node_id}/artifacts/{artifact_name}:read"
        "RunService_ReadArtifact" "RunService"
        "Reads an output artifact of a task, base64 encoded.",
        query: [&["experiment_id"]], body: None, response: "ReadArtifactResponse"),
    // Recurring runs.
    op!("post" "/recurringruns" "RecurringRunService_CreateRecurringRun"
        "RecurringRunService" "Creates a recurring run (cron or periodic trigger).",
        query: [], body: Some("RecurringRun"), response: "RecurringRun"),
    op!("get" "/recurringruns" "RecurringRunService_ListRecurringRuns" "RecurringRunService"
        "Lists recurring runs.",
        query: [LIST, &["namespace", "experiment_id"]], body: None,
        response: "ListRecurringRunsResponse"),
    op!("get" "/recurringruns/{recurring_run_id}" "RecurringRunService_GetRecurringRun"
        "RecurringRunService" "Gets a recurring run.",
        query: [], body: None, response: "RecurringRun"),
    op!("delete" "/recurringruns/{recurring_run_id}"
        "RecurringRunService_DeleteRecurringRun" "RecurringRunService"
        "Deletes a recurring run (the runs it made stay).",
        query: [], body: None, response: "Object"),
    op!("post" "/recurringruns/{recurring_run_id}:enable"
        "RecurringRunService_EnableRecurringRun" "RecurringRunService"
        "Enables a recurring run.",
        query: [], body: None, response: "Object"),
    op!("post" "/recurringruns/{recurring_run_id}:disable"
        "RecurringRunService_DisableRecurringRun" "RecurringRunService"
        "Disables a recurring run.",
        query: [], body: None, response: "Object"),
];

/// The document, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn build() -> Value {
    let mut paths = Map::new();
    for operation in OPERATIONS {
        let path = format!("/apis/v2beta1{}", operation.path);
        let entry = paths
            .entry(path)
            .or_insert_with(|| Value::Object(Map::new()));
        entry[operation.method] = operation_json(operation);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Coracle: Kubeflow Pipelines v2beta1 REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Pipelines, versions, experiments, runs and recurring runs as the \
                KFP v2beta1 API serves them, so that kfp.Client works unchanged. JSON field \
                names are snake_case, int64 values are strings, timestamps RFC 3339, enums by \
                name. Lists take page_size (0: 20, at most 200), page_token, sort_by \
                (\"field\" or \"field desc\") and filter (URL-encoded JSON \
                {\"predicates\": [{\"operation\", \"key\", \"string_value\" | \"int_value\" | \
                \"long_value\" | \"timestamp_value\" | \"bool_value\" | \"string_values\" | \
                \"int_values\" | \"long_values\"}]}). Errors are {\"code\", \"message\", \
                \"details\"} with the gRPC code."
        },
        "paths": paths,
        "components": {"schemas": schemas()},
    })
}

fn operation_json(operation: &Operation) -> Value {
    let mut parameters = Vec::new();
    let mut rest = operation.path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |end| start + end);
        let name = &rest[start + 1..end];
        parameters.push(json!({
            "name": name, "in": "path", "required": true, "schema": {"type": "string"},
        }));
        rest = &rest[(end + 1).min(rest.len())..];
    }
    for group in operation.query {
        for name in *group {
            let schema = match *name {
                "page_size" => json!({"type": "integer", "format": "int32"}),
                "cascade" => json!({"type": "boolean"}),
                _ => json!({"type": "string"}),
            };
            parameters.push(json!({"name": name, "in": "query", "schema": schema}));
        }
    }
    let mut body = json!({
        "operationId": operation.operation_id,
        "tags": [operation.tag],
        "summary": operation.summary,
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": schema_ref(operation.response)}},
            },
            "default": {
                "description": "An error",
                "content": {"application/json": {"schema": schema_ref("Status")}},
            },
        },
    });
    match operation.body {
        Some("multipart") => {
            body["requestBody"] = json!({
                "required": true,
                "content": {"multipart/form-data": {"schema": {
                    "type": "object",
                    "required": ["uploadfile"],
                    "properties": {"uploadfile": {"type": "string", "format": "binary"}},
                }}},
            });
        }
        Some(schema) => {
            body["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema_ref(schema)}},
            });
        }
        None => {}
    }
    body
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// An object schema from `(field, type)` pairs; a type is `string`, `date-time`, `int64`
/// (a decimal string), `integer`, `boolean`, `object`, `[Name]` (a list) or a schema name.
fn object(fields: &[(&str, &str)]) -> Value {
    let mut properties = Map::new();
    for (field, kind) in fields {
        let schema = match *kind {
            "string" => json!({"type": "string"}),
            "date-time" => json!({"type": "string", "format": "date-time"}),
            "int64" => json!({"type": "string", "format": "int64"}),
            "integer" => json!({"type": "integer", "format": "int32"}),
            "boolean" => json!({"type": "boolean"}),
            "object" => json!({"type": "object"}),
            "tags" => json!({"type": "object", "additionalProperties": {"type": "string"}}),
            list if list.starts_with('[') => json!({
                "type": "array",
                "items": schema_ref(list.trim_start_matches('[').trim_end_matches(']')),
            }),
            name => schema_ref(name),
        };
        properties.insert((*field).to_owned(), schema);
    }
    json!({"type": "object", "properties": properties})
}

fn schemas() -> Value {
    json!({
        "Object": {"type": "object"},
        "Status": object(&[("code", "integer"), ("message", "string"), ("details", "[Object]")]),
        "GetHealthzResponse": object(&[
            ("commit_sha", "string"), ("tag_name", "string"), ("multi_user", "boolean"),
            ("pipeline_store", "string"),
        ]),
        "Pipeline": object(&[
            ("pipeline_id", "string"), ("display_name", "string"), ("name", "string"),
            ("description", "string"), ("created_at", "date-time"), ("namespace", "string"),
            ("error", "Status"), ("tags", "tags"),
        ]),
        "Url": object(&[("pipeline_url", "string")]),
        "PipelineVersion": object(&[
            ("pipeline_id", "string"), ("pipeline_version_id", "string"),
            ("display_name", "string"), ("name", "string"), ("description", "string"),
            ("created_at", "date-time"), ("package_url", "Url"),
            ("code_source_url", "string"), ("pipeline_spec", "object"), ("error", "Status"),
            ("tags", "tags"),
        ]),
        "CreatePipelineAndVersionRequest": object(&[
            ("pipeline", "Pipeline"), ("pipeline_version", "PipelineVersion"),
        ]),
        "ListPipelinesResponse": object(&[
            ("pipelines", "[Pipeline]"), ("total_size", "integer"), ("next_page_token", "string"),
        ]),
        "ListPipelineVersionsResponse": object(&[
            ("pipeline_versions", "[PipelineVersion]"), ("next_page_token", "string"),
            ("total_size", "integer"),
        ]),
        "Experiment": object(&[
            ("experiment_id", "string"), ("display_name", "string"), ("description", "string"),
            ("created_at", "date-time"), ("namespace", "string"), ("storage_state", "string"),
            ("last_run_created_at", "date-time"),
        ]),
        "ListExperimentsResponse": object(&[
            ("experiments", "[Experiment]"), ("total_size", "integer"),
            ("next_page_token", "string"),
        ]),
        "PipelineVersionReference": object(&[
            ("pipeline_id", "string"), ("pipeline_version_id", "string"),
        ]),
        "RuntimeConfig": object(&[("parameters", "object"), ("pipeline_root", "string")]),
        "RuntimeStatus": object(&[
            ("update_time", "date-time"), ("state", "string"), ("error", "Status"),
        ]),
        "Run": object(&[
            ("experiment_id", "string"), ("run_id", "string"), ("display_name", "string"),
            ("storage_state", "string"), ("description", "string"),
            ("pipeline_version_id", "string"), ("pipeline_spec", "object"),
            ("pipeline_version_reference", "PipelineVersionReference"),
            ("runtime_config", "RuntimeConfig"), ("service_account", "string"),
            ("created_at", "date-time"), ("scheduled_at", "date-time"),
            ("finished_at", "date-time"), ("state", "string"), ("error", "Status"),
            ("run_details", "object"), ("recurring_run_id", "string"),
            ("state_history", "[RuntimeStatus]"),
        ]),
        "ListRunsResponse": object(&[
            ("runs", "[Run]"), ("total_size", "integer"), ("next_page_token", "string"),
        ]),
        "ReadArtifactResponse": object(&[("data", "string")]),
        "CronSchedule": object(&[
            ("start_time", "date-time"), ("end_time", "date-time"), ("cron", "string"),
        ]),
        "PeriodicSchedule": object(&[
            ("start_time", "date-time"), ("end_time", "date-time"),
            ("interval_second", "int64"),
        ]),
        "Trigger": object(&[
            ("cron_schedule", "CronSchedule"), ("periodic_schedule", "PeriodicSchedule"),
        ]),
        "RecurringRun": object(&[
            ("recurring_run_id", "string"), ("display_name", "string"),
            ("description", "string"), ("pipeline_version_id", "string"),
            ("pipeline_spec", "object"),
            ("pipeline_version_reference", "PipelineVersionReference"),
            ("runtime_config", "RuntimeConfig"), ("service_account", "string"),
            ("max_concurrency", "int64"), ("trigger", "Trigger"), ("mode", "string"),
            ("created_at", "date-time"), ("updated_at", "date-time"), ("status", "string"),
            ("error", "Status"), ("no_catchup", "boolean"), ("namespace", "string"),
            ("experiment_id", "string"),
        ]),
        "ListRecurringRunsResponse": object(&[
            ("recurringRuns", "[RecurringRun]"), ("total_size", "integer"),
            ("next_page_token", "string"),
        ]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_in_the_document_once() {
        let document = document();
        let mut seen = std::collections::BTreeSet::new();
        for operation in OPERATIONS {
            assert!(
                seen.insert((operation.method, operation.path)),
                "{} {} twice",
                operation.method,
                operation.path
            );
            let entry =
                &document["paths"][format!("/apis/v2beta1{}", operation.path)][operation.method];
            assert_eq!(entry["operationId"], operation.operation_id);
        }
        // Every schema referred to exists.
        let text = document.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "missing schema {name}"
            );
        }
        // Path parameters are declared.
        let entry = &document["paths"]["/apis/v2beta1/pipelines/{pipeline_id}/versions/{pipeline_version_id}"]
            ["get"];
        let names: Vec<&str> = entry["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|parameter| parameter["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["pipeline_id", "pipeline_version_id"]);
    }
}
