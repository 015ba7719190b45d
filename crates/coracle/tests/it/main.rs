//! End-to-end tests of the `coracle` binary on the team's pipelines (tests/pipelines), with
//! real processes. Tests whose pipelines hold Python components need a managed Python
//! environment (PyPI the first time): they run when CORACLE_TEST_PYTHON=1, as in CI.

mod client;
mod common;
mod control_flow;
mod platform;
mod python;
mod resources;
mod runs;
mod server;
mod v1;

pub use common::*;
