//! Reading a finished task's outputs, by KFP's rules: the executor output file
//! (`executor_output.json`) wins; otherwise each output parameter's own file (STRING raw,
//! other types as JSON, BOOLEAN in any case). A declared output parameter found nowhere fails
//! the task. Output artifacts keep their planned URI unless the executor output names
//! another, and take the metadata it reports.

use std::collections::BTreeMap;

use coracle_spec::value;
use serde_json::Value;

use crate::{Io, OutputPlan};

/// `text` with the bare tokens `NaN`, `Infinity` and `-Infinity` (outside strings) replaced by
/// `null`.
fn python_non_finite_as_null(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        let token = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|token| rest.starts_with(token));
        match token {
            Some(token) => {
                out.push_str("null");
                rest = &rest[token.len()..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// `executor_output` is the content of the executor output file, if it was written;
/// `parameter_files` the content of each output parameter's file, if written.
pub fn collect_outputs(
    plan: &OutputPlan,
    executor_output: Option<&str>,
    parameter_files: &BTreeMap<String, String>,
) -> Result<Io, String> {
    let executor_output: Value = match executor_output {
        Some(text) if !text.trim().is_empty() => serde_json::from_str(text)
            .or_else(|e| {
                // Python's json writes NaN and ±Infinity (an ROC curve's first threshold is
                // `inf`); as JSON has no such numbers, they are read as null.
                serde_json::from_str(&python_non_finite_as_null(text)).map_err(|_| e)
            })
            .map_err(|e| {
                format!(
                    "the executor output file {} is not valid JSON: {e}",
                    plan.executor_output_file
                )
            })?,
        _ => Value::Null,
    };
    let reported_parameters = executor_output
        .get("parameterValues")
        .and_then(Value::as_object);
    let reported_artifacts = executor_output.get("artifacts").and_then(Value::as_object);

    let mut io = Io::default();
    for (name, (ty, file)) in &plan.parameters {
        let value = if let Some(v) = reported_parameters.and_then(|p| p.get(name)) {
            value::coerce(*ty, v).map_err(|e| format!("output parameter \"{name}\": {e}"))?
        } else if let Some(text) = parameter_files.get(name) {
            value::parse_text(*ty, text)
                .map_err(|e| format!("output parameter \"{name}\" (read from {file}): {e}"))?
        } else {
            return Err(format!(
                "output parameter \"{name}\" was not written (expected in {file} or the executor output file)"
            ));
        };
        io.parameters.insert(name.clone(), value);
    }
    for (name, planned) in &plan.artifacts {
        let mut artifact = planned.clone();
        let reported = reported_artifacts
            .and_then(|a| a.get(name))
            .and_then(|a| a.get("artifacts"))
            .and_then(Value::as_array)
            .and_then(|list| list.first());
        if let Some(reported) = reported {
            if let Some(uri) = reported
                .get("uri")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
            {
                artifact.uri = uri.to_string();
            }
            if let Some(metadata) = reported.get("metadata").and_then(Value::as_object) {
                artifact
                    .metadata
                    .extend(metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        io.artifacts.insert(name.clone(), vec![artifact]);
    }
    Ok(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ArtifactValue;
    use coracle_spec::ParameterType;
    use serde_json::json;

    fn plan() -> OutputPlan {
        let mut parameters = BTreeMap::new();
        parameters.insert(
            "n".to_string(),
            (ParameterType::NumberInteger, "/t/n".to_string()),
        );
        parameters.insert("s".to_string(), (ParameterType::String, "/t/s".to_string()));
        let mut artifacts = BTreeMap::new();
        artifacts.insert(
            "m".to_string(),
            ArtifactValue {
                name: "m".into(),
                uri: "/root/m".into(),
                schema_title: "system.Metrics".into(),
                schema_version: "0.0.1".into(),
                metadata: Default::default(),
            },
        );
        OutputPlan {
            executor_output_file: "/t/out.json".into(),
            parameters,
            artifacts,
        }
    }

    fn check(executor_output: Option<&str>, files: &[(&str, &str)], expected: &str) {
        let files = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let got = match collect_outputs(&plan(), executor_output, &files) {
            Ok(io) => format!("{:?} {:?}", io.parameters, io.artifacts["m"][0].metadata),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn output_sources() {
        // Files only.
        check(
            None,
            &[("n", "3\n"), ("s", "a b\n")],
            r#"{"n": Number(3), "s": String("a b\n")} {}"#,
        );
        // The executor output file wins over the files and carries metadata.
        check(
            Some(
                r#"{"parameterValues": {"n": 4.0, "s": "x"}, "artifacts": {"m": {"artifacts": [{"name": "m", "metadata": {"acc": 0.9}}]}}}"#,
            ),
            &[("n", "3")],
            r#"{"n": Number(4), "s": String("x")} {"acc": Number(0.9)}"#,
        );
        check(
            None,
            &[("n", "3")],
            "error: output parameter \"s\" was not written (expected in /t/s or the executor output file)",
        );
        check(
            None,
            &[("n", "x"), ("s", "")],
            "error: output parameter \"n\" (read from /t/n): expected NUMBER_INTEGER, got \"x\"",
        );
        check(
            Some("{"),
            &[],
            "error: the executor output file /t/out.json is not valid JSON: EOF while parsing an object at line 1 column 1",
        );
        let _ = json!(null);
    }
}

#[cfg(test)]
mod non_finite_tests {
    #[test]
    fn python_non_finite_numbers_read_as_null_outside_strings() {
        let text = r#"{"a": [Infinity, -Infinity, NaN, 1.5], "b": "NaN and Infinity \" NaN"}"#;
        let fixed = super::python_non_finite_as_null(text);
        let value: serde_json::Value = serde_json::from_str(&fixed).unwrap();
        assert_eq!(value["a"], serde_json::json!([null, null, null, 1.5]));
        assert_eq!(value["b"], "NaN and Infinity \" NaN");
    }
}
