//! Runs of container-only pipelines and the commands that read runs back.

use std::time::Duration;

use serde_json::json;

use crate::*;

#[test]
fn bad_input_is_refused_with_exit_code_2_and_a_path() {
    let home = Home::new();
    let (code, _, stderr) = home.run("add_chain.yaml", &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("root.inputDefinitions.parameters.a: required parameter \"a\" (NUMBER_INTEGER) has no value"), "{stderr}");
    let (code, _, stderr) = home.run("add_chain.yaml", &["-p", "a=x", "-p", "b=3"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "root.inputDefinitions.parameters.a: expected NUMBER_INTEGER, got a string (\"x\")"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = home.run("add_chain.yaml", &["-p", "a"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("expected NAME=VALUE"), "{stderr}");
    let out = home.coracle(&["run", "/no/such/pipeline.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to read /no/such/pipeline.yaml"));
    // Nothing ran, so nothing was recorded.
    let out = home.coracle(&["runs", "list", "--output", "json"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        json!([])
    );
}

#[test]
fn invalid_corpus_files_exit_2_without_a_panic() {
    let invalid = repo().join("../shared/kfp-corpus/invalid");
    if !invalid.is_dir() {
        eprintln!("../shared/kfp-corpus not present: nothing checked");
        return;
    }
    let home = Home::new();
    for entry in std::fs::read_dir(invalid).unwrap() {
        let path = entry.unwrap().path();
        let out = home.coracle(&["run", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", path.display());
        assert!(
            stderr.starts_with("error: "),
            "{}: {stderr}",
            path.display()
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn parallelism_bounds_how_many_tasks_run_at_once() {
    let home = Home::new();
    let naps = ["nap", "nap-2", "nap-3", "nap-4"];
    for (parallelism, all_overlap) in [("1", false), ("4", true)] {
        let (code, result, stderr) =
            home.run("parallel_sleep.yaml", &["--parallelism", parallelism]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(result["state"], "SUCCEEDED");
        assert_eq!(result["outputs"]["parameters"]["Output"], "joined");
        let run = home.get(result["run_id"].as_str().unwrap());
        for (i, a) in naps.iter().enumerate() {
            for b in &naps[i + 1..] {
                assert_eq!(
                    overlap(task(&run, a), task(&run, b)),
                    all_overlap,
                    "{a} vs {b} with --parallelism {parallelism}"
                );
            }
            // join starts only after every nap ended.
            assert!(interval(task(&run, a)).1 <= interval(task(&run, "join")).0);
        }
    }
}

#[test]
fn ctrl_c_cancels_the_run_and_leaves_no_process_behind() {
    let home = Home::new();
    let child = home
        .command()
        .args([
            "run",
            pipeline("parallel_sleep.yaml").to_str().unwrap(),
            "-p",
            "seconds=37",
            "--output",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the naps are running.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while processes_matching("sleep 37").len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the naps never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["state"], "CANCELED");
    assert_eq!(processes_matching("sleep 37"), Vec::<String>::new());
    let run = home.get(result["run_id"].as_str().unwrap());
    assert_eq!(run["state"], "CANCELED");
    assert_eq!(task(&run, "nap")["state"], "CANCELED");
    assert_eq!(task(&run, "join")["state"], "CANCELED");
}

#[test]
fn runs_can_be_listed_and_read_after_the_process_ended() {
    let home = Home::new();
    // Parameters from a JSON file; -p wins over it.
    let params = home.dir.path().join("params.json");
    std::fs::write(&params, r#"{"seconds": 5}"#).unwrap();
    let (code, result, stderr) = home.run(
        "parallel_sleep.yaml",
        &["--params", params.to_str().unwrap(), "-p", "seconds=0"],
    );
    assert_eq!(code, 0, "{stderr}");
    let run_id = result["run_id"].as_str().unwrap();

    let out = home.coracle(&["runs", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(run_id) && text.contains("SUCCEEDED"),
        "{text}"
    );

    // A unique prefix finds the run.
    let out = home.coracle(&["runs", "get", &run_id[..8]]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("state:      SUCCEEDED") && text.contains("nap-4") && text.contains("join"),
        "{text}"
    );

    let run = home.get(run_id);
    assert_eq!(run["parameters"], json!({"seconds": 0}));
    assert_eq!(run["outputs"]["parameters"]["Output"], "joined");
    let join = task(&run, "join");
    assert_eq!(join["state"], "SUCCEEDED");
    assert_eq!(join["outputs"]["parameters"]["result"], "joined");
    assert_eq!(join["exit_code"], json!(0));
    assert!(std::path::Path::new(join["log_path"].as_str().unwrap()).is_file());

    let out = home.coracle(&["logs", run_id, "no-such-task"]);
    assert_eq!(out.status.code(), Some(2));
    let out = home.coracle(&["runs", "get", "ffffffff"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ffffffff"));
}

#[test]
fn runs_terminate_stops_a_run_from_another_process() {
    let home = Home::new();
    let child = home
        .command()
        .args([
            "run",
            pipeline("parallel_sleep.yaml").to_str().unwrap(),
            "-p",
            "seconds=41",
            "--output",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while processes_matching("sleep 41").len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the naps never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let list = home.coracle(&["runs", "list", "--output", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let out = home.coracle(&["runs", "terminate", &run_id[..8]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is being canceled"));
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["state"], "CANCELED");
    assert_eq!(processes_matching("sleep 41"), Vec::<String>::new());
    assert_eq!(home.get(&run_id)["state"], "CANCELED");
    // A finished run is left as it is.
    let out = home.coracle(&["runs", "terminate", &run_id]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already ended: CANCELED"));
}

/// A failed run retried: the task that succeeded is not run again, the failed one runs as a
/// new attempt, and the run (same id) ends SUCCEEDED with the kept task's output.
#[test]
fn runs_retry_continues_a_failed_run_from_where_it_stopped() {
    let yaml = r#"
pipelineInfo: {name: resumable}
root:
  inputDefinitions: {parameters: {state: {parameterType: STRING}}}
  outputDefinitions: {parameters: {Output: {parameterType: STRING}}}
  dag:
    outputs: {parameters: {Output: {valueFromParameter: {producerSubtask: once, outputParameterKey: out}}}}
    tasks:
      once:
        taskInfo: {name: once}
        componentRef: {name: comp-once}
        inputs: {parameters: {state: {componentInputParameter: state}}}
      flaky:
        taskInfo: {name: flaky}
        componentRef: {name: comp-flaky}
        dependentTasks: [once]
        inputs: {parameters: {state: {componentInputParameter: state}}}
components:
  comp-once:
    executorLabel: exec-once
    inputDefinitions: {parameters: {state: {parameterType: STRING}}}
    outputDefinitions: {parameters: {out: {parameterType: STRING}}}
  comp-flaky:
    executorLabel: exec-flaky
    inputDefinitions: {parameters: {state: {parameterType: STRING}}}
deploymentSpec:
  executors:
    exec-once:
      container:
        image: alpine
        command: [sh, -c, 'echo ran >> "$0/once.count"; printf kept > "$1"', "{{$.inputs.parameters['state']}}", "{{$.outputs.parameters['out'].output_file}}"]
    exec-flaky:
      container:
        image: alpine
        command: [sh, -c, 'test -e "$0/allow" || { echo not yet; exit 4; }', "{{$.inputs.parameters['state']}}"]
"#;
    let home = Home::new();
    let file = home.dir.path().join("resumable.yaml");
    std::fs::write(&file, yaml).unwrap();
    let state = home.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let state_arg = format!("state={}", state.display());
    let out = home.coracle(&[
        "run",
        file.to_str().unwrap(),
        "-p",
        &state_arg,
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = first["run_id"].as_str().unwrap().to_string();

    // Not yet retryable while... a succeeded or unknown run is refused with exit 2.
    assert_eq!(
        home.coracle(&["runs", "retry", "nope", "--output", "json"])
            .status
            .code(),
        Some(2)
    );

    std::fs::write(state.join("allow"), "").unwrap();
    let out = home.coracle(&["runs", "retry", &run_id[..8], "--output", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(second["run_id"], json!(run_id));
    assert_eq!(second["state"], "SUCCEEDED");
    assert_eq!(second["outputs"]["parameters"]["Output"], "kept");
    assert_eq!(
        std::fs::read_to_string(state.join("once.count")).unwrap(),
        "ran\n",
        "the succeeded task ran again"
    );

    let run = home.get(&run_id);
    assert_eq!(run["state"], "SUCCEEDED");
    let attempts: Vec<(String, i64, String)> = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["task_id"].as_str().unwrap().to_string(),
                t["attempt"].as_i64().unwrap(),
                t["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        attempts.contains(&("flaky".into(), 0, "FAILED".into())),
        "{attempts:?}"
    );
    assert!(
        attempts.contains(&("flaky".into(), 1, "SUCCEEDED".into())),
        "{attempts:?}"
    );
    assert!(
        attempts.contains(&("once".into(), 0, "SUCCEEDED".into())),
        "{attempts:?}"
    );
    assert_eq!(
        attempts.iter().filter(|a| a.0 == "once").count(),
        1,
        "{attempts:?}"
    );
    // Each attempt keeps its own log.
    let logs =
        String::from_utf8_lossy(&home.coracle(&["logs", &run_id, "flaky"]).stdout).into_owned();
    assert!(logs.contains("not yet"), "{logs}");
    // A succeeded run cannot be retried.
    let out = home.coracle(&["runs", "retry", &run_id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("only failed or canceled runs can be retried")
    );
}

/// `--task-timeout` fails an attempt that runs too long (and the retry gets a fresh limit);
/// `--timeout` stops the whole run, which ends FAILED with the reason, leaving no process.
#[test]
fn task_and_run_timeouts_stop_what_runs_too_long() {
    let yaml = r#"
pipelineInfo: {name: slow}
root:
  inputDefinitions: {parameters: {marker: {parameterType: STRING}}}
  dag:
    tasks:
      quick:
        taskInfo: {name: quick}
        componentRef: {name: comp-quick}
      slow:
        taskInfo: {name: slow}
        componentRef: {name: comp-slow}
        inputs: {parameters: {marker: {componentInputParameter: marker}}}
        retryPolicy: {maxRetryCount: 1}
components:
  comp-quick: {executorLabel: exec-quick}
  comp-slow:
    executorLabel: exec-slow
    inputDefinitions: {parameters: {marker: {parameterType: STRING}}}
deploymentSpec:
  executors:
    exec-quick:
      container: {image: alpine, command: [sh, -c, 'sleep 0.2']}
    exec-slow:
      container:
        image: alpine
        command: [sh, -c, 'echo started; exec sh -c "sleep 30; :" "$0"', "{{$.inputs.parameters['marker']}}"]
"#;
    let home = Home::new();
    let file = home.dir.path().join("slow.yaml");
    std::fs::write(&file, yaml).unwrap();
    let file = file.to_str().unwrap();

    let marker = format!("coracle-timeout-{}", std::process::id());
    let marker_arg = format!("marker={marker}");
    let started = std::time::Instant::now();
    let out = home.coracle(&[
        "run",
        file,
        "-p",
        &marker_arg,
        "--task-timeout",
        "slow=0.5s",
        "--task-timeout",
        "5m",
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["state"], "FAILED");
    let run = home.get(result["run_id"].as_str().unwrap());
    assert_eq!(task(&run, "quick")["state"], "SUCCEEDED");
    let slow: Vec<&serde_json::Value> = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["task_id"] == "slow")
        .collect();
    assert_eq!(slow.len(), 2, "one attempt and its retry: {run}");
    for attempt in slow {
        assert_eq!(attempt["state"], "FAILED");
        assert_eq!(attempt["error"], "timed out after 0.500s", "{attempt}");
    }
    assert!(processes_matching(&marker).is_empty());

    let started = std::time::Instant::now();
    let out = home.coracle(&[
        "run",
        file,
        "-p",
        &marker_arg,
        "--timeout",
        "1s",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(20));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["state"], "FAILED");
    assert_eq!(result["error"], "run timed out after 1s");
    let run = home.get(result["run_id"].as_str().unwrap());
    assert_eq!(run["state"], "FAILED");
    assert_eq!(run["error"], "run timed out after 1s");
    assert_eq!(task(&run, "slow")["state"], "CANCELED");
    assert!(processes_matching(&marker).is_empty());

    let out = home.coracle(&["run", file, "--task-timeout", "x=soon"]);
    assert_eq!(out.status.code(), Some(2));
}
