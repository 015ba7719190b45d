//! The team's KFP v1 pipelines (tests/pipelines_v1, compiled by kfp 1.8.22) run with
//! `coracle run` unchanged: translated on load, executed by the same engine and backends as
//! v2 pipelines. Each runs on the process backend, and on the Docker backend too when
//! CORACLE_TEST_DOCKER=1. v1 lightweight components use only the standard library, so they run
//! in a bare managed Python environment (built offline) and need no CORACLE_TEST_PYTHON.
//! Where the v2 SDK can express the same pipeline, a v2 twin (tests/pipelines/v1_twin_*.py)
//! runs beside it and must compute the same values; the v2 side needs CORACLE_TEST_PYTHON=1.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::*;

fn v1_pipeline(name: &str) -> PathBuf {
    repo().join("tests/pipelines_v1").join(name)
}

/// The backends to run on: the process backend always, Docker when enabled.
fn backends(test: &str) -> Vec<&'static str> {
    let mut all = vec!["process"];
    if std::env::var("CORACLE_TEST_DOCKER").is_ok_and(|v| v == "1") {
        all.push("docker");
    } else {
        eprintln!("{test}: Docker part not run (set CORACLE_TEST_DOCKER=1 with dockerd running)");
    }
    all
}

/// `coracle run <v1 file> --output json ARGS`: exit code, JSON result, stderr.
fn run_v1(home: &Home, file: &Path, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["run", file.to_str().unwrap(), "--output", "json"];
    all.extend_from_slice(args);
    let out = home.coracle(&all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr)
}

/// Runs a v1 pipeline that must succeed; its `runs get` record.
fn run_ok(home: &Home, name: &str, backend: &str, args: &[&str]) -> Value {
    let mut all = vec!["--executor", backend];
    all.extend_from_slice(args);
    let (code, result, stderr) = run_v1(home, &v1_pipeline(name), &all);
    assert_eq!(code, 0, "{name} on {backend} {args:?}: {result}\n{stderr}");
    assert_eq!(result["state"], "SUCCEEDED", "{result}");
    home.get(result["run_id"].as_str().unwrap())
}

/// An output parameter of a task.
fn parameter<'a>(run: &'a Value, task_id: &str, name: &str) -> &'a Value {
    &task(run, task_id)["outputs"]["parameters"][name]
}

/// The content of a task's output artifact file (of its last attempt).
fn file(run: &Value, task_id: &str, name: &str) -> String {
    let last = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|t| t["task_id"] == task_id)
        .unwrap_or_else(|| panic!("no task {task_id} in {run}"));
    let artifact = &last["outputs"]["artifacts"][name][0];
    let uri = artifact["uri"]
        .as_str()
        .unwrap_or_else(|| panic!("no artifact {name} of {task_id} in {run}"));
    std::fs::read_to_string(uri).unwrap_or_else(|e| panic!("{uri}: {e}"))
}

/// Runs a v2 pipeline of tests/pipelines that must succeed: its `--output json` result and its
/// `runs get` record.
fn run_v2_ok(home: &Home, name: &str, backend: &str, args: &[&str]) -> (Value, Value) {
    let mut all = vec!["--executor", backend];
    all.extend_from_slice(args);
    let (code, result, stderr) = home.run(name, &all);
    assert_eq!(code, 0, "{name} on {backend} {args:?}: {result}\n{stderr}");
    assert_eq!(result["state"], "SUCCEEDED", "{result}");
    let run = home.get(result["run_id"].as_str().unwrap());
    (result, run)
}

/// A v2 output as the text a v1 output file holds: an output parameter (a string as it is, a
/// number as JSON writes it: `8`, never `8.0`), else the file of the output artifact.
fn v2_text(run: &Value, task_id: &str, name: &str) -> String {
    match parameter(run, task_id, name) {
        Value::String(s) => s.clone(),
        Value::Null => file(run, task_id, name),
        other => other.to_string(),
    }
}

/// Asserts, for each `(task id, output, expected)`, that the v1 run's output file holds
/// `expected` and that the v2 twin's output of the same task and name (see `v2_text`) equals it;
/// the v2 side only when `v2` is given.
fn assert_twins(v1: &Value, v2: Option<&Value>, expected: &[(&str, &str, &str)], at: &str) {
    for (task_id, name, value) in expected {
        let v1_value = file(v1, task_id, name);
        assert_eq!(v1_value, *value, "v1 {task_id}.{name} ({at})");
        if let Some(v2) = v2 {
            let v2_value = v2_text(v2, task_id, name);
            assert_eq!(v2_value, v1_value, "v2 vs v1 {task_id}.{name} ({at})");
        }
    }
}

fn ok(home: &Home, args: &[&str]) {
    let out = home.coracle(args);
    assert!(
        out.status.success(),
        "coracle {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn v1_add_chain_gives_the_outputs_of_the_v2_pipeline() {
    for backend in backends("v1_add_chain_gives_the_outputs_of_the_v2_pipeline") {
        let home = Home::new();
        let run = run_ok(
            &home,
            "add_chain.yaml",
            backend,
            &["-p", "a=2", "-p", "b=3"],
        );
        // The v2 add_chain (tests/pipelines/add_chain.yaml) gives add.Output = 5 and a
        // pipeline output 10 from double.
        assert_eq!(parameter(&run, "add", "Output"), "5", "{backend}");
        assert_eq!(file(&run, "add", "Output"), "5");
        assert_eq!(file(&run, "double", "Output"), "10", "{backend}");
        let run = run_ok(
            &home,
            "add_chain.yaml",
            backend,
            &["-p", "a=-7", "-p", "b=3"],
        );
        assert_eq!(file(&run, "double", "Output"), "-8");
        // Parameters are text: a non-number reaches the component, whose argparse refuses it.
        let (code, result, _) = run_v1(
            &home,
            &v1_pipeline("add_chain.yaml"),
            &["--executor", backend, "-p", "a=x", "-p", "b=3"],
        );
        assert_eq!(code, 1, "{result}");
        assert_eq!(result["state"], "FAILED");
        // A required parameter left out is refused before anything runs.
        let (code, _, stderr) = run_v1(&home, &v1_pipeline("add_chain.yaml"), &["-p", "a=1"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("required parameter \"b\""), "{stderr}");
    }
    if python_enabled("v1_add_chain_gives_the_outputs_of_the_v2_pipeline (v2 side)") {
        let home = Home::new();
        let (code, v2, stderr) = home.run("add_chain.yaml", &["-p", "a=2", "-p", "b=3"]);
        assert_eq!(code, 0, "{stderr}");
        let v2_run = home.get(v2["run_id"].as_str().unwrap());
        let v1_run = run_ok(
            &home,
            "add_chain.yaml",
            "process",
            &["-p", "a=2", "-p", "b=3"],
        );
        assert_eq!(
            parameter(&v2_run, "add", "Output").to_string(),
            parameter(&v1_run, "add", "Output").as_str().unwrap()
        );
        assert_eq!(
            v2["outputs"]["parameters"]["Output"].to_string(),
            file(&v1_run, "double", "Output")
        );
    }
}

#[test]
fn v1_files_pass_between_tasks_at_their_fixed_paths() {
    for backend in backends("v1_files_pass_between_tasks_at_their_fixed_paths") {
        let home = Home::new();
        let run = run_ok(&home, "file_passing.yaml", backend, &["--no-cache"]);
        assert_eq!(file(&run, "write-text", "out"), "hello v1", "{backend}");
        assert_eq!(parameter(&run, "measure", "upper"), "HELLO V1");
        assert_eq!(task(&run, "measure")["name"], "measure text");
        assert_eq!(file(&run, "measure", "length"), "8");
        assert_eq!(file(&run, "shout", "shout"), "HELLO V1!", "{backend}");
        assert_eq!(parameter(&run, "count-chars", "count"), "8");
        assert_eq!(file(&run, "measure-2", "length"), "13");
        assert_eq!(file(&run, "measure-2", "upper"), "CONSTANT DATA");
        assert_eq!(file(&run, "report", "summary"), "HELLO V1! 8", "{backend}");
        // Nothing was written at the v1 paths on this machine: they were redirected.
        assert!(!Path::new("/tmp/shout/out.txt").exists());
        assert!(!Path::new("/tmp/outputs/upper/data").exists());
    }
}

#[test]
fn v1_file_passing_gives_the_outputs_of_its_v2_twin() {
    const TEST: &str = "v1_file_passing_gives_the_outputs_of_its_v2_twin";
    let v2_on = python_enabled(&format!("{TEST} (v2 side)"));
    for backend in backends(TEST) {
        let home = Home::new();
        for (args, expected) in [
            (
                vec!["--no-cache"],
                [
                    ("write-text", "out", "hello v1"),
                    ("measure", "length", "8"),
                    ("measure", "upper", "HELLO V1"),
                    ("shout", "shout", "HELLO V1!"),
                    ("count-chars", "count", "8"),
                    ("measure-2", "length", "13"),
                    ("measure-2", "upper", "CONSTANT DATA"),
                    ("report", "summary", "HELLO V1! 8"),
                ],
            ),
            (
                vec!["--no-cache", "-p", "text=twin"],
                [
                    ("write-text", "out", "twin"),
                    ("measure", "length", "4"),
                    ("measure", "upper", "TWIN"),
                    ("shout", "shout", "TWIN!"),
                    ("count-chars", "count", "4"),
                    ("measure-2", "length", "13"),
                    ("measure-2", "upper", "CONSTANT DATA"),
                    ("report", "summary", "TWIN! 4"),
                ],
            ),
        ] {
            let at = format!("{backend} {args:?}");
            let v1 = run_ok(&home, "file_passing.yaml", backend, &args);
            assert_eq!(task(&v1, "measure")["name"], "measure text");
            let v2 = v2_on.then(|| run_v2_ok(&home, "v1_twin_file_passing.yaml", backend, &args));
            assert_twins(&v1, v2.as_ref().map(|(_, run)| run), &expected, &at);
            if let Some((result, v2)) = &v2 {
                assert_eq!(task(v2, "measure")["name"], "measure text", "{at}");
                // The twin also returns two of them as pipeline outputs.
                let outputs = &result["outputs"]["parameters"];
                assert_eq!(outputs["summary"], expected[7].2, "{at}");
                assert_eq!(outputs["length"].to_string(), expected[1].2, "{at}");
            }
        }
    }
}

#[test]
fn v1_conditions_loops_and_exit_handler() {
    for backend in backends("v1_conditions_loops_and_exit_handler") {
        let home = Home::new();
        let run = run_ok(&home, "control_flow.yaml", backend, &["--no-cache"]);
        let body = "exit-handler-1";
        assert_eq!(
            file(&run, &format!("{body}/condition-2/announce"), "Output"),
            "heads won"
        );
        assert_eq!(
            file(
                &run,
                &format!("{body}/condition-2/condition-3/announce-2"),
                "Output"
            ),
            "big"
        );
        assert_eq!(
            task(&run, &format!("{body}/condition-4/announce-3"))["state"],
            "SKIPPED"
        );
        for (index, expected) in ["1-x", "2-y"].iter().enumerate() {
            let id = format!("{body}/for-loop-6/{index}/pair");
            assert_eq!(file(&run, &id, "Output"), *expected, "{backend}");
        }
        // parallelism=1: the two iterations did not overlap.
        assert!(!overlap(
            task(&run, &format!("{body}/for-loop-6/0/pair")),
            task(&run, &format!("{body}/for-loop-6/1/pair"))
        ));
        for (index, expected) in ["1", "4", "9"].iter().enumerate() {
            let id = format!("{body}/for-loop-7/{index}/square");
            assert_eq!(file(&run, &id, "Output"), *expected);
        }
        for (index, expected) in ["hi p", "hi q"].iter().enumerate() {
            let id = format!("{body}/for-loop-8/{index}/greet");
            assert_eq!(file(&run, &id, "Output"), *expected);
        }
        assert_eq!(file(&run, "final", "status"), "Succeeded", "{backend}");

        let run = run_ok(
            &home,
            "control_flow.yaml",
            backend,
            &["--no-cache", "-p", "side=tails", "-p", "threshold=1"],
        );
        assert_eq!(
            file(&run, &format!("{body}/condition-4/announce-3"), "Output"),
            "tails won"
        );
        assert_eq!(
            task(&run, &format!("{body}/condition-2"))["state"],
            "SKIPPED"
        );

        // A failing body: the exit handler still runs and sees the failure.
        let (code, result, _) = run_v1(
            &home,
            &v1_pipeline("control_flow.yaml"),
            &["--executor", backend, "--no-cache", "-p", "names=oops"],
        );
        assert_eq!(code, 1, "{result}");
        let run = home.get(result["run_id"].as_str().unwrap());
        assert_eq!(task(&run, "final")["state"], "SUCCEEDED");
        assert_eq!(file(&run, "final", "status"), "Failed", "{backend}");
    }
}

#[test]
fn v1_control_flow_gives_the_outputs_of_its_v2_twin() {
    const TEST: &str = "v1_control_flow_gives_the_outputs_of_its_v2_twin";
    let v2_on = python_enabled(&format!("{TEST} (v2 side)"));
    let body = "exit-handler-1";
    let path = |rest: &str| format!("{body}/{rest}");
    for backend in backends(TEST) {
        let home = Home::new();
        let runs = |args: &[&str]| {
            let v1 = run_ok(&home, "control_flow.yaml", backend, args);
            let v2 = v2_on.then(|| run_v2_ok(&home, "v1_twin_control_flow.yaml", backend, args).1);
            (v1, v2)
        };

        // Defaults: the heads branch with its nested condition, all three loops.
        let (v1, v2) = runs(&["--no-cache"]);
        let at = format!("{backend} defaults");
        let expected = [
            (path("echo"), "heads"),
            (path("condition-2/announce"), "heads won"),
            (path("condition-2/condition-3/announce-2"), "big"),
            (path("for-loop-6/0/pair"), "1-x"),
            (path("for-loop-6/1/pair"), "2-y"),
            (path("for-loop-7/0/square"), "1"),
            (path("for-loop-7/1/square"), "4"),
            (path("for-loop-7/2/square"), "9"),
            (path("for-loop-8/0/greet"), "hi p"),
            (path("for-loop-8/1/greet"), "hi q"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(id, value)| (id.as_str(), "Output", *value))
            .collect();
        assert_twins(&v1, v2.as_ref(), &expected, &at);
        for run in std::iter::once(&v1).chain(v2.as_ref()) {
            assert_eq!(task(run, &path("condition-4"))["state"], "SKIPPED", "{at}");
            assert_eq!(
                task(run, &path("condition-4/announce-3"))["state"],
                "SKIPPED",
                "{at}"
            );
            assert_eq!(task(run, &path("condition-2/announce"))["name"], "heads");
            // parallelism=1: the two iterations did not overlap.
            assert!(!overlap(
                task(run, &path("for-loop-6/0/pair")),
                task(run, &path("for-loop-6/1/pair"))
            ));
        }
        // The exit task sees the body's final state, spelled differently by the two SDKs: v1
        // writes Argo's {{workflow.status}}, the workflow's phase ("Succeeded"); v2's
        // dsl.PipelineTaskFinalStatus carries the state the KFP backend passes for the exit
        // handler's group, its execution state ("COMPLETE"). Same outcome, other words.
        assert_eq!(file(&v1, "final", "status"), "Succeeded", "{at}");
        if let Some(v2) = &v2 {
            assert_eq!(v2_text(v2, "final", "status"), "COMPLETE", "{at}");
        }

        // The other branch, the nested condition false, and a list given on the command line
        // (v1: a str parameter holding JSON; v2: a LIST parameter).
        let (v1, v2) = runs(&[
            "--no-cache",
            "-p",
            "side=tails",
            "-p",
            "threshold=1",
            "-p",
            r#"names=["a", "b", "c"]"#,
        ]);
        let at = format!("{backend} tails");
        let expected = [
            (path("echo"), "tails"),
            (path("condition-4/announce-3"), "tails won"),
            (path("for-loop-8/0/greet"), "hi a"),
            (path("for-loop-8/1/greet"), "hi b"),
            (path("for-loop-8/2/greet"), "hi c"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(id, value)| (id.as_str(), "Output", *value))
            .collect();
        assert_twins(&v1, v2.as_ref(), &expected, &at);
        for run in std::iter::once(&v1).chain(v2.as_ref()) {
            for skipped in ["condition-2", "condition-2/announce"] {
                assert_eq!(
                    task(run, &path(skipped))["state"],
                    "SKIPPED",
                    "{at} {skipped}"
                );
            }
            assert_eq!(task(run, &path("condition-4/announce-3"))["name"], "tails");
        }

        // `names` that is no list: v1 takes any text and fails in the loop (the exit task
        // still runs and reports "Failed"); the v2 SDK loops only over a LIST parameter, so
        // the twin refuses the same argument before anything runs.
        let args = ["--executor", backend, "--no-cache", "-p", "names=oops"];
        let (code, result, _) = run_v1(&home, &v1_pipeline("control_flow.yaml"), &args);
        assert_eq!(code, 1, "{result}");
        let run = home.get(result["run_id"].as_str().unwrap());
        assert_eq!(file(&run, "final", "status"), "Failed", "{backend}");
        if v2_on {
            let (code, result, stderr) = home.run("v1_twin_control_flow.yaml", &args);
            assert_eq!(code, 2, "{result} {stderr}");
            assert!(stderr.contains("names"), "{stderr}");
        }
    }
}

#[test]
fn v1_retries_with_backoff() {
    // Process backend only: the attempts are counted in a directory of this machine, which a
    // container does not see.
    let backend = "process";
    let home = Home::new();
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let (code, result, stderr) = run_v1(
        &home,
        &v1_pipeline("retry.yaml"),
        &["--executor", backend, "-p", &format!("state_dir={dir}")],
    );
    assert_eq!(code, 1, "{result} {stderr}");
    let run = home.get(result["run_id"].as_str().unwrap());
    assert_eq!(file(&run, "flaky", "Output"), "3", "{backend}");
    assert_eq!(file(&run, "flaky-2", "Output"), "3");
    assert_eq!(task(&run, "flaky-3")["state"], "FAILED");
    let times = |name: &str| -> Vec<f64> {
        std::fs::read_to_string(state.path().join(format!("{name}.attempts")))
            .unwrap()
            .lines()
            .map(|l| l.split(' ').nth(2).unwrap().parse().unwrap())
            .collect()
    };
    assert_eq!(times("flaky").len(), 3);
    assert_eq!(times("always").len(), 3);
    let backoff = times("backoff");
    assert_eq!(backoff.len(), 3);
    assert!(backoff[1] - backoff[0] >= 1.0, "{backoff:?}");
    assert!(backoff[2] - backoff[1] >= 2.0, "{backoff:?}");
}

#[test]
fn v1_pod_settings_reach_the_task() {
    const PASSWORD: &str = "v1-pw-88213-never-shown";
    for backend in backends("v1_pod_settings_reach_the_task") {
        let home = Home::new();
        let (code, result, _) = run_v1(
            &home,
            &v1_pipeline("pod_settings.yaml"),
            &["--executor", backend],
        );
        assert_eq!(code, 1, "{result}");
        assert!(
            result["error"]
                .as_str()
                .unwrap_or_default()
                .contains("secret \"db-creds\" does not exist"),
            "{result}"
        );
        ok(
            &home,
            &[
                "secret",
                "create",
                "db-creds",
                "--from-literal",
                &format!("password={PASSWORD}"),
            ],
        );
        ok(
            &home,
            &[
                "configmap",
                "create",
                "app-config",
                "--from-literal",
                "mode=fast",
            ],
        );
        let run = run_ok(&home, "pod_settings.yaml", backend, &[]);
        assert_eq!(
            file(&run, "inspect", "Output"),
            "greeting=hi;password_matches_file=True;mode=fast;mode_file=fast;scratch=ok;pod=True",
            "{backend}"
        );
        let run_id = run["run_id"].as_str().unwrap();
        let logs = home.coracle(&["logs", run_id]);
        let logs = String::from_utf8_lossy(&logs.stdout);
        assert!(logs.contains("password is ***"), "{logs}");
        assert!(!logs.contains(PASSWORD), "{logs}");
    }
}

#[test]
fn v1_gpu_limit_gets_a_device_or_fails_clearly() {
    let home = Home::new();
    let run = |gpus: &str| {
        let path = v1_pipeline("gpu.yaml");
        let out = home
            .command()
            .env("CORACLE_GPUS", gpus)
            .args(["run", path.to_str().unwrap(), "--output", "json"])
            .output()
            .unwrap();
        let result: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), result)
    };
    let (code, result) = run("3");
    assert_eq!(code, Some(0), "{result}");
    let record = home.get(result["run_id"].as_str().unwrap());
    assert_eq!(file(&record, "gpu", "Output"), "3");
    let (code, result) = run("");
    assert_eq!(code, Some(1), "{result}");
    assert!(
        result["error"]
            .as_str()
            .unwrap_or_default()
            .contains("requests 1 GPU(s) but this machine has 0"),
        "{result}"
    );
}

#[test]
fn v1_volumes_are_made_shared_and_deleted() {
    for backend in backends("v1_volumes_are_made_shared_and_deleted") {
        let home = Home::new();
        ok(&home, &["volume", "create", "team-data", "--size", "1Gi"]);
        let run = run_ok(&home, "volumes.yaml", backend, &["-p", "line=first"]);
        assert_eq!(
            file(&run, "read", "Output"),
            "hello from a v1 volume",
            "{backend}"
        );
        let name = parameter(&run, "make-volume", "name").as_str().unwrap();
        assert!(name.ends_with("-data"), "{name}");
        run_ok(&home, "volumes.yaml", backend, &["-p", "line=second"]);
        // The volumes the runs made are gone; the named one kept both lines.
        let left: Vec<String> = std::fs::read_dir(home.dir.path().join("volumes"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["team-data"], "{backend}");
        assert_eq!(
            std::fs::read_to_string(home.dir.path().join("volumes/team-data/log.txt")).unwrap(),
            "first\nsecond\n"
        );
        assert!(!Path::new("/shared/log.txt").exists());
    }
}

#[test]
fn v1_caching_settings_are_honoured() {
    let home = Home::new();
    let first = run_ok(&home, "caching.yaml", "process", &[]);
    // Every result of the first run was stored before it returned.
    let first_ended = std::time::Instant::now();
    let second = run_ok(&home, "caching.yaml", "process", &[]);
    // `fresh-token` (max_cache_staleness PT15S) reuses a result under 15 s old.
    for cached in ["token", "fresh-token"] {
        assert_eq!(task(&second, cached)["state"], "CACHED", "{cached}");
        assert_eq!(
            file(&first, cached, "Output"),
            file(&second, cached, "Output"),
            "{cached}"
        );
    }
    // Once the first result is older than 15 s, `fresh-token` runs again; `token` (no limit)
    // is still cached.
    std::thread::sleep(std::time::Duration::from_secs(16).saturating_sub(first_ended.elapsed()));
    let third = run_ok(&home, "caching.yaml", "process", &[]);
    assert_eq!(task(&third, "token")["state"], "CACHED");
    assert_eq!(task(&third, "fresh-token")["state"], "SUCCEEDED");
    assert_ne!(
        file(&first, "fresh-token", "Output"),
        file(&third, "fresh-token", "Output")
    );
    for stale in ["token-2", "token-3"] {
        assert_eq!(task(&second, stale)["state"], "SUCCEEDED", "{stale}");
        assert_ne!(
            file(&first, stale, "Output"),
            file(&second, stale, "Output")
        );
    }
    let other = run_ok(&home, "caching.yaml", "process", &["-p", "salt=b"]);
    assert_eq!(task(&other, "token")["state"], "SUCCEEDED");
    assert!(file(&other, "token", "Output").starts_with("b-"));
}

#[test]
fn v1_component_files_run_in_pipelines_and_alone() {
    for backend in backends("v1_component_files_run_in_pipelines_and_alone") {
        let home = Home::new();
        let run = run_ok(&home, "component_yaml.yaml", backend, &["--no-cache"]);
        assert_eq!(file(&run, "echo", "result"), "> hi|> hi|DATA", "{backend}");
        assert_eq!(file(&run, "echo-2", "result"), "hi|raw");
        assert!(file(&run, "echo-2", "args").contains("--no-prefix"));

        let component = v1_pipeline("components/echo.yaml");
        let (code, result, stderr) = run_v1(
            &home,
            &component,
            &[
                "--executor",
                backend,
                "--no-cache",
                "-p",
                "text=x",
                "-p",
                "data=y",
                "-p",
                "prefix=p",
            ],
        );
        assert_eq!(code, 0, "{result} {stderr}");
        assert_eq!(
            result["outputs"]["parameters"]["result"], "px|y",
            "{backend}"
        );
        let args = result["outputs"]["parameters"]["args"].as_str().unwrap();
        assert!(args.starts_with("--text=x --data "), "{args}");
        assert!(args.contains("--prefix p --times 1"), "{args}");
        // The optional input left out: the other branch of its if/isPresent.
        let (code, result, stderr) = run_v1(
            &home,
            &component,
            &["--executor", backend, "-p", "text=x", "-p", "data=y"],
        );
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(result["outputs"]["parameters"]["result"], "x|y");
        let (code, _, stderr) = run_v1(&home, &component, &["-p", "text=x"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("required parameter \"data\""), "{stderr}");
    }
}

#[test]
fn v1_metrics_become_run_metrics() {
    for backend in backends("v1_metrics_become_run_metrics") {
        let home = Home::new();
        let run = run_ok(&home, "metrics.yaml", backend, &["--no-cache"]);
        let outputs = &task(&run, "evaluate")["outputs"]["artifacts"];
        let metrics = &outputs["mlpipeline-metrics"][0];
        assert_eq!(metrics["type"], "system.Metrics", "{backend}");
        assert_eq!(
            metrics["metadata"],
            serde_json::json!({"accuracy": 0.875, "loss": 0.25}),
            "{backend}"
        );
        let ui = &outputs["mlpipeline-ui-metadata"][0];
        assert_eq!(ui["type"], "coracle.UiMetadata");
        let content: Value =
            serde_json::from_str(&file(&run, "evaluate", "mlpipeline-ui-metadata")).unwrap();
        assert_eq!(content["outputs"][0]["type"], "markdown");
    }
}

#[test]
fn v1_metrics_give_the_metrics_of_the_v2_twin() {
    const TEST: &str = "v1_metrics_give_the_metrics_of_the_v2_twin";
    let v2_on = python_enabled(&format!("{TEST} (v2 side)"));
    let expected = serde_json::json!({"accuracy": 0.875, "loss": 0.25});
    for backend in backends(TEST) {
        let home = Home::new();
        let v1 = run_ok(&home, "metrics.yaml", backend, &["--no-cache"]);
        let v1_metrics = &task(&v1, "evaluate")["outputs"]["artifacts"]["mlpipeline-metrics"][0];
        assert_eq!(v1_metrics["type"], "system.Metrics", "{backend}");
        assert_eq!(v1_metrics["metadata"], expected, "{backend}");
        if v2_on {
            let (_, v2) = run_v2_ok(&home, "v1_twin_metrics.yaml", backend, &["--no-cache"]);
            // v1's output is named `mlpipeline-metrics` (the name the v1 UI looks for), the
            // v2 twin's `metrics`; the artifacts themselves must agree.
            let v2_metrics = &task(&v2, "evaluate")["outputs"]["artifacts"]["metrics"][0];
            assert_eq!(v2_metrics["type"], v1_metrics["type"], "{backend}");
            assert_eq!(v2_metrics["metadata"], v1_metrics["metadata"], "{backend}");
            assert_eq!(file(&v2, "evaluate", "notes"), "# Evaluation\n");
        }
    }
}

#[test]
fn bad_v1_input_is_refused_naming_the_template_and_field() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(v1_pipeline("add_chain.yaml")).unwrap();
    let cases = [
        (
            "      image: python:3.11\n    inputs:\n      parameters:\n      - {name: a}",
            "      image: python:3.11\n      volumeMounts:\n      - {mountPath: /x, name: nowhere}\n    inputs:\n      parameters:\n      - {name: a}",
            "spec.templates[add].container.volumeMounts[0]: volume \"nowhere\" is not declared",
        ),
        (
            "      - name: add\n        template: add\n",
            "      - name: add\n        template: subtract\n",
            "spec.templates[add-chain].dag.tasks[add].template: template \"subtract\" is not defined in spec.templates",
        ),
        (
            "  - name: add-chain\n",
            "  - name: add-chain\n    steps: [[]]\n",
            "spec.templates[add-chain].steps: steps templates are not supported",
        ),
    ];
    for (index, (from, to, expected)) in cases.iter().enumerate() {
        assert!(original.contains(from), "{from:?} not in add_chain.yaml");
        let path = dir.path().join(format!("bad-{index}.yaml"));
        std::fs::write(&path, original.replacen(from, to, 1)).unwrap();
        let (code, _, stderr) = run_v1(&home, &path, &["-p", "a=1", "-p", "b=2"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn v1_packages_to_install_come_from_a_managed_environment() {
    if !python_enabled("v1_packages_to_install_come_from_a_managed_environment") {
        return;
    }
    // add_chain's `add` as kfp 1.8 writes it with packages_to_install=["six==1.16.0"].
    let prelude = "(PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location 'six==1.16.0' || PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location 'six==1.16.0' --user) && \"$0\" \"$@\"";
    let original = std::fs::read_to_string(v1_pipeline("add_chain.yaml")).unwrap();
    let from = "      command:\n      - sh\n      - -ec\n";
    assert!(original.contains(from));
    let with_packages = original.replacen(
        from,
        &format!(
            "      command:\n      - sh\n      - -c\n      - {}\n      - sh\n      - -ec\n",
            serde_json::to_string(prelude).unwrap()
        ),
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("add_chain_packages.yaml");
    std::fs::write(&path, with_packages).unwrap();
    let home = Home::new();
    let args = ["--no-cache", "-p", "a=2", "-p", "b=3"];
    let (code, result, stderr) = run_v1(&home, &path, &args);
    assert_eq!(code, 0, "{result} {stderr}");
    // The environment exists now: offline, the command's own pip install finds six in it.
    let mut offline = vec!["--offline"];
    offline.extend_from_slice(&args);
    let (code, result, stderr) = run_v1(&home, &path, &offline);
    assert_eq!(code, 0, "{result} {stderr}");
    let run = home.get(result["run_id"].as_str().unwrap());
    assert_eq!(file(&run, "double", "Output"), "10");
}

#[test]
fn a_hand_written_argo_workflow_runs() {
    for backend in backends("a_hand_written_argo_workflow_runs") {
        let home = Home::new();
        let run = run_ok(&home, "argo/hand_written.yaml", backend, &["--no-cache"]);
        // A container looped directly (a DAG is made around it), text around {{item}}.
        assert_eq!(
            parameter(&run, "each/0/each", "said"),
            "a-x (3)",
            "{backend}"
        );
        assert_eq!(parameter(&run, "each/1/each", "said"), "b-x (3)");
        assert_eq!(parameter(&run, "seq/0/seq", "said"), "n5 (3)");
        assert_eq!(parameter(&run, "seq/1/seq", "said"), "n6 (3)");
        // A workflow parameter two DAGs down, and a DAG's output parameter.
        assert_eq!(parameter(&run, "inner", "result"), "hello deep (3)");
        let after = parameter(&run, "after", "said").as_str().unwrap();
        let run_name = run["display_name"].as_str().unwrap();
        assert_eq!(after, format!("got hello deep (3) in {run_name} (3)"));
        let run = run_ok(
            &home,
            "argo/hand_written.yaml",
            backend,
            &["--no-cache", "-p", "greeting=hey", "-p", "n=7"],
        );
        assert_eq!(parameter(&run, "inner", "result"), "hey deep (7)");
    }
}
