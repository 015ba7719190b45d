//! The metadata store: every run, task attempt and artifact Coracle knows about, in an embedded
//! SQLite database, so that `coracle runs list/get` and `coracle logs` work after the process
//! that ran a pipeline has ended, and so that a restarted process can find the runs it must
//! resume.
//!
//! [`Store`] is a cheap-to-clone handle. [`Store::open`] creates the file if needed, switches it
//! to write-ahead logging (readers never block the writer), sets `synchronous = NORMAL`, turns on
//! foreign keys and a 5 s busy timeout (so several `coracle` processes can share one file) and
//! applies the embedded migrations from `migrations/`.
//!
//! Invariants:
//! - Every single-record write is one short statement (an upsert or an update), cheap enough to
//!   run before the orchestrator acts on the state change it records. Batch writes
//!   ([`Store::upsert_tasks`], [`Store::insert_artifacts`], [`Store::upsert_task_with_artifacts`])
//!   are one transaction: all or nothing.
//! - Within a process all writes go through one connection; across processes SQLite's lock and
//!   the busy timeout serialise them. Multi-statement writes take the lock up front
//!   (`BEGIN IMMEDIATE`), so they never fail on a lock upgrade.
//! - Tasks and artifacts belong to an existing run (foreign keys); writing one for an unknown run
//!   fails with [`Error::NotFound`]. Deleting a run deletes its spec, tasks and artifacts.
//! - A run's `started_at` is the first time it became `RUNNING`; `finished_at` is set exactly
//!   while its state is terminal.
//! - Timestamps are stored as fixed-width RFC 3339 text with nanoseconds, so they round-trip
//!   exactly and sort correctly as text; JSON values are stored as compact JSON text.
//! - Listing runs newest first is one walk of the `(created_at, run_id)` index and never reads
//!   pipeline specs, which live in a table of their own.
//!
//! This crate knows nothing of HTTP or of KFP's wire shapes; the records are plain structs.

mod catalog;
mod error;
pub mod listing;
mod records;
pub mod recurring;
pub mod resources;
mod rows;
pub mod run_api;
mod store;

pub use catalog::{
    DEFAULT_EXPERIMENT_NAME, ExperimentRecord, PipelineRecord, PipelineVersionRecord, Tags,
};
pub use error::Error;
pub use records::{
    ArtifactRecord, CacheEntry, RunRecord, RunState, RunSummary, TaskRecord, TaskState,
};
pub use resources::{ConfigMapSummary, SecretSummary, VolumeRecord, volume_dir};
pub use store::Store;
