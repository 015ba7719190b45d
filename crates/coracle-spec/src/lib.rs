//! `coracle-spec`: the typed model of a KFP pipeline (IR 2.1.0 plus its `platforms`
//! document), loading it from YAML, JSON, `.zip` or `.tar.gz`, and validating it with errors
//! that name the spec path. KFP v1 pipelines (the Argo Workflow kfp 1.8 compiles) are
//! translated into the same IR on load (`argo`), and so are v1 `component.yaml` files, as
//! one-task pipelines (`v1_component`).
//!
//! Invariants: no I/O beyond reading the one file `load_path` is given; every problem a user
//! can cause is an [`Error`], never a panic; a `Pipeline` returned by [`load_path`] or
//! [`load_bytes`] has passed [`validate`], so later layers may rely on references resolving.

mod argo;
pub mod model;
pub mod placeholder;
pub mod platform;
pub mod value;

mod load;
mod v1_component;
mod validate;

pub use argo::UI_METADATA_SCHEMA;
pub use load::{load_bytes, load_path, parse_document};
pub use model::*;
pub use validate::{resolve_arguments, validate};

use std::fmt;

/// One thing wrong with a pipeline, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Dotted path into the spec, e.g. `root.dag.tasks.train.inputs.parameters.lr`.
    pub path: String,
    pub message: String,
}

impl Issue {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Issue {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A list of issues, shown one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issues(pub Vec<Issue>);

impl fmt::Display for Issues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The file is not a pipeline at all (empty, not YAML/JSON, a broken archive…).
    #[error("{source_name}: {message}")]
    Format {
        source_name: String,
        message: String,
    },
    /// The file is a pipeline, but a wrong one.
    #[error("{source_name}: invalid pipeline:\n{issues}")]
    Invalid { source_name: String, issues: Issues },
}
