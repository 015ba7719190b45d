//! `coracle server`: KFP's REST API on the data directory, with the runs it creates carried
//! out in this process by the same engine as `coracle run`.
//!
//! Start: open the store, bind, print `coracle server listening on http://ADDR` on stdout,
//! resume the runs an earlier server left unfinished, start the recurring-run scheduler.
//!
//! Stop (SIGTERM or Ctrl-C): stop accepting requests and the scheduler, stop driving runs and
//! kill their tasks.
//! Runs in flight are left RUNNING (`driver = 'server'`): the next start resumes them, keeping
//! every task that succeeded and running again the attempts that were cut short (recorded
//! FAILED, `interrupted`). A kill -9 leaves the same state, so both ways of stopping are
//! recovered from alike. A second signal exits at once.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use coracle_orchestrator::Orchestrator;
use coracle_server::AppState;
use tokio::io::AsyncWriteExt;

use crate::{CliError, ExecArgs, home, run_cmd};

/// How long requests in progress may take to finish once the server is told to stop.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

#[derive(Args)]
pub struct ServerArgs {
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8888", env = "CORACLE_LISTEN")]
    pub listen: String,
    /// How runs are carried out (`--output`, `--no-logs` do not apply: task logs go to files).
    #[command(flatten)]
    pub exec: ExecArgs,
}

pub async fn run(home: &Path, args: ServerArgs) -> Result<ExitCode, CliError> {
    let store = home::open_store(home).await?;
    let executor = run_cmd::make_executor(home, &args.exec, None).await?;
    let options = run_cmd::run_options(home, &args.exec);
    let orchestrator = Orchestrator::new(store.clone(), executor.clone());
    let state = AppState::new(store.clone(), orchestrator, home.to_path_buf(), options);

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))
        .map_err(CliError::user)?;
    let address = listener
        .local_addr()
        .context("failed to read the address the server listens on")?;
    // Stdout, flushed, so that scripts and tests can wait for it.
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("coracle server listening on http://{address}\n").as_bytes())
        .await
        .context("failed to write to stdout")?;
    stdout.flush().await.context("failed to write to stdout")?;
    eprintln!("data directory: {}", home.display());

    let resumed = coracle_server::runs::resume_unfinished(&state)
        .await
        .map_err(|e| anyhow!("failed to resume unfinished runs: {e}"))?;
    if !resumed.is_empty() {
        eprintln!("resuming {} unfinished run(s)", resumed.len());
    }
    // Fires the runs of recurring runs as they come due (stopped before the runs are).
    let scheduler = coracle_server::recurring::spawn_scheduler(state.clone());

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let signals = tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("stopping (again to exit at once)...");
        let _ = stop_tx.send(());
        wait_for_signal().await;
        eprintln!("exiting without waiting");
        std::process::exit(1);
    });
    let app = coracle_server::router(state.clone());
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stop_rx.await;
        let _ = drained_tx.send(());
    });
    let serving = tokio::spawn(async move { server.await });
    // Once told to stop, requests in progress get a little while to finish.
    let outcome = tokio::select! {
        outcome = serving => Some(outcome),
        _ = async {
            let _ = drained_rx.await;
            tokio::time::sleep(DRAIN_LIMIT).await;
        } => None,
    };
    scheduler.abort();
    let _ = scheduler.await;
    state.runs.shutdown().await;
    executor.shutdown().await;
    store.close().await;
    signals.abort();
    match outcome {
        Some(Ok(Err(error))) => Err(anyhow!("the server failed: {error}").into()),
        Some(Err(error)) => Err(anyhow!("the server stopped: {error}").into()),
        Some(Ok(Ok(()))) | None => {
            eprintln!("stopped");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(term) => { term.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
