use coracle_store::listing::{FilterValue, ListRequest, Op, Predicate, Sort};
use coracle_store::recurring::{RecurringRunMode, RecurringRunRecord};
use coracle_store::run_api::RunApiFields;
use coracle_store::{Error, RunState, Store};
use serde_json::json;

use crate::common::{run, temp_store, time};

/// An enabled periodic recurring run made from a spec, with every field non-trivial.
fn recurring(recurring_run_id: &str, created_at: &str) -> RecurringRunRecord {
    RecurringRunRecord {
        recurring_run_id: recurring_run_id.to_owned(),
        display_name: format!("every minute {recurring_run_id}"),
        description: "adds numbers — «naïve» ✓".to_owned(),
        namespace: String::new(),
        experiment_id: None,
        pipeline_spec: Some(json!({
            "pipelineInfo": {"name": "add-pipeline"},
            "root": {"dag": {"tasks": {}}},
            "schemaVersion": "2.1.0",
        })),
        pipeline_id: None,
        pipeline_version_id: None,
        runtime_config: json!({"parameters": {"a": 1, "b": [true, null]}, "pipeline_root": "/tmp/r"}),
        service_account: "robot".to_owned(),
        trigger: json!({"periodic_schedule": {"interval_second": "60"}}),
        max_concurrency: 3,
        no_catchup: true,
        mode: RecurringRunMode::Enable,
        error: None,
        created_at: time(created_at),
        updated_at: time(created_at),
        last_fired_at: None,
    }
}

/// Records a run fired by `recurring_run_id` for `scheduled_at`, in `state`.
async fn fired_run(
    store: &Store,
    run_id: &str,
    recurring_run_id: &str,
    scheduled_at: &str,
    state: RunState,
) {
    let record = run(run_id, scheduled_at);
    let api = RunApiFields {
        recurring_run_id: Some(recurring_run_id.to_owned()),
        scheduled_at: Some(time(scheduled_at)),
        ..RunApiFields::default()
    };
    store.insert_api_run(&record, &api).await.unwrap();
    if state != RunState::Pending {
        store
            .set_run_state(run_id, state, None, time(scheduled_at))
            .await
            .unwrap();
    }
}

fn first_page(page_size: u32) -> ListRequest {
    ListRequest {
        page_size,
        page_token: None,
        sort: None,
        filter: Vec::new(),
    }
}

#[tokio::test]
async fn recurring_run_round_trips_every_field() {
    let (_directory, store) = temp_store().await;
    let mut from_spec = recurring("rr-spec", "2024-05-01T12:00:00.123456789Z");
    from_spec.error = Some("pipeline version \"v\" not found".to_owned());
    from_spec.last_fired_at = Some(time("2024-05-01T12:01:00Z"));
    store.insert_recurring_run(&from_spec).await.unwrap();

    let mut from_version = recurring("rr-version", "2024-05-01T12:00:01Z");
    from_version.pipeline_spec = None;
    from_version.pipeline_id = Some("p1".to_owned());
    from_version.pipeline_version_id = Some("v1".to_owned());
    from_version.trigger = json!({"cron_schedule": {"cron": "0 0 * * * *",
        "start_time": "2024-05-02T00:00:00Z"}});
    from_version.mode = RecurringRunMode::Disable;
    from_version.no_catchup = false;
    store.insert_recurring_run(&from_version).await.unwrap();

    assert_eq!(
        store.get_recurring_run("rr-spec").await.unwrap(),
        Some(from_spec)
    );
    assert_eq!(
        store.get_recurring_run("rr-version").await.unwrap(),
        Some(from_version)
    );
    assert_eq!(store.get_recurring_run("missing").await.unwrap(), None);
}

#[tokio::test]
async fn inserting_a_taken_id_or_for_a_missing_experiment_fails_and_writes_nothing() {
    let (_directory, store) = temp_store().await;
    let first = recurring("rr", "2024-05-01T12:00:00Z");
    store.insert_recurring_run(&first).await.unwrap();

    let mut again = recurring("rr", "2024-05-01T13:00:00Z");
    again.display_name = "other".to_owned();
    let error = store.insert_recurring_run(&again).await.unwrap_err();
    assert!(
        matches!(&error, Error::AlreadyExists { kind: "recurring run", id } if id == "rr"),
        "{error:?}"
    );
    assert_eq!(store.get_recurring_run("rr").await.unwrap(), Some(first));

    let mut orphan = recurring("orphan", "2024-05-01T12:00:00Z");
    orphan.experiment_id = Some("no-such-experiment".to_owned());
    let error = store.insert_recurring_run(&orphan).await.unwrap_err();
    assert!(
        matches!(&error, Error::NotFound { kind: "experiment", id } if id == "no-such-experiment"),
        "{error:?}"
    );
    assert_eq!(store.get_recurring_run("orphan").await.unwrap(), None);
}

#[tokio::test]
async fn mode_changes_set_status_and_update_time_only() {
    let (_directory, store) = temp_store().await;
    let mut record = recurring("rr", "2024-05-01T12:00:00Z");
    record.last_fired_at = Some(time("2024-05-01T12:05:00Z"));
    store.insert_recurring_run(&record).await.unwrap();

    let disabled_at = time("2024-05-01T13:00:00Z");
    store
        .set_recurring_run_mode("rr", RecurringRunMode::Disable, disabled_at)
        .await
        .unwrap();
    let expected = RecurringRunRecord {
        mode: RecurringRunMode::Disable,
        updated_at: disabled_at,
        ..record.clone()
    };
    assert_eq!(store.get_recurring_run("rr").await.unwrap(), Some(expected));
    // The scheduler no longer sees it.
    assert!(
        store
            .enabled_recurring_run_schedules()
            .await
            .unwrap()
            .is_empty()
    );
    // Status is a filterable key that follows the mode.
    let mut request = first_page(10);
    request.filter = vec![Predicate {
        key: "status".to_owned(),
        op: Op::Equals,
        value: FilterValue::String("DISABLED".to_owned()),
    }];
    assert_eq!(
        store
            .list_recurring_runs(&request, None)
            .await
            .unwrap()
            .total_size,
        1
    );

    let enabled_at = time("2024-05-01T14:00:00Z");
    store
        .set_recurring_run_mode("rr", RecurringRunMode::Enable, enabled_at)
        .await
        .unwrap();
    let back = store.get_recurring_run("rr").await.unwrap().unwrap();
    assert_eq!(back.mode, RecurringRunMode::Enable);
    assert_eq!(back.updated_at, enabled_at);
    assert_eq!(back.last_fired_at, record.last_fired_at);

    let error = store
        .set_recurring_run_mode("missing", RecurringRunMode::Enable, enabled_at)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::NotFound { kind: "recurring run", id } if id == "missing"),
        "{error:?}"
    );
}

#[tokio::test]
async fn firing_keeps_the_latest_due_time_and_the_last_error() {
    let (_directory, store) = temp_store().await;
    store
        .insert_recurring_run(&recurring("rr", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();

    store
        .record_recurring_run_fired("rr", time("2024-05-01T12:02:00Z"), Some("spec is gone"))
        .await
        .unwrap();
    let record = store.get_recurring_run("rr").await.unwrap().unwrap();
    assert_eq!(record.last_fired_at, Some(time("2024-05-01T12:02:00Z")));
    assert_eq!(record.error.as_deref(), Some("spec is gone"));

    // An earlier due time (a late writer) does not move it back; a success clears the error.
    store
        .record_recurring_run_fired("rr", time("2024-05-01T12:01:00Z"), None)
        .await
        .unwrap();
    let record = store.get_recurring_run("rr").await.unwrap().unwrap();
    assert_eq!(record.last_fired_at, Some(time("2024-05-01T12:02:00Z")));
    assert_eq!(record.error, None);

    let error = store
        .record_recurring_run_fired("missing", time("2024-05-01T12:01:00Z"), None)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn schedules_count_unfinished_runs_and_see_runs_made_before_a_crash() {
    let (_directory, store) = temp_store().await;
    store
        .insert_recurring_run(&recurring("a", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    store
        .insert_recurring_run(&recurring("b", "2024-05-01T12:00:01Z"))
        .await
        .unwrap();
    let mut disabled = recurring("c", "2024-05-01T12:00:02Z");
    disabled.mode = RecurringRunMode::Disable;
    store.insert_recurring_run(&disabled).await.unwrap();

    // `a` recorded 12:01 but a run for 12:03 exists (recording it was cut short).
    store
        .record_recurring_run_fired("a", time("2024-05-01T12:01:00Z"), None)
        .await
        .unwrap();
    fired_run(
        &store,
        "a1",
        "a",
        "2024-05-01T12:01:00Z",
        RunState::Succeeded,
    )
    .await;
    fired_run(&store, "a2", "a", "2024-05-01T12:02:00Z", RunState::Running).await;
    fired_run(&store, "a3", "a", "2024-05-01T12:03:00Z", RunState::Pending).await;
    fired_run(
        &store,
        "a4",
        "a",
        "2024-05-01T11:00:00Z",
        RunState::Canceling,
    )
    .await;
    fired_run(&store, "a5", "a", "2024-05-01T11:30:00Z", RunState::Failed).await;
    // `b` recorded 12:10, later than its one run.
    store
        .record_recurring_run_fired("b", time("2024-05-01T12:10:00Z"), None)
        .await
        .unwrap();
    fired_run(
        &store,
        "b1",
        "b",
        "2024-05-01T12:05:00Z",
        RunState::Canceled,
    )
    .await;
    // Runs of no schedule, unfinished, count for none.
    store
        .insert_run(&run("plain", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();

    let schedules = store.enabled_recurring_run_schedules().await.unwrap();
    let summary: Vec<_> = schedules
        .iter()
        .map(|schedule| {
            (
                schedule.recurring_run_id.as_str(),
                schedule.last_fired_at,
                schedule.active_runs,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a", Some(time("2024-05-01T12:03:00Z")), 3),
            ("b", Some(time("2024-05-01T12:10:00Z")), 0),
        ]
    );
    assert_eq!(
        schedules[0].trigger,
        json!({"periodic_schedule": {"interval_second": "60"}})
    );
    assert_eq!(schedules[0].max_concurrency, 3);
    assert!(schedules[0].no_catchup);
    assert_eq!(schedules[0].created_at, time("2024-05-01T12:00:00Z"));

    // A run that ends frees its slot.
    store
        .set_run_state(
            "a2",
            RunState::Succeeded,
            None,
            time("2024-05-01T12:04:00Z"),
        )
        .await
        .unwrap();
    let schedules = store.enabled_recurring_run_schedules().await.unwrap();
    assert_eq!(schedules[0].active_runs, 2);
}

#[tokio::test]
async fn deleting_a_recurring_run_keeps_its_runs() {
    let (_directory, store) = temp_store().await;
    store
        .insert_recurring_run(&recurring("rr", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    fired_run(
        &store,
        "r1",
        "rr",
        "2024-05-01T12:01:00Z",
        RunState::Succeeded,
    )
    .await;

    store.delete_recurring_run("rr").await.unwrap();
    assert_eq!(store.get_recurring_run("rr").await.unwrap(), None);
    let kept = store.get_api_run_summary("r1").await.unwrap().unwrap();
    assert_eq!(kept.api.recurring_run_id.as_deref(), Some("rr"));

    let error = store.delete_recurring_run("rr").await.unwrap_err();
    assert!(
        matches!(&error, Error::NotFound { kind: "recurring run", id } if id == "rr"),
        "{error:?}"
    );
}

#[tokio::test]
async fn listing_pages_sorts_and_filters() {
    let (_directory, store) = temp_store().await;
    for (index, name) in ["delta", "alpha", "charlie", "bravo", "echo"]
        .iter()
        .enumerate()
    {
        let mut record = recurring(
            &format!("rr-{index}"),
            &format!("2024-05-01T12:00:0{index}Z"),
        );
        record.display_name = (*name).to_owned();
        record.max_concurrency = index as i64 + 1;
        store.insert_recurring_run(&record).await.unwrap();
    }

    // Newest first by default, two at a time, every row once.
    let mut request = first_page(2);
    let mut seen = Vec::new();
    loop {
        let page = store.list_recurring_runs(&request, None).await.unwrap();
        assert_eq!(page.total_size, 5);
        seen.extend(page.items.iter().map(|r| r.display_name.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = Some(page.next_page_token);
    }
    assert_eq!(seen, ["echo", "bravo", "charlie", "alpha", "delta"]);

    let mut request = first_page(10);
    request.sort = Some(Sort {
        key: "display_name".to_owned(),
        descending: false,
    });
    request.filter = vec![Predicate {
        key: "max_concurrency".to_owned(),
        op: Op::GreaterThanEquals,
        value: FilterValue::Int(3),
    }];
    let page = store.list_recurring_runs(&request, None).await.unwrap();
    let names: Vec<_> = page.items.iter().map(|r| r.display_name.as_str()).collect();
    assert_eq!(names, ["bravo", "charlie", "echo"]);
    assert_eq!(page.total_size, 3);

    // A scope to an experiment with no recurring runs is empty.
    let page = store
        .list_recurring_runs(&first_page(10), Some("some-experiment"))
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.total_size), (0, 0));

    let mut request = first_page(10);
    request.sort = Some(Sort {
        key: "pipeline_spec".to_owned(),
        descending: false,
    });
    let error = store.list_recurring_runs(&request, None).await.unwrap_err();
    assert!(
        matches!(&error, Error::InvalidArgument(message) if message.contains("display_name")),
        "{error:?}"
    );
}
