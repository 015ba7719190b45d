//! The web UI: server-rendered pages over the same store and handlers as the API, with a
//! little JavaScript of our own (`static/coracle.js`) for actions (which call the JSON API),
//! live run status and streaming logs. Graphs and charts are SVG drawn here (`graph`,
//! `charts`). Everything the pages need is in the binary: no CDN, no front-end build.
//!
//! Pages: `runs` (runs list, run details, task panel, logs, new-run form), `catalog`
//! (pipelines, versions, experiments), `recurring`, `artifacts`, `compare`.

pub mod artifacts;
pub mod catalog;
pub mod charts;
pub mod compare;
pub mod graph;
pub mod recurring;
pub mod runs;

use askama::Template;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};

use crate::AppState;

const CSS: &str = include_str!("../../static/coracle.css");
const JS: &str = include_str!("../../static/coracle.js");

/// Every page of the UI.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/runs") }))
        .route("/ui/static/coracle.css", get(css))
        .route("/ui/static/coracle.js", get(js))
        .merge(runs::routes())
        .merge(catalog::routes())
        .merge(recurring::routes())
        .merge(artifacts::routes())
        .merge(compare::routes())
}

async fn css() -> Response {
    static_file("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    static_file("text/javascript; charset=utf-8", JS)
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A page that could not be shown: its status and a sentence, as an HTML page.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn not_found(what: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::NOT_FOUND,
            message: what.into(),
        }
    }

    pub fn bad_request(what: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::BAD_REQUEST,
            message: what.into(),
        }
    }
}

impl From<crate::ApiError> for PageError {
    fn from(error: crate::ApiError) -> PageError {
        PageError {
            status: error.status,
            message: error.message,
        }
    }
}

impl From<coracle_store::Error> for PageError {
    fn from(error: coracle_store::Error) -> PageError {
        PageError::from(crate::ApiError::from(error))
    }
}

impl From<askama::Error> for PageError {
    fn from(error: askama::Error) -> PageError {
        tracing::error!(%error, "a page template failed");
        PageError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("the page could not be drawn: {error}"),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Bad request",
            _ => "Error",
        };
        let page = ErrorPage {
            title,
            message: &self.message,
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("<h1>{title}</h1>"));
        (self.status, Html(body)).into_response()
    }
}

/// The result of a page handler.
pub type PageResult = Result<Response, PageError>;

/// Renders a template as a page.
pub fn page(template: &impl Template) -> PageResult {
    Ok(Html(template.render()?).into_response())
}

/// `2026-11-23 11:24:39` (UTC), or an empty string.
pub fn time(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// `1.2s`, `3m 04s`, `2h 05m`; running ones count to now; empty when it never started.
pub fn duration(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> String {
    let Some(start) = start else {
        return String::new();
    };
    let end = end.unwrap_or_else(Utc::now);
    let ms = (end - start).num_milliseconds().max(0);
    let secs = ms / 1000;
    if secs < 60 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h {:02}m", secs / 3600, secs % 3600 / 60)
    }
}

/// A value as a page shows it: strings bare, everything else as compact JSON.
pub fn show_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Percent-encodes a task path or id for use inside a URL path (keeps `/`).
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
