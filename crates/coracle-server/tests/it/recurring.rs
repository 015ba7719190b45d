//! `/recurringruns`: create, read, list, enable, disable and delete through the router; the
//! scheduler's ticks at fixed times over a real store; and the scheduler of a server making
//! real runs (container steps run as `sh -c` on the host).

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use coracle_server::recurring::{Fired, spawn_scheduler, tick};
use coracle_store::recurring::RecurringRunRecord;
use coracle_store::run_api::{RunApiFields, StorageState};
use coracle_store::{
    ExperimentRecord, PipelineRecord, PipelineVersionRecord, RunRecord, RunState, Store,
};
use serde_json::{Value, json};

use crate::common::TestServer;

/// A pipeline of one container step running `script` with `sh -c`.
fn spec(name: &str, script: &str) -> Value {
    json!({
        "pipelineInfo": {"name": name},
        "root": {"dag": {"tasks": {"step": {
            "taskInfo": {"name": "step"},
            "componentRef": {"name": "comp-step"},
        }}}},
        "components": {"comp-step": {"executorLabel": "exec-step"}},
        "deploymentSpec": {"executors": {"exec-step": {"container": {
            "image": "alpine", "command": ["sh", "-c", script],
        }}}},
        "schemaVersion": "2.1.0",
        "sdkVersion": "kfp-2.14.6",
    })
}

/// An enabled recurring run of a quick pipeline with the given trigger.
fn body(name: &str, trigger: Value) -> Value {
    json!({
        "display_name": name,
        "description": "made by a test",
        "pipeline_spec": spec("quick", "true"),
        "runtime_config": {"parameters": {}},
        "trigger": trigger,
        "max_concurrency": "2",
        "mode": "ENABLE",
    })
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

async fn create(server: &TestServer, body: Value) -> Value {
    let (status, recurring) = server.post("/recurringruns", body).await;
    assert_eq!(status, StatusCode::OK, "{recurring}");
    recurring
}

fn id_of(recurring: &Value) -> String {
    recurring["recurring_run_id"]
        .as_str()
        .expect("a recurring run id")
        .to_owned()
}

/// What a tick's `fire` answers.
type Started = std::pin::Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// A stand-in for starting runs in tick tests: records a PENDING run of the schedule in the
/// store, as the real one does first, and answers its id.
fn record_runs(store: &Store) -> impl FnMut(RecurringRunRecord, DateTime<Utc>) -> Started {
    let store = store.clone();
    move |recurring, scheduled_at| {
        let store = store.clone();
        Box::pin(async move {
            let run_id = uuid_like(&recurring.recurring_run_id, scheduled_at);
            let record = RunRecord {
                run_id: run_id.clone(),
                display_name: run_id.clone(),
                pipeline_name: "quick".into(),
                pipeline_spec: json!({}),
                parameters: json!({}),
                pipeline_root: "/tmp".into(),
                state: RunState::Pending,
                error: None,
                outputs: Value::Null,
                created_at: Utc::now(),
                started_at: None,
                finished_at: None,
            };
            let api = RunApiFields {
                recurring_run_id: Some(recurring.recurring_run_id.clone()),
                scheduled_at: Some(scheduled_at),
                ..RunApiFields::default()
            };
            store
                .insert_api_run(&record, &api)
                .await
                .map_err(|error| error.to_string())?;
            Ok(run_id)
        })
    }
}

fn uuid_like(recurring_run_id: &str, scheduled_at: DateTime<Utc>) -> String {
    format!("{recurring_run_id}-{}", scheduled_at.timestamp())
}

fn fired_times(fired: &[Fired]) -> Vec<String> {
    fired
        .iter()
        .map(|fired| {
            assert!(fired.result.is_ok(), "{fired:?}");
            fired.scheduled_at.format("%H:%M:%S").to_string()
        })
        .collect()
}

/// Percent-encodes a query parameter value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The runs a recurring run made, by `GET /runs` filtered on its id, oldest due time first.
async fn runs_of(server: &TestServer, recurring_run_id: &str) -> Vec<Value> {
    let filter = json!({"predicates": [{
        "operation": "EQUALS", "key": "recurring_run_id", "string_value": recurring_run_id,
    }]});
    let (status, page) = server
        .get(&format!(
            "/runs?page_size=200&filter={}",
            encode(&filter.to_string())
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut runs: Vec<Value> = page["runs"].as_array().cloned().unwrap_or_default();
    runs.sort_by_key(|run| run["scheduled_at"].as_str().unwrap_or("").to_owned());
    runs
}

/// Polls until the recurring run has made `n` runs that ended (60 s at most).
async fn wait_for_ended_runs(server: &TestServer, recurring_run_id: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = runs_of(server, recurring_run_id).await;
        let ended = runs
            .iter()
            .filter(|run| matches!(run["state"].as_str(), Some("SUCCEEDED" | "FAILED")))
            .count();
        if ended >= n {
            return runs;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} ended runs: {runs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn seconds(value: &Value) -> i64 {
    time(value.as_str().expect("a time")).timestamp()
}

#[tokio::test]
async fn create_get_list_disable_enable_and_delete() {
    let server = TestServer::start().await;
    let experiment = ExperimentRecord {
        experiment_id: "exp-1".into(),
        display_name: "nightly".into(),
        description: String::new(),
        namespace: String::new(),
        storage_state: StorageState::Available,
        created_at: Utc::now(),
        last_run_created_at: None,
    };
    server
        .state
        .store
        .insert_experiment(&experiment)
        .await
        .unwrap();

    // int64 as a number, no_catchup, a start time with an offset, the SDK's field set.
    let mut request = body(
        "hourly",
        json!({"periodic_schedule": {"interval_second": 3600,
            "start_time": "2100-01-01T01:00:00+01:00", "end_time": null}}),
    );
    request["max_concurrency"] = json!(3);
    request["no_catchup"] = json!(true);
    request["service_account"] = json!("robot");
    request["runtime_config"] = json!({"parameters": {"n": 1}, "pipeline_root": "/tmp/hourly"});
    request["pipeline_spec"]["root"]["inputDefinitions"] =
        json!({"parameters": {"n": {"parameterType": "NUMBER_INTEGER"}}});
    let created = create(&server, request.clone()).await;
    let hourly = id_of(&created);
    assert_eq!(created["display_name"], "hourly");
    assert_eq!(created["description"], "made by a test");
    assert_eq!(created["status"], "ENABLED");
    assert_eq!(created["mode"], "ENABLE");
    assert_eq!(created["max_concurrency"], "3");
    assert_eq!(created["no_catchup"], true);
    assert_eq!(created["service_account"], "robot");
    assert_eq!(
        created["trigger"],
        json!({"periodic_schedule": {"interval_second": "3600",
            "start_time": "2100-01-01T00:00:00Z"}})
    );
    assert_eq!(
        created["runtime_config"],
        json!({"parameters": {"n": 1}, "pipeline_root": "/tmp/hourly"})
    );
    assert_eq!(created["pipeline_spec"], request["pipeline_spec"]);
    assert_eq!(created["created_at"], created["updated_at"]);
    assert!(created.get("error").is_none(), "{created}");
    // No experiment given: the Default experiment, as for runs.
    let default_experiment = server.state.store.default_experiment_id().await.unwrap();
    assert_eq!(created["experiment_id"], json!(default_experiment));

    let (status, got) = server.get(&format!("/recurringruns/{hourly}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);

    // A cron one, disabled from the start, in an experiment.
    let mut request = body("nightly", json!({"cron_schedule": {"cron": "0 0 2 * * *"}}));
    request["experiment_id"] = json!("exp-1");
    request["mode"] = json!("DISABLE");
    let nightly = create(&server, request).await;
    assert_eq!(nightly["status"], "DISABLED");
    assert_eq!(
        nightly["trigger"],
        json!({"cron_schedule": {"cron": "0 0 2 * * *"}})
    );
    let nightly = id_of(&nightly);

    let (status, page) = server.get("/recurringruns").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total_size"], 2);
    assert_eq!(page["next_page_token"], "");
    let names: Vec<&str> = page["recurringRuns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nightly", "hourly"]);
    let (_, page) = server.get("/recurringruns?experiment_id=exp-1").await;
    assert_eq!(page["total_size"], 1);
    assert_eq!(page["recurringRuns"][0]["recurring_run_id"], json!(nightly));
    let (_, page) = server
        .get("/recurringruns?page_size=1&sort_by=display_name")
        .await;
    assert_eq!(page["recurringRuns"][0]["display_name"], "hourly");
    assert_ne!(page["next_page_token"], "");
    let (status, error) = server.get("/recurringruns?sort_by=trigger").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");

    // Disable and enable: status follows, the update time moves, nothing else changes.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, answer) = server
        .post(&format!("/recurringruns/{hourly}:disable"), Value::Null)
        .await;
    assert_eq!((status, answer), (StatusCode::OK, json!({})));
    let (_, disabled) = server.get(&format!("/recurringruns/{hourly}")).await;
    assert_eq!(disabled["status"], "DISABLED");
    assert_eq!(disabled["mode"], "DISABLE");
    assert!(seconds_or_nanos(&disabled["updated_at"]) > seconds_or_nanos(&created["updated_at"]));
    assert_eq!(disabled["created_at"], created["created_at"]);
    assert_eq!(disabled["trigger"], created["trigger"]);
    let (status, _) = server
        .post(&format!("/recurringruns/{hourly}:enable"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, enabled) = server.get(&format!("/recurringruns/{hourly}")).await;
    assert_eq!(enabled["status"], "ENABLED");

    let (status, answer) = server.delete(&format!("/recurringruns/{hourly}")).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({})));
    let (status, error) = server.get(&format!("/recurringruns/{hourly}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains(&hourly),
        "{error}"
    );
    let (status, _) = server.delete(&format!("/recurringruns/{hourly}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, page) = server.get("/recurringruns").await;
    assert_eq!(page["total_size"], 1);
}

fn seconds_or_nanos(value: &Value) -> DateTime<Utc> {
    time(value.as_str().expect("a time"))
}

#[tokio::test]
async fn unknown_recurring_runs_and_actions_are_refused() {
    let server = TestServer::start().await;
    let id = id_of(
        &create(
            &server,
            body("any", json!({"cron_schedule": {"cron": "@daily"}})),
        )
        .await,
    );
    for (status, path) in [
        (StatusCode::NOT_FOUND, "/recurringruns/nope".to_owned()),
        (StatusCode::NOT_FOUND, format!("/recurringruns/{id}:enable")),
    ] {
        let (got, error) = server.get(&path).await;
        assert_eq!(got, status, "GET {path}: {error}");
        assert_eq!(error["code"], 5, "{error}");
    }
    for path in ["/recurringruns/nope:enable", "/recurringruns/nope:disable"] {
        let (status, error) = server.post(path, Value::Null).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
        assert!(
            error["message"].as_str().unwrap().contains("\"nope\""),
            "{error}"
        );
    }
    let (status, error) = server
        .post(&format!("/recurringruns/{id}:pause"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("enable and disable"),
        "{error}"
    );
    let (status, _) = server
        .post(&format!("/recurringruns/{id}"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = server.delete(&format!("/recurringruns/{id}:enable")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The recurring run itself is untouched.
    let (status, got) = server.get(&format!("/recurringruns/{id}")).await;
    assert_eq!(
        (status, &got["status"]),
        (StatusCode::OK, &json!("ENABLED"))
    );
}

#[tokio::test]
async fn bad_requests_are_refused_with_what_is_wrong_and_store_nothing() {
    let server = TestServer::start().await;
    let periodic = |interval: Value| json!({"periodic_schedule": {"interval_second": interval}});
    let with = |key: &str, value: Value| {
        let mut request = body("bad", periodic(json!("60")));
        request[key] = value;
        request
    };
    let without = |key: &str| {
        let mut request = body("bad", periodic(json!("60")));
        request.as_object_mut().unwrap().remove(key);
        request
    };
    let cases = [
        (
            body("bad", json!({"cron_schedule": {"cron": "0 0 25 * * *"}})),
            "recurring_run.trigger.cron_schedule.cron: invalid cron expression \"0 0 25 * * *\": \
             the hour field \"25\" is invalid (0-23)",
        ),
        (
            body("bad", json!({"cron_schedule": {"cron": "* * *"}})),
            "has 3 fields",
        ),
        (
            body("bad", json!({"cron_schedule": {"cron": "0 0 0 30 2 *"}})),
            "never matches a time",
        ),
        (
            body("bad", periodic(json!("0"))),
            "recurring_run.trigger.periodic_schedule.interval_second: the interval must be at \
             least 1 second, got 0",
        ),
        (body("bad", periodic(json!(-60))), "got -60"),
        (
            body("bad", periodic(json!("often"))),
            "\"often\" is not a whole number",
        ),
        (
            body(
                "bad",
                json!({"periodic_schedule": {"interval_second": "60",
                "start_time": "next monday"}}),
            ),
            "periodic_schedule.start_time: \"next monday\" is not an RFC 3339 time",
        ),
        (
            body(
                "bad",
                json!({"periodic_schedule": {"interval_second": "60"},
                "cron_schedule": {"cron": "@daily"}}),
            ),
            "give either cron_schedule or periodic_schedule, not both",
        ),
        (
            with("max_concurrency", json!("0")),
            "recurring_run.max_concurrency: 0 is out of range; it must be 1 to 10",
        ),
        (with("max_concurrency", json!(11)), "11 is out of range"),
        (
            with("max_concurrency", json!("many")),
            "\"many\" is not a whole number",
        ),
        (
            with("mode", json!("ON")),
            "recurring_run.mode: \"ON\" is not ENABLE or DISABLE",
        ),
        (
            with("no_catchup", json!("yes")),
            "no_catchup: expected true or false",
        ),
        (
            without("pipeline_spec"),
            "invalid recurring run: it needs a pipeline_spec or a pipeline_version_reference",
        ),
        (
            with(
                "pipeline_version_reference",
                json!({"pipeline_id": "p", "pipeline_version_id": "v"}),
            ),
            "not both",
        ),
        (
            with("runtime_config", json!({"parameters": [1]})),
            "invalid recurring_run.runtime_config.parameters: expected an object",
        ),
        (
            with("display_name", json!("")),
            "recurring_run.display_name",
        ),
        (
            json!([1, 2]),
            "invalid recurring run: expected a JSON object",
        ),
        (Value::Null, "invalid recurring run: expected a JSON object"),
        // The run it would start is checked when it is made, not at every firing.
        (
            with("runtime_config", json!({"parameters": {"nope": 1}})),
            "invalid recurring_run.runtime_config.parameters",
        ),
        (
            with(
                "pipeline_spec",
                json!({"pipelineInfo": {"name": "x"}, "root": 3}),
            ),
            "pipeline_spec",
        ),
    ];
    for (request, expected) in cases {
        let (status, error) = server.post("/recurringruns", request.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}: {error}");
        assert_eq!(error["code"], 3, "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(expected), "{request}\n{message}");
    }
    // Not JSON at all.
    let request = axum::http::Request::builder()
        .method("POST")
        .uri("/apis/v2beta1/recurringruns")
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{trigger"))
        .unwrap();
    let (status, error) = server.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("not JSON"),
        "{error}"
    );

    // What they point at does not exist.
    let (status, error) = server
        .post(
            "/recurringruns",
            with("experiment_id", json!("no-such-experiment")),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    let mut request = without("pipeline_spec");
    request["pipeline_version_reference"] = json!({"pipeline_id": "no-such-pipeline"});
    let (status, error) = server.post("/recurringruns", request).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no-such-pipeline"),
        "{error}"
    );

    let (_, page) = server.get("/recurringruns").await;
    assert_eq!(page["total_size"], 0, "{page}");
}

#[tokio::test]
async fn a_pipeline_version_is_fixed_when_the_recurring_run_is_made() {
    let server = TestServer::start().await;
    let store = &server.state.store;
    let now = Utc::now();
    let version = |id: &str, at| PipelineVersionRecord {
        pipeline_version_id: id.into(),
        pipeline_id: "pipe".into(),
        name: id.into(),
        display_name: id.into(),
        description: String::new(),
        code_source_url: String::new(),
        package_url: String::new(),
        tags: Default::default(),
        created_at: at,
    };
    store
        .insert_pipeline(
            &PipelineRecord {
                pipeline_id: "pipe".into(),
                name: "stored".into(),
                display_name: "stored".into(),
                description: String::new(),
                namespace: String::new(),
                tags: Default::default(),
                created_at: now,
            },
            Some((&version("v1", now), &spec("stored", "true"))),
        )
        .await
        .unwrap();
    store
        .insert_pipeline_version(
            &version("v0", now - chrono::Duration::hours(1)),
            &spec("stored", "true"),
        )
        .await
        .unwrap();

    let mut request = body(
        "from a version",
        json!({"cron_schedule": {"cron": "@hourly"}}),
    );
    request.as_object_mut().unwrap().remove("pipeline_spec");
    // The newest version, when none is named.
    request["pipeline_version_reference"] = json!({"pipeline_id": "pipe"});
    let created = create(&server, request.clone()).await;
    assert_eq!(
        created["pipeline_version_reference"],
        json!({"pipeline_id": "pipe", "pipeline_version_id": "v1"})
    );
    assert!(created.get("pipeline_spec").is_none(), "{created}");
    request["pipeline_version_reference"] =
        json!({"pipelineId": "pipe", "pipelineVersionId": "v0"});
    let created = create(&server, request.clone()).await;
    assert_eq!(
        created["pipeline_version_reference"]["pipeline_version_id"],
        "v0"
    );
    request["pipeline_version_reference"] =
        json!({"pipeline_id": "pipe", "pipeline_version_id": "v9"});
    let (status, error) = server.post("/recurringruns", request).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("\"v9\""),
        "{error}"
    );
}

/// Ticks at fixed times: catching up oldest first, `max_concurrency` holding due times back
/// until runs end, disabled schedules firing nothing, and a restarted store resuming.
#[tokio::test]
async fn ticks_catch_up_within_max_concurrency_and_resume_after_a_restart() {
    let server = TestServer::start().await;
    let store = &server.state.store;
    // Every minute from 2100-01-01 00:00, at most two unfinished runs.
    let id = id_of(
        &create(
            &server,
            body(
                "minutely",
                json!({"periodic_schedule": {"interval_second": "60",
                    "start_time": "2100-01-01T00:00:00Z"}}),
            ),
        )
        .await,
    );
    let mut fire = record_runs(store);

    // Before the start: nothing.
    let fired = tick(store, time("2099-12-31T23:59:59Z"), &mut fire)
        .await
        .unwrap();
    assert_eq!(fired, vec![]);
    // 5½ minutes in: five due times, two slots.
    let at = time("2100-01-01T00:05:30Z");
    let fired = tick(store, at, &mut fire).await.unwrap();
    assert_eq!(fired_times(&fired), ["00:01:00", "00:02:00"]);
    assert!(fired.iter().all(|fired| fired.recurring_run_id == id));
    // Both still run: the others wait.
    assert_eq!(tick(store, at, &mut fire).await.unwrap(), vec![]);
    // One ends: the next due time, not lost, fires.
    store
        .set_run_state(
            &uuid_like(&id, time("2100-01-01T00:01:00Z")),
            RunState::Succeeded,
            None,
            at,
        )
        .await
        .unwrap();
    let fired = tick(store, at, &mut fire).await.unwrap();
    assert_eq!(fired_times(&fired), ["00:03:00"]);
    let recurring = server.get(&format!("/recurringruns/{id}")).await.1;
    assert_eq!(recurring["status"], "ENABLED");

    // Disabled: nothing fires, however far behind.
    for run in ["00:02:00", "00:03:00"] {
        let run_id = uuid_like(&id, time(&format!("2100-01-01T{run}Z")));
        store
            .set_run_state(&run_id, RunState::Succeeded, None, at)
            .await
            .unwrap();
    }
    server
        .post(&format!("/recurringruns/{id}:disable"), Value::Null)
        .await;
    assert_eq!(
        tick(store, time("2100-01-01T01:00:00Z"), &mut fire)
            .await
            .unwrap(),
        vec![]
    );
    server
        .post(&format!("/recurringruns/{id}:enable"), Value::Null)
        .await;

    // A restarted server (a fresh store on the same file) goes on from 00:03, catching up
    // what came due meanwhile, disabled time included.
    let restarted = Store::open(&server.dir.path().join("coracle.db"))
        .await
        .unwrap();
    let mut fire = record_runs(&restarted);
    let fired = tick(&restarted, time("2100-01-01T00:10:00Z"), &mut fire)
        .await
        .unwrap();
    assert_eq!(fired_times(&fired), ["00:04:00", "00:05:00"]);
    // The runs carry the due time they were made for.
    let run = restarted
        .get_api_run_summary(&uuid_like(&id, time("2100-01-01T00:05:00Z")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.api.scheduled_at, Some(time("2100-01-01T00:05:00Z")));
    assert_eq!(run.api.recurring_run_id.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn no_catchup_fires_only_the_latest_missed_time() {
    let server = TestServer::start().await;
    let store = &server.state.store;
    let mut request = body(
        "hourly",
        json!({"cron_schedule": {"cron": "0 0 * * * *", "start_time": "2100-01-01T00:00:00Z"}}),
    );
    request["no_catchup"] = json!(true);
    create(&server, request).await;
    let mut fire = record_runs(store);
    let fired = tick(store, time("2100-01-01T05:30:00Z"), &mut fire)
        .await
        .unwrap();
    assert_eq!(fired_times(&fired), ["05:00:00"]);
    let fired = tick(store, time("2100-01-01T06:00:00Z"), &mut fire)
        .await
        .unwrap();
    assert_eq!(fired_times(&fired), ["06:00:00"]);
}

#[tokio::test]
async fn a_failed_start_is_recorded_on_the_recurring_run_and_not_retried() {
    let server = TestServer::start().await;
    let store = &server.state.store;
    let id = id_of(
        &create(
            &server,
            body(
                "failing",
                json!({"periodic_schedule": {"interval_second": "60",
                    "start_time": "2100-01-01T00:00:00Z"}}),
            ),
        )
        .await,
    );
    let at = time("2100-01-01T00:01:30Z");
    let fired = tick(store, at, |_, _| async { Err("no room left".to_owned()) })
        .await
        .unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].result, Err("no room left".to_owned()));
    let (_, recurring) = server.get(&format!("/recurringruns/{id}")).await;
    assert_eq!(
        recurring["error"],
        json!({"code": 2, "message": "no room left", "details": []})
    );
    // That due time is spent; the next success clears the error.
    assert_eq!(
        tick(store, at, |_, _| async { Ok("never".to_owned()) })
            .await
            .unwrap(),
        vec![]
    );
    let mut fire = record_runs(store);
    let fired = tick(store, time("2100-01-01T00:02:00Z"), &mut fire)
        .await
        .unwrap();
    assert_eq!(fired_times(&fired), ["00:02:00"]);
    let (_, recurring) = server.get(&format!("/recurringruns/{id}")).await;
    assert!(recurring.get("error").is_none(), "{recurring}");
}

/// The server's scheduler: a recurring run every second makes real runs, one per second in
/// order, until it is disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_periodic_recurring_run_makes_runs_until_disabled() {
    let server = TestServer::start().await;
    let scheduler = spawn_scheduler(server.state.clone());
    let mut request = body(
        "tick",
        json!({"periodic_schedule": {"interval_second": "1"}}),
    );
    request["max_concurrency"] = json!("10");
    let recurring = create(&server, request).await;
    let id = id_of(&recurring);

    wait_for_ended_runs(&server, &id, 3).await;
    let (status, _) = server
        .post(&format!("/recurringruns/{id}:disable"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    let at_disable = runs_of(&server, &id).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = runs_of(&server, &id).await;
    assert_eq!(
        later.len(),
        at_disable.len(),
        "runs made after :disable: {later:#?}"
    );

    // One run per due time: one second apart from a second after creation, none missed.
    let first_due = seconds(&recurring["created_at"]) + 1;
    let due: Vec<i64> = later
        .iter()
        .map(|run| seconds(&run["scheduled_at"]))
        .collect();
    let expected: Vec<i64> = (0..later.len() as i64).map(|k| first_due + k).collect();
    assert_eq!(due, expected, "{later:#?}");
    for run in &later {
        assert_eq!(run["recurring_run_id"], json!(id));
        assert_eq!(run["experiment_id"], recurring["experiment_id"]);
        assert!(
            run["display_name"].as_str().unwrap().starts_with("tick-"),
            "{run}"
        );
    }
    let ended = wait_for_ended_runs(&server, &id, later.len()).await;
    assert!(
        ended.iter().all(|run| run["state"] == "SUCCEEDED"),
        "{ended:#?}"
    );
    scheduler.abort();
}

/// With `max_concurrency` 1 and runs longer than the interval, each run starts only after the
/// previous one ended, and every due time still gets its run, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_makes_due_runs_wait_for_a_free_slot() {
    let server = TestServer::start().await;
    let scheduler = spawn_scheduler(server.state.clone());
    let mut request = body(
        "slow",
        json!({"periodic_schedule": {"interval_second": "1"}}),
    );
    request["pipeline_spec"] = spec("slow", "sleep 1.5");
    request["max_concurrency"] = json!("1");
    let recurring = create(&server, request).await;
    let id = id_of(&recurring);

    wait_for_ended_runs(&server, &id, 3).await;
    server
        .post(&format!("/recurringruns/{id}:disable"), Value::Null)
        .await;
    let runs = runs_of(&server, &id).await;
    let first_due = seconds(&recurring["created_at"]) + 1;
    let due: Vec<i64> = runs
        .iter()
        .map(|run| seconds(&run["scheduled_at"]))
        .collect();
    let expected: Vec<i64> = (0..runs.len() as i64).map(|k| first_due + k).collect();
    assert_eq!(due, expected, "{runs:#?}");
    for pair in runs.windows(2) {
        let finished = time(
            pair[0]["finished_at"]
                .as_str()
                .expect("the earlier run ended"),
        );
        let created = time(pair[1]["created_at"].as_str().unwrap());
        assert!(created >= finished, "overlapping runs: {pair:#?}");
    }
    scheduler.abort();
}
