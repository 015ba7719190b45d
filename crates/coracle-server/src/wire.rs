//! Small pieces of the API's JSON shared by every collection: how times are written, and how
//! request bodies are read.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// A time as the API writes it: RFC 3339 in UTC with `Z`, fractional seconds only when set.
pub fn api_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The first of `names` present and not null (snake_case and camelCase spellings of a field).
pub fn field<'a>(object: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|name| object.get(*name).filter(|value| !value.is_null()))
}

/// What kind of JSON value this is, for messages ("expected a string, found a number").
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
