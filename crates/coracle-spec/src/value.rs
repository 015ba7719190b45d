//! Parameter values: checking a value against its declared type, reading values given as
//! text (command line, output files), and the text form placeholders substitute.

use serde_json::{Number, Value};

use crate::model::ParameterType;

/// Checks `value` against `ty` and normalises it (integers as JSON integers, doubles as
/// floats). Strings are accepted for non-string types when they parse as that type, since
/// parameters often arrive as text.
pub fn coerce(ty: ParameterType, value: &Value) -> Result<Value, String> {
    coerce_raw(ty, value).map(canonical)
}

/// Numbers as the KFP backend renders them: every value is a double on the wire, and an
/// integral one prints without a fraction (`1.0` → `1`), at any depth of a list or struct.
pub fn canonical(value: Value) -> Value {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, canonical(v))).collect())
        }
        other => other,
    }
}

fn coerce_raw(ty: ParameterType, value: &Value) -> Result<Value, String> {
    let wrong = || format!("expected {}, got {}", type_word(ty), describe(value));
    match (ty, value) {
        (ParameterType::String, Value::String(_)) => Ok(value.clone()),
        (ParameterType::NumberInteger, Value::Number(n)) => {
            integer(n).map(Value::from).ok_or_else(wrong)
        }
        (ParameterType::NumberDouble, Value::Number(n)) => n
            .as_f64()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(wrong),
        (ParameterType::Boolean, Value::Bool(_)) => Ok(value.clone()),
        (ParameterType::List, Value::Array(_)) => Ok(value.clone()),
        (ParameterType::Struct | ParameterType::TaskFinalStatus, Value::Object(_)) => {
            Ok(value.clone())
        }
        (ParameterType::Unspecified, _) => Ok(value.clone()),
        (ty, Value::String(text)) if ty != ParameterType::String => {
            parse_text_raw(ty, text).map_err(|_| wrong())
        }
        _ => Err(wrong()),
    }
}

/// Reads a value given as text: a command-line `-p name=value`, or a container component's
/// output parameter file. STRING is taken raw; BOOLEAN is `true`/`false` in any case; numbers
/// as written; LIST and STRUCT as JSON.
pub fn parse_text(ty: ParameterType, text: &str) -> Result<Value, String> {
    parse_text_raw(ty, text).map(canonical)
}

fn parse_text_raw(ty: ParameterType, text: &str) -> Result<Value, String> {
    let trimmed = text.trim();
    let wrong = || format!("expected {}, got {:?}", type_word(ty), text);
    match ty {
        ParameterType::String => Ok(Value::String(text.to_string())),
        ParameterType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(wrong()),
        },
        ParameterType::NumberInteger => match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Number(n)) => integer(&n).map(Value::from).ok_or_else(wrong),
            _ => Err(wrong()),
        },
        ParameterType::NumberDouble => trimmed
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(wrong),
        ParameterType::List => match serde_json::from_str::<Value>(trimmed) {
            Ok(v @ Value::Array(_)) => Ok(v),
            _ => Err(wrong()),
        },
        ParameterType::Struct | ParameterType::TaskFinalStatus => {
            match serde_json::from_str::<Value>(trimmed) {
                Ok(v @ Value::Object(_)) => Ok(v),
                _ => Err(wrong()),
            }
        }
        ParameterType::Unspecified => {
            Ok(serde_json::from_str(trimmed).unwrap_or_else(|_| Value::String(text.to_string())))
        }
    }
}

/// The text a parameter placeholder becomes: strings raw, numbers in their shortest form
/// (integral values without `.0`), booleans `true`/`false`, lists and structs as JSON.
pub fn to_placeholder_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Number(n) => number_text(n),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

fn number_text(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn integer(n: &Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

fn type_word(ty: ParameterType) -> &'static str {
    ty.as_str()
}

fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a struct",
    };
    let mut shown = value.to_string();
    if shown.len() > 40 {
        shown.truncate(37);
        shown.push_str("...");
    }
    format!("{kind} ({shown})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParameterType::*;
    use serde_json::json;

    fn check_coerce(ty: ParameterType, value: Value, expected: &str) {
        let got = match coerce(ty, &value) {
            Ok(v) => v.to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "{ty:?} {value}");
    }

    #[test]
    fn coercion() {
        check_coerce(NumberInteger, json!(5), "5");
        check_coerce(NumberInteger, json!(5.0), "5");
        check_coerce(
            NumberInteger,
            json!(5.5),
            "error: expected NUMBER_INTEGER, got a number (5.5)",
        );
        check_coerce(NumberInteger, json!("7"), "7");
        check_coerce(
            NumberInteger,
            json!("x"),
            r#"error: expected NUMBER_INTEGER, got a string ("x")"#,
        );
        check_coerce(NumberDouble, json!(2), "2");
        check_coerce(NumberDouble, json!(2.5), "2.5");
        check_coerce(
            List,
            json!([1.0, {"a": [2.0, 0.5]}]),
            r#"[1,{"a":[2,0.5]}]"#,
        );
        check_coerce(NumberDouble, json!("0.25"), "0.25");
        check_coerce(String, json!("a"), r#""a""#);
        check_coerce(String, json!(3), "error: expected STRING, got a number (3)");
        check_coerce(Boolean, json!("True"), "true");
        check_coerce(
            Boolean,
            json!(1),
            "error: expected BOOLEAN, got a number (1)",
        );
        check_coerce(List, json!([1, "a"]), r#"[1,"a"]"#);
        check_coerce(List, json!("[1]"), "[1]");
        check_coerce(Struct, json!({"A": 1}), r#"{"A":1}"#);
        check_coerce(
            Struct,
            json!([1]),
            "error: expected STRUCT, got a list ([1])",
        );
    }

    #[test]
    fn placeholder_text() {
        for (value, text) in [
            (json!("raw 'text'"), "raw 'text'"),
            (json!(3), "3"),
            (json!(3.0), "3"),
            (json!(0.1), "0.1"),
            (json!(-2.5), "-2.5"),
            (json!(true), "true"),
            (json!([1, "a"]), r#"[1,"a"]"#),
            (json!({"k": {"n": null}}), r#"{"k":{"n":null}}"#),
        ] {
            assert_eq!(to_placeholder_text(&value), text);
        }
    }

    #[test]
    fn output_file_parsing() {
        assert_eq!(parse_text(String, " x \n").unwrap(), json!(" x \n"));
        assert_eq!(parse_text(Boolean, "FALSE\n").unwrap(), json!(false));
        assert_eq!(parse_text(NumberInteger, "42\n").unwrap(), json!(42));
        assert_eq!(parse_text(NumberDouble, "1e3").unwrap(), json!(1000));
        assert_eq!(
            parse_text(Struct, r#"{"a": [1]}"#).unwrap(),
            json!({"a": [1]})
        );
        assert!(parse_text(List, "{}").is_err());
        assert!(parse_text(NumberInteger, "4.5").is_err());
    }
}
