use coracle_store::{Error, RunState, Store};

use crate::common::{db_path, run, temp_store, time};

#[tokio::test]
async fn open_creates_missing_parent_directories_and_uses_wal() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("a").join("b").join("coracle.db");

    let store = Store::open(&path).await.unwrap();
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();

    assert!(
        path.is_file(),
        "database file {} was not created",
        path.display()
    );
    // A write-ahead log next to the file, while connections are open, means WAL mode.
    let wal = directory.path().join("a").join("b").join("coracle.db-wal");
    assert!(wal.is_file(), "no write-ahead log at {}", wal.display());
    store.close().await;
}

#[tokio::test]
async fn opening_again_keeps_the_data_and_does_not_reapply_migrations() {
    let (directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    store.close().await;

    // Reopen after close, and a third time while the second is still open.
    let second = Store::open(&db_path(&directory)).await.unwrap();
    let third = Store::open(&db_path(&directory)).await.unwrap();
    for store in [&second, &third] {
        let runs = store.list_runs(10).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].run_id, "r1");
    }
    second
        .set_run_state("r1", RunState::Running, None, time("2024-05-01T12:00:01Z"))
        .await
        .unwrap();
    assert_eq!(
        third.get_run("r1").await.unwrap().unwrap().state,
        RunState::Running,
        "a second store on the same file sees the first one's writes"
    );
}

#[tokio::test]
async fn in_memory_store_works_and_is_private() {
    let store = Store::open_in_memory().await.unwrap();
    let other = Store::open_in_memory().await.unwrap();
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    // Clones share the database.
    let clone = store.clone();
    assert!(clone.get_run("r1").await.unwrap().is_some());
    assert!(other.get_run("r1").await.unwrap().is_none());
}

#[tokio::test]
async fn open_reports_the_path_when_the_file_cannot_be_a_database() {
    let directory = tempfile::tempdir().unwrap();
    // The path is a directory.
    let error = Store::open(directory.path()).await.unwrap_err();
    assert!(matches!(error, Error::Open { .. }), "{error:?}");
    let message = error.to_string();
    let expected = format!(
        "failed to open database at {}: ",
        directory.path().display()
    );
    assert!(message.starts_with(&expected), "{message}");
}

#[tokio::test]
async fn open_reports_a_parent_that_is_a_file() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("file");
    std::fs::write(&file, "not a directory").unwrap();

    let error = Store::open(&file.join("coracle.db")).await.unwrap_err();
    assert!(matches!(error, Error::CreateDir { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with(&format!("failed to create directory {}", file.display())),
        "{error}"
    );
}

#[tokio::test]
async fn open_rejects_a_file_that_is_not_sqlite() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("garbage.db");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();

    let error = Store::open(&path).await.unwrap_err();
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "the message names the file: {error}"
    );
}
