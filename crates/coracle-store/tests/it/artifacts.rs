use coracle_store::{ArtifactRecord, Error, TaskState};

use crate::common::{artifact, run, task, temp_store, time};

#[tokio::test]
async fn artifacts_round_trip_in_insertion_order() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    store
        .insert_run(&run("r2", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();

    let mut second = artifact("r1", "art-b", "root/train");
    second.output_key = "metrics".to_owned();
    second.schema_title = "system.Metrics".to_owned();
    second.metadata = serde_json::json!({"accuracy": 0.5, "nested": {"list": [1, "two", null]}});
    second.created_at = time("2024-05-01T12:00:06Z");
    let first = artifact("r1", "art-z", "root/prep");
    let other_run = artifact("r2", "art-a", "root/prep");

    store.insert_artifact(&first).await.unwrap();
    store.insert_artifact(&other_run).await.unwrap();
    store.insert_artifact(&second).await.unwrap();

    assert_eq!(store.list_artifacts("r1").await.unwrap(), [first, second]);
    assert_eq!(store.list_artifacts("r2").await.unwrap(), [other_run]);
    assert!(store.list_artifacts("r3").await.unwrap().is_empty());
}

#[tokio::test]
async fn an_artifact_id_is_recorded_once() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    store
        .insert_artifact(&artifact("r1", "a1", "root/prep"))
        .await
        .unwrap();

    let error = store
        .insert_artifact(&artifact("r1", "a1", "root/other"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::AlreadyExists {
                kind: "artifact",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "artifact \"a1\" already exists");
    assert_eq!(store.list_artifacts("r1").await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_artifact_of_a_missing_run_is_rejected() {
    let (_directory, store) = temp_store().await;
    let error = store
        .insert_artifact(&artifact("nope", "a1", "root/prep"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::NotFound { kind: "run", .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn batch_insert_is_all_or_nothing() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();

    let batch: Vec<ArtifactRecord> = (0..20)
        .map(|index| artifact("r1", &format!("a{index:02}"), "root/prep"))
        .collect();
    store.insert_artifacts(&batch).await.unwrap();
    assert_eq!(store.list_artifacts("r1").await.unwrap(), batch);

    let with_duplicate = vec![
        artifact("r1", "fresh", "root/x"),
        artifact("r1", "a05", "root/x"),
    ];
    let error = store.insert_artifacts(&with_duplicate).await.unwrap_err();
    assert!(
        matches!(error, Error::AlreadyExists { kind: "artifact", ref id } if id == "a05"),
        "{error:?}"
    );
    assert_eq!(
        store.list_artifacts("r1").await.unwrap(),
        batch,
        "nothing of the failed batch"
    );
}

#[tokio::test]
async fn a_task_and_its_artifacts_are_written_together() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();

    let mut running = task("r1", "root/train", 0);
    running.state = TaskState::Running;
    running.started_at = Some(time("2024-05-01T12:00:01Z"));
    store.upsert_task(&running).await.unwrap();
    store
        .insert_artifact(&artifact("r1", "taken", "root/prep"))
        .await
        .unwrap();

    // The second artifact's id is taken: neither the task's new state nor the first artifact
    // may be recorded.
    let mut succeeded = running.clone();
    succeeded.state = TaskState::Succeeded;
    succeeded.finished_at = Some(time("2024-05-01T12:00:02Z"));
    let outputs = [
        artifact("r1", "model", "root/train"),
        artifact("r1", "taken", "root/train"),
    ];
    let error = store
        .upsert_task_with_artifacts(&succeeded, &outputs)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::AlreadyExists {
                kind: "artifact",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(store.list_tasks("r1").await.unwrap(), [running]);
    assert_eq!(store.list_artifacts("r1").await.unwrap().len(), 1);

    store
        .upsert_task_with_artifacts(&succeeded, &outputs[..1])
        .await
        .unwrap();
    assert_eq!(store.list_tasks("r1").await.unwrap(), [succeeded]);
    let artifacts = store.list_artifacts("r1").await.unwrap();
    assert_eq!(
        artifacts,
        [artifact("r1", "taken", "root/prep"), outputs[0].clone()]
    );
}
