//! Pipelines and versions through the router: create, upload (YAML, JSON, .zip, .tar.gz),
//! get, list, delete, and the errors of each.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::common::TestServer;

/// A team pipeline file (`tests/pipelines/{name}`).
pub fn team_pipeline(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/pipelines")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

/// A multipart/form-data body with one file part.
pub fn multipart(field: &str, file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "coracle-test-boundary-7d1f0a";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
             filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// POSTs a file to `/apis/v2beta1{path}` as KFP's upload does.
pub async fn upload(
    server: &TestServer,
    path: &str,
    file_name: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    let (content_type, body) = multipart("uploadfile", file_name, bytes);
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/apis/v2beta1{path}"))
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap();
    server.send(request).await
}

fn zip_of(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut zip_bytes = Vec::new();
    {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(&mut zip_bytes));
        let options = zip::write::SimpleFileOptions::default();
        writer.start_file("README.md", options).unwrap();
        std::io::Write::write_all(&mut writer, b"not the pipeline").unwrap();
        writer.start_file(name, options).unwrap();
        std::io::Write::write_all(&mut writer, bytes).unwrap();
        writer.finish().unwrap();
    }
    zip_bytes
}

fn tar_gz_of(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut tar_gz = Vec::new();
    {
        let encoder = flate2::write::GzEncoder::new(&mut tar_gz, flate2::Compression::fast());
        let mut builder = tar::Builder::new(encoder);
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, bytes).unwrap();
        builder.into_inner().unwrap().finish().unwrap();
    }
    tar_gz
}

/// Asserts a KFP error body with the status's gRPC code and a message containing `expected`.
#[track_caller]
pub fn assert_error(response: &(StatusCode, Value), status: StatusCode, expected: &str) {
    let (actual_status, body) = response;
    assert_eq!(*actual_status, status, "{body}");
    let code = match status {
        StatusCode::BAD_REQUEST => 3,
        StatusCode::NOT_FOUND => 5,
        StatusCode::CONFLICT => 6,
        StatusCode::PAYLOAD_TOO_LARGE => 8,
        StatusCode::PRECONDITION_FAILED => 9,
        _ => 13,
    };
    assert_eq!(body["code"], json!(code), "{body}");
    assert_eq!(body["details"], json!([]), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(expected),
        "message {message:?} lacks {expected:?}"
    );
}

async fn pipeline_count(server: &TestServer) -> i64 {
    let (status, body) = server.get("/pipelines").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["total_size"].as_i64().unwrap()
}

#[tokio::test]
async fn create_get_and_find_by_name() {
    let server = TestServer::start().await;
    let (status, created) = server
        .post(
            "/pipelines",
            json!({"name": "adder", "description": "adds", "tags": {"team": "ml"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["pipeline_id"].as_str().unwrap().to_owned();
    assert_eq!(created["name"], "adder");
    assert_eq!(created["display_name"], "adder");
    assert_eq!(created["description"], "adds");
    assert_eq!(created["namespace"], "");
    assert_eq!(created["tags"], json!({"team": "ml"}));
    assert!(
        chrono::DateTime::parse_from_rfc3339(created["created_at"].as_str().unwrap()).is_ok(),
        "{created}"
    );

    assert_eq!(
        server.get(&format!("/pipelines/{id}")).await,
        (StatusCode::OK, created.clone())
    );
    assert_eq!(
        server.get("/pipelines/names/adder").await,
        (StatusCode::OK, created.clone())
    );
    assert_error(
        &server.get("/pipelines/names/adder?namespace=other").await,
        StatusCode::NOT_FOUND,
        "pipeline named \"adder\" not found in namespace \"other\"",
    );
    assert_error(
        &server.get("/pipelines/nope").await,
        StatusCode::NOT_FOUND,
        "pipeline \"nope\" not found",
    );

    // display_name alone names it too; a name is needed.
    let (status, other) = server
        .post("/pipelines", json!({"display_name": "Other one"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{other}");
    assert_eq!(other["name"], "Other one");
    assert_error(
        &server.post("/pipelines", json!({"name": "adder"})).await,
        StatusCode::CONFLICT,
        "pipeline \"adder\" already exists",
    );
    assert_error(
        &server.post("/pipelines", json!({"description": "x"})).await,
        StatusCode::BAD_REQUEST,
        "invalid pipeline: name: missing",
    );
    assert_error(
        &server.post("/pipelines", json!({"name": 3})).await,
        StatusCode::BAD_REQUEST,
        "invalid pipeline: name: invalid type",
    );
    assert_error(
        &server.post("/pipelines", Value::Null).await,
        StatusCode::BAD_REQUEST,
        "no JSON body",
    );
    assert_eq!(pipeline_count(&server).await, 2);
}

#[tokio::test]
async fn upload_yaml_makes_a_pipeline_with_one_version() {
    let server = TestServer::start().await;
    let yaml = team_pipeline("add_chain.yaml");
    let (status, pipeline) = upload(
        &server,
        "/pipelines/upload?name=add-chain&description=three%20adds",
        "add_chain.yaml",
        &yaml,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pipeline}");
    assert_eq!(pipeline["name"], "add-chain");
    assert_eq!(pipeline["display_name"], "add-chain");
    assert_eq!(pipeline["description"], "three adds");
    let id = pipeline["pipeline_id"].as_str().unwrap();

    let (status, versions) = server.get(&format!("/pipelines/{id}/versions")).await;
    assert_eq!(status, StatusCode::OK, "{versions}");
    assert_eq!(versions["total_size"], 1);
    let version = &versions["pipeline_versions"][0];
    assert_eq!(version["name"], "add-chain");
    assert_eq!(version["pipeline_id"], id);
    assert!(
        version.get("pipeline_spec").is_none(),
        "lists leave specs out"
    );
    let version_id = version["pipeline_version_id"].as_str().unwrap();

    let (status, full) = server
        .get(&format!("/pipelines/{id}/versions/{version_id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{full}");
    let spec = &full["pipeline_spec"];
    assert_eq!(spec["pipelineInfo"]["name"], "add-chain");
    assert!(spec["root"]["dag"]["tasks"].is_object(), "{spec}");
    // The stored spec is the same pipeline as the file.
    let reloaded = coracle_spec::load_bytes("stored", spec.to_string().as_bytes()).unwrap();
    let original = coracle_spec::load_bytes("file", &yaml).unwrap();
    assert_eq!(reloaded, original);

    // A version of another pipeline is not found under this one.
    assert_error(
        &server
            .get(&format!("/pipelines/other/versions/{version_id}"))
            .await,
        StatusCode::NOT_FOUND,
        "not found",
    );
}

#[tokio::test]
async fn upload_packages_and_default_names() {
    let server = TestServer::start().await;
    let yaml = team_pipeline("conditions.yaml");
    // A .zip named after nothing in the query: the file name is the name.
    let (status, from_zip) = upload(
        &server,
        "/pipelines/upload",
        "cond.zip",
        &zip_of("pipeline.yaml", &yaml),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{from_zip}");
    assert_eq!(from_zip["name"], "cond");
    // A .tar.gz, named by display_name.
    let (status, from_tar) = upload(
        &server,
        "/pipelines/upload?display_name=Conditions%20again",
        "x.tar.gz",
        &tar_gz_of("dir/my.yaml", &yaml),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{from_tar}");
    assert_eq!(from_tar["name"], "Conditions again");
    assert_eq!(from_tar["display_name"], "Conditions again");
    // JSON text uploads too: the stored spec of the first, as a file.
    let (_, version) = server
        .get(&format!(
            "/pipelines/{}/versions",
            from_zip["pipeline_id"].as_str().unwrap()
        ))
        .await;
    let version_id = version["pipeline_versions"][0]["pipeline_version_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, full) = server
        .get(&format!(
            "/pipelines/{}/versions/{version_id}",
            from_zip["pipeline_id"].as_str().unwrap()
        ))
        .await;
    let spec_json = full["pipeline_spec"].to_string();
    let (status, from_json) = upload(
        &server,
        "/pipelines/upload?name=json-one",
        "spec.json",
        spec_json.as_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{from_json}");
    assert_eq!(pipeline_count(&server).await, 3);
}

#[tokio::test]
async fn broken_uploads_are_400_and_store_nothing() {
    let server = TestServer::start().await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.yaml", b"".to_vec(), "empty.yaml: the file is empty"),
        ("bad.yaml", b"a: [1, 2\n".to_vec(), "bad.yaml: not valid YAML or JSON"),
        (
            "wrong.yaml",
            br#"{"pipelineInfo": {"name": "p"}, "root": {"dag": {"tasks": {"t": {"taskInfo": {"name": "t"}, "componentRef": {"name": "comp-missing"}}}}}}"#.to_vec(),
            "wrong.yaml: invalid pipeline: root.dag.tasks.t",
        ),
        ("broken.zip", b"PK\x03\x04garbage".to_vec(), "broken.zip"),
        ("binary.yaml", vec![0xff, 0xfe, 0x00], "binary"),
        (
            "empty.zip",
            zip_of("notes.txt", b"hello"),
            "empty.zip",
        ),
    ];
    for (file_name, bytes, expected) in cases {
        let response = upload(&server, "/pipelines/upload?name=x", file_name, &bytes).await;
        assert_error(&response, StatusCode::BAD_REQUEST, expected);
    }
    assert_eq!(pipeline_count(&server).await, 0);

    // No file part.
    let (content_type, body) = multipart("file", "a.yaml", b"x");
    let request = Request::builder()
        .method(Method::POST)
        .uri("/apis/v2beta1/pipelines/upload")
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap();
    assert_error(
        &server.send(request).await,
        StatusCode::BAD_REQUEST,
        "no field \"uploadfile\" (found \"file\")",
    );
    // Not multipart at all.
    assert_error(
        &server.post("/pipelines/upload", json!({"a": 1})).await,
        StatusCode::BAD_REQUEST,
        "invalid upload",
    );
    // Bad tags.
    let yaml = team_pipeline("add_chain.yaml");
    assert_error(
        &upload(
            &server,
            "/pipelines/upload?name=x&tags=nope",
            "a.yaml",
            &yaml,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid tags \"nope\"",
    );
    assert_eq!(pipeline_count(&server).await, 0);

    // A name taken: 409, and the first pipeline keeps its one version.
    let (status, first) = upload(&server, "/pipelines/upload?name=x", "a.yaml", &yaml).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_error(
        &upload(&server, "/pipelines/upload?name=x", "a.yaml", &yaml).await,
        StatusCode::CONFLICT,
        "already exists",
    );
    let (_, versions) = server
        .get(&format!(
            "/pipelines/{}/versions",
            first["pipeline_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(versions["total_size"], 1);
}

#[tokio::test]
async fn uploads_over_32_mib_are_413() {
    let server = TestServer::start().await;
    // A YAML comment padded past the limit.
    let mut big = b"# ".to_vec();
    big.resize((32 << 20) + 10, b'x');
    let response = upload(&server, "/pipelines/upload?name=big", "big.yaml", &big).await;
    assert_error(
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than 32 MiB",
    );
    // A whole request over the limit, upload or JSON, is refused the same way.
    big.resize(34 << 20, b'x');
    let response = upload(&server, "/pipelines/upload?name=big", "big.yaml", &big).await;
    assert_error(
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than 32 MiB",
    );
    let description = "x".repeat(33 << 20);
    let response = server
        .post(
            "/pipelines",
            json!({"name": "big", "description": description}),
        )
        .await;
    assert_error(&response, StatusCode::PAYLOAD_TOO_LARGE, "invalid pipeline");
    assert_eq!(pipeline_count(&server).await, 0);
}

#[tokio::test]
async fn upload_version_adds_to_a_pipeline() {
    let server = TestServer::start().await;
    let yaml = team_pipeline("add_chain.yaml");
    let (_, pipeline) = upload(&server, "/pipelines/upload?name=p", "a.yaml", &yaml).await;
    let id = pipeline["pipeline_id"].as_str().unwrap();

    let (status, version) = upload(
        &server,
        &format!("/pipelines/upload_version?pipelineid={id}&name=v2&description=second"),
        "b.yaml",
        &team_pipeline("loops.yaml"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{version}");
    assert_eq!(version["name"], "v2");
    assert_eq!(version["display_name"], "v2");
    assert_eq!(version["description"], "second");
    assert_eq!(version["pipeline_id"], id);
    assert!(
        version["pipeline_spec"]["pipelineInfo"].is_object(),
        "{version}"
    );

    // The same name again in this pipeline: 409.
    assert_error(
        &upload(
            &server,
            &format!("/pipelines/upload_version?pipelineid={id}&name=v2"),
            "b.yaml",
            &yaml,
        )
        .await,
        StatusCode::CONFLICT,
        "pipeline version \"v2\" already exists",
    );
    assert_error(
        &upload(
            &server,
            "/pipelines/upload_version?name=v3",
            "b.yaml",
            &yaml,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "pipelineid: missing",
    );
    assert_error(
        &upload(
            &server,
            "/pipelines/upload_version?pipelineid=nope",
            "b.yaml",
            &yaml,
        )
        .await,
        StatusCode::NOT_FOUND,
        "pipeline \"nope\" not found",
    );
    assert_error(
        &upload(
            &server,
            &format!("/pipelines/upload_version?pipelineid={id}&name=v4"),
            "b.yaml",
            b"nope: [",
        )
        .await,
        StatusCode::BAD_REQUEST,
        "b.yaml",
    );
    let (_, versions) = server
        .get(&format!("/pipelines/{id}/versions?sort_by=name"))
        .await;
    assert_eq!(versions["total_size"], 2);
    assert_eq!(versions["pipeline_versions"][0]["name"], "p");
    assert_eq!(versions["pipeline_versions"][1]["name"], "v2");
}

fn spec_json() -> Value {
    let yaml = team_pipeline("add_chain.yaml");
    let pipeline = coracle_spec::load_bytes("add_chain.yaml", &yaml).unwrap();
    serde_json::to_value(&pipeline.spec).unwrap()
}

#[tokio::test]
async fn create_pipeline_and_version_and_versions_from_json() {
    let server = TestServer::start().await;
    let platform = json!({"platforms": {"kubernetes": {"pipelineConfig": {}}}});
    let (status, pipeline) = server
        .post(
            "/pipelines/create",
            json!({
                "pipeline": {"name": "made", "display_name": "Made"},
                "pipeline_version": {
                    "name": "first",
                    "code_source_url": "https://example.com/src",
                    "pipeline_spec": {"pipeline_spec": spec_json(), "platform_spec": platform},
                },
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pipeline}");
    assert_eq!(pipeline["display_name"], "Made");
    let id = pipeline["pipeline_id"].as_str().unwrap();
    let (_, versions) = server.get(&format!("/pipelines/{id}/versions")).await;
    let version = &versions["pipeline_versions"][0];
    assert_eq!(version["name"], "first");
    assert_eq!(version["code_source_url"], "https://example.com/src");
    let (_, full) = server
        .get(&format!(
            "/pipelines/{id}/versions/{}",
            version["pipeline_version_id"].as_str().unwrap()
        ))
        .await;
    // With a platform document, the spec comes back as the SDK sends it.
    assert_eq!(full["pipeline_spec"]["pipeline_spec"], spec_json());
    assert_eq!(full["pipeline_spec"]["platform_spec"], platform);

    // POST /pipelines/{id}/versions with a plain spec object.
    let (status, second) = server
        .post(
            &format!("/pipelines/{id}/versions"),
            json!({"display_name": "Second", "pipeline_spec": spec_json()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["name"], "Second");
    assert_eq!(second["pipeline_spec"], spec_json());

    // Bad versions: no spec, a URL, a broken spec, another pipeline's id, unknown pipeline.
    assert_error(
        &server
            .post(&format!("/pipelines/{id}/versions"), json!({"name": "x"}))
            .await,
        StatusCode::BAD_REQUEST,
        "pipeline_spec: missing",
    );
    assert_error(
        &server
            .post(
                &format!("/pipelines/{id}/versions"),
                json!({"name": "x", "package_url": {"pipeline_url": "https://example.com/p.yaml"}}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "does not fetch pipelines from URLs",
    );
    let mut broken = spec_json();
    broken["root"]["dag"]["tasks"]["add"] =
        json!({"taskInfo": {"name": "add"}, "componentRef": {"name": "comp-nope"}});
    assert_error(
        &server
            .post(
                &format!("/pipelines/{id}/versions"),
                json!({"name": "x", "pipeline_spec": broken}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "pipeline_version.pipeline_spec: invalid pipeline: root.dag.tasks.add",
    );
    assert_error(
        &server
            .post(
                &format!("/pipelines/{id}/versions"),
                json!({"name": "x", "pipeline_id": "other", "pipeline_spec": spec_json()}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "the path names pipeline",
    );
    assert_error(
        &server
            .post(
                "/pipelines/nope/versions",
                json!({"name": "x", "pipeline_spec": spec_json()}),
            )
            .await,
        StatusCode::NOT_FOUND,
        "pipeline \"nope\" not found",
    );
    let (_, versions) = server.get(&format!("/pipelines/{id}/versions")).await;
    assert_eq!(versions["total_size"], 2);

    // create with a broken version stores neither.
    assert_error(
        &server
            .post(
                "/pipelines/create",
                json!({"pipeline": {"name": "never"}, "pipeline_version": {"pipeline_spec": broken}}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid pipeline",
    );
    assert_error(
        &server
            .post("/pipelines/create", json!({"pipeline": {"name": "never"}}))
            .await,
        StatusCode::BAD_REQUEST,
        "pipeline_version: missing",
    );
    assert_error(
        &server.get("/pipelines/names/never").await,
        StatusCode::NOT_FOUND,
        "not found",
    );
}

#[tokio::test]
async fn deleting_pipelines_and_versions() {
    let server = TestServer::start().await;
    let yaml = team_pipeline("add_chain.yaml");
    let (_, pipeline) = upload(&server, "/pipelines/upload?name=p", "a.yaml", &yaml).await;
    let id = pipeline["pipeline_id"].as_str().unwrap();

    assert_error(
        &server.delete(&format!("/pipelines/{id}")).await,
        StatusCode::PRECONDITION_FAILED,
        "has 1 version",
    );
    assert_error(
        &server
            .delete(&format!("/pipelines/{id}?cascade=maybe"))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid cascade \"maybe\"",
    );
    assert_eq!(
        server.get(&format!("/pipelines/{id}")).await.0,
        StatusCode::OK
    );

    let (_, versions) = server.get(&format!("/pipelines/{id}/versions")).await;
    let version_id = versions["pipeline_versions"][0]["pipeline_version_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        server
            .delete(&format!("/pipelines/{id}/versions/{version_id}"))
            .await,
        (StatusCode::OK, json!({}))
    );
    assert_error(
        &server
            .delete(&format!("/pipelines/{id}/versions/{version_id}"))
            .await,
        StatusCode::NOT_FOUND,
        "not found",
    );
    assert_eq!(
        server.delete(&format!("/pipelines/{id}")).await,
        (StatusCode::OK, json!({}))
    );
    assert_error(
        &server.get(&format!("/pipelines/{id}")).await,
        StatusCode::NOT_FOUND,
        "not found",
    );

    // With cascade (as Python spells true), versions go too.
    let (_, pipeline) = upload(&server, "/pipelines/upload?name=q", "a.yaml", &yaml).await;
    let id = pipeline["pipeline_id"].as_str().unwrap();
    assert_eq!(
        server
            .delete(&format!("/pipelines/{id}?cascade=True"))
            .await,
        (StatusCode::OK, json!({}))
    );
    assert_error(
        &server.get(&format!("/pipelines/{id}/versions")).await,
        StatusCode::NOT_FOUND,
        "not found",
    );
    assert_error(
        &server.delete("/pipelines/nope").await,
        StatusCode::NOT_FOUND,
        "pipeline \"nope\" not found",
    );
}
