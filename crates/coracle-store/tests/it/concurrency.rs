//! Several stores (and several processes) on one database file at once.

use std::process::Command;

use coracle_store::{RunState, Store, TaskState};

use crate::common::{artifact, db_path, run, task, time};

/// Writes one run, `N_TASKS` task upserts (each twice) and a batch, as the run loop would.
const N_TASKS: usize = 100;

async fn write_a_run(store: Store, run_id: String) {
    store
        .insert_run(&run(&run_id, "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    store
        .set_run_state(
            &run_id,
            RunState::Running,
            None,
            time("2024-05-01T12:00:01Z"),
        )
        .await
        .unwrap();
    for index in 0..N_TASKS {
        let mut record = task(&run_id, &format!("root/t{index:03}"), 0);
        store.upsert_task(&record).await.unwrap();
        record.state = TaskState::Succeeded;
        store.upsert_task(&record).await.unwrap();
        // Reads interleave with the other writers' writes.
        if index % 25 == 0 {
            store.list_tasks(&run_id).await.unwrap();
            store.list_run_summaries(10).await.unwrap();
        }
    }
    let batch: Vec<_> = (0..10)
        .map(|index| artifact(&run_id, &format!("{run_id}-a{index}"), "root/t000"))
        .collect();
    store.insert_artifacts(&batch).await.unwrap();
    store
        .set_run_state(
            &run_id,
            RunState::Succeeded,
            None,
            time("2024-05-01T12:00:02Z"),
        )
        .await
        .unwrap();
}

async fn assert_complete(store: &Store, run_ids: &[String]) {
    let runs = store.list_runs(-1).await.unwrap();
    assert_eq!(runs.len(), run_ids.len());
    for run_id in run_ids {
        let stored = store.get_run(run_id).await.unwrap().expect("run written");
        assert_eq!(stored.state, RunState::Succeeded, "{run_id}");
        let tasks = store.list_tasks(run_id).await.unwrap();
        assert_eq!(tasks.len(), N_TASKS, "{run_id}");
        assert!(tasks.iter().all(|task| task.state == TaskState::Succeeded));
        assert_eq!(store.list_artifacts(run_id).await.unwrap().len(), 10);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_opened_at_once_on_a_new_file_write_without_lock_errors() {
    let directory = tempfile::tempdir().unwrap();
    let path = db_path(&directory);

    // Open four stores on a file that does not exist yet, all at the same moment: creating
    // the file, switching to WAL and migrating race with each other.
    let opening: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move { Store::open(&path).await })
        })
        .collect();
    let mut stores = Vec::new();
    for handle in opening {
        stores.push(handle.await.unwrap().expect("concurrent open"));
    }

    // Every store writes two runs at once (the clones share a store's writer).
    let mut writers = Vec::new();
    let mut run_ids = Vec::new();
    for (store_index, store) in stores.iter().enumerate() {
        for writer_index in 0..2 {
            let run_id = format!("s{store_index}-w{writer_index}");
            run_ids.push(run_id.clone());
            writers.push(tokio::spawn(write_a_run(store.clone(), run_id)));
        }
    }
    for writer in writers {
        writer.await.expect("writer finished without errors");
    }

    for store in &stores {
        assert_complete(store, &run_ids).await;
    }
}

/// Set by `processes_share_one_database` for the copies of this test binary it starts.
const CHILD_DB_ENV: &str = "CORACLE_STORE_TEST_CHILD_DB";
const CHILD_RUN_ENV: &str = "CORACLE_STORE_TEST_CHILD_RUN";

/// Does nothing unless started by `processes_share_one_database`.
#[tokio::test]
async fn child_process_writer() {
    let (Ok(path), Ok(run_id)) = (std::env::var(CHILD_DB_ENV), std::env::var(CHILD_RUN_ENV)) else {
        return;
    };
    let store = Store::open(path.as_ref()).await.unwrap();
    write_a_run(store, run_id).await;
}

#[tokio::test]
async fn processes_share_one_database() {
    let directory = tempfile::tempdir().unwrap();
    let path = db_path(&directory);
    let executable = std::env::current_exe().unwrap();

    // Three processes open the (not yet existing) file and write at the same time.
    let run_ids: Vec<String> = (0..3).map(|index| format!("process-{index}")).collect();
    let children: Vec<_> = run_ids
        .iter()
        .map(|run_id| {
            Command::new(&executable)
                .args([
                    "concurrency::child_process_writer",
                    "--exact",
                    "--test-threads=1",
                ])
                .env(CHILD_DB_ENV, &path)
                .env(CHILD_RUN_ENV, run_id)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "child failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // The filter must have matched the child test, or it proved nothing.
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("1 passed"),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }

    let store = Store::open(&path).await.unwrap();
    assert_complete(&store, &run_ids).await;
}
