use coracle_store::{Error, TaskRecord, TaskState};
use serde_json::json;

use crate::common::{run, task, temp_store, time};

fn keys(tasks: &[TaskRecord]) -> Vec<(String, i64)> {
    tasks
        .iter()
        .map(|task| (task.task_id.clone(), task.attempt))
        .collect()
}

#[tokio::test]
async fn task_round_trips_every_field() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();

    let record = TaskRecord {
        run_id: "r1".to_owned(),
        task_id: "root/for-loop-2[3]/train".to_owned(),
        attempt: 2,
        name: "train".to_owned(),
        component: "comp-train".to_owned(),
        parent_task_id: Some("root/for-loop-2[3]".to_owned()),
        state: TaskState::Failed,
        inputs: json!({"parameters": {"lr": 0.01, "epochs": 3}, "artifacts": {"data": [{"uri": "file:///d"}]}}),
        outputs: json!({"parameters": {"loss": 0.5}}),
        exit_code: Some(137),
        error: Some("killed".to_owned()),
        log_path: Some("/tmp/coracle/r1/train/2/log".to_owned()),
        work_dir: Some("/tmp/coracle/r1/train/2".to_owned()),
        started_at: Some(time("2024-05-01T12:00:01.000000001Z")),
        finished_at: Some(time("2024-05-01T12:00:02.5Z")),
    };
    store.upsert_task(&record).await.unwrap();
    assert_eq!(store.list_tasks("r1").await.unwrap(), [record]);
    assert!(store.list_tasks("other").await.unwrap().is_empty());
}

#[tokio::test]
async fn upsert_replaces_the_same_attempt_and_retries_add_rows() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();

    let mut attempt0 = task("r1", "root/add", 0);
    store.upsert_task(&attempt0).await.unwrap();

    attempt0.state = TaskState::Running;
    attempt0.started_at = Some(time("2024-05-01T12:00:01Z"));
    attempt0.log_path = Some("/logs/add-0".to_owned());
    store.upsert_task(&attempt0).await.unwrap();
    assert_eq!(store.list_tasks("r1").await.unwrap(), [attempt0.clone()]);

    attempt0.state = TaskState::Failed;
    attempt0.exit_code = Some(1);
    attempt0.error = Some("exit code 1".to_owned());
    attempt0.finished_at = Some(time("2024-05-01T12:00:02Z"));
    store.upsert_task(&attempt0).await.unwrap();

    let mut attempt1 = task("r1", "root/add", 1);
    attempt1.state = TaskState::Succeeded;
    attempt1.outputs = json!({"parameters": {"Output": 3}});
    attempt1.started_at = Some(time("2024-05-01T12:00:03Z"));
    attempt1.finished_at = Some(time("2024-05-01T12:00:04Z"));
    store.upsert_task(&attempt1).await.unwrap();

    assert_eq!(store.list_tasks("r1").await.unwrap(), [attempt0, attempt1]);
}

#[tokio::test]
async fn tasks_are_listed_by_start_time_then_insertion() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    store
        .insert_run(&run("r2", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();

    // Written in this order: all pending.
    for task_id in ["root/a", "root/b", "root/c", "root/d"] {
        store.upsert_task(&task("r1", task_id, 0)).await.unwrap();
    }
    store.upsert_task(&task("r2", "root/a", 0)).await.unwrap();
    assert_eq!(
        keys(&store.list_tasks("r1").await.unwrap()),
        [
            ("root/a".into(), 0),
            ("root/b".into(), 0),
            ("root/c".into(), 0),
            ("root/d".into(), 0)
        ]
    );

    // c starts before a; updating a row does not move it among the pending ones.
    let mut c = task("r1", "root/c", 0);
    c.state = TaskState::Running;
    c.started_at = Some(time("2024-05-01T12:00:01Z"));
    store.upsert_task(&c).await.unwrap();
    let mut a = task("r1", "root/a", 0);
    a.state = TaskState::Running;
    a.started_at = Some(time("2024-05-01T12:00:02Z"));
    store.upsert_task(&a).await.unwrap();
    let mut d = task("r1", "root/d", 0);
    d.state = TaskState::Skipped;
    store.upsert_task(&d).await.unwrap();

    assert_eq!(
        keys(&store.list_tasks("r1").await.unwrap()),
        [
            ("root/c".into(), 0),
            ("root/a".into(), 0),
            ("root/b".into(), 0),
            ("root/d".into(), 0)
        ]
    );
    assert_eq!(
        keys(&store.list_tasks("r2").await.unwrap()),
        [("root/a".into(), 0)]
    );
}

#[tokio::test]
async fn a_task_of_a_missing_run_is_rejected() {
    let (_directory, store) = temp_store().await;
    let error = store
        .upsert_task(&task("nope", "root/a", 0))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::NotFound { kind: "run", .. }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "run \"nope\" not found");
}

#[tokio::test]
async fn a_negative_attempt_is_rejected() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    let error = store
        .upsert_task(&task("r1", "root/a", -1))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("failed to write task \"root/a\" attempt -1 of run \"r1\": "),
        "{message}"
    );
}

#[tokio::test]
async fn batch_upsert_is_all_or_nothing() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();

    let batch: Vec<TaskRecord> = (0..50)
        .map(|index| task("r1", &format!("root/t{index:02}"), 0))
        .collect();
    store.upsert_tasks(&batch).await.unwrap();
    assert_eq!(store.list_tasks("r1").await.unwrap(), batch);

    // Re-upserting the batch with new states updates in place.
    let updated: Vec<TaskRecord> = batch
        .iter()
        .cloned()
        .map(|mut task| {
            task.state = TaskState::Cached;
            task
        })
        .collect();
    store.upsert_tasks(&updated).await.unwrap();
    assert_eq!(store.list_tasks("r1").await.unwrap(), updated);

    // One bad row (its run does not exist) rolls back the good ones before it.
    let bad = vec![task("r1", "root/new", 0), task("nope", "root/x", 0)];
    let error = store.upsert_tasks(&bad).await.unwrap_err();
    assert!(
        matches!(error, Error::NotFound { kind: "run", ref id } if id == "nope"),
        "{error:?}"
    );
    let tasks = store.list_tasks("r1").await.unwrap();
    assert_eq!(tasks.len(), 50);
    assert!(tasks.iter().all(|task| task.task_id != "root/new"));

    store.upsert_tasks(&[]).await.unwrap();
}
