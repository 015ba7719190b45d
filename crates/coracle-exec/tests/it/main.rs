//! Integration tests of coracle-exec (one test binary).
//!
//! Tests named `python_*` create managed Python environments with pip (network) and run only
//! with `CORACLE_TEST_PYTHON=1`; otherwise they print that they were skipped and return.
//! `CORACLE_TEST_ENVS_DIR` names a cache directory for those environments.

mod bootstrap_corpus;
mod common;
mod docker;
mod mounts;
mod orphans;
mod process;
mod python;
