use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coracle_exec::{
    LogLine, ProcessExecutor, ProcessExecutorOptions, PythonOptions, RunningTask, TaskLaunch,
};
use tokio::sync::mpsc::UnboundedReceiver;

/// A scratch directory with an executor whose managed envs go to `envs_dir`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub executor: ProcessExecutor,
    pub lines: UnboundedReceiver<LogLine>,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_python(|_| {})
    }

    pub fn with_python(adjust: impl FnOnce(&mut PythonOptions)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (sender, lines) = tokio::sync::mpsc::unbounded_channel();
        let mut python = PythonOptions {
            envs_dir: dir.path().join("python-envs"),
            interpreter: None,
            use_env: None,
            offline: false,
        };
        adjust(&mut python);
        let executor = ProcessExecutor::new(ProcessExecutorOptions {
            python,
            log_lines: Some(sender),
        });
        Fixture {
            dir,
            executor,
            lines,
        }
    }

    pub fn task(&self, key: &str, argv: &[&str]) -> TaskLaunch {
        let work_dir = self.dir.path().join(format!("work-{key}"));
        std::fs::create_dir_all(&work_dir).expect("work dir");
        TaskLaunch {
            task_key: key.to_string(),
            image: "alpine".to_string(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            work_dir,
            log_path: self.dir.path().join(format!("{key}.log")),
            ..Default::default()
        }
    }

    pub async fn start(&self, task: TaskLaunch) -> RunningTask {
        let key = task.task_key.clone();
        self.executor
            .launch(task)
            .await
            .unwrap_or_else(|error| panic!("launch {key}: {error}"))
    }

    pub fn log(&self, key: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{key}.log"))).expect("log file")
    }

    pub fn drain_lines(&mut self) -> Vec<LogLine> {
        let mut lines = Vec::new();
        while let Ok(line) = self.lines.try_recv() {
            lines.push(line);
        }
        lines
    }
}

/// Pids of live (non-zombie) processes whose process group is `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let mut members = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return members;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...
        let Some(after_comm) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
            members.push(pid);
        }
    }
    members
}

pub fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("Z");
    state != "Z"
}

/// Polls `condition` until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Gate for tests that need pip and network.
pub fn python_tests_enabled(test: &str) -> bool {
    if std::env::var("CORACLE_TEST_PYTHON").as_deref() != Ok("1") {
        eprintln!(
            "skipped {test}: set CORACLE_TEST_PYTHON=1 to run it (creates Python envs with pip)"
        );
        false
    } else if !corpus_dir().is_dir() {
        eprintln!(
            "skipped {test}: no kfp corpus at {}",
            corpus_dir().display()
        );
        false
    } else {
        true
    }
}

/// Where managed envs for tests live (stable, so CI creates them once).
pub fn test_envs_dir() -> PathBuf {
    std::env::var_os("CORACLE_TEST_ENVS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("coracle-exec-test-envs"))
}

/// The kfp corpus beside the repository (`../shared/kfp-corpus`).
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kfp-corpus")
}

/// All `(file, executor name, container)` of a compiled pipeline file.
pub fn executors(path: &Path) -> Vec<(String, serde_json::Value)> {
    let text = std::fs::read_to_string(path).expect("corpus file");
    let Ok(documents) = serde_saphyr::from_multiple::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for document in documents {
        let Some(executors) = document
            .pointer("/deploymentSpec/executors")
            .and_then(|e| e.as_object())
        else {
            continue;
        };
        for (name, executor) in executors {
            if let Some(container) = executor.get("container") {
                found.push((name.clone(), container.clone()));
            }
        }
    }
    found
}

/// `command + args` of a container, as strings.
pub fn container_argv(container: &serde_json::Value) -> Vec<String> {
    ["command", "args"]
        .iter()
        .flat_map(|key| {
            container
                .get(*key)
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default()
        })
        .map(|v| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        })
        .collect()
}
