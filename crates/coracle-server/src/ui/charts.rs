//! Pictures of KFP metrics artifacts, drawn on the server from their metadata as the KFP SDK
//! writes it:
//! - `system.Metrics` (`Metrics.log_metric`): `{name: number}` → [`metrics_table`],
//!   [`scalar_metrics`];
//! - `system.ClassificationMetrics`: `confusionMatrix: {annotationSpecs: [{displayName}],
//!   rows: [{row: [numbers]}]}` (`log_confusion_matrix`, `…_row`, `…_cell`) →
//!   [`confusion_matrix`]; `confidenceMetrics: [{confidenceThreshold, recall,
//!   falsePositiveRate}]` (`log_roc_curve`, `log_roc_data_point`) → [`roc_curve`].
//!
//! Metadata comes from user code: anything missing or of the wrong type gives no chart (or an
//! empty table), never a panic. All text is escaped; the SVG has no scripts and no links.

use std::fmt::Write as _;

use serde_json::{Number, Value};

use super::graph::{escape_xml, num};

/// A number as short as it reads: integral values without `.0`, others with the fewest
/// digits that give the same `f64`, very small or large ones with an exponent.
pub fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{}", value as i64);
    }
    let abs = value.abs();
    if !(1e-4..1e15).contains(&abs) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

fn format_json_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        n.as_f64()
            .map(format_number)
            .unwrap_or_else(|| n.to_string())
    }
}

/// The numeric entries of a `system.Metrics` artifact's metadata, sorted by name. Other
/// entries (strings, lists…) are left out; so is everything when `metadata` is not an object.
pub fn scalar_metrics(metadata: &Value) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = metadata
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| value.as_f64().map(|v| (name.clone(), v)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Longest text of a non-numeric metadata value shown in the table.
const TABLE_TEXT_CHARS: usize = 200;

/// A `system.Metrics` artifact's metadata as `<table id="metrics-table">`: one row
/// (`tr.metric`) per entry, sorted by name; numbers as [`format_number`] writes them, other
/// values as text or compact JSON. Metadata that is not an object gives a table without rows.
pub fn metrics_table(metadata: &Value) -> String {
    let mut entries: Vec<(&String, &Value)> = metadata.as_object().into_iter().flatten().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut html = String::from(
        "<table id=\"metrics-table\" class=\"metrics\"><thead><tr><th>name</th><th>value</th>\
         </tr></thead><tbody>",
    );
    for (name, value) in entries {
        let (class, text) = match value {
            Value::Number(n) => ("num", format_json_number(n)),
            Value::String(s) => ("text", s.clone()),
            Value::Null => ("text", String::new()),
            other => ("text", other.to_string()),
        };
        let text = if text.chars().count() > TABLE_TEXT_CHARS {
            let mut cut: String = text.chars().take(TABLE_TEXT_CHARS - 1).collect();
            cut.push('…');
            cut
        } else {
            text
        };
        let _ = write!(
            html,
            "<tr class=\"metric\"><td>{}</td><td class=\"{class}\">{}</td></tr>",
            escape_xml(name),
            escape_xml(&text)
        );
    }
    html.push_str("</tbody></table>");
    html
}

// ---- confusion matrix -------------------------------------------------------------------------

/// More categories than this are not drawn.
const MAX_CATEGORIES: usize = 100;
/// Characters of a category name shown on an axis.
const AXIS_LABEL_CHARS: usize = 16;
const CHAR_W: f64 = 6.6;

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Light to dark blue, `t` in 0..=1.
fn heat(t: f64) -> String {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(247.0, 8.0),
        mix(251.0, 48.0),
        mix(255.0, 107.0)
    )
}

/// A `system.ClassificationMetrics` artifact's confusion matrix as `<svg id="confusion-matrix">`:
/// a heat-map grid, one row per true label and one column per predicted label, each cell
/// (`g.cell[data-row][data-col]`) with its count. `None` when the metadata has no usable
/// matrix (no categories, no rows, no numbers, or more than 100 categories).
pub fn confusion_matrix(metadata: &Value) -> Option<String> {
    let matrix = metadata.get("confusionMatrix")?;
    let specs = matrix.get("annotationSpecs")?.as_array()?;
    let labels: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.get("displayName")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("#{i}"))
        })
        .collect();
    let n = labels.len();
    if n == 0 || n > MAX_CATEGORIES {
        return None;
    }
    let rows = matrix.get("rows")?.as_array()?;
    let cells: Vec<Vec<Option<&Value>>> = (0..n)
        .map(|i| {
            let row = rows
                .get(i)
                .and_then(|r| r.get("row"))
                .and_then(Value::as_array);
            (0..n)
                .map(|j| row.and_then(|r| r.get(j)).filter(|v| v.is_number()))
                .collect()
        })
        .collect();
    let values = || cells.iter().flatten().flatten().filter_map(|v| v.as_f64());
    values().next()?;
    let max = values().fold(0.0f64, f64::max);

    let cell = (420.0 / n as f64).clamp(22.0, 64.0).floor();
    let font = if cell < 32.0 { 9.0 } else { 12.0 };
    let shown: Vec<String> = labels.iter().map(|l| cut(l, AXIS_LABEL_CHARS)).collect();
    let longest = shown.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64;
    let rotate = longest * CHAR_W > cell - 4.0;
    // Left: axis title, then row labels. Top: axis title, then column labels.
    let left = 24.0 + longest * CHAR_W + 8.0;
    let header = if rotate {
        (longest * CHAR_W * 0.72).ceil() + 10.0
    } else {
        18.0
    };
    let top = 22.0 + header;
    let grid = cell * n as f64;
    // Rotated column labels reach right of the grid by up to their run across.
    let overhang = if rotate {
        (longest * CHAR_W * 0.72 - cell / 2.0).max(0.0)
    } else {
        0.0
    };
    let width = (left + grid + 12.0 + overhang).ceil();
    let height = (top + grid + 12.0).ceil();

    let mut svg = format!(
        "<svg id=\"confusion-matrix\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" \
         font-size=\"12\" role=\"img\" aria-label=\"confusion matrix\">",
        w = num(width),
        h = num(height)
    );
    let _ = write!(
        svg,
        "<text class=\"axis-title\" x=\"{}\" y=\"14\" text-anchor=\"middle\">Predicted \
         label</text><text class=\"axis-title\" transform=\"translate(14,{}) rotate(-90)\" \
         text-anchor=\"middle\">True label</text>",
        num(left + grid / 2.0),
        num(top + grid / 2.0)
    );
    for (j, label) in shown.iter().enumerate() {
        let x = left + cell * (j as f64 + 0.5);
        if rotate {
            let _ = write!(
                svg,
                "<text class=\"col-label\" transform=\"translate({},{}) rotate(-45)\"><title>{}\
                 </title>{}</text>",
                num(x),
                num(top - 6.0),
                escape_xml(&labels[j]),
                escape_xml(label)
            );
        } else {
            let _ = write!(
                svg,
                "<text class=\"col-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\"><title>{}\
                 </title>{}</text>",
                num(x),
                num(top - 6.0),
                escape_xml(&labels[j]),
                escape_xml(label)
            );
        }
    }
    for (i, label) in shown.iter().enumerate() {
        let _ = write!(
            svg,
            "<text class=\"row-label\" x=\"{}\" y=\"{}\" text-anchor=\"end\" \
             dominant-baseline=\"central\"><title>{}</title>{}</text>",
            num(left - 6.0),
            num(top + cell * (i as f64 + 0.5)),
            escape_xml(&labels[i]),
            escape_xml(label)
        );
    }
    for (i, row) in cells.iter().enumerate() {
        for (j, value) in row.iter().enumerate() {
            let (x, y) = (left + cell * j as f64, top + cell * i as f64);
            let v = value.and_then(|v| v.as_f64());
            let t = match v {
                Some(v) if max > 0.0 => v / max,
                _ => 0.0,
            };
            let text = value
                .and_then(|v| match v {
                    Value::Number(n) => Some(format_json_number(n)),
                    _ => None,
                })
                .unwrap_or_default();
            let _ = write!(
                svg,
                "<g class=\"cell{}\" data-row=\"{i}\" data-col=\"{j}\"><title>true {}, predicted \
                 {}: {}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" \
                 stroke=\"#fff\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" \
                 dominant-baseline=\"central\" font-size=\"{}\" fill=\"{}\">{}</text></g>",
                if i == j { " diagonal" } else { "" },
                escape_xml(&labels[i]),
                escape_xml(&labels[j]),
                if text.is_empty() { "no value" } else { &text },
                num(x),
                num(y),
                num(cell),
                num(cell),
                heat(t),
                num(x + cell / 2.0),
                num(y + cell / 2.0),
                num(font),
                if t > 0.55 { "#ffffff" } else { "#1f2328" },
                escape_xml(&text)
            );
        }
    }
    svg.push_str("</svg>");
    Some(svg)
}

// ---- ROC curve --------------------------------------------------------------------------------

/// Points drawn as markers (with their threshold in a tooltip) up to this many.
const MAX_MARKERS: usize = 60;

/// A `system.ClassificationMetrics` artifact's ROC curve as `<svg id="roc-curve">`: false
/// positive rate across, true positive rate (recall) up, both 0..1 with ticks every 0.2; the
/// points as a polyline (`polyline.roc`) in order of false positive rate, and the chance
/// diagonal dashed. `None` when no entry of `confidenceMetrics` has both rates as numbers.
pub fn roc_curve(metadata: &Value) -> Option<String> {
    let entries = metadata.get("confidenceMetrics")?.as_array()?;
    let mut points: Vec<(f64, f64, Option<f64>)> = entries
        .iter()
        .filter_map(|e| {
            let fpr = e.get("falsePositiveRate")?.as_f64()?;
            let tpr = e.get("recall")?.as_f64()?;
            let threshold = e.get("confidenceThreshold").and_then(Value::as_f64);
            Some((fpr.clamp(0.0, 1.0), tpr.clamp(0.0, 1.0), threshold))
        })
        .collect();
    if points.is_empty() {
        return None;
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));

    const LEFT: f64 = 56.0;
    const TOP: f64 = 14.0;
    const PLOT: f64 = 320.0;
    const BOTTOM: f64 = 46.0;
    const RIGHT: f64 = 18.0;
    let width = LEFT + PLOT + RIGHT;
    let height = TOP + PLOT + BOTTOM;
    let px = |fpr: f64| LEFT + fpr * PLOT;
    let py = |tpr: f64| TOP + (1.0 - tpr) * PLOT;

    let mut svg = format!(
        "<svg id=\"roc-curve\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" \
         font-size=\"11\" role=\"img\" aria-label=\"ROC curve\">",
        w = num(width),
        h = num(height)
    );
    for k in 0..=5 {
        let v = k as f64 / 5.0;
        let label = format_number(v);
        let (x, y) = (px(v), py(v));
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{x}\" y1=\"{t}\" x2=\"{x}\" y2=\"{b}\" stroke=\"#eaeef2\"/>\
             <line class=\"grid\" x1=\"{l}\" y1=\"{y}\" x2=\"{r}\" y2=\"{y}\" stroke=\"#eaeef2\"/>\
             <line class=\"axis\" x1=\"{x}\" y1=\"{b}\" x2=\"{x}\" y2=\"{bt}\" stroke=\"#57606a\"/>\
             <line class=\"axis\" x1=\"{lt}\" y1=\"{y}\" x2=\"{l}\" y2=\"{y}\" stroke=\"#57606a\"/>\
             <text class=\"tick\" x=\"{x}\" y=\"{bl}\" text-anchor=\"middle\">{label}</text>\
             <text class=\"tick\" x=\"{ll}\" y=\"{y}\" text-anchor=\"end\" \
             dominant-baseline=\"central\">{label}</text>",
            x = num(x),
            y = num(y),
            t = num(TOP),
            b = num(TOP + PLOT),
            bt = num(TOP + PLOT + 5.0),
            bl = num(TOP + PLOT + 18.0),
            l = num(LEFT),
            lt = num(LEFT - 5.0),
            ll = num(LEFT - 8.0),
            r = num(LEFT + PLOT),
        );
    }
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#57606a\"/>\
         <line class=\"axis\" x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{b}\" stroke=\"#57606a\"/>\
         <line class=\"diagonal\" x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{t}\" stroke=\"#8c959f\" \
         stroke-dasharray=\"5 4\"/>\
         <text class=\"axis-title\" x=\"{cx}\" y=\"{xt}\" text-anchor=\"middle\" \
         font-size=\"12\">False positive rate</text>\
         <text class=\"axis-title\" transform=\"translate(14,{cy}) rotate(-90)\" \
         text-anchor=\"middle\" font-size=\"12\">True positive rate</text>",
        l = num(LEFT),
        r = num(LEFT + PLOT),
        t = num(TOP),
        b = num(TOP + PLOT),
        cx = num(LEFT + PLOT / 2.0),
        xt = num(TOP + PLOT + 38.0),
        cy = num(TOP + PLOT / 2.0),
    );
    let line: Vec<String> = points
        .iter()
        .map(|&(f, t, _)| format!("{},{}", num(px(f)), num(py(t))))
        .collect();
    let _ = write!(
        svg,
        "<polyline class=\"roc\" points=\"{}\" fill=\"none\" stroke=\"#0969da\" \
         stroke-width=\"2\"/>",
        line.join(" ")
    );
    if points.len() <= MAX_MARKERS {
        for &(f, t, threshold) in &points {
            let mut title = format!(
                "false positive rate {}, true positive rate {}",
                format_number(f),
                format_number(t)
            );
            if let Some(th) = threshold {
                let _ = write!(title, ", threshold {}", format_number(th));
            }
            let _ = write!(
                svg,
                "<circle class=\"point\" cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"#0969da\"><title>{}\
                 </title></circle>",
                num(px(f)),
                num(py(t)),
                escape_xml(&title)
            );
        }
    }
    svg.push_str("</svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What `ClassificationMetrics.log_confusion_matrix(['cat', 'dog', 'bird'], [[9, 1, 0],
    /// [2, 7, 1], [0, 0, 10]])` and three `log_roc_data_point` calls leave in the metadata
    /// (kfp 2.14: `set_confusion_matrix_categories` then one `{row: [...]}` per category).
    fn classification() -> Value {
        json!({
            "confusionMatrix": {
                "annotationSpecs": [
                    {"displayName": "cat"},
                    {"displayName": "dog"},
                    {"displayName": "bird"}
                ],
                "rows": [
                    {"row": [9, 1, 0]},
                    {"row": [2, 7, 1]},
                    {"row": [0, 0, 10]}
                ]
            },
            "confidenceMetrics": [
                {"confidenceThreshold": 2.0, "recall": 0.0, "falsePositiveRate": 0.0},
                {"confidenceThreshold": 0.3, "recall": 1.0, "falsePositiveRate": 1.0},
                {"confidenceThreshold": 0.8, "recall": 0.6, "falsePositiveRate": 0.1},
                {"confidenceThreshold": 0.5, "recall": 0.9, "falsePositiveRate": 0.35}
            ]
        })
    }

    #[test]
    fn numbers_are_shortest() {
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(-12.0), "-12");
        assert_eq!(format_number(0.1), "0.1");
        assert_eq!(format_number(0.925), "0.925");
        assert_eq!(format_number(1.5e-7), "1.5e-7");
        assert_eq!(format_number(2.5e20), "2.5e20");
    }

    #[test]
    fn metrics_table_lists_entries_by_name() {
        // `Metrics.log_metric('accuracy', 0.9)`, `log_metric('epochs', 10)` (an int stays an
        // int in the JSON), `log_metric('loss', 2.0)` (a float that is integral).
        let metadata = json!({"loss": 2.0, "accuracy": 0.9, "epochs": 10, "note": "<b>ok</b>"});
        let html = metrics_table(&metadata);
        assert!(html.starts_with("<table id=\"metrics-table\""));
        let rows: Vec<&str> = html.split("<tr class=\"metric\">").skip(1).collect();
        assert_eq!(rows.len(), 4);
        assert!(rows[0].starts_with("<td>accuracy</td><td class=\"num\">0.9</td>"));
        assert!(rows[1].starts_with("<td>epochs</td><td class=\"num\">10</td>"));
        assert!(rows[2].starts_with("<td>loss</td><td class=\"num\">2</td>"));
        assert!(rows[3].starts_with("<td>note</td><td class=\"text\">&lt;b&gt;ok&lt;/b&gt;</td>"));
        assert_eq!(
            scalar_metrics(&metadata),
            vec![
                ("accuracy".to_string(), 0.9),
                ("epochs".to_string(), 10.0),
                ("loss".to_string(), 2.0)
            ]
        );
    }

    #[test]
    fn empty_or_malformed_metadata_gives_nothing() {
        for bad in [
            json!(null),
            json!({}),
            json!([1, 2]),
            json!("text"),
            json!({"confusionMatrix": null, "confidenceMetrics": {}}),
            json!({"confusionMatrix": {"annotationSpecs": []}}),
            json!({"confusionMatrix": {"annotationSpecs": [{"displayName": "a"}]}}),
            json!({"confusionMatrix": {"annotationSpecs": [{"displayName": "a"}],
                   "rows": [{"row": ["x"]}]}}),
            json!({"confidenceMetrics": [{"recall": "1", "falsePositiveRate": 0}, 5, null]}),
        ] {
            assert_eq!(confusion_matrix(&bad), None, "{bad}");
            assert_eq!(roc_curve(&bad), None, "{bad}");
            if !bad.is_object() || bad.as_object().is_some_and(|m| m.is_empty()) {
                let html = metrics_table(&bad);
                assert!(!html.contains("<tr class=\"metric\">"), "{bad}");
                assert!(html.contains("</table>"));
            }
            assert!(scalar_metrics(&bad).is_empty(), "{bad}");
        }
        // Too many categories.
        let many: Vec<Value> = (0..101)
            .map(|i| json!({"displayName": format!("c{i}")}))
            .collect();
        let rows: Vec<Value> = (0..101).map(|_| json!({"row": vec![1; 101]})).collect();
        assert_eq!(
            confusion_matrix(&json!({"confusionMatrix": {"annotationSpecs": many, "rows": rows}})),
            None
        );
    }

    #[test]
    fn confusion_matrix_draws_each_cell() {
        let svg = confusion_matrix(&classification()).expect("a matrix");
        assert!(svg.starts_with("<svg id=\"confusion-matrix\""));
        assert_eq!(svg.matches("<g class=\"cell").count(), 9);
        assert_eq!(svg.matches("class=\"cell diagonal\"").count(), 3);
        // Row 1 (dog, true) column 0 (cat, predicted) holds 2.
        let at = svg.find("data-row=\"1\" data-col=\"0\"").unwrap();
        let cell = &svg[at..at + svg[at..].find("</g>").unwrap()];
        assert!(
            cell.contains("<title>true dog, predicted cat: 2</title>"),
            "{cell}"
        );
        assert!(cell.ends_with(">2</text>"), "{cell}");
        // The largest count is the darkest.
        let at = svg.find("data-row=\"2\" data-col=\"2\"").unwrap();
        assert!(svg[at..].contains("fill=\"#08306b\""));
        assert!(svg.contains(">Predicted label<") && svg.contains(">True label<"));
        for label in ["cat", "dog", "bird"] {
            assert_eq!(svg.matches(&format!("<title>{label}</title>")).count(), 2);
        }
    }

    #[test]
    fn confusion_matrix_cells_may_be_missing_or_floats() {
        // `log_confusion_matrix_row` accepts floats; a row left out is drawn empty.
        let metadata = json!({"confusionMatrix": {
            "annotationSpecs": [{"displayName": "<yes>"}, {"other": 1}],
            "rows": [{"row": [0.5, 1.25]}]
        }});
        let svg = confusion_matrix(&metadata).expect("a matrix");
        assert!(svg.contains(">0.5</text>") && svg.contains(">1.25</text>"));
        assert!(svg.contains("true &lt;yes&gt;, predicted #1: 1.25"));
        assert!(svg.contains("true #1, predicted #1: no value"));
        assert!(!svg.contains("<yes>"));
    }

    #[test]
    fn roc_curve_is_sorted_by_false_positive_rate() {
        let svg = roc_curve(&classification()).expect("a curve");
        assert!(svg.starts_with("<svg id=\"roc-curve\""));
        let at = svg.find("points=\"").unwrap() + 8;
        let points: Vec<(f64, f64)> = svg[at..at + svg[at..].find('"').unwrap()]
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(points.len(), 4);
        assert!(points.windows(2).all(|w| w[0].0 <= w[1].0), "{points:?}");
        // (0, 0) is the bottom-left corner, (1, 1) the top-right one.
        assert_eq!(points[0], (56.0, 334.0));
        assert_eq!(points[3], (376.0, 14.0));
        assert!(svg.contains("class=\"diagonal\"") && svg.contains("stroke-dasharray"));
        assert_eq!(svg.matches("class=\"tick\"").count(), 12);
        assert!(svg.contains("threshold 0.8"));
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn chart_snapshots() {
        insta::assert_snapshot!(
            "confusion_matrix",
            confusion_matrix(&classification()).unwrap()
        );
        insta::assert_snapshot!("roc_curve", roc_curve(&classification()).unwrap());
    }
}
