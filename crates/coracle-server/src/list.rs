//! KFP's list query parameters (`page_size`, `page_token`, `sort_by`, `filter`) parsed into a
//! `coracle_store::listing::ListRequest`, and small request helpers every collection shares:
//! [`ApiQuery`] (query parameters whose errors are KFP error bodies) and [`split_action`] (the
//! `{id}:archive` style of custom methods).
//!
//! - `page_size`: missing or 0 ⇒ 20; more than 200 ⇒ 200; negative or not a number ⇒ 400.
//! - `page_token`: the `next_page_token` of the previous page, passed through.
//! - `sort_by`: `"field"`, `"field asc"` or `"field desc"`; runs also take `"metric:<name>"`
//!   (a run metric, runs without it last).
//! - `filter`: JSON `{"predicates": [{"operation", "key", <one value field>}]}`; `operation` by
//!   name (`EQUALS`) or number (1); value fields `string_value`, `int_value`, `long_value`,
//!   `timestamp_value`, `bool_value`, `string_values`, `int_values`, `long_values`, snake_case
//!   or camelCase, int64 values as numbers or strings.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use coracle_store::listing::{
    DEFAULT_PAGE_SIZE, FilterValue, ListRequest, MAX_PAGE_SIZE, Op, Predicate, Sort,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ApiError;

/// The list parameters of a request, as they come.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ListParams {
    pub page_size: Option<String>,
    pub page_token: Option<String>,
    pub sort_by: Option<String>,
    pub filter: Option<String>,
}

impl ListParams {
    /// The store request, or a 400 that says which parameter is wrong and how.
    pub fn to_request(&self) -> Result<ListRequest, ApiError> {
        Ok(ListRequest {
            page_size: parse_page_size(self.page_size.as_deref())?,
            page_token: self
                .page_token
                .clone()
                .filter(|token| !token.trim().is_empty()),
            sort: match self.sort_by.as_deref() {
                Some(sort_by) => parse_sort_by(sort_by)?,
                None => None,
            },
            filter: match self.filter.as_deref() {
                Some(filter) => parse_filter(filter)?,
                None => Vec::new(),
            },
        })
    }
}

/// `page_size`: missing or 0 ⇒ the default (20); above the maximum (200) ⇒ the maximum.
pub fn parse_page_size(text: Option<&str>) -> Result<u32, ApiError> {
    let Some(text) = text.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(DEFAULT_PAGE_SIZE);
    };
    let size: i64 = text
        .parse()
        .map_err(|_| ApiError::invalid(format!("invalid page_size {text:?}: not an integer")))?;
    if size < 0 {
        return Err(ApiError::invalid(format!(
            "invalid page_size {size}: it must not be negative"
        )));
    }
    Ok(match size {
        0 => DEFAULT_PAGE_SIZE,
        size => size.min(i64::from(MAX_PAGE_SIZE)) as u32,
    })
}

/// `"field"`, `"field asc"` or `"field desc"` (empty: the default order). A run metric,
/// `"metric:<name>"`, may have spaces in its name: all but a last word `asc` or `desc` is the
/// key.
pub fn parse_sort_by(text: &str) -> Result<Option<Sort>, ApiError> {
    let trimmed = text.trim();
    if trimmed.starts_with("metric:") {
        let (key, descending) = match trimmed.rsplit_once(char::is_whitespace) {
            Some((key, direction)) if direction.eq_ignore_ascii_case("desc") => (key, true),
            Some((key, direction)) if direction.eq_ignore_ascii_case("asc") => (key, false),
            _ => (trimmed, false),
        };
        return Ok(Some(Sort {
            key: key.trim_end().to_owned(),
            descending,
        }));
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let descending = match words.as_slice() {
        [] => return Ok(None),
        [_] => false,
        [_, direction] if direction.eq_ignore_ascii_case("asc") => false,
        [_, direction] if direction.eq_ignore_ascii_case("desc") => true,
        _ => {
            return Err(ApiError::invalid(format!(
                "invalid sort_by {text:?}: expected \"field\", \"field asc\" or \"field desc\""
            )));
        }
    };
    Ok(Some(Sort {
        key: words[0].to_owned(),
        descending,
    }))
}

/// The JSON filter (already URL-decoded) as predicates.
pub fn parse_filter(text: &str) -> Result<Vec<Predicate>, ApiError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let bad = |message: String| ApiError::invalid(format!("invalid filter: {message}"));
    let json: Value =
        serde_json::from_str(text).map_err(|error| bad(format!("not JSON: {error}")))?;
    let Value::Object(object) = json else {
        return Err(bad(
            "expected a JSON object {\"predicates\": [...]}".to_owned()
        ));
    };
    for key in object.keys() {
        if key != "predicates" {
            return Err(bad(format!(
                "unknown field {key:?} (a filter has only \"predicates\")"
            )));
        }
    }
    let predicates = match object.get("predicates") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(predicates)) => predicates,
        Some(_) => return Err(bad("predicates: expected a list".to_owned())),
    };
    predicates
        .iter()
        .enumerate()
        .map(|(index, predicate)| {
            parse_predicate(predicate)
                .map_err(|message| bad(format!("predicates[{index}]{message}")))
        })
        .collect()
}

/// One predicate; an error message starts with the path inside the predicate (`.key: …`).
fn parse_predicate(json: &Value) -> Result<Predicate, String> {
    let Value::Object(object) = json else {
        return Err(": expected an object".to_owned());
    };
    let op = match object.get("operation") {
        Some(Value::String(name)) => Op::from_name(name).ok_or_else(|| {
            format!(
                ".operation: unknown operation {name:?}; expected one of {}",
                operation_names()
            )
        })?,
        Some(Value::Number(number)) => {
            number.as_i64().and_then(Op::from_number).ok_or_else(|| {
                format!(
                    ".operation: unknown operation {number}; expected 1, 2, 3, 5, 6, 7, 8 or 9 \
                     or a name ({})",
                    operation_names()
                )
            })?
        }
        Some(other) => return Err(format!(".operation: expected a name, got {other}")),
        None => return Err(".operation: missing".to_owned()),
    };
    let key = match object.get("key") {
        Some(Value::String(key)) if !key.is_empty() => key.clone(),
        Some(Value::String(_)) | None => return Err(".key: missing".to_owned()),
        Some(other) => return Err(format!(".key: expected a string, got {other}")),
    };
    let mut value = None;
    for (field, json) in object {
        if field == "operation" || field == "key" {
            continue;
        }
        let parsed = parse_value(field, json).map_err(|message| format!(".{field}: {message}"))?;
        if value.is_some() {
            return Err(format!(
                ".{field}: a predicate has exactly one value field, and {key:?} has two"
            ));
        }
        value = Some(parsed);
    }
    let value = value.ok_or_else(|| {
        format!(
            " (key {key:?}): no value; give one of string_value, int_value, long_value, \
             timestamp_value, bool_value, string_values, int_values, long_values"
        )
    })?;
    Ok(Predicate { key, op, value })
}

fn operation_names() -> String {
    Op::ALL
        .iter()
        .map(|op| op.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value field (snake_case or camelCase name).
fn parse_value(field: &str, json: &Value) -> Result<FilterValue, String> {
    match field {
        "string_value" | "stringValue" => match json {
            Value::String(text) => Ok(FilterValue::String(text.clone())),
            other => Err(format!("expected a string, got {other}")),
        },
        "int_value" | "intValue" | "long_value" | "longValue" => int64(json).map(FilterValue::Int),
        "bool_value" | "boolValue" => match json {
            Value::Bool(value) => Ok(FilterValue::Bool(*value)),
            Value::String(text) if text == "true" => Ok(FilterValue::Bool(true)),
            Value::String(text) if text == "false" => Ok(FilterValue::Bool(false)),
            other => Err(format!("expected true or false, got {other}")),
        },
        "timestamp_value" | "timestampValue" => timestamp(json).map(FilterValue::Timestamp),
        "string_values" | "stringValues" => list(json)?
            .iter()
            .enumerate()
            .map(|(index, value)| match value {
                Value::String(text) => Ok(text.clone()),
                other => Err(format!("values[{index}]: expected a string, got {other}")),
            })
            .collect::<Result<_, _>>()
            .map(FilterValue::Strings),
        "int_values" | "intValues" | "long_values" | "longValues" => list(json)?
            .iter()
            .enumerate()
            .map(|(index, value)| {
                int64(value).map_err(|message| format!("values[{index}]: {message}"))
            })
            .collect::<Result<_, _>>()
            .map(FilterValue::Ints),
        _ => Err(
            "unknown field; a predicate has operation, key and one value field \
             (string_value, int_value, long_value, timestamp_value, bool_value, string_values, \
             int_values, long_values)"
                .to_owned(),
        ),
    }
}

/// An int64 as JSON carries it: a number or a decimal string.
fn int64(json: &Value) -> Result<i64, String> {
    match json {
        Value::Number(number) => number
            .as_i64()
            .ok_or_else(|| format!("expected an integer, got {number}")),
        Value::String(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("expected an integer, got {text:?}")),
        other => Err(format!("expected an integer, got {other}")),
    }
}

/// An RFC 3339 timestamp (as protobuf's JSON writes one), or `{"seconds", "nanos"}`.
fn timestamp(json: &Value) -> Result<DateTime<Utc>, String> {
    match json {
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|error| format!("{text:?} is not an RFC 3339 timestamp: {error}")),
        Value::Object(object) => {
            let seconds = object.get("seconds").map(int64).transpose()?.unwrap_or(0);
            let nanos = object.get("nanos").map(int64).transpose()?.unwrap_or(0);
            u32::try_from(nanos)
                .ok()
                .and_then(|nanos| DateTime::from_timestamp(seconds, nanos))
                .ok_or_else(|| format!("{json} is out of range"))
        }
        other => Err(format!("expected an RFC 3339 timestamp, got {other}")),
    }
}

/// `{"values": [...]}` (a bare list is accepted too).
fn list(json: &Value) -> Result<&Vec<Value>, String> {
    match json {
        Value::Array(values) => Ok(values),
        Value::Object(object) => match object.get("values") {
            Some(Value::Array(values)) => Ok(values),
            None | Some(Value::Null) => {
                static EMPTY: Vec<Value> = Vec::new();
                Ok(&EMPTY)
            }
            Some(other) => Err(format!("values: expected a list, got {other}")),
        },
        other => Err(format!("expected {{\"values\": [...]}}, got {other}")),
    }
}

/// Splits a path segment of a custom method, `"{id}:{action}"` (`abc:archive`), into the id
/// and the action; a segment with no `:` is a plain id. Axum cannot put a literal after a
/// capture in one segment, so routes capture the whole segment (`/runs/{id_action}`) and
/// split it here.
pub fn split_action(segment: &str) -> (&str, Option<&str>) {
    match segment.rsplit_once(':') {
        Some((id, action)) => (id, Some(action)),
        None => (segment, None),
    }
}

/// The id of an `{id}` segment on a route that takes no `:action`. A segment with an action is
/// no route: 404 naming it after `route` (the method and path, e.g. `GET /runs/{id}`).
pub fn plain_id<'a>(segment: &'a str, route: &str) -> Result<&'a str, ApiError> {
    match split_action(segment) {
        (id, None) => Ok(id),
        (_, Some(action)) => Err(ApiError::not_found(format!(
            "no API route {route}:{action}"
        ))),
    }
}

/// Query parameters whose parse errors are KFP error bodies (400) rather than axum's plain
/// text.
#[derive(Clone, Debug, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| {
                ApiError::invalid(format!(
                    "invalid query parameters: {}",
                    rejection.body_text()
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        assert_eq!(parse_page_size(None).unwrap(), 20);
        assert_eq!(parse_page_size(Some("0")).unwrap(), 20);
        assert_eq!(parse_page_size(Some("7")).unwrap(), 7);
        assert_eq!(parse_page_size(Some("1000")).unwrap(), 200);
        assert!(
            parse_page_size(Some("-1"))
                .unwrap_err()
                .message
                .contains("negative")
        );
        assert!(
            parse_page_size(Some("ten"))
                .unwrap_err()
                .message
                .contains("page_size")
        );
    }

    #[test]
    fn sort_by() {
        let sort = |key: &str, descending| {
            Some(Sort {
                key: key.to_owned(),
                descending,
            })
        };
        assert_eq!(parse_sort_by("").unwrap(), None);
        assert_eq!(parse_sort_by("name").unwrap(), sort("name", false));
        assert_eq!(parse_sort_by("name asc").unwrap(), sort("name", false));
        assert_eq!(
            parse_sort_by(" created_at  DESC ").unwrap(),
            sort("created_at", true)
        );
        assert!(
            parse_sort_by("name up")
                .unwrap_err()
                .message
                .contains("invalid sort_by")
        );
        assert!(parse_sort_by("a b c").is_err());
        assert_eq!(
            parse_sort_by("metric:accuracy desc").unwrap(),
            sort("metric:accuracy", true)
        );
        assert_eq!(
            parse_sort_by(" metric:mean squared error  ASC").unwrap(),
            sort("metric:mean squared error", false)
        );
        assert_eq!(
            parse_sort_by("metric:f1").unwrap(),
            sort("metric:f1", false)
        );
    }

    #[test]
    fn filters() {
        let filter = parse_filter(
            r#"{"predicates": [
                {"operation": "EQUALS", "key": "display_name", "string_value": "x"},
                {"operation": 2, "key": "a", "stringValue": "y"},
                {"operation": "GREATER_THAN", "key": "b", "int_value": 3},
                {"operation": "LESS_THAN", "key": "c", "long_value": "-4"},
                {"operation": "IN", "key": "d", "string_values": {"values": ["p", "q"]}},
                {"operation": "IN", "key": "e", "longValues": {"values": ["5", 6]}},
                {"operation": "GREATER_THAN_EQUALS", "key": "f", "timestamp_value": "2024-05-01T00:00:00Z"},
                {"operation": 9, "key": "g", "string_value": "sub"},
                {"operation": "NOT_EQUALS", "key": "h", "bool_value": true}
            ]}"#,
        )
        .unwrap();
        let expected = [
            (Op::Equals, "display_name", FilterValue::String("x".into())),
            (Op::NotEquals, "a", FilterValue::String("y".into())),
            (Op::GreaterThan, "b", FilterValue::Int(3)),
            (Op::LessThan, "c", FilterValue::Int(-4)),
            (
                Op::In,
                "d",
                FilterValue::Strings(vec!["p".into(), "q".into()]),
            ),
            (Op::In, "e", FilterValue::Ints(vec![5, 6])),
            (
                Op::GreaterThanEquals,
                "f",
                FilterValue::Timestamp("2024-05-01T00:00:00Z".parse().unwrap()),
            ),
            (Op::IsSubstring, "g", FilterValue::String("sub".into())),
            (Op::NotEquals, "h", FilterValue::Bool(true)),
        ]
        .map(|(op, key, value)| Predicate {
            key: key.to_owned(),
            op,
            value,
        });
        assert_eq!(filter, expected);
        assert_eq!(parse_filter("").unwrap(), vec![]);
        assert_eq!(parse_filter("{}").unwrap(), vec![]);
    }

    #[test]
    fn bad_filters_say_where() {
        let check = |text: &str, expected: &str| {
            let message = parse_filter(text).unwrap_err().message;
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        };
        check("{", "invalid filter: not JSON");
        check("[]", "expected a JSON object");
        check(r#"{"predicate": []}"#, "unknown field \"predicate\"");
        check(
            r#"{"predicates": [{"operation": "EQUAL", "key": "a", "string_value": "x"}]}"#,
            "predicates[0].operation: unknown operation \"EQUAL\"",
        );
        check(
            r#"{"predicates": [{"operation": 4, "key": "a", "string_value": "x"}]}"#,
            "predicates[0].operation: unknown operation 4",
        );
        check(
            r#"{"predicates": [{"key": "a", "string_value": "x"}]}"#,
            "predicates[0].operation: missing",
        );
        check(
            r#"{"predicates": [{"operation": 1, "string_value": "x"}]}"#,
            "predicates[0].key: missing",
        );
        check(
            r#"{"predicates": [{"operation": 1, "key": "a"}]}"#,
            "predicates[0] (key \"a\"): no value",
        );
        check(
            r#"{"predicates": [{"operation": 1, "key": "a", "int_value": "x"}]}"#,
            "predicates[0].int_value: expected an integer, got \"x\"",
        );
        check(
            r#"{"predicates": [{"operation": 1, "key": "a", "int_value": 1, "string_value": "x"}]}"#,
            "exactly one value field",
        );
        check(
            r#"{"predicates": [{"operation": 1, "key": "a", "colour": 1}]}"#,
            "predicates[0].colour: unknown field",
        );
        check(
            r#"{"predicates": [{"operation": 8, "key": "a", "int_values": {"values": [1, "z"]}}]}"#,
            "predicates[0].int_values: values[1]: expected an integer",
        );
    }

    #[test]
    fn actions() {
        assert_eq!(split_action("abc:archive"), ("abc", Some("archive")));
        assert_eq!(split_action("abc"), ("abc", None));
        assert_eq!(split_action("abc:"), ("abc", Some("")));
        assert_eq!(plain_id("abc", "GET /runs/{id}"), Ok("abc"));
        let error = plain_id("abc:archive", "DELETE /apis/v1beta1/runs/{id}").unwrap_err();
        assert_eq!(error.status, axum::http::StatusCode::NOT_FOUND);
        assert_eq!(
            error.message,
            "no API route DELETE /apis/v1beta1/runs/{id}:archive"
        );
    }
}
