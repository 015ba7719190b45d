//! Fixtures shared by the tests.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use coracle_store::{ArtifactRecord, RunRecord, RunState, Store, TaskRecord, TaskState};
use serde_json::json;
use tempfile::TempDir;

/// A store in a fresh temporary directory; keep the directory alive as long as the store.
pub async fn temp_store() -> (TempDir, Store) {
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let store = Store::open(&db_path(&directory))
        .await
        .expect("open a fresh store");
    (directory, store)
}

pub fn db_path(directory: &TempDir) -> PathBuf {
    directory.path().join("coracle.db")
}

/// A UTC time from RFC 3339 text.
pub fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a valid RFC 3339 time")
        .with_timezone(&Utc)
}

/// A pending run with every JSON field non-trivial.
pub fn run(run_id: &str, created_at: &str) -> RunRecord {
    RunRecord {
        run_id: run_id.to_owned(),
        display_name: format!("display {run_id}"),
        pipeline_name: "add-pipeline".to_owned(),
        pipeline_spec: json!({
            "pipelineInfo": {"name": "add-pipeline"},
            "root": {"dag": {"tasks": {"add": {"taskInfo": {"name": "add"}}}}},
            "schemaVersion": "2.1.0",
            "unicode": "naïve ✓",
            "numbers": [1, 2.5, -3, 1e300],
        }),
        parameters: json!({"a": 1, "b": 2.5, "name": "x", "flags": [true, false], "none": null}),
        pipeline_root: format!("/tmp/coracle/{run_id}"),
        state: RunState::Pending,
        error: None,
        outputs: serde_json::Value::Null,
        created_at: time(created_at),
        started_at: None,
        finished_at: None,
    }
}

pub fn task(run_id: &str, task_id: &str, attempt: i64) -> TaskRecord {
    let name = task_id.rsplit('/').next().unwrap_or(task_id).to_owned();
    TaskRecord {
        run_id: run_id.to_owned(),
        task_id: task_id.to_owned(),
        attempt,
        component: format!("comp-{name}"),
        name,
        parent_task_id: Some("root".to_owned()),
        state: TaskState::Pending,
        inputs: json!({"parameters": {"a": 1, "b": 2}}),
        outputs: serde_json::Value::Null,
        exit_code: None,
        error: None,
        log_path: None,
        work_dir: None,
        started_at: None,
        finished_at: None,
    }
}

pub fn artifact(run_id: &str, artifact_id: &str, producer_task_id: &str) -> ArtifactRecord {
    ArtifactRecord {
        artifact_id: artifact_id.to_owned(),
        run_id: run_id.to_owned(),
        producer_task_id: producer_task_id.to_owned(),
        output_key: "model".to_owned(),
        name: "model".to_owned(),
        uri: format!("file:///tmp/coracle/{run_id}/{producer_task_id}/model"),
        schema_title: "system.Model".to_owned(),
        schema_version: "0.0.1".to_owned(),
        metadata: json!({"framework": "sklearn", "accuracy": 0.93}),
        created_at: time("2024-05-01T12:00:05.123456789Z"),
    }
}
