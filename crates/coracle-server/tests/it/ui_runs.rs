//! The run pages of the web UI through the router: the runs list (filter, sort, pages), a
//! run's page with its graph, the status the page polls, a task's panel and its log, and the
//! new-run form.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::TestServer;
use crate::runs::{create, pipeline, run_body, step, wait_until_ended};

/// GET `path` (a UI path); status, headers and body text.
async fn page(server: &TestServer, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = coracle_server::router(server.state.clone())
        .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

async fn finished_run(server: &TestServer, name: &str, marker: &str) -> String {
    let spec = pipeline(
        "ui-two-steps",
        &[
            step("hello", "echo \"hello from $0\"; echo 'to stderr' >&2"),
            crate::runs::Step {
                after: &["hello"],
                ..step("world", "echo world")
            },
        ],
    );
    let run_id = create(server, run_body(name, &spec, marker)).await;
    let run = wait_until_ended(server, &run_id).await;
    assert_eq!(run["state"], "SUCCEEDED", "{run}");
    run_id
}

#[tokio::test]
async fn runs_list_filters_sorts_and_pages() {
    let server = TestServer::start().await;
    let first = finished_run(&server, "ui-list-alpha", "a").await;
    let second = finished_run(&server, "ui-list-beta", "b").await;

    let (status, _, html) = page(&server, "/runs").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<table id=\"runs\">"), "{html}");
    for id in [&first, &second] {
        assert!(html.contains(&format!("data-run-id=\"{id}\"")), "{html}");
    }
    // Newest first by default.
    assert!(html.find(&second).unwrap() < html.find(&first).unwrap());
    let (_, _, html) = page(&server, "/runs?sort=display_name").await;
    assert!(html.find(&first).unwrap() < html.find(&second).unwrap());
    // Name filter.
    let (_, _, html) = page(&server, "/runs?q=beta").await;
    assert!(html.contains(&second) && !html.contains(&first), "{html}");
    // State filter.
    let (_, _, html) = page(&server, "/runs?state=FAILED").await;
    assert!(!html.contains(&first) && !html.contains(&second));
    // Pages: one run a page, a link to the next, which shows the other.
    let (_, _, html) = page(&server, "/runs?page_size=1").await;
    assert!(html.contains(&second) && !html.contains(&first));
    let marker = "id=\"next-page\" href=\"";
    let start = html.find(marker).expect("a next-page link") + marker.len();
    let next = html[start..start + html[start..].find('"').unwrap()].replace("&amp;", "&");
    let (status, _, html) = page(&server, &next).await;
    assert_eq!(status, StatusCode::OK, "{next}: {html}");
    assert!(html.contains(&first) && !html.contains(&second), "{html}");
    // A bad sort key is a 400 page that says so.
    let (status, _, html) = page(&server, "/runs?sort=nonsense").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("sort"), "{html}");
}

#[tokio::test]
async fn a_run_page_shows_its_graph_status_tasks_and_logs() {
    let server = TestServer::start().await;
    let run_id = finished_run(&server, "ui-run-page", "marker-42").await;

    let (status, _, html) = page(&server, &format!("/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"run-state\">SUCCEEDED<"), "{html}");
    assert!(html.contains("<svg id=\"graph\""), "{html}");
    for task in ["hello", "world"] {
        assert!(
            html.contains(&format!("data-task=\"{task}\" data-state=\"SUCCEEDED\"")),
            "{task}: {html}"
        );
    }
    assert!(html.contains("id=\"parameters\""));
    assert!(html.contains("marker-42"));
    assert!(html.contains("id=\"events\""));

    let (status, _, body) = page(&server, &format!("/runs/{run_id}/status.json")).await;
    assert_eq!(status, StatusCode::OK);
    let status_json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status_json["state"], "SUCCEEDED");
    assert_eq!(status_json["terminal"], true);
    assert_eq!(
        status_json["tasks"],
        json!({"hello": {"state": "SUCCEEDED", "attempts": 1}, "world": {"state": "SUCCEEDED", "attempts": 1}})
    );

    let (status, _, panel) = page(&server, &format!("/runs/{run_id}/tasks/hello")).await;
    assert_eq!(status, StatusCode::OK, "{panel}");
    assert!(
        panel.contains("<section class=\"task\" data-task=\"hello\""),
        "{panel}"
    );
    assert!(panel.contains("id=\"task-log\""), "{panel}");
    assert!(panel.contains("marker-42"), "inputs shown: {panel}");

    let log_path = format!("/runs/{run_id}/tasks/hello/log");
    let (status, headers, log) = page(&server, &log_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(log.contains("hello from marker-42"), "{log}");
    assert!(log.contains("to stderr"), "{log}");
    assert_eq!(headers["x-task-done"], "1");
    let offset: usize = headers["x-log-offset"].to_str().unwrap().parse().unwrap();
    assert_eq!(offset, log.len());
    // From an offset: the rest only.
    let (_, headers, rest) = page(&server, &format!("{log_path}?offset=6")).await;
    assert_eq!(rest, log[6..]);
    assert_eq!(
        headers["x-log-offset"].to_str().unwrap(),
        offset.to_string()
    );

    // Unknown things are 404 pages, not 500s.
    for path in [
        "/runs/no-such-run".to_string(),
        "/runs/no-such-run/status.json".to_string(),
        format!("/runs/{run_id}/tasks/no-such-task"),
        format!("/runs/{run_id}/tasks/hello/log?attempt=7"),
    ] {
        let (status, _, _) = page(&server, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn the_new_run_form_is_built_from_the_pipelines_parameters() {
    let server = TestServer::start().await;
    let spec = json!({
        "pipelineInfo": {"name": "form-pipeline"},
        "root": {
            "inputDefinitions": {"parameters": {
                "count": {"parameterType": "NUMBER_INTEGER", "defaultValue": 3},
                "flag": {"parameterType": "BOOLEAN", "defaultValue": true},
                "names": {"parameterType": "LIST", "defaultValue": ["a", "b"]},
                "label": {"parameterType": "STRING"}
            }},
            "dag": {"tasks": {"t": {"taskInfo": {"name": "t"}, "componentRef": {"name": "comp-t"}}}}
        },
        "components": {"comp-t": {"executorLabel": "exec-t"}},
        "deploymentSpec": {"executors": {"exec-t": {"container": {"image": "alpine", "command": ["true"]}}}},
        "schemaVersion": "2.1.0",
        "sdkVersion": "kfp-2.14.6",
    });
    let (status, created) = server
        .post(
            "/pipelines/create",
            json!({"pipeline": {"display_name": "form-pipeline"}, "pipeline_version": {"display_name": "v1", "pipeline_spec": spec}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let pipeline_id = created["pipeline_id"].as_str().unwrap();
    let (status, _, html) = page(&server, &format!("/runs/new?pipeline={pipeline_id}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"run-form\""));
    assert!(
        html.contains("name=\"param-count\" data-kind=\"NUMBER_INTEGER\" value=\"3\""),
        "{html}"
    );
    assert!(
        html.contains("name=\"param-flag\" data-kind=\"BOOLEAN\" checked"),
        "{html}"
    );
    assert!(html.contains("name=\"param-label\""), "{html}");
    assert!(
        html.contains("[&#34;a&#34;,&#34;b&#34;]")
            || html.contains("[&quot;a&quot;,&quot;b&quot;]"),
        "{html}"
    );
    let (status, _, _) = page(&server, "/runs/new?pipeline=nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = page(&server, "/runs/new").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A finished run recorded directly in the store, with one `system.Metrics` artifact holding
/// `metadata`.
async fn run_with_metrics(server: &TestServer, run_id: &str, created: i64, metadata: Value) {
    let at = chrono::DateTime::from_timestamp(1_700_000_000 + created, 0).unwrap();
    let run = coracle_store::RunRecord {
        run_id: run_id.to_owned(),
        display_name: format!("metric run {run_id}"),
        pipeline_name: "p".to_owned(),
        pipeline_spec: json!({}),
        parameters: json!({}),
        pipeline_root: "/tmp".to_owned(),
        state: coracle_store::RunState::Succeeded,
        error: None,
        outputs: Value::Null,
        created_at: at,
        started_at: Some(at),
        finished_at: Some(at),
    };
    let store = &server.state.store;
    store
        .insert_api_run(&run, &coracle_store::run_api::RunApiFields::default())
        .await
        .unwrap();
    store
        .insert_artifact(&coracle_store::ArtifactRecord {
            artifact_id: format!("{run_id}-metrics"),
            run_id: run_id.to_owned(),
            producer_task_id: "evaluate".to_owned(),
            output_key: "metrics".to_owned(),
            name: "metrics".to_owned(),
            uri: format!("file:///tmp/{run_id}/metrics"),
            schema_title: "system.Metrics".to_owned(),
            schema_version: "0.0.1".to_owned(),
            metadata,
            created_at: at,
        })
        .await
        .unwrap();
}

/// The run ids of a runs page, in row order.
fn row_order(html: &str) -> Vec<String> {
    html.split("<tr class=\"run\" data-run-id=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

/// The `href` of the link whose attributes follow `marker`, with `&amp;` decoded.
fn link_after(html: &str, marker: &str) -> String {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {html}"));
    let href = &html[start..];
    let href = &href[href.find("href=\"").unwrap() + 6..];
    href[..href.find('"').unwrap()].replace("&amp;", "&")
}

#[tokio::test]
async fn runs_list_sorts_by_a_metric_from_its_header() {
    let server = TestServer::start().await;
    for (run_id, created, metadata) in [
        ("m-low", 1, json!({"accuracy": 0.5, "loss": 3})),
        ("m-high", 2, json!({"accuracy": 0.9})),
        ("m-none", 3, json!({"loss": 1})),
        ("m-mid", 4, json!({"accuracy": 0.75})),
        ("m-tie", 5, json!({"accuracy": 0.75})),
    ] {
        run_with_metrics(&server, run_id, created, metadata).await;
    }
    // Newest first by default; the accuracy header links to the list sorted by it.
    let (status, _, html) = page(&server, "/runs").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(
        row_order(&html),
        ["m-tie", "m-mid", "m-none", "m-high", "m-low"]
    );
    let by_accuracy = link_after(
        &html,
        "class=\"sort-metric\" href=\"/runs?sort=metric%3Aaccuracy",
    );
    assert_eq!(by_accuracy, "/runs?sort=metric%3Aaccuracy%20desc");
    // Highest first, ties by id, runs without it last; the select shows the sort.
    let (status, _, html) = page(&server, &by_accuracy).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(
        row_order(&html),
        ["m-high", "m-tie", "m-mid", "m-low", "m-none"]
    );
    assert!(
        html.contains(
            "<option value=\"metric:accuracy desc\" selected>accuracy, highest first</option>"
        ),
        "{html}"
    );
    assert!(
        html.contains("<th class=\"metric\" aria-sort=\"descending\"><a class=\"sort-metric\""),
        "{html}"
    );
    // The header of the sorted column reverses it.
    let reverse = link_after(
        &html,
        "class=\"sort-metric\" href=\"/runs?sort=metric%3Aaccuracy",
    );
    assert_eq!(reverse, "/runs?sort=metric%3Aaccuracy%20asc");
    let (_, _, html) = page(&server, &reverse).await;
    assert_eq!(
        row_order(&html),
        ["m-low", "m-mid", "m-tie", "m-high", "m-none"]
    );
    // Pages keep the sort.
    let mut order = Vec::new();
    let mut next = "/runs?sort=metric%3Aaccuracy%20desc&page_size=2".to_owned();
    loop {
        let (status, _, html) = page(&server, &next).await;
        assert_eq!(status, StatusCode::OK, "{next}: {html}");
        order.extend(row_order(&html));
        if !html.contains("id=\"next-page\"") {
            break;
        }
        next = link_after(&html, "id=\"next-page\"");
        assert!(next.contains("sort=metric%3Aaccuracy%20desc"), "{next}");
    }
    assert_eq!(order, ["m-high", "m-tie", "m-mid", "m-low", "m-none"]);
    // Both APIs take the same sort.
    for (uri, id_field) in [
        ("/apis/v2beta1/runs?sort_by=metric%3Aloss%20desc", "run_id"),
        ("/apis/v1beta1/runs?sort_by=metric%3Aloss%20desc", "id"),
    ] {
        let response = coracle_server::router(server.state.clone())
            .oneshot(Request::builder().uri(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let body: Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                .unwrap();
        let ids: Vec<&str> = body["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| run[id_field].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            ["m-low", "m-none", "m-tie", "m-mid", "m-high"],
            "{uri}"
        );
    }
    // An empty metric name is a bad request.
    let (status, _, html) = page(&server, "/runs?sort=metric%3A").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
}
