//! [`Store`]: opening the database and every query.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Sqlite, Transaction};

use crate::rows::{
    ArtifactRow, RunRow, RunWithSpecRow, TaskRow, encode_json, encode_optional_time, encode_time,
};
use crate::{ArtifactRecord, CacheEntry, Error, RunRecord, RunState, RunSummary, TaskRecord};

static MIGRATOR: Migrator = sqlx::migrate!();

/// How long a statement waits for another connection (or process) that holds the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections for concurrent reads. Writes use one connection of their own.
const MAX_READERS: u32 = 4;

/// How many candidates an [`Error::Ambiguous`] lists.
const MAX_CANDIDATES: i64 = 5;

macro_rules! run_columns {
    () => {
        "r.run_id, r.display_name, r.pipeline_name, r.parameters, r.pipeline_root, r.state, \
         r.error, r.outputs, r.created_at, r.started_at, r.finished_at"
    };
}

macro_rules! task_columns {
    () => {
        "run_id, task_id, attempt, name, component, parent_task_id, state, inputs, outputs, \
         exit_code, error, log_path, work_dir, started_at, finished_at"
    };
}

macro_rules! artifact_columns {
    () => {
        "artifact_id, run_id, producer_task_id, output_key, name, uri, schema_title, \
         schema_version, metadata, created_at"
    };
}

const INSERT_RUN: &str = "INSERT INTO runs (run_id, display_name, pipeline_name, parameters, \
     pipeline_root, state, error, outputs, created_at, started_at, finished_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

const INSERT_RUN_SPEC: &str = "INSERT INTO run_specs (run_id, pipeline_spec) VALUES (?1, ?2)";

/// `started_at` is set the first time the run becomes RUNNING; `finished_at` is set when it
/// becomes terminal (and kept if it already was), and cleared when it leaves the terminal states.
const SET_RUN_STATE: &str = "UPDATE runs SET state = ?2, error = ?3, \
     started_at = CASE WHEN ?2 = 'RUNNING' THEN coalesce(started_at, ?4) ELSE started_at END, \
     finished_at = CASE WHEN ?5 THEN coalesce(finished_at, ?4) ELSE NULL END \
     WHERE run_id = ?1";

const SET_RUN_OUTPUTS: &str = "UPDATE runs SET outputs = ?2 WHERE run_id = ?1";

const REQUEST_CANCEL: &str =
    "UPDATE runs SET state = 'CANCELING' WHERE run_id = ?1 AND state IN ('PENDING', 'RUNNING')";

const RUN_STATE: &str = "SELECT state FROM runs WHERE run_id = ?1";

const PUT_CACHE_ENTRY: &str = "INSERT INTO cache_entries (cache_key, run_id, task_id, outputs, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (cache_key) DO UPDATE SET run_id = excluded.run_id, \
     task_id = excluded.task_id, outputs = excluded.outputs, created_at = excluded.created_at";

const GET_CACHE_ENTRY: &str = "SELECT cache_key, run_id, task_id, outputs, created_at FROM cache_entries \
     WHERE cache_key = ?1 AND created_at >= ?2";

const GET_RUN: &str = concat!(
    "SELECT ",
    run_columns!(),
    ", s.pipeline_spec FROM runs r JOIN run_specs s ON s.run_id = r.run_id WHERE r.run_id = ?1"
);

pub(crate) const LIST_RUNS: &str = concat!(
    "SELECT ",
    run_columns!(),
    ", s.pipeline_spec FROM runs r JOIN run_specs s ON s.run_id = r.run_id \
     ORDER BY r.created_at DESC, r.run_id DESC LIMIT ?1"
);

pub(crate) const LIST_RUN_SUMMARIES: &str = concat!(
    "SELECT ",
    run_columns!(),
    " FROM runs r ORDER BY r.created_at DESC, r.run_id DESC LIMIT ?1"
);

/// The WHERE clause repeats the partial index's condition word for word so that SQLite uses it.
pub(crate) const UNFINISHED_RUNS: &str = concat!(
    "SELECT ",
    run_columns!(),
    ", s.pipeline_spec FROM runs r JOIN run_specs s ON s.run_id = r.run_id \
     WHERE r.state IN ('PENDING', 'RUNNING', 'CANCELING') ORDER BY r.created_at, r.run_id"
);

/// Run ids in `[?1, ?2)`, i.e. starting with the prefix ?1, with the total count of matches.
pub(crate) const FIND_RUN_IDS_BOUNDED: &str = "SELECT run_id, count(*) OVER () FROM runs \
     WHERE run_id >= ?1 AND run_id < ?2 ORDER BY run_id LIMIT ?3";

/// As [`FIND_RUN_IDS_BOUNDED`] for a prefix that has no upper bound (it ends in `char::MAX`).
const FIND_RUN_IDS_UNBOUNDED: &str = "SELECT run_id, count(*) OVER () FROM runs \
     WHERE run_id >= ?1 ORDER BY run_id LIMIT ?3";

const UPSERT_TASK: &str = concat!(
    "INSERT INTO tasks (",
    task_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
     ON CONFLICT (run_id, task_id, attempt) DO UPDATE SET \
     name = excluded.name, component = excluded.component, \
     parent_task_id = excluded.parent_task_id, state = excluded.state, \
     inputs = excluded.inputs, outputs = excluded.outputs, exit_code = excluded.exit_code, \
     error = excluded.error, log_path = excluded.log_path, work_dir = excluded.work_dir, \
     started_at = excluded.started_at, finished_at = excluded.finished_at"
);

/// Started attempts in start order, then the others in insertion order.
pub(crate) const LIST_TASKS: &str = concat!(
    "SELECT ",
    task_columns!(),
    " FROM tasks WHERE run_id = ?1 ORDER BY started_at IS NULL, started_at, seq"
);

const INSERT_ARTIFACT: &str = concat!(
    "INSERT INTO artifacts (",
    artifact_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
);

pub(crate) const LIST_ARTIFACTS: &str = concat!(
    "SELECT ",
    artifact_columns!(),
    " FROM artifacts WHERE run_id = ?1 ORDER BY seq"
);

/// One artifact by its id (unique, so indexed).
const GET_ARTIFACT: &str = concat!(
    "SELECT ",
    artifact_columns!(),
    " FROM artifacts WHERE artifact_id = ?1"
);

type BoundQuery = Query<'static, Sqlite, SqliteArguments>;

/// A handle on the metadata database. Cloning it is cheap and shares the connections.
#[derive(Clone, Debug)]
pub struct Store {
    /// One connection: writes of this process queue here instead of spinning on SQLite's lock.
    pub(crate) writer: SqlitePool,
    /// Reads run concurrently with each other and with the writer (WAL).
    pub(crate) reader: SqlitePool,
}

impl Store {
    /// Opens (creating it and its parent directories if missing) the database at `path` and
    /// brings its schema up to date. Several processes may open the same file at once.
    pub async fn open(path: &Path) -> Result<Store, Error> {
        let open_error = |source| Error::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|source| Error::CreateDir {
                    path: parent.to_owned(),
                    source,
                })?;
        }
        // `journal_mode` is left out on purpose: switching to WAL needs an exclusive lock that
        // SQLite's busy timeout may not wait for, so `enable_wal` does it once, retrying while
        // busy.
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_lazy_with(options.clone());
        let reader = SqlitePoolOptions::new()
            .max_connections(MAX_READERS)
            .test_before_acquire(false)
            .connect_lazy_with(options);

        let mut connection = writer.acquire().await.map_err(open_error)?;
        enable_wal(&mut connection).await.map_err(open_error)?;
        migrate(&mut connection)
            .await
            .map_err(|source| Error::Migrate {
                path: path.to_owned(),
                source,
            })?;
        // Query planner statistics, refreshed where the tables changed much since they were
        // gathered (bounded work: a sample of each index). Without them SQLite can pick an
        // index that matches a filter over one that gives the sort order, and sort thousands of
        // rows for a page of a hundred.
        if let Err(e) = sqlx::raw_sql("PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;")
            .execute(&mut *connection)
            .await
        {
            tracing::warn!(path = %path.display(), "could not refresh query statistics: {e}");
        }
        drop(connection);
        tracing::debug!(path = %path.display(), "opened metadata store");
        Ok(Store { writer, reader })
    }

    /// A private database in memory, gone when the last clone of the store is dropped.
    pub async fn open_in_memory() -> Result<Store, Error> {
        let path = Path::new(":memory:");
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        // Every connection to `:memory:` is its own database, so there is exactly one, kept
        // open for the life of the pool.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|source| Error::Open {
                path: path.to_owned(),
                source,
            })?;
        let mut connection = pool.acquire().await.map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
        migrate(&mut connection)
            .await
            .map_err(|source| Error::Migrate {
                path: path.to_owned(),
                source,
            })?;
        drop(connection);
        Ok(Store {
            writer: pool.clone(),
            reader: pool,
        })
    }

    /// Closes every connection, checkpointing the write-ahead log. Later calls on any clone
    /// fail.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        // IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so no
        // statement inside can fail on a lock upgrade.
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    // ---- runs ----------------------------------------------------------------------------

    /// Records a new run. Fails with [`Error::AlreadyExists`] if the id is taken.
    pub async fn insert_run(&self, run: &RunRecord) -> Result<(), Error> {
        let result = async {
            let mut transaction = self.begin_write().await?;
            insert_run_query(run).execute(&mut *transaction).await?;
            sqlx::query(INSERT_RUN_SPEC)
                .bind(&run.run_id)
                .bind(encode_json(&run.pipeline_spec))
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await
        }
        .await;
        result.map_err(|source| {
            write_error(source, &run.run_id, Some(("run", &run.run_id)), || {
                format!("insert run {:?}", run.run_id)
            })
        })
    }

    /// Moves a run to `state` at time `at` and replaces its error message (`None` clears it).
    ///
    /// `started_at` becomes `at` the first time the run is `RUNNING`; `finished_at` becomes `at`
    /// when the run reaches a terminal state (an earlier terminal time is kept) and is cleared
    /// when it leaves them.
    pub async fn set_run_state(
        &self,
        run_id: &str,
        state: RunState,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let result = sqlx::query(SET_RUN_STATE)
            .bind(run_id)
            .bind(state.as_str())
            .bind(error)
            .bind(encode_time(&at))
            .bind(state.is_terminal())
            .execute(&self.writer)
            .await
            .map_err(|source| {
                write_error(source, run_id, None, || {
                    format!("set state of run {run_id:?} to {state}")
                })
            })?;
        if result.rows_affected() == 0 {
            return Err(not_found_run(run_id));
        }
        Ok(())
    }

    /// Replaces a run's outputs (`{"parameters":{..},"artifacts":{..}}`).
    pub async fn set_run_outputs(&self, run_id: &str, outputs: &Value) -> Result<(), Error> {
        let result = sqlx::query(SET_RUN_OUTPUTS)
            .bind(run_id)
            .bind(encode_json(outputs))
            .execute(&self.writer)
            .await
            .map_err(|source| {
                write_error(source, run_id, None, || {
                    format!("set outputs of run {run_id:?}")
                })
            })?;
        if result.rows_affected() == 0 {
            return Err(not_found_run(run_id));
        }
        Ok(())
    }

    /// Asks a live run to stop: PENDING or RUNNING becomes CANCELING, which the process
    /// running it notices and acts on. Returns the run's state after the request (a finished
    /// run keeps its state). Fails with [`Error::NotFound`] if there is no such run.
    pub async fn request_cancel(&self, run_id: &str) -> Result<RunState, Error> {
        sqlx::query(REQUEST_CANCEL)
            .bind(run_id)
            .execute(&self.writer)
            .await
            .map_err(|source| {
                write_error(source, run_id, None, || {
                    format!("request cancel of run {run_id:?}")
                })
            })?;
        self.run_state(run_id)
            .await?
            .ok_or_else(|| not_found_run(run_id))
    }

    /// The run's state alone: a cheap read for polling.
    pub async fn run_state(&self, run_id: &str) -> Result<Option<RunState>, Error> {
        let state: Option<String> = sqlx::query_scalar(RUN_STATE)
            .bind(run_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|source| read_error(source, || format!("read state of run {run_id:?}")))?;
        state.map(|s| s.parse()).transpose()
    }

    /// Records (or replaces) the cache entry for its key.
    pub async fn put_cache_entry(&self, entry: &CacheEntry) -> Result<(), Error> {
        sqlx::query(PUT_CACHE_ENTRY)
            .bind(&entry.cache_key)
            .bind(&entry.run_id)
            .bind(&entry.task_id)
            .bind(encode_json(&entry.outputs))
            .bind(encode_time(&entry.created_at))
            .execute(&self.writer)
            .await
            .map_err(|source| {
                write_error(source, &entry.run_id, None, || {
                    format!("record cache entry of task {:?}", entry.task_id)
                })
            })?;
        Ok(())
    }

    /// The cache entry for `cache_key`, if there is one made at or after `not_before`.
    pub async fn get_cache_entry(
        &self,
        cache_key: &str,
        not_before: Option<DateTime<Utc>>,
    ) -> Result<Option<CacheEntry>, Error> {
        let floor = not_before.map(|t| encode_time(&t)).unwrap_or_default();
        let row: Option<(String, String, String, String, String)> = sqlx::query_as(GET_CACHE_ENTRY)
            .bind(cache_key)
            .bind(floor)
            .fetch_optional(&self.reader)
            .await
            .map_err(|source| read_error(source, || format!("read cache entry {cache_key:?}")))?;
        let Some((cache_key, run_id, task_id, outputs, created_at)) = row else {
            return Ok(None);
        };
        let invalid = |reason: String| Error::InvalidData {
            location: format!("cache_entries of key {cache_key:?}"),
            reason,
        };
        let outputs = serde_json::from_str(&outputs)
            .map_err(|e| invalid(format!("outputs are not JSON: {e}")))?;
        let created_at = DateTime::parse_from_rfc3339(&created_at)
            .map_err(|e| invalid(format!("created_at is not a time: {e}")))?
            .with_timezone(&Utc);
        Ok(Some(CacheEntry {
            cache_key,
            run_id,
            task_id,
            outputs,
            created_at,
        }))
    }

    /// The run with exactly this id.
    pub async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, Error> {
        let row: Option<RunWithSpecRow> = sqlx::query_as(GET_RUN)
            .bind(run_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|source| read_error(source, || format!("read run {run_id:?}")))?;
        row.map(RunRecord::try_from).transpose()
    }

    /// The run whose id is `id_or_prefix`, or else the only run whose id starts with it.
    ///
    /// Fails with [`Error::NotFound`] when no run matches (or the prefix is empty) and with
    /// [`Error::Ambiguous`] when several do.
    pub async fn find_run(&self, id_or_prefix: &str) -> Result<RunRecord, Error> {
        if id_or_prefix.is_empty() {
            return Err(not_found_run(id_or_prefix));
        }
        if let Some(run) = self.get_run(id_or_prefix).await? {
            return Ok(run);
        }
        let query = match prefix_upper_bound(id_or_prefix) {
            Some(upper_bound) => sqlx::query_as(FIND_RUN_IDS_BOUNDED)
                .bind(id_or_prefix)
                .bind(upper_bound),
            None => sqlx::query_as(FIND_RUN_IDS_UNBOUNDED)
                .bind(id_or_prefix)
                .bind(None::<String>),
        };
        let matches: Vec<(String, i64)> = query
            .bind(MAX_CANDIDATES)
            .fetch_all(&self.reader)
            .await
            .map_err(|source| {
                read_error(source, || {
                    format!("look up runs by id prefix {id_or_prefix:?}")
                })
            })?;
        match matches.first() {
            None => Err(not_found_run(id_or_prefix)),
            Some((run_id, 1)) => self
                .get_run(run_id)
                .await?
                // Deleted between the two queries.
                .ok_or_else(|| not_found_run(id_or_prefix)),
            Some((_, n_matches)) => Err(Error::Ambiguous {
                prefix: id_or_prefix.to_owned(),
                n_matches: *n_matches,
                candidates: matches.into_iter().map(|(run_id, _)| run_id).collect(),
            }),
        }
    }

    /// The newest `limit` runs (by `created_at`, then `run_id`), newest first, with their
    /// specs. A negative `limit` means all.
    pub async fn list_runs(&self, limit: i64) -> Result<Vec<RunRecord>, Error> {
        let rows: Vec<RunWithSpecRow> = sqlx::query_as(LIST_RUNS)
            .bind(limit)
            .fetch_all(&self.reader)
            .await
            .map_err(|source| read_error(source, || "list runs".to_owned()))?;
        rows.into_iter().map(RunRecord::try_from).collect()
    }

    /// As [`Store::list_runs`] without the specs, which it never reads: what listings want.
    pub async fn list_run_summaries(&self, limit: i64) -> Result<Vec<RunSummary>, Error> {
        let rows: Vec<RunRow> = sqlx::query_as(LIST_RUN_SUMMARIES)
            .bind(limit)
            .fetch_all(&self.reader)
            .await
            .map_err(|source| read_error(source, || "list runs".to_owned()))?;
        rows.into_iter().map(RunSummary::try_from).collect()
    }

    /// Runs in `PENDING`, `RUNNING` or `CANCELING`, oldest first: the ones a restarted process
    /// must resume or mark as failed.
    pub async fn unfinished_runs(&self) -> Result<Vec<RunRecord>, Error> {
        let rows: Vec<RunWithSpecRow> = sqlx::query_as(UNFINISHED_RUNS)
            .fetch_all(&self.reader)
            .await
            .map_err(|source| read_error(source, || "list unfinished runs".to_owned()))?;
        rows.into_iter().map(RunRecord::try_from).collect()
    }

    // ---- tasks ---------------------------------------------------------------------------

    /// Inserts the `(run_id, task_id, attempt)` row or replaces every other column of it.
    /// The row keeps its original insertion position. Fails with [`Error::NotFound`] if the
    /// run does not exist.
    pub async fn upsert_task(&self, task: &TaskRecord) -> Result<(), Error> {
        upsert_task_query(task)
            .execute(&self.writer)
            .await
            .map_err(|source| upsert_task_error(source, task))?;
        Ok(())
    }

    /// [`Store::upsert_task`] for many tasks in one transaction: all or none are written.
    pub async fn upsert_tasks(&self, tasks: &[TaskRecord]) -> Result<(), Error> {
        let mut failed_task = None;
        let result = async {
            let mut transaction = self.begin_write().await?;
            for task in tasks {
                failed_task = Some(task);
                upsert_task_query(task).execute(&mut *transaction).await?;
            }
            failed_task = None;
            transaction.commit().await
        }
        .await;
        result.map_err(|source| match failed_task {
            Some(task) => upsert_task_error(source, task),
            None => Error::Query {
                action: format!("write {} tasks", tasks.len()),
                source,
            },
        })
    }

    /// Writes a task and the artifacts it produced in one transaction, so that a task is never
    /// recorded as done without its outputs (or the other way round).
    pub async fn upsert_task_with_artifacts(
        &self,
        task: &TaskRecord,
        artifacts: &[ArtifactRecord],
    ) -> Result<(), Error> {
        let mut failed_artifact = None;
        let result = async {
            let mut transaction = self.begin_write().await?;
            upsert_task_query(task).execute(&mut *transaction).await?;
            for artifact in artifacts {
                failed_artifact = Some(artifact);
                insert_artifact_query(artifact)
                    .execute(&mut *transaction)
                    .await?;
            }
            failed_artifact = None;
            transaction.commit().await
        }
        .await;
        result.map_err(|source| match failed_artifact {
            Some(artifact) => insert_artifact_error(source, artifact),
            None => upsert_task_error(source, task),
        })
    }

    /// Every attempt of every task of a run: started ones by start time, then the rest in the
    /// order they were first written.
    pub async fn list_tasks(&self, run_id: &str) -> Result<Vec<TaskRecord>, Error> {
        let rows: Vec<TaskRow> = sqlx::query_as(LIST_TASKS)
            .bind(run_id)
            .fetch_all(&self.reader)
            .await
            .map_err(|source| read_error(source, || format!("list tasks of run {run_id:?}")))?;
        rows.into_iter().map(TaskRecord::try_from).collect()
    }

    // ---- artifacts -----------------------------------------------------------------------

    /// Records an artifact. Fails with [`Error::AlreadyExists`] if its id is taken and with
    /// [`Error::NotFound`] if its run does not exist.
    pub async fn insert_artifact(&self, artifact: &ArtifactRecord) -> Result<(), Error> {
        insert_artifact_query(artifact)
            .execute(&self.writer)
            .await
            .map_err(|source| insert_artifact_error(source, artifact))?;
        Ok(())
    }

    /// [`Store::insert_artifact`] for many artifacts in one transaction: all or none are written.
    pub async fn insert_artifacts(&self, artifacts: &[ArtifactRecord]) -> Result<(), Error> {
        let mut failed_artifact = None;
        let result = async {
            let mut transaction = self.begin_write().await?;
            for artifact in artifacts {
                failed_artifact = Some(artifact);
                insert_artifact_query(artifact)
                    .execute(&mut *transaction)
                    .await?;
            }
            failed_artifact = None;
            transaction.commit().await
        }
        .await;
        result.map_err(|source| match failed_artifact {
            Some(artifact) => insert_artifact_error(source, artifact),
            None => Error::Query {
                action: format!("write {} artifacts", artifacts.len()),
                source,
            },
        })
    }

    /// The artifacts of a run in the order they were recorded.
    pub async fn list_artifacts(&self, run_id: &str) -> Result<Vec<ArtifactRecord>, Error> {
        let rows: Vec<ArtifactRow> = sqlx::query_as(LIST_ARTIFACTS)
            .bind(run_id)
            .fetch_all(&self.reader)
            .await
            .map_err(|source| read_error(source, || format!("list artifacts of run {run_id:?}")))?;
        rows.into_iter().map(ArtifactRecord::try_from).collect()
    }

    /// The artifact with this id, whichever run made it.
    pub async fn get_artifact(&self, artifact_id: &str) -> Result<Option<ArtifactRecord>, Error> {
        let row: Option<ArtifactRow> = sqlx::query_as(GET_ARTIFACT)
            .bind(artifact_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|source| read_error(source, || format!("read artifact {artifact_id:?}")))?;
        row.map(ArtifactRecord::try_from).transpose()
    }

    /// The read connections, for tests of query plans.
    #[cfg(test)]
    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

fn insert_run_query(run: &RunRecord) -> BoundQuery {
    sqlx::query(INSERT_RUN)
        .bind(run.run_id.clone())
        .bind(run.display_name.clone())
        .bind(run.pipeline_name.clone())
        .bind(encode_json(&run.parameters))
        .bind(run.pipeline_root.clone())
        .bind(run.state.as_str())
        .bind(run.error.clone())
        .bind(encode_json(&run.outputs))
        .bind(encode_time(&run.created_at))
        .bind(encode_optional_time(&run.started_at))
        .bind(encode_optional_time(&run.finished_at))
}

fn upsert_task_query(task: &TaskRecord) -> BoundQuery {
    sqlx::query(UPSERT_TASK)
        .bind(task.run_id.clone())
        .bind(task.task_id.clone())
        .bind(task.attempt)
        .bind(task.name.clone())
        .bind(task.component.clone())
        .bind(task.parent_task_id.clone())
        .bind(task.state.as_str())
        .bind(encode_json(&task.inputs))
        .bind(encode_json(&task.outputs))
        .bind(task.exit_code)
        .bind(task.error.clone())
        .bind(task.log_path.clone())
        .bind(task.work_dir.clone())
        .bind(encode_optional_time(&task.started_at))
        .bind(encode_optional_time(&task.finished_at))
}

fn insert_artifact_query(artifact: &ArtifactRecord) -> BoundQuery {
    sqlx::query(INSERT_ARTIFACT)
        .bind(artifact.artifact_id.clone())
        .bind(artifact.run_id.clone())
        .bind(artifact.producer_task_id.clone())
        .bind(artifact.output_key.clone())
        .bind(artifact.name.clone())
        .bind(artifact.uri.clone())
        .bind(artifact.schema_title.clone())
        .bind(artifact.schema_version.clone())
        .bind(encode_json(&artifact.metadata))
        .bind(encode_time(&artifact.created_at))
}

/// Switches the database to write-ahead logging (a persistent property of the file), retrying
/// while another connection holds the lock this needs.
async fn enable_wal(connection: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *connection)
        .await?;
    if mode.eq_ignore_ascii_case("wal") {
        return Ok(());
    }
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        let outcome = sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
            .fetch_one(&mut *connection)
            .await;
        let error = match outcome {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                sqlx::Error::Protocol(format!("journal mode stayed {mode:?} instead of \"wal\""))
            }
            Err(error) if is_busy(&error) => error,
            Err(error) => return Err(error),
        };
        if Instant::now() >= deadline {
            return Err(error);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Applies pending migrations while holding the write lock, so that processes opening a new
/// database at the same moment apply them exactly once.
///
/// This is `Migrator::run` spelled out with the public `Migrate` methods: `Migrator::run` takes
/// an `Acquire` whose higher-ranked bound makes the future of [`Store::open`] fail to be `Send`
/// ("implementation of `Acquire` is not general enough"), which would keep it out of
/// `tokio::spawn`.
async fn migrate(connection: &mut SqliteConnection) -> Result<(), MigrateError> {
    let mut transaction = connection.begin_with("BEGIN IMMEDIATE").await?;
    let connection: &mut SqliteConnection = &mut transaction;
    let table = &*MIGRATOR.table_name;

    connection.ensure_migrations_table(table).await?;
    if let Some(version) = connection.dirty_version(table).await? {
        return Err(MigrateError::Dirty(version));
    }
    let applied = connection.list_applied_migrations(table).await?;
    let known = || {
        MIGRATOR
            .iter()
            .filter(|migration| !migration.migration_type.is_down_migration())
    };
    for applied_migration in &applied {
        // Written by a newer Coracle, or edited since: refuse rather than guess.
        match known().find(|migration| migration.version == applied_migration.version) {
            None => return Err(MigrateError::VersionMissing(applied_migration.version)),
            Some(migration) if migration.checksum != applied_migration.checksum => {
                return Err(MigrateError::VersionMismatch(migration.version));
            }
            Some(_) => {}
        }
    }
    for migration in known() {
        if applied
            .iter()
            .all(|applied_migration| applied_migration.version != migration.version)
        {
            connection.apply(table, migration).await?;
            tracing::info!(
                version = migration.version,
                description = %migration.description,
                "applied database migration"
            );
        }
    }
    transaction.commit().await?;
    Ok(())
}

fn is_busy(error: &sqlx::Error) -> bool {
    const SQLITE_BUSY: i64 = 5;
    const SQLITE_LOCKED: i64 = 6;
    let sqlx::Error::Database(error) = error else {
        return false;
    };
    // Extended result codes keep the primary code in the low byte.
    error
        .code()
        .and_then(|code| code.parse::<i64>().ok())
        .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
}

/// The smallest string greater than every string that starts with `prefix`, if there is one.
/// Text compares as UTF-8 bytes, which orders like code points.
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn not_found_run(run_id: &str) -> Error {
    Error::NotFound {
        kind: "run",
        id: run_id.to_owned(),
    }
}

fn read_error(source: sqlx::Error, action: impl FnOnce() -> String) -> Error {
    Error::Query {
        action: action(),
        source,
    }
}

/// Maps a failed write: a unique violation on the record's own key is [`Error::AlreadyExists`],
/// a foreign-key violation means the run (`run_id`) is missing.
fn write_error(
    source: sqlx::Error,
    run_id: &str,
    duplicate_of: Option<(&'static str, &str)>,
    action: impl FnOnce() -> String,
) -> Error {
    if let sqlx::Error::Database(database_error) = &source {
        if database_error.is_foreign_key_violation() {
            return not_found_run(run_id);
        }
        if let (Some((kind, id)), true) = (duplicate_of, database_error.is_unique_violation()) {
            return Error::AlreadyExists {
                kind,
                id: id.to_owned(),
            };
        }
    }
    Error::Query {
        action: action(),
        source,
    }
}

fn upsert_task_error(source: sqlx::Error, task: &TaskRecord) -> Error {
    write_error(source, &task.run_id, None, || {
        format!(
            "write task {:?} attempt {} of run {:?}",
            task.task_id, task.attempt, task.run_id
        )
    })
}

fn insert_artifact_error(source: sqlx::Error, artifact: &ArtifactRecord) -> Error {
    write_error(
        source,
        &artifact.run_id,
        Some(("artifact", &artifact.artifact_id)),
        || {
            format!(
                "insert artifact {:?} of run {:?}",
                artifact.artifact_id, artifact.run_id
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_upper_bound_increments_the_last_character() {
        assert_eq!(prefix_upper_bound("abc").as_deref(), Some("abd"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(
            prefix_upper_bound(&format!("a{}", char::MAX)).as_deref(),
            Some("b")
        );
        assert_eq!(prefix_upper_bound(&char::MAX.to_string()), None);
        assert_eq!(prefix_upper_bound(""), None);
    }

    async fn query_plan(store: &Store, sql: &str) -> String {
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .bind("x")
                .bind("y")
                .bind(10_i64)
                .fetch_all(store.reader())
                .await
                .unwrap();
        rows.into_iter()
            .map(|(_, _, _, detail)| detail)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The queries a server pages through must walk an index, never sort the table.
    #[tokio::test]
    async fn hot_queries_use_indices() {
        let directory = tempfile::tempdir().unwrap();
        let store = Store::open(&directory.path().join("plan.db"))
            .await
            .unwrap();

        let plan = query_plan(&store, LIST_RUN_SUMMARIES).await;
        assert!(plan.contains("USING INDEX runs_by_created_at"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");

        let plan = query_plan(&store, LIST_RUNS).await;
        assert!(plan.contains("USING INDEX runs_by_created_at"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");

        // The partial index, or three seeks of the state index (migration 0005) whose few
        // rows are then sorted.
        let plan = query_plan(&store, UNFINISHED_RUNS).await;
        assert!(
            plan.contains("USING INDEX runs_unfinished")
                || plan.contains("USING INDEX runs_by_state (state=?)"),
            "{plan}"
        );

        let plan = query_plan(&store, FIND_RUN_IDS_BOUNDED).await;
        assert!(plan.contains("(run_id>? AND run_id<?)"), "{plan}");

        let plan = query_plan(&store, LIST_TASKS).await;
        assert!(plan.contains("(run_id=?)"), "{plan}");

        let plan = query_plan(&store, LIST_ARTIFACTS).await;
        assert!(
            plan.contains("USING INDEX artifacts_by_run (run_id=?)"),
            "{plan}"
        );

        let plan = query_plan(&store, GET_ARTIFACT).await;
        assert!(
            plan.contains("USING INDEX sqlite_autoindex_artifacts_1 (artifact_id=?)"),
            "{plan}"
        );
    }

    /// `run_metrics` as (run, name, value), sorted.
    async fn run_metrics(pool: &SqlitePool) -> Vec<(String, String, f64)> {
        sqlx::query_as("SELECT run_id, name, value FROM run_metrics ORDER BY run_id, name")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    const RUN: &str = "INSERT INTO runs (run_id, display_name, pipeline_name, parameters, \
         pipeline_root, state, created_at) VALUES (?1, ?1, 'p', '{}', '/tmp', 'SUCCEEDED', \
         '2024-05-01T12:00:00.000000000Z')";
    const ARTIFACT: &str = "INSERT INTO artifacts (artifact_id, run_id, producer_task_id, \
         output_key, name, uri, schema_title, schema_version, metadata, created_at) \
         VALUES (?1, ?2, 't', 'metrics', 'metrics', 'file:///m', ?3, '0.0.1', ?4, \
         '2024-05-01T12:00:00.000000000Z')";

    /// Migration 0009 fills `run_metrics` from the artifacts already recorded: numeric
    /// entries of `system.Metrics` metadata, the newest artifact's value per name.
    #[tokio::test]
    async fn migration_0009_backfills_run_metrics() {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        for migration in MIGRATOR.iter().filter(|m| m.version <= 8) {
            sqlx::raw_sql(migration.sql.clone())
                .execute(&pool)
                .await
                .unwrap();
        }
        for run in ["r1", "r2", "r3"] {
            sqlx::query(RUN).bind(run).execute(&pool).await.unwrap();
        }
        for (id, run, schema, metadata) in [
            (
                "a",
                "r1",
                "system.Metrics",
                r#"{"accuracy":0.5,"loss":2,"ok":true}"#,
            ),
            (
                "b",
                "r1",
                "system.Metrics",
                r#"{"accuracy":0.75,"name":"x"}"#,
            ),
            ("c", "r2", "system.Model", r#"{"accuracy":0.9}"#),
            ("d", "r2", "system.Metrics", r#"[1, 2]"#),
            (
                "e",
                "r3",
                "system.Metrics",
                r#"{"f1":-1.5e-3,"nested":{"a":1}}"#,
            ),
        ] {
            sqlx::query(ARTIFACT)
                .bind(id)
                .bind(run)
                .bind(schema)
                .bind(metadata)
                .execute(&pool)
                .await
                .unwrap();
        }
        let last = MIGRATOR.iter().find(|m| m.version == 9).unwrap();
        sqlx::raw_sql(last.sql.clone())
            .execute(&pool)
            .await
            .unwrap();
        let want = vec![
            ("r1".to_owned(), "accuracy".to_owned(), 0.75),
            ("r1".to_owned(), "loss".to_owned(), 2.0),
            ("r3".to_owned(), "f1".to_owned(), -1.5e-3),
        ];
        assert_eq!(run_metrics(&pool).await, want);
    }

    /// The triggers keep `run_metrics` current as artifacts are recorded and changed, and
    /// a run's deletion takes its metrics with it.
    #[tokio::test]
    async fn run_metrics_follow_artifacts() {
        let store = Store::open_in_memory().await.unwrap();
        let pool = &store.writer;
        for run in ["r1", "r2"] {
            sqlx::query(RUN).bind(run).execute(pool).await.unwrap();
        }
        let insert = |id: &'static str, run: &'static str, metadata: &'static str| async move {
            sqlx::query(ARTIFACT)
                .bind(id)
                .bind(run)
                .bind("system.Metrics")
                .bind(metadata)
                .execute(pool)
                .await
                .unwrap();
        };
        insert("a", "r1", r#"{"accuracy":0.5,"loss":3}"#).await;
        insert("b", "r1", r#"{"accuracy":0.25}"#).await;
        insert("c", "r2", r#"{"accuracy":1}"#).await;
        insert("d", "r2", "not json").await;
        let row = |run: &str, name: &str, value: f64| (run.to_owned(), name.to_owned(), value);
        assert_eq!(
            run_metrics(pool).await,
            [
                row("r1", "accuracy", 0.25),
                row("r1", "loss", 3.0),
                row("r2", "accuracy", 1.0)
            ]
        );
        // An older artifact's change does not hide the newer value; a removed entry goes.
        sqlx::query("UPDATE artifacts SET metadata = '{\"accuracy\":0.1}' WHERE artifact_id = 'a'")
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(
            run_metrics(pool).await,
            [row("r1", "accuracy", 0.25), row("r2", "accuracy", 1.0)]
        );
        sqlx::query("UPDATE artifacts SET schema_title = 'system.Model' WHERE artifact_id = 'b'")
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(
            run_metrics(pool).await,
            [row("r1", "accuracy", 0.1), row("r2", "accuracy", 1.0)]
        );
        sqlx::query("DELETE FROM runs WHERE run_id = 'r2'")
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(run_metrics(pool).await, [row("r1", "accuracy", 0.1)]);
    }
}
