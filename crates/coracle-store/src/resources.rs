//! Coracle's stand-ins for the cluster resources that kfp-kubernetes pipelines name: volumes
//! (PersistentVolumeClaims: `mount_pvc`, `CreatePVC`), secrets (`use_secret_as_env/volume`) and
//! config maps (`use_config_map_as_env/volume`).
//!
//! A volume is a row saying it exists and how it was asked for; its files live in
//! [`volume_dir`]`(home, name)`, which every part of Coracle computes the same way. A secret or
//! a config map is a row holding its data: key → bytes (stored as base64) or key → text.
//!
//! Invariants:
//! - Every name written is a Kubernetes DNS-1123 subdomain and every data key a Kubernetes config
//!   key ([`validate_name`], [`validate_key`]), so a name is a safe directory name and a key a
//!   safe file name; a bad one is [`Error::InvalidArgument`] saying what is wrong with which.
//! - Secret values live only in the `secrets` table. Nothing here logs, formats or puts them in
//!   an error: errors name the secret and the key, never a value; listings read only the keys.
//! - Creating what exists is [`Error::AlreadyExists`] unless the caller asked to replace it; a
//!   replaced secret or config map keeps its `created_at` and gets a new `updated_at`, and its
//!   data is replaced as a whole (keys not given again are gone).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::FromRow;

use crate::rows::encode_time;
use crate::{Error, Store};

/// The longest name or key Kubernetes accepts.
pub const MAX_NAME_LEN: usize = 253;

/// The most data one secret or config map may hold, keys and values together, as Kubernetes
/// limits it (1 MiB), so that what works here also fits a cluster.
pub const MAX_DATA_BYTES: usize = 1 << 20;

/// The access modes a volume may be asked for with, as Kubernetes spells them.
pub const ACCESS_MODES: [&str; 4] = [
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];

/// The directory holding the files of the volume `name`: `{home}/volumes/{name}`. `name` must
/// have passed [`validate_name`] (then it is one plain path component).
pub fn volume_dir(home: &Path, name: &str) -> PathBuf {
    home.join("volumes").join(name)
}

/// A named volume as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeRecord {
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// The run whose CreatePVC made it; `None` when made by hand.
    pub created_by_run: Option<String>,
    /// The requested size as given (a Kubernetes quantity: `1Gi`, `500Mi`); not enforced.
    pub size: Option<String>,
    /// Requested access modes, each one of [`ACCESS_MODES`]; not enforced.
    pub access_modes: Vec<String>,
    pub storage_class: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

/// A secret or config map without its values: what listings show.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSummary {
    pub name: String,
    /// Its keys, sorted.
    pub keys: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A secret as listed: name and keys, never values.
pub type SecretSummary = DataSummary;

/// A config map as listed: name and keys.
pub type ConfigMapSummary = DataSummary;

/// Checks that `name` is a Kubernetes DNS-1123 subdomain: at most 253 characters, lowercase
/// letters, digits, '-' and '.', each '.'-separated part starting and ending with a letter or
/// digit. `kind` ("volume", "secret", "config map") goes into the message.
pub fn validate_name(kind: &str, name: &str) -> Result<(), Error> {
    let invalid =
        |reason: String| Error::InvalidArgument(format!("invalid {kind} name {name:?}: {reason}"));
    if name.is_empty() {
        return Err(invalid("it is empty".to_owned()));
    }
    let length = name.chars().count();
    if length > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "invalid {kind} name {:?}: it has {length} characters, at most {MAX_NAME_LEN} are allowed",
            shortened(name)
        )));
    }
    if let Some((position, c)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        let hint = if c.is_ascii_uppercase() {
            " (names are lowercase)"
        } else {
            ""
        };
        return Err(invalid(format!(
            "{c:?} at position {} is not allowed{hint}: use lowercase letters, digits, '-' and '.'",
            position + 1
        )));
    }
    let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alphanumeric(name.chars().next()) || !alphanumeric(name.chars().last()) {
        return Err(invalid(
            "it must start and end with a lowercase letter or digit".to_owned(),
        ));
    }
    if name
        .split('.')
        .any(|part| !alphanumeric(part.chars().next()) || !alphanumeric(part.chars().last()))
    {
        return Err(invalid(
            "each '.'-separated part must start and end with a lowercase letter or digit"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Checks that `key` is a Kubernetes config key of the secret or config map `name`: 1 to 253
/// letters, digits, '-', '_' and '.', and neither `.`, `..` nor starting with `..` (keys become
/// file names when mounted).
pub fn validate_key(kind: &str, name: &str, key: &str) -> Result<(), Error> {
    let invalid = |reason: String| {
        Error::InvalidArgument(format!("invalid key {key:?} in {kind} {name:?}: {reason}"))
    };
    if key.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "invalid key in {kind} {name:?}: it is empty"
        )));
    }
    let length = key.chars().count();
    if length > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "invalid key {:?} in {kind} {name:?}: it has {length} characters, at most \
             {MAX_NAME_LEN} are allowed",
            shortened(key)
        )));
    }
    if let Some((position, c)) = key
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(invalid(format!(
            "{c:?} at position {} is not allowed: use letters, digits, '-', '_' and '.'",
            position + 1
        )));
    }
    if key == "." || key.starts_with("..") {
        return Err(invalid(
            "it must not be '.' or start with '..' (keys become file names)".to_owned(),
        ));
    }
    Ok(())
}

/// Checks a requested volume size: a Kubernetes quantity (`1Gi`, `500Mi`, `10G`, `1.5Ti`,
/// `1e9`).
pub fn validate_size(volume: &str, size: &str) -> Result<(), Error> {
    let digits_end = |text: &str| {
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len())
    };
    let body = size.strip_prefix('+').unwrap_or(size);
    let whole = digits_end(body);
    let mut rest = &body[whole..];
    let mut n_digits = whole;
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = digits_end(fraction);
        n_digits += end;
        rest = &fraction[end..];
    }
    let suffix_ok = match rest {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T"
        | "P" | "E" => true,
        _ => rest
            .strip_prefix(['e', 'E'])
            .map(|exponent| exponent.strip_prefix(['+', '-']).unwrap_or(exponent))
            .is_some_and(|exponent| {
                !exponent.is_empty() && exponent.chars().all(|c| c.is_ascii_digit())
            }),
    };
    if n_digits == 0 || !suffix_ok {
        return Err(Error::InvalidArgument(format!(
            "invalid size {size:?} of volume {volume:?}: expected a Kubernetes quantity such as \
             500Mi, 1Gi or 10G"
        )));
    }
    Ok(())
}

/// Checks everything a volume record names: its name, size and access modes.
pub fn validate_volume(volume: &VolumeRecord) -> Result<(), Error> {
    validate_name("volume", &volume.name)?;
    if let Some(size) = &volume.size {
        validate_size(&volume.name, size)?;
    }
    for mode in &volume.access_modes {
        if !ACCESS_MODES.contains(&mode.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "invalid access mode {mode:?} of volume {:?}: use one of {}",
                volume.name,
                ACCESS_MODES.join(", ")
            )));
        }
    }
    Ok(())
}

/// The first 40 characters of a long name, for messages.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

const INSERT_VOLUME: &str = "INSERT INTO volumes (name, created_at, created_by_run, size, \
     access_modes, storage_class, annotations) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

macro_rules! volume_columns {
    () => {
        "name, created_at, created_by_run, size, access_modes, storage_class, annotations"
    };
}

const GET_VOLUME: &str = concat!(
    "SELECT ",
    volume_columns!(),
    " FROM volumes WHERE name = ?1"
);

const LIST_VOLUMES: &str = concat!("SELECT ", volume_columns!(), " FROM volumes ORDER BY name");

const DELETE_VOLUME: &str = "DELETE FROM volumes WHERE name = ?1";

/// The statements of one kind of keyed data (secrets, config maps): they differ only in the
/// table.
struct DataTable {
    kind: &'static str,
    table: &'static str,
    exists: &'static str,
    insert: &'static str,
    update: &'static str,
    get: &'static str,
    /// Names, keys and times: SQLite's `json_each` picks the keys out, so no value is ever
    /// returned.
    list: &'static str,
    delete: &'static str,
}

macro_rules! data_table {
    ($kind:literal, $table:literal) => {
        DataTable {
            kind: $kind,
            table: $table,
            exists: concat!("SELECT 1 FROM ", $table, " WHERE name = ?1"),
            insert: concat!(
                "INSERT INTO ",
                $table,
                " (name, data, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)"
            ),
            update: concat!(
                "UPDATE ",
                $table,
                " SET data = ?2, updated_at = ?3 WHERE name = ?1"
            ),
            get: concat!("SELECT data FROM ", $table, " WHERE name = ?1"),
            list: concat!(
                "SELECT t.name, (SELECT json_group_array(k.key) FROM json_each(t.data) k) AS keys, \
                 t.created_at, t.updated_at FROM ",
                $table,
                " t ORDER BY t.name"
            ),
            delete: concat!("DELETE FROM ", $table, " WHERE name = ?1"),
        }
    };
}

static SECRETS: DataTable = data_table!("secret", "secrets");
static CONFIG_MAPS: DataTable = data_table!("config map", "config_maps");

#[derive(FromRow)]
struct VolumeRow {
    name: String,
    created_at: String,
    created_by_run: Option<String>,
    size: Option<String>,
    access_modes: String,
    storage_class: Option<String>,
    annotations: String,
}

#[derive(FromRow)]
struct SummaryRow {
    name: String,
    keys: String,
    created_at: String,
    updated_at: String,
}

/// Names a column of one record in decoding errors: `secrets.data of secret "db"`.
fn invalid(table: &str, column: &str, kind: &str, name: &str, reason: String) -> Error {
    Error::InvalidData {
        location: format!("{table}.{column} of {kind} {name:?}"),
        reason,
    }
}

fn decode_time(
    table: &str,
    column: &str,
    kind: &str,
    name: &str,
    text: &str,
) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| {
            invalid(
                table,
                column,
                kind,
                name,
                format!("timestamp {text:?}: {error}"),
            )
        })
}

impl TryFrom<VolumeRow> for VolumeRecord {
    type Error = Error;

    fn try_from(row: VolumeRow) -> Result<VolumeRecord, Error> {
        let bad =
            |column: &str, reason: String| invalid("volumes", column, "volume", &row.name, reason);
        let access_modes: Vec<String> = serde_json::from_str(&row.access_modes)
            .map_err(|error| bad("access_modes", format!("not a JSON list of text: {error}")))?;
        let annotations: BTreeMap<String, String> = serde_json::from_str(&row.annotations)
            .map_err(|error| bad("annotations", format!("not a JSON object of text: {error}")))?;
        let created_at = decode_time(
            "volumes",
            "created_at",
            "volume",
            &row.name,
            &row.created_at,
        )?;
        Ok(VolumeRecord {
            name: row.name,
            created_at,
            created_by_run: row.created_by_run,
            size: row.size,
            access_modes,
            storage_class: row.storage_class,
            annotations,
        })
    }
}

fn decode_summary(table: &DataTable, row: SummaryRow) -> Result<DataSummary, Error> {
    let (kind, table) = (table.kind, table.table);
    let mut keys: Vec<String> = serde_json::from_str(&row.keys).map_err(|error| {
        invalid(
            table,
            "data",
            kind,
            &row.name,
            format!("keys are not text: {error}"),
        )
    })?;
    keys.sort();
    let created_at = decode_time(table, "created_at", kind, &row.name, &row.created_at)?;
    let updated_at = decode_time(table, "updated_at", kind, &row.name, &row.updated_at)?;
    Ok(DataSummary {
        name: row.name,
        keys,
        created_at,
        updated_at,
    })
}

/// The stored `data` object of a secret or config map as key → JSON string. Errors never
/// quote the text (it may hold secret values).
fn decode_data(
    table: &str,
    kind: &str,
    name: &str,
    text: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let bad = |reason: String| invalid(table, "data", kind, name, reason);
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
        return Err(bad("not a JSON object".to_owned()));
    };
    object
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(value) => Ok((key, value)),
            _ => Err(bad(format!("the value of key {key:?} is not text"))),
        })
        .collect()
}

fn query_error(source: sqlx::Error, action: String) -> Error {
    Error::Query { action, source }
}

impl Store {
    // ---- volumes -------------------------------------------------------------------------

    /// Records a new volume (the caller makes its directory, [`volume_dir`]). Fails with
    /// [`Error::InvalidArgument`] if its name, size or an access mode is not valid and with
    /// [`Error::AlreadyExists`] (kind "volume") if the name is taken.
    pub async fn create_volume(&self, volume: &VolumeRecord) -> Result<(), Error> {
        validate_volume(volume)?;
        let access_modes = Value::from(volume.access_modes.clone()).to_string();
        let annotations = Value::Object(
            volume
                .annotations
                .iter()
                .map(|(key, value)| (key.clone(), Value::String(value.clone())))
                .collect::<Map<_, _>>(),
        )
        .to_string();
        sqlx::query(INSERT_VOLUME)
            .bind(&volume.name)
            .bind(encode_time(&volume.created_at))
            .bind(&volume.created_by_run)
            .bind(&volume.size)
            .bind(access_modes)
            .bind(&volume.storage_class)
            .bind(annotations)
            .execute(&self.writer)
            .await
            .map_err(|source| match &source {
                sqlx::Error::Database(e) if e.is_unique_violation() => Error::AlreadyExists {
                    kind: "volume",
                    id: volume.name.clone(),
                },
                _ => query_error(source, format!("insert volume {:?}", volume.name)),
            })?;
        tracing::debug!(volume = %volume.name, run = ?volume.created_by_run, "recorded volume");
        Ok(())
    }

    /// The volume with this name.
    pub async fn get_volume(&self, name: &str) -> Result<Option<VolumeRecord>, Error> {
        let row: Option<VolumeRow> = sqlx::query_as(GET_VOLUME)
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(|source| query_error(source, format!("read volume {name:?}")))?;
        row.map(VolumeRecord::try_from).transpose()
    }

    /// Every volume, by name.
    pub async fn list_volumes(&self) -> Result<Vec<VolumeRecord>, Error> {
        let rows: Vec<VolumeRow> = sqlx::query_as(LIST_VOLUMES)
            .fetch_all(&self.reader)
            .await
            .map_err(|source| query_error(source, "list volumes".to_owned()))?;
        rows.into_iter().map(VolumeRecord::try_from).collect()
    }

    /// Forgets a volume; `false` if there was none of that name. Its directory is the caller's
    /// to remove.
    pub async fn delete_volume(&self, name: &str) -> Result<bool, Error> {
        let result = sqlx::query(DELETE_VOLUME)
            .bind(name)
            .execute(&self.writer)
            .await
            .map_err(|source| query_error(source, format!("delete volume {name:?}")))?;
        Ok(result.rows_affected() > 0)
    }

    // ---- secrets -------------------------------------------------------------------------

    /// Stores the secret `name` with `data` (key → value bytes). Without `replace`, a secret of
    /// that name is [`Error::AlreadyExists`]; with it, its data is replaced as a whole. Returns
    /// whether one was replaced. A bad name or key, or more than [`MAX_DATA_BYTES`] of keys and
    /// values, is [`Error::InvalidArgument`].
    pub async fn put_secret(
        &self,
        name: &str,
        data: &BTreeMap<String, Vec<u8>>,
        replace: bool,
    ) -> Result<bool, Error> {
        let encoded: Map<String, Value> = data
            .iter()
            .map(|(key, value)| (key.clone(), Value::String(STANDARD.encode(value))))
            .collect();
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        let size = data
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum();
        self.put_data(&SECRETS, name, &keys, size, Value::Object(encoded), replace)
            .await
    }

    /// The data of the secret `name` (key → value bytes).
    pub async fn get_secret(&self, name: &str) -> Result<Option<BTreeMap<String, Vec<u8>>>, Error> {
        let Some(data) = self.get_data(&SECRETS, name).await? else {
            return Ok(None);
        };
        data.into_iter()
            .map(|(key, value)| match STANDARD.decode(value.as_bytes()) {
                Ok(bytes) => Ok((key, bytes)),
                // The decoder's message quotes a character of the value: leave it out.
                Err(_) => Err(invalid(
                    "secrets",
                    "data",
                    "secret",
                    name,
                    format!("the value of key {key:?} is not base64"),
                )),
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Every secret by name, with its keys and never its values.
    pub async fn list_secrets(&self) -> Result<Vec<SecretSummary>, Error> {
        let rows = self.list_data(&SECRETS).await?;
        rows.into_iter()
            .map(|row| decode_summary(&SECRETS, row))
            .collect()
    }

    /// Deletes a secret; `false` if there was none of that name.
    pub async fn delete_secret(&self, name: &str) -> Result<bool, Error> {
        self.delete_named(&SECRETS, name).await
    }

    // ---- config maps ---------------------------------------------------------------------

    /// Stores the config map `name` with `data` (key → text), as [`Store::put_secret`] does.
    pub async fn put_config_map(
        &self,
        name: &str,
        data: &BTreeMap<String, String>,
        replace: bool,
    ) -> Result<bool, Error> {
        let object: Map<String, Value> = data
            .iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect();
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        let size = data
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum();
        self.put_data(
            &CONFIG_MAPS,
            name,
            &keys,
            size,
            Value::Object(object),
            replace,
        )
        .await
    }

    /// The data of the config map `name` (key → text).
    pub async fn get_config_map(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Error> {
        self.get_data(&CONFIG_MAPS, name).await
    }

    /// Every config map by name, with its keys.
    pub async fn list_config_maps(&self) -> Result<Vec<ConfigMapSummary>, Error> {
        let rows = self.list_data(&CONFIG_MAPS).await?;
        rows.into_iter()
            .map(|row| decode_summary(&CONFIG_MAPS, row))
            .collect()
    }

    /// Deletes a config map; `false` if there was none of that name.
    pub async fn delete_config_map(&self, name: &str) -> Result<bool, Error> {
        self.delete_named(&CONFIG_MAPS, name).await
    }

    // ---- shared --------------------------------------------------------------------------

    async fn put_data(
        &self,
        table: &DataTable,
        name: &str,
        keys: &[&str],
        data_bytes: usize,
        data: Value,
        replace: bool,
    ) -> Result<bool, Error> {
        let kind = table.kind;
        validate_name(kind, name)?;
        for key in keys {
            validate_key(kind, name, key)?;
        }
        if data_bytes > MAX_DATA_BYTES {
            return Err(Error::InvalidArgument(format!(
                "{kind} {name:?} holds {data_bytes} bytes of keys and values; at most \
                 {MAX_DATA_BYTES} (1 MiB) are allowed, as in Kubernetes"
            )));
        }
        let data = data.to_string();
        let now = encode_time(&Utc::now());
        let mut exists_already = false;
        let result = async {
            let mut transaction = self.begin_write().await?;
            let found: Option<i64> = sqlx::query_scalar(table.exists)
                .bind(name)
                .fetch_optional(&mut *transaction)
                .await?;
            exists_already = found.is_some();
            if exists_already && !replace {
                return Ok(());
            }
            let statement = if exists_already {
                table.update
            } else {
                table.insert
            };
            sqlx::query(statement)
                .bind(name)
                .bind(data)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await
        }
        .await;
        result.map_err(|source| query_error(source, format!("write {kind} {name:?}")))?;
        if exists_already && !replace {
            return Err(Error::AlreadyExists {
                kind,
                id: name.to_owned(),
            });
        }
        tracing::debug!(
            kind,
            name,
            keys = keys.len(),
            replaced = exists_already,
            "stored"
        );
        Ok(exists_already)
    }

    async fn get_data(
        &self,
        table: &DataTable,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Error> {
        let kind = table.kind;
        let text: Option<String> = sqlx::query_scalar(table.get)
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(|source| query_error(source, format!("read {kind} {name:?}")))?;
        text.map(|text| decode_data(table.table, kind, name, &text))
            .transpose()
    }

    async fn list_data(&self, table: &DataTable) -> Result<Vec<SummaryRow>, Error> {
        sqlx::query_as(table.list)
            .fetch_all(&self.reader)
            .await
            .map_err(|source| query_error(source, format!("list {}s", table.kind)))
    }

    async fn delete_named(&self, table: &DataTable, name: &str) -> Result<bool, Error> {
        let result = sqlx::query(table.delete)
            .bind(name)
            .execute(&self.writer)
            .await
            .map_err(|source| query_error(source, format!("delete {} {name:?}", table.kind)))?;
        Ok(result.rows_affected() > 0)
    }
}
