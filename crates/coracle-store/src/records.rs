//! The records the store persists, and the run and task states.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::Error;

macro_rules! state_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal, terminal: [$($terminal:ident),*],
        { $($variant:ident => $text:literal),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),*
        }

        impl $name {
            /// Every state, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The KFP name, as stored.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }

            /// Whether the state is final: nothing changes it afterwards in a normal run.
            pub fn is_terminal(self) -> bool {
                matches!(self, $($name::$terminal)|*)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<Self, Error> {
                match text {
                    $($text => Ok($name::$variant),)*
                    _ => Err(Error::UnknownState { kind: $kind, value: text.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

state_enum! {
    /// The state of a run, named as KFP names it (`V2beta1RuntimeState`).
    RunState, "run", terminal: [Succeeded, Failed, Canceled],
    {
        Pending => "PENDING",
        Running => "RUNNING",
        Succeeded => "SUCCEEDED",
        Failed => "FAILED",
        Canceling => "CANCELING",
        Canceled => "CANCELED",
    }
}

state_enum! {
    /// The state of one attempt of a task.
    TaskState, "task", terminal: [Succeeded, Failed, Skipped, Cached, Canceled],
    {
        Pending => "PENDING",
        Running => "RUNNING",
        Succeeded => "SUCCEEDED",
        Failed => "FAILED",
        Skipped => "SKIPPED",
        Cached => "CACHED",
        Canceled => "CANCELED",
    }
}

/// One pipeline run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub display_name: String,
    pub pipeline_name: String,
    /// The full compiled pipeline spec as JSON.
    pub pipeline_spec: Value,
    /// Object of the resolved root parameters.
    pub parameters: Value,
    pub pipeline_root: String,
    pub state: RunState,
    pub error: Option<String>,
    /// `{"parameters":{..},"artifacts":{..}}`, or `null` until the run has outputs.
    pub outputs: Value,
    pub created_at: DateTime<Utc>,
    /// When the run first became `RUNNING`.
    pub started_at: Option<DateTime<Utc>>,
    /// When the run reached its terminal state; `None` while it is not terminal.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A run without its pipeline spec: what listings return.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub run_id: String,
    pub display_name: String,
    pub pipeline_name: String,
    pub parameters: Value,
    pub pipeline_root: String,
    pub state: RunState,
    pub error: Option<String>,
    pub outputs: Value,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<RunRecord> for RunSummary {
    fn from(run: RunRecord) -> RunSummary {
        RunSummary {
            run_id: run.run_id,
            display_name: run.display_name,
            pipeline_name: run.pipeline_name,
            parameters: run.parameters,
            pipeline_root: run.pipeline_root,
            state: run.state,
            error: run.error,
            outputs: run.outputs,
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
        }
    }
}

/// One attempt of one task of a run. `(run_id, task_id, attempt)` identifies it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRecord {
    pub run_id: String,
    /// Unique within the run, e.g. `root/add-numbers` or `root/for-loop-2[3]/train`.
    pub task_id: String,
    /// 0-based; each retry adds a row with the next attempt.
    pub attempt: i64,
    pub name: String,
    pub component: String,
    pub parent_task_id: Option<String>,
    pub state: TaskState,
    pub inputs: Value,
    pub outputs: Value,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub log_path: Option<String>,
    pub work_dir: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// An output artifact of a task.
#[derive(Clone, Debug, PartialEq)]
pub struct ArtifactRecord {
    pub artifact_id: String,
    pub run_id: String,
    pub producer_task_id: String,
    pub output_key: String,
    pub name: String,
    pub uri: String,
    pub schema_title: String,
    pub schema_version: String,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
}

/// A cached task result: the outputs a task produced, under its cache key.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheEntry {
    pub cache_key: String,
    pub run_id: String,
    pub task_id: String,
    pub outputs: Value,
    pub created_at: DateTime<Utc>,
}
