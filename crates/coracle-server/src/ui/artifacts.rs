//! Artifact pages: `/artifacts/{artifact_id}` (facts, metadata and a preview chosen by the
//! artifact's type and content), `/artifacts/{artifact_id}/download` (a file as is; a
//! directory as a `.tar.gz` made while it is sent) and `/artifacts/{artifact_id}/view` (an
//! HTML artifact, or a Markdown one rendered to HTML, for the page's sandboxed frame).
//!
//! Artifact ids are the store's (`{run}/{task path}/{output}/{index}`), so they hold `/`; the
//! routes take the rest of the path and split `/download` or `/view` off its end (an id ends
//! in its index, never in either word).
//!
//! What an artifact writes runs in the browser only inside `iframe#html-artifact` (sandbox
//! `allow-scripts`, no `allow-same-origin`) and `/view` answers with
//! `Content-Security-Policy: sandbox allow-scripts`, so even opened directly its script runs
//! in an opaque origin: it cannot read the UI's cookies, storage or DOM. Downloads are
//! `attachment`s of type `application/octet-stream` with `nosniff` and the same CSP.

mod markdown;
mod ui_metadata;

use std::io::{Read, Write};
use std::path::{Path as FsPath, PathBuf};

use askama::Template;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use coracle_store::ArtifactRecord;
use serde_json::Value;
use tokio::sync::mpsc;

use super::catalog::escape;
use super::{PageError, PageResult, charts, path_segment, time};
use crate::AppState;

/// How much of a file the page reads to decide what it is and to preview it.
const SNIFF_BYTES: u64 = 1 << 20;
/// How much of a text file the page shows.
const TEXT_PREVIEW_BYTES: usize = 64 << 10;
/// How many data rows of a CSV file the page shows.
const CSV_PREVIEW_ROWS: usize = 200;
/// How many entries of a directory artifact the page lists.
const LISTING_ENTRIES: usize = 200;
/// The largest HTML or Markdown artifact `/view` serves.
const MAX_VIEW_BYTES: u64 = 32 << 20;
/// Chunks of a download.
const CHUNK_BYTES: usize = 64 << 10;

/// What `/view` and every download carry: an artifact's content runs in an opaque origin.
const SANDBOX_CSP: &str = "sandbox allow-scripts";

pub fn routes() -> Router<AppState> {
    Router::new().route("/artifacts/{*rest}", get(artifact_route))
}

/// The URL of an artifact's page.
pub fn artifact_href(artifact_id: &str) -> String {
    format!("/artifacts/{}", path_segment(artifact_id))
}

/// A link to an artifact's page, as a run page lists them:
/// `<a class="artifact" data-name="{name}" data-task="{producer task}" href="/artifacts/{id}">{name}</a>`.
pub fn artifact_link(artifact: &ArtifactRecord) -> String {
    format!(
        "<a class=\"artifact\" data-name=\"{name}\" data-task=\"{task}\" \
         data-type=\"{kind}\" href=\"{href}\">{name}</a>",
        name = escape(&artifact.name),
        task = escape(&artifact.producer_task_id),
        kind = escape(&artifact.schema_title),
        href = escape(&artifact_href(&artifact.artifact_id)),
    )
}

async fn artifact_route(State(state): State<AppState>, Path(rest): Path<String>) -> Response {
    let result = if let Some(id) = rest.strip_suffix("/download") {
        download(&state, id).await
    } else if let Some(id) = rest.strip_suffix("/view") {
        view(&state, id).await
    } else {
        artifact_page(&state, &rest).await
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn find(state: &AppState, artifact_id: &str) -> Result<ArtifactRecord, PageError> {
    state
        .store
        .get_artifact(artifact_id)
        .await?
        .ok_or_else(|| PageError::not_found(format!("artifact {artifact_id:?} not found")))
}

/// The local path of an artifact's URI; `None` for a remote one (`s3://…`).
fn local_path(uri: &str) -> Option<PathBuf> {
    if let Some(path) = uri.strip_prefix("file://") {
        return Some(PathBuf::from(path));
    }
    if uri.contains("://") {
        return None;
    }
    Some(PathBuf::from(uri))
}

/// Where an artifact's content is, or why it cannot be read here.
enum Content {
    File { path: PathBuf, size: u64 },
    Directory { path: PathBuf },
    Missing(String),
}

async fn content_of(artifact: &ArtifactRecord) -> Content {
    let Some(path) = local_path(&artifact.uri) else {
        return Content::Missing(format!(
            "it is stored at {}, which is not on this machine",
            artifact.uri
        ));
    };
    match tokio::fs::metadata(&path).await {
        Ok(metadata) if metadata.is_dir() => Content::Directory { path },
        Ok(metadata) => Content::File {
            size: metadata.len(),
            path,
        },
        Err(_) => Content::Missing(format!("its file {} no longer exists", path.display())),
    }
}

// ---- the page -------------------------------------------------------------------------------

/// What the page shows below the facts.
enum Preview {
    /// HTML drawn here (metrics table, confusion matrix, ROC curve).
    Charts(String),
    /// The sandboxed frame.
    Frame,
    Csv {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
        more: bool,
    },
    Json(String),
    Text {
        text: String,
        more: bool,
    },
    Listing {
        entries: Vec<(String, String)>,
        more: bool,
    },
    Note(String),
}

#[derive(Template)]
#[template(path = "artifact.html")]
struct ArtifactPage {
    artifact_id: String,
    href: String,
    name: String,
    schema: String,
    uri: String,
    run_id: String,
    run_name: String,
    task: String,
    task_href: String,
    output_key: String,
    created: String,
    metadata: String,
    downloadable: bool,
    is_directory: bool,
    size: String,
    preview: Preview,
}

async fn artifact_page(state: &AppState, artifact_id: &str) -> PageResult {
    let artifact = find(state, artifact_id).await?;
    let run_name = state
        .store
        .get_api_run_summary(&artifact.run_id)
        .await?
        .map(|run| run.run.display_name)
        .unwrap_or_default();
    let content = content_of(&artifact).await;
    let charts = chart_html(&artifact);
    let preview = match (&content, artifact.schema_title.as_str()) {
        _ if !charts.is_empty() => Preview::Charts(charts),
        (Content::File { path, .. }, coracle_spec::UI_METADATA_SCHEMA) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || match std::fs::read_to_string(&path) {
                Ok(text) => Preview::Charts(ui_metadata::to_html(&text)),
                Err(error) => Preview::Note(format!("it cannot be read: {error}")),
            })
            .await
            .unwrap_or_else(|error| Preview::Note(format!("it cannot be read: {error}")))
        }
        (Content::File { .. }, "system.HTML" | "system.Markdown") => Preview::Frame,
        (Content::File { path, .. }, _) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || file_preview(&path))
                .await
                .unwrap_or_else(|error| Preview::Note(format!("it cannot be read: {error}")))
        }
        (Content::Directory { path }, _) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || directory_listing(&path))
                .await
                .unwrap_or_else(|error| Preview::Note(format!("it cannot be listed: {error}")))
        }
        (Content::Missing(why), _) => Preview::Note(format!("No preview: {why}.")),
    };
    let size = match &content {
        Content::File { size, .. } => format!("{size} bytes"),
        Content::Directory { .. } => "a directory".to_owned(),
        Content::Missing(_) => String::new(),
    };
    super::page(&ArtifactPage {
        href: artifact_href(&artifact.artifact_id),
        task_href: format!(
            "/runs/{}/tasks/{}",
            path_segment(&artifact.run_id),
            path_segment(&artifact.producer_task_id)
        ),
        downloadable: !matches!(content, Content::Missing(_)),
        is_directory: matches!(content, Content::Directory { .. }),
        size,
        preview,
        metadata: serde_json::to_string_pretty(&artifact.metadata).unwrap_or_default(),
        schema: if artifact.schema_version.is_empty() {
            artifact.schema_title.clone()
        } else {
            format!("{} {}", artifact.schema_title, artifact.schema_version)
        },
        artifact_id: artifact.artifact_id,
        name: artifact.name,
        uri: artifact.uri,
        run_id: artifact.run_id,
        run_name,
        task: artifact.producer_task_id,
        output_key: artifact.output_key,
        created: time(Some(artifact.created_at)),
    })
}

/// The charts of a metrics artifact (drawn from its metadata); empty for other types.
fn chart_html(artifact: &ArtifactRecord) -> String {
    let metadata = &artifact.metadata;
    match artifact.schema_title.as_str() {
        "system.Metrics" => charts::metrics_table(metadata),
        "system.ClassificationMetrics" => {
            let mut html = String::new();
            if let Some(svg) = charts::confusion_matrix(metadata) {
                html.push_str("<h3>Confusion matrix</h3>");
                html.push_str(&svg);
            }
            if let Some(svg) = charts::roc_curve(metadata) {
                html.push_str("<h3>ROC curve</h3>");
                html.push_str(&svg);
            }
            html
        }
        _ => String::new(),
    }
}

/// The preview of a file: CSV, JSON, text, or a note for binary files.
fn file_preview(path: &FsPath) -> Preview {
    let mut head = Vec::new();
    let read = std::fs::File::open(path)
        .and_then(|file| file.take(SNIFF_BYTES + 1).read_to_end(&mut head));
    if let Err(error) = read {
        return Preview::Note(format!("It cannot be read: {error}."));
    }
    let complete = head.len() as u64 <= SNIFF_BYTES;
    head.truncate(SNIFF_BYTES as usize);
    if head.is_empty() {
        return Preview::Note("The file is empty.".to_owned());
    }
    if head.iter().take(8192).any(|&b| b == 0) {
        return Preview::Note("A binary file: download it to look inside.".to_owned());
    }
    let text = match std::str::from_utf8(&head) {
        Ok(text) => text,
        // A character cut at the end of what was read.
        Err(error) if error.error_len().is_none() => {
            std::str::from_utf8(&head[..error.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return Preview::Note("A binary file: download it to look inside.".to_owned()),
    };
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let delimiter = if name.ends_with(".tsv") {
        Some('\t')
    } else if name.ends_with(".csv") || looks_like_csv(text) {
        Some(',')
    } else {
        None
    };
    if let Some(delimiter) = delimiter {
        let mut rows = parse_csv(text, delimiter, CSV_PREVIEW_ROWS + 2);
        if !complete && rows.len() <= CSV_PREVIEW_ROWS + 1 {
            // The last row read may be cut.
            rows.pop();
        }
        if !rows.is_empty() {
            let header = rows.remove(0);
            let more = rows.len() > CSV_PREVIEW_ROWS || !complete;
            rows.truncate(CSV_PREVIEW_ROWS);
            return Preview::Csv { header, rows, more };
        }
    }
    let trimmed = text.trim_start();
    if complete
        && (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(json) = serde_json::from_str::<Value>(text)
    {
        return Preview::Json(serde_json::to_string_pretty(&json).unwrap_or_default());
    }
    let mut end = text.len().min(TEXT_PREVIEW_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Preview::Text {
        text: text[..end].to_owned(),
        more: end < text.len() || !complete,
    }
}

/// Whether text without a `.csv` name is comma-separated values: at least two lines, and the
/// first few all have the same number (one or more) of commas outside quotes.
fn looks_like_csv(text: &str) -> bool {
    let rows = parse_csv(text, ',', 6);
    let complete_rows = if text.lines().count() > rows.len() {
        rows.len()
    } else {
        rows.len()
            .saturating_sub(usize::from(!text.ends_with('\n')))
    };
    let rows = &rows[..complete_rows.max(rows.len().min(2))];
    rows.len() >= 2 && rows[0].len() >= 2 && rows.iter().all(|row| row.len() == rows[0].len())
}

/// Up to `limit` records of delimiter-separated values (RFC 4180 quoting: `"a ""b"""`).
fn parse_csv(text: &str, delimiter: char, limit: usize) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                if rows.len() >= limit {
                    return rows;
                }
            }
            c if c == delimiter => row.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// The first entries of a directory (depth first, sorted), with sizes.
fn directory_listing(root: &FsPath) -> Preview {
    let mut entries = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    let mut more = false;
    while let Some(dir) = stack.pop() {
        let mut children: Vec<_> = match std::fs::read_dir(&dir) {
            Ok(read) => read.filter_map(Result::ok).collect(),
            Err(error) => {
                return Preview::Note(format!("It cannot be listed: {error}."));
            }
        };
        children.sort_by_key(|entry| std::cmp::Reverse(entry.file_name()));
        for entry in children {
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
                entries.push((format!("{relative}/"), String::new()));
            } else {
                let size = entry.metadata().map(|m| m.len()).unwrap_or_default();
                entries.push((relative, format!("{size} bytes")));
            }
        }
        if entries.len() > LISTING_ENTRIES {
            more = true;
            break;
        }
    }
    entries.sort();
    entries.truncate(LISTING_ENTRIES);
    Preview::Listing { entries, more }
}

// ---- download -------------------------------------------------------------------------------

/// A file name fit for `Content-Disposition`: letters, digits, `.`, `-` and `_`.
fn download_name(name: &str, suffix: &str) -> String {
    let mut clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.trim_matches(['.', '_']).is_empty() {
        clean = "artifact".to_owned();
    }
    format!("{clean}{suffix}")
}

fn attachment_headers(response: &mut Response, file_name: &str) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SANDBOX_CSP),
    );
}

/// A body fed by a blocking writer on another thread.
fn channel_body() -> (ChannelWriter, Body) {
    let (sender, receiver) = mpsc::channel::<std::io::Result<Bytes>>(4);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    (
        ChannelWriter {
            sender,
            buffer: Vec::with_capacity(CHUNK_BYTES),
        },
        Body::from_stream(stream),
    )
}

/// Sends what is written as body chunks; fails once the client has gone.
struct ChannelWriter {
    sender: mpsc::Sender<std::io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self, chunk: std::io::Result<Bytes>) -> std::io::Result<()> {
        self.sender.blocking_send(chunk).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }

    fn fail(mut self, error: std::io::Error) {
        let _ = self.send(Err(error));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.send(Ok(chunk))
    }
}

async fn download(state: &AppState, artifact_id: &str) -> PageResult {
    let artifact = find(state, artifact_id).await?;
    match content_of(&artifact).await {
        Content::Missing(why) => Err(PageError::not_found(format!(
            "artifact {:?} cannot be downloaded: {why}",
            artifact.name
        ))),
        Content::File { path, size } => {
            let file = tokio::fs::File::open(&path).await.map_err(|error| {
                PageError::not_found(format!("{} cannot be read: {error}", path.display()))
            })?;
            let stream = futures_util::stream::unfold(file, |mut file| async move {
                use tokio::io::AsyncReadExt as _;
                let mut buffer = vec![0; CHUNK_BYTES];
                match file.read(&mut buffer).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buffer.truncate(n);
                        Some((Ok::<_, std::io::Error>(Bytes::from(buffer)), file))
                    }
                    Err(error) => Some((Err(error), file)),
                }
            });
            let mut response = Body::from_stream(stream).into_response();
            attachment_headers(&mut response, &download_name(&artifact.name, ""));
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            Ok(response)
        }
        Content::Directory { path } => {
            let (mut writer, body) = channel_body();
            let name = download_name(&artifact.name, "");
            let root_name = name.clone();
            tokio::task::spawn_blocking(move || {
                let result = (|| {
                    let encoder =
                        flate2::write::GzEncoder::new(&mut writer, flate2::Compression::fast());
                    let mut archive = tar::Builder::new(encoder);
                    archive.follow_symlinks(false);
                    archive.append_dir_all(&root_name, &path)?;
                    archive.into_inner()?.finish()?;
                    Ok::<(), std::io::Error>(())
                })();
                match result {
                    Ok(()) => {
                        let _ = writer.flush();
                    }
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "artifact archive broke off");
                        writer.fail(error);
                    }
                }
            });
            let mut response = body.into_response();
            attachment_headers(&mut response, &format!("{name}.tar.gz"));
            Ok(response)
        }
    }
}

// ---- the sandboxed view ---------------------------------------------------------------------

async fn view(state: &AppState, artifact_id: &str) -> PageResult {
    let artifact = find(state, artifact_id).await?;
    let is_markdown = match artifact.schema_title.as_str() {
        "system.HTML" => false,
        "system.Markdown" => true,
        other => {
            return Err(PageError::not_found(format!(
                "artifact {:?} is a {other}; only system.HTML and system.Markdown artifacts \
                 have a view",
                artifact.name
            )));
        }
    };
    let path = match content_of(&artifact).await {
        Content::File { path, size } if size <= MAX_VIEW_BYTES => path,
        Content::File { size, .. } => {
            return Err(PageError::bad_request(format!(
                "artifact {:?} is {size} bytes; the view shows at most {MAX_VIEW_BYTES}",
                artifact.name
            )));
        }
        Content::Directory { .. } => {
            return Err(PageError::not_found(format!(
                "artifact {:?} is a directory: download it",
                artifact.name
            )));
        }
        Content::Missing(why) => {
            return Err(PageError::not_found(format!(
                "artifact {:?} cannot be shown: {why}",
                artifact.name
            )));
        }
    };
    let bytes = tokio::fs::read(&path).await.map_err(|error| {
        PageError::not_found(format!("{} cannot be read: {error}", path.display()))
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let html = if is_markdown {
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\
             <style>body{{font:14px/1.5 system-ui,sans-serif;margin:12px;color:#1d2430}}\
             table{{border-collapse:collapse}}th,td{{border:1px solid #d8dee6;padding:4px 8px}}\
             pre{{background:#f6f8fa;padding:8px;overflow:auto}}code{{font-family:monospace}}\
             </style></head><body>\n{}</body></html>\n",
            escape(&artifact.name),
            markdown::to_html(&text)
        )
    } else {
        text.into_owned()
    };
    let mut response = html.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SANDBOX_CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_with_quotes() {
        let rows = parse_csv("a,b\n\"x, y\",\"say \"\"hi\"\"\"\r\n1,2", ',', 10);
        assert_eq!(
            rows,
            vec![vec!["a", "b"], vec!["x, y", "say \"hi\""], vec!["1", "2"]]
        );
        assert_eq!(parse_csv("a\nb\nc\n", ',', 2).len(), 2);
    }

    #[test]
    fn csv_is_recognised_by_its_shape() {
        assert!(looks_like_csv("label,predicted,score\ncat,dog,0.1\n"));
        assert!(!looks_like_csv("just one line, with a comma\n"));
        assert!(!looks_like_csv("a,b\nc\n"));
        assert!(!looks_like_csv("plain text\nmore text\n"));
    }

    #[test]
    fn download_names_are_plain() {
        assert_eq!(download_name("model data.csv", ""), "model_data.csv");
        assert_eq!(download_name("\"../x\"", ".tar.gz"), "_.._x_.tar.gz");
        assert_eq!(download_name("", ""), "artifact");
    }

    #[test]
    fn links_escape_names() {
        let artifact = ArtifactRecord {
            artifact_id: "run/root/train/out/0".to_owned(),
            run_id: "run".to_owned(),
            producer_task_id: "root/train".to_owned(),
            output_key: "out".to_owned(),
            name: "<b>out</b>".to_owned(),
            uri: "/tmp/x".to_owned(),
            schema_title: "system.Dataset".to_owned(),
            schema_version: "0.0.1".to_owned(),
            metadata: Value::Null,
            created_at: chrono::Utc::now(),
        };
        let link = artifact_link(&artifact);
        assert!(
            link.contains("href=\"/artifacts/run/root/train/out/0\""),
            "{link}"
        );
        assert!(
            link.contains("data-name=\"&lt;b&gt;out&lt;/b&gt;\""),
            "{link}"
        );
        assert!(!link.contains("<b>"), "{link}");
    }
}
