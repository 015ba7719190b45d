//! `coracle run`: load, check, run, report.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use coracle_engine::{Resources, RunState};
use coracle_exec::{
    DockerExecutor, DockerOptions, Executor, ProcessExecutor, ProcessExecutorOptions, PythonOptions,
};
use coracle_orchestrator::{Orchestrator, Progress, RunOptions, RunOutcome, TaskTimeouts, io_json};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::view::View;
use crate::{CliError, ExecArgs, ExecutorKind, OutputFormat, RunArgs, home};

pub async fn run(home: &Path, args: RunArgs) -> Result<ExitCode, CliError> {
    let pipeline = coracle_spec::load_path(&args.pipeline).map_err(CliError::user)?;
    let given = collect_params(&args)?;
    let arguments = coracle_spec::resolve_arguments(&pipeline.spec, &given).map_err(|issues| {
        CliError::user(anyhow!(
            "{}: bad parameters:\n{issues}",
            args.pipeline.display()
        ))
    })?;
    let spec = Arc::new(pipeline.spec);
    let mut session = Session::start(home, &args.exec).await?;
    session.options.pipeline_root = args.pipeline_root.clone();
    session.options.run_name = args.name.clone();
    let outcome = session
        .finish(|o, options, progress, cancel| async move {
            o.run(spec, arguments, options, progress, cancel).await
        })
        .await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(coracle_orchestrator::Error::Engine(e)) => {
            return Err(CliError::user(anyhow!(
                "{}: cannot run this pipeline: {e}",
                args.pipeline.display()
            )));
        }
        Err(e @ coracle_orchestrator::Error::NotRunnable(_)) => {
            return Err(CliError::user(anyhow!("{}: {e}", args.pipeline.display())));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(report(&outcome, args.exec.output))
}

/// The executor `exec` asks for; a Docker engine that does not answer is a user error.
pub async fn make_executor(
    home: &Path,
    exec: &ExecArgs,
    log_lines: Option<mpsc::UnboundedSender<coracle_exec::LogLine>>,
) -> Result<Executor, CliError> {
    Ok(match exec.executor {
        ExecutorKind::Process => Executor::Process(ProcessExecutor::new(ProcessExecutorOptions {
            python: PythonOptions {
                envs_dir: exec
                    .python_envs_dir
                    .clone()
                    .unwrap_or_else(|| home.join("python-envs")),
                interpreter: exec.python.clone(),
                use_env: exec.python_env.clone(),
                offline: exec.offline,
            },
            log_lines,
        })),
        ExecutorKind::Docker => Executor::Docker(
            DockerExecutor::connect(DockerOptions {
                host: exec.docker_host.clone(),
                log_lines,
            })
            .await
            .map_err(CliError::user)?,
        ),
    })
}

/// Limits and locations for runs of this process, from the flags and the machine.
pub fn run_options(home: &Path, exec: &ExecArgs) -> RunOptions {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let gpu_devices = coracle_orchestrator::detect_gpus();
    RunOptions {
        home: home.to_path_buf(),
        pipeline_root: None,
        parallelism: exec.parallelism.unwrap_or(cores).max(1),
        capacity: Resources {
            cpu_millis: cores as u64 * 1000,
            memory_bytes: total_memory_bytes(),
            gpus: gpu_devices.len() as u32,
        },
        gpu_devices,
        run_name: None,
        cache_enabled: !exec.no_cache,
        cache_max_staleness: exec.cache_max_staleness,
        timeout: exec.timeout,
        task_timeouts: task_timeouts(&exec.task_timeout),
    }
}

/// `coracle runs retry`: the run again from where it stopped, in this process.
pub async fn retry(home: &Path, run_id: &str, exec: ExecArgs) -> Result<ExitCode, CliError> {
    let store = home::open_store(home).await?;
    let run = store.find_run(run_id).await.map_err(CliError::user)?;
    let session = Session::start(home, &exec).await?;
    let id = run.run_id.clone();
    let outcome = session
        .finish(|o, options, progress, cancel| async move {
            o.retry(&id, options, progress, cancel).await
        })
        .await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(
            e @ (coracle_orchestrator::Error::NotRetryable { .. }
            | coracle_orchestrator::Error::Engine(_)),
        ) => {
            return Err(CliError::user(e));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(report(&outcome, exec.output))
}

/// What one run in this process needs: the orchestrator, the live view, Ctrl-C handling.
struct Session {
    orchestrator: Orchestrator,
    executor: Executor,
    options: RunOptions,
    log_rx: mpsc::UnboundedReceiver<coracle_exec::LogLine>,
    output: OutputFormat,
}

impl Session {
    async fn start(home: &Path, exec: &ExecArgs) -> Result<Session, CliError> {
        let store = home::open_store(home).await?;
        let (log_tx, log_rx) = mpsc::unbounded_channel();
        let executor = make_executor(home, exec, (!exec.no_logs).then_some(log_tx)).await?;
        let orchestrator = Orchestrator::new(store, executor.clone());
        let options = run_options(home, exec);
        Ok(Session {
            orchestrator,
            executor,
            options,
            log_rx,
            output: exec.output,
        })
    }

    /// Runs `go` with the live view and Ctrl-C turned into a cancel, then cleans up.
    async fn finish<F, Fut>(self, go: F) -> Result<RunOutcome, coracle_orchestrator::Error>
    where
        F: FnOnce(
            Orchestrator,
            RunOptions,
            mpsc::UnboundedSender<Progress>,
            watch::Receiver<bool>,
        ) -> Fut,
        Fut: std::future::Future<Output = Result<RunOutcome, coracle_orchestrator::Error>>,
    {
        let (progress_tx, progress_rx) = mpsc::unbounded_channel();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let view = View::start(progress_rx, self.log_rx, self.output == OutputFormat::Json);
        let signals = tokio::spawn(async move {
            wait_for_interrupt().await;
            eprintln!("\ncanceling the run (Ctrl-C again to stop waiting)...");
            let _ = cancel_tx.send(true);
            wait_for_interrupt().await;
            eprintln!("stopped waiting; tasks may still be ending");
            std::process::exit(1);
        });
        let outcome = go(self.orchestrator, self.options, progress_tx, cancel_rx).await;
        signals.abort();
        self.executor.shutdown().await;
        view.finish().await;
        outcome
    }
}

fn report(outcome: &RunOutcome, output: OutputFormat) -> ExitCode {
    let state = match outcome.state {
        RunState::Succeeded => "SUCCEEDED",
        RunState::Failed => "FAILED",
        RunState::Canceled => "CANCELED",
        RunState::Running => "RUNNING",
    };
    if output == OutputFormat::Json {
        let result = json!({
            "run_id": outcome.run_id,
            "run_name": outcome.run_name,
            "state": state,
            "error": outcome.error,
            "outputs": io_json(&outcome.outputs),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&result).unwrap_or_default()
        );
    } else {
        if let (Some((task, log)), RunState::Failed) = (&outcome.failed_task, outcome.state) {
            print_log_tail(task, log);
        }
        if let Some(error) = &outcome.error {
            eprintln!("error: {error}");
        }
        eprintln!("run {} ({}) {state}", outcome.run_id, outcome.run_name);
        print_outputs(&io_json(&outcome.outputs));
    }
    if outcome.state == RunState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn collect_params(args: &RunArgs) -> Result<BTreeMap<String, Value>, CliError> {
    let mut given = BTreeMap::new();
    if let Some(file) = &args.params_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("failed to read parameters file {}", file.display()))
            .map_err(CliError::user)?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("parameters file {} is not valid JSON", file.display()))
            .map_err(CliError::user)?;
        let Value::Object(map) = value else {
            return Err(CliError::user(anyhow!(
                "parameters file {} must hold a JSON object",
                file.display()
            )));
        };
        given.extend(map);
    }
    for param in &args.params {
        let (name, value) = param
            .split_once('=')
            .ok_or_else(|| CliError::user(anyhow!("-p {param:?}: expected NAME=VALUE")))?;
        // The text is read as the declared type when the parameters are resolved.
        given.insert(name.to_string(), Value::String(value.to_string()));
    }
    Ok(given)
}

async fn wait_for_interrupt() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

pub(crate) fn total_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(u64::MAX)
}

/// The last lines of a failed task's log, so the reason is on screen.
fn print_log_tail(task: &str, log: &Path) {
    let Ok(text) = std::fs::read_to_string(log) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(20)..];
    if tail.is_empty() {
        return;
    }
    eprintln!(
        "--- last {} log lines of {task} ({}) ---",
        tail.len(),
        log.display()
    );
    for line in tail {
        eprintln!("{line}");
    }
    eprintln!("---");
}

fn print_outputs(outputs: &Value) {
    let params = outputs["parameters"].as_object().filter(|m| !m.is_empty());
    let artifacts = outputs["artifacts"].as_object().filter(|m| !m.is_empty());
    if params.is_none() && artifacts.is_none() {
        return;
    }
    println!("outputs:");
    for (name, value) in params.into_iter().flatten() {
        println!("  {name} = {value}");
    }
    for (name, list) in artifacts.into_iter().flatten() {
        for a in list.as_array().into_iter().flatten() {
            println!(
                "  {name} = {} ({})",
                a["uri"].as_str().unwrap_or_default(),
                a["type"].as_str().unwrap_or_default()
            );
        }
    }
}

/// The `--task-timeout` flags as the orchestrator takes them (a later flag wins).
pub(crate) fn task_timeouts(flags: &[(Option<String>, std::time::Duration)]) -> TaskTimeouts {
    let mut timeouts = TaskTimeouts::default();
    for (task, limit) in flags {
        match task {
            Some(task) => {
                timeouts.by_task.insert(task.clone(), *limit);
            }
            None => timeouts.default = Some(*limit),
        }
    }
    timeouts
}
