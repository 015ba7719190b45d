//! `/runs`: create, read, list, terminate, retry, archive, delete and artifact reads, with real
//! processes (container components run as `sh -c` on the host).

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::Utc;
use coracle_store::{PipelineRecord, PipelineVersionRecord};
use serde_json::{Value, json};

use crate::common::TestServer;

/// One container step of a test pipeline.
pub(crate) struct Step<'a> {
    pub(crate) name: &'a str,
    /// `sh -c` script; `$0` is the `marker` parameter, `$1` the path of output artifact `out`.
    pub(crate) script: &'a str,
    pub(crate) after: &'a [&'a str],
    /// Whether the step has an output artifact `out` (a file at `$1`).
    pub(crate) artifact: bool,
}

pub(crate) fn step<'a>(name: &'a str, script: &'a str) -> Step<'a> {
    Step {
        name,
        script,
        after: &[],
        artifact: false,
    }
}

/// A pipeline of container steps, each given the root parameter `marker` (a string).
pub(crate) fn pipeline(name: &str, steps: &[Step]) -> Value {
    let mut tasks = serde_json::Map::new();
    let mut components = serde_json::Map::new();
    let mut executors = serde_json::Map::new();
    let marker_input = json!({"parameters": {"marker": {"parameterType": "STRING"}}});
    for step in steps {
        tasks.insert(
            step.name.into(),
            json!({
                "taskInfo": {"name": step.name},
                "componentRef": {"name": format!("comp-{}", step.name)},
                "dependentTasks": step.after,
                "inputs": {"parameters": {"marker": {"componentInputParameter": "marker"}}},
            }),
        );
        let mut component = json!({
            "executorLabel": format!("exec-{}", step.name),
            "inputDefinitions": marker_input,
        });
        let mut command = vec![
            json!("sh"),
            json!("-c"),
            json!(step.script),
            json!("{{$.inputs.parameters['marker']}}"),
        ];
        if step.artifact {
            component["outputDefinitions"] = json!({"artifacts": {"out": {
                "artifactType": {"schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"}
            }}});
            command.push(json!("{{$.outputs.artifacts['out'].path}}"));
        }
        components.insert(format!("comp-{}", step.name), component);
        executors.insert(
            format!("exec-{}", step.name),
            json!({"container": {"image": "alpine", "command": command}}),
        );
    }
    json!({
        "pipelineInfo": {"name": name},
        "root": {"inputDefinitions": marker_input, "dag": {"tasks": tasks}},
        "components": components,
        "deploymentSpec": {"executors": executors},
        "schemaVersion": "2.1.0",
        "sdkVersion": "kfp-2.14.6",
    })
}

pub(crate) fn run_body(name: &str, spec: &Value, marker: &str) -> Value {
    json!({
        "display_name": name,
        "pipeline_spec": spec,
        "runtime_config": {"parameters": {"marker": marker}},
    })
}

/// A string no other test's processes carry on their command line.
fn marker(test: &str) -> String {
    format!("coracle-server-test-{test}-{}", std::process::id())
}

pub(crate) async fn create(server: &TestServer, body: Value) -> String {
    let (status, run) = server.post("/runs", body).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    run["run_id"].as_str().expect("a run id").to_owned()
}

/// Polls `GET /runs/{id}` until `done` holds (30 s at most).
async fn wait_for(
    server: &TestServer,
    run_id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, run) = server.get(&format!("/runs/{run_id}")).await;
        assert_eq!(status, StatusCode::OK, "{run}");
        if done(&run) {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {run:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn wait_until_ended(server: &TestServer, run_id: &str) -> Value {
    wait_for(server, run_id, "the run to end", |run| {
        matches!(
            run["state"].as_str(),
            Some("SUCCEEDED" | "FAILED" | "CANCELED")
        )
    })
    .await
}

fn task<'a>(run: &'a Value, task_id: &str) -> &'a Value {
    run["run_details"]["task_details"]
        .as_array()
        .expect("task details")
        .iter()
        .find(|t| t["task_id"] == task_id)
        .unwrap_or_else(|| panic!("no task {task_id} in {run:#}"))
}

fn states(history: &Value) -> Vec<&str> {
    history
        .as_array()
        .expect("a state history")
        .iter()
        .map(|entry| entry["state"].as_str().unwrap())
        .collect()
}

/// Command lines of live processes that contain `needle`.
fn processes_matching(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && !cmdline.contains("cargo") {
            found.push(cmdline);
        }
    }
    found
}

async fn no_process_left(needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_matching(needle).is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes left: {:?}",
            processes_matching(needle)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_list_and_terminate_a_long_run() {
    let server = TestServer::start().await;
    let marker = marker("terminate");
    let spec = pipeline("long", &[step("nap", r#"exec sh -c "sleep 40; :" "$0""#)]);
    let (status, created) = server
        .post("/runs", run_body("long one", &spec, &marker))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let run_id = created["run_id"].as_str().unwrap().to_owned();
    assert!(
        matches!(created["state"].as_str(), Some("PENDING" | "RUNNING")),
        "{created}"
    );
    assert_eq!(created["display_name"], "long one");
    assert_eq!(created["storage_state"], "AVAILABLE");
    assert_eq!(
        created["runtime_config"]["parameters"]["marker"],
        json!(marker)
    );
    // As submitted, not as the engine models it.
    assert_eq!(created["pipeline_spec"], spec);
    let experiment_id = created["experiment_id"].as_str().unwrap().to_owned();
    assert_eq!(
        experiment_id,
        server.state.store.default_experiment_id().await.unwrap()
    );

    let run = wait_for(&server, &run_id, "the nap to run", |run| {
        run["run_details"]["task_details"][0]["state"] == "RUNNING"
    })
    .await;
    assert_eq!(run["state"], "RUNNING");
    let nap = task(&run, "nap");
    assert_eq!(nap["run_id"], json!(run_id));
    assert_eq!(nap["display_name"], "nap");
    assert!(nap["start_time"].is_string(), "{nap}");
    assert!(nap.get("end_time").is_none(), "{nap}");
    assert_eq!(nap["input_parameters"]["marker"], json!(marker));
    assert!(!processes_matching(&marker).is_empty());

    // Listed, filtered by state and by the experiment as kfp.Client sends it.
    let (status, list) = server.get("/runs").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total_size"], 1);
    assert_eq!(list["runs"][0]["run_id"], json!(run_id));
    assert_eq!(list["runs"][0]["state"], "RUNNING");
    assert!(list["runs"][0].get("pipeline_spec").is_none());
    let running =
        r#"{"predicates":[{"operation":"EQUALS","key":"state","string_value":"RUNNING"}]}"#;
    let (_, list) = server
        .get(&format!("/runs?filter={}", encode(running)))
        .await;
    assert_eq!(list["total_size"], 1, "{list}");
    let (_, list) = server
        .get(&format!(
            "/runs?experiment_id={experiment_id}&namespace=&page_size=10"
        ))
        .await;
    assert_eq!(list["total_size"], 1, "{list}");
    let (_, list) = server.get("/runs?experiment_id=elsewhere").await;
    assert_eq!(list["total_size"], 0, "{list}");
    assert!(list.get("runs").is_none(), "{list}");

    let (status, body) = server
        .post(&format!("/runs/{run_id}:terminate"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({}));
    let run = wait_until_ended(&server, &run_id).await;
    assert_eq!(run["state"], "CANCELED", "{run:#}");
    assert_eq!(
        states(&run["state_history"]),
        ["PENDING", "RUNNING", "CANCELING", "CANCELED"]
    );
    assert!(run["finished_at"].is_string());
    assert_eq!(task(&run, "nap")["state"], "CANCELED");
    no_process_left(&marker).await;

    // An ended run cannot be terminated.
    let (status, body) = server
        .post(&format!("/runs/{run_id}:terminate"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(body["code"], 9);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("already ended CANCELED"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_live_run_stops_it_first() {
    let server = TestServer::start().await;
    let marker = marker("delete-live");
    let spec = pipeline("long", &[step("nap", r#"exec sh -c "sleep 40; :" "$0""#)]);
    let run_id = create(&server, run_body("doomed", &spec, &marker)).await;
    wait_for(&server, &run_id, "the nap to run", |run| {
        run["run_details"]["task_details"][0]["state"] == "RUNNING"
    })
    .await;
    let (status, body) = server.delete(&format!("/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = server.get(&format!("/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    no_process_left(&marker).await;
    assert!(!server.state.runs.is_live(&run_id));
    assert!(!server.dir.path().join("runs").join(&run_id).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_run_ends_failed_with_its_error() {
    let server = TestServer::start().await;
    let spec = pipeline(
        "failing",
        &[
            step("first", "echo fine"),
            Step {
                after: &["first"],
                ..step("boom", "echo about to fail; exit 3")
            },
            Step {
                after: &["boom"],
                ..step("never", "echo unreachable")
            },
        ],
    );
    let run_id = create(&server, run_body("fails", &spec, "m")).await;
    let run = wait_until_ended(&server, &run_id).await;
    assert_eq!(run["state"], "FAILED", "{run:#}");
    let message = run["error"]["message"].as_str().expect("an error message");
    assert!(message.contains("boom"), "{message}");
    assert_eq!(run["error"]["code"], 2);
    assert_eq!(
        states(&run["state_history"]),
        ["PENDING", "RUNNING", "FAILED"]
    );
    assert_eq!(
        run["state_history"][2]["error"]["message"],
        run["error"]["message"]
    );
    assert_eq!(task(&run, "first")["state"], "SUCCEEDED");
    let boom = task(&run, "boom");
    assert_eq!(boom["state"], "FAILED");
    assert!(
        boom["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exit code 3"),
        "{boom}"
    );
    assert_eq!(states(&boom["state_history"]), ["RUNNING", "FAILED"]);
    assert_eq!(task(&run, "never")["state"], "SKIPPED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_runs_a_failed_run_again_keeping_what_succeeded() {
    let server = TestServer::start().await;
    let gate = server.dir.path().join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    let spec = pipeline(
        "flaky",
        &[
            step("once", r#"echo ran >> "$0/once.count""#),
            Step {
                after: &["once"],
                ..step(
                    "flaky",
                    r#"test -e "$0/allow" || { echo not yet; exit 4; }"#,
                )
            },
        ],
    );
    let gate_text = gate.display().to_string();
    let run_id = create(&server, run_body("flaky", &spec, &gate_text)).await;
    let run = wait_until_ended(&server, &run_id).await;
    assert_eq!(run["state"], "FAILED", "{run:#}");

    std::fs::write(gate.join("allow"), "").unwrap();
    let (status, body) = server
        .post(&format!("/runs/{run_id}:retry"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let run = wait_until_ended(&server, &run_id).await;
    assert_eq!(run["state"], "SUCCEEDED", "{run:#}");
    assert_eq!(run["run_id"], json!(run_id));
    assert!(run.get("error").is_none(), "{run:#}");
    assert_eq!(
        states(&run["state_history"]),
        ["PENDING", "RUNNING", "FAILED", "RUNNING", "SUCCEEDED"]
    );
    assert_eq!(
        std::fs::read_to_string(gate.join("once.count")).unwrap(),
        "ran\n",
        "the task that had succeeded ran again"
    );
    let flaky = task(&run, "flaky");
    assert_eq!(flaky["state"], "SUCCEEDED");
    assert_eq!(flaky["attempt"], 1);
    assert_eq!(
        states(&flaky["state_history"]),
        ["RUNNING", "FAILED", "RUNNING", "SUCCEEDED"]
    );
    assert_eq!(task(&run, "once")["attempt"], 0);

    // Only failed or canceled runs are retried.
    let (status, body) = server
        .post(&format!("/runs/{run_id}:retry"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("is SUCCEEDED"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_unarchive_and_delete() {
    let server = TestServer::start().await;
    let spec = pipeline("quick", &[step("quick", "true")]);
    let run_id = create(&server, run_body("quick", &spec, "m")).await;
    assert_eq!(
        wait_until_ended(&server, &run_id).await["state"],
        "SUCCEEDED"
    );
    let run_dir = server.dir.path().join("runs").join(&run_id);
    assert!(run_dir.exists());

    let archived =
        r#"{"predicates":[{"operation":"EQUALS","key":"storage_state","stringValue":"ARCHIVED"}]}"#;
    let (status, body) = server
        .post(&format!("/runs/{run_id}:archive"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, run) = server.get(&format!("/runs/{run_id}")).await;
    assert_eq!(run["storage_state"], "ARCHIVED");
    let (_, list) = server
        .get(&format!("/runs?filter={}", encode(archived)))
        .await;
    assert_eq!(list["total_size"], 1, "{list}");

    let (status, _) = server
        .post(&format!("/runs/{run_id}:unarchive"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, run) = server.get(&format!("/runs/{run_id}")).await;
    assert_eq!(run["storage_state"], "AVAILABLE");
    let (_, list) = server
        .get(&format!("/runs?filter={}", encode(archived)))
        .await;
    assert_eq!(list["total_size"], 0, "{list}");

    let (status, body) = server.delete(&format!("/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({}));
    let (status, body) = server.get(&format!("/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(!run_dir.exists());
    let (_, list) = server.get("/runs").await;
    assert_eq!(list["total_size"], 0, "{list}");
}

#[tokio::test]
async fn unknown_runs_and_actions_are_not_found() {
    let server = TestServer::start().await;
    for (status, body) in [
        server.get("/runs/nope").await,
        server.delete("/runs/nope").await,
        server.post("/runs/nope:archive", Value::Null).await,
        server.post("/runs/nope:unarchive", Value::Null).await,
        server.post("/runs/nope:terminate", Value::Null).await,
        server.post("/runs/nope:retry", Value::Null).await,
        server.get("/runs/nope/nodes/task/artifacts/out:read").await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["code"], 5, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("\"nope\""),
            "{body}"
        );
    }
    let spec = pipeline("quick", &[step("quick", "true")]);
    let run_id = create(&server, run_body("quick", &spec, "m")).await;
    let (status, body) = server
        .post(&format!("/runs/{run_id}:frobnicate"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["message"].as_str().unwrap().contains("frobnicate"));
    wait_until_ended(&server, &run_id).await;
}

#[tokio::test]
async fn bad_requests_are_refused_and_store_nothing() {
    let server = TestServer::start().await;
    let good = pipeline("quick", &[step("quick", "true")]);
    let mut missing_component = good.clone();
    missing_component["root"]["dag"]["tasks"]["quick"]["componentRef"]["name"] =
        json!("comp-missing");
    let mut pvc = good.clone();
    pvc["deploymentSpec"]["executors"]["exec-quick"]["container"]["image"] =
        json!("argostub/createsnapshot");
    let cases: Vec<(Value, &str)> = vec![
        (json!([1, 2]), "expected a JSON object"),
        (json!({"display_name": "x"}), "needs a pipeline_spec"),
        (
            json!({"pipeline_spec": good, "pipeline_version_reference": {"pipeline_id": "p"}}),
            "not both",
        ),
        (
            json!({"pipeline_spec": "not: [a pipeline"}),
            "run.pipeline_spec",
        ),
        (
            json!({"pipeline_spec": 7}),
            "expected an object, found a number",
        ),
        (
            json!({"pipeline_spec": missing_component, "runtime_config": {"parameters": {"marker": "m"}}}),
            "comp-missing",
        ),
        (
            json!({"pipeline_spec": good, "runtime_config": {"parameters": {}}}),
            "marker",
        ),
        (
            json!({"pipeline_spec": good, "runtime_config": {"parameters": {"marker": "m", "extra": 1}}}),
            "extra",
        ),
        (
            json!({"pipeline_spec": good, "runtime_config": {"parameters": []}}),
            "run.runtime_config.parameters: expected an object",
        ),
        (
            json!({"pipeline_spec": good, "runtime_config": {"parameters": {"marker": "m"}, "pipeline_root": "gs://bucket/root"}}),
            "pipeline_root",
        ),
        (
            json!({"pipeline_spec": pvc, "runtime_config": {"parameters": {"marker": "m"}}}),
            "cannot run this pipeline",
        ),
        (
            json!({"pipeline_spec": good, "display_name": 5}),
            "run.display_name: expected a string",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = server.post("/runs", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert_eq!(answer["code"], 3, "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
    }
    // Not JSON at all.
    let request = axum::http::Request::builder()
        .method("POST")
        .uri("/apis/v2beta1/runs")
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{\"display_name\": "))
        .unwrap();
    let (status, answer) = server.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("not JSON"));
    // Unknown experiment and pipeline version.
    let (status, answer) = server
        .post(
            "/runs",
            json!({"pipeline_spec": good, "experiment_id": "nope", "runtime_config": {"parameters": {"marker": "m"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("experiment"));
    let (status, answer) = server
        .post(
            "/runs",
            json!({"pipeline_version_reference": {"pipeline_id": "p", "pipeline_version_id": "v"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    // Bad list arguments.
    let (status, answer) = server.get("/runs?sort_by=description").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = server.get("/runs?page_token=garbage").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    let (_, list) = server.get("/runs").await;
    assert_eq!(list["total_size"], 0, "{list}");
    assert!(server.state.store.list_runs(-1).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_files_are_read_as_base64() {
    let server = TestServer::start().await;
    let spec = pipeline(
        "artifacts",
        &[
            Step {
                artifact: true,
                ..step("make", r#"printf 'hello, artifact' > "$1""#)
            },
            Step {
                after: &["make"],
                ..step("after", "true")
            },
        ],
    );
    let run_id = create(&server, run_body("artifacts", &spec, "m")).await;
    let run = wait_until_ended(&server, &run_id).await;
    assert_eq!(run["state"], "SUCCEEDED", "{run:#}");
    let make = task(&run, "make");
    let ids = make["outputs"]["out"]["artifact_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{make}");

    let (status, body) = server
        .get(&format!("/runs/{run_id}/nodes/make/artifacts/out:read"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD
        .decode(body["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, b"hello, artifact");

    for path in [
        format!("/runs/{run_id}/nodes/make/artifacts/missing:read"),
        format!("/runs/{run_id}/nodes/nobody/artifacts/out:read"),
        format!("/runs/{run_id}/nodes/make/artifacts/out"),
    ] {
        let (status, body) = server.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_a_stored_pipeline_version() {
    let server = TestServer::start().await;
    let store = &server.state.store;
    let spec = pipeline("stored", &[step("quick", r#"test "$0" = from-version"#)]);
    let now = Utc::now();
    let version = |id: &str, at| PipelineVersionRecord {
        pipeline_version_id: id.into(),
        pipeline_id: "pipe".into(),
        name: id.into(),
        display_name: id.into(),
        description: String::new(),
        code_source_url: String::new(),
        package_url: String::new(),
        tags: Default::default(),
        created_at: at,
    };
    store
        .insert_pipeline(
            &PipelineRecord {
                pipeline_id: "pipe".into(),
                name: "stored".into(),
                display_name: "stored".into(),
                description: String::new(),
                namespace: String::new(),
                tags: Default::default(),
                created_at: now,
            },
            Some((
                &version("v1", now),
                &json!({"pipeline_spec": spec, "platform_spec": {}}),
            )),
        )
        .await
        .unwrap();
    let broken = pipeline("stored", &[step("quick", "exit 1")]);
    store
        .insert_pipeline_version(&version("v0", now - chrono::Duration::hours(1)), &broken)
        .await
        .unwrap();

    let body = |reference: Value| {
        json!({
            "display_name": "from a version",
            "pipeline_version_reference": reference,
            "runtime_config": {"parameters": {"marker": "from-version"}},
        })
    };
    // Named version, and the newest when none is named.
    for reference in [
        json!({"pipeline_id": "pipe", "pipeline_version_id": "v1"}),
        json!({"pipelineId": "pipe"}),
    ] {
        let run_id = create(&server, body(reference)).await;
        let run = wait_until_ended(&server, &run_id).await;
        assert_eq!(run["state"], "SUCCEEDED", "{run:#}");
        assert_eq!(
            run["pipeline_version_reference"],
            json!({"pipeline_id": "pipe", "pipeline_version_id": "v1"})
        );
        assert!(run.get("pipeline_spec").is_none());
    }
    let run_id = create(
        &server,
        body(json!({"pipeline_id": "pipe", "pipeline_version_id": "v0"})),
    )
    .await;
    assert_eq!(wait_until_ended(&server, &run_id).await["state"], "FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_sorts_and_pages() {
    let server = TestServer::start().await;
    let spec = pipeline("quick", &[step("quick", "true")]);
    let mut ids = Vec::new();
    for name in ["delta", "alpha", "charlie", "bravo", "echo"] {
        let run_id = create(&server, run_body(name, &spec, "m")).await;
        wait_until_ended(&server, &run_id).await;
        ids.push(run_id);
    }
    // Newest first by default.
    let (_, list) = server.get("/runs").await;
    let listed: Vec<&str> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["echo", "bravo", "charlie", "alpha", "delta"]);

    // Sorted by name, two a page.
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let (status, page) = server
            .get(&format!(
                "/runs?sort_by=display_name&page_size=2&page_token={token}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["total_size"], 5);
        for run in page["runs"].as_array().unwrap() {
            names.push(run["display_name"].as_str().unwrap().to_owned());
        }
        match page["next_page_token"].as_str() {
            Some(next) => token = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(names, ["alpha", "bravo", "charlie", "delta", "echo"]);

    let substring =
        r#"{"predicates":[{"operation":"IS_SUBSTRING","key":"display_name","string_value":"ha"}]}"#;
    let (_, list) = server
        .get(&format!(
            "/runs?filter={}&sort_by=name%20desc",
            encode(substring)
        ))
        .await;
    let listed: Vec<&str> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["charlie", "alpha"]);
}

/// Percent-encodes a query parameter value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// A server that stops driving its runs (as at shutdown) and starts again: a RUNNING run goes
/// on without running again what succeeded, the attempt cut short is recorded FAILED and run
/// again; a run being canceled ends CANCELED without running anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_runs_are_resumed() {
    let server = TestServer::start().await;
    let gate = server.dir.path().join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    let gate_text = gate.display().to_string();
    let wait = r#"echo started >> "$0/wait.count"; while [ ! -e "$0/go" ]; do sleep 0.05; done"#;
    let spec = pipeline(
        "gated",
        &[
            step("once", r#"echo ran >> "$0/once.count""#),
            Step {
                after: &["once"],
                ..step("wait", wait)
            },
        ],
    );
    let going_on = create(&server, run_body("going on", &spec, &gate_text)).await;
    let canceled = create(&server, run_body("canceled", &spec, &gate_text)).await;
    for run_id in [&going_on, &canceled] {
        wait_for(&server, run_id, "the wait step to run", |run| {
            run["run_details"]["task_details"]
                .as_array()
                .is_some_and(|tasks| {
                    tasks
                        .iter()
                        .any(|t| t["task_id"] == "wait" && t["state"] == "RUNNING")
                })
        })
        .await;
    }
    server.state.runs.shutdown().await;
    assert!(server.state.runs.is_empty());
    // Let the abandoned attempts end; their results go nowhere.
    std::fs::write(gate.join("go"), "").unwrap();
    server.state.store.request_cancel(&canceled).await.unwrap();

    let mut resumed = coracle_server::runs::resume_unfinished(&server.state)
        .await
        .unwrap();
    resumed.sort();
    let mut expected = vec![going_on.clone(), canceled.clone()];
    expected.sort();
    assert_eq!(resumed, expected);

    let run = wait_until_ended(&server, &going_on).await;
    assert_eq!(run["state"], "SUCCEEDED", "{run:#}");
    let wait_task = task(&run, "wait");
    assert_eq!(wait_task["attempt"], 1);
    assert_eq!(
        states(&wait_task["state_history"]),
        ["RUNNING", "FAILED", "RUNNING", "SUCCEEDED"]
    );
    assert!(
        wait_task["state_history"][1]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("interrupted"),
        "{wait_task}"
    );
    assert_eq!(task(&run, "once")["attempt"], 0);

    let run = wait_until_ended(&server, &canceled).await;
    assert_eq!(run["state"], "CANCELED", "{run:#}");
    assert_eq!(
        states(&run["state_history"]),
        ["PENDING", "RUNNING", "CANCELING", "CANCELED"]
    );
    let wait_task = task(&run, "wait");
    assert_eq!(wait_task["state"], "CANCELED");
    assert_eq!(wait_task["attempt"], 0);
    // Each run's `once` ran once; `wait` started twice for the first run, once for the other.
    assert_eq!(
        std::fs::read_to_string(gate.join("once.count")).unwrap(),
        "ran\nran\n"
    );
    assert_eq!(
        std::fs::read_to_string(gate.join("wait.count")).unwrap(),
        "started\nstarted\nstarted\n"
    );
}

#[tokio::test]
async fn a_retried_run_keeps_its_platform_settings() {
    let server = TestServer::start().await;
    let spec = pipeline(
        "with-secret",
        &[step("show", "test \"$TOKEN\" = s3cret-value && echo ok")],
    );
    let body = json!({
        "display_name": "platform-retry",
        "pipeline_spec": {
            "pipeline_spec": spec,
            "platform_spec": {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {
                "exec-show": {"secretAsEnv": [{
                    "secretNameParameter": {"runtimeValue": {"constant": "api-token"}},
                    "keyToEnv": [{"secretKey": "token", "envVar": "TOKEN"}]
                }]}
            }}}}},
        },
        "runtime_config": {"parameters": {"marker": "m"}},
    });
    let run_id = create(&server, body).await;
    let run = wait_until_ended(&server, &run_id).await;
    assert_eq!(run["state"], "FAILED", "{run}");
    assert!(
        run["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("secret \"api-token\" does not exist"),
        "{run}"
    );
    // The API shows the platform part beside the spec, as it was sent.
    assert!(
        run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"].is_object(),
        "{run}"
    );
    let values =
        std::collections::BTreeMap::from([("token".to_string(), b"s3cret-value".to_vec())]);
    server
        .state
        .store
        .put_secret("api-token", &values, false)
        .await
        .unwrap();
    let (status, retried) = server
        .post(&format!("/runs/{run_id}:retry"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    let run = wait_for(&server, &run_id, "the retry to succeed", |run| {
        run["state"] == "SUCCEEDED" || run["state"] == "FAILED"
    })
    .await;
    assert_eq!(run["state"], "SUCCEEDED", "{run}");
}
