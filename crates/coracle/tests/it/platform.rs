//! The team's kfp-kubernetes pipelines (tests/pipelines: volumes, shared_volume, secrets,
//! pod_settings, gpus) on both backends: the process backend (private mount namespaces) and
//! the Docker backend (a real engine; CI starts dockerd and builds the test images with
//! scripts/docker-setup). Docker tests run when CORACLE_TEST_DOCKER=1.

use std::path::Path;

use serde_json::Value;

use crate::*;

/// Docker-backend tests run only where an engine and the test images are (CI sets this).
fn docker_enabled(test: &str) -> bool {
    let on = std::env::var("CORACLE_TEST_DOCKER").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("{test}: Docker part not run (set CORACLE_TEST_DOCKER=1 with dockerd running)");
    }
    on
}

/// The backends to run a test on: the process backend always, Docker when enabled.
fn backends(test: &str) -> Vec<&'static str> {
    let mut all = vec!["process"];
    if docker_enabled(test) {
        all.push("docker");
    }
    all
}

fn ok(home: &Home, args: &[&str]) -> String {
    let out = home.coracle(args);
    assert!(
        out.status.success(),
        "coracle {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_ok(home: &Home, file: &str, args: &[&str]) -> (Value, String) {
    let (code, result, stderr) = home.run(file, args);
    assert_eq!(code, 0, "{file} {args:?}: {stderr}");
    assert_eq!(result["state"], "SUCCEEDED", "{result}");
    (result, stderr)
}

fn output(result: &Value) -> &str {
    result["outputs"]["parameters"]["Output"]
        .as_str()
        .unwrap_or_else(|| panic!("no Output in {result}"))
}

/// Containers of a run still known to the engine (none may be left).
fn containers_of(run_id: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=coracle.run_id={run_id}"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every file under `dir`, as text where it is text.
fn all_text_under(dir: &Path) -> String {
    let mut text = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap().flatten() {
                stack.push(entry.path());
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}

#[test]
fn a_volume_made_by_the_pipeline_is_written_read_and_deleted() {
    if !python_enabled("a_volume_made_by_the_pipeline_is_written_read_and_deleted") {
        return;
    }
    for backend in backends("a_volume_made_by_the_pipeline_is_written_read_and_deleted") {
        let home = Home::new();
        let (result, _) = run_ok(
            &home,
            "volumes.yaml",
            &["--executor", backend, "-p", "message=written on a volume"],
        );
        assert_eq!(output(&result), "written on a volume", "{backend}");
        let run = home.get(result["run_id"].as_str().unwrap());
        for task in ["createpvc", "write-message", "read-message", "deletepvc"] {
            assert_eq!(
                crate::task(&run, task)["state"],
                "SUCCEEDED",
                "{backend} {task}"
            );
        }
        // DeletePVC removed the volume and its files.
        let volumes: Value =
            serde_json::from_str(&ok(&home, &["volume", "list", "--output", "json"])).unwrap();
        assert_eq!(volumes, Value::Array(vec![]), "{backend}");
        let left: Vec<_> = std::fs::read_dir(home.dir.path().join("volumes"))
            .unwrap()
            .flatten()
            .collect();
        assert!(left.is_empty(), "{backend}: {left:?}");
        if backend == "docker" {
            assert_eq!(
                containers_of(result["run_id"].as_str().unwrap()),
                Vec::<String>::new()
            );
        }
    }
}

#[test]
fn a_named_volume_keeps_what_one_run_wrote_for_the_next() {
    if !python_enabled("a_named_volume_keeps_what_one_run_wrote_for_the_next") {
        return;
    }
    for backend in backends("a_named_volume_keeps_what_one_run_wrote_for_the_next") {
        let home = Home::new();
        ok(&home, &["volume", "create", "team-data", "--size", "1Gi"]);
        let (first, _) = run_ok(
            &home,
            "shared_volume.yaml",
            &["--executor", backend, "-p", "line=first"],
        );
        assert_eq!(output(&first), "first\n", "{backend}");
        let (second, _) = run_ok(
            &home,
            "shared_volume.yaml",
            &["--executor", backend, "-p", "line=second"],
        );
        assert_eq!(output(&second), "first\nsecond\n", "{backend}");
        let on_host = home.dir.path().join("volumes/team-data/log.txt");
        assert_eq!(std::fs::read_to_string(on_host).unwrap(), "first\nsecond\n");
        // The mount was the task's own: nothing was written at /shared on the host.
        assert!(!Path::new("/shared/log.txt").exists(), "{backend}");
        // A volume that does not exist fails the task with a message that says so.
        let (code, result, _) = home.run(
            "shared_volume.yaml",
            &[
                "--executor",
                backend,
                "-p",
                "line=x",
                "-p",
                "volume=nowhere",
            ],
        );
        assert_eq!(code, 1, "{backend}: {result}");
        let error = result["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("volume (PVC) \"nowhere\" does not exist"),
            "{backend}: {error}"
        );
    }
}

#[test]
fn secrets_reach_the_task_as_variables_and_files_and_nowhere_else() {
    if !python_enabled("secrets_reach_the_task_as_variables_and_files_and_nowhere_else") {
        return;
    }
    const PASSWORD: &str = "pw-Zq81-never-shown";
    const TOKEN: &str = "tok-99217405";
    for backend in backends("secrets_reach_the_task_as_variables_and_files_and_nowhere_else") {
        let home = Home::new();
        // Missing secrets fail the task before it starts, naming the secret.
        let (code, result, _) = home.run("secrets.yaml", &["--executor", backend]);
        assert_eq!(code, 1, "{backend}: {result}");
        assert!(
            result["error"]
                .as_str()
                .unwrap_or_default()
                .contains("secret \"db-creds\" does not exist"),
            "{backend}: {result}"
        );
        ok(
            &home,
            &[
                "secret",
                "create",
                "db-creds",
                "--from-literal",
                "username=alice",
                "--from-literal",
                &format!("password={PASSWORD}"),
            ],
        );
        ok(
            &home,
            &[
                "secret",
                "create",
                "api-token",
                "--from-literal",
                &format!("token={TOKEN}"),
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
        let (code, result, stderr) = home.run("secrets.yaml", &["--executor", backend]);
        assert_eq!(code, 0, "{backend}: {stderr}");
        assert_eq!(
            output(&result),
            "user_len=5;password_matches_file=True;token_len=12;mode=fast;mode_file=fast;greeting=hi",
            "{backend}"
        );
        let run_id = result["run_id"].as_str().unwrap();
        let log = std::fs::read_to_string(
            home.dir
                .path()
                .join("runs")
                .join(run_id)
                .join("tasks/use-secrets/task.log"),
        )
        .unwrap();
        assert!(log.contains("password is ***"), "{backend}: {log}");
        // Not in the task's log, the run's files, the run record, the command's output.
        let logs = home.coracle(&["logs", run_id]);
        let run = home.get(run_id).to_string();
        let files = all_text_under(&home.dir.path().join("runs").join(run_id));
        for (what, text) in [
            ("log", log.as_str()),
            ("coracle logs", &String::from_utf8_lossy(&logs.stdout)),
            ("runs get", run.as_str()),
            ("run directory", files.as_str()),
            ("stderr", stderr.as_str()),
            ("result", &result.to_string()),
        ] {
            for secret in [PASSWORD, TOKEN] {
                assert!(!text.contains(secret), "{backend}: {what} shows a secret");
            }
        }
        if backend == "docker" {
            assert_eq!(containers_of(run_id), Vec::<String>::new());
        }

        // The same pipeline through the API of a server on this data directory: the run
        // succeeds, and neither it nor the list of runs shows a secret.
        let server = crate::server::start_server_with(
            &home,
            &format!("server-{backend}"),
            &["--executor", backend],
        );
        let text = std::fs::read_to_string(pipeline("secrets.yaml")).unwrap();
        let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        let body = serde_json::json!({
            "display_name": "secrets through the API",
            "pipeline_spec": {
                "pipeline_spec": documents[0],
                "platform_spec": documents[1],
            },
        });
        let (status, created) = crate::server::call(&server, "POST", "/runs", Some(&body));
        assert_eq!(status, 200, "{backend}: {created}");
        let api_run_id = created["run_id"].as_str().unwrap().to_string();
        let run = crate::server::wait_for(&server, &api_run_id, "the run to end", |run| {
            matches!(run["state"].as_str(), Some("SUCCEEDED" | "FAILED"))
        });
        assert_eq!(run["state"], "SUCCEEDED", "{backend}: {run}");
        let (_, listed) = crate::server::call(&server, "GET", "/runs", None);
        for (what, text) in [("run", run.to_string()), ("runs", listed.to_string())] {
            for secret in [PASSWORD, TOKEN] {
                assert!(
                    !text.contains(secret),
                    "{backend}: API {what} shows a secret"
                );
            }
        }
    }
}

#[test]
fn pod_metadata_empty_dirs_and_limits_as_on_a_cluster() {
    for backend in backends("pod_metadata_empty_dirs_and_limits_as_on_a_cluster") {
        let home = Home::new();
        let (result, stderr) = run_ok(&home, "pod_settings.yaml", &["--executor", backend]);
        let report = output(&result);
        assert!(
            report.starts_with("team=ml;note=hi;named=yes;scratch=ok;"),
            "{backend}: {report}"
        );
        if backend == "docker" {
            // 256Mi and 500m, as the container's cgroup shows them.
            assert!(
                report.ends_with(";memory=268435456;cpu=500m"),
                "{backend}: {report}"
            );
            assert_eq!(
                containers_of(result["run_id"].as_str().unwrap()),
                Vec::<String>::new()
            );
        }
        // Settings with no local meaning: each warned about once, and kept with the task.
        for setting in [
            "node selector {\"disktype\":\"ssd\"}",
            "toleration {",
            "image pull secret \"registry-creds\"",
        ] {
            assert_eq!(
                stderr.matches(setting).count(),
                1,
                "{backend}: {setting} in {stderr}"
            );
        }
        let pod: Value = serde_json::from_str(
            &std::fs::read_to_string(
                home.dir
                    .path()
                    .join("runs")
                    .join(result["run_id"].as_str().unwrap())
                    .join("tasks/inspect/pod.json"),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(pod["labels"]["team"], "ml");
        assert_eq!(pod["notApplied"].as_array().unwrap().len(), 3, "{pod}");
        // `runs get` shows them with the task.
        let run = home.get(result["run_id"].as_str().unwrap());
        assert_eq!(crate::task(&run, "inspect")["pod"], pod);
        let text = ok(&home, &["runs", "get", result["run_id"].as_str().unwrap()]);
        assert!(
            text.contains("not applied on one machine: inspect: node selector"),
            "{text}"
        );
    }
}

#[test]
fn gpu_requests_get_their_own_devices_or_fail_clearly() {
    let home = Home::new();
    let run = |gpus: &str| {
        let path = pipeline("gpus.yaml");
        let out = home
            .command()
            .env("CORACLE_GPUS", gpus)
            .args(["run", path.to_str().unwrap(), "--output", "json"])
            .output()
            .unwrap();
        let result: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), result)
    };
    // Two devices: the two tasks run with one each, different ones.
    let (code, result) = run("0,1");
    assert_eq!(code, Some(0), "{result}");
    let outputs = &result["outputs"]["parameters"];
    let mut devices = vec![
        outputs["first"].as_str().unwrap().to_string(),
        outputs["second"].as_str().unwrap().to_string(),
    ];
    devices.sort();
    assert_eq!(devices, ["0", "1"]);
    // One device: both get it, one after the other.
    let (code, result) = run("3");
    assert_eq!(code, Some(0), "{result}");
    assert_eq!(result["outputs"]["parameters"]["first"], "3");
    assert_eq!(result["outputs"]["parameters"]["second"], "3");
    let record = home.get(result["run_id"].as_str().unwrap());
    assert!(!overlap(
        crate::task(&record, "which-gpu"),
        crate::task(&record, "which-gpu-2")
    ));
    // None: the run fails at once, saying why, instead of waiting for a device.
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
