//! `/apis/v1beta1`, what kfp 1.8's `kfp.Client` calls: experiments, pipelines and versions
//! (uploads of a KFP v1 Argo workflow), runs from an inline workflow or a stored version, their
//! status, workflow manifest, metrics and artifacts, terminate / retry / archive / delete, and
//! jobs. Runs are real processes (the workflow's container runs as `sh -c` on the host).

use std::io::Read;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::TestServer;
use crate::pipelines::multipart;

/// A KFP v1 workflow as kfp 1.8 compiles a `ContainerOp` with file outputs: task `echo`
/// writes `{text}!` to its output `out` (a parameter and an artifact) and a v1 metrics file,
/// after sleeping `nap` seconds.
const ECHO_WORKFLOW: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: v1-echo-
  annotations: {pipelines.kubeflow.org/kfp_sdk_version: 1.8.22}
spec:
  entrypoint: v1-echo
  arguments:
    parameters:
    - {name: text, value: hi}
    - {name: nap, value: '0'}
  templates:
  - name: v1-echo
    inputs:
      parameters:
      - {name: text}
      - {name: nap}
    dag:
      tasks:
      - name: echo
        template: echo
        arguments:
          parameters:
          - {name: text, value: '{{inputs.parameters.text}}'}
          - {name: nap, value: '{{inputs.parameters.nap}}'}
  - name: echo
    container:
      image: alpine
      command:
      - sh
      - -c
      - |
        sleep "$1"
        mkdir -p "$(dirname /tmp/outputs/out/data)" "$(dirname /tmp/outputs/metrics/data)"
        printf '%s!' "$0" > /tmp/outputs/out/data
        printf '{"metrics": [{"name": "score", "numberValue": 0.5, "format": "PERCENTAGE"}]}' > /tmp/outputs/metrics/data
      - '{{inputs.parameters.text}}'
      - '{{inputs.parameters.nap}}'
    inputs:
      parameters:
      - {name: text}
      - {name: nap}
    outputs:
      parameters:
      - name: echo-out
        valueFrom: {path: /tmp/outputs/out/data}
      artifacts:
      - {name: echo-out, path: /tmp/outputs/out/data}
      - {name: mlpipeline-metrics, path: /tmp/outputs/metrics/data}
    metadata:
      labels: {pipelines.kubeflow.org/enable_caching: "false"}
"#;

/// One request to `/apis/v1beta1{path}` with a JSON body (`Value::Null`: none).
async fn call(server: &TestServer, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    server.call_api("v1beta1", method, path, body).await
}

async fn get(server: &TestServer, path: &str) -> (StatusCode, Value) {
    call(server, Method::GET, path, Value::Null).await
}

async fn post(server: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    call(server, Method::POST, path, body).await
}

async fn delete(server: &TestServer, path: &str) -> (StatusCode, Value) {
    call(server, Method::DELETE, path, Value::Null).await
}

async fn upload(server: &TestServer, path: &str, bytes: &[u8]) -> (StatusCode, Value) {
    let (content_type, body) = multipart("uploadfile", "v1_echo.yaml", bytes);
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/apis/v1beta1{path}"))
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap();
    server.send(request).await
}

fn experiment_ref(id: &str) -> Value {
    json!({"key": {"type": "EXPERIMENT", "id": id}, "relationship": "OWNER"})
}

fn run_body(name: &str, experiment_id: &str, text: &str, nap: u32) -> Value {
    json!({
        "name": name,
        "pipeline_spec": {
            "workflow_manifest": ECHO_WORKFLOW,
            "parameters": [{"name": "text", "value": text}, {"name": "nap", "value": nap.to_string()}],
        },
        "resource_references": [experiment_ref(experiment_id)],
    })
}

async fn new_experiment(server: &TestServer, name: &str) -> String {
    let (status, experiment) = post(server, "/experiments", json!({"name": name})).await;
    assert_eq!(status, StatusCode::OK, "{experiment}");
    experiment["id"].as_str().unwrap().to_owned()
}

/// Polls `GET /runs/{id}` until `done` holds of the `ApiRunDetail`.
async fn wait_for(
    server: &TestServer,
    run_id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, detail) = get(server, &format!("/runs/{run_id}")).await;
        assert_eq!(status, StatusCode::OK, "{detail}");
        if done(&detail) {
            return detail;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {detail:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_status(server: &TestServer, run_id: &str, status: &str) -> Value {
    wait_for(server, run_id, status, |detail| {
        detail["run"]["status"] == status
    })
    .await
}

/// The workflow manifest's nodes by display name.
fn nodes(detail: &Value) -> serde_json::Map<String, Value> {
    let manifest: Value = serde_json::from_str(
        detail["pipeline_runtime"]["workflow_manifest"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    manifest["status"]["nodes"]
        .as_object()
        .unwrap()
        .values()
        .map(|node| {
            (
                node["displayName"].as_str().unwrap().to_owned(),
                node.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn healthz_answers() {
    let server = TestServer::start().await;
    let (status, body) = get(&server, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["multi_user"], false);
}

#[tokio::test]
async fn experiments() {
    let server = TestServer::start().await;
    let (status, created) = post(
        &server,
        "/experiments",
        json!({"name": "team", "description": "d"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["name"], "team");
    assert_eq!(created["storage_state"], "STORAGESTATE_AVAILABLE");

    let (status, got) = get(&server, &format!("/experiments/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);

    // kfp 1.8 finds an experiment by name with a v1 filter (`op`, `stringValue`).
    let filter = r#"{"predicates":[{"op":1,"key":"name","stringValue":"team"}]}"#;
    let (status, listed) = get(
        &server,
        &format!("/experiments?filter={}&resource_reference_key.type=NAMESPACE&resource_reference_key.id=", urlencode(filter)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["total_size"], 1);
    assert_eq!(listed["experiments"][0]["id"], id);

    let (status, _) = post(&server, &format!("/experiments/{id}:archive"), Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let (_, got) = get(&server, &format!("/experiments/{id}")).await;
    assert_eq!(got["storage_state"], "STORAGESTATE_ARCHIVED");
    let archived =
        r#"{"predicates":[{"op":1,"key":"storage_state","stringValue":"STORAGESTATE_ARCHIVED"}]}"#;
    let (_, listed) = get(
        &server,
        &format!("/experiments?filter={}", urlencode(archived)),
    )
    .await;
    assert_eq!(listed["total_size"], 1, "{listed}");
    let (status, _) = post(
        &server,
        &format!("/experiments/{id}:unarchive"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, got) = get(&server, &format!("/experiments/{id}")).await;
    assert_eq!(got["storage_state"], "STORAGESTATE_AVAILABLE");

    let (status, body) = post(&server, "/experiments", json!({"name": "team"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = post(&server, "/experiments", json!({"description": "no name"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "invalid experiment: name: missing");

    let (status, _) = delete(&server, &format!("/experiments/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get(&server, &format!("/experiments/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 5);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_run_of_an_inline_workflow_shows_status_outputs_and_metrics() {
    let server = TestServer::start().await;
    let experiment_id = new_experiment(&server, "inline").await;
    let (status, created) = post(
        &server,
        "/runs",
        run_body("echo run", &experiment_id, "hi", 0),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let run_id = created["run"]["id"].as_str().unwrap().to_owned();
    assert!(
        ["Pending", "Running", "Succeeded"].contains(&created["run"]["status"].as_str().unwrap()),
        "{created}"
    );
    assert!(created["pipeline_runtime"]["workflow_manifest"].is_string());

    let detail = wait_for_status(&server, &run_id, "Succeeded").await;
    let run = &detail["run"];
    assert_eq!(run["name"], "echo run");
    assert_eq!(run["storage_state"], "STORAGESTATE_AVAILABLE");
    assert_eq!(
        run["resource_references"],
        json!([{"key": {"type": "EXPERIMENT", "id": experiment_id}, "name": "inline", "relationship": "OWNER"}])
    );
    assert_eq!(
        run["pipeline_spec"]["parameters"],
        json!([{"name": "nap", "value": "0"}, {"name": "text", "value": "hi"}])
    );
    assert_eq!(
        run["metrics"],
        json!([{"name": "score", "node_id": "echo", "number_value": 0.5, "format": "PERCENTAGE"}])
    );
    assert!(run["finished_at"].is_string());

    let nodes = nodes(&detail);
    let echo = &nodes["echo"];
    assert_eq!(echo["phase"], "Succeeded");
    assert_eq!(
        echo["outputs"]["parameters"],
        json!([{"name": "echo-out", "value": "hi!"}])
    );

    // The artifact as KFP v1 gives it: a gzipped tar of the file, base64.
    let (status, read) = get(
        &server,
        &format!("/runs/{run_id}/nodes/echo/artifacts/echo-out:read"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(read["data"].as_str().unwrap())
        .unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut text = String::new();
    entry.read_to_string(&mut text).unwrap();
    assert_eq!(text, "hi!");
    let (status, _) = get(
        &server,
        &format!("/runs/{run_id}/nodes/echo/artifacts/nothing:read"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Listed in its experiment, with its metrics; the v2 API shows the same run.
    let (status, listed) = get(
        &server,
        &format!(
            "/runs?resource_reference_key.type=EXPERIMENT&resource_reference_key.id={experiment_id}"
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["total_size"], 1);
    assert_eq!(listed["runs"][0]["id"], run_id.as_str());
    assert_eq!(listed["runs"][0]["metrics"], run["metrics"]);
    let (_, other) = get(
        &server,
        "/runs?resource_reference_key.type=EXPERIMENT&resource_reference_key.id=elsewhere",
    )
    .await;
    assert_eq!(other["total_size"], 0);
    let (status, v2) = server.get(&format!("/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v2["state"], "SUCCEEDED");
    assert_eq!(v2["experiment_id"], experiment_id.as_str());
}

#[tokio::test]
async fn runs_are_terminated_retried_archived_and_deleted() {
    let server = TestServer::start().await;
    let experiment_id = new_experiment(&server, "lifecycle").await;
    let (status, created) = post(&server, "/runs", run_body("nap", &experiment_id, "zz", 30)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let run_id = created["run"]["id"].as_str().unwrap().to_owned();
    wait_for(&server, &run_id, "the task to run", |detail| {
        nodes(detail)
            .get("echo")
            .is_some_and(|node| node["phase"] == "Running")
    })
    .await;

    let (status, body) = post(&server, &format!("/runs/{run_id}/terminate"), Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // kfp 1.8 stops waiting at failed: a terminated run ends as its workflow would.
    let detail = wait_for_status(&server, &run_id, "Failed").await;
    assert!(detail["run"]["error"].is_string(), "{detail}");
    assert_eq!(nodes(&detail)["echo"]["phase"], "Failed");
    let (status, body) = post(&server, &format!("/runs/{run_id}/terminate"), Value::Null).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");

    let (status, body) = post(&server, &format!("/runs/{run_id}/retry"), Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, detail) = get(&server, &format!("/runs/{run_id}")).await;
    assert!(
        ["Running", "Pending"].contains(&detail["run"]["status"].as_str().unwrap()),
        "{detail}"
    );
    let (status, _) = post(&server, &format!("/runs/{run_id}/terminate"), Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    wait_for_status(&server, &run_id, "Failed").await;

    for (action, shown) in [
        ("archive", "STORAGESTATE_ARCHIVED"),
        ("unarchive", "STORAGESTATE_AVAILABLE"),
    ] {
        let (status, body) = post(&server, &format!("/runs/{run_id}:{action}"), Value::Null).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, detail) = get(&server, &format!("/runs/{run_id}")).await;
        assert_eq!(detail["run"]["storage_state"], shown);
    }
    let (status, body) = post(&server, &format!("/runs/{run_id}:reportMetrics"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");

    let (status, _) = delete(&server, &format!("/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get(&server, &format!("/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn bad_runs_are_refused_with_the_field_at_fault() {
    let server = TestServer::start().await;
    let check = |body: Value, expected_status: StatusCode, expected: &'static str| {
        let server = &server;
        async move {
            let (status, answer) = post(server, "/runs", body).await;
            assert_eq!(status, expected_status, "{answer}");
            let message = answer["message"].as_str().unwrap();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    };
    check(
        json!({"name": "x", "pipeline_spec": {}}),
        StatusCode::BAD_REQUEST,
        "invalid run.pipeline_spec: it needs a workflow_manifest",
    )
    .await;
    check(
        json!({"name": "x", "pipeline_spec": {"workflow_manifest": ECHO_WORKFLOW, "pipeline_id": "p"}}),
        StatusCode::BAD_REQUEST,
        "not both",
    )
    .await;
    check(
        json!({"name": "x", "pipeline_spec": {"workflow_manifest": ECHO_WORKFLOW},
               "resource_references": [{"key": {"type": "TEAM", "id": "t"}}]}),
        StatusCode::BAD_REQUEST,
        "run.resource_references[0].key.type",
    )
    .await;
    check(
        json!({"name": "x", "pipeline_spec": {"workflow_manifest": ECHO_WORKFLOW,
               "parameters": [{"name": "colour", "value": "red"}]}}),
        StatusCode::BAD_REQUEST,
        "unknown parameter \"colour\"",
    )
    .await;
    check(
        json!({"name": "x", "pipeline_spec": {"workflow_manifest": ECHO_WORKFLOW.replace("container:", "script:")}}),
        StatusCode::BAD_REQUEST,
        "spec.templates[echo]",
    )
    .await;
    check(
        json!({"name": "x",
               "resource_references": [{"key": {"type": "PIPELINE_VERSION", "id": "nope"}}]}),
        StatusCode::NOT_FOUND,
        "pipeline version \"nope\" not found",
    )
    .await;
    check(
        json!({"name": "x", "pipeline_spec": {"workflow_manifest": ECHO_WORKFLOW},
               "resource_references": [experiment_ref("nope")]}),
        StatusCode::NOT_FOUND,
        "nope",
    )
    .await;
    let (status, body) = get(
        &server,
        "/runs?resource_reference_key.type=PIPELINE&resource_reference_key.id=x",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Nothing was stored.
    let (_, listed) = get(&server, "/runs").await;
    assert_eq!(listed["total_size"], 0, "{listed}");
}

/// Runs a stored pipeline (its default version) and returns what its `echo` task said.
async fn echo_of_pipeline(server: &TestServer, name: &str, pipeline_id: &str) -> Value {
    let (status, created) = post(
        server,
        "/runs",
        json!({"name": name, "pipeline_spec": {"pipeline_id": pipeline_id}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let run_id = created["run"]["id"].as_str().unwrap().to_owned();
    let detail = wait_for_status(server, &run_id, "Succeeded").await;
    nodes(&detail)["echo"]["outputs"]["parameters"][0]["value"].clone()
}

#[tokio::test]
async fn pipelines_versions_and_runs_of_a_version() {
    let server = TestServer::start().await;
    let (status, pipeline) = upload(
        &server,
        "/pipelines/upload?name=echo&description=says%20hi",
        ECHO_WORKFLOW.as_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pipeline}");
    let pipeline_id = pipeline["id"].as_str().unwrap().to_owned();
    assert_eq!(pipeline["name"], "echo");
    assert_eq!(pipeline["description"], "says hi");
    assert_eq!(
        pipeline["parameters"],
        json!([{"name": "nap", "value": "0"}, {"name": "text", "value": "hi"}])
    );
    let first_version = pipeline["default_version"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        pipeline["default_version"]["resource_references"],
        json!([{"key": {"type": "PIPELINE", "id": pipeline_id}, "relationship": "OWNER"}])
    );

    let (status, version) = upload(
        &server,
        &format!("/pipelines/upload_version?name=second&pipelineid={pipeline_id}"),
        ECHO_WORKFLOW.replace("value: hi", "value: ho").as_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{version}");
    let version_id = version["id"].as_str().unwrap().to_owned();
    assert_eq!(version["name"], "second");

    let (status, got) = get(&server, &format!("/pipelines/{pipeline_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["default_version"]["id"], version_id.as_str());
    let (_, listed) = get(&server, "/pipelines").await;
    assert_eq!(listed["total_size"], 1);
    assert_eq!(listed["pipelines"][0]["id"], pipeline_id.as_str());
    let (status, versions) = get(
        &server,
        &format!("/pipeline_versions?resource_key.type=PIPELINE&resource_key.id={pipeline_id}&sort_by=created_at"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{versions}");
    assert_eq!(versions["total_size"], 2);
    assert_eq!(versions["versions"][0]["id"], first_version.as_str());
    assert_eq!(versions["versions"][1]["id"], version_id.as_str());
    let (status, _) = get(&server, "/pipeline_versions").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, got) = get(&server, &format!("/pipeline_versions/{version_id}")).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["name"], "second");
    let (status, template) = get(
        &server,
        &format!("/pipeline_versions/{version_id}/templates"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let spec: Value = serde_json::from_str(template["template"].as_str().unwrap()).unwrap();
    assert_eq!(
        spec["root"]["inputDefinitions"]["parameters"]["text"]["defaultValue"],
        "ho"
    );
    let (status, template) = get(&server, &format!("/pipelines/{pipeline_id}/templates")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(template["template"].as_str().unwrap().contains("\"ho\""));

    // A run of a version named by its id alone, and one of the pipeline (its newest version).
    let experiment_id = new_experiment(&server, "stored").await;
    let (status, created) = post(
        &server,
        "/runs",
        json!({
            "name": "of a version",
            "pipeline_spec": {"parameters": [{"name": "text", "value": "v"}]},
            "resource_references": [
                experiment_ref(&experiment_id),
                {"key": {"type": "PIPELINE_VERSION", "id": first_version}, "relationship": "CREATOR"},
            ],
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let run_id = created["run"]["id"].as_str().unwrap().to_owned();
    let detail = wait_for_status(&server, &run_id, "Succeeded").await;
    assert_eq!(
        detail["run"]["pipeline_spec"]["pipeline_id"],
        pipeline_id.as_str()
    );
    let references = detail["run"]["resource_references"].as_array().unwrap();
    assert!(
        references
            .iter()
            .any(|r| r["key"] == json!({"type": "PIPELINE_VERSION", "id": first_version}))
    );
    assert_eq!(
        nodes(&detail)["echo"]["outputs"]["parameters"][0]["value"],
        "v!"
    );

    assert_eq!(
        echo_of_pipeline(&server, "of the pipeline", &pipeline_id).await,
        "ho!"
    );

    // The first version made the default again: the pipeline shows it, its template is that
    // version's, and a run of the pipeline runs it.
    let (status, body) = post(
        &server,
        &format!("/pipelines/{pipeline_id}/default_version/{first_version}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, got) = get(&server, &format!("/pipelines/{pipeline_id}")).await;
    assert_eq!(got["default_version"]["id"], first_version.as_str());
    assert_eq!(
        got["parameters"],
        json!([{"name": "nap", "value": "0"}, {"name": "text", "value": "hi"}])
    );
    let (_, template) = get(&server, &format!("/pipelines/{pipeline_id}/templates")).await;
    assert!(template["template"].as_str().unwrap().contains("\"hi\""));
    assert_eq!(
        echo_of_pipeline(&server, "of the default", &pipeline_id).await,
        "hi!"
    );
    // An unknown version, or a version of an unknown pipeline, cannot be the default.
    let (status, body) = post(
        &server,
        &format!("/pipelines/{pipeline_id}/default_version/no-such-version"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.to_string().contains("no-such-version"), "{body}");
    let (status, _) = post(
        &server,
        &format!("/pipelines/no-such-pipeline/default_version/{first_version}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, got) = get(&server, &format!("/pipelines/{pipeline_id}")).await;
    assert_eq!(got["default_version"]["id"], first_version.as_str());

    // Deleting the default version leaves the newest as the default.
    let (status, _) = delete(&server, &format!("/pipeline_versions/{first_version}")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, got) = get(&server, &format!("/pipelines/{pipeline_id}")).await;
    assert_eq!(got["default_version"]["id"], version_id.as_str());
    // Uploading a version makes it the default, as in KFP v1.
    let (status, _) = post(
        &server,
        &format!("/pipelines/{pipeline_id}/default_version/{version_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, third) = upload(
        &server,
        &format!("/pipelines/upload_version?name=third&pipelineid={pipeline_id}"),
        ECHO_WORKFLOW.as_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{third}");
    let (_, got) = get(&server, &format!("/pipelines/{pipeline_id}")).await;
    assert_eq!(got["default_version"]["id"], third["id"]);

    let (status, _) = delete(&server, &format!("/pipeline_versions/{version_id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(&server, &format!("/pipeline_versions/{version_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A pipeline with versions goes with them, as in KFP v1.
    let (status, _) = delete(&server, &format!("/pipelines/{pipeline_id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(&server, &format!("/pipelines/{pipeline_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = upload(
        &server,
        "/pipelines/upload?name=bad",
        ECHO_WORKFLOW.replace("container:", "script:").as_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("spec.templates[echo]"),
        "{body}"
    );
    let (status, body) = post(
        &server,
        "/pipelines",
        json!({"name": "from nowhere", "url": {"pipeline_url": "ftp://example.invalid/p.yaml"}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn jobs_fire_runs_until_disabled() {
    let server = TestServer::start().await;
    let experiment_id = new_experiment(&server, "scheduled").await;
    let (status, job) = post(
        &server,
        "/jobs",
        json!({
            "name": "every second",
            "pipeline_spec": {
                "workflow_manifest": ECHO_WORKFLOW,
                "parameters": [{"name": "text", "value": "tick"}],
            },
            "resource_references": [experiment_ref(&experiment_id)],
            "trigger": {"periodic_schedule": {"interval_second": 1}},
            "max_concurrency": 1,
            "enabled": true,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    let job_id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["enabled"], true);
    assert_eq!(job["mode"], "ENABLED");
    assert_eq!(job["max_concurrency"], "1");
    assert_eq!(
        job["trigger"],
        json!({"periodic_schedule": {"interval_second": "1"}})
    );
    assert_eq!(
        job["pipeline_spec"]["parameters"],
        json!([{"name": "text", "value": "tick"}])
    );

    // The scheduler runs in `coracle server`; here one tick is driven by hand.
    let state = server.state.clone();
    let fired = coracle_server::recurring::tick(
        &server.state.store,
        chrono::Utc::now() + chrono::Duration::seconds(2),
        |record, at| {
            let state = state.clone();
            async move { coracle_server::recurring::fire_run(&state, &record, at).await }
        },
    )
    .await
    .unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    let run_id = fired[0].result.clone().unwrap();
    let detail = wait_for_status(&server, &run_id, "Succeeded").await;
    assert!(
        detail["run"]["resource_references"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["key"] == json!({"type": "JOB", "id": job_id})),
        "{detail}"
    );
    assert_eq!(
        nodes(&detail)["echo"]["outputs"]["parameters"][0]["value"],
        "tick!"
    );
    let (_, of_job) = get(
        &server,
        &format!("/runs?resource_reference_key.type=JOB&resource_reference_key.id={job_id}"),
    )
    .await;
    assert_eq!(of_job["total_size"], 1, "{of_job}");

    let (status, _) = post(&server, &format!("/jobs/{job_id}/disable"), Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let (_, got) = get(&server, &format!("/jobs/{job_id}")).await;
    assert_eq!(got["enabled"], false);
    assert_eq!(got["status"], "Disabled");
    let (status, _) = post(&server, &format!("/jobs/{job_id}/enable"), Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let (_, listed) = get(
        &server,
        &format!(
            "/jobs?resource_reference_key.type=EXPERIMENT&resource_reference_key.id={experiment_id}"
        ),
    )
    .await;
    assert_eq!(listed["total_size"], 1, "{listed}");
    assert_eq!(listed["jobs"][0]["enabled"], true);

    let (status, _) = delete(&server, &format!("/jobs/{job_id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(&server, &format!("/jobs/{job_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = post(
        &server,
        "/jobs",
        json!({
            "name": "bad",
            "pipeline_spec": {"workflow_manifest": ECHO_WORKFLOW},
            "trigger": {"cron_schedule": {"cron": "every tuesday"}},
            "enabled": true,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("cron"), "{body}");
}
