//! `coracle pipeline|experiment …` and `coracle run submit|list|get|wait`: the command line as a
//! client of a real `coracle server` (started here on a free port, with its own data directory).

use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Home;

/// `repeat-word(word: str = "ab", times: int = 2) -> str`: one container task that writes `word`
/// `times` times, and fails when `word` is "fail". Compiled by kfp 2.14.6.
const REPEAT_WORD: &str = r#"# PIPELINE DEFINITION
# Name: repeat-word
# Inputs:
#    times: int [Default: 2.0]
#    word: str [Default: 'ab']
# Outputs:
#    Output: str
components:
  comp-repeat:
    executorLabel: exec-repeat
    inputDefinitions:
      parameters:
        times:
          parameterType: NUMBER_INTEGER
        word:
          parameterType: STRING
    outputDefinitions:
      parameters:
        out:
          parameterType: STRING
deploymentSpec:
  executors:
    exec-repeat:
      container:
        args:
        - '{{$.inputs.parameters[''word'']}}'
        - '{{$.inputs.parameters[''times'']}}'
        - '{{$.outputs.parameters[''out''].output_file}}'
        command:
        - sh
        - -c
        - if [ "$0" = fail ]; then exit 1; fi; s=""; i=0; while [ $i -lt "$1" ]; do
          s="$s$0"; i=$((i+1)); done; printf "%s" "$s" > "$2"
        image: alpine
pipelineInfo:
  name: repeat-word
root:
  dag:
    outputs:
      parameters:
        Output:
          valueFromParameter:
            outputParameterKey: out
            producerSubtask: repeat
    tasks:
      repeat:
        cachingOptions:
          enableCache: true
        componentRef:
          name: comp-repeat
        inputs:
          parameters:
            times:
              componentInputParameter: times
            word:
              componentInputParameter: word
        taskInfo:
          name: repeat
  inputDefinitions:
    parameters:
      times:
        defaultValue: 2.0
        isOptional: true
        parameterType: NUMBER_INTEGER
      word:
        defaultValue: ab
        isOptional: true
        parameterType: STRING
  outputDefinitions:
    parameters:
      Output:
        parameterType: STRING
schemaVersion: 2.1.0
sdkVersion: kfp-2.14.6
"#;

struct Server {
    home: Home,
    child: Child,
    url: String,
    log: PathBuf,
}

impl Server {
    fn start() -> Server {
        let home = Home::new();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = home.dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = home
            .command()
            .args(["server", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap();
        let mut server = Server {
            home,
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("coracle server exited with {status}: {}", server.log_text());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "coracle server did not listen within 60 s: {}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The pipeline file, written into the data directory.
    fn pipeline_file(&self) -> String {
        let path = self.home.dir.path().join("repeat_word.yaml");
        std::fs::write(&path, REPEAT_WORD).unwrap();
        path.to_str().unwrap().to_string()
    }

    /// `coracle ARGS` against this server.
    fn coracle(&self, args: &[&str]) -> Output {
        self.home
            .command()
            .env("CORACLE_SERVER", &self.url)
            .args(args)
            .output()
            .unwrap()
    }

    /// `coracle ARGS --output json`, which must succeed: its JSON.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.coracle(&all);
        assert!(
            out.status.success(),
            "coracle {args:?} failed: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("coracle {args:?}: not JSON ({e}): {out:?}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ids(list: &Value, key: &str, id: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {list}"))
        .iter()
        .map(|item| item[id].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn upload_submit_wait_get_and_list_through_a_server() {
    let server = Server::start();
    let file = server.pipeline_file();

    let pipeline = server.json(&[
        "pipeline",
        "upload",
        &file,
        "--name",
        "repeat",
        "--description",
        "repeats a word",
    ]);
    assert_eq!(pipeline["display_name"], "repeat");
    assert_eq!(pipeline["description"], "repeats a word");
    let pipeline_id = pipeline["pipeline_id"].as_str().unwrap().to_string();
    let listed = server.json(&["pipeline", "list"]);
    assert_eq!(
        ids(&listed, "pipelines", "pipeline_id"),
        [pipeline_id.as_str()]
    );
    let table = server.coracle(&["pipeline", "list"]);
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(text.starts_with("PIPELINE ID"), "{text}");
    assert!(
        text.contains(&pipeline_id) && text.contains("repeats a word"),
        "{text}"
    );

    let experiment = server.json(&["experiment", "create", "nightly", "--description", "d"]);
    assert_eq!(experiment["display_name"], "nightly");
    let experiment_id = experiment["experiment_id"].as_str().unwrap().to_string();
    let experiments = server.json(&["experiment", "list"]);
    assert!(ids(&experiments, "experiments", "experiment_id").contains(&experiment_id));

    // A file, with a typed parameter, into an experiment given by name.
    let run = server.json(&[
        "run",
        "submit",
        &file,
        "-p",
        "times=3",
        "--experiment",
        "nightly",
        "--name",
        "three-times",
    ]);
    let run_id = run["run_id"].as_str().unwrap().to_string();
    assert_eq!(run["display_name"], "three-times");
    assert_eq!(run["experiment_id"], experiment_id.as_str());
    assert_eq!(run["runtime_config"]["parameters"]["times"], 3);
    let waited = server.coracle(&["run", "wait", &run_id, "--timeout", "60s"]);
    assert_eq!(
        waited.status.code(),
        Some(0),
        "{}{}",
        stdout(&waited),
        stderr(&waited)
    );
    assert!(stdout(&waited).contains("SUCCEEDED"), "{}", stdout(&waited));
    let got = server.json(&["run", "get", &run_id]);
    assert_eq!(got["state"], "SUCCEEDED");
    let shown = server.coracle(&["run", "get", &run_id]);
    let shown = stdout(&shown);
    assert!(
        shown.contains("SUCCEEDED") && shown.contains("three-times"),
        "{shown}"
    );
    assert!(shown.contains("times = 3"), "{shown}");
    // What the run produced, as the store recorded it.
    let recorded = server.home.get(&run_id);
    assert_eq!(recorded["outputs"]["parameters"]["Output"], "ababab");

    // The uploaded pipeline (its latest version), failing on purpose; no experiment given.
    let failing = server.json(&[
        "run",
        "submit",
        "--pipeline-id",
        &pipeline_id,
        "-p",
        "word=fail",
    ]);
    let failing_id = failing["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        failing["pipeline_version_reference"]["pipeline_id"],
        pipeline_id.as_str()
    );
    let waited = server.coracle(&["run", "wait", &failing_id, "--timeout", "60s"]);
    assert_eq!(waited.status.code(), Some(1), "{}", stderr(&waited));
    assert!(stdout(&waited).contains("FAILED"), "{}", stdout(&waited));

    let in_nightly = server.json(&["run", "list", "--experiment", "nightly"]);
    assert_eq!(ids(&in_nightly, "runs", "run_id"), [run_id.as_str()]);
    let by_id = server.json(&["run", "list", "--experiment", &experiment_id]);
    assert_eq!(ids(&by_id, "runs", "run_id"), [run_id.as_str()]);
    let failed = server.json(&["run", "list", "--state", "failed"]);
    assert_eq!(ids(&failed, "runs", "run_id"), [failing_id.as_str()]);
    let all = server.json(&["run", "list"]);
    assert_eq!(
        ids(&all, "runs", "run_id"),
        [failing_id.as_str(), run_id.as_str()],
        "newest first"
    );
    let table = stdout(&server.coracle(&["run", "list"]));
    assert!(table.starts_with("RUN ID"), "{table}");
    assert!(
        table.contains(&run_id) && table.contains(&failing_id),
        "{table}"
    );
}

#[test]
fn server_errors_are_shown_with_exit_codes() {
    let server = Server::start();
    let file = server.pipeline_file();

    // Refused by the server (4xx): exit 2 and the server's message.
    let missing = server.coracle(&["run", "get", "00000000-0000-0000-0000-000000000000"]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    let message = stderr(&missing);
    assert!(message.starts_with("error: "), "{message}");
    assert!(!message.contains("not reachable"), "{message}");

    let first = server.coracle(&["pipeline", "upload", &file, "--name", "once"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("uploaded pipeline"),
        "{}",
        stdout(&first)
    );
    let again = server.coracle(&["pipeline", "upload", &file, "--name", "once"]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).starts_with("error: "), "{}", stderr(&again));

    // Caught before anything is sent: exit 2, and no run exists.
    let unknown = server.coracle(&["run", "submit", &file, "-p", "nope=1"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("nope") && stderr(&unknown).contains("unknown parameter"),
        "{}",
        stderr(&unknown)
    );
    let badly_typed = server.coracle(&["run", "submit", &file, "-p", "times=many"]);
    assert_eq!(badly_typed.status.code(), Some(2));
    assert!(
        stderr(&badly_typed).contains("times"),
        "{}",
        stderr(&badly_typed)
    );
    let not_a_state = server.coracle(&["run", "list", "--state", "DONE"]);
    assert_eq!(not_a_state.status.code(), Some(2));
    let runs = server.json(&["run", "list"]);
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(0), "{runs}");
    let no_experiment = server.coracle(&["run", "list", "--experiment", "nothing-by-this-name"]);
    assert_eq!(
        no_experiment.status.code(),
        Some(2),
        "{}",
        stderr(&no_experiment)
    );

    // No server there: exit 1, and the address in the message.
    let nowhere = server.coracle(&["pipeline", "list", "--server", "http://127.0.0.1:9"]);
    assert_eq!(nowhere.status.code(), Some(1));
    assert!(
        stderr(&nowhere).contains("not reachable at http://127.0.0.1:9"),
        "{}",
        stderr(&nowhere)
    );
}

#[test]
fn run_with_a_file_and_no_subcommand_still_runs_here() {
    let home = Home::new();
    let path = home.dir.path().join("repeat_word.yaml");
    std::fs::write(&path, REPEAT_WORD).unwrap();
    let out = home
        .command()
        .env("CORACLE_SERVER", "http://127.0.0.1:9")
        .args([
            "run",
            path.to_str().unwrap(),
            "-p",
            "word=xy",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["outputs"]["parameters"]["Output"], "xyxy");
}

#[test]
fn submit_a_packaged_pipeline() {
    let server = Server::start();
    let dir = server.home.dir.path().join("package");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("pipeline.yaml"), REPEAT_WORD).unwrap();
    let package = server.home.dir.path().join("repeat.tar.gz");
    let tar = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&package)
        .arg("-C")
        .arg(&dir)
        .arg("pipeline.yaml")
        .status()
        .unwrap();
    assert!(tar.success());
    let run = server.json(&["run", "submit", package.to_str().unwrap(), "-p", "word=pk"]);
    assert_eq!(run["pipeline_spec"]["pipelineInfo"]["name"], "repeat-word");
    let run_id = run["run_id"].as_str().unwrap();
    let waited = server.json(&["run", "wait", run_id, "--timeout", "60s"]);
    assert_eq!(waited["state"], "SUCCEEDED", "{waited}");
    assert_eq!(
        server.home.get(run_id)["outputs"]["parameters"]["Output"],
        "pkpk"
    );
}
