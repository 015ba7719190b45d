//! `coracle volume|secret|configmap …`: the named volumes, secrets and config maps that
//! kfp-kubernetes pipelines use (`mount_pvc`, `use_secret_as_env`, …), kept in the local data
//! directory as Coracle's stand-ins for the cluster's.
//!
//! A volume is a store row plus its directory, `HOME/volumes/NAME`. Secrets and config maps are
//! store rows; their data comes from `--from-literal KEY=VALUE` and `--from-file [KEY=]PATH` as
//! with `kubectl create secret generic`. A secret's values are never printed: not by `list`,
//! not in messages (a bad entry is named by its key or its position, never by its text).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use coracle_store::resources::{validate_key, validate_name};
use coracle_store::{VolumeRecord, volume_dir};
use serde_json::{Value, json};

use crate::{CliError, OutputFormat, home};

#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a named volume: a directory under HOME/volumes that tasks mount (`mount_pvc`).
    Create {
        /// The volume's name (lowercase letters, digits, '-' and '.').
        name: String,
        /// The size asked for, a Kubernetes quantity (1Gi, 500Mi); recorded, not enforced.
        #[arg(long)]
        size: Option<String>,
        /// An access mode (ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod);
        /// repeatable; recorded, not enforced.
        #[arg(long = "access-mode", value_name = "MODE")]
        access_modes: Vec<String>,
        /// The storage class asked for; recorded, not used.
        #[arg(long)]
        storage_class: Option<String>,
        /// An annotation, KEY=VALUE; repeatable.
        #[arg(long = "annotation", value_name = "KEY=VALUE")]
        annotations: Vec<String>,
    },
    /// List the volumes.
    List {
        #[arg(long, value_enum, default_value_t = OutputFormat::Text, env = "CORACLE_OUTPUT")]
        output: OutputFormat,
    },
    /// Delete a volume and its directory with every file in it.
    Delete {
        /// The volume's name.
        name: String,
    },
}

#[derive(Subcommand)]
pub enum SecretCommand {
    /// Create a secret (or replace one, with --replace) from literals and files.
    Create {
        /// The secret's name (lowercase letters, digits, '-' and '.').
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List the secrets: names and keys, never values.
    List {
        #[arg(long, value_enum, default_value_t = OutputFormat::Text, env = "CORACLE_OUTPUT")]
        output: OutputFormat,
    },
    /// Delete a secret.
    Delete {
        /// The secret's name.
        name: String,
    },
}

#[derive(Subcommand)]
pub enum ConfigMapCommand {
    /// Create a config map (or replace one, with --replace) from literals and files.
    Create {
        /// The config map's name (lowercase letters, digits, '-' and '.').
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List the config maps: names and keys.
    List {
        #[arg(long, value_enum, default_value_t = OutputFormat::Text, env = "CORACLE_OUTPUT")]
        output: OutputFormat,
    },
    /// Show a config map's keys and values.
    Get {
        /// The config map's name.
        name: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text, env = "CORACLE_OUTPUT")]
        output: OutputFormat,
    },
    /// Delete a config map.
    Delete {
        /// The config map's name.
        name: String,
    },
}

/// Where the data of a secret or config map comes from.
#[derive(Args)]
pub struct DataArgs {
    /// An entry KEY=VALUE; repeatable.
    #[arg(long = "from-literal", value_name = "KEY=VALUE")]
    literals: Vec<String>,
    /// An entry read from a file: KEY=PATH, or PATH with the file's name as the key; a
    /// directory gives one entry per file in it. Repeatable.
    #[arg(long = "from-file", value_name = "[KEY=]PATH")]
    files: Vec<String>,
    /// Replace the whole data of one that exists instead of failing.
    #[arg(long)]
    replace: bool,
}

// ---- volumes ------------------------------------------------------------------------------

pub async fn volume(home: &Path, command: VolumeCommand) -> Result<ExitCode, CliError> {
    match command {
        VolumeCommand::Create {
            name,
            size,
            access_modes,
            storage_class,
            annotations,
        } => {
            let mut annotation_map = BTreeMap::new();
            for (index, entry) in annotations.iter().enumerate() {
                let Some((key, value)) = entry.split_once('=') else {
                    return Err(CliError::user(anyhow!(
                        "--annotation {entry:?} (entry {}) is not KEY=VALUE",
                        index + 1
                    )));
                };
                if key.is_empty() {
                    return Err(CliError::user(anyhow!(
                        "--annotation {entry:?} (entry {}) has an empty key",
                        index + 1
                    )));
                }
                if annotation_map
                    .insert(key.to_owned(), value.to_owned())
                    .is_some()
                {
                    return Err(CliError::user(anyhow!("annotation {key:?} is given twice")));
                }
            }
            let record = VolumeRecord {
                name,
                created_at: chrono::Utc::now(),
                created_by_run: None,
                size,
                access_modes,
                storage_class,
                annotations: annotation_map,
            };
            let store = home::open_store(home).await?;
            store.create_volume(&record).await.map_err(store_error)?;
            let dir = volume_dir(home, &record.name);
            let existed = dir.is_dir();
            if let Err(error) = std::fs::create_dir_all(&dir) {
                // Leave no row without its directory.
                if let Err(undo) = store.delete_volume(&record.name).await {
                    tracing::warn!(volume = %record.name, "could not forget the volume: {undo}");
                }
                return Err(anyhow::Error::new(error)
                    .context(format!(
                        "failed to create directory {} of volume {:?}",
                        dir.display(),
                        record.name
                    ))
                    .into());
            }
            if existed {
                eprintln!(
                    "note: directory {} already existed; its files are kept",
                    dir.display()
                );
            }
            println!("volume {:?} created at {}", record.name, dir.display());
            Ok(ExitCode::SUCCESS)
        }
        VolumeCommand::List { output } => {
            let store = home::open_store(home).await?;
            let volumes = store.list_volumes().await?;
            if output == OutputFormat::Json {
                let list: Vec<Value> = volumes
                    .iter()
                    .map(|v| {
                        json!({
                            "name": v.name,
                            "path": volume_dir(home, &v.name),
                            "size": v.size,
                            "access_modes": v.access_modes,
                            "storage_class": v.storage_class,
                            "annotations": v.annotations,
                            "created_at": v.created_at.to_rfc3339(),
                            "created_by_run": v.created_by_run,
                        })
                    })
                    .collect();
                return print_json(&Value::Array(list));
            }
            let mut table = Table::new(&["NAME", "SIZE", "CREATED", "CREATED BY RUN", "PATH"]);
            for v in &volumes {
                table.row(vec![
                    v.name.clone(),
                    v.size.clone().unwrap_or_else(|| "-".into()),
                    time(&v.created_at),
                    v.created_by_run.clone().unwrap_or_else(|| "-".into()),
                    volume_dir(home, &v.name).display().to_string(),
                ]);
            }
            table.print();
            Ok(ExitCode::SUCCESS)
        }
        VolumeCommand::Delete { name } => {
            validate_name("volume", &name).map_err(store_error)?;
            let store = home::open_store(home).await?;
            if store.get_volume(&name).await?.is_none() {
                return Err(not_found("volume", &name));
            }
            // The files go first: a directory that cannot be removed (files a container wrote
            // as another user) keeps the volume listed, so the delete can be tried again.
            let dir = volume_dir(home, &name);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!(
                            "failed to remove directory {} of volume {name:?}",
                            dir.display()
                        ))
                        .into());
                }
            }
            store.delete_volume(&name).await?;
            println!(
                "volume {name:?} deleted, with its directory {}",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

// ---- secrets ------------------------------------------------------------------------------

pub async fn secret(home: &Path, command: SecretCommand) -> Result<ExitCode, CliError> {
    const KIND: &str = "secret";
    match command {
        SecretCommand::Create { name, data } => {
            validate_name(KIND, &name).map_err(store_error)?;
            let entries = read_entries(KIND, &name, &data)?;
            let store = home::open_store(home).await?;
            let replaced = store
                .put_secret(&name, &entries, data.replace)
                .await
                .map_err(store_error)?;
            println!("{}", saved(KIND, &name, entries.keys(), replaced));
            Ok(ExitCode::SUCCESS)
        }
        SecretCommand::List { output } => {
            let store = home::open_store(home).await?;
            let list = store.list_secrets().await?;
            print_summaries(&list, output)
        }
        SecretCommand::Delete { name } => {
            validate_name(KIND, &name).map_err(store_error)?;
            let store = home::open_store(home).await?;
            if !store.delete_secret(&name).await? {
                return Err(not_found(KIND, &name));
            }
            println!("secret {name:?} deleted");
            Ok(ExitCode::SUCCESS)
        }
    }
}

// ---- config maps --------------------------------------------------------------------------

pub async fn config_map(home: &Path, command: ConfigMapCommand) -> Result<ExitCode, CliError> {
    const KIND: &str = "config map";
    match command {
        ConfigMapCommand::Create { name, data } => {
            validate_name(KIND, &name).map_err(store_error)?;
            let entries = read_entries(KIND, &name, &data)?;
            let mut text = BTreeMap::new();
            for (key, bytes) in entries {
                let value = String::from_utf8(bytes).map_err(|_| {
                    CliError::user(anyhow!(
                        "the value of key {key:?} of config map {name:?} is not UTF-8 text: \
                         config maps hold text (put binary data in a secret)"
                    ))
                })?;
                text.insert(key, value);
            }
            let store = home::open_store(home).await?;
            let replaced = store
                .put_config_map(&name, &text, data.replace)
                .await
                .map_err(store_error)?;
            println!("{}", saved(KIND, &name, text.keys(), replaced));
            Ok(ExitCode::SUCCESS)
        }
        ConfigMapCommand::List { output } => {
            let store = home::open_store(home).await?;
            let list = store.list_config_maps().await?;
            print_summaries(&list, output)
        }
        ConfigMapCommand::Get { name, output } => {
            validate_name(KIND, &name).map_err(store_error)?;
            let store = home::open_store(home).await?;
            let Some(data) = store.get_config_map(&name).await? else {
                return Err(not_found(KIND, &name));
            };
            if output == OutputFormat::Json {
                return print_json(&json!({"name": name, "data": data}));
            }
            println!("config map {name:?}: {} keys", data.len());
            for (key, value) in &data {
                println!();
                println!("{key}:");
                println!("----");
                println!("{}", value.strip_suffix('\n').unwrap_or(value));
            }
            Ok(ExitCode::SUCCESS)
        }
        ConfigMapCommand::Delete { name } => {
            validate_name(KIND, &name).map_err(store_error)?;
            let store = home::open_store(home).await?;
            if !store.delete_config_map(&name).await? {
                return Err(not_found(KIND, &name));
            }
            println!("config map {name:?} deleted");
            Ok(ExitCode::SUCCESS)
        }
    }
}

// ---- shared -------------------------------------------------------------------------------

/// The entries of `--from-literal` and `--from-file`, keys checked, each key once. Messages
/// name keys, positions and paths, never a value (this serves secrets).
fn read_entries(
    kind: &str,
    name: &str,
    args: &DataArgs,
) -> Result<BTreeMap<String, Vec<u8>>, CliError> {
    if args.literals.is_empty() && args.files.is_empty() {
        return Err(CliError::user(anyhow!(
            "{kind} {name:?} needs at least one entry: give --from-literal KEY=VALUE or \
             --from-file [KEY=]PATH"
        )));
    }
    let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut add = |key: String, value: Vec<u8>, source: &str| -> Result<(), CliError> {
        if entries.insert(key.clone(), value).is_some() {
            return Err(CliError::user(anyhow!(
                "key {key:?} of {kind} {name:?} is given twice (again by {source})"
            )));
        }
        Ok(())
    };
    for (index, literal) in args.literals.iter().enumerate() {
        let source = format!("--from-literal entry {}", index + 1);
        // Without '=' the whole text may be a value: do not quote it.
        let Some((key, value)) = literal.split_once('=') else {
            return Err(CliError::user(anyhow!(
                "{source} of {kind} {name:?} is not KEY=VALUE (it has no '=')"
            )));
        };
        validate_key(kind, name, key).map_err(store_error)?;
        add(key.to_owned(), value.as_bytes().to_vec(), &source)?;
    }
    for (index, spec) in args.files.iter().enumerate() {
        let source = format!("--from-file entry {}", index + 1);
        let (key, path) = match spec.split_once('=') {
            Some((key, path)) => {
                validate_key(kind, name, key).map_err(store_error)?;
                (Some(key.to_owned()), PathBuf::from(path))
            }
            None => (None, PathBuf::from(spec)),
        };
        if path.as_os_str().is_empty() {
            return Err(CliError::user(anyhow!(
                "{source} of {kind} {name:?} has an empty path"
            )));
        }
        if path.is_dir() {
            if let Some(key) = key {
                return Err(CliError::user(anyhow!(
                    "{source} of {kind} {name:?} gives key {key:?} a directory, {}: give a \
                     file, or the directory alone for one entry per file",
                    path.display()
                )));
            }
            for (key, file) in directory_files(kind, name, &path)? {
                let value = read_file(kind, name, &key, &file)?;
                add(key, value, &format!("{source}, file {}", file.display()))?;
            }
            continue;
        }
        let key = match key {
            Some(key) => key,
            None => key_from_file_name(kind, name, &path)?,
        };
        let value = read_file(kind, name, &key, &path)?;
        add(key, value, &source)?;
    }
    Ok(entries)
}

/// The key a `--from-file PATH` entry gets: the file's name, which must be a valid key.
fn key_from_file_name(kind: &str, name: &str, path: &Path) -> Result<String, CliError> {
    let file_name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        CliError::user(anyhow!(
            "--from-file {} of {kind} {name:?} has no file name to use as the key: give \
                 KEY=PATH",
            path.display()
        ))
    })?;
    validate_key(kind, name, file_name).map_err(|e| {
        CliError::user(anyhow!(
            "{e} (the key is the name of the file {}: give KEY=PATH to choose another)",
            path.display()
        ))
    })?;
    Ok(file_name.to_owned())
}

/// The regular files of a directory whose names are valid keys, by name (as kubectl, others
/// are skipped, with a note naming them).
fn directory_files(kind: &str, name: &str, dir: &Path) -> Result<Vec<(String, PathBuf)>, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        CliError::user(anyhow::Error::new(e).context(format!(
            "failed to read directory {} for {kind} {name:?}",
            dir.display()
        )))
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            CliError::user(anyhow::Error::new(e).context(format!(
                "failed to read directory {} for {kind} {name:?}",
                dir.display()
            )))
        })?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        match entry.file_name().to_str() {
            Some(key) if validate_key(kind, name, key).is_ok() => {
                files.push((key.to_owned(), path));
            }
            _ => eprintln!(
                "note: skipped {}: its name is not a valid key",
                path.display()
            ),
        }
    }
    if files.is_empty() {
        return Err(CliError::user(anyhow!(
            "directory {} has no file whose name is a valid key for {kind} {name:?}",
            dir.display()
        )));
    }
    files.sort();
    Ok(files)
}

fn read_file(kind: &str, name: &str, key: &str, path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .with_context(|| {
            format!(
                "failed to read {} for key {key:?} of {kind} {name:?}",
                path.display()
            )
        })
        .map_err(CliError::user)
}

/// Store errors a user caused (a bad name or key, a name taken or missing) exit with code 2.
fn store_error(error: coracle_store::Error) -> CliError {
    match error {
        e @ (coracle_store::Error::InvalidArgument(_)
        | coracle_store::Error::AlreadyExists { .. }
        | coracle_store::Error::NotFound { .. }) => CliError::user(e),
        e => e.into(),
    }
}

fn not_found(kind: &'static str, name: &str) -> CliError {
    CliError::user(coracle_store::Error::NotFound {
        kind,
        id: name.to_owned(),
    })
}

fn saved<'a>(
    kind: &str,
    name: &str,
    keys: impl Iterator<Item = &'a String>,
    replaced: bool,
) -> String {
    let keys: Vec<&str> = keys.map(String::as_str).collect();
    format!(
        "{kind} {name:?} {} (keys: {})",
        if replaced { "replaced" } else { "created" },
        keys.join(", ")
    )
}

fn print_summaries(
    list: &[coracle_store::resources::DataSummary],
    output: OutputFormat,
) -> Result<ExitCode, CliError> {
    if output == OutputFormat::Json {
        let list: Vec<Value> = list
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "keys": s.keys,
                    "created_at": s.created_at.to_rfc3339(),
                    "updated_at": s.updated_at.to_rfc3339(),
                })
            })
            .collect();
        return print_json(&Value::Array(list));
    }
    let mut table = Table::new(&["NAME", "CREATED", "UPDATED", "KEYS"]);
    for s in list {
        table.row(vec![
            s.name.clone(),
            time(&s.created_at),
            time(&s.updated_at),
            s.keys.join(", "),
        ]);
    }
    table.print();
    Ok(ExitCode::SUCCESS)
}

fn print_json(value: &Value) -> Result<ExitCode, CliError> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Columns padded to their widest cell; the last is not padded.
struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn print(&self) {
        let n = self.rows[0].len();
        let mut widths = vec![0; n];
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == n {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            println!("{}", line.trim_end());
        }
    }
}
