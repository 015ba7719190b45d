//! A server in a temporary data directory, driven through its router.

use std::path::Path;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use coracle_engine::Resources;
use coracle_exec::{ProcessExecutor, ProcessExecutorOptions, PythonOptions};
use coracle_orchestrator::{Orchestrator, RunOptions};
use coracle_server::AppState;
use coracle_store::Store;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub state: AppState,
}

/// Run options for tests: two tasks at a time, caching on.
pub fn run_options(home: &Path) -> RunOptions {
    RunOptions {
        home: home.to_path_buf(),
        pipeline_root: None,
        parallelism: 2,
        capacity: Resources {
            cpu_millis: 2000,
            memory_bytes: 4 << 30,
            gpus: 0,
        },
        gpu_devices: Vec::new(),
        run_name: None,
        cache_enabled: true,
        cache_max_staleness: None,
        timeout: None,
        task_timeouts: Default::default(),
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_path_buf();
        let store = Store::open(&home.join("coracle.db")).await.unwrap();
        let executor = ProcessExecutor::new(ProcessExecutorOptions {
            python: PythonOptions {
                envs_dir: std::env::var_os("CORACLE_TEST_ENVS_DIR")
                    .map(Into::into)
                    .unwrap_or_else(|| home.join("python-envs")),
                interpreter: None,
                use_env: None,
                offline: false,
            },
            log_lines: None,
        });
        let orchestrator = Orchestrator::new(store.clone(), executor);
        let state = AppState::new(store, orchestrator, home.clone(), run_options(&home));
        TestServer { dir, state }
    }

    /// Sends one request; returns the status and the body as JSON (`Value::Null` when empty,
    /// a string when not JSON).
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = coracle_server::router(self.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, body)
    }

    /// A request with a JSON body (`Value::Null`: no body) to `/apis/v2beta1{path}`.
    pub async fn call(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        self.call_api("v2beta1", method, path, body).await
    }

    /// A request with a JSON body (`Value::Null`: no body) to `/apis/{api}{path}`.
    pub async fn call_api(
        &self,
        api: &str,
        method: Method,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let builder = Request::builder()
            .method(method)
            .uri(format!("/apis/{api}{path}"));
        let request = if body.is_null() {
            builder.body(Body::empty()).unwrap()
        } else {
            builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap()
        };
        self.send(request).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Value::Null).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, body).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Value::Null).await
    }
}
