use std::str::FromStr;

use coracle_store::{Error, RunRecord, RunState, RunSummary, Store, TaskState};
use serde_json::json;

use crate::common::{run, temp_store, time};

#[tokio::test]
async fn run_round_trips_every_field() {
    let (_directory, store) = temp_store().await;
    let mut record = run(
        "3f2a9c1e-0000-4000-8000-000000000001",
        "2024-05-01T12:00:00.123456789Z",
    );
    record.state = RunState::Failed;
    record.error = Some("task \"add\" failed: exit code 1".to_owned());
    record.outputs = json!({"parameters": {"sum": 3}, "artifacts": {}});
    record.started_at = Some(time("2024-05-01T12:00:01.000000001Z"));
    record.finished_at = Some(time("2024-05-01T12:00:09.999999999Z"));
    store.insert_run(&record).await.unwrap();

    assert_eq!(
        store.get_run(&record.run_id).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(store.get_run("missing").await.unwrap(), None);

    // Sub-microsecond precision of "now" survives too.
    let mut now = run("now", "2024-05-01T12:00:00Z");
    now.created_at = chrono::Utc::now();
    store.insert_run(&now).await.unwrap();
    assert_eq!(store.get_run("now").await.unwrap(), Some(now));
}

#[tokio::test]
async fn inserting_a_run_twice_is_an_error() {
    let (_directory, store) = temp_store().await;
    let record = run("r1", "2024-05-01T12:00:00Z");
    store.insert_run(&record).await.unwrap();

    let error = store.insert_run(&record).await.unwrap_err();
    assert!(
        matches!(error, Error::AlreadyExists { kind: "run", .. }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "run \"r1\" already exists");
}

/// `(state, error, at)` applied in order, then the expected `(started_at, finished_at)`.
type Step<'a> = (
    RunState,
    Option<&'a str>,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
);

#[tokio::test]
async fn state_changes_set_started_and_finished_times() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();

    let t1 = "2024-05-01T12:00:01Z";
    let t3 = "2024-05-01T12:00:03Z";
    let steps: &[Step] = &[
        (
            RunState::Pending,
            None,
            "2024-05-01T12:00:00.5Z",
            None,
            None,
        ),
        // First RUNNING sets started_at.
        (RunState::Running, None, t1, Some(t1), None),
        // Later RUNNING keeps it.
        (
            RunState::Running,
            None,
            "2024-05-01T12:00:02Z",
            Some(t1),
            None,
        ),
        // Terminal sets finished_at.
        (
            RunState::Failed,
            Some("task \"add\" failed"),
            t3,
            Some(t1),
            Some(t3),
        ),
        // Terminal again keeps the first terminal time.
        (
            RunState::Failed,
            Some("still failed"),
            "2024-05-01T12:00:04Z",
            Some(t1),
            Some(t3),
        ),
        // Leaving the terminal states (a retry) clears finished_at, keeps started_at.
        (
            RunState::Running,
            None,
            "2024-05-01T12:00:05Z",
            Some(t1),
            None,
        ),
        (
            RunState::Canceling,
            Some("canceled by user"),
            "2024-05-01T12:00:06Z",
            Some(t1),
            None,
        ),
        (
            RunState::Canceled,
            Some("canceled by user"),
            "2024-05-01T12:00:07Z",
            Some(t1),
            Some("2024-05-01T12:00:07Z"),
        ),
    ];
    for (index, &(state, error, at, started_at, finished_at)) in steps.iter().enumerate() {
        store
            .set_run_state("r1", state, error, time(at))
            .await
            .unwrap();
        let stored = store.get_run("r1").await.unwrap().unwrap();
        assert_eq!(
            (
                stored.state,
                stored.error.as_deref(),
                stored.started_at,
                stored.finished_at
            ),
            (state, error, started_at.map(time), finished_at.map(time)),
            "after step {index} ({state} at {at})"
        );
    }
}

#[tokio::test]
async fn a_run_that_fails_before_starting_has_no_start_time() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    store
        .set_run_state(
            "r1",
            RunState::Failed,
            Some("bad spec"),
            time("2024-05-01T12:00:01Z"),
        )
        .await
        .unwrap();
    let stored = store.get_run("r1").await.unwrap().unwrap();
    assert_eq!(stored.started_at, None);
    assert_eq!(stored.finished_at, Some(time("2024-05-01T12:00:01Z")));
}

#[tokio::test]
async fn updating_a_missing_run_is_not_found() {
    let (_directory, store) = temp_store().await;
    let error = store
        .set_run_state(
            "nope",
            RunState::Running,
            None,
            time("2024-05-01T12:00:00Z"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::NotFound { kind: "run", .. }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "run \"nope\" not found");

    let error = store.set_run_outputs("nope", &json!({})).await.unwrap_err();
    assert!(
        matches!(error, Error::NotFound { kind: "run", .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn run_outputs_are_replaced() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        store.get_run("r1").await.unwrap().unwrap().outputs,
        json!(null)
    );

    let outputs = json!({"parameters": {"sum": 3, "msg": "ok"}, "artifacts": {"model": [{"uri": "file:///m"}]}});
    store.set_run_outputs("r1", &outputs).await.unwrap();
    assert_eq!(store.get_run("r1").await.unwrap().unwrap().outputs, outputs);

    store.set_run_outputs("r1", &json!(null)).await.unwrap();
    assert_eq!(
        store.get_run("r1").await.unwrap().unwrap().outputs,
        json!(null)
    );
}

#[tokio::test]
async fn runs_are_listed_newest_first() {
    let (_directory, store) = temp_store().await;
    // Inserted out of order; "b" and "c" share a creation time and tie-break by id, descending.
    for (run_id, created_at) in [
        ("b", "2024-05-02T00:00:00Z"),
        ("a", "2024-05-01T00:00:00Z"),
        ("d", "2024-05-03T00:00:00.000000001Z"),
        ("c", "2024-05-02T00:00:00Z"),
        ("e", "2023-12-31T23:59:59.999999999Z"),
    ] {
        store.insert_run(&run(run_id, created_at)).await.unwrap();
    }

    let ids = |runs: Vec<RunRecord>| runs.into_iter().map(|run| run.run_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_runs(10).await.unwrap()),
        ["d", "c", "b", "a", "e"]
    );
    assert_eq!(ids(store.list_runs(2).await.unwrap()), ["d", "c"]);
    assert_eq!(ids(store.list_runs(-1).await.unwrap()).len(), 5);
    assert!(store.list_runs(0).await.unwrap().is_empty());

    let full = store.list_runs(10).await.unwrap();
    assert_eq!(full[0], store.get_run("d").await.unwrap().unwrap());
    let summaries = store.list_run_summaries(10).await.unwrap();
    assert_eq!(
        summaries,
        full.into_iter().map(RunSummary::from).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn find_run_by_id_or_unique_prefix() {
    let (_directory, store) = temp_store().await;
    for run_id in ["abc123", "abd456", "abd789", "x", "xy", "ü1"] {
        store
            .insert_run(&run(run_id, "2024-05-01T00:00:00Z"))
            .await
            .unwrap();
    }

    let found = |prefix: &'static str| {
        let store = store.clone();
        async move { store.find_run(prefix).await.map(|run| run.run_id) }
    };
    assert_eq!(found("abc123").await.unwrap(), "abc123");
    assert_eq!(found("abc").await.unwrap(), "abc123");
    assert_eq!(found("abd4").await.unwrap(), "abd456");
    assert_eq!(found("ü").await.unwrap(), "ü1");
    // An exact id wins over being a prefix of another id.
    assert_eq!(found("x").await.unwrap(), "x");
    assert_eq!(found("xy").await.unwrap(), "xy");
    // The full record comes back, spec included.
    assert_eq!(
        store.find_run("abc").await.unwrap(),
        store.get_run("abc123").await.unwrap().unwrap()
    );

    let error = found("abd").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "run id prefix \"abd\" is ambiguous: it matches 2 runs (abd456, abd789)"
    );
    match error {
        Error::Ambiguous {
            prefix,
            candidates,
            n_matches,
        } => {
            assert_eq!(prefix, "abd");
            assert_eq!(candidates, ["abd456", "abd789"]);
            assert_eq!(n_matches, 2);
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }

    for missing in ["abe", "b", "ABC", "abc1234", ""] {
        let error = store.find_run(missing).await.unwrap_err();
        assert!(
            matches!(error, Error::NotFound { kind: "run", .. }),
            "{missing:?}: {error:?}"
        );
        assert_eq!(error.to_string(), format!("run {missing:?} not found"));
    }
}

#[tokio::test]
async fn an_ambiguous_prefix_lists_a_few_candidates_and_the_count() {
    let (_directory, store) = temp_store().await;
    for index in 0..12 {
        store
            .insert_run(&run(&format!("run-{index:02}"), "2024-05-01T00:00:00Z"))
            .await
            .unwrap();
    }
    let error = store.find_run("run-").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "run id prefix \"run-\" is ambiguous: it matches 12 runs \
         (run-00, run-01, run-02, run-03, run-04, ...)"
    );
    let error = store.find_run("run-1").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "run id prefix \"run-1\" is ambiguous: it matches 2 runs (run-10, run-11)"
    );
}

#[tokio::test]
async fn unfinished_runs_are_the_live_ones_oldest_first() {
    let (_directory, store) = temp_store().await;
    let states = [
        ("succeeded", RunState::Succeeded, "2024-05-01T00:00:01Z"),
        ("canceling", RunState::Canceling, "2024-05-01T00:00:05Z"),
        ("running", RunState::Running, "2024-05-01T00:00:02Z"),
        ("failed", RunState::Failed, "2024-05-01T00:00:03Z"),
        ("pending", RunState::Pending, "2024-05-01T00:00:04Z"),
        ("canceled", RunState::Canceled, "2024-05-01T00:00:00Z"),
    ];
    for (run_id, state, created_at) in states {
        store.insert_run(&run(run_id, created_at)).await.unwrap();
        store
            .set_run_state(run_id, state, None, time(created_at))
            .await
            .unwrap();
    }

    let unfinished = store.unfinished_runs().await.unwrap();
    let ids: Vec<&str> = unfinished.iter().map(|run| run.run_id.as_str()).collect();
    assert_eq!(ids, ["running", "pending", "canceling"]);
    assert_eq!(
        unfinished[0],
        store.get_run("running").await.unwrap().unwrap()
    );

    // Finishing one removes it.
    store
        .set_run_state(
            "running",
            RunState::Failed,
            Some("process died"),
            time("2024-05-02T00:00:00Z"),
        )
        .await
        .unwrap();
    let ids: Vec<String> = store
        .unfinished_runs()
        .await
        .unwrap()
        .into_iter()
        .map(|run| run.run_id)
        .collect();
    assert_eq!(ids, ["pending", "canceling"]);
}

#[test]
fn states_have_kfp_names() {
    let run_names: Vec<&str> = RunState::ALL.iter().map(|state| state.as_str()).collect();
    assert_eq!(
        run_names,
        [
            "PENDING",
            "RUNNING",
            "SUCCEEDED",
            "FAILED",
            "CANCELING",
            "CANCELED"
        ]
    );
    let task_names: Vec<&str> = TaskState::ALL.iter().map(|state| state.as_str()).collect();
    assert_eq!(
        task_names,
        [
            "PENDING",
            "RUNNING",
            "SUCCEEDED",
            "FAILED",
            "SKIPPED",
            "CACHED",
            "CANCELED"
        ]
    );
    for &state in RunState::ALL {
        assert_eq!(RunState::from_str(state.as_str()).unwrap(), state);
        assert_eq!(state.to_string(), state.as_str());
    }
    for &state in TaskState::ALL {
        assert_eq!(TaskState::from_str(state.as_str()).unwrap(), state);
    }
    let terminal: Vec<RunState> = RunState::ALL
        .iter()
        .copied()
        .filter(|state| state.is_terminal())
        .collect();
    assert_eq!(
        terminal,
        [RunState::Succeeded, RunState::Failed, RunState::Canceled]
    );
    let terminal: Vec<TaskState> = TaskState::ALL
        .iter()
        .copied()
        .filter(|state| state.is_terminal())
        .collect();
    assert_eq!(
        terminal,
        [
            TaskState::Succeeded,
            TaskState::Failed,
            TaskState::Skipped,
            TaskState::Cached,
            TaskState::Canceled
        ]
    );

    let error = RunState::from_str("running").unwrap_err();
    assert_eq!(error.to_string(), "unknown run state \"running\"");
    let error = TaskState::from_str("DONE").unwrap_err();
    assert_eq!(error.to_string(), "unknown task state \"DONE\"");
}

#[tokio::test]
async fn in_memory_store_keeps_runs() {
    let store = Store::open_in_memory().await.unwrap();
    let record = run("r1", "2024-05-01T00:00:00Z");
    store.insert_run(&record).await.unwrap();
    assert_eq!(store.find_run("r").await.unwrap(), record);
}

#[tokio::test]
async fn cancel_requests_mark_live_runs_canceling_only() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("live", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    let mut done = run("done", "2024-05-01T12:00:01Z");
    done.state = RunState::Succeeded;
    store.insert_run(&done).await.unwrap();

    assert_eq!(
        store.run_state("live").await.unwrap(),
        Some(RunState::Pending)
    );
    assert_eq!(
        store.request_cancel("live").await.unwrap(),
        RunState::Canceling
    );
    assert_eq!(
        store.run_state("live").await.unwrap(),
        Some(RunState::Canceling)
    );
    // A finished run keeps its state.
    assert_eq!(
        store.request_cancel("done").await.unwrap(),
        RunState::Succeeded
    );
    assert!(matches!(
        store.request_cancel("missing").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(store.run_state("missing").await.unwrap(), None);
}

#[tokio::test]
async fn cache_entries_are_found_by_key_and_age_and_go_with_their_run() {
    let (_directory, store) = temp_store().await;
    store
        .insert_run(&run("r1", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    let entry = coracle_store::CacheEntry {
        cache_key: "sha256:k".into(),
        run_id: "r1".into(),
        task_id: "add".into(),
        outputs: json!({"parameters": {"Output": 3}, "artifacts": {}}),
        created_at: time("2024-05-01T12:00:05Z"),
    };
    store.put_cache_entry(&entry).await.unwrap();
    assert_eq!(
        store.get_cache_entry("sha256:k", None).await.unwrap(),
        Some(entry.clone())
    );
    assert_eq!(
        store.get_cache_entry("sha256:other", None).await.unwrap(),
        None
    );
    // Too old for the staleness asked for.
    assert_eq!(
        store
            .get_cache_entry("sha256:k", Some(time("2024-05-01T12:00:06Z")))
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .get_cache_entry("sha256:k", Some(time("2024-05-01T12:00:05Z")))
            .await
            .unwrap()
            .is_some()
    );
    // A newer result replaces the entry.
    let newer = coracle_store::CacheEntry {
        outputs: json!({"parameters": {"Output": 4}}),
        created_at: time("2024-05-01T12:01:00Z"),
        ..entry
    };
    store.put_cache_entry(&newer).await.unwrap();
    assert_eq!(
        store.get_cache_entry("sha256:k", None).await.unwrap(),
        Some(newer)
    );
    // An entry for a run that does not exist is refused.
    let orphan = coracle_store::CacheEntry {
        run_id: "missing".into(),
        cache_key: "x".into(),
        task_id: "t".into(),
        outputs: json!(null),
        created_at: time("2024-05-01T12:00:00Z"),
    };
    assert!(store.put_cache_entry(&orphan).await.is_err());
}
