//! Recurring runs: schedules that make a run of one pipeline each time they are due, as the
//! API's `/recurringruns` shows them, and what the server's scheduler reads to decide when to
//! fire them.
//!
//! The trigger is kept as the API's JSON object (`{cron_schedule}` or `{periodic_schedule}`):
//! the server parses and checks it; the store only keeps it. A schedule's runs are ordinary
//! runs whose `recurring_run_id` names it and whose `scheduled_at` is the due time they were
//! made for.
//!
//! Invariants:
//! - `status` is `ENABLED` exactly when `mode` is `ENABLE`.
//! - The last due time a schedule fired for is the later of its `last_fired_at` and the newest
//!   `scheduled_at` of its runs ([`RecurringRunSchedule::last_fired_at`]), so a run made just
//!   before a crash that kept `last_fired_at` from being written is never made twice.
//! - Deleting a recurring run leaves its runs (they keep its id).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::FromRow;

use crate::listing::{self, Column, ListRequest, Page, Scope, Table};
use crate::rows::{encode_json, encode_optional_time, encode_time};
use crate::{Error, Store};

/// Whether a recurring run fires (`mode` of the API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecurringRunMode {
    Enable,
    Disable,
}

impl RecurringRunMode {
    /// The API name of the mode: `ENABLE` or `DISABLE`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecurringRunMode::Enable => "ENABLE",
            RecurringRunMode::Disable => "DISABLE",
        }
    }

    /// The API `status` that goes with the mode: `ENABLED` or `DISABLED`.
    pub fn status(self) -> &'static str {
        match self {
            RecurringRunMode::Enable => "ENABLED",
            RecurringRunMode::Disable => "DISABLED",
        }
    }
}

impl FromStr for RecurringRunMode {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "ENABLE" => Ok(RecurringRunMode::Enable),
            "DISABLE" => Ok(RecurringRunMode::Disable),
            _ => Err(Error::UnknownState {
                kind: "recurring run mode",
                value: text.to_owned(),
            }),
        }
    }
}

/// A recurring run as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct RecurringRunRecord {
    pub recurring_run_id: String,
    pub display_name: String,
    pub description: String,
    pub namespace: String,
    pub experiment_id: Option<String>,
    /// The spec its runs are made from; `None` when they are made from a pipeline version.
    pub pipeline_spec: Option<Value>,
    pub pipeline_id: Option<String>,
    pub pipeline_version_id: Option<String>,
    /// The API's `runtime_config` object (`{parameters, pipeline_root}`).
    pub runtime_config: Value,
    pub service_account: String,
    /// The API's `trigger` object (`{cron_schedule}` or `{periodic_schedule}`; `{}`: once).
    pub trigger: Value,
    /// How many of its runs may be unfinished at once.
    pub max_concurrency: i64,
    /// Whether a schedule that fell behind fires only its latest due time.
    pub no_catchup: bool,
    pub mode: RecurringRunMode,
    /// Why the last attempt to fire failed; `None` after a success.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The last due time it fired for.
    pub last_fired_at: Option<DateTime<Utc>>,
}

/// What the scheduler needs of an enabled recurring run: no spec, and its runs counted.
#[derive(Clone, Debug, PartialEq)]
pub struct RecurringRunSchedule {
    pub recurring_run_id: String,
    /// The API's `trigger` object.
    pub trigger: Value,
    pub max_concurrency: i64,
    pub no_catchup: bool,
    pub created_at: DateTime<Utc>,
    /// The last due time it fired for: the later of the recorded time and the newest
    /// `scheduled_at` among its runs.
    pub last_fired_at: Option<DateTime<Utc>>,
    /// Its runs that have not ended (PENDING, RUNNING or CANCELING).
    pub active_runs: i64,
}

/// The columns of [`RecurringRunRow`].
macro_rules! recurring_columns {
    () => {
        "recurring_run_id, display_name, description, namespace, experiment_id, pipeline_spec, \
         pipeline_id, pipeline_version_id, runtime_config, service_account, trigger_spec, \
         max_concurrency, no_catchup, mode, error, created_at, updated_at, last_fired_at"
    };
}

const INSERT_RECURRING_RUN: &str = "INSERT INTO recurring_runs (recurring_run_id, display_name, \
     description, namespace, experiment_id, pipeline_spec, pipeline_id, pipeline_version_id, \
     runtime_config, service_account, trigger_spec, max_concurrency, no_catchup, mode, status, \
     error, created_at, updated_at, last_fired_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

const EXPERIMENT_EXISTS: &str = "SELECT 1 FROM experiments WHERE experiment_id = ?1";

const GET_RECURRING_RUN: &str = concat!(
    "SELECT ",
    recurring_columns!(),
    " FROM recurring_runs WHERE recurring_run_id = ?1"
);

const DELETE_RECURRING_RUN: &str = "DELETE FROM recurring_runs WHERE recurring_run_id = ?1";

const SET_MODE: &str = "UPDATE recurring_runs SET mode = ?2, status = ?3, updated_at = ?4 \
     WHERE recurring_run_id = ?1";

/// Keeps the later of the two times (fixed-width text compares as time).
const RECORD_FIRED: &str = "UPDATE recurring_runs SET \
     last_fired_at = CASE WHEN last_fired_at IS NULL OR last_fired_at < ?2 THEN ?2 \
     ELSE last_fired_at END, error = ?3 WHERE recurring_run_id = ?1";

/// The newest due time among a schedule's runs walks `runs_by_recurring_run_scheduled_at`;
/// the count of its unfinished runs walks the partial `runs_unfinished_by_recurring_run`
/// (migration 0006), whose condition it repeats.
const ENABLED_SCHEDULES: &str = "SELECT rr.recurring_run_id, rr.trigger_spec, \
     rr.max_concurrency, rr.no_catchup, rr.created_at, rr.last_fired_at, \
     (SELECT max(r.scheduled_at) FROM runs r WHERE r.recurring_run_id = rr.recurring_run_id) \
     AS last_scheduled_at, \
     (SELECT count(*) FROM runs u INDEXED BY runs_unfinished_by_recurring_run \
     WHERE u.recurring_run_id = rr.recurring_run_id AND u.recurring_run_id IS NOT NULL \
     AND u.state IN ('PENDING', 'RUNNING', 'CANCELING')) AS active_runs \
     FROM recurring_runs rr WHERE rr.mode = 'ENABLE' ORDER BY rr.created_at, rr.recurring_run_id";

/// The API keys of recurring runs that lists sort and filter on.
static RECURRING_RUNS: Table = Table {
    name: "recurring runs",
    from: "recurring_runs",
    select: recurring_columns!(),
    id: "recurring_run_id",
    columns: &[
        Column::text("recurring_run_id", "recurring_run_id"),
        Column::text("display_name", "display_name"),
        Column::text("description", "description"),
        Column::text("namespace", "namespace"),
        Column::text("experiment_id", "experiment_id").nullable(),
        Column::text("pipeline_id", "pipeline_id").nullable(),
        Column::text("pipeline_version_id", "pipeline_version_id").nullable(),
        Column::text("service_account", "service_account"),
        Column::text("mode", "mode"),
        Column::text("status", "status"),
        Column::int("max_concurrency", "max_concurrency"),
        Column::bool("no_catchup", "no_catchup"),
        Column::timestamp("created_at", "created_at"),
        Column::timestamp("updated_at", "updated_at"),
    ],
    default_sort: ("created_at", true),
    named_sort: None,
};

#[derive(FromRow)]
struct RecurringRunRow {
    recurring_run_id: String,
    display_name: String,
    description: String,
    namespace: String,
    experiment_id: Option<String>,
    pipeline_spec: Option<String>,
    pipeline_id: Option<String>,
    pipeline_version_id: Option<String>,
    runtime_config: String,
    service_account: String,
    trigger_spec: String,
    max_concurrency: i64,
    no_catchup: bool,
    mode: String,
    error: Option<String>,
    created_at: String,
    updated_at: String,
    last_fired_at: Option<String>,
}

#[derive(FromRow)]
struct ScheduleRow {
    recurring_run_id: String,
    trigger_spec: String,
    max_concurrency: i64,
    no_catchup: bool,
    created_at: String,
    last_fired_at: Option<String>,
    last_scheduled_at: Option<String>,
    active_runs: i64,
}

/// Decodes the columns of one recurring run, naming it in errors.
struct Decoder<'a> {
    recurring_run_id: &'a str,
}

impl Decoder<'_> {
    fn invalid(&self, column: &str, reason: String) -> Error {
        Error::InvalidData {
            location: format!(
                "recurring_runs.{column} of recurring run {:?}",
                self.recurring_run_id
            ),
            reason,
        }
    }

    fn time(&self, column: &str, text: &str) -> Result<DateTime<Utc>, Error> {
        DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|error| self.invalid(column, format!("timestamp {text:?}: {error}")))
    }

    fn optional_time(
        &self,
        column: &str,
        text: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        text.map(|text| self.time(column, text)).transpose()
    }

    fn json(&self, column: &str, text: &str) -> Result<Value, Error> {
        serde_json::from_str(text).map_err(|error| self.invalid(column, format!("json: {error}")))
    }
}

impl TryFrom<RecurringRunRow> for RecurringRunRecord {
    type Error = Error;

    fn try_from(row: RecurringRunRow) -> Result<RecurringRunRecord, Error> {
        let at = Decoder {
            recurring_run_id: &row.recurring_run_id,
        };
        let pipeline_spec = row
            .pipeline_spec
            .as_deref()
            .map(|text| at.json("pipeline_spec", text))
            .transpose()?;
        let runtime_config = at.json("runtime_config", &row.runtime_config)?;
        let trigger = at.json("trigger_spec", &row.trigger_spec)?;
        let mode = row
            .mode
            .parse()
            .map_err(|error: Error| at.invalid("mode", error.to_string()))?;
        let created_at = at.time("created_at", &row.created_at)?;
        let updated_at = at.time("updated_at", &row.updated_at)?;
        let last_fired_at = at.optional_time("last_fired_at", row.last_fired_at.as_deref())?;
        Ok(RecurringRunRecord {
            recurring_run_id: row.recurring_run_id,
            display_name: row.display_name,
            description: row.description,
            namespace: row.namespace,
            experiment_id: row.experiment_id,
            pipeline_spec,
            pipeline_id: row.pipeline_id,
            pipeline_version_id: row.pipeline_version_id,
            runtime_config,
            service_account: row.service_account,
            trigger,
            max_concurrency: row.max_concurrency,
            no_catchup: row.no_catchup,
            mode,
            error: row.error,
            created_at,
            updated_at,
            last_fired_at,
        })
    }
}

impl TryFrom<ScheduleRow> for RecurringRunSchedule {
    type Error = Error;

    fn try_from(row: ScheduleRow) -> Result<RecurringRunSchedule, Error> {
        let at = Decoder {
            recurring_run_id: &row.recurring_run_id,
        };
        let trigger = at.json("trigger_spec", &row.trigger_spec)?;
        let created_at = at.time("created_at", &row.created_at)?;
        let recorded = at.optional_time("last_fired_at", row.last_fired_at.as_deref())?;
        let scheduled = row
            .last_scheduled_at
            .as_deref()
            .map(|text| {
                DateTime::parse_from_rfc3339(text)
                    .map(|time| time.with_timezone(&Utc))
                    .map_err(|error| Error::InvalidData {
                        location: format!(
                            "runs.scheduled_at of a run of recurring run {:?}",
                            row.recurring_run_id
                        ),
                        reason: format!("timestamp {text:?}: {error}"),
                    })
            })
            .transpose()?;
        Ok(RecurringRunSchedule {
            last_fired_at: recorded.max(scheduled),
            recurring_run_id: row.recurring_run_id,
            trigger,
            max_concurrency: row.max_concurrency,
            no_catchup: row.no_catchup,
            created_at,
            active_runs: row.active_runs,
        })
    }
}

impl Store {
    /// Records a new recurring run. Fails with [`Error::AlreadyExists`] if the id is taken and
    /// with [`Error::NotFound`] (kind "experiment") if `experiment_id` names no experiment;
    /// nothing is written then.
    pub async fn insert_recurring_run(&self, record: &RecurringRunRecord) -> Result<(), Error> {
        let mut missing_experiment = None;
        let result = async {
            let mut transaction = self.begin_write().await?;
            if let Some(experiment_id) = &record.experiment_id {
                let found: Option<i64> = sqlx::query_scalar(EXPERIMENT_EXISTS)
                    .bind(experiment_id)
                    .fetch_optional(&mut *transaction)
                    .await?;
                if found.is_none() {
                    missing_experiment = Some(experiment_id.clone());
                    return Ok(());
                }
            }
            sqlx::query(INSERT_RECURRING_RUN)
                .bind(&record.recurring_run_id)
                .bind(&record.display_name)
                .bind(&record.description)
                .bind(&record.namespace)
                .bind(&record.experiment_id)
                .bind(record.pipeline_spec.as_ref().map(encode_json))
                .bind(&record.pipeline_id)
                .bind(&record.pipeline_version_id)
                .bind(encode_json(&record.runtime_config))
                .bind(&record.service_account)
                .bind(encode_json(&record.trigger))
                .bind(record.max_concurrency)
                .bind(record.no_catchup)
                .bind(record.mode.as_str())
                .bind(record.mode.status())
                .bind(&record.error)
                .bind(encode_time(&record.created_at))
                .bind(encode_time(&record.updated_at))
                .bind(encode_optional_time(&record.last_fired_at))
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await
        }
        .await;
        if let Some(experiment_id) = missing_experiment {
            return Err(Error::NotFound {
                kind: "experiment",
                id: experiment_id,
            });
        }
        result.map_err(|source| match &source {
            sqlx::Error::Database(e) if e.is_unique_violation() => Error::AlreadyExists {
                kind: "recurring run",
                id: record.recurring_run_id.clone(),
            },
            _ => Error::Query {
                action: format!("insert recurring run {:?}", record.recurring_run_id),
                source,
            },
        })
    }

    /// The recurring run with this id.
    pub async fn get_recurring_run(
        &self,
        recurring_run_id: &str,
    ) -> Result<Option<RecurringRunRecord>, Error> {
        let row: Option<RecurringRunRow> = sqlx::query_as(GET_RECURRING_RUN)
            .bind(recurring_run_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|source| Error::Query {
                action: format!("read recurring run {recurring_run_id:?}"),
                source,
            })?;
        row.map(RecurringRunRecord::try_from).transpose()
    }

    /// One page of recurring runs (newest first unless the request sorts otherwise), only
    /// those of `experiment_id` when given. Keys: see `RECURRING_RUNS`; a bad key, value or
    /// token is [`Error::InvalidArgument`].
    pub async fn list_recurring_runs(
        &self,
        request: &ListRequest,
        experiment_id: Option<&str>,
    ) -> Result<Page<RecurringRunRecord>, Error> {
        let scope: Vec<Scope> = experiment_id
            .map(|id| Scope::equals("experiment_id", id))
            .into_iter()
            .collect();
        let page: Page<RecurringRunRow> =
            listing::fetch_page(&self.reader, &RECURRING_RUNS, &scope, request).await?;
        page.try_map(RecurringRunRecord::try_from)
    }

    /// Deletes a recurring run; its runs stay. Fails with [`Error::NotFound`] if there is no
    /// such recurring run.
    pub async fn delete_recurring_run(&self, recurring_run_id: &str) -> Result<(), Error> {
        let result = sqlx::query(DELETE_RECURRING_RUN)
            .bind(recurring_run_id)
            .execute(&self.writer)
            .await
            .map_err(|source| Error::Query {
                action: format!("delete recurring run {recurring_run_id:?}"),
                source,
            })?;
        if result.rows_affected() == 0 {
            return Err(not_found(recurring_run_id));
        }
        Ok(())
    }

    /// Enables or disables a recurring run (its `status` follows), noting `now` as its update
    /// time. When it fires and what it fires for is untouched. Fails with [`Error::NotFound`]
    /// if there is no such recurring run.
    pub async fn set_recurring_run_mode(
        &self,
        recurring_run_id: &str,
        mode: RecurringRunMode,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let result = sqlx::query(SET_MODE)
            .bind(recurring_run_id)
            .bind(mode.as_str())
            .bind(mode.status())
            .bind(encode_time(&now))
            .execute(&self.writer)
            .await
            .map_err(|source| Error::Query {
                action: format!(
                    "set mode of recurring run {recurring_run_id:?} to {}",
                    mode.as_str()
                ),
                source,
            })?;
        if result.rows_affected() == 0 {
            return Err(not_found(recurring_run_id));
        }
        Ok(())
    }

    /// Records that the recurring run fired for the due time `scheduled_at` (kept only if it
    /// is later than the one recorded), with the error of that attempt (`None`: it made its
    /// run). Fails with [`Error::NotFound`] if there is no such recurring run (it was deleted
    /// meanwhile).
    pub async fn record_recurring_run_fired(
        &self,
        recurring_run_id: &str,
        scheduled_at: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<(), Error> {
        let result = sqlx::query(RECORD_FIRED)
            .bind(recurring_run_id)
            .bind(encode_time(&scheduled_at))
            .bind(error)
            .execute(&self.writer)
            .await
            .map_err(|source| Error::Query {
                action: format!("record a firing of recurring run {recurring_run_id:?}"),
                source,
            })?;
        if result.rows_affected() == 0 {
            return Err(not_found(recurring_run_id));
        }
        Ok(())
    }

    /// Every enabled recurring run, oldest first, with when it last fired and how many of its
    /// runs are unfinished: what the scheduler decides from. One statement.
    pub async fn enabled_recurring_run_schedules(
        &self,
    ) -> Result<Vec<RecurringRunSchedule>, Error> {
        let rows: Vec<ScheduleRow> = sqlx::query_as(ENABLED_SCHEDULES)
            .fetch_all(&self.reader)
            .await
            .map_err(|source| Error::Query {
                action: "read enabled recurring runs".to_owned(),
                source,
            })?;
        rows.into_iter()
            .map(RecurringRunSchedule::try_from)
            .collect()
    }
}

fn not_found(recurring_run_id: &str) -> Error {
    Error::NotFound {
        kind: "recurring run",
        id: recurring_run_id.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    /// The scheduler's per-schedule reads seek an index instead of walking a schedule's runs.
    #[tokio::test]
    async fn schedule_reads_use_indices() {
        let directory = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&directory.path().join("plan.db"))
            .await
            .unwrap();
        let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {}",
            super::ENABLED_SCHEDULES
        )))
        .fetch_all(&store.reader)
        .await
        .unwrap();
        let plan: Vec<String> = rows.into_iter().map(|row| row.3).collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("runs_by_recurring_run_scheduled_at (recurring_run_id=?)"),
            "{plan}"
        );
        assert!(
            plan.contains("runs_unfinished_by_recurring_run (recurring_run_id=?)"),
            "{plan}"
        );
    }
}
