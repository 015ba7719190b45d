//! `coracle runs list|get` and `coracle logs`: reading what the store recorded.

use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use coracle_store::{RunRecord, TaskRecord};
use serde_json::{Value, json};

use crate::{CliError, OutputFormat, home};

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

fn duration(
    start: Option<chrono::DateTime<chrono::Utc>>,
    end: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    match (start, end) {
        (Some(s), Some(e)) => format!("{:.2}s", (e - s).num_milliseconds() as f64 / 1000.0),
        (Some(_), None) => "running".into(),
        _ => "-".into(),
    }
}

fn run_json(run: &RunRecord) -> Value {
    json!({
        "run_id": run.run_id,
        "display_name": run.display_name,
        "pipeline_name": run.pipeline_name,
        "state": run.state.as_str(),
        "error": run.error,
        "parameters": run.parameters,
        "pipeline_root": run.pipeline_root,
        "outputs": run.outputs,
        "created_at": run.created_at.to_rfc3339(),
        "started_at": run.started_at.map(|t| t.to_rfc3339()),
        "finished_at": run.finished_at.map(|t| t.to_rfc3339()),
    })
}

/// The task's pod settings as its attempt recorded them (`pod.json`: volume, secret and
/// config-map names, labels, GPU devices, what was not applied), when it had any.
fn pod_of(t: &TaskRecord) -> Option<Value> {
    let dir = t.work_dir.as_ref()?;
    let text = std::fs::read_to_string(Path::new(dir).join("pod.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn task_json(t: &TaskRecord) -> Value {
    let mut value = json!({
        "task_id": t.task_id,
        "name": t.name,
        "attempt": t.attempt,
        "component": t.component,
        "parent_task_id": t.parent_task_id,
        "state": t.state.as_str(),
        "inputs": t.inputs,
        "outputs": t.outputs,
        "exit_code": t.exit_code,
        "error": t.error,
        "log_path": t.log_path,
        "started_at": t.started_at.map(|t| t.to_rfc3339()),
        "finished_at": t.finished_at.map(|t| t.to_rfc3339()),
    });
    if let Some(pod) = pod_of(t) {
        value["pod"] = pod;
    }
    value
}

pub async fn list(home: &Path, limit: i64, output: OutputFormat) -> Result<ExitCode, CliError> {
    let store = home::open_store(home).await?;
    let runs = store.list_runs(limit.max(1)).await?;
    if output == OutputFormat::Json {
        let list: Vec<Value> = runs.iter().map(run_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<36}  {:<10}  {:<19}  {:>9}  NAME",
        "RUN ID", "STATE", "CREATED", "DURATION"
    );
    for run in &runs {
        println!(
            "{:<36}  {:<10}  {:<19}  {:>9}  {}",
            run.run_id,
            run.state.as_str(),
            time(Some(run.created_at)),
            duration(run.started_at, run.finished_at),
            run.display_name
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn find(home: &Path, run_id: &str) -> Result<(coracle_store::Store, RunRecord), CliError> {
    let store = home::open_store(home).await?;
    let run = store.find_run(run_id).await.map_err(|e| match e {
        e @ (coracle_store::Error::NotFound { .. } | coracle_store::Error::Ambiguous { .. }) => {
            CliError::user(e)
        }
        e => e.into(),
    })?;
    Ok((store, run))
}

pub async fn get(home: &Path, run_id: &str, output: OutputFormat) -> Result<ExitCode, CliError> {
    let (store, run) = find(home, run_id).await?;
    let tasks = store.list_tasks(&run.run_id).await?;
    if output == OutputFormat::Json {
        let mut value = run_json(&run);
        value["tasks"] = Value::Array(tasks.iter().map(task_json).collect());
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("run:        {} ({})", run.run_id, run.display_name);
    println!("pipeline:   {}", run.pipeline_name);
    println!("state:      {}", run.state.as_str());
    if let Some(e) = &run.error {
        println!("error:      {e}");
    }
    println!("created:    {}", time(Some(run.created_at)));
    println!("duration:   {}", duration(run.started_at, run.finished_at));
    println!("parameters: {}", run.parameters);
    if !run.outputs.is_null() {
        println!("outputs:    {}", run.outputs);
    }
    println!();
    println!("{:<40}  {:<9}  {:>9}  ERROR", "TASK", "STATE", "DURATION");
    for t in &tasks {
        println!(
            "{:<40}  {:<9}  {:>9}  {}",
            t.task_id,
            t.state.as_str(),
            duration(t.started_at, t.finished_at),
            t.error.as_deref().unwrap_or("")
        );
    }
    // Pod settings only a cluster acts on: kept, shown here, not applied.
    for t in &tasks {
        let Some(pod) = pod_of(t) else { continue };
        for note in pod["notApplied"].as_array().into_iter().flatten() {
            if let Some(note) = note.as_str() {
                println!("not applied on one machine: {}: {note}", t.task_id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn terminate(home: &Path, run_id: &str) -> Result<ExitCode, CliError> {
    let (store, run) = find(home, run_id).await?;
    match store.request_cancel(&run.run_id).await? {
        coracle_store::RunState::Canceling => {
            eprintln!(
                "run {} is being canceled: the process running it stops its tasks",
                run.run_id
            );
        }
        state => eprintln!("run {} already ended: {}", run.run_id, state.as_str()),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn logs(home: &Path, run_id: &str, task: Option<&str>) -> Result<ExitCode, CliError> {
    let (store, run) = find(home, run_id).await?;
    let tasks = store.list_tasks(&run.run_id).await?;
    let chosen: Vec<&TaskRecord> = match task {
        Some(name) => {
            let matching: Vec<&TaskRecord> = tasks
                .iter()
                .filter(|t| t.task_id == name || t.name == name)
                .collect();
            if matching.is_empty() {
                let known: Vec<&str> = tasks
                    .iter()
                    .filter(|t| t.log_path.is_some())
                    .map(|t| t.task_id.as_str())
                    .collect();
                return Err(CliError::user(anyhow!(
                    "run {} has no task {name:?} (tasks with logs: {})",
                    run.run_id,
                    known.join(", ")
                )));
            }
            matching
        }
        None => tasks.iter().filter(|t| t.log_path.is_some()).collect(),
    };
    let several = chosen.len() > 1;
    for t in chosen {
        let Some(path) = &t.log_path else {
            eprintln!(
                "task {} has no log (it did not run: {})",
                t.task_id,
                t.state.as_str()
            );
            continue;
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow!("failed to read log {path}: {e}"))?;
        if several {
            println!("==> {} (attempt {}) <==", t.task_id, t.attempt);
        }
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}
