//! `coracle pipeline …`, `coracle experiment …` and `coracle run submit|list|get|wait`:
//! Coracle as a client of a `coracle server` (KFP's v2beta1 REST API) at `--server URL`.
//!
//! Text output is a table for people; `--output json` prints the API's JSON as the server sent
//! it (a list command that pages prints every item in one object of the API's list shape).
//! A server error (`{code, message}`) is shown as its message, with exit code 2 when the
//! request was refused (4xx) and 1 when the server failed or could not be reached.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::{CliError, OutputFormat, RunArgs};

/// Where the server is and how to print what it answers: shared by every client command.
#[derive(Args, Clone)]
pub struct ClientArgs {
    /// The coracle server (KFP REST API) to talk to.
    #[arg(
        long,
        env = "CORACLE_SERVER",
        default_value = "http://127.0.0.1:8888",
        value_name = "URL"
    )]
    pub server: String,
    /// How to print the answer: a table, or the API's JSON for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, env = "CORACLE_OUTPUT")]
    pub output: OutputFormat,
}

#[derive(Subcommand)]
pub enum PipelineCommand {
    /// Upload a compiled pipeline (YAML/JSON, .zip or .tar.gz) as a new pipeline.
    Upload {
        /// The pipeline file.
        file: PathBuf,
        /// The pipeline's name (default: the name inside the file).
        #[arg(long)]
        name: Option<String>,
        /// A description of the pipeline.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the server's pipelines.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
pub enum ExperimentCommand {
    /// Create an experiment.
    Create {
        /// The experiment's name.
        name: String,
        /// A description of the experiment.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the server's experiments.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `coracle run FILE` runs here; `coracle run submit|list|get|wait` talk to a server.
pub enum RunCommand {
    Local(RunArgs),
    Client(RunClientCommand),
}

// Written out rather than derived: a derived optional `RunArgs` beside the subcommands is
// never filled in, since `RunArgs` holds a flattened group of its own.
impl clap::FromArgMatches for RunCommand {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Self::from_arg_matches_mut(&mut matches.clone())
    }
    fn from_arg_matches_mut(matches: &mut clap::ArgMatches) -> Result<Self, clap::Error> {
        if matches.subcommand_name().is_some() {
            RunClientCommand::from_arg_matches_mut(matches).map(RunCommand::Client)
        } else {
            RunArgs::from_arg_matches_mut(matches).map(RunCommand::Local)
        }
    }
    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for RunCommand {
    fn augment_args(command: clap::Command) -> clap::Command {
        RunClientCommand::augment_subcommands(RunArgs::augment_args(command))
            .args_conflicts_with_subcommands(true)
            .subcommand_negates_reqs(true)
    }
    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

#[derive(Subcommand)]
pub enum RunClientCommand {
    /// Submit a run to the server: a pipeline file, or an uploaded pipeline (version).
    Submit(SubmitArgs),
    /// List the server's runs, newest first.
    List {
        /// Only the runs of this experiment (name or id).
        #[arg(long, value_name = "NAME_OR_ID")]
        experiment: Option<String>,
        /// Only runs in this state (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELING, CANCELED, …).
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one run of the server: state, parameters, tasks.
    Get {
        run_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Wait for a run of the server to end: exit 0 if it succeeded, 1 if not.
    Wait {
        run_id: String,
        /// Give up (exit 1) after this long: 90s, 15m, 2h.
        #[arg(long, value_name = "DURATION", value_parser = crate::parse_age)]
        timeout: Option<Duration>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Args)]
pub struct SubmitArgs {
    /// A pipeline file (YAML/JSON, .zip or .tar.gz) to run as it is.
    #[arg(
        required_unless_present = "pipeline_id",
        conflicts_with = "pipeline_id"
    )]
    file: Option<PathBuf>,
    /// Run an uploaded pipeline: its latest version, or the one given by --version-id.
    #[arg(long)]
    pipeline_id: Option<String>,
    /// The version of --pipeline-id to run.
    #[arg(long, requires = "pipeline_id")]
    version_id: Option<String>,
    /// A pipeline parameter, NAME=VALUE (repeatable); the value is read as the parameter's type.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// The experiment to put the run in (name or id); a name not known yet is created.
    #[arg(long, value_name = "NAME_OR_ID")]
    experiment: Option<String>,
    /// A name for the run (default: the pipeline's name and the time).
    #[arg(long)]
    name: Option<String>,
    /// Where the run's artifacts go (default: the server's).
    #[arg(long, value_name = "DIR")]
    pipeline_root: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

pub fn pipeline(command: PipelineCommand) -> Result<ExitCode, CliError> {
    match command {
        PipelineCommand::Upload {
            file,
            name,
            description,
            client,
        } => upload_pipeline(&file, name, description, &client),
        PipelineCommand::List { client } => {
            let api = Api::new(&client.server);
            let list = api.list_all("/pipelines", "pipelines", &[])?;
            if client.output == OutputFormat::Json {
                return print_json(&list);
            }
            let mut table = Table::new(["PIPELINE ID", "NAME", "CREATED", "DESCRIPTION"]);
            for p in items(&list, "pipelines") {
                table.row([
                    text(p, "pipeline_id"),
                    text(p, "display_name"),
                    time(p, "created_at"),
                    text(p, "description"),
                ]);
            }
            table.print();
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn experiment(command: ExperimentCommand) -> Result<ExitCode, CliError> {
    match command {
        ExperimentCommand::Create {
            name,
            description,
            client,
        } => {
            let api = Api::new(&client.server);
            let experiment = api.create_experiment(&name, description.as_deref())?;
            if client.output == OutputFormat::Json {
                return print_json(&experiment);
            }
            println!(
                "created experiment {} ({})",
                text(&experiment, "experiment_id"),
                text(&experiment, "display_name")
            );
            Ok(ExitCode::SUCCESS)
        }
        ExperimentCommand::List { client } => {
            let api = Api::new(&client.server);
            let list = api.list_all("/experiments", "experiments", &[])?;
            if client.output == OutputFormat::Json {
                return print_json(&list);
            }
            let mut table = Table::new(["EXPERIMENT ID", "NAME", "STORAGE", "CREATED"]);
            for e in items(&list, "experiments") {
                table.row([
                    text(e, "experiment_id"),
                    text(e, "display_name"),
                    text(e, "storage_state"),
                    time(e, "created_at"),
                ]);
            }
            table.print();
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn run(command: RunClientCommand) -> Result<ExitCode, CliError> {
    match command {
        RunClientCommand::Submit(args) => submit(args),
        RunClientCommand::List {
            experiment,
            state,
            client,
        } => list_runs(experiment.as_deref(), state.as_deref(), &client),
        RunClientCommand::Get { run_id, client } => {
            let api = Api::new(&client.server);
            let run = api.get(&format!("/runs/{}", segment(&run_id)), &[])?;
            if client.output == OutputFormat::Json {
                return print_json(&run);
            }
            print_run(&run);
            Ok(ExitCode::SUCCESS)
        }
        RunClientCommand::Wait {
            run_id,
            timeout,
            client,
        } => wait(&run_id, timeout, &client),
    }
}

/// Run states in which a run has ended.
const FINAL_STATES: [&str; 4] = ["SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"];
/// Every run state the API knows.
const RUN_STATES: [&str; 8] = [
    "PENDING",
    "RUNNING",
    "SUCCEEDED",
    "SKIPPED",
    "FAILED",
    "CANCELING",
    "CANCELED",
    "PAUSED",
];

fn upload_pipeline(
    file: &Path,
    name: Option<String>,
    description: Option<String>,
    client: &ClientArgs,
) -> Result<ExitCode, CliError> {
    // Checked here first: a mistake is reported with the file's spec path, and nothing is sent.
    let pipeline = coracle_spec::load_path(file).map_err(CliError::user)?;
    let name = name.unwrap_or_else(|| pipeline.spec.pipeline_info.name.clone());
    let bytes = std::fs::read(file)
        .with_context(|| format!("failed to read {}", file.display()))
        .map_err(CliError::user)?;
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pipeline.yaml".into());
    let api = Api::new(&client.server);
    let mut query = vec![("name", name.as_str())];
    if let Some(d) = &description {
        query.push(("description", d.as_str()));
    }
    let pipeline = api.upload("/pipelines/upload", &query, &file_name, &bytes)?;
    if client.output == OutputFormat::Json {
        return print_json(&pipeline);
    }
    println!(
        "uploaded pipeline {} ({})",
        text(&pipeline, "pipeline_id"),
        text(&pipeline, "display_name")
    );
    Ok(ExitCode::SUCCESS)
}

fn submit(args: SubmitArgs) -> Result<ExitCode, CliError> {
    let api = Api::new(&args.client.server);
    let mut run = Map::new();
    // The pipeline: the file's documents as they are, or a reference to an uploaded version.
    let spec = if let Some(file) = &args.file {
        let pipeline = coracle_spec::load_path(file).map_err(CliError::user)?;
        run.insert("pipeline_spec".into(), pipeline_document(file)?);
        pipeline.spec
    } else {
        let pipeline_id = args.pipeline_id.as_deref().unwrap_or_default();
        let version = match &args.version_id {
            Some(version_id) => api.get(
                &format!(
                    "/pipelines/{}/versions/{}",
                    segment(pipeline_id),
                    segment(version_id)
                ),
                &[],
            )?,
            None => latest_version(&api, pipeline_id)?,
        };
        run.insert(
            "pipeline_version_reference".into(),
            json!({
                "pipeline_id": pipeline_id,
                "pipeline_version_id": text(&version, "pipeline_version_id"),
            }),
        );
        spec_of_version(&version).ok_or_else(|| {
            CliError::from(anyhow!(
                "pipeline version {} holds no pipeline spec Coracle can read",
                text(&version, "pipeline_version_id")
            ))
        })?
    };
    let parameters = typed_parameters(&spec, &args.params)?;
    let name = args.name.clone().unwrap_or_else(|| {
        format!(
            "{} {}",
            spec.pipeline_info.name,
            chrono::Utc::now().format("%Y-%m-%d %H-%M-%S")
        )
    });
    run.insert("display_name".into(), Value::String(name));
    if let Some(experiment) = &args.experiment {
        let experiment = api.experiment_by_name_or_id(experiment, true)?;
        run.insert("experiment_id".into(), experiment["experiment_id"].clone());
    }
    let mut runtime_config = Map::new();
    runtime_config.insert("parameters".into(), Value::Object(parameters));
    if let Some(root) = &args.pipeline_root {
        runtime_config.insert("pipeline_root".into(), Value::String(root.clone()));
    }
    run.insert("runtime_config".into(), Value::Object(runtime_config));
    let created = api.post("/runs", &Value::Object(run))?;
    if args.client.output == OutputFormat::Json {
        return print_json(&created);
    }
    let run_id = text(&created, "run_id");
    println!(
        "submitted run {run_id} ({}): {}",
        text(&created, "display_name"),
        text(&created, "state")
    );
    println!("follow it with: coracle run wait {run_id}");
    Ok(ExitCode::SUCCESS)
}

/// The newest version of a pipeline.
fn latest_version(api: &Api, pipeline_id: &str) -> Result<Value, CliError> {
    let list = api.get(
        &format!("/pipelines/{}/versions", segment(pipeline_id)),
        &[("page_size", "1"), ("sort_by", "created_at desc")],
    )?;
    let newest = items(&list, "pipeline_versions")
        .first()
        .ok_or_else(|| CliError::user(anyhow!("pipeline {pipeline_id} has no versions")))?;
    // A listed version may leave its spec out: the version itself holds it.
    Ok(api.get(
        &format!(
            "/pipelines/{}/versions/{}",
            segment(pipeline_id),
            segment(&text(newest, "pipeline_version_id"))
        ),
        &[],
    )?)
}

/// The spec a pipeline version holds (the spec itself, or `{pipeline_spec, platform_spec}`).
fn spec_of_version(version: &Value) -> Option<coracle_spec::PipelineSpec> {
    let spec = &version["pipeline_spec"];
    let spec = if spec.get("pipeline_spec").is_some() {
        &spec["pipeline_spec"]
    } else {
        spec
    };
    let text = serde_json::to_string(spec).ok()?;
    coracle_spec::parse_document(&text).ok().map(|p| p.spec)
}

/// `-p NAME=VALUE` values read as the types the pipeline declares; unknown names are refused.
fn typed_parameters(
    spec: &coracle_spec::PipelineSpec,
    params: &[String],
) -> Result<Map<String, Value>, CliError> {
    let declared: BTreeMap<&String, &coracle_spec::ParameterSpec> =
        spec.root.input_parameters().collect();
    let mut typed = Map::new();
    for param in params {
        let (name, text) = param
            .split_once('=')
            .ok_or_else(|| CliError::user(anyhow!("-p {param:?}: expected NAME=VALUE")))?;
        let Some(declared_param) = declared.get(&name.to_string()) else {
            let known: Vec<&str> = declared.keys().map(|k| k.as_str()).collect();
            let known = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            return Err(CliError::user(anyhow!(
                "-p {name}: unknown parameter (the pipeline's parameters: {known})"
            )));
        };
        let value = coracle_spec::value::parse_text(declared_param.parameter_type, text)
            .map_err(|e| CliError::user(anyhow!("-p {name}: {e}")))?;
        typed.insert(name.to_string(), value);
    }
    Ok(typed)
}

/// The pipeline file as the API's `pipeline_spec`: the spec document, or
/// `{pipeline_spec, platform_spec}` when the file has a platforms document too.
fn pipeline_document(file: &Path) -> Result<Value, CliError> {
    let bytes = std::fs::read(file)
        .with_context(|| format!("failed to read {}", file.display()))
        .map_err(CliError::user)?;
    let text = package_text(&bytes)
        .with_context(|| format!("failed to read the pipeline in {}", file.display()))
        .map_err(CliError::user)?;
    let options = serde_saphyr::options! { strict_booleans: true };
    let documents: Vec<Value> = serde_saphyr::from_multiple_with_options(&text, options)
        .map_err(|e| CliError::user(anyhow!("{}: not valid YAML or JSON: {e}", file.display())))?;
    let mut spec = None;
    let mut platform = None;
    for document in documents {
        if document.get("platforms").is_some() {
            platform = Some(document);
        } else if spec.is_none() {
            spec = Some(document);
        }
    }
    let spec = spec
        .ok_or_else(|| CliError::user(anyhow!("{}: no pipeline spec document", file.display())))?;
    Ok(match platform {
        Some(platform) => json!({"pipeline_spec": spec, "platform_spec": platform}),
        None => spec,
    })
}

/// The pipeline text of a file: the file itself, or the YAML inside a .zip or .tar.gz package.
fn package_text(bytes: &[u8]) -> anyhow::Result<String> {
    let is_pipeline = |name: &str| {
        let lower = name.to_ascii_lowercase();
        lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
    };
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))?;
        let names: Vec<String> = archive
            .file_names()
            .map(|n| n.map(|n| n.into_owned()))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|n| is_pipeline(n))
            .collect();
        let name = choose_member(&names)?;
        let mut text = String::new();
        archive.by_name(&name)?.read_to_string(&mut text)?;
        return Ok(text);
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut members = BTreeMap::new();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        for entry in archive.entries()? {
            let mut entry = entry?;
            let name = entry.path()?.to_string_lossy().into_owned();
            if entry.header().entry_type().is_file() && is_pipeline(&name) {
                let mut text = String::new();
                entry.read_to_string(&mut text)?;
                members.insert(name, text);
            }
        }
        let names: Vec<String> = members.keys().cloned().collect();
        let name = choose_member(&names)?;
        return Ok(members.remove(&name).unwrap_or_default());
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| anyhow!("the file is binary, not YAML or JSON"))
}

fn choose_member(names: &[String]) -> anyhow::Result<String> {
    let base = |n: &String| n.rsplit('/').next().unwrap_or(n).to_string();
    if let Some(n) = names.iter().find(|n| base(n) == "pipeline.yaml") {
        return Ok(n.clone());
    }
    match names {
        [one] => Ok(one.clone()),
        [] => Err(anyhow!("the package holds no pipeline YAML or JSON file")),
        _ => Err(anyhow!(
            "the package holds several pipeline files ({}) and none is pipeline.yaml",
            names.join(", ")
        )),
    }
}

fn list_runs(
    experiment: Option<&str>,
    state: Option<&str>,
    client: &ClientArgs,
) -> Result<ExitCode, CliError> {
    let api = Api::new(&client.server);
    let mut query: Vec<(&str, String)> = vec![("sort_by", "created_at desc".into())];
    if let Some(experiment) = experiment {
        let experiment = api.experiment_by_name_or_id(experiment, false)?;
        query.push(("experiment_id", text(&experiment, "experiment_id")));
    }
    if let Some(state) = state {
        let state = state.to_ascii_uppercase();
        if !RUN_STATES.contains(&state.as_str()) {
            return Err(CliError::user(anyhow!(
                "--state {state}: not a run state (one of {})",
                RUN_STATES.join(", ")
            )));
        }
        let filter = json!({"predicates": [
            {"key": "state", "operation": "EQUALS", "string_value": state}
        ]});
        query.push(("filter", filter.to_string()));
    }
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let list = api.list_all("/runs", "runs", &query)?;
    if client.output == OutputFormat::Json {
        return print_json(&list);
    }
    let mut table = Table::new(["RUN ID", "STATE", "CREATED", "DURATION", "NAME"]);
    for r in items(&list, "runs") {
        table.row([
            text(r, "run_id"),
            text(r, "state"),
            time(r, "created_at"),
            duration(r),
            text(r, "display_name"),
        ]);
    }
    table.print();
    Ok(ExitCode::SUCCESS)
}

fn wait(
    run_id: &str,
    timeout: Option<Duration>,
    client: &ClientArgs,
) -> Result<ExitCode, CliError> {
    let api = Api::new(&client.server);
    let path = format!("/runs/{}", segment(run_id));
    let started = Instant::now();
    // A server that restarts while we wait is waited for, up to this long.
    let unreachable_grace = Duration::from_secs(30);
    let mut unreachable_since: Option<Instant> = None;
    let mut pause = Duration::from_millis(200);
    loop {
        match api.get(&path, &[]) {
            Ok(run) => {
                unreachable_since = None;
                let state = text(&run, "state");
                if FINAL_STATES.contains(&state.as_str()) {
                    if client.output == OutputFormat::Json {
                        print_json(&run)?;
                    } else {
                        println!("run {run_id} {state} ({})", duration(&run));
                        if let Some(message) = run["error"]["message"].as_str() {
                            println!("error: {message}");
                        }
                    }
                    return Ok(if state == "SUCCEEDED" {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    });
                }
                if let Some(limit) = timeout
                    && started.elapsed() >= limit
                {
                    return Err(CliError::from(anyhow!(
                        "run {run_id} is still {state} after {}s",
                        limit.as_secs_f64()
                    )));
                }
            }
            Err(ApiFailure::Unreachable(e)) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= unreachable_grace {
                    return Err(ApiFailure::Unreachable(e).into());
                }
            }
            Err(e) => return Err(e.into()),
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

fn print_run(run: &Value) {
    let field = |label: &str, value: String| println!("{label:<15} {value}");
    field("Run ID:", text(run, "run_id"));
    field("Name:", text(run, "display_name"));
    field("State:", text(run, "state"));
    field("Experiment:", text(run, "experiment_id"));
    let reference = &run["pipeline_version_reference"];
    if reference.is_object() {
        field(
            "Pipeline:",
            format!(
                "{} version {}",
                text(reference, "pipeline_id"),
                text(reference, "pipeline_version_id")
            ),
        );
    }
    field("Created:", time(run, "created_at"));
    field("Finished:", time(run, "finished_at"));
    field("Duration:", duration(run));
    if let Some(params) = run["runtime_config"]["parameters"].as_object() {
        for (name, value) in params {
            let shown = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            field("Parameter:", format!("{name} = {shown}"));
        }
    }
    if let Some(message) = run["error"]["message"].as_str() {
        field("Error:", message.to_string());
    }
    let tasks = run["run_details"]["task_details"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !tasks.is_empty() {
        println!();
        let mut table = Table::new(["TASK", "STATE", "STARTED", "ENDED"]);
        for t in &tasks {
            table.row([
                text(t, "display_name"),
                text(t, "state"),
                time(t, "start_time"),
                time(t, "end_time"),
            ]);
        }
        table.print();
    }
}

fn print_json(value: &Value) -> Result<ExitCode, CliError> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("failed to print JSON")?
    );
    Ok(ExitCode::SUCCESS)
}

fn items<'a>(list: &'a Value, key: &str) -> &'a [Value] {
    list[key].as_array().map(Vec::as_slice).unwrap_or_default()
}

/// A field as text: strings as they are, other values as JSON, missing ones empty.
fn text(value: &Value, key: &str) -> String {
    match &value[key] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn parse_time(value: &Value, key: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = chrono::DateTime::parse_from_rfc3339(value[key].as_str()?).ok()?;
    // The API's "not set" is the zero time.
    (t.timestamp() > 0).then(|| t.with_timezone(&chrono::Utc))
}

fn time(value: &Value, key: &str) -> String {
    parse_time(value, key)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

fn duration(run: &Value) -> String {
    let start = parse_time(run, "created_at");
    let end = parse_time(run, "finished_at");
    match (start, end) {
        (Some(s), Some(e)) => format!("{:.2}s", (e - s).num_milliseconds() as f64 / 1000.0),
        (Some(_), None) => "running".into(),
        _ => "-".into(),
    }
}

/// Columns padded to their widest cell.
struct Table<const N: usize> {
    rows: Vec<[String; N]>,
}

impl<const N: usize> Table<N> {
    fn new(header: [&str; N]) -> Self {
        Table {
            rows: vec![header.map(String::from)],
        }
    }
    fn row(&mut self, cells: [String; N]) {
        self.rows.push(cells);
    }
    fn print(&self) {
        let mut widths = [0usize; N];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == N {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            println!("{}", line.trim_end());
        }
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
fn segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why a request got no answer it could use.
#[derive(Debug)]
enum ApiFailure {
    /// No connection to the server.
    Unreachable(String),
    /// The server refused the request (4xx): the user's mistake.
    Refused(String),
    /// The server failed (5xx), or answered something that is not the API.
    Failed(String),
}

impl From<ApiFailure> for CliError {
    fn from(f: ApiFailure) -> Self {
        match f {
            ApiFailure::Refused(m) => CliError::user(anyhow!(m)),
            ApiFailure::Unreachable(m) | ApiFailure::Failed(m) => CliError::from(anyhow!(m)),
        }
    }
}

/// The KFP v2beta1 API of one server.
struct Api {
    base: String,
    server: String,
    agent: ureq::Agent,
}

/// The largest answer read (a run with a big pipeline spec and many tasks).
const MAX_RESPONSE_BYTES: u64 = 512 * 1024 * 1024;

impl Api {
    fn new(server: &str) -> Api {
        let server = server.trim_end_matches('/').to_string();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(300)))
            .build();
        Api {
            base: format!("{server}/apis/v2beta1"),
            server,
            agent: config.into(),
        }
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ApiFailure> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in query {
            request = request.query(k, v);
        }
        self.answer(request.call())
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, ApiFailure> {
        let request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        self.answer(request.send(body.to_string()))
    }

    /// A multipart upload of one file as the `uploadfile` field.
    fn upload(
        &self,
        path: &str,
        query: &[(&str, &str)],
        file_name: &str,
        bytes: &[u8],
    ) -> Result<Value, ApiFailure> {
        let (content_type, body) = multipart_body("uploadfile", file_name, bytes);
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", content_type);
        for (k, v) in query {
            request = request.query(k, v);
        }
        self.answer(request.send(&body[..]))
    }

    /// Every page of a list, as one answer of the list's shape.
    fn list_all(&self, path: &str, key: &str, query: &[(&str, &str)]) -> Result<Value, ApiFailure> {
        let mut all = Vec::new();
        let mut token = String::new();
        let mut total_size;
        loop {
            let mut q = query.to_vec();
            q.push(("page_size", "200"));
            if !token.is_empty() {
                q.push(("page_token", &token));
            }
            let mut page = self.get(path, &q)?;
            if let Some(items) = page[key].as_array_mut() {
                all.append(items);
            }
            total_size = page["total_size"].take();
            let next = text(&page, "next_page_token");
            if next.is_empty() || next == token {
                break;
            }
            token = next;
        }
        let mut list = Map::new();
        list.insert(key.to_string(), Value::Array(all));
        list.insert("total_size".into(), total_size);
        Ok(Value::Object(list))
    }

    fn create_experiment(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<Value, ApiFailure> {
        let mut body = json!({"display_name": name});
        if let Some(d) = description {
            body["description"] = Value::String(d.to_string());
        }
        self.post("/experiments", &body)
    }

    /// The experiment with this id, else the one with this name (created if `create`).
    fn experiment_by_name_or_id(&self, key: &str, create: bool) -> Result<Value, CliError> {
        match self.get(&format!("/experiments/{}", segment(key)), &[]) {
            Ok(experiment) => return Ok(experiment),
            Err(ApiFailure::Refused(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let filter = json!({"predicates": [
            {"key": "display_name", "operation": "EQUALS", "string_value": key}
        ]})
        .to_string();
        let list = self.get("/experiments", &[("filter", &filter)])?;
        match items(&list, "experiments") {
            [one] => Ok(one.clone()),
            [] if create => Ok(self.create_experiment(key, None)?),
            [] => Err(CliError::user(anyhow!(
                "no experiment with the id or name {key:?}"
            ))),
            _ => Err(CliError::user(anyhow!(
                "several experiments are named {key:?}: give the id"
            ))),
        }
    }

    fn answer(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, ApiFailure> {
        let mut response = response.map_err(|e| {
            ApiFailure::Unreachable(format!(
                "the server is not reachable at {}: {e}",
                self.server
            ))
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| {
                ApiFailure::Unreachable(format!(
                    "the server at {} broke off its answer: {e}",
                    self.server
                ))
            })?;
        let json: Option<Value> = serde_json::from_str(&body).ok();
        if (200..300).contains(&status) {
            return json.ok_or_else(|| {
                ApiFailure::Failed(format!(
                    "the server at {} answered something that is not JSON: {}",
                    self.server,
                    first_line(&body)
                ))
            });
        }
        let message = json
            .as_ref()
            .and_then(|j| j["message"].as_str().or(j["error"].as_str()))
            .map(String::from)
            .unwrap_or_else(|| format!("the server answered HTTP {status}: {}", first_line(&body)));
        if (400..500).contains(&status) {
            Err(ApiFailure::Refused(message))
        } else {
            Err(ApiFailure::Failed(message))
        }
    }
}

fn first_line(text: &str) -> &str {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

/// A `multipart/form-data` body holding one file; the boundary never occurs in the file.
fn multipart_body(field: &str, file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut n: u128 = 0;
    let boundary = loop {
        let candidate = format!("coracle-{:x}-{}-{n}", seed, std::process::id());
        if !bytes
            .windows(candidate.len())
            .any(|w| w == candidate.as_bytes())
        {
            break candidate;
        }
        n += 1;
    };
    let safe_name: String = file_name
        .chars()
        .map(|c| if c == '"' || c.is_control() { '_' } else { c })
        .collect();
    let mut body = Vec::with_capacity(bytes.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
             filename=\"{safe_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
