//! Pipelines, their versions, and experiments: what `coracle server` keeps so that runs can be
//! made from a stored pipeline and grouped. Tables from migration 0003 (and 0004).
//!
//! Invariants:
//! - A pipeline's `name` is unique in its namespace; a version's `name` is unique in its
//!   pipeline; an experiment's `display_name` is unique in its namespace. Breaking one is
//!   [`Error::AlreadyExists`].
//! - A version's spec lives in `pipeline_version_specs`, written in the same transaction as the
//!   version, so listing versions never reads a spec. The spec is stored as the API shows it:
//!   the pipeline spec as a JSON object, or `{"pipeline_spec", "platform_spec"}` when the
//!   pipeline has a platform document.
//! - Deleting a pipeline that has versions needs `cascade` (else
//!   [`Error::FailedPrecondition`]); the versions and their specs go with it.
//! - Archiving an experiment archives its runs in the same transaction; unarchiving restores
//!   only the experiment.
//! - An experiment's `last_run_created_at` is read from its newest run (the
//!   `runs_by_experiment` index), so no run writer has to maintain it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Row};

use crate::listing::{Column, ListRequest, Page, Scope, Table, fetch_page};
use crate::rows::{encode_json, encode_time};
use crate::run_api::StorageState;
use crate::{Error, Store};

/// The name of the experiment that runs made without one go to.
pub const DEFAULT_EXPERIMENT_NAME: &str = "Default";

/// Tags of pipelines and versions: string keys and values.
pub type Tags = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq)]
pub struct PipelineRecord {
    pub pipeline_id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub namespace: String,
    pub tags: Tags,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PipelineVersionRecord {
    pub pipeline_version_id: String,
    pub pipeline_id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub code_source_url: String,
    pub package_url: String,
    pub tags: Tags,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExperimentRecord {
    pub experiment_id: String,
    pub display_name: String,
    pub description: String,
    pub namespace: String,
    pub storage_state: StorageState,
    pub created_at: DateTime<Utc>,
    /// When the newest run of the experiment was made; `None` before its first run.
    pub last_run_created_at: Option<DateTime<Utc>>,
}

macro_rules! pipeline_columns {
    () => {
        "pipeline_id, name, display_name, description, namespace, tags, created_at"
    };
}

macro_rules! version_columns {
    () => {
        "pipeline_version_id, pipeline_id, name, display_name, description, code_source_url, \
         package_url, tags, created_at"
    };
}

macro_rules! experiment_columns {
    () => {
        "e.experiment_id, e.display_name, e.description, e.namespace, e.storage_state, \
         e.created_at, coalesce((SELECT max(r.created_at) FROM runs r \
         WHERE r.experiment_id = e.experiment_id), e.last_run_created_at) AS last_run_created_at"
    };
}

static PIPELINES: Table = Table {
    name: "pipelines",
    from: "pipelines",
    select: pipeline_columns!(),
    id: "pipeline_id",
    columns: &[
        Column::text("pipeline_id", "pipeline_id"),
        Column::text("name", "name"),
        Column::text("display_name", "display_name"),
        Column::text("description", "description"),
        Column::text("namespace", "namespace"),
        Column::timestamp("created_at", "created_at"),
    ],
    default_sort: ("created_at", true),
    named_sort: None,
};

static PIPELINE_VERSIONS: Table = Table {
    name: "pipeline versions",
    from: "pipeline_versions",
    select: version_columns!(),
    id: "pipeline_version_id",
    columns: &[
        Column::text("pipeline_version_id", "pipeline_version_id"),
        Column::text("pipeline_id", "pipeline_id"),
        Column::text("name", "name"),
        Column::text("display_name", "display_name"),
        Column::text("description", "description"),
        Column::text("code_source_url", "code_source_url"),
        Column::timestamp("created_at", "created_at"),
    ],
    default_sort: ("created_at", true),
    named_sort: None,
};

static EXPERIMENTS: Table = Table {
    name: "experiments",
    from: "experiments e",
    select: experiment_columns!(),
    id: "e.experiment_id",
    columns: &[
        Column::text("experiment_id", "e.experiment_id"),
        Column::text("display_name", "e.display_name"),
        // KFP's other name for the display name.
        Column::text("name", "e.display_name"),
        Column::text("description", "e.description"),
        Column::text("namespace", "e.namespace"),
        Column::text("storage_state", "e.storage_state"),
        Column::timestamp("created_at", "e.created_at"),
        Column::timestamp(
            "last_run_created_at",
            "coalesce((SELECT max(r.created_at) FROM runs r \
             WHERE r.experiment_id = e.experiment_id), e.last_run_created_at)",
        )
        .nullable(),
    ],
    default_sort: ("created_at", true),
    named_sort: None,
};

const INSERT_PIPELINE: &str = concat!(
    "INSERT INTO pipelines (",
    pipeline_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
);

const INSERT_VERSION: &str = concat!(
    "INSERT INTO pipeline_versions (",
    version_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
);

const INSERT_VERSION_SPEC: &str =
    "INSERT INTO pipeline_version_specs (pipeline_version_id, pipeline_spec) VALUES (?1, ?2)";

const GET_PIPELINE: &str = concat!(
    "SELECT ",
    pipeline_columns!(),
    " FROM pipelines WHERE pipeline_id = ?1"
);

const GET_PIPELINE_BY_NAME: &str = concat!(
    "SELECT ",
    pipeline_columns!(),
    " FROM pipelines WHERE namespace = ?1 AND name = ?2"
);

const GET_VERSION: &str = concat!(
    "SELECT ",
    version_columns!(),
    ", s.pipeline_spec FROM pipeline_versions v \
     JOIN pipeline_version_specs s USING (pipeline_version_id) \
     WHERE v.pipeline_id = ?1 AND v.pipeline_version_id = ?2"
);

const COUNT_VERSIONS: &str = "SELECT count(*) FROM pipeline_versions WHERE pipeline_id = ?1";

const INSERT_EXPERIMENT: &str = "INSERT INTO experiments (experiment_id, display_name, \
     description, namespace, storage_state, created_at, last_run_created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

const GET_EXPERIMENT: &str = concat!(
    "SELECT ",
    experiment_columns!(),
    " FROM experiments e WHERE e.experiment_id = ?1"
);

const DEFAULT_EXPERIMENT: &str = "SELECT experiment_id FROM experiments \
     WHERE namespace = '' AND display_name = ?1";

const INSERT_DEFAULT_EXPERIMENT: &str = "INSERT INTO experiments (experiment_id, display_name, \
     description, namespace, storage_state, created_at) VALUES (?1, ?2, ?3, '', 'AVAILABLE', ?4) \
     ON CONFLICT (namespace, display_name) DO NOTHING";

impl Store {
    // ---- pipelines -------------------------------------------------------------------------

    /// Records a new pipeline and, in the same transaction, its first version with the
    /// version's spec (see the module notes for its form). A pipeline name already taken in
    /// the namespace (or a version id/name clash) is [`Error::AlreadyExists`]; then nothing is
    /// stored.
    pub async fn insert_pipeline(
        &self,
        pipeline: &PipelineRecord,
        first_version: Option<(&PipelineVersionRecord, &Value)>,
    ) -> Result<(), Error> {
        let result = async {
            let mut transaction = self.begin_write().await.map_err(|source| (source, ""))?;
            sqlx::query(INSERT_PIPELINE)
                .bind(&pipeline.pipeline_id)
                .bind(&pipeline.name)
                .bind(&pipeline.display_name)
                .bind(&pipeline.description)
                .bind(&pipeline.namespace)
                .bind(encode_tags(&pipeline.tags))
                .bind(encode_time(&pipeline.created_at))
                .execute(&mut *transaction)
                .await
                .map_err(|source| (source, "pipeline"))?;
            if let Some((version, spec)) = first_version {
                insert_version(&mut transaction, version, spec).await?;
            }
            transaction.commit().await.map_err(|source| (source, ""))
        }
        .await;
        result.map_err(|(source, what)| {
            let (kind, id) = match what {
                "pipeline" => ("pipeline", pipeline.name.as_str()),
                _ => (
                    "pipeline version",
                    first_version.map_or("", |(version, _)| version.name.as_str()),
                ),
            };
            catalog_write_error(source, kind, id, || {
                format!("insert pipeline {:?}", pipeline.name)
            })
        })
    }

    pub async fn get_pipeline(&self, pipeline_id: &str) -> Result<Option<PipelineRecord>, Error> {
        let row: Option<PipelineRow> = sqlx::query_as(GET_PIPELINE)
            .bind(pipeline_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|source| read_error(source, format!("read pipeline {pipeline_id:?}")))?;
        row.map(PipelineRecord::try_from).transpose()
    }

    /// The pipeline named `name` in `namespace` (`""`: the default namespace).
    pub async fn get_pipeline_by_name(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<PipelineRecord>, Error> {
        let row: Option<PipelineRow> = sqlx::query_as(GET_PIPELINE_BY_NAME)
            .bind(namespace)
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(|source| read_error(source, format!("read pipeline named {name:?}")))?;
        row.map(PipelineRecord::try_from).transpose()
    }

    /// A page of pipelines (of one namespace when `namespace` is given). Keys:
    /// `pipeline_id`, `name`, `display_name`, `description`, `namespace`, `created_at`.
    pub async fn list_pipelines(
        &self,
        namespace: Option<&str>,
        request: &ListRequest,
    ) -> Result<Page<PipelineRecord>, Error> {
        let scope: Vec<Scope> = namespace
            .map(|namespace| Scope::equals("namespace", namespace))
            .into_iter()
            .collect();
        let page: Page<PipelineRow> = fetch_page(&self.reader, &PIPELINES, &scope, request).await?;
        page.try_map(PipelineRecord::try_from)
    }

    /// Deletes a pipeline; with `cascade` its versions too, else a pipeline with versions is
    /// [`Error::FailedPrecondition`]. An unknown id is [`Error::NotFound`].
    pub async fn delete_pipeline(&self, pipeline_id: &str, cascade: bool) -> Result<(), Error> {
        let action = || format!("delete pipeline {pipeline_id:?}");
        let mut transaction = self
            .begin_write()
            .await
            .map_err(|source| read_error(source, action()))?;
        let n_versions: i64 = sqlx::query_scalar(COUNT_VERSIONS)
            .bind(pipeline_id)
            .fetch_one(&mut *transaction)
            .await
            .map_err(|source| read_error(source, action()))?;
        if n_versions > 0 && !cascade {
            return Err(Error::FailedPrecondition(format!(
                "pipeline {pipeline_id:?} has {n_versions} version{}: delete {} first, or \
                 delete with cascade=true",
                if n_versions == 1 { "" } else { "s" },
                if n_versions == 1 { "it" } else { "them" },
            )));
        }
        let deleted = sqlx::query("DELETE FROM pipelines WHERE pipeline_id = ?1")
            .bind(pipeline_id)
            .execute(&mut *transaction)
            .await
            .map_err(|source| read_error(source, action()))?;
        if deleted.rows_affected() == 0 {
            return Err(Error::NotFound {
                kind: "pipeline",
                id: pipeline_id.to_owned(),
            });
        }
        transaction
            .commit()
            .await
            .map_err(|source| read_error(source, action()))
    }

    // ---- versions --------------------------------------------------------------------------

    /// Records a version of an existing pipeline with its spec. An unknown pipeline is
    /// [`Error::NotFound`]; a version name taken in the pipeline is [`Error::AlreadyExists`].
    pub async fn insert_pipeline_version(
        &self,
        version: &PipelineVersionRecord,
        spec: &Value,
    ) -> Result<(), Error> {
        let result = async {
            let mut transaction = self.begin_write().await.map_err(|source| (source, ""))?;
            insert_version(&mut transaction, version, spec).await?;
            transaction.commit().await.map_err(|source| (source, ""))
        }
        .await;
        result.map_err(|(source, _)| {
            if let sqlx::Error::Database(database_error) = &source
                && database_error.is_foreign_key_violation()
            {
                return Error::NotFound {
                    kind: "pipeline",
                    id: version.pipeline_id.clone(),
                };
            }
            catalog_write_error(source, "pipeline version", &version.name, || {
                format!(
                    "insert version {:?} of pipeline {:?}",
                    version.name, version.pipeline_id
                )
            })
        })
    }

    /// Makes `version_id` the default version of `pipeline_id` (the one runs of the pipeline
    /// without a version use) until another version is uploaded. A version that is not the
    /// pipeline's is [`Error::NotFound`].
    pub async fn set_default_pipeline_version(
        &self,
        pipeline_id: &str,
        version_id: &str,
    ) -> Result<(), Error> {
        let result = sqlx::query(
            "UPDATE pipelines SET default_version_id = ?2 WHERE pipeline_id = ?1 AND EXISTS \
             (SELECT 1 FROM pipeline_versions WHERE pipeline_id = ?1 \
              AND pipeline_version_id = ?2)",
        )
        .bind(pipeline_id)
        .bind(version_id)
        .execute(&self.writer)
        .await
        .map_err(|source| {
            read_error(
                source,
                format!("set the default version of pipeline {pipeline_id:?}"),
            )
        })?;
        if result.rows_affected() == 0 {
            return Err(Error::NotFound {
                kind: "pipeline version",
                id: version_id.to_owned(),
            });
        }
        Ok(())
    }

    /// A version of a pipeline with its stored spec; `None` when the pipeline has no such
    /// version.
    pub async fn get_pipeline_version(
        &self,
        pipeline_id: &str,
        pipeline_version_id: &str,
    ) -> Result<Option<(PipelineVersionRecord, Value)>, Error> {
        let row: Option<SqliteRow> = sqlx::query(GET_VERSION)
            .bind(pipeline_id)
            .bind(pipeline_version_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|source| {
                read_error(
                    source,
                    format!("read version {pipeline_version_id:?} of pipeline {pipeline_id:?}"),
                )
            })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let decode = |source| read_error(source, format!("read version {pipeline_version_id:?}"));
        let version =
            PipelineVersionRecord::try_from(PipelineVersionRow::from_row(&row).map_err(decode)?)?;
        let spec_text: String = row.try_get("pipeline_spec").map_err(decode)?;
        let spec = serde_json::from_str(&spec_text).map_err(|error| Error::InvalidData {
            location: format!(
                "pipeline_version_specs.pipeline_spec of version {pipeline_version_id:?}"
            ),
            reason: format!("json: {error}"),
        })?;
        Ok(Some((version, spec)))
    }

    /// A page of the versions of one pipeline (without their specs). Keys:
    /// `pipeline_version_id`, `pipeline_id`, `name`, `display_name`, `description`,
    /// `code_source_url`, `created_at`. An unknown pipeline is [`Error::NotFound`].
    pub async fn list_pipeline_versions(
        &self,
        pipeline_id: &str,
        request: &ListRequest,
    ) -> Result<Page<PipelineVersionRecord>, Error> {
        if self.get_pipeline(pipeline_id).await?.is_none() {
            return Err(Error::NotFound {
                kind: "pipeline",
                id: pipeline_id.to_owned(),
            });
        }
        let scope = [Scope::equals("pipeline_id", pipeline_id)];
        let page: Page<PipelineVersionRow> =
            fetch_page(&self.reader, &PIPELINE_VERSIONS, &scope, request).await?;
        page.try_map(PipelineVersionRecord::try_from)
    }

    /// Deletes one version (and its spec). [`Error::NotFound`] when the pipeline has no such
    /// version.
    pub async fn delete_pipeline_version(
        &self,
        pipeline_id: &str,
        pipeline_version_id: &str,
    ) -> Result<(), Error> {
        let deleted = sqlx::query(
            "DELETE FROM pipeline_versions WHERE pipeline_id = ?1 AND pipeline_version_id = ?2",
        )
        .bind(pipeline_id)
        .bind(pipeline_version_id)
        .execute(&self.writer)
        .await
        .map_err(|source| {
            read_error(
                source,
                format!("delete version {pipeline_version_id:?} of pipeline {pipeline_id:?}"),
            )
        })?;
        if deleted.rows_affected() == 0 {
            return Err(Error::NotFound {
                kind: "pipeline version",
                id: pipeline_version_id.to_owned(),
            });
        }
        Ok(())
    }

    // ---- experiments -----------------------------------------------------------------------

    /// Records a new experiment; a display name taken in the namespace is
    /// [`Error::AlreadyExists`].
    pub async fn insert_experiment(&self, experiment: &ExperimentRecord) -> Result<(), Error> {
        sqlx::query(INSERT_EXPERIMENT)
            .bind(&experiment.experiment_id)
            .bind(&experiment.display_name)
            .bind(&experiment.description)
            .bind(&experiment.namespace)
            .bind(experiment.storage_state.as_str())
            .bind(encode_time(&experiment.created_at))
            .bind(experiment.last_run_created_at.as_ref().map(encode_time))
            .execute(&self.writer)
            .await
            .map(drop)
            .map_err(|source| {
                catalog_write_error(source, "experiment", &experiment.display_name, || {
                    format!("insert experiment {:?}", experiment.display_name)
                })
            })
    }

    pub async fn get_experiment(
        &self,
        experiment_id: &str,
    ) -> Result<Option<ExperimentRecord>, Error> {
        let row: Option<ExperimentRow> = sqlx::query_as(GET_EXPERIMENT)
            .bind(experiment_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|source| read_error(source, format!("read experiment {experiment_id:?}")))?;
        row.map(ExperimentRecord::try_from).transpose()
    }

    /// A page of experiments (of one namespace when `namespace` is given). Keys:
    /// `experiment_id`, `display_name` (also `name`), `description`, `namespace`,
    /// `storage_state`, `created_at`, `last_run_created_at`.
    pub async fn list_experiments(
        &self,
        namespace: Option<&str>,
        request: &ListRequest,
    ) -> Result<Page<ExperimentRecord>, Error> {
        let scope: Vec<Scope> = namespace
            .map(|namespace| Scope::equals("e.namespace", namespace))
            .into_iter()
            .collect();
        let page: Page<ExperimentRow> =
            fetch_page(&self.reader, &EXPERIMENTS, &scope, request).await?;
        page.try_map(ExperimentRecord::try_from)
    }

    /// Deletes an experiment. Its runs stay (with their `experiment_id`). An unknown id is
    /// [`Error::NotFound`].
    pub async fn delete_experiment(&self, experiment_id: &str) -> Result<(), Error> {
        let deleted = sqlx::query("DELETE FROM experiments WHERE experiment_id = ?1")
            .bind(experiment_id)
            .execute(&self.writer)
            .await
            .map_err(|source| read_error(source, format!("delete experiment {experiment_id:?}")))?;
        if deleted.rows_affected() == 0 {
            return Err(Error::NotFound {
                kind: "experiment",
                id: experiment_id.to_owned(),
            });
        }
        Ok(())
    }

    /// Archives (with its runs, and disabling its recurring runs) or unarchives (the
    /// experiment only) an experiment, in one transaction. An unknown id is
    /// [`Error::NotFound`].
    pub async fn set_experiment_storage_state(
        &self,
        experiment_id: &str,
        storage_state: StorageState,
    ) -> Result<(), Error> {
        let action = || {
            format!(
                "set experiment {experiment_id:?} {}",
                storage_state.as_str().to_lowercase()
            )
        };
        let result = async {
            let mut transaction = self.begin_write().await?;
            let updated =
                sqlx::query("UPDATE experiments SET storage_state = ?2 WHERE experiment_id = ?1")
                    .bind(experiment_id)
                    .bind(storage_state.as_str())
                    .execute(&mut *transaction)
                    .await?;
            if updated.rows_affected() == 0 {
                return Ok(false);
            }
            if storage_state == StorageState::Archived {
                sqlx::query(
                    "UPDATE runs SET storage_state = 'ARCHIVED' \
                     WHERE experiment_id = ?1 AND storage_state != 'ARCHIVED'",
                )
                .bind(experiment_id)
                .execute(&mut *transaction)
                .await?;
                sqlx::query(
                    "UPDATE recurring_runs SET mode = 'DISABLE', status = 'DISABLED', \
                     updated_at = ?2 WHERE experiment_id = ?1 AND mode != 'DISABLE'",
                )
                .bind(experiment_id)
                .bind(encode_time(&Utc::now()))
                .execute(&mut *transaction)
                .await?;
            }
            transaction.commit().await.map(|()| true)
        }
        .await;
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::NotFound {
                kind: "experiment",
                id: experiment_id.to_owned(),
            }),
            Err(source) => Err(read_error(source, action())),
        }
    }

    /// The id of the experiment named "Default" in the default namespace, where runs made
    /// without an experiment go; made the first time it is asked for (concurrent callers get
    /// the same one).
    pub async fn default_experiment_id(&self) -> Result<String, Error> {
        let read = |source| read_error(source, "read the default experiment".to_owned());
        let existing: Option<String> = sqlx::query_scalar(DEFAULT_EXPERIMENT)
            .bind(DEFAULT_EXPERIMENT_NAME)
            .fetch_optional(&self.reader)
            .await
            .map_err(read)?;
        if let Some(id) = existing {
            return Ok(id);
        }
        sqlx::query(INSERT_DEFAULT_EXPERIMENT)
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(DEFAULT_EXPERIMENT_NAME)
            .bind("All runs created without specifying an experiment will be grouped here.")
            .bind(encode_time(&Utc::now()))
            .execute(&self.writer)
            .await
            .map_err(|source| read_error(source, "create the default experiment".to_owned()))?;
        // Read through the writer: it has just seen the row.
        sqlx::query_scalar(DEFAULT_EXPERIMENT)
            .bind(DEFAULT_EXPERIMENT_NAME)
            .fetch_one(&self.writer)
            .await
            .map_err(read)
    }
}

async fn insert_version(
    transaction: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    version: &PipelineVersionRecord,
    spec: &Value,
) -> Result<(), (sqlx::Error, &'static str)> {
    sqlx::query(INSERT_VERSION)
        .bind(&version.pipeline_version_id)
        .bind(&version.pipeline_id)
        .bind(&version.name)
        .bind(&version.display_name)
        .bind(&version.description)
        .bind(&version.code_source_url)
        .bind(&version.package_url)
        .bind(encode_tags(&version.tags))
        .bind(encode_time(&version.created_at))
        .execute(&mut **transaction)
        .await
        .map_err(|source| (source, "version"))?;
    sqlx::query(INSERT_VERSION_SPEC)
        .bind(&version.pipeline_version_id)
        .bind(encode_json(spec))
        .execute(&mut **transaction)
        .await
        .map_err(|source| (source, "version"))?;
    // The newest version is the default again.
    sqlx::query("UPDATE pipelines SET default_version_id = NULL WHERE pipeline_id = ?1")
        .bind(&version.pipeline_id)
        .execute(&mut **transaction)
        .await
        .map_err(|source| (source, "version"))?;
    Ok(())
}

fn encode_tags(tags: &Tags) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "{}".to_owned())
}

fn read_error(source: sqlx::Error, action: String) -> Error {
    Error::Query { action, source }
}

/// A unique violation is [`Error::AlreadyExists`] of `kind` `id`; anything else a query error.
fn catalog_write_error(
    source: sqlx::Error,
    kind: &'static str,
    id: &str,
    action: impl FnOnce() -> String,
) -> Error {
    if let sqlx::Error::Database(database_error) = &source
        && database_error.is_unique_violation()
    {
        return Error::AlreadyExists {
            kind,
            id: id.to_owned(),
        };
    }
    Error::Query {
        action: action(),
        source,
    }
}

// ---- rows ------------------------------------------------------------------------------------

fn decode_time(location: impl FnOnce() -> String, text: &str) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| Error::InvalidData {
            location: location(),
            reason: format!("timestamp {text:?}: {error}"),
        })
}

fn decode_tags(location: impl FnOnce() -> String, text: &str) -> Result<Tags, Error> {
    serde_json::from_str(text).map_err(|error| Error::InvalidData {
        location: location(),
        reason: format!("tags: {error}"),
    })
}

#[derive(sqlx::FromRow)]
struct PipelineRow {
    pipeline_id: String,
    name: String,
    display_name: String,
    description: String,
    namespace: String,
    tags: String,
    created_at: String,
}

impl TryFrom<PipelineRow> for PipelineRecord {
    type Error = Error;

    fn try_from(row: PipelineRow) -> Result<PipelineRecord, Error> {
        let at = |column: &str| format!("pipelines.{column} of pipeline {:?}", row.pipeline_id);
        Ok(PipelineRecord {
            created_at: decode_time(|| at("created_at"), &row.created_at)?,
            tags: decode_tags(|| at("tags"), &row.tags)?,
            pipeline_id: row.pipeline_id,
            name: row.name,
            display_name: row.display_name,
            description: row.description,
            namespace: row.namespace,
        })
    }
}

#[derive(sqlx::FromRow)]
struct PipelineVersionRow {
    pipeline_version_id: String,
    pipeline_id: String,
    name: String,
    display_name: String,
    description: String,
    code_source_url: String,
    package_url: String,
    tags: String,
    created_at: String,
}

impl TryFrom<PipelineVersionRow> for PipelineVersionRecord {
    type Error = Error;

    fn try_from(row: PipelineVersionRow) -> Result<PipelineVersionRecord, Error> {
        let at = |column: &str| {
            format!(
                "pipeline_versions.{column} of version {:?}",
                row.pipeline_version_id
            )
        };
        Ok(PipelineVersionRecord {
            created_at: decode_time(|| at("created_at"), &row.created_at)?,
            tags: decode_tags(|| at("tags"), &row.tags)?,
            pipeline_version_id: row.pipeline_version_id,
            pipeline_id: row.pipeline_id,
            name: row.name,
            display_name: row.display_name,
            description: row.description,
            code_source_url: row.code_source_url,
            package_url: row.package_url,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ExperimentRow {
    experiment_id: String,
    display_name: String,
    description: String,
    namespace: String,
    storage_state: String,
    created_at: String,
    last_run_created_at: Option<String>,
}

impl TryFrom<ExperimentRow> for ExperimentRecord {
    type Error = Error;

    fn try_from(row: ExperimentRow) -> Result<ExperimentRecord, Error> {
        let at =
            |column: &str| format!("experiments.{column} of experiment {:?}", row.experiment_id);
        Ok(ExperimentRecord {
            storage_state: row.storage_state.parse().map_err(|error: Error| {
                Error::InvalidData {
                    location: at("storage_state"),
                    reason: error.to_string(),
                }
            })?,
            created_at: decode_time(|| at("created_at"), &row.created_at)?,
            last_run_created_at: row
                .last_run_created_at
                .as_deref()
                .map(|text| decode_time(|| at("last_run_created_at"), text))
                .transpose()?,
            experiment_id: row.experiment_id,
            display_name: row.display_name,
            description: row.description,
            namespace: row.namespace,
        })
    }
}
