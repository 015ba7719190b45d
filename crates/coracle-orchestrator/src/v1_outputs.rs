//! What a KFP v1 task leaves in files, read after it ends as Argo's executor reads them. The
//! v1 front end (`coracle_spec`'s Argo translation) declares each output parameter with an
//! output artifact of the same key at the path the program writes; and `mlpipeline-metrics`
//! as a `system.Metrics` artifact whose file holds `{"metrics": [{"name", "numberValue"}]}`.
//!
//! Neither rule applies to what the v2 SDK compiles: its outputs never share a name between
//! a parameter and an artifact, and its metrics artifacts report their values as metadata.

use std::collections::BTreeMap;

use coracle_engine::{Io, OutputPlan};
use serde_json::{Map, Value};

/// Output parameters the task did not write to their own files, read from the output
/// artifact of the same key, less one trailing newline (Argo's `valueFrom.path`).
pub(crate) async fn parameters_from_artifacts(
    plan: &OutputPlan,
    files: &mut BTreeMap<String, String>,
) {
    for name in plan.parameters.keys() {
        if files.contains_key(name) {
            continue;
        }
        let Some(artifact) = plan.artifacts.get(name) else {
            continue;
        };
        let Ok(path) = coracle_artifacts::local_path(&artifact.uri) else {
            continue;
        };
        if let Ok(text) = tokio::fs::read_to_string(&path).await {
            let text = text.strip_suffix('\n').unwrap_or(&text).to_string();
            files.insert(name.clone(), text);
        }
    }
}

/// `system.Metrics` artifacts with no metadata whose file holds KFP v1 metrics get the
/// metrics as metadata (`{name: value}`), which is what run metrics are read from.
pub(crate) async fn metrics_metadata(io: &mut Io) {
    for artifact in io.artifacts.values_mut().flatten() {
        if artifact.schema_title != "system.Metrics" || !artifact.metadata.is_empty() {
            continue;
        }
        let Ok(path) = coracle_artifacts::local_path(&artifact.uri) else {
            continue;
        };
        let Ok(text) = tokio::fs::read_to_string(&path).await else {
            continue;
        };
        if let Some(metadata) = v1_metrics(&text) {
            artifact.metadata = metadata;
        }
    }
}

/// `{"metrics": [{"name": "accuracy", "numberValue": 0.9, "format": "PERCENTAGE"}]}` as
/// `{"accuracy": 0.9}`; `None` when the text is not that shape. Values written as numeric
/// strings count; entries without a name or a number are left out.
fn v1_metrics(text: &str) -> Option<Map<String, Value>> {
    let document: Value = serde_json::from_str(text).ok()?;
    let list = document.get("metrics")?.as_array()?;
    let mut metadata = Map::new();
    for entry in list {
        let Some(name) = entry.get("name").and_then(Value::as_str) else {
            continue;
        };
        let number = match entry.get("numberValue") {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        if let Some(number) = number.filter(|n| n.is_finite()) {
            metadata.insert(
                name.to_string(),
                coracle_spec::value::canonical(Value::from(number)),
            );
        }
    }
    Some(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_metrics_become_metadata() {
        let text = r#"{"metrics": [
            {"name": "accuracy", "numberValue": 0.75, "format": "PERCENTAGE"},
            {"name": "epochs", "numberValue": "3"},
            {"name": "broken", "numberValue": "x"},
            {"numberValue": 1}
        ]}"#;
        assert_eq!(
            Value::Object(v1_metrics(text).unwrap()).to_string(),
            r#"{"accuracy":0.75,"epochs":3}"#
        );
        assert_eq!(v1_metrics("{}"), None);
        assert_eq!(v1_metrics("not json"), None);
    }
}
