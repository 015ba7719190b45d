//! Lightweight Python components through managed environments and the Python worker.
//! `python_*` tests need pip (network) the first time and run with `CORACLE_TEST_PYTHON=1`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coracle_exec::{Error, ExitOutcome, TaskLaunch};
use serde_json::json;

use crate::common::{
    Fixture, container_argv, corpus_dir, eventually, executors, group_members, process_alive,
    python_tests_enabled, test_envs_dir,
};

/// The corpus's add_numbers command line, with `{{$}}` still in it.
fn add_numbers_argv() -> Vec<String> {
    let path = corpus_dir().join("critical/add_numbers.yaml");
    let (_, container) = executors(&path)
        .into_iter()
        .next()
        .expect("add_numbers has an executor");
    container_argv(&container)
}

/// The same bootstrap running another component.
pub(crate) fn component_argv(source: &str, function: &str) -> Vec<String> {
    let mut argv = add_numbers_argv();
    argv[6] = format!(
        "\nimport kfp\nfrom kfp import dsl\nfrom kfp.dsl import *\nfrom typing import *\n\n{source}\n"
    );
    let last = argv.len() - 1;
    argv[last] = function.to_string();
    argv
}

fn executor_input(dir: &Path, parameters: serde_json::Value) -> String {
    json!({
        "inputs": {"parameterValues": parameters},
        "outputs": {
            "parameters": {"Output": {"outputFile": dir.join("Output")}},
            "outputFile": dir.join("executor_output.json"),
        },
    })
    .to_string()
}

pub(crate) fn python_fixture() -> Fixture {
    Fixture::with_python(|python| python.envs_dir = test_envs_dir())
}

/// A task running `argv` (with `{{$}}` replaced) in image python:3.11; returns it and its
/// output directory.
pub(crate) fn python_task(
    fixture: &Fixture,
    key: &str,
    argv: &[String],
    parameters: serde_json::Value,
) -> (TaskLaunch, PathBuf) {
    let mut task = fixture.task(key, &[]);
    let outputs = task.work_dir.join("outputs");
    std::fs::create_dir_all(&outputs).unwrap();
    let input = executor_input(&outputs, parameters);
    task.argv = argv
        .iter()
        .map(|a| {
            if a == "{{$}}" {
                input.clone()
            } else {
                a.clone()
            }
        })
        .collect();
    task.image = "python:3.11".to_string();
    (task, outputs)
}

pub(crate) fn output_of(outputs: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(outputs.join("executor_output.json"))
        .expect("executor output file");
    serde_json::from_str(&text).expect("executor output JSON")
}

async fn add(fixture: &Fixture, key: &str, a: i64, b: i64) -> i64 {
    let (task, outputs) = python_task(fixture, key, &add_numbers_argv(), json!({"a": a, "b": b}));
    let mut running = fixture.start(task).await;
    let outcome = running.wait().await;
    assert_eq!(
        outcome,
        ExitOutcome::Exited(0),
        "{key}: {}",
        fixture.log(key)
    );
    output_of(&outputs)["parameterValues"]["Output"]
        .as_i64()
        .unwrap_or_else(|| panic!("{key}: no Output in {}", output_of(&outputs)))
}

#[tokio::test]
async fn python_add_numbers_through_the_worker() {
    if !python_tests_enabled("python_add_numbers_through_the_worker") {
        return;
    }
    let mut fixture = python_fixture();
    assert_eq!(add(&fixture, "add", 1, 2).await, 3);
    assert_eq!(
        fixture.executor.python_worker_pids().len(),
        1,
        "ran through a worker"
    );
    let log = fixture.log("add");
    assert!(log.contains("[KFP Executor"), "{log}");
    assert!(log.contains("Wrote executor output file to"), "{log}");
    assert!(!log.contains("pip"), "no pip when warm: {log}");
    let lines = fixture.drain_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.line.contains("Wrote executor output file"))
    );

    // The benchmark's shape: a fresh executor (interpreter probe and worker start included),
    // 20 tasks each adding 1 to the previous result.
    let fresh = python_fixture();
    let started = Instant::now();
    let mut value = 0;
    for i in 0..20 {
        value = add(&fresh, &format!("chain-{i}"), value, 1).await;
    }
    let total = started.elapsed();
    assert_eq!(value, 20);
    let started = Instant::now();
    for i in 0..20 {
        value = add(&fresh, &format!("warm-{i}"), value, 1).await;
    }
    let warm = started.elapsed();
    assert_eq!(value, 40);
    eprintln!(
        "python chain of 20 adds: {total:?} with a fresh executor (worker start included), then {:?} per task with a warm worker",
        warm / 20
    );
    fresh.executor.shutdown().await;
}

#[tokio::test]
async fn python_component_failure_is_exit_code_1_with_traceback() {
    if !python_tests_enabled("python_component_failure_is_exit_code_1_with_traceback") {
        return;
    }
    let fixture = python_fixture();
    let argv = component_argv(
        "def boom(a: int):\n    raise ValueError(f'bad value {a}')\n",
        "boom",
    );
    let (task, _) = python_task(&fixture, "boom", &argv, json!({"a": 7}));
    let mut running = fixture.start(task).await;
    assert_eq!(running.wait().await, ExitOutcome::Exited(1));
    let log = fixture.log("boom");
    assert!(log.contains("Traceback"), "{log}");
    assert!(log.contains("ValueError: bad value 7"), "{log}");

    let argv = component_argv(
        "def leave(a: int):\n    import sys\n    sys.exit(a)\n",
        "leave",
    );
    let (task, _) = python_task(&fixture, "leave", &argv, json!({"a": 5}));
    assert_eq!(
        fixture.start(task).await.wait().await,
        ExitOutcome::Exited(5)
    );
}

#[tokio::test]
async fn python_component_sees_env_cwd_and_managed_python() {
    if !python_tests_enabled("python_component_sees_env_cwd_and_managed_python") {
        return;
    }
    let fixture = python_fixture();
    let source = "def show(a: int):\n    import os, sys, shutil\n    print('GREETING=' + os.environ['GREETING'])\n    print('CWD=' + os.getcwd())\n    print('PREFIX=' + sys.prefix)\n    print('PYTHON3=' + str(shutil.which('python3')))\n    print('RUNTIME=' + os.environ.get('_KFP_RUNTIME', ''))\n";
    let argv = component_argv(source, "show");
    let (mut task, _) = python_task(&fixture, "show", &argv, json!({"a": 1}));
    task.env.push(("GREETING".into(), "hello".into()));
    let work_dir = task.work_dir.canonicalize().unwrap();
    let mut running = fixture.start(task).await;
    assert_eq!(running.wait().await, ExitOutcome::Exited(0));
    let log = fixture.log("show");
    assert!(log.contains("GREETING=hello\n"), "{log}");
    assert!(
        log.contains(&format!("CWD={}\n", work_dir.display())),
        "{log}"
    );
    let envs_dir = test_envs_dir();
    assert!(
        log.contains(&format!("PREFIX={}", envs_dir.display())),
        "{log}"
    );
    assert!(
        log.contains(&format!("PYTHON3={}", envs_dir.display())),
        "{log}"
    );
    assert!(log.contains("RUNTIME=true\n"), "{log}");
}

#[tokio::test]
async fn python_cancel_kills_the_component_and_its_children() {
    if !python_tests_enabled("python_cancel_kills_the_component_and_its_children") {
        return;
    }
    let fixture = python_fixture();
    let source = "def wait_forever(a: int):\n    import subprocess, time\n    subprocess.Popen(['sleep', '100'])\n    print('ready', flush=True)\n    time.sleep(100)\n";
    let argv = component_argv(source, "wait_forever");
    let (task, _) = python_task(&fixture, "forever", &argv, json!({"a": 1}));
    let mut running = fixture.start(task).await;
    let pgid = running.pid().unwrap();
    assert!(
        eventually(Duration::from_secs(20), || fixture
            .log("forever")
            .contains("ready"))
        .await,
        "component did not start: {}",
        fixture.log("forever")
    );
    assert!(group_members(pgid).len() >= 2, "{:?}", group_members(pgid));
    running.canceler().cancel();
    assert_eq!(running.wait().await, ExitOutcome::Killed);
    assert!(eventually(Duration::from_secs(2), || group_members(pgid).is_empty()).await);
    // The worker survives its children.
    assert_eq!(fixture.executor.python_worker_pids().len(), 1);
}

#[tokio::test]
async fn python_worker_death_is_survived() {
    if !python_tests_enabled("python_worker_death_is_survived") {
        return;
    }
    let fixture = python_fixture();
    assert_eq!(add(&fixture, "before", 1, 1).await, 2);
    let worker = fixture.executor.python_worker_pids()[0];
    // Killed in the middle of a task: the task's child dies with it.
    let source =
        "def slow(a: int):\n    import time\n    print('ready', flush=True)\n    time.sleep(100)\n";
    let (task, _) = python_task(
        &fixture,
        "orphaned",
        &component_argv(source, "slow"),
        json!({"a": 1}),
    );
    let mut running = fixture.start(task).await;
    let pgid = running.pid().unwrap();
    assert!(
        eventually(Duration::from_secs(20), || fixture
            .log("orphaned")
            .contains("ready"))
        .await
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(running.wait().await, ExitOutcome::Signaled(9));
    assert!(eventually(Duration::from_secs(2), || group_members(pgid).is_empty()).await);
    // The next task gets a new worker.
    assert_eq!(add(&fixture, "after", 2, 2).await, 4);
    let workers = fixture.executor.python_worker_pids();
    assert_eq!(workers.len(), 1);
    assert_ne!(workers[0], worker);
    fixture.executor.shutdown().await;
    assert!(eventually(Duration::from_secs(2), || !process_alive(workers[0])).await);
}

#[tokio::test]
async fn python_startup_variables_run_a_fresh_interpreter() {
    if !python_tests_enabled("python_startup_variables_run_a_fresh_interpreter") {
        return;
    }
    let fixture = python_fixture();
    let extra = fixture.dir.path().join("extra-modules");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("coracle_extra.py"), "VALUE = 40\n").unwrap();
    let source = "def use_extra(a: int) -> int:\n    import coracle_extra\n    return coracle_extra.VALUE + a\n";
    let (mut task, outputs) = python_task(
        &fixture,
        "pythonpath",
        &component_argv(source, "use_extra"),
        json!({"a": 2}),
    );
    task.env
        .push(("PYTHONPATH".into(), extra.display().to_string()));
    let mut running = fixture.start(task).await;
    assert_eq!(
        running.wait().await,
        ExitOutcome::Exited(0),
        "{}",
        fixture.log("pythonpath")
    );
    assert_eq!(output_of(&outputs)["parameterValues"]["Output"], 42);
    assert!(
        fixture.executor.python_worker_pids().is_empty(),
        "PYTHONPATH needs its own interpreter"
    );
}

#[tokio::test]
async fn python_unrecognised_variant_runs_as_given_in_the_managed_env() {
    if !python_tests_enabled("python_unrecognised_variant_runs_as_given_in_the_managed_env") {
        return;
    }
    let fixture = python_fixture();
    let mut argv = add_numbers_argv();
    argv[2] = argv[2].replace(
        "--no-warn-script-location",
        "--no-warn-script-location --no-cache-dir",
    );
    assert!(coracle_exec::parse_kfp_bootstrap(&argv).is_none());
    let (task, outputs) = python_task(&fixture, "variant", &argv, json!({"a": 20, "b": 22}));
    let mut running = fixture.start(task).await;
    assert_eq!(
        running.wait().await,
        ExitOutcome::Exited(0),
        "{}",
        fixture.log("variant")
    );
    assert_eq!(output_of(&outputs)["parameterValues"]["Output"], 42);
    assert!(
        fixture.executor.python_worker_pids().is_empty(),
        "ran through sh, not the worker"
    );
}

#[tokio::test]
async fn python_use_env_runs_in_the_named_env() {
    if !python_tests_enabled("python_use_env_runs_in_the_named_env") {
        return;
    }
    // Make sure the managed env exists, then name it as the user's own environment.
    let managed = python_fixture();
    assert_eq!(add(&managed, "prepare", 0, 0).await, 0);
    let env_root = std::fs::read_dir(test_envs_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with("py3")
                && p.join("bin/python").exists()
                && p.join("lib").read_dir().is_ok()
                && std::fs::read_to_string(p.join("coracle-env.json"))
                    .is_ok_and(|r| r.contains("\"kfp==2.14.6\"") && !r.contains("yapf"))
        })
        .expect("a managed env with kfp 2.14.6");
    let fixture = Fixture::with_python(|python| {
        python.envs_dir = test_envs_dir().join("unused-by-use-env");
        python.use_env = Some(env_root.clone());
    });
    let (task, outputs) = python_task(
        &fixture,
        "use-env",
        &add_numbers_argv(),
        json!({"a": 3, "b": 4}),
    );
    let mut running = fixture.start(task).await;
    assert_eq!(
        running.wait().await,
        ExitOutcome::Exited(0),
        "{}",
        fixture.log("use-env")
    );
    assert_eq!(output_of(&outputs)["parameterValues"]["Output"], 7);
}

#[tokio::test]
async fn python_image_commands_run_in_a_bare_managed_env() {
    if !python_tests_enabled("python_image_commands_run_in_a_bare_managed_env") {
        return;
    }
    let fixture = python_fixture();
    let mut task = fixture.task(
        "bare",
        &[
            "python3",
            "-c",
            "import sys; print(sys.prefix); print(sys.version_info[:2])",
        ],
    );
    task.image = "python:3.11".into();
    let mut running = fixture.start(task).await;
    assert_eq!(
        running.wait().await,
        ExitOutcome::Exited(0),
        "{}",
        fixture.log("bare")
    );
    let log = fixture.log("bare");
    let prefix = log
        .lines()
        .find(|line| !line.starts_with("coracle: "))
        .unwrap_or_default();
    assert!(
        prefix.starts_with(&test_envs_dir().display().to_string()),
        "{log}"
    );
    assert!(log.contains("(3, 11)"), "{log}");
}

#[tokio::test]
async fn python_components_run_in_parallel() {
    if !python_tests_enabled("python_components_run_in_parallel") {
        return;
    }
    let fixture = python_fixture();
    let source = "def slow_add(a: int, b: int) -> int:\n    import time\n    time.sleep(0.5)\n    return a + b\n";
    let argv = component_argv(source, "slow_add");
    let started = Instant::now();
    let mut running = Vec::new();
    for i in 0..8 {
        let (task, outputs) = python_task(
            &fixture,
            &format!("parallel-{i}"),
            &argv,
            json!({"a": i, "b": 100}),
        );
        running.push((i, outputs, fixture.start(task).await));
    }
    for (i, outputs, mut task) in running {
        assert_eq!(
            task.wait().await,
            ExitOutcome::Exited(0),
            "{}",
            fixture.log(&format!("parallel-{i}"))
        );
        assert_eq!(output_of(&outputs)["parameterValues"]["Output"], i + 100);
    }
    // Eight half-second sleeps at once, not one after the other (the worker may be cold).
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn python_env_creation_failure_names_the_env_and_its_log() {
    if !python_tests_enabled("python_env_creation_failure_names_the_env_and_its_log") {
        return;
    }
    let fixture = Fixture::new();
    let mut argv = add_numbers_argv();
    // A requirement that is a missing local path: pip fails at once, without network.
    argv[2] = argv[2].replace(
        "--no-warn-script-location 'kfp",
        "--no-warn-script-location '/nonexistent/coracle-no-such-package' && python3 -m pip install --quiet --no-warn-script-location 'kfp",
    );
    let bootstrap = coracle_exec::parse_kfp_bootstrap(&argv).expect("still the standard bootstrap");
    assert_eq!(bootstrap.packages, ["/nonexistent/coracle-no-such-package"]);
    let (task, _) = python_task(&fixture, "bad-env", &argv, json!({"a": 1, "b": 1}));
    let error = fixture
        .executor
        .launch(task)
        .await
        .expect_err("env creation fails");
    let Error::PythonEnv { env, log, .. } = &error else {
        panic!("unexpected error: {error}");
    };
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "create python environment {env}: pip install failed"
        )),
        "{message}"
    );
    assert!(message.contains(&log.display().to_string()), "{message}");
    assert!(
        std::fs::read_to_string(log)
            .unwrap()
            .contains("coracle-no-such-package")
    );
    assert!(
        fixture
            .log("bad-env")
            .contains("failed to create python environment"),
        "{}",
        fixture.log("bad-env")
    );
    let envs_dir = fixture.dir.path().join("python-envs");
    assert!(
        !envs_dir.join(env).exists(),
        "a failed env is not published"
    );
}

#[tokio::test]
async fn a_named_interpreter_is_the_one_used() {
    let fixture =
        Fixture::with_python(|python| python.interpreter = Some("/nonexistent/python3.99".into()));
    let mut task = fixture.task("named", &["python3", "-c", "print(1)"]);
    task.image = "python:3.11".into();
    let error = fixture
        .executor
        .launch(task)
        .await
        .expect_err("no such interpreter");
    assert!(matches!(error, Error::Interpreter { .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("use python interpreter /nonexistent/python3.99: "),
        "{error}"
    );
    // Non-Python images never need it.
    let mut running = fixture.start(fixture.task("host", &["true"])).await;
    assert_eq!(running.wait().await, ExitOutcome::Exited(0));
}

#[tokio::test]
async fn offline_mode_never_runs_pip() {
    if pyenv_python().is_none() || !corpus_dir().is_dir() {
        eprintln!("skipped offline_mode_never_runs_pip: needs python3 on PATH and the kfp corpus");
        return;
    }
    let fixture = Fixture::with_python(|python| python.offline = true);
    let mut argv = add_numbers_argv();
    argv[2] = argv[2].replace("kfp==2.14.6", "kfp==0.0.0.dev0");
    let (task, _) = python_task(&fixture, "offline", &argv, json!({"a": 1, "b": 1}));
    let error = fixture
        .executor
        .launch(task)
        .await
        .expect_err("offline and cold fails");
    assert!(matches!(error, Error::Offline { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("kfp==0.0.0.dev0"), "{message}");
    assert!(
        message.contains("offline mode does not run pip"),
        "{message}"
    );
    assert!(
        fixture
            .log("offline")
            .contains("offline mode does not run pip")
    );
    assert!(
        !fixture.dir.path().join("python-envs").exists()
            || std::fs::read_dir(fixture.dir.path().join("python-envs"))
                .unwrap()
                .next()
                .is_none(),
        "nothing created"
    );
}

fn pyenv_python() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .find(|candidate| candidate.exists())
}
