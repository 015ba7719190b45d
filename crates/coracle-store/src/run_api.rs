//! Runs as the API knows them: the API columns of `runs` (experiment, storage state, who
//! drives the run, …), the history of a run's states, archiving and deleting, and the reads
//! a server needs to create and resume runs.
//!
//! Every state change of a run lands in `run_state_history` through the triggers of migration
//! 0005, whichever statement made it.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use crate::listing::{self, Column, ListRequest, NamedSort, Page, Scope, Table};
use crate::rows::{RunRow, RunWithSpecRow, encode_json, encode_optional_time, encode_time};
use crate::{Error, RunRecord, RunState, RunSummary};

/// `driver` of a run made by `coracle run`.
pub const DRIVER_CLI: &str = "cli";
/// `driver` of a run made through the API: the server resumes it when it starts again.
pub const DRIVER_SERVER: &str = "server";

/// Whether a run (or experiment) shows in default listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StorageState {
    Available,
    Archived,
}

impl StorageState {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageState::Available => "AVAILABLE",
            StorageState::Archived => "ARCHIVED",
        }
    }
}

impl FromStr for StorageState {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "AVAILABLE" => Ok(StorageState::Available),
            "ARCHIVED" => Ok(StorageState::Archived),
            _ => Err(Error::UnknownState {
                kind: "storage",
                value: text.to_owned(),
            }),
        }
    }
}

/// The columns of a run that only the API uses. Runs of `coracle run` have the defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct RunApiFields {
    pub experiment_id: Option<String>,
    pub description: String,
    pub storage_state: StorageState,
    pub namespace: String,
    /// Set when the run was made from a stored pipeline version.
    pub pipeline_id: Option<String>,
    pub pipeline_version_id: Option<String>,
    /// Set when a recurring run fired it.
    pub recurring_run_id: Option<String>,
    pub service_account: String,
    /// When a recurring run meant it to start.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// [`DRIVER_CLI`] or [`DRIVER_SERVER`].
    pub driver: String,
}

impl Default for RunApiFields {
    fn default() -> Self {
        RunApiFields {
            experiment_id: None,
            description: String::new(),
            storage_state: StorageState::Available,
            namespace: String::new(),
            pipeline_id: None,
            pipeline_version_id: None,
            recurring_run_id: None,
            service_account: String::new(),
            scheduled_at: None,
            driver: DRIVER_CLI.to_owned(),
        }
    }
}

/// A run with its spec and API columns.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiRun {
    pub run: RunRecord,
    pub api: RunApiFields,
}

/// A run without its spec, with its API columns: what listings return.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiRunSummary {
    pub run: RunSummary,
    pub api: RunApiFields,
}

/// One entry of a run's state history.
#[derive(Clone, Debug, PartialEq)]
pub struct RunStateChange {
    pub state: RunState,
    pub at: DateTime<Utc>,
    /// The run's error when it entered this state.
    pub error: Option<String>,
}

/// The API columns, after the columns of `RunRow`.
macro_rules! api_columns {
    () => {
        "r.experiment_id, r.description, r.storage_state, r.namespace, r.pipeline_id, \
         r.pipeline_version_id, r.recurring_run_id, r.service_account, r.scheduled_at, r.driver"
    };
}

/// The columns of `RunRow`.
macro_rules! base_columns {
    () => {
        "r.run_id, r.display_name, r.pipeline_name, r.parameters, r.pipeline_root, r.state, \
         r.error, r.outputs, r.created_at, r.started_at, r.finished_at"
    };
}

/// Runs as `GET /runs` lists them. Sorting is offered on the keys an index serves (migration
/// 0005), so that no page sorts the table.
static RUNS: Table = Table {
    name: "runs",
    from: "runs r",
    select: concat!(base_columns!(), ", ", api_columns!()),
    id: "r.run_id",
    columns: &[
        Column::text("run_id", "r.run_id"),
        Column::text("display_name", "r.display_name"),
        // The name of `display_name` in older clients.
        Column::text("name", "r.display_name"),
        Column::timestamp("created_at", "r.created_at"),
        Column::timestamp("finished_at", "r.finished_at").nullable(),
        Column::text("state", "r.state").filter_only(),
        Column::text("storage_state", "r.storage_state").filter_only(),
        Column::text("experiment_id", "r.experiment_id")
            .nullable()
            .filter_only(),
        Column::text("description", "r.description").filter_only(),
        Column::text("pipeline_name", "r.pipeline_name").filter_only(),
        Column::text("pipeline_id", "r.pipeline_id")
            .nullable()
            .filter_only(),
        Column::text("pipeline_version_id", "r.pipeline_version_id")
            .nullable()
            .filter_only(),
        Column::text("recurring_run_id", "r.recurring_run_id")
            .nullable()
            .filter_only(),
        Column::timestamp("scheduled_at", "r.scheduled_at")
            .nullable()
            .filter_only(),
        Column::text("service_account", "r.service_account").filter_only(),
    ],
    default_sort: ("created_at", true),
    named_sort: Some(&RUN_METRIC_SORT),
};

/// `metric:<name>`: runs by the value of one of their metrics (`run_metrics`, migration 0009),
/// runs without that metric last in both directions. A page walks `run_metrics_by_name` and
/// looks each run up by id; after the last run with the metric, the others follow by creation
/// time.
static RUN_METRIC_SORT: NamedSort = NamedSort {
    prefix: "metric:",
    what: "a run metric",
    from: "run_metrics m CROSS JOIN runs r ON r.run_id = m.run_id",
    name_sql: "m.name = ?",
    value_sql: "m.value",
    id_sql: "m.run_id",
    missing_sql: "NOT EXISTS (SELECT 1 FROM run_metrics x WHERE x.run_id = r.run_id AND x.name = ?)",
    missing_sort: &RUN_CREATED_AT,
};

/// Runs without the metric follow in creation order (newest first when the metric is sorted
/// descending), as the default order's indexes serve it under the usual filters.
static RUN_CREATED_AT: Column = Column::timestamp("created_at", "r.created_at");

const INSERT_API_RUN: &str = "INSERT INTO runs (run_id, display_name, pipeline_name, parameters, \
     pipeline_root, state, error, outputs, created_at, started_at, finished_at, experiment_id, \
     description, storage_state, namespace, pipeline_id, pipeline_version_id, recurring_run_id, \
     service_account, scheduled_at, driver) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
     ?19, ?20, ?21)";

const INSERT_RUN_SPEC: &str = "INSERT INTO run_specs (run_id, pipeline_spec) VALUES (?1, ?2)";

const EXPERIMENT_STORAGE_STATE: &str =
    "SELECT storage_state FROM experiments WHERE experiment_id = ?1";

const GET_API_RUN: &str = concat!(
    "SELECT ",
    base_columns!(),
    ", s.pipeline_spec, ",
    api_columns!(),
    " FROM runs r JOIN run_specs s ON s.run_id = r.run_id WHERE r.run_id = ?1"
);

const GET_API_RUN_SUMMARY: &str = concat!(
    "SELECT ",
    base_columns!(),
    ", ",
    api_columns!(),
    " FROM runs r WHERE r.run_id = ?1"
);

const STATE_HISTORY: &str =
    "SELECT state, at, error FROM run_state_history WHERE run_id = ?1 ORDER BY seq";

const SET_STORAGE_STATE: &str = "UPDATE runs SET storage_state = ?2 WHERE run_id = ?1";

const SET_DRIVER: &str = "UPDATE runs SET driver = ?2 WHERE run_id = ?1";

const DELETE_RUN: &str = "DELETE FROM runs WHERE run_id = ?1";

/// Repeats the condition of the partial index `runs_unfinished` so that SQLite uses it.
const UNFINISHED_RUNS_OF_DRIVER: &str = "SELECT run_id FROM runs \
     WHERE state IN ('PENDING', 'RUNNING', 'CANCELING') AND driver = ?1 \
     ORDER BY created_at, run_id";

/// The spec of one version of a pipeline, or of its newest version when none is named.
const VERSION_SPEC: &str = "SELECT v.pipeline_version_id, s.pipeline_spec \
     FROM pipeline_versions v JOIN pipeline_version_specs s \
     ON s.pipeline_version_id = v.pipeline_version_id \
     WHERE v.pipeline_id = ?1 AND v.pipeline_version_id = COALESCE(?2, \
     (SELECT p.default_version_id FROM pipelines p WHERE p.pipeline_id = ?1), \
     (SELECT n.pipeline_version_id FROM pipeline_versions n WHERE n.pipeline_id = ?1 \
      ORDER BY n.created_at DESC, n.pipeline_version_id DESC LIMIT 1))";

#[derive(FromRow)]
struct ApiColumnsRow {
    experiment_id: Option<String>,
    description: String,
    storage_state: String,
    namespace: String,
    pipeline_id: Option<String>,
    pipeline_version_id: Option<String>,
    recurring_run_id: Option<String>,
    service_account: String,
    scheduled_at: Option<String>,
    driver: String,
}

impl ApiColumnsRow {
    fn decode(self, run_id: &str) -> Result<RunApiFields, Error> {
        let invalid = |column: &str, reason: String| Error::InvalidData {
            location: format!("runs.{column} of run {run_id:?}"),
            reason,
        };
        let storage_state = self
            .storage_state
            .parse()
            .map_err(|e: Error| invalid("storage_state", e.to_string()))?;
        let scheduled_at = self
            .scheduled_at
            .map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| invalid("scheduled_at", format!("timestamp {text:?}: {e}")))
            })
            .transpose()?;
        Ok(RunApiFields {
            experiment_id: self.experiment_id,
            description: self.description,
            storage_state,
            namespace: self.namespace,
            pipeline_id: self.pipeline_id,
            pipeline_version_id: self.pipeline_version_id,
            recurring_run_id: self.recurring_run_id,
            service_account: self.service_account,
            scheduled_at,
            driver: self.driver,
        })
    }
}

#[derive(FromRow)]
struct ApiRunRow {
    #[sqlx(flatten)]
    run: RunWithSpecRow,
    #[sqlx(flatten)]
    api: ApiColumnsRow,
}

/// A listed run: `base_columns!()` then `api_columns!()`.
#[derive(FromRow)]
struct ApiRunSummaryRow {
    #[sqlx(flatten)]
    run: RunRow,
    #[sqlx(flatten)]
    api: ApiColumnsRow,
}

impl TryFrom<ApiRunSummaryRow> for ApiRunSummary {
    type Error = Error;

    fn try_from(row: ApiRunSummaryRow) -> Result<ApiRunSummary, Error> {
        let run = RunSummary::try_from(row.run)?;
        let api = row.api.decode(&run.run_id)?;
        Ok(ApiRunSummary { run, api })
    }
}

impl crate::Store {
    /// Records a new run with its API columns.
    /// Fails with [`Error::AlreadyExists`] if the id is taken, with [`Error::NotFound`] (kind
    /// "experiment") if `api.experiment_id` names no experiment and with
    /// [`Error::InvalidArgument`] if that experiment is archived; nothing is written then.
    pub async fn insert_api_run(&self, run: &RunRecord, api: &RunApiFields) -> Result<(), Error> {
        let mut refused = None;
        let result = async {
            let mut transaction = self.begin_write().await?;
            if let Some(experiment_id) = &api.experiment_id {
                let found: Option<String> = sqlx::query_scalar(EXPERIMENT_STORAGE_STATE)
                    .bind(experiment_id)
                    .fetch_optional(&mut *transaction)
                    .await?;
                match found.as_deref() {
                    None => {
                        refused = Some(Error::NotFound {
                            kind: "experiment",
                            id: experiment_id.clone(),
                        });
                        return Ok(());
                    }
                    Some("ARCHIVED") => {
                        refused = Some(Error::InvalidArgument(format!(
                            "experiment {experiment_id:?} is archived: unarchive it to \
                             create runs in it"
                        )));
                        return Ok(());
                    }
                    Some(_) => {}
                }
            }
            sqlx::query(INSERT_API_RUN)
                .bind(&run.run_id)
                .bind(&run.display_name)
                .bind(&run.pipeline_name)
                .bind(encode_json(&run.parameters))
                .bind(&run.pipeline_root)
                .bind(run.state.as_str())
                .bind(&run.error)
                .bind(encode_json(&run.outputs))
                .bind(encode_time(&run.created_at))
                .bind(encode_optional_time(&run.started_at))
                .bind(encode_optional_time(&run.finished_at))
                .bind(&api.experiment_id)
                .bind(&api.description)
                .bind(api.storage_state.as_str())
                .bind(&api.namespace)
                .bind(&api.pipeline_id)
                .bind(&api.pipeline_version_id)
                .bind(&api.recurring_run_id)
                .bind(&api.service_account)
                .bind(encode_optional_time(&api.scheduled_at))
                .bind(&api.driver)
                .execute(&mut *transaction)
                .await?;
            sqlx::query(INSERT_RUN_SPEC)
                .bind(&run.run_id)
                .bind(encode_json(&run.pipeline_spec))
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await
        }
        .await;
        if let Some(error) = refused {
            return Err(error);
        }
        result.map_err(|source| match &source {
            sqlx::Error::Database(e) if e.is_unique_violation() => Error::AlreadyExists {
                kind: "run",
                id: run.run_id.clone(),
            },
            _ => Error::Query {
                action: format!("insert run {:?}", run.run_id),
                source,
            },
        })
    }

    /// One page of runs (without their specs), in the request's order (newest first by
    /// default), limited to one experiment when `experiment_id` is given. Filter and sort
    /// keys: see `RUNS` in this module; an unknown one is [`Error::InvalidArgument`].
    pub async fn list_api_runs(
        &self,
        request: &ListRequest,
        experiment_id: Option<&str>,
    ) -> Result<Page<ApiRunSummary>, Error> {
        let scope: Vec<Scope> = experiment_id
            .map(|id| Scope::equals("r.experiment_id", id))
            .into_iter()
            .collect();
        let page: Page<ApiRunSummaryRow> =
            listing::fetch_page(&self.reader, &RUNS, &scope, request).await?;
        page.try_map(ApiRunSummary::try_from)
    }

    /// The run with this id, with its spec and API columns.
    pub async fn get_api_run(&self, run_id: &str) -> Result<Option<ApiRun>, Error> {
        let row: Option<ApiRunRow> = sqlx::query_as(GET_API_RUN)
            .bind(run_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|source| query_error(source, format!("read run {run_id:?}")))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let run = RunRecord::try_from(row.run)?;
        let api = row.api.decode(&run.run_id)?;
        Ok(Some(ApiRun { run, api }))
    }

    /// The run with this id and its API columns, without reading its spec.
    pub async fn get_api_run_summary(&self, run_id: &str) -> Result<Option<ApiRunSummary>, Error> {
        let row: Option<ApiRunSummaryRow> = sqlx::query_as(GET_API_RUN_SUMMARY)
            .bind(run_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|source| query_error(source, format!("read run {run_id:?}")))?;
        row.map(ApiRunSummary::try_from).transpose()
    }

    /// Every state the run has been in, oldest first (empty for an unknown run).
    pub async fn run_state_history(&self, run_id: &str) -> Result<Vec<RunStateChange>, Error> {
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(STATE_HISTORY)
            .bind(run_id)
            .fetch_all(&self.reader)
            .await
            .map_err(|source| {
                query_error(source, format!("read state history of run {run_id:?}"))
            })?;
        rows.into_iter()
            .map(|(state, at, error)| {
                let invalid = |reason: String| Error::InvalidData {
                    location: format!("run_state_history of run {run_id:?}"),
                    reason,
                };
                Ok(RunStateChange {
                    state: state.parse().map_err(|e: Error| invalid(e.to_string()))?,
                    at: DateTime::parse_from_rfc3339(&at)
                        .map_err(|e| invalid(format!("timestamp {at:?}: {e}")))?
                        .with_timezone(&Utc),
                    error,
                })
            })
            .collect()
    }

    /// Archives or restores a run. Fails with [`Error::NotFound`] if there is no such run.
    pub async fn set_run_storage_state(
        &self,
        run_id: &str,
        storage_state: StorageState,
    ) -> Result<(), Error> {
        self.update_run(SET_STORAGE_STATE, run_id, storage_state.as_str(), || {
            format!(
                "set storage state of run {run_id:?} to {}",
                storage_state.as_str()
            )
        })
        .await
    }

    /// Says who drives the run from now on ([`DRIVER_CLI`] or [`DRIVER_SERVER`]).
    pub async fn set_run_driver(&self, run_id: &str, driver: &str) -> Result<(), Error> {
        self.update_run(SET_DRIVER, run_id, driver, || {
            format!("set driver of run {run_id:?} to {driver:?}")
        })
        .await
    }

    /// Deletes a run with its spec, tasks, artifacts, cache entries and state history.
    /// Fails with [`Error::NotFound`] if there is no such run.
    pub async fn delete_run(&self, run_id: &str) -> Result<(), Error> {
        let result = sqlx::query(DELETE_RUN)
            .bind(run_id)
            .execute(&self.writer)
            .await
            .map_err(|source| query_error(source, format!("delete run {run_id:?}")))?;
        if result.rows_affected() == 0 {
            return Err(not_found_run(run_id));
        }
        Ok(())
    }

    /// The ids of the runs `driver` drives that have not ended, oldest first.
    pub async fn unfinished_run_ids(&self, driver: &str) -> Result<Vec<String>, Error> {
        sqlx::query_scalar(UNFINISHED_RUNS_OF_DRIVER)
            .bind(driver)
            .fetch_all(&self.reader)
            .await
            .map_err(|source| query_error(source, "list unfinished runs".to_owned()))
    }

    /// The stored spec text of a pipeline's version `version_id` (its default version when
    /// `None`: the one set with [`Store::set_default_pipeline_version`], else the newest), with
    /// the version's id; `None` if there is no such version of that pipeline.
    pub async fn pipeline_version_spec_text(
        &self,
        pipeline_id: &str,
        version_id: Option<&str>,
    ) -> Result<Option<(String, String)>, Error> {
        sqlx::query_as(VERSION_SPEC)
            .bind(pipeline_id)
            .bind(version_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|source| {
                query_error(
                    source,
                    format!("read the spec of a version of pipeline {pipeline_id:?}"),
                )
            })
    }

    async fn update_run(
        &self,
        sql: &'static str,
        run_id: &str,
        value: &str,
        action: impl FnOnce() -> String,
    ) -> Result<(), Error> {
        let result = sqlx::query(sql)
            .bind(run_id)
            .bind(value)
            .execute(&self.writer)
            .await
            .map_err(|source| query_error(source, action()))?;
        if result.rows_affected() == 0 {
            return Err(not_found_run(run_id));
        }
        Ok(())
    }
}

fn not_found_run(run_id: &str) -> Error {
    Error::NotFound {
        kind: "run",
        id: run_id.to_owned(),
    }
}

fn query_error(source: sqlx::Error, action: String) -> Error {
    Error::Query { action, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reads a server does per request or at start walk an index.
    #[tokio::test]
    async fn run_api_queries_use_indices() {
        let directory = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&directory.path().join("plan.db"))
            .await
            .unwrap();
        for (sql, expected) in [
            (
                UNFINISHED_RUNS_OF_DRIVER,
                "USING INDEX runs_by_state (state=?)",
            ),
            (
                STATE_HISTORY,
                "USING INDEX run_state_history_by_run (run_id=?)",
            ),
            (VERSION_SPEC, "pipeline_versions_by_pipeline"),
        ] {
            let rows: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                    .bind("x")
                    .bind("y")
                    .fetch_all(&store.reader)
                    .await
                    .unwrap();
            let plan: Vec<String> = rows.into_iter().map(|row| row.3).collect();
            let plan = plan.join("\n");
            assert!(plan.contains(expected), "{sql}\n{plan}");
        }
    }

    /// A page sorted by a metric walks `run_metrics_by_name` in order and looks runs up by id;
    /// after the runs with the metric, the others come in creation order from the index of
    /// the storage state filter. No
    /// statement sorts (no temporary b-tree), in either direction, with the runs list's
    /// filter on the storage state.
    #[tokio::test]
    async fn metric_sort_pages_use_indices() {
        let directory = tempfile::tempdir().unwrap();
        let store = crate::Store::open(&directory.path().join("plan.db"))
            .await
            .unwrap();
        let filter = vec![listing::Predicate {
            key: "storage_state".into(),
            op: listing::Op::Equals,
            value: listing::FilterValue::String("AVAILABLE".into()),
        }];
        for descending in [true, false] {
            let request = ListRequest {
                page_size: 20,
                page_token: None,
                sort: Some(listing::Sort {
                    key: "metric:accuracy".into(),
                    descending,
                }),
                filter: filter.clone(),
            };
            for (after, segments) in [
                (None, 2),
                (Some((Some(0.5), "x")), 2),
                (Some((None, "x")), 1),
            ] {
                let plans =
                    listing::named_sort_plans(&store.reader, &RUNS, &[], &request, after).await;
                assert_eq!(plans.len(), segments, "{plans:?}");
                let what = format!("desc={descending} after {after:?}");
                for plan in &plans {
                    assert!(!plan.contains("TEMP B-TREE"), "{what}: {plan}");
                }
                if segments == 2 {
                    assert!(
                        plans[0].contains("SEARCH m USING COVERING INDEX run_metrics_by_name"),
                        "{what}: {}",
                        plans[0]
                    );
                    assert!(
                        plans[0]
                            .contains("SEARCH r USING INDEX sqlite_autoindex_runs_1 (run_id=?)"),
                        "{what}: {}",
                        plans[0]
                    );
                }
                let missing = plans.last().unwrap();
                assert!(
                    missing.contains("SEARCH r USING INDEX runs_by_storage_state (storage_state=?"),
                    "{what}: {missing}"
                );
                assert!(
                    missing.contains("SEARCH x USING PRIMARY KEY (run_id=? AND name=?)"),
                    "{what}: {missing}"
                );
            }
        }
    }
}
