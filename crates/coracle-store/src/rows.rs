//! How records map to columns: the row types read back from SQLite and the value encodings.

use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::{ArtifactRecord, Error, RunRecord, RunSummary, TaskRecord};

/// Fixed-width RFC 3339 (nine fractional digits, `Z`), so text order is time order and the
/// value round-trips exactly.
pub(crate) fn encode_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(crate) fn encode_optional_time(time: &Option<DateTime<Utc>>) -> Option<String> {
    time.as_ref().map(encode_time)
}

/// Compact JSON text.
pub(crate) fn encode_json(value: &Value) -> String {
    value.to_string()
}

/// The record a row belongs to, formatted only when a value fails to decode.
enum Owner<'a> {
    Run(&'a str),
    Task {
        run_id: &'a str,
        task_id: &'a str,
        attempt: i64,
    },
    Artifact(&'a str),
}

/// Names a column of a row for error messages: `runs.state of run "abc"`.
struct Location<'a> {
    table: &'static str,
    owner: Owner<'a>,
}

impl Location<'_> {
    fn of(&self, column: &str) -> String {
        let table = self.table;
        match self.owner {
            Owner::Run(run_id) => format!("{table}.{column} of run {run_id:?}"),
            Owner::Task {
                run_id,
                task_id,
                attempt,
            } => {
                format!("{table}.{column} of task {task_id:?} attempt {attempt} of run {run_id:?}")
            }
            Owner::Artifact(artifact_id) => {
                format!("{table}.{column} of artifact {artifact_id:?}")
            }
        }
    }

    fn time(&self, column: &str, text: &str) -> Result<DateTime<Utc>, Error> {
        DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|error| Error::InvalidData {
                location: self.of(column),
                reason: format!("timestamp {text:?}: {error}"),
            })
    }

    fn optional_time(
        &self,
        column: &str,
        text: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        text.map(|text| self.time(column, text)).transpose()
    }

    fn json(&self, column: &str, text: &str) -> Result<Value, Error> {
        serde_json::from_str(text).map_err(|error| Error::InvalidData {
            location: self.of(column),
            reason: format!("json: {error}"),
        })
    }

    fn state<S: FromStr<Err = Error>>(&self, text: &str) -> Result<S, Error> {
        text.parse().map_err(|error: Error| Error::InvalidData {
            location: self.of("state"),
            reason: error.to_string(),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RunRow {
    run_id: String,
    display_name: String,
    pipeline_name: String,
    parameters: String,
    pipeline_root: String,
    state: String,
    error: Option<String>,
    outputs: String,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct RunWithSpecRow {
    #[sqlx(flatten)]
    run: RunRow,
    pipeline_spec: String,
}

impl TryFrom<RunRow> for RunSummary {
    type Error = Error;

    fn try_from(row: RunRow) -> Result<RunSummary, Error> {
        let at = Location {
            table: "runs",
            owner: Owner::Run(&row.run_id),
        };
        Ok(RunSummary {
            parameters: at.json("parameters", &row.parameters)?,
            state: at.state(&row.state)?,
            outputs: at.json("outputs", &row.outputs)?,
            created_at: at.time("created_at", &row.created_at)?,
            started_at: at.optional_time("started_at", row.started_at.as_deref())?,
            finished_at: at.optional_time("finished_at", row.finished_at.as_deref())?,
            run_id: row.run_id,
            display_name: row.display_name,
            pipeline_name: row.pipeline_name,
            pipeline_root: row.pipeline_root,
            error: row.error,
        })
    }
}

impl TryFrom<RunWithSpecRow> for RunRecord {
    type Error = Error;

    fn try_from(row: RunWithSpecRow) -> Result<RunRecord, Error> {
        let pipeline_spec = Location {
            table: "run_specs",
            owner: Owner::Run(&row.run.run_id),
        }
        .json("pipeline_spec", &row.pipeline_spec)?;
        let summary = RunSummary::try_from(row.run)?;
        Ok(RunRecord {
            run_id: summary.run_id,
            display_name: summary.display_name,
            pipeline_name: summary.pipeline_name,
            pipeline_spec,
            parameters: summary.parameters,
            pipeline_root: summary.pipeline_root,
            state: summary.state,
            error: summary.error,
            outputs: summary.outputs,
            created_at: summary.created_at,
            started_at: summary.started_at,
            finished_at: summary.finished_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TaskRow {
    run_id: String,
    task_id: String,
    attempt: i64,
    name: String,
    component: String,
    parent_task_id: Option<String>,
    state: String,
    inputs: String,
    outputs: String,
    exit_code: Option<i64>,
    error: Option<String>,
    log_path: Option<String>,
    work_dir: Option<String>,
    started_at: Option<String>,
    finished_at: Option<String>,
}

impl TryFrom<TaskRow> for TaskRecord {
    type Error = Error;

    fn try_from(row: TaskRow) -> Result<TaskRecord, Error> {
        let at = Location {
            table: "tasks",
            owner: Owner::Task {
                run_id: &row.run_id,
                task_id: &row.task_id,
                attempt: row.attempt,
            },
        };
        Ok(TaskRecord {
            state: at.state(&row.state)?,
            inputs: at.json("inputs", &row.inputs)?,
            outputs: at.json("outputs", &row.outputs)?,
            started_at: at.optional_time("started_at", row.started_at.as_deref())?,
            finished_at: at.optional_time("finished_at", row.finished_at.as_deref())?,
            run_id: row.run_id,
            task_id: row.task_id,
            attempt: row.attempt,
            name: row.name,
            component: row.component,
            parent_task_id: row.parent_task_id,
            exit_code: row.exit_code,
            error: row.error,
            log_path: row.log_path,
            work_dir: row.work_dir,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ArtifactRow {
    artifact_id: String,
    run_id: String,
    producer_task_id: String,
    output_key: String,
    name: String,
    uri: String,
    schema_title: String,
    schema_version: String,
    metadata: String,
    created_at: String,
}

impl TryFrom<ArtifactRow> for ArtifactRecord {
    type Error = Error;

    fn try_from(row: ArtifactRow) -> Result<ArtifactRecord, Error> {
        let at = Location {
            table: "artifacts",
            owner: Owner::Artifact(&row.artifact_id),
        };
        Ok(ArtifactRecord {
            metadata: at.json("metadata", &row.metadata)?,
            created_at: at.time("created_at", &row.created_at)?,
            artifact_id: row.artifact_id,
            run_id: row.run_id,
            producer_task_id: row.producer_task_id,
            output_key: row.output_key,
            name: row.name,
            uri: row.uri,
            schema_title: row.schema_title,
            schema_version: row.schema_version,
        })
    }
}
