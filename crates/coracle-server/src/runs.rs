//! Runs: the API routes, and the executor that carries out runs created through the API (and
//! resumes the server's unfinished runs when it starts). (being written)

use axum::Router;

use crate::AppState;

/// The runs this server is driving, by run id: what terminate needs to stop one.
#[derive(Default)]
pub struct Registry {}

pub fn routes() -> Router<AppState> {
    Router::new()
}
