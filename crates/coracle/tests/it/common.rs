use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn pipeline(name: &str) -> PathBuf {
    repo().join("tests/pipelines").join(name)
}

/// Python-component tests run only where a managed environment can be built (CI sets this).
pub fn python_enabled(test: &str) -> bool {
    let on = std::env::var("CORACLE_TEST_PYTHON").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("{test}: not run (set CORACLE_TEST_PYTHON=1 to run Python component tests)");
    }
    on
}

pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_coracle"));
        c.env("CORACLE_HOME", self.dir.path());
        c.env_remove("CORACLE_OUTPUT");
        if let Ok(envs) = std::env::var("CORACLE_TEST_ENVS_DIR") {
            c.env("CORACLE_PYTHON_ENVS_DIR", envs);
        }
        c
    }

    pub fn coracle(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// `coracle run FILE ARGS --output json`: exit code and the JSON result (Null if none).
    pub fn run(&self, file: &str, args: &[&str]) -> (i32, Value, String) {
        let path = pipeline(file);
        let mut all = vec!["run", path.to_str().unwrap(), "--output", "json"];
        all.extend_from_slice(args);
        let out = self.coracle(&all);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap_or(-1), json, stderr)
    }

    /// `coracle runs get RUN --output json`.
    pub fn get(&self, run_id: &str) -> Value {
        let out = self.coracle(&["runs", "get", run_id, "--output", "json"]);
        assert!(
            out.status.success(),
            "runs get failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// The task of a `runs get` result with this id.
pub fn task<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task_id"] == id)
        .unwrap_or_else(|| panic!("no task {id} in {run}"))
}

pub fn interval(task: &Value) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    let parse = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .to_utc()
    };
    (parse(&task["started_at"]), parse(&task["finished_at"]))
}

pub fn overlap(a: &Value, b: &Value) -> bool {
    let (a0, a1) = interval(a);
    let (b0, b1) = interval(b);
    a0 < b1 && b0 < a1
}

/// Processes whose command line contains `needle` (to prove nothing was left behind).
pub fn processes_matching(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}
