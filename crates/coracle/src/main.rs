//! `coracle`: Kubeflow Pipelines as one program. This binary is the command line: it parses
//! arguments, opens the data directory, and hands work to the library crates.
//!
//! Exit codes: 0 the run succeeded (or the command did its job), 1 the run failed or was
//! canceled, 2 the input was bad (nothing ran).

mod client_cmd;
mod home;
mod resource_cmd;
mod run_cmd;
mod runs_cmd;
mod server_cmd;
mod view;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "coracle",
    version,
    about = "Run Kubeflow Pipelines on one machine",
    propagate_version = true
)]
struct Cli {
    /// Data directory: the run database, task logs, artifacts and Python environments.
    #[arg(long, global = true, env = "CORACLE_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run a compiled pipeline (KFP IR as YAML/JSON, or a .zip/.tar.gz package); or, with
    /// submit|list|get|wait, work with the runs of a coracle server.
    Run(client_cmd::RunCommand),
    /// Pipelines on a coracle server: upload, list.
    Pipeline {
        #[command(subcommand)]
        command: client_cmd::PipelineCommand,
    },
    /// Experiments on a coracle server: create, list.
    Experiment {
        #[command(subcommand)]
        command: client_cmd::ExperimentCommand,
    },
    /// Look at recorded runs.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Serve KFP's REST API (`kfp.Client` works against it) on the data directory.
    Server(server_cmd::ServerArgs),
    /// Named volumes (stand-ins for PersistentVolumeClaims) that tasks mount.
    Volume {
        #[command(subcommand)]
        command: resource_cmd::VolumeCommand,
    },
    /// Secrets that tasks get as environment variables or files.
    Secret {
        #[command(subcommand)]
        command: resource_cmd::SecretCommand,
    },
    /// Config maps that tasks get as environment variables or files.
    #[command(name = "configmap", alias = "config-map")]
    ConfigMap {
        #[command(subcommand)]
        command: resource_cmd::ConfigMapCommand,
    },
    /// Print the logs of a run's tasks.
    Logs {
        /// Run id (a unique prefix is enough).
        run_id: String,
        /// Task name or path; all tasks when left out.
        task: Option<String>,
    },
}

#[derive(Subcommand)]
enum RunsCommand {
    /// List runs, newest first.
    List {
        #[arg(long, default_value_t = 20, env = "CORACLE_LIMIT")]
        limit: i64,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text, env = "CORACLE_OUTPUT")]
        output: OutputFormat,
    },
    /// Run a failed or canceled run again from where it stopped: tasks that succeeded are
    /// kept, the others run as new attempts of the same run.
    Retry {
        /// Run id (a unique prefix is enough).
        run_id: String,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Stop a run that is going on, from any terminal: its tasks are stopped and it ends CANCELED.
    Terminate {
        /// Run id (a unique prefix is enough).
        run_id: String,
    },
    /// Show one run: state, parameters, tasks and outputs.
    Get {
        /// Run id (a unique prefix is enough).
        run_id: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text, env = "CORACLE_OUTPUT")]
        output: OutputFormat,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[value(alias = "table")]
    Text,
    Json,
}

#[derive(Args)]
pub struct RunArgs {
    /// The pipeline file.
    pipeline: PathBuf,
    /// A pipeline parameter, NAME=VALUE (repeatable); the value is read as the parameter's type.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// A JSON file with an object of parameters; -p values win over it.
    #[arg(long = "params", value_name = "FILE", env = "CORACLE_PARAMS")]
    params_file: Option<PathBuf>,
    /// Where artifacts go (default: the pipeline's local root, else HOME/artifacts).
    #[arg(long, env = "CORACLE_PIPELINE_ROOT", value_name = "DIR")]
    pipeline_root: Option<String>,
    /// A name for the run.
    #[arg(long, env = "CORACLE_RUN_NAME")]
    name: Option<String>,
    #[command(flatten)]
    exec: ExecArgs,
}

/// How runs are carried out and shown: shared by `run` and `runs retry`.
#[derive(Args)]
pub struct ExecArgs {
    /// Where tasks run: local processes, or containers of a Docker engine (each task in its
    /// image, volumes and limits as on a cluster).
    #[arg(long, value_enum, default_value_t = ExecutorKind::Process, env = "CORACLE_EXECUTOR")]
    executor: ExecutorKind,
    /// The Docker engine to use (`unix:///var/run/docker.sock`, `tcp://HOST:PORT`); default:
    /// DOCKER_HOST, else the local socket.
    #[arg(long, env = "CORACLE_DOCKER_HOST", value_name = "URL")]
    docker_host: Option<String>,
    /// How to print the result: text, or JSON on stdout for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, env = "CORACLE_OUTPUT")]
    output: OutputFormat,
    /// How many tasks may run at once (default: the number of CPU cores).
    #[arg(long, env = "CORACLE_PARALLELISM")]
    parallelism: Option<usize>,
    /// Python interpreter to build managed environments for Python components from.
    #[arg(long, env = "CORACLE_PYTHON", value_name = "PATH")]
    python: Option<PathBuf>,
    /// An existing virtual environment to run Python components in, as it is (no installs).
    #[arg(
        long,
        env = "CORACLE_PYTHON_ENV",
        value_name = "DIR",
        conflicts_with = "python"
    )]
    python_env: Option<PathBuf>,
    /// Where managed Python environments are kept (default: HOME/python-envs); several data
    /// directories may share one.
    #[arg(long, env = "CORACLE_PYTHON_ENVS_DIR", value_name = "DIR")]
    python_envs_dir: Option<PathBuf>,
    /// Never install packages; Python components need a ready environment.
    #[arg(long, env = "CORACLE_OFFLINE")]
    offline: bool,
    /// Run every task, reusing no cached result (results are still cached for later runs).
    #[arg(long, env = "CORACLE_NO_CACHE")]
    no_cache: bool,
    /// Reuse cached results only if younger than this: seconds, or a number with s, m, h or d.
    #[arg(long, env = "CORACLE_CACHE_MAX_STALENESS", value_name = "AGE", value_parser = parse_age)]
    cache_max_staleness: Option<std::time::Duration>,
    /// Do not stream task logs to the terminal (they are still written to files).
    #[arg(long, env = "CORACLE_NO_LOGS")]
    no_logs: bool,
    /// Stop the run and fail it once it has taken this long (90s, 15m, 2h).
    #[arg(long, env = "CORACLE_TIMEOUT", value_name = "DURATION", value_parser = parse_age)]
    timeout: Option<std::time::Duration>,
    /// Fail a task attempt that takes longer than this; `NAME=DURATION` sets it for the tasks
    /// of that name only. Repeatable. A timed-out attempt is retried if the task has retries.
    #[arg(long, value_name = "[TASK=]DURATION", value_parser = parse_task_timeout)]
    task_timeout: Vec<(Option<String>, std::time::Duration)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// Local processes (Python components in managed environments).
    Process,
    /// Docker containers.
    Docker,
}

/// `5m` or `train=5m`.
fn parse_task_timeout(text: &str) -> Result<(Option<String>, std::time::Duration), String> {
    match text.split_once('=') {
        Some((task, limit)) if !task.trim().is_empty() => {
            Ok((Some(task.trim().to_string()), parse_age(limit)?))
        }
        Some(_) => Err(format!("{text:?}: the task name before '=' is empty")),
        None => Ok((None, parse_age(text)?)),
    }
}

/// `90`, `90s`, `15m`, `2h`, `7d` → a duration.
fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let factor = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an age like 90s, 15m, 2h or 7d"))?;
    if !(value >= 0.0 && value.is_finite()) {
        return Err(format!("{text:?} is not an age like 90s, 15m, 2h or 7d"));
    }
    Ok(std::time::Duration::from_secs_f64(value * factor))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CORACLE_LOG")
                .unwrap_or_else(|_| "warn,coracle_exec=info".into()),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        let home = home::resolve(cli.home)?;
        match cli.command {
            Commands::Run(client_cmd::RunCommand::Local(args)) => run_cmd::run(&home, args).await,
            Commands::Run(client_cmd::RunCommand::Client(command)) => client_cmd::run(command),
            Commands::Pipeline { command } => client_cmd::pipeline(command),
            Commands::Experiment { command } => client_cmd::experiment(command),
            Commands::Runs {
                command: RunsCommand::List { limit, output },
            } => runs_cmd::list(&home, limit, output).await,
            Commands::Runs {
                command: RunsCommand::Get { run_id, output },
            } => runs_cmd::get(&home, &run_id, output).await,
            Commands::Runs {
                command: RunsCommand::Retry { run_id, exec },
            } => run_cmd::retry(&home, &run_id, exec).await,
            Commands::Runs {
                command: RunsCommand::Terminate { run_id },
            } => runs_cmd::terminate(&home, &run_id).await,
            Commands::Server(args) => server_cmd::run(&home, args).await,
            Commands::Volume { command } => resource_cmd::volume(&home, command).await,
            Commands::Secret { command } => resource_cmd::secret(&home, command).await,
            Commands::ConfigMap { command } => resource_cmd::config_map(&home, command).await,
            Commands::Logs { run_id, task } => {
                runs_cmd::logs(&home, &run_id, task.as_deref()).await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// A command's failure: a user mistake (exit 2) or something that went wrong (exit 1).
#[derive(Debug)]
pub struct CliError {
    pub user_error: bool,
    pub error: anyhow::Error,
}

impl CliError {
    pub fn user(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            user_error: true,
            error: error.into(),
        }
    }
    fn exit_code(&self) -> u8 {
        if self.user_error { 2 } else { 1 }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError {
            user_error: false,
            error: e.into(),
        }
    }
}
