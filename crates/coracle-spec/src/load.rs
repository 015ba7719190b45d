//! Reading a pipeline file: plain YAML/JSON (one spec document, optionally a `platforms`
//! document; or, translated, a KFP v1 Argo Workflow or v1 `component.yaml`), or a `.zip` /
//! `.tar.gz` package holding one.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::model::{Pipeline, PipelineSpec};
use crate::{Error, Issue, Issues};

/// Largest pipeline file (or archive member) accepted.
const MAX_PIPELINE_BYTES: u64 = 64 * 1024 * 1024;

/// Loads and validates the pipeline in the file at `path`.
pub fn load_path(path: &Path) -> Result<Pipeline, Error> {
    let name = path.display().to_string();
    let lower = name.to_ascii_lowercase();
    const ACCEPTED: [&str; 6] = [".yaml", ".yml", ".json", ".zip", ".tar.gz", ".tgz"];
    if !ACCEPTED.iter().any(|ext| lower.ends_with(ext)) {
        return Err(Error::Format {
            source_name: name,
            message: "unsupported file type: expected .yaml, .yml, .json, .zip or .tar.gz".into(),
        });
    }
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: name.clone(),
        source,
    })?;
    load_bytes(&name, &bytes)
}

/// Loads and validates a pipeline from `bytes`; `source_name` is used in messages.
pub fn load_bytes(source_name: &str, bytes: &[u8]) -> Result<Pipeline, Error> {
    let format = |message: String| Error::Format {
        source_name: source_name.to_string(),
        message,
    };
    let text = if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        from_zip(bytes).map_err(format)?
    } else if bytes.starts_with(&[0x1f, 0x8b]) {
        from_tar_gz(bytes).map_err(format)?
    } else {
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            format("not a pipeline: the file is binary, not YAML or JSON text".into())
        })?
    };
    let pipeline = parse_document(&text).map_err(|e| match e {
        ParseError::Format(message) => format(message),
        ParseError::Invalid(issues) => Error::Invalid {
            source_name: source_name.to_string(),
            issues,
        },
    })?;
    crate::validate(&pipeline.spec).map_err(|issues| Error::Invalid {
        source_name: source_name.to_string(),
        issues,
    })?;
    Ok(pipeline)
}

pub enum ParseError {
    Format(String),
    Invalid(Issues),
}

/// Parses YAML or JSON text into a pipeline, without validating references.
pub fn parse_document(text: &str) -> Result<Pipeline, ParseError> {
    if text.trim().is_empty() {
        return Err(ParseError::Format("the file is empty".into()));
    }
    // YAML 1.2 booleans only: `no`, `on`, `n` stay strings, as the SDK means them.
    let options = serde_saphyr::options! { strict_booleans: true };
    let documents: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| {
            ParseError::Format(format!(
                "not valid YAML or JSON: {}",
                first_line(&e.to_string())
            ))
        })?;
    if documents.is_empty() {
        return Err(ParseError::Format(
            "the file is empty (it holds no YAML document)".into(),
        ));
    }
    let workflow = documents
        .iter()
        .any(|d| d.as_object().is_some_and(crate::argo::is_workflow));
    if workflow {
        if documents.len() > 1 {
            return Err(ParseError::Format(
                "an Argo Workflow (a KFP v1 pipeline) must be the file's only document".into(),
            ));
        }
        let document = documents.into_iter().next().unwrap_or_default();
        return crate::argo::translate(document);
    }
    if let [document] = documents.as_slice()
        && document
            .as_object()
            .is_some_and(crate::v1_component::is_component)
    {
        let document = documents.into_iter().next().unwrap_or_default();
        return crate::v1_component::translate(document);
    }
    let mut spec = None;
    let mut platforms = None;
    for (index, document) in documents.into_iter().enumerate() {
        let Value::Object(map) = &document else {
            return Err(ParseError::Format(format!(
                "document {}: expected a mapping (a pipeline spec), found {}",
                index + 1,
                kind_of(&document)
            )));
        };
        if map.contains_key("platforms") {
            if platforms.replace(document).is_some() {
                return Err(ParseError::Format(
                    "more than one platforms document".into(),
                ));
            }
        } else if spec.replace(document).is_some() {
            return Err(ParseError::Format(
                "more than one pipeline spec document".into(),
            ));
        }
    }
    let Some(spec) = spec else {
        return Err(ParseError::Format("no pipeline spec document found".into()));
    };
    let mut spec: PipelineSpec = serde_path_to_error::deserialize(spec).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ParseError::Invalid(Issues(vec![Issue::new(path, e.into_inner().to_string())]))
    })?;
    let platforms = platforms.and_then(|mut p| p.get_mut("platforms").map(Value::take));
    spec.platforms = match &platforms {
        None | Some(Value::Null) => None,
        Some(document) => Some(serde_path_to_error::deserialize(document).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." {
                "platforms".to_string()
            } else {
                format!("platforms.{path}")
            };
            ParseError::Invalid(Issues(vec![Issue::new(path, e.into_inner().to_string())]))
        })?),
    };
    Ok(Pipeline { spec, platforms })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a plain string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn is_pipeline_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

/// Picks `pipeline.yaml`, else the first YAML/JSON member, as KFP's upload does.
fn pick<'a>(names: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut first = None;
    for name in names {
        let base = name.rsplit('/').next().unwrap_or(name);
        if base == "pipeline.yaml" {
            return Some(name.to_string());
        }
        if first.is_none() && is_pipeline_name(base) && !base.starts_with('.') {
            first = Some(name.to_string());
        }
    }
    first
}

fn read_limited(reader: impl Read, what: &str) -> Result<String, String> {
    let mut buf = Vec::new();
    reader
        .take(MAX_PIPELINE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("failed to read {what}: {e}"))?;
    if buf.len() as u64 > MAX_PIPELINE_BYTES {
        return Err(format!(
            "{what} is larger than {} MiB",
            MAX_PIPELINE_BYTES >> 20
        ));
    }
    String::from_utf8(buf).map_err(|_| format!("{what} is not UTF-8 text"))
}

fn from_zip(bytes: &[u8]) -> Result<String, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a valid zip archive: {e}"))?;
    let names: Vec<String> = archive
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a valid zip archive: {e}"))?;
    let chosen = pick(names.iter().map(String::as_str)).ok_or_else(|| {
        "the zip archive holds no pipeline file (.yaml, .yml or .json)".to_string()
    })?;
    let entry = archive
        .by_name(&chosen)
        .map_err(|e| format!("failed to read {chosen} in the zip archive: {e}"))?;
    read_limited(entry, &format!("{chosen} in the zip archive"))
}

fn from_tar_gz(bytes: &[u8]) -> Result<String, String> {
    // Two passes: the first finds the member to use, the second reads it.
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive
        .entries()
        .map_err(|e| format!("not a valid .tar.gz archive: {e}"))?
    {
        let entry = entry.map_err(|e| format!("not a valid .tar.gz archive: {e}"))?;
        if entry.header().entry_type().is_file() {
            let path = entry
                .path()
                .map_err(|e| format!("bad member name in .tar.gz archive: {e}"))?;
            names.push(path.to_string_lossy().into_owned());
        }
    }
    let chosen = pick(names.iter().map(String::as_str)).ok_or_else(|| {
        "the .tar.gz archive holds no pipeline file (.yaml, .yml or .json)".to_string()
    })?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive
        .entries()
        .map_err(|e| format!("not a valid .tar.gz archive: {e}"))?
    {
        let entry = entry.map_err(|e| format!("not a valid .tar.gz archive: {e}"))?;
        let matches = entry
            .path()
            .map(|p| p.to_string_lossy() == chosen.as_str())
            .unwrap_or(false);
        if matches && entry.header().entry_type().is_file() {
            return read_limited(entry, &format!("{chosen} in the .tar.gz archive"));
        }
    }
    Err(format!("failed to read {chosen} in the .tar.gz archive"))
}
