//! Experiments through the router: create, get, find by name as `kfp.Client` does, archive
//! (with their runs) and unarchive, delete.

use axum::http::StatusCode;
use coracle_store::run_api::{RunApiFields, StorageState};
use coracle_store::{RunRecord, RunState};
use serde_json::{Value, json};

use crate::common::TestServer;
use crate::listing::encode;
use crate::pipelines::assert_error;

async fn create(server: &TestServer, name: &str) -> Value {
    let (status, body) = server
        .post(
            "/experiments",
            json!({"display_name": name, "description": format!("about {name}")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A run recorded in an experiment, as the runs API records one.
async fn insert_run(server: &TestServer, run_id: &str, experiment_id: &str) {
    let run = RunRecord {
        run_id: run_id.to_owned(),
        display_name: run_id.to_owned(),
        pipeline_name: "p".to_owned(),
        pipeline_spec: json!({}),
        parameters: json!({}),
        pipeline_root: "/tmp".to_owned(),
        state: RunState::Succeeded,
        error: None,
        outputs: Value::Null,
        created_at: chrono::Utc::now(),
        started_at: None,
        finished_at: Some(chrono::Utc::now()),
    };
    let api = RunApiFields {
        experiment_id: Some(experiment_id.to_owned()),
        ..RunApiFields::default()
    };
    server.state.store.insert_api_run(&run, &api).await.unwrap();
}

async fn run_storage_state(server: &TestServer, run_id: &str) -> StorageState {
    let run = server
        .state
        .store
        .get_api_run(run_id)
        .await
        .unwrap()
        .unwrap();
    run.api.storage_state
}

#[tokio::test]
async fn create_get_and_find_by_name_as_kfp_client_does() {
    let server = TestServer::start().await;
    let created = create(&server, "exp one").await;
    let id = created["experiment_id"].as_str().unwrap();
    assert_eq!(created["display_name"], "exp one");
    assert_eq!(created["description"], "about exp one");
    assert_eq!(created["namespace"], "");
    assert_eq!(created["storage_state"], "AVAILABLE");
    assert_eq!(created["last_run_created_at"], "1970-01-01T00:00:00Z");
    assert_eq!(
        server.get(&format!("/experiments/{id}")).await,
        (StatusCode::OK, created.clone())
    );
    create(&server, "exp two").await;

    // kfp.Client.get_experiment(experiment_name=...): numeric operation, camelCase value.
    let filter = json!({"predicates": [
        {"operation": 1, "key": "display_name", "stringValue": "exp one"}
    ]});
    let (status, found) = server
        .get(&format!(
            "/experiments?filter={}",
            encode(&filter.to_string())
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["total_size"], 1);
    assert_eq!(found["experiments"], json!([created]));
    let filter = json!({"predicates": [
        {"operation": "EQUALS", "key": "display_name", "string_value": "nobody"}
    ]});
    let (status, none) = server
        .get(&format!(
            "/experiments?filter={}",
            encode(&filter.to_string())
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(none, json!({"total_size": 0}));

    assert_error(
        &server
            .post("/experiments", json!({"display_name": "exp one"}))
            .await,
        StatusCode::CONFLICT,
        "experiment \"exp one\" already exists",
    );
    assert_error(
        &server
            .post("/experiments", json!({"description": "x"}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid experiment: display_name: missing",
    );
    assert_error(
        &server
            .post("/experiments", json!({"display_name": ["x"]}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid experiment: display_name: invalid type",
    );
    assert_error(
        &server.get("/experiments/nope").await,
        StatusCode::NOT_FOUND,
        "experiment \"nope\" not found",
    );
    assert_error(
        &server.get(&format!("/experiments/{id}:archive")).await,
        StatusCode::NOT_FOUND,
        "no API route GET",
    );
}

#[tokio::test]
async fn archive_takes_the_runs_along_and_unarchive_does_not() {
    let server = TestServer::start().await;
    let one = create(&server, "one").await;
    let two = create(&server, "two").await;
    let one_id = one["experiment_id"].as_str().unwrap();
    let two_id = two["experiment_id"].as_str().unwrap();
    insert_run(&server, "r1", one_id).await;
    insert_run(&server, "r2", one_id).await;
    insert_run(&server, "r3", two_id).await;

    let (_, fetched) = server.get(&format!("/experiments/{one_id}")).await;
    assert_ne!(fetched["last_run_created_at"], "1970-01-01T00:00:00Z");

    assert_eq!(
        server
            .post(&format!("/experiments/{one_id}:archive"), Value::Null)
            .await,
        (StatusCode::OK, json!({}))
    );
    let (_, fetched) = server.get(&format!("/experiments/{one_id}")).await;
    assert_eq!(fetched["storage_state"], "ARCHIVED");
    assert_eq!(
        run_storage_state(&server, "r1").await,
        StorageState::Archived
    );
    assert_eq!(
        run_storage_state(&server, "r2").await,
        StorageState::Archived
    );
    assert_eq!(
        run_storage_state(&server, "r3").await,
        StorageState::Available
    );

    // Listing by storage state.
    let filter = json!({"predicates": [
        {"operation": "EQUALS", "key": "storage_state", "string_value": "ARCHIVED"}
    ]});
    let (_, archived) = server
        .get(&format!(
            "/experiments?filter={}",
            encode(&filter.to_string())
        ))
        .await;
    assert_eq!(archived["total_size"], 1);
    assert_eq!(archived["experiments"][0]["experiment_id"], one_id);

    assert_eq!(
        server
            .post(&format!("/experiments/{one_id}:unarchive"), Value::Null)
            .await,
        (StatusCode::OK, json!({}))
    );
    let (_, fetched) = server.get(&format!("/experiments/{one_id}")).await;
    assert_eq!(fetched["storage_state"], "AVAILABLE");
    assert_eq!(
        run_storage_state(&server, "r1").await,
        StorageState::Archived
    );

    assert_error(
        &server.post("/experiments/nope:archive", Value::Null).await,
        StatusCode::NOT_FOUND,
        "experiment \"nope\" not found",
    );
    assert_error(
        &server
            .post(&format!("/experiments/{one_id}:explode"), Value::Null)
            .await,
        StatusCode::NOT_FOUND,
        ":archive and :unarchive",
    );
    let (status, _) = server
        .post(&format!("/experiments/{one_id}"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn delete_removes_the_experiment_only() {
    let server = TestServer::start().await;
    let one = create(&server, "one").await;
    let id = one["experiment_id"].as_str().unwrap();
    insert_run(&server, "r1", id).await;
    assert_eq!(
        server.delete(&format!("/experiments/{id}")).await,
        (StatusCode::OK, json!({}))
    );
    assert_error(
        &server.get(&format!("/experiments/{id}")).await,
        StatusCode::NOT_FOUND,
        "not found",
    );
    assert_error(
        &server.delete(&format!("/experiments/{id}")).await,
        StatusCode::NOT_FOUND,
        "not found",
    );
    assert!(
        server
            .state
            .store
            .get_api_run("r1")
            .await
            .unwrap()
            .is_some()
    );
    // The name is free again.
    create(&server, "one").await;
}

#[tokio::test]
async fn the_default_experiment_is_listed_once_made() {
    let server = TestServer::start().await;
    let id = server.state.store.default_experiment_id().await.unwrap();
    let (_, fetched) = server.get(&format!("/experiments/{id}")).await;
    assert_eq!(fetched["display_name"], "Default");
    assert_eq!(
        server.state.store.default_experiment_id().await.unwrap(),
        id
    );
}
