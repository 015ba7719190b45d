use std::path::PathBuf;

/// Everything that can go wrong in the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to create directory {path} for the database: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("failed to open database at {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },

    #[error("failed to migrate database at {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },

    /// A statement failed; `action` says what it was doing ("insert run \"abc\"").
    #[error("failed to {action}: {source}")]
    Query { action: String, source: sqlx::Error },

    /// `kind` is "run", "task" or "artifact"; `id` is what the caller asked for.
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },

    #[error("{kind} {id:?} already exists")]
    AlreadyExists { kind: &'static str, id: String },

    /// A run id prefix matched more than one run. `candidates` holds the first few matches in
    /// id order; `n_matches` is the total.
    #[error(
        "run id prefix {prefix:?} is ambiguous: it matches {n_matches} runs ({}{})",
        candidates.join(", "),
        if (candidates.len() as i64) < *n_matches { ", ..." } else { "" }
    )]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
        n_matches: i64,
    },

    /// A state name that is not one of the KFP names.
    #[error("unknown {kind} state {value:?}")]
    UnknownState { kind: &'static str, value: String },

    /// A stored value could not be decoded (the database was edited by hand or is corrupt).
    #[error("invalid value in {location}: {reason}")]
    InvalidData { location: String, reason: String },

    /// A bad list argument (unknown sort or filter key, a value of the wrong kind, a malformed
    /// page token) or another bad request value; the message says what and where.
    #[error("{0}")]
    InvalidArgument(String),

    /// The request is well formed but the stored state forbids it (deleting a pipeline that
    /// still has versions); the message says why and what to do.
    #[error("{0}")]
    FailedPrecondition(String),
}
