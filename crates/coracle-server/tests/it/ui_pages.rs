//! The catalog, recurring, artifact and compare pages of the web UI through the router, over
//! pipelines uploaded through the API and runs that really ran (container steps run as
//! `sh -c` on the host): the contract's element ids, 404 pages, the sandbox of HTML
//! artifacts, downloads, upload by URL, and how long pages take with 10,000 runs stored.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::Utc;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::TestServer;
use crate::pipelines::upload;

/// GET a UI path: status, headers and body bytes.
async fn get(server: &TestServer, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let response = coracle_server::router(server.state.clone())
        .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes.to_vec())
}

/// GET a UI page: status and HTML.
async fn page(server: &TestServer, path: &str) -> (StatusCode, String) {
    let (status, _, bytes) = get(server, path).await;
    (status, String::from_utf8(bytes).expect("a page is UTF-8"))
}

/// A page that must be there.
async fn ok_page(server: &TestServer, path: &str) -> String {
    let (status, html) = page(server, path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {html}");
    html
}

fn assert_has(html: &str, needles: &[&str]) {
    for needle in needles {
        assert!(html.contains(needle), "the page lacks {needle:?}:\n{html}");
    }
}

/// The HTML of the element that starts with `start` up to the end of its line or `</tr>`.
fn row<'a>(html: &'a str, start: &str) -> &'a str {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in\n{html}"));
    let rest = &html[at..];
    &rest[..rest.find("</tr>").unwrap_or(rest.len())]
}

/// The step script: `$0` the `accuracy` parameter; `$1`…`$7` the output artifacts' paths
/// (metrics, classification, page, notes, table, data, blob); `$8` the executor output file,
/// which gives the metrics artifacts their metadata.
const SCRIPT: &str = r#"
printf '' > "$1"; printf '' > "$2"
printf '<!doctype html><title>report</title><p id="r">accuracy %s</p><script>document.title = "ran"</script>\n' "$0" > "$3"
printf '# Notes\n\nThe model reached **accuracy %s**.\n\n<script>alert(1)</script>\n' "$0" > "$4"
printf 'label,score\ncat,%s\n"dog, big",0.5\n' "$0" > "$5"
mkdir -p "$6/sub" && printf 'first file\n' > "$6/a.txt" && printf 'second\n' > "$6/sub/b.txt"
printf '{"k": [1, 2], "accuracy": %s}' "$0" > "$7"
printf '{"artifacts": {
  "metrics": {"artifacts": [{"metadata": {"accuracy": %s, "loss": 0.25}}]},
  "classification": {"artifacts": [{"metadata": {
    "confusionMatrix": {"annotationSpecs": [{"displayName": "cat"}, {"displayName": "dog"}],
                        "rows": [{"row": [5, 1]}, {"row": [2, 4]}]},
    "confidenceMetrics": [
      {"confidenceThreshold": 1.0, "falsePositiveRate": 0.0, "recall": 0.0},
      {"confidenceThreshold": 0.5, "falsePositiveRate": 0.2, "recall": 0.7},
      {"confidenceThreshold": 0.0, "falsePositiveRate": 1.0, "recall": 1.0}]}}]}
}}' "$0" > "$8"
"#;

/// The outputs of the step, in the order of the script's paths.
const OUTPUTS: [(&str, &str); 7] = [
    ("metrics", "system.Metrics"),
    ("classification", "system.ClassificationMetrics"),
    ("page", "system.HTML"),
    ("notes", "system.Markdown"),
    ("table", "system.Dataset"),
    ("data", "system.Dataset"),
    ("blob", "system.Artifact"),
];

/// A pipeline of one container step that writes an artifact of every kind the UI shows, with
/// root parameters `accuracy` (a number, default 0.5) and `note` (a string, default "n").
fn artifacts_pipeline() -> Value {
    let mut artifacts = serde_json::Map::new();
    let mut command = vec![json!("sh"), json!("-c"), json!(SCRIPT)];
    command.push(json!("{{$.inputs.parameters['accuracy']}}"));
    for (name, schema) in OUTPUTS {
        artifacts.insert(
            name.to_owned(),
            json!({"artifactType": {"schemaTitle": schema, "schemaVersion": "0.0.1"}}),
        );
        command.push(json!(format!("{{{{$.outputs.artifacts['{name}'].path}}}}")));
    }
    command.push(json!("{{$.outputs.output_file}}"));
    let inputs = json!({"parameters": {
        "accuracy": {"parameterType": "NUMBER_DOUBLE", "defaultValue": 0.5, "isOptional": true},
        "note": {"parameterType": "STRING", "defaultValue": "n", "isOptional": true},
        "epochs": {"parameterType": "NUMBER_INTEGER", "defaultValue": 12.0, "isOptional": true},
    }});
    json!({
        "pipelineInfo": {"name": "ui-artifacts"},
        "root": {
            "inputDefinitions": inputs,
            "dag": {"tasks": {"make": {
                "taskInfo": {"name": "make"},
                "componentRef": {"name": "comp-make"},
                "inputs": {"parameters": {"accuracy": {"componentInputParameter": "accuracy"}}},
            }}},
        },
        "components": {"comp-make": {
            "executorLabel": "exec-make",
            "inputDefinitions": {"parameters": {"accuracy": {"parameterType": "NUMBER_DOUBLE"}}},
            "outputDefinitions": {"artifacts": artifacts},
        }},
        "deploymentSpec": {"executors": {"exec-make": {
            "container": {"image": "alpine", "command": command}
        }}},
        "schemaVersion": "2.1.0",
        "sdkVersion": "kfp-2.14.6",
    })
}

/// Uploads the artifacts pipeline as `name`: its id and its version's.
async fn upload_pipeline(server: &TestServer, name: &str) -> (String, String) {
    let bytes = artifacts_pipeline().to_string();
    let (status, pipeline) = upload(
        server,
        &format!("/pipelines/upload?name={name}"),
        "ui-artifacts.json",
        bytes.as_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pipeline}");
    let pipeline_id = pipeline["pipeline_id"].as_str().unwrap().to_owned();
    let (_, versions) = server
        .get(&format!("/pipelines/{pipeline_id}/versions"))
        .await;
    let version_id = versions["pipeline_versions"][0]["pipeline_version_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (pipeline_id, version_id)
}

/// Runs a version to its end (it must succeed); the run's id.
async fn run_version(
    server: &TestServer,
    (pipeline_id, version_id): (&str, &str),
    name: &str,
    parameters: Value,
    experiment_id: Option<&str>,
) -> String {
    let mut body = json!({
        "display_name": name,
        "pipeline_version_reference": {"pipeline_id": pipeline_id, "pipeline_version_id": version_id},
        "runtime_config": {"parameters": parameters},
    });
    if let Some(experiment_id) = experiment_id {
        body["experiment_id"] = json!(experiment_id);
    }
    let (status, run) = server.post("/runs", body).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, run) = server.get(&format!("/runs/{run_id}")).await;
        match run["state"].as_str() {
            Some("SUCCEEDED") => return run_id,
            Some("FAILED" | "CANCELED") => panic!("the run did not succeed: {run:#}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "the run did not end: {run:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The artifacts of a run by output name.
async fn artifact_ids(server: &TestServer, run_id: &str) -> BTreeMap<String, String> {
    server
        .state
        .store
        .list_artifacts(run_id)
        .await
        .unwrap()
        .into_iter()
        .map(|artifact| (artifact.name, artifact.artifact_id))
        .collect()
}

fn encoded(artifact_id: &str) -> String {
    coracle_server::ui::path_segment(artifact_id)
}

#[tokio::test]
async fn pipeline_pages_list_versions_graph_and_inputs() {
    let server = TestServer::start().await;
    let (pipeline_id, first_version) = upload_pipeline(&server, "ui-catalog").await;
    let bytes = artifacts_pipeline().to_string();
    let (status, second) = upload(
        &server,
        &format!("/pipelines/upload_version?pipelineid={pipeline_id}&name=second"),
        "v2.json",
        bytes.as_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second_version = second["pipeline_version_id"].as_str().unwrap();

    let html = ok_page(&server, "/pipelines").await;
    assert_has(
        &html,
        &[
            "data-page=\"pipelines\"",
            "<nav id=\"nav\">",
            "<form id=\"upload-form\"",
            "type=\"file\" name=\"uploadfile\"",
            "name=\"name\"",
            "name=\"description\"",
            "name=\"url\"",
            "id=\"upload-submit\"",
            &format!("<a href=\"/pipelines/{pipeline_id}\">ui-catalog</a>"),
        ],
    );
    // Its versions column counts two.
    let listed = row(&html, &format!("data-pipeline-id=\"{pipeline_id}\""));
    assert!(listed.contains("<td class=\"num\">2</td>"), "{listed}");

    // The newest version is selected by default.
    let html = ok_page(&server, &format!("/pipelines/{pipeline_id}")).await;
    assert_has(
        &html,
        &[
            "<table id=\"versions\">",
            &format!("data-version-id=\"{first_version}\""),
            &format!("data-version-id=\"{second_version}\""),
            &format!(
                "id=\"new-run\" class=\"button primary\" \
                 href=\"/runs/new?pipeline={pipeline_id}&amp;version={second_version}\""
            ),
            "id=\"graph\"",
            "data-task=\"make\"",
            "<table id=\"inputs\">",
            "<tr data-input=\"accuracy\"><td>accuracy</td><td>NUMBER_DOUBLE</td><td>0.5</td>\
             <td>yes</td></tr>",
            "<tr data-input=\"note\"><td>note</td><td>STRING</td><td>n</td>",
            // An integer's default as KFP compiles it (12.0) reads as an integer.
            "<tr data-input=\"epochs\"><td>epochs</td><td>NUMBER_INTEGER</td><td>12</td>",
            "id=\"version-form\"",
            &format!("data-api=\"DELETE /pipelines/{pipeline_id}?cascade=true\""),
        ],
    );
    let html = ok_page(
        &server,
        &format!("/pipelines/{pipeline_id}?version={first_version}"),
    )
    .await;
    assert!(
        html.contains(&format!("version={first_version}\"")),
        "{html}"
    );

    for path in [
        "/pipelines/no-such-pipeline".to_owned(),
        format!("/pipelines/{pipeline_id}?version=no-such-version"),
    ] {
        let (status, html) = page(&server, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {html}");
        assert!(
            html.contains("not found") || html.contains("no version"),
            "{html}"
        );
    }

    // 50 a page, then a link to the next.
    for n in 0..50 {
        let (status, body) = server
            .post(
                "/pipelines",
                json!({"display_name": format!("filler-{n:02}")}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let html = ok_page(&server, "/pipelines").await;
    assert_eq!(html.matches("<tr class=\"pipeline\"").count(), 50);
    assert!(!html.contains("ui-catalog"), "the oldest is on page two");
    let marker = "id=\"next-page\" href=\"";
    let start = html.find(marker).expect("a next page") + marker.len();
    let next = html[start..start + html[start..].find('"').unwrap()].replace("&amp;", "&");
    let html = ok_page(&server, &next).await;
    assert_eq!(html.matches("<tr class=\"pipeline\"").count(), 1, "{html}");
    assert!(html.contains("ui-catalog"), "{html}");
}

#[tokio::test]
async fn experiment_pages_list_runs_recurring_runs_and_archive() {
    let server = TestServer::start().await;
    let (pipeline_id, version_id) = upload_pipeline(&server, "ui-experiments").await;
    let (status, experiment) = server
        .post(
            "/experiments",
            json!({"display_name": "ui-exp", "description": "for the pages"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{experiment}");
    let experiment_id = experiment["experiment_id"].as_str().unwrap();
    let run_id = run_version(
        &server,
        (&pipeline_id, &version_id),
        "in-experiment",
        json!({}),
        Some(experiment_id),
    )
    .await;
    let elsewhere = run_version(
        &server,
        (&pipeline_id, &version_id),
        "elsewhere",
        json!({}),
        None,
    )
    .await;
    let (status, recurring) = server
        .post(
            "/recurringruns",
            json!({
                "display_name": "nightly",
                "experiment_id": experiment_id,
                "pipeline_version_reference": {"pipeline_id": pipeline_id, "pipeline_version_id": version_id},
                "trigger": {"cron_schedule": {"cron": "0 0 3 * * *"}},
                "mode": "DISABLE",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{recurring}");

    let html = ok_page(&server, "/experiments").await;
    assert_has(
        &html,
        &[
            "<form id=\"experiment-form\"",
            "name=\"name\"",
            "name=\"description\"",
            &format!("<a href=\"/experiments/{experiment_id}\">ui-exp</a>"),
        ],
    );

    let html = ok_page(&server, &format!("/experiments/{experiment_id}")).await;
    assert_has(
        &html,
        &[
            "<table id=\"runs\">",
            &format!("<tr class=\"run\" data-run-id=\"{run_id}\">"),
            "<td class=\"state state-SUCCEEDED\">SUCCEEDED</td>",
            "<table id=\"recurring\">",
            &format!(
                "data-recurring-run-id=\"{}\"",
                recurring["recurring_run_id"].as_str().unwrap()
            ),
            "cron 0 0 3 * * *",
            &format!(
                "id=\"archive\" type=\"button\" data-api=\"POST /experiments/{experiment_id}:archive\""
            ),
        ],
    );
    assert!(!html.contains(&elsewhere), "a run of another experiment");

    let (status, _) = server
        .post(
            &format!("/experiments/{experiment_id}:archive"),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let html = ok_page(&server, &format!("/experiments/{experiment_id}")).await;
    assert_has(
        &html,
        &[
            "<dd id=\"experiment-state\">ARCHIVED</dd>",
            &format!(
                "id=\"unarchive\" type=\"button\" data-api=\"POST /experiments/{experiment_id}:unarchive\""
            ),
        ],
    );
    assert!(!html.contains("id=\"archive\""), "{html}");

    let (status, html) = page(&server, "/experiments/no-such-experiment").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
}

#[tokio::test]
async fn recurring_pages_show_the_form_status_trigger_and_runs() {
    let server = TestServer::start().await;
    let (pipeline_id, version_id) = upload_pipeline(&server, "ui-recurring").await;
    let (_, experiment) = server
        .post("/experiments", json!({"display_name": "ui-recurring-exp"}))
        .await;
    let experiment_id = experiment["experiment_id"].as_str().unwrap();

    let html = ok_page(
        &server,
        &format!("/recurring?version={pipeline_id}/{version_id}"),
    )
    .await;
    assert_has(
        &html,
        &[
            "data-page=\"recurring-runs\"",
            "<table id=\"recurring\">",
            "<form id=\"recurring-form\"",
            "name=\"display_name\"",
            "<select id=\"recurring-version\" name=\"pipeline_version\"",
            &format!(
                "<option value=\"{pipeline_id}/{version_id}\" selected>ui-recurring — ui-recurring</option>"
            ),
            "name=\"experiment_id\"",
            &format!("<option value=\"{experiment_id}\">ui-recurring-exp</option>"),
            "name=\"cron\"",
            "name=\"interval_seconds\"",
            "name=\"max_concurrency\"",
            "id=\"recurring-submit\"",
        ],
    );

    let (status, recurring) = server
        .post(
            "/recurringruns",
            json!({
                "display_name": "every-hour",
                "experiment_id": experiment_id,
                "pipeline_version_reference": {"pipeline_id": pipeline_id, "pipeline_version_id": version_id},
                "runtime_config": {"parameters": {"accuracy": 0.75}},
                "trigger": {"periodic_schedule": {"interval_second": "3600"}},
                "max_concurrency": "2",
                "mode": "ENABLE",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{recurring}");
    let recurring_id = recurring["recurring_run_id"].as_str().unwrap();
    // Fire it once, as the scheduler would, and let the run finish.
    let record = server
        .state
        .store
        .get_recurring_run(recurring_id)
        .await
        .unwrap()
        .unwrap();
    let fired = coracle_server::recurring::fire_run(&server.state, &record, Utc::now())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, run) = server.get(&format!("/runs/{fired}")).await;
        if run["state"] == "SUCCEEDED" {
            break;
        }
        assert!(Instant::now() < deadline, "{run:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let unrelated = run_version(
        &server,
        (&pipeline_id, &version_id),
        "by-hand",
        json!({}),
        Some(experiment_id),
    )
    .await;

    let html = ok_page(&server, "/recurring").await;
    let listed = row(&html, &format!("data-recurring-run-id=\"{recurring_id}\""));
    assert_has(
        listed,
        &[
            "every-hour",
            "<td class=\"status status-ENABLED\">ENABLED</td>",
            "every 3600 s",
            "ui-recurring",
            "ui-recurring-exp",
        ],
    );

    let path = format!("/recurring/{recurring_id}");
    let html = ok_page(&server, &path).await;
    assert_has(
        &html,
        &[
            "<span id=\"recurring-status\" class=\"status status-ENABLED\">ENABLED</span>",
            &format!(
                "id=\"enable\" type=\"button\" data-api=\"POST /recurringruns/{recurring_id}:enable\""
            ),
            &format!(
                "id=\"disable\" type=\"button\" data-api=\"POST /recurringruns/{recurring_id}:disable\""
            ),
            &format!(
                "id=\"delete\" type=\"button\" class=\"danger\" data-api=\"DELETE /recurringruns/{recurring_id}\" data-then=\"/recurring\""
            ),
            "<dd id=\"trigger\">every 3600 s</dd>",
            "<dt>Max concurrency</dt><dd>2</dd>",
            "<tr><td>accuracy</td><td>0.75</td></tr>",
            &format!("<tr class=\"run\" data-run-id=\"{fired}\">"),
        ],
    );
    assert!(
        !html.contains(&unrelated),
        "a run the schedule did not make"
    );

    let (status, _) = server
        .post(
            &format!("/recurringruns/{recurring_id}:disable"),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let html = ok_page(&server, &path).await;
    assert!(html.contains(">DISABLED</span>"), "{html}");

    let (status, html) = page(&server, "/recurring/no-such-schedule").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
}

#[tokio::test]
async fn artifact_pages_preview_every_kind_sandbox_html_and_download() {
    let server = TestServer::start().await;
    let (pipeline_id, version_id) = upload_pipeline(&server, "ui-artifact-kinds").await;
    let run_id = run_version(
        &server,
        (&pipeline_id, &version_id),
        "kinds",
        json!({"accuracy": 0.875}),
        None,
    )
    .await;
    let ids = artifact_ids(&server, &run_id).await;
    let id = |name: &str| {
        ids.get(name)
            .unwrap_or_else(|| panic!("no {name} in {ids:?}"))
    };
    let href = |name: &str| format!("/artifacts/{}", encoded(id(name)));

    // Facts and the download link on every page.
    let html = ok_page(&server, &href("metrics")).await;
    assert_has(
        &html,
        &[
            "data-page=\"artifact\"",
            "<dd id=\"artifact-name\">metrics</dd>",
            "<dd id=\"artifact-type\">system.Metrics 0.0.1</dd>",
            &format!("<a id=\"producer-run\" href=\"/runs/{run_id}\">kinds</a>"),
            &format!("<a id=\"producer-task\" href=\"/runs/{run_id}/tasks/make\">make</a>"),
            &format!(
                "<a id=\"download\" class=\"button\" href=\"{}/download\"",
                href("metrics")
            ),
            "id=\"metrics-table\"",
            "accuracy",
            "0.875",
            "<pre id=\"metadata\">",
        ],
    );

    let html = ok_page(&server, &href("classification")).await;
    assert_has(&html, &["id=\"confusion-matrix\"", "id=\"roc-curve\""]);

    // HTML: a sandboxed frame whose source is served with a sandbox CSP.
    for name in ["page", "notes"] {
        let html = ok_page(&server, &href(name)).await;
        let frame = format!(
            "<iframe id=\"html-artifact\" sandbox=\"allow-scripts\" src=\"{}/view\"",
            href(name)
        );
        assert!(html.contains(&frame), "{html}");
        assert!(!html.contains("allow-same-origin"), "{html}");
        let (status, headers, body) = get(&server, &format!("{}/view", href(name))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            "sandbox allow-scripts"
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let body = String::from_utf8(body).unwrap();
        if name == "page" {
            assert!(
                body.contains("<script>document.title = \"ran\"</script>"),
                "the artifact's HTML as written: {body}"
            );
        } else {
            assert_has(
                &body,
                &[
                    "<h1>Notes</h1>",
                    "<strong>accuracy 0.875</strong>",
                    "&lt;script&gt;alert(1)&lt;/script&gt;",
                ],
            );
            assert!(!body.contains("<script>"), "{body}");
        }
    }
    // Only HTML and Markdown artifacts have a view.
    let (status, _, _) = get(&server, &format!("{}/view", href("table"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // CSV (no extension: recognised by its shape) as a table.
    let html = ok_page(&server, &href("table")).await;
    assert_has(
        &html,
        &[
            "<table id=\"csv-preview\">",
            "<th>label</th><th>score</th>",
            "<tr><td>cat</td><td>0.875</td></tr>",
            "<tr><td>dog, big</td><td>0.5</td></tr>",
        ],
    );
    // JSON, pretty.
    let html = ok_page(&server, &href("blob")).await;
    assert!(
        html.contains("<pre id=\"preview\" class=\"json\">{\n  &#34;k&#34;: [\n    1,"),
        "{html}"
    );
    // A directory: listed, downloaded as a .tar.gz.
    let html = ok_page(&server, &href("data")).await;
    assert_has(
        &html,
        &[
            "<table id=\"directory-listing\">",
            "<td>a.txt</td>",
            "<td>sub/b.txt</td>",
            "(.tar.gz)",
        ],
    );

    // Downloads: the file's bytes, as an attachment that no browser renders.
    let (status, headers, bytes) = get(&server, &format!("{}/download", href("table"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, b"label,score\ncat,0.875\n\"dog, big\",0.5\n");
    assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"table\""
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let (_, _, bytes) = get(&server, &format!("{}/download", href("page"))).await;
    assert!(String::from_utf8(bytes).unwrap().contains("<script>"));

    let (status, headers, bytes) = get(&server, &format!("{}/download", href("data"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"data.tar.gz\""
    );
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        if entry.header().entry_type().is_file() {
            files.insert(path, text);
        }
    }
    assert_eq!(
        files,
        BTreeMap::from([
            ("data/a.txt".to_owned(), "first file\n".to_owned()),
            ("data/sub/b.txt".to_owned(), "second\n".to_owned()),
        ])
    );

    // The helper the run page lists artifacts with links to these pages.
    let record = server
        .state
        .store
        .get_artifact(id("table"))
        .await
        .unwrap()
        .unwrap();
    let link = coracle_server::ui::artifacts::artifact_link(&record);
    assert!(
        link.starts_with(&format!(
            "<a class=\"artifact\" data-name=\"table\" data-task=\"make\" \
             data-type=\"system.Dataset\" href=\"{}\">",
            href("table")
        )),
        "{link}"
    );

    for path in [
        "/artifacts/no/such/artifact/0",
        "/artifacts/no/such/artifact/0/download",
        "/artifacts/no/such/artifact/0/view",
    ] {
        let (status, html) = page(&server, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(html.contains("not found"), "{html}");
    }
    // A file that went away: the page says so and has no download.
    let table_path = record.uri.strip_prefix("file://").unwrap_or(&record.uri);
    std::fs::remove_file(table_path).unwrap();
    let html = ok_page(&server, &href("table")).await;
    assert!(html.contains("no longer exists"), "{html}");
    assert!(!html.contains("id=\"download\""), "{html}");
    let (status, _, _) = get(&server, &format!("{}/download", href("table"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn compare_shows_parameters_and_metrics_marking_differences() {
    let server = TestServer::start().await;
    let version = upload_pipeline(&server, "ui-compare").await;
    let version = (version.0.as_str(), version.1.as_str());
    let first = run_version(&server, version, "first", json!({"accuracy": 0.9}), None).await;
    let second = run_version(&server, version, "second", json!({"accuracy": 0.8}), None).await;

    let html = ok_page(&server, &format!("/compare?runs={first},{second}")).await;
    assert_has(
        &html,
        &[
            "<table id=\"compare-params\" class=\"compare\">",
            "<table id=\"compare-metrics\" class=\"compare\">",
            &format!(
                "<th class=\"run-column\" data-run-id=\"{first}\"><a href=\"/runs/{first}\">first</a> <span class=\"state state-SUCCEEDED\">SUCCEEDED</span></th>"
            ),
            &format!("data-run-id=\"{second}\""),
        ],
    );
    let params = &html
        [html.find("id=\"compare-params\"").unwrap()..html.find("id=\"compare-metrics\"").unwrap()];
    let metrics = &html[html.find("id=\"compare-metrics\"").unwrap()..];
    assert_eq!(
        row(params, "<tr data-name=\"accuracy\">"),
        "<tr data-name=\"accuracy\"><th>accuracy</th><td class=\"diff\">0.9</td><td class=\"diff\">0.8</td>"
    );
    // Both runs got the default of `note`: the same, not marked.
    assert_eq!(
        row(params, "<tr data-name=\"note\">"),
        "<tr data-name=\"note\"><th>note</th><td>n</td><td>n</td>"
    );
    assert_eq!(
        row(metrics, "<tr data-name=\"accuracy\">"),
        "<tr data-name=\"accuracy\"><th>accuracy</th><td class=\"num diff\">0.9</td><td class=\"num diff\">0.8</td>"
    );
    assert_eq!(
        row(metrics, "<tr data-name=\"loss\">"),
        "<tr data-name=\"loss\"><th>loss</th><td class=\"num\">0.25</td><td class=\"num\">0.25</td>"
    );

    // A run without that metric shows a dash, and the row differs.
    let bare_spec = json!({
        "pipelineInfo": {"name": "bare"},
        "root": {"dag": {"tasks": {"noop": {
            "taskInfo": {"name": "noop"},
            "componentRef": {"name": "comp-noop"},
        }}}},
        "components": {"comp-noop": {"executorLabel": "exec-noop"}},
        "deploymentSpec": {"executors": {"exec-noop": {
            "container": {"image": "alpine", "command": ["true"]}
        }}},
        "schemaVersion": "2.1.0",
        "sdkVersion": "kfp-2.14.6",
    });
    let (status, bare) = server
        .post(
            "/runs",
            json!({"display_name": "bare", "pipeline_spec": bare_spec}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{bare}");
    let bare = bare["run_id"].as_str().unwrap().to_owned();
    let html = ok_page(&server, &format!("/compare?runs={first},{bare}")).await;
    let metrics = &html[html.find("id=\"compare-metrics\"").unwrap()..];
    assert_eq!(
        row(metrics, "<tr data-name=\"loss\">"),
        "<tr data-name=\"loss\"><th>loss</th><td class=\"num diff\">0.25</td><td class=\"num diff\">—</td>"
    );

    let (status, html) = page(&server, &format!("/compare?runs={first},no-such-run")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
    let (status, html) = page(&server, &format!("/compare?runs={first}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("2 to 10 runs"), "{html}");
    let eleven: Vec<String> = (0..11).map(|n| format!("r{n}")).collect();
    let (status, _) = page(&server, &format!("/compare?runs={}", eleven.join(","))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Serves `routes` on a local port; its base URL.
async fn serve(routes: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
    format!("http://{address}")
}

async fn post_ui(server: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    server
        .send(
            Request::builder()
                .method(Method::POST)
                .uri(path)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
}

#[tokio::test]
async fn upload_by_url_fetches_the_file_and_stores_it_as_an_upload() {
    let server = TestServer::start().await;
    let spec = artifacts_pipeline().to_string();
    let base = serve(
        axum::Router::new()
            .route(
                "/p/fetched.json",
                axum::routing::get(move || async move { spec }),
            )
            .route(
                "/p/not-a-pipeline.yaml",
                axum::routing::get(|| async { "just: some yaml\n" }),
            ),
    )
    .await;

    let (status, pipeline) = post_ui(
        &server,
        "/ui/pipelines/upload-url",
        json!({"url": format!("{base}/p/fetched.json"), "description": "from afar"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pipeline}");
    // Named after the file, as an upload is.
    assert_eq!(pipeline["display_name"], "fetched");
    assert_eq!(pipeline["description"], "from afar");
    let pipeline_id = pipeline["pipeline_id"].as_str().unwrap();
    let (_, versions) = server
        .get(&format!("/pipelines/{pipeline_id}/versions"))
        .await;
    assert_eq!(versions["total_size"], 1, "{versions}");
    let (_, version) = server
        .get(&format!(
            "/pipelines/{pipeline_id}/versions/{}",
            versions["pipeline_versions"][0]["pipeline_version_id"]
                .as_str()
                .unwrap()
        ))
        .await;
    assert_eq!(
        version["pipeline_spec"]["pipelineInfo"]["name"],
        "ui-artifacts"
    );

    // A new version of it.
    let (status, version) = post_ui(
        &server,
        "/ui/pipelines/upload-url",
        json!({"url": format!("{base}/p/fetched.json"), "name": "v2", "pipeline_id": pipeline_id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{version}");
    assert_eq!(version["pipeline_id"], pipeline_id);
    assert_eq!(version["display_name"], "v2");

    // What cannot be fetched, or is no pipeline, is refused with a sentence that says why.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    for (url, expected) in [
        (
            format!("{base}/p/missing.yaml"),
            "answered HTTP 404".to_owned(),
        ),
        (
            format!("http://{closed}/p.yaml"),
            "cannot be reached".to_owned(),
        ),
        (
            "ftp://example.org/p.yaml".to_owned(),
            "only http:// and https://".to_owned(),
        ),
        (
            format!("{base}/p/not-a-pipeline.yaml"),
            "not-a-pipeline.yaml".to_owned(),
        ),
    ] {
        let (status, body) =
            post_ui(&server, "/ui/pipelines/upload-url", json!({"url": url})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&expected),
            "{url}: {message:?} lacks {expected:?}"
        );
    }
    let (_, pipelines) = server.get("/pipelines").await;
    assert_eq!(
        pipelines["total_size"], 1,
        "nothing stored for the failures"
    );
}

/// Pages read one page of runs through the store's indexes, however many runs are stored.
#[tokio::test]
async fn pages_stay_fast_with_ten_thousand_runs() {
    let server = TestServer::start().await;
    let store = &server.state.store;
    let (pipeline_id, version_id) = upload_pipeline(&server, "ui-many").await;
    let (_, experiment) = server
        .post("/experiments", json!({"display_name": "crowded"}))
        .await;
    let experiment_id = experiment["experiment_id"].as_str().unwrap().to_owned();
    let (_, recurring) = server
        .post(
            "/recurringruns",
            json!({
                "display_name": "frequent",
                "experiment_id": experiment_id,
                "pipeline_version_reference": {"pipeline_id": pipeline_id, "pipeline_version_id": version_id},
                "trigger": {"periodic_schedule": {"interval_second": "60"}},
            }),
        )
        .await;
    let recurring_id = recurring["recurring_run_id"].as_str().unwrap().to_owned();
    let real = run_version(
        &server,
        (&pipeline_id, &version_id),
        "real",
        json!({"accuracy": 0.5}),
        Some(&experiment_id),
    )
    .await;
    let template = store.get_api_run(&real).await.unwrap().unwrap();
    let started = Instant::now();
    for n in 0..10_000 {
        let mut run = template.run.clone();
        run.run_id = format!("bulk-{n:05}");
        run.display_name = format!("bulk {n}");
        run.created_at = template.run.created_at - chrono::Duration::seconds(n + 1);
        let mut api = template.api.clone();
        api.recurring_run_id = Some(recurring_id.clone());
        store.insert_api_run(&run, &api).await.unwrap();
    }
    eprintln!("10,000 runs stored in {:?}", started.elapsed());

    let paths = [
        "/pipelines".to_owned(),
        format!("/pipelines/{pipeline_id}"),
        "/experiments".to_owned(),
        format!("/experiments/{experiment_id}"),
        "/recurring".to_owned(),
        format!("/recurring/{recurring_id}"),
        format!("/compare?runs={real},bulk-00000,bulk-09999"),
        format!(
            "/artifacts/{}",
            encoded(&artifact_ids(&server, &real).await["metrics"])
        ),
    ];
    for path in &paths {
        ok_page(&server, path).await; // warm
        let started = Instant::now();
        let html = ok_page(&server, path).await;
        let took = started.elapsed();
        eprintln!("GET {path}: {took:?}");
        // Debug builds on a busy 2-core machine: a generous bound that a page reading every
        // run (tens of seconds here) would still fail.
        assert!(
            took < Duration::from_millis(1500),
            "GET {path} took {took:?}"
        );
        if path.starts_with("/experiments/") || path.starts_with("/recurring/") {
            assert_eq!(html.matches("<tr class=\"run\"").count(), 50, "{path}");
            assert!(html.contains("id=\"next-page\""), "{path}");
        }
    }
}
