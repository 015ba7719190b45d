//! `coracle-server`: KFP's v2beta1 REST API over the Coracle store and orchestrator, so the
//! standard `kfp.Client` works unchanged. Only this crate knows HTTP and the API's JSON shapes.
//!
//! Layout: one module per collection (`pipelines`, `experiments`, `runs`, `recurring`), each
//! with its routes and wire shapes; `list` turns KFP's list parameters into
//! `coracle_store::listing` requests; `error` is KFP's `{code, message, details}` body.
//! The run executor (runs created through the API, resumed after a restart) lives in `runs`;
//! the recurring-run scheduler in `recurring`.

pub mod error;
pub mod experiments;
pub mod list;
pub mod openapi;
pub mod pipelines;
pub mod recurring;
pub mod runs;
pub mod ui;
pub mod v1;
pub mod wire;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use coracle_orchestrator::Orchestrator;
use coracle_store::Store;

pub use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub orchestrator: Orchestrator,
    /// The data directory (runs live under `{home}/runs`).
    pub home: PathBuf,
    /// How runs started by the server are carried out (parallelism, capacity, caching).
    pub run_options: coracle_orchestrator::RunOptions,
    /// Runs this server drives, for terminate.
    pub runs: Arc<runs::Registry>,
}

impl AppState {
    pub fn new(
        store: Store,
        orchestrator: Orchestrator,
        home: PathBuf,
        run_options: coracle_orchestrator::RunOptions,
    ) -> AppState {
        AppState {
            store,
            orchestrator,
            home,
            run_options,
            runs: Arc::default(),
        }
    }
}

/// The whole API under `/apis/v2beta1`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/healthz", get(healthz))
        .merge(pipelines::routes())
        .merge(experiments::routes())
        .merge(runs::routes())
        .merge(recurring::routes())
        .merge(openapi::routes());
    Router::new()
        .nest("/apis/v2beta1", api)
        .nest("/apis/v1beta1", v1::routes())
        .merge(ui::routes())
        .fallback(error::not_found)
        .layer(axum::middleware::map_response(kfp_error_bodies))
        .with_state(state)
}

/// Answers axum gives by itself (a method a path does not serve, a body over a route's
/// limit) carry a plain-text or empty body; clients read KFP's error body, so give them one.
async fn kfp_error_bodies(response: axum::response::Response) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let message = match response.status() {
        _ if is_json => return response,
        StatusCode::METHOD_NOT_ALLOWED => "this path does not serve that HTTP method",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than this route accepts",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "the request body must be JSON (content-type: application/json)"
        }
        _ => return response,
    };
    let mut answer = ApiError::new(response.status(), message).into_response();
    if let Some(allow) = response.headers().get(axum::http::header::ALLOW) {
        answer
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow.clone());
    }
    answer
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "commit_sha": "",
        "tag_name": env!("CARGO_PKG_VERSION"),
        "multi_user": false,
        "pipeline_store": "database",
    }))
}
