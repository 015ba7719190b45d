//! `coracle server` as a process: it prints where it listens, runs what the API creates, and
//! carries on with its unfinished runs after it was killed (kill -9) or stopped (SIGTERM),
//! without running again the tasks that had succeeded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Home, processes_matching};

pub(crate) struct Server {
    child: Child,
    /// `127.0.0.1:PORT`
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `coracle server` on a free port and waits for the line that says where it listens.
fn start_server(home: &Home, name: &str) -> Server {
    start_server_with(home, name, &[])
}

/// [`start_server`] with more arguments (`--executor docker`).
pub(crate) fn start_server_with(home: &Home, name: &str, extra: &[&str]) -> Server {
    let log = std::fs::File::create(home.dir.path().join(format!("{name}.log"))).unwrap();
    let started = Instant::now();
    let mut child = home
        .command()
        .args(["server", "--listen", "127.0.0.1:0", "--parallelism", "2"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("coracle server listening on http://")
        .unwrap_or_else(|| {
            let log = std::fs::read_to_string(home.dir.path().join(format!("{name}.log")));
            panic!("no address in {line:?}; log: {log:?}")
        })
        .to_owned();
    eprintln!("{name} listening after {:?}", started.elapsed());
    Server { child, address }
}

/// One HTTP/1.1 request to `/apis/v2beta1{path}`; the status and the JSON body.
pub(crate) fn call(
    server: &Server,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(&server.address).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} /apis/v2beta1{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        server.address,
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn get_run(server: &Server, run_id: &str) -> Value {
    let (status, run) = call(server, "GET", &format!("/runs/{run_id}"), None);
    assert_eq!(status, 200, "{run}");
    run
}

pub(crate) fn wait_for(
    server: &Server,
    run_id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let run = get_run(server, run_id);
        if done(&run) {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {run:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn api_task<'a>(run: &'a Value, task_id: &str) -> Option<&'a Value> {
    run["run_details"]["task_details"]
        .as_array()?
        .iter()
        .find(|task| task["task_id"] == task_id)
}

/// first → slow (two seconds) → last; each appends to `{state}/{task}.count` when it starts.
fn slow_pipeline() -> Value {
    let mut tasks = serde_json::Map::new();
    let mut components = serde_json::Map::new();
    let mut executors = serde_json::Map::new();
    let input = json!({"parameters": {"state": {"parameterType": "STRING"}}});
    for (name, after, script) in [
        ("first", None, r#"echo ran >> "$0/first.count""#),
        (
            "slow",
            Some("first"),
            r#"echo started >> "$0/slow.count"; sleep 2; echo finished >> "$0/slow.count""#,
        ),
        ("last", Some("slow"), r#"echo ran >> "$0/last.count""#),
    ] {
        tasks.insert(
            name.into(),
            json!({
                "taskInfo": {"name": name},
                "componentRef": {"name": format!("comp-{name}")},
                "dependentTasks": after.into_iter().collect::<Vec<_>>(),
                "inputs": {"parameters": {"state": {"componentInputParameter": "state"}}},
            }),
        );
        components.insert(
            format!("comp-{name}"),
            json!({"executorLabel": format!("exec-{name}"), "inputDefinitions": input}),
        );
        executors.insert(
            format!("exec-{name}"),
            json!({"container": {
                "image": "alpine",
                "command": ["sh", "-c", script, "{{$.inputs.parameters['state']}}"],
            }}),
        );
    }
    json!({
        "pipelineInfo": {"name": "restartable"},
        "root": {"inputDefinitions": input, "dag": {"tasks": tasks}},
        "components": components,
        "deploymentSpec": {"executors": executors},
        "schemaVersion": "2.1.0",
    })
}

/// Submits the slow pipeline and waits until its slow step has started.
fn submit_and_wait_for_the_slow_step(server: &Server, state: &std::path::Path) -> String {
    let (status, run) = call(
        server,
        "POST",
        "/runs",
        Some(&json!({
            "display_name": "restartable",
            "pipeline_spec": slow_pipeline(),
            "runtime_config": {"parameters": {"state": state.display().to_string()}},
        })),
    );
    assert_eq!(status, 200, "{run}");
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    wait_for(server, &run_id, "the slow step to start", |run| {
        api_task(run, "slow").is_some_and(|task| task["state"] == "RUNNING")
            && state.join("slow.count").exists()
    });
    run_id
}

/// After the restart: the run ended SUCCEEDED; `first` ran once, `slow` twice (the attempt cut
/// short is recorded FAILED, interrupted), `last` once; no attempt is left RUNNING or PENDING.
fn check_resumed(home: &Home, server: &Server, run_id: &str, state: &std::path::Path) {
    let run = wait_for(server, run_id, "the resumed run to end", |run| {
        matches!(
            run["state"].as_str(),
            Some("SUCCEEDED" | "FAILED" | "CANCELED")
        )
    });
    assert_eq!(run["state"], "SUCCEEDED", "{run:#}");
    let count = |task: &str| std::fs::read_to_string(state.join(format!("{task}.count"))).unwrap();
    assert_eq!(
        count("first"),
        "ran\n",
        "the task that had succeeded ran again"
    );
    assert_eq!(count("slow"), "started\nstarted\nfinished\n");
    assert_eq!(count("last"), "ran\n");

    let slow = api_task(&run, "slow").unwrap();
    assert_eq!(slow["state"], "SUCCEEDED");
    assert_eq!(slow["attempt"], 1, "{slow}");
    let history: Vec<&str> = slow["state_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["state"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["RUNNING", "FAILED", "RUNNING", "SUCCEEDED"]);
    assert!(
        slow["state_history"][1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{slow}"
    );
    assert_eq!(api_task(&run, "first").unwrap()["attempt"], 0);

    // Every attempt as the store has it.
    let stored = home.get(run_id);
    assert_eq!(stored["state"], "SUCCEEDED");
    let attempts: Vec<(String, i64, String)> = stored["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| {
            (
                task["task_id"].as_str().unwrap().to_owned(),
                task["attempt"].as_i64().unwrap(),
                task["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = attempts.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            ("first".to_owned(), 0, "SUCCEEDED".to_owned()),
            ("last".to_owned(), 0, "SUCCEEDED".to_owned()),
            ("slow".to_owned(), 0, "FAILED".to_owned()),
            ("slow".to_owned(), 1, "SUCCEEDED".to_owned()),
        ],
        "{stored:#}"
    );
}

fn stop(server: &mut Server) -> std::process::ExitStatus {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_server_resumes_its_runs_without_rerunning_finished_tasks() {
    let home = Home::new();
    let state = home.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let needle = state.display().to_string();

    let mut server = start_server(&home, "first-server");
    let run_id = submit_and_wait_for_the_slow_step(&server, &state);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    // What the crash left: the run and its slow attempt RUNNING.
    let left = home.get(&run_id);
    assert_eq!(left["state"], "RUNNING", "{left:#}");
    drop(server);

    let mut server = start_server(&home, "second-server");
    check_resumed(&home, &server, &run_id, &state);
    let status = stop(&mut server);
    assert!(status.success(), "{status}");
    assert_eq!(processes_matching(&needle), Vec::<String>::new());
}

#[test]
fn a_stopped_server_leaves_its_runs_to_the_next_start() {
    let home = Home::new();
    let state = home.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let needle = state.display().to_string();

    let mut server = start_server(&home, "first-server");
    let run_id = submit_and_wait_for_the_slow_step(&server, &state);
    let status = stop(&mut server);
    assert!(status.success(), "{status}");
    // The task it was running is stopped with it; the run waits for the next start.
    assert_eq!(processes_matching(&needle), Vec::<String>::new());
    assert_eq!(home.get(&run_id)["state"], "RUNNING");
    drop(server);

    let mut server = start_server(&home, "second-server");
    check_resumed(&home, &server, &run_id, &state);
    assert!(stop(&mut server).success());
}
