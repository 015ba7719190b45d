//! KFP v1 `mlpipeline-ui-metadata` outputs drawn as the v1 UI draws them: `markdown` and
//! `web-app` in sandboxed frames (an opaque origin, as HTML artifacts), `table` as a table,
//! `confusion_matrix` and `roc` through the same charts as v2 `ClassificationMetrics`.
//! A `source` is the content itself (`storage: inline`) or a local file; other sources are
//! named, not fetched.

use serde_json::{Value, json};

use super::super::catalog::escape;
use super::super::charts;
use super::{markdown, parse_csv};

/// The most rows a table shows.
const TABLE_ROWS: usize = 200;

/// The HTML of every output of a `mlpipeline-ui-metadata` document.
pub(super) fn to_html(document: &str) -> String {
    let parsed: Value = match serde_json::from_str(document) {
        Ok(value) => value,
        Err(error) => {
            return format!(
                "<p class=\"muted\" id=\"preview-note\">The UI metadata is not JSON: {}</p>",
                escape(&error.to_string())
            );
        }
    };
    let outputs = parsed
        .get("outputs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if outputs.is_empty() {
        return "<p class=\"muted\" id=\"preview-note\">The UI metadata lists no outputs.</p>"
            .into();
    }
    let mut html = String::new();
    for (index, output) in outputs.iter().enumerate() {
        let kind = output.get("type").and_then(Value::as_str).unwrap_or("");
        html.push_str(&format!(
            "<section class=\"ui-output\" data-type=\"{}\"><h3>{}</h3>",
            escape(kind),
            escape(&title(kind, index))
        ));
        html.push_str(&match source(output) {
            Err(why) => format!("<p class=\"muted\">{}</p>", escape(&why)),
            Ok(text) => draw(kind, output, &text),
        });
        html.push_str("</section>");
    }
    html
}

fn title(kind: &str, index: usize) -> String {
    let name = match kind {
        "markdown" => "Markdown",
        "web-app" => "Web app",
        "table" => "Table",
        "confusion_matrix" => "Confusion matrix",
        "roc" => "ROC curve",
        "tensorboard" => "TensorBoard",
        other => other,
    };
    format!("{} (output {})", name, index + 1)
}

/// The output's content: inline, or a local file.
fn source(output: &Value) -> Result<String, String> {
    let source = output.get("source").and_then(Value::as_str).unwrap_or("");
    if output.get("storage").and_then(Value::as_str) == Some("inline") {
        return Ok(source.to_string());
    }
    let path = source.strip_prefix("file://").unwrap_or(source);
    if path.starts_with('/') {
        return std::fs::read_to_string(path)
            .map_err(|error| format!("its source {source} cannot be read: {error}"));
    }
    Err(format!(
        "its source {source} is not a local file or inline content; Coracle does not fetch it"
    ))
}

fn draw(kind: &str, output: &Value, text: &str) -> String {
    match kind {
        "markdown" => frame(&markdown::to_html(text)),
        "web-app" => frame(text),
        "table" => table(output, text),
        "confusion_matrix" => charts::confusion_matrix(&confusion_metadata(output, text))
            .unwrap_or_else(|| {
                "<p class=\"muted\">The confusion matrix cannot be read.</p>".into()
            }),
        "roc" => charts::roc_curve(&roc_metadata(output, text))
            .unwrap_or_else(|| "<p class=\"muted\">The ROC data cannot be read.</p>".into()),
        other => format!(
            "<p class=\"muted\">Outputs of type {} are not drawn here.</p>",
            escape(other)
        ),
    }
}

/// HTML in a sandboxed frame without same-origin: its scripts run in an opaque origin.
fn frame(html: &str) -> String {
    format!(
        "<iframe class=\"ui-metadata-frame\" sandbox=\"allow-scripts\" referrerpolicy=\"no-referrer\" srcdoc=\"{}\"></iframe>",
        escape(html)
    )
}

fn table(output: &Value, text: &str) -> String {
    let header: Vec<String> = output
        .get("header")
        .and_then(Value::as_array)
        .map(|h| {
            h.iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    let rows = parse_csv(text, ',', TABLE_ROWS);
    let mut html = String::from("<table class=\"ui-table\">");
    if !header.is_empty() {
        html.push_str("<thead><tr>");
        for cell in &header {
            html.push_str(&format!("<th>{}</th>", escape(cell)));
        }
        html.push_str("</tr></thead>");
    }
    html.push_str("<tbody>");
    for row in rows {
        html.push_str("<tr>");
        for cell in row {
            html.push_str(&format!("<td>{}</td>", escape(&cell)));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    html
}

/// The column of `name` in the output's `schema`, else `default`.
fn column(output: &Value, name: &str, default: usize) -> usize {
    output
        .get("schema")
        .and_then(Value::as_array)
        .and_then(|schema| {
            schema
                .iter()
                .position(|c| c.get("name").and_then(Value::as_str) == Some(name))
        })
        .unwrap_or(default)
}

/// v1 `confusion_matrix` CSV (target, predicted, count) as `ClassificationMetrics` metadata.
fn confusion_metadata(output: &Value, text: &str) -> Value {
    let (target, predicted, count) = (
        column(output, "target", 0),
        column(output, "predicted", 1),
        column(output, "count", 2),
    );
    // The v1 UI trims the target and predicted cells before looking their labels up, so
    // `cat, dog, 3` (a space after each comma) counts for the labels `cat` and `dog`.
    let rows: Vec<Vec<String>> = parse_csv(text, ',', 100_000)
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect();
    let mut labels: Vec<String> = output
        .get("labels")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    for row in &rows {
        for index in [target, predicted] {
            if let Some(label) = row.get(index)
                && !labels.contains(label)
            {
                labels.push(label.clone());
            }
        }
    }
    let mut matrix = vec![vec![0i64; labels.len()]; labels.len()];
    for row in &rows {
        let position = |index: usize| {
            row.get(index)
                .and_then(|l| labels.iter().position(|x| x == l))
        };
        if let (Some(t), Some(p)) = (position(target), position(predicted)) {
            let n = row
                .get(count)
                .and_then(|c| c.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            matrix[t][p] += n as i64;
        }
    }
    json!({"confusionMatrix": {
        "annotationSpecs": labels.iter().map(|l| json!({"displayName": l})).collect::<Vec<_>>(),
        "rows": matrix.iter().map(|row| json!({"row": row})).collect::<Vec<_>>(),
    }})
}

/// v1 `roc` CSV (fpr, tpr, thresholds) as `ClassificationMetrics` metadata.
fn roc_metadata(output: &Value, text: &str) -> Value {
    let (fpr, tpr, threshold) = (
        column(output, "fpr", 0),
        column(output, "tpr", 1),
        column(output, "thresholds", 2),
    );
    let number = |row: &Vec<String>, index: usize| -> Option<f64> {
        row.get(index).and_then(|v| v.trim().parse::<f64>().ok())
    };
    let points: Vec<Value> = parse_csv(text, ',', 100_000)
        .iter()
        .filter_map(|row| {
            Some(json!({
                "falsePositiveRate": number(row, fpr)?,
                "recall": number(row, tpr)?,
                "confidenceThreshold": number(row, threshold).filter(|t| t.is_finite()),
            }))
        })
        .collect();
    json!({"confidenceMetrics": points})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_drawn_and_content_is_escaped() {
        let document = json!({"outputs": [
            {"type": "markdown", "storage": "inline", "source": "# Title\n<script>x</script>"},
            {"type": "web-app", "storage": "inline", "source": "<p onclick=\"a\">hi</p>"},
            {"type": "table", "storage": "inline", "format": "csv", "header": ["a", "b"], "source": "1,<b>\n3,4"},
            {"type": "confusion_matrix", "storage": "inline", "format": "csv",
             "schema": [{"name": "target", "type": "CATEGORY"}, {"name": "predicted", "type": "CATEGORY"}, {"name": "count", "type": "NUMBER"}],
             "labels": ["cat", "dog"], "source": "cat,cat,5\ncat,dog,1\ndog,dog,4"},
            {"type": "roc", "storage": "inline", "format": "csv",
             "schema": [{"name": "fpr", "type": "NUMBER"}, {"name": "tpr", "type": "NUMBER"}, {"name": "thresholds", "type": "NUMBER"}],
             "source": "0,0,inf\n0.2,0.7,0.5\n1,1,0"},
            {"type": "tensorboard", "source": "gs://bucket/logs"},
        ]})
        .to_string();
        let html = to_html(&document);
        assert_eq!(
            html.matches("<section class=\"ui-output\"").count(),
            6,
            "{html}"
        );
        assert_eq!(html.matches("sandbox=\"allow-scripts\"").count(), 2);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("<td>&lt;b&gt;</td>"), "{html}");
        assert!(html.contains("id=\"confusion-matrix\""), "{html}");
        assert!(html.contains("id=\"roc-curve\""), "{html}");
        assert!(html.contains("does not fetch it"), "{html}");
        let matrix = confusion_metadata(
            &json!({"labels": ["cat", "dog"]}),
            "cat,cat,5\ncat,dog,1\ndog,dog,4",
        );
        assert_eq!(
            matrix["confusionMatrix"]["rows"],
            json!([{"row": [5, 1]}, {"row": [0, 4]}])
        );
    }

    #[test]
    fn confusion_cells_are_trimmed_as_the_v1_ui_trims_them() {
        let matrix = confusion_metadata(
            &json!({"labels": ["cat", "dog"]}),
            "cat, cat, 9\r\ncat , dog,2\n dog,cat ,0\ndog,dog,5\n",
        );
        assert_eq!(
            matrix["confusionMatrix"]["annotationSpecs"],
            json!([{"displayName": "cat"}, {"displayName": "dog"}])
        );
        assert_eq!(
            matrix["confusionMatrix"]["rows"],
            json!([{"row": [9, 2]}, {"row": [0, 5]}])
        );
    }

    #[test]
    fn bad_documents_say_so() {
        assert!(to_html("not json").contains("not JSON"));
        assert!(to_html("{}").contains("no outputs"));
    }
}
