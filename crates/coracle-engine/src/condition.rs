//! KFP's two expression forms, both CEL: a task's trigger condition
//! (`triggerPolicy.condition`) and an input's `parameterExpressionSelector`.
//!
//! The KFP backend evaluates both with cel-go over protobuf `Value`s, in which every number is
//! a double. We evaluate them with the `cel` crate over the same shapes:
//!
//! * a condition sees `inputs.parameter_values[name]` for each resolved input parameter of the
//!   task (the compiler writes `int(inputs.parameter_values['pipelinechannel--n']) > 3`,
//!   `inputs.parameter_values['pipelinechannel--w'] == 'heads'`, `!( … ) && …` for Elif/Else);
//! * a selector sees the value as `string_value` (its text: a string raw, anything else as
//!   JSON, as KFP's `PbValueToText`) plus the one typed field that is set (`number_value`,
//!   `bool_value`, `list_value`, `struct_value`, `null_value`), and may call `parseJson`.
//!
//! Every JSON number goes in as a CEL double, as on KFP: `int(x)` truncates it to an int,
//! `double(x)` keeps it, and `x == 1` holds for 1.0 because CEL compares numbers across types.
//! Numbers that come out (a selected value) are normalised as the engine holds them: integral
//! values as JSON integers, others as floats.
//!
//! Pure functions: no I/O, no clock, no panics (every failure is an `Err` naming the
//! expression).

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock};

use cel::objects::{Key, Map};
use cel::{Context, Env, ExecutionError, Program, Value as Cel};
use serde_json::Value;

/// The standard CEL environment, built once (it is immutable and shared by every call).
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// Evaluates a KFP trigger condition (CEL) against a task's resolved input parameters.
///
/// `inputs` maps input parameter names (e.g. `pipelinechannel--flip-coin-Output`) to their
/// JSON values as the engine holds them. An empty condition is true, as on KFP. Errors (a
/// syntax error, an input the task does not have, a failed operation, a result that is not a
/// bool) name the condition.
pub fn evaluate_condition(
    condition: &str,
    inputs: &BTreeMap<String, Value>,
) -> Result<bool, String> {
    if condition.trim().is_empty() {
        return Ok(true);
    }
    let fail = |what: String| format!("condition {condition:?}: {what}");
    let program = compile(condition).map_err(fail)?;
    let parameter_values: HashMap<Key, Cel> = inputs
        .iter()
        .map(|(name, value)| (Key::from(name.as_str()), to_cel(value)))
        .collect();
    let mut fields = HashMap::new();
    fields.insert(
        Key::from("parameter_values"),
        Cel::Map(Map::from(parameter_values)),
    );
    let variables = [("inputs", Cel::Map(Map::from(fields)))];
    match execute(&program, variables) {
        Ok(Cel::Bool(result)) => Ok(result),
        Ok(other) => Err(fail(format!(
            "evaluated to {}, not a bool",
            describe(&other)
        ))),
        Err(ExecutionError::NoSuchKey(key)) if names_input(condition, &key, inputs) => {
            let known: Vec<&str> = inputs.keys().map(String::as_str).collect();
            let known = if known.is_empty() {
                "it has none".to_string()
            } else {
                format!("it has {}", known.join(", "))
            };
            Err(fail(format!(
                "the task has no input named {key:?} ({known})"
            )))
        }
        Err(error) => Err(fail(format!("evaluation failed: {}", error_text(&error)))),
    }
}

/// Applies a `parameterExpressionSelector` such as `parseJson(string_value)["A_a"]` to a
/// value and returns what it selects.
///
/// As on KFP, the expression sees the value's text as `string_value` (a string as it is,
/// anything else as JSON) and the value itself under its protobuf field name
/// (`number_value`, `bool_value`, `list_value`, `struct_value`, `null_value`).
pub fn select(expression: &str, value: &Value) -> Result<Value, String> {
    let fail = |what: String| format!("selector {expression:?}: {what}");
    let program = compile(expression).map_err(fail)?;
    let text = coracle_spec::value::to_placeholder_text(value);
    let mut variables = vec![("string_value", Cel::from(text))];
    let typed = match value {
        Value::String(_) => None,
        Value::Null => Some("null_value"),
        Value::Bool(_) => Some("bool_value"),
        Value::Number(_) => Some("number_value"),
        Value::Array(_) => Some("list_value"),
        Value::Object(_) => Some("struct_value"),
    };
    if let Some(field) = typed {
        variables.push((field, to_cel(value)));
    }
    match execute(&program, variables) {
        Ok(result) => from_cel(&result)
            .map(coracle_spec::value::canonical)
            .map_err(fail),
        Err(ExecutionError::NoSuchKey(key)) => Err(fail(format!(
            "no key {key:?} in {}",
            abbreviate(&coracle_spec::value::to_placeholder_text(value))
        ))),
        Err(error) => Err(fail(format!("evaluation failed: {}", error_text(&error)))),
    }
}

/// Whether a missing `key` is an input the condition asks for (`parameter_values['key']`)
/// that the task does not have, rather than a key missing inside a struct.
fn names_input(condition: &str, key: &str, inputs: &BTreeMap<String, Value>) -> bool {
    !inputs.contains_key(key)
        && [
            format!("parameter_values['{key}']"),
            format!("parameter_values[\"{key}\"]"),
        ]
        .iter()
        .any(|reference| condition.contains(reference.as_str()))
}

/// Parses `source`, turning the parser's multi-line report into one line.
fn compile(source: &str) -> Result<Program, String> {
    let parsed = catch_unwind(|| ENV.compile(source))
        .map_err(|_| "the CEL parser failed on it".to_string())?;
    parsed.map_err(|errors| {
        let parts: Vec<String> = errors
            .errors
            .iter()
            .map(|e| {
                let message = e.msg.strip_prefix("Syntax error: ").unwrap_or(&e.msg);
                format!("{}:{}: {message}", e.pos.0, e.pos.1)
            })
            .collect();
        if parts.is_empty() {
            "syntax error".to_string()
        } else {
            format!("syntax error at {}", parts.join("; "))
        }
    })
}

/// Runs `program` with the given variables and KFP's `parseJson` function.
fn execute(
    program: &Program,
    variables: impl IntoIterator<Item = (&'static str, Cel)>,
) -> Result<Cel, ExecutionError> {
    let mut context = Context::with_env(Arc::clone(&ENV));
    for (name, value) in variables {
        context.add_variable_from_value(name, value);
    }
    context
        .add_function("parseJson", parse_json)
        .map_err(|e| ExecutionError::function_error("parseJson", e))?;
    catch_unwind(AssertUnwindSafe(|| program.execute(&context))).unwrap_or_else(|_| {
        Err(ExecutionError::function_error(
            "evaluate",
            "the CEL interpreter failed",
        ))
    })
}

/// `parseJson(text)`: the JSON value `text` holds, numbers as doubles (KFP's `parseJson`
/// unmarshals into Go values, where every JSON number is a float64).
fn parse_json(text: Arc<String>) -> Result<Cel, ExecutionError> {
    serde_json::from_str::<Value>(&text)
        .map(|value| to_cel(&value))
        .map_err(|e| ExecutionError::function_error("parseJson", format!("not JSON: {e}")))
}

/// A JSON value as CEL sees a protobuf `Value`: every number a double.
fn to_cel(value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Cel::from(s.as_str()),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(fields) => Cel::Map(Map::from(
            fields
                .iter()
                .map(|(k, v)| (Key::from(k.as_str()), to_cel(v)))
                .collect::<HashMap<Key, Cel>>(),
        )),
    }
}

/// A CEL result as a parameter value; only what a protobuf `Value` can hold converts.
fn from_cel(value: &Cel) -> Result<Value, String> {
    Ok(match value {
        Cel::Null => Value::Null,
        Cel::Bool(b) => Value::Bool(*b),
        Cel::Int(i) => Value::from(*i),
        Cel::UInt(u) => Value::from(*u),
        Cel::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| format!("the result {f} is not a JSON number"))?,
        Cel::String(s) => Value::String(s.to_string()),
        Cel::List(items) => Value::Array(items.iter().map(from_cel).collect::<Result<_, _>>()?),
        Cel::Map(map) => {
            // Sorted, so the result does not depend on the hash map's order.
            let mut fields: Vec<(String, Value)> = Vec::with_capacity(map.map.len());
            for (key, item) in map.map.iter() {
                let name = match key {
                    Key::String(s) => s.to_string(),
                    other => return Err(format!("a map key must be a string, got {other:?}")),
                };
                fields.push((name, from_cel(item)?));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(fields.into_iter().collect())
        }
        other => {
            return Err(format!(
                "the result is {}, which is not a parameter value",
                describe(other)
            ));
        }
    })
}

/// A CEL value for a message: its type and, for small values, the value itself.
fn describe(value: &Cel) -> String {
    let kind = match value {
        Cel::Float(_) => "double".to_string(),
        Cel::Null => "null".to_string(),
        other => other.type_of().to_string(),
    };
    match from_cel(value) {
        Ok(json) => format!("{kind} {}", abbreviate(&json.to_string())),
        Err(_) => kind,
    }
}

fn abbreviate(text: &str) -> String {
    const LIMIT: usize = 80;
    if text.chars().count() <= LIMIT {
        text.to_string()
    } else {
        let head: String = text.chars().take(LIMIT).collect();
        format!("{head}…")
    }
}

/// The interpreter's error on one line.
fn error_text(error: &ExecutionError) -> String {
    error.to_string().replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `inputs.parameter_values['pipelinechannel--NAME']`, as the compiler writes it.
    fn p(name: &str) -> String {
        format!("inputs.parameter_values['pipelinechannel--{name}']")
    }

    fn inputs(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(name, value)| (format!("pipelinechannel--{name}"), value.clone()))
            .collect()
    }

    /// Evaluates `condition` with `pairs` (names without the `pipelinechannel--` prefix) and
    /// checks the result.
    fn check(condition: &str, pairs: &[(&str, Value)], expected: bool) {
        match evaluate_condition(condition, &inputs(pairs)) {
            Ok(result) => assert_eq!(
                result, expected,
                "condition {condition} with {pairs:?} gave {result}"
            ),
            Err(e) => panic!("condition {condition} with {pairs:?} failed: {e}"),
        }
    }

    /// Evaluates `condition` and expects an error whose message contains every one of `parts`.
    fn check_error(condition: &str, pairs: &[(&str, Value)], parts: &[&str]) {
        match evaluate_condition(condition, &inputs(pairs)) {
            Ok(result) => {
                panic!("condition {condition} with {pairs:?} gave {result}, not an error")
            }
            Err(message) => {
                for part in parts {
                    assert!(
                        message.contains(part),
                        "error for {condition} lacks {part:?}: {message}"
                    );
                }
            }
        }
    }

    #[test]
    fn condition_string_comparisons() {
        let flip = p("flip-coin-Output");
        let cases = [
            (format!("{flip} == 'heads'"), json!("heads"), true),
            (format!("{flip} == 'heads'"), json!("tails"), false),
            (format!("{flip} == 'tails'"), json!("tails"), true),
            (format!("{flip} == 'tails'"), json!("Tails"), false),
            (format!("{flip} != 'no-such-result'"), json!("heads"), true),
            (
                format!("{flip} != 'no-such-result'"),
                json!("no-such-result"),
                false,
            ),
            (format!("!({flip} == 'heads')"), json!("tails"), true),
            (format!("!({flip} == 'heads')"), json!("heads"), false),
            // A string parameter compared with a number the compiler quoted.
            (format!("{flip} == '1'"), json!("1"), true),
            (format!("{flip} == '1'"), json!("1.0"), false),
            (format!("{flip} < 'm'"), json!("heads"), true),
            (format!("{flip} >= 'm'"), json!("heads"), false),
        ];
        for (condition, value, expected) in cases {
            check(&condition, &[("flip-coin-Output", value)], expected);
        }
    }

    #[test]
    fn condition_elif_else_chains() {
        let w = p("pick-word-Output");
        let elif = format!("!({w} == 'heads') && {w} == 'tails'");
        let other = format!("!({w} == 'heads') && !({w} == 'tails')");
        for (word, first, second, third) in [
            ("heads", true, false, false),
            ("tails", false, true, false),
            ("edge", false, false, true),
        ] {
            let pairs = [("pick-word-Output", json!(word))];
            check(&format!("{w} == 'heads'"), &pairs, first);
            check(&elif, &pairs, second);
            check(&other, &pairs, third);
        }

        let n = format!("int({})", p("n"));
        let elif = format!("!({n} > 3) && {n} > 0");
        let other = format!("!({n} > 3) && !({n} > 0)");
        for (value, first, second, third) in [
            (json!(5), true, false, false),
            (json!(2), false, true, false),
            (json!(0), false, false, true),
            (json!(-4), false, false, true),
            (json!(3.0), false, true, false),
            (json!("7"), true, false, false),
        ] {
            let pairs = [("n", value)];
            check(&format!("{n} > 3"), &pairs, first);
            check(&elif, &pairs, second);
            check(&other, &pairs, third);
        }
        // A chain of three conditions, and `||`, which the compiler does not write but CEL has.
        let three = format!("!({n} > 5) && !({n} > 2) && {n} > 0");
        check(&three, &[("n", json!(1))], true);
        check(&three, &[("n", json!(3))], false);
        check(&format!("{n} > 5 || {n} < 0"), &[("n", json!(-1))], true);
    }

    #[test]
    fn condition_int_casts() {
        let r = p("random-num-Output");
        let cases = [
            (format!("int({r}) > 5"), json!(6), true),
            (format!("int({r}) > 5"), json!(5), false),
            (format!("int({r}) <= 5"), json!(5), true),
            (format!("int({r}) <= 5"), json!(9), false),
            (format!("int({r}) <= 15"), json!(15), true),
            (format!("int({r}) > 15"), json!(16), true),
            (format!("int({r}) > 15"), json!(15), false),
            // An integer that came in as a double, as every number does on KFP's wire.
            (format!("int({r}) == 1"), json!(1), true),
            (format!("int({r}) == 1"), json!(1.0), true),
            (format!("int({r}) == 1"), json!(2.0), false),
            // A numeric string.
            (format!("int({r}) == 1"), json!("1"), true),
            (format!("int({r}) > 5"), json!("12"), true),
            (format!("int({r}) > 5"), json!("-12"), false),
            // int() of a fractional double truncates toward zero, as cel-go's does.
            (format!("int({r}) == 2"), json!(2.9), true),
            (format!("int({r}) == -2"), json!(-2.9), true),
            (format!("int({r}) != 1"), json!(2), true),
            (format!("int({r}) >= 0"), json!(0), true),
            (format!("int({r}) < 0"), json!(0), false),
        ];
        for (condition, value, expected) in cases {
            check(&condition, &[("random-num-Output", value)], expected);
        }
    }

    #[test]
    fn condition_uncast_numbers() {
        // A parameter compared with a number literal without a cast: the value is a double,
        // the literal an int or a double, and CEL compares numbers across types.
        let x = p("x");
        let cases = [
            (format!("{x} == 1"), json!(1), true),
            (format!("{x} == 1"), json!(1.0), true),
            (format!("{x} == 1"), json!(2), false),
            (format!("{x} != 1"), json!(1), false),
            (format!("{x} == 1.0"), json!(1), true),
            (format!("{x} > 0.5"), json!(0.75), true),
            (format!("{x} > 0.5"), json!(0.25), false),
            (format!("{x} > 0.5"), json!(1), true),
            (format!("{x} >= 2"), json!(2), true),
            (format!("{x} < 2"), json!(1.5), true),
            // The compiler's form for a double parameter and an int literal.
            (format!("{x} > double(1)"), json!(1.5), true),
            (format!("{x} == double(1)"), json!(1), true),
            // A number is never equal to a string: false, not an error, as in cel-go.
            (format!("{x} == 'heads'"), json!(1), false),
            (format!("{x} != 'heads'"), json!(1), true),
        ];
        for (condition, value, expected) in cases {
            check(&condition, &[("x", value)], expected);
        }
    }

    #[test]
    fn condition_double_casts() {
        let x = p("x");
        let cases = [
            (format!("double({x}) > 0.5"), json!(0.75), true),
            (format!("double({x}) > 0.5"), json!(0.5), false),
            (format!("double({x}) > 0.5"), json!(1), true),
            (format!("double({x}) > 0.5"), json!(0), false),
            (format!("double({x}) > 0.5"), json!("0.75"), true),
            (format!("double({x}) == 3.0"), json!(3), true),
            (format!("double({x}) == 3"), json!(3), true),
            (format!("double({x}) <= double(2)"), json!(2), true),
            (format!("double({x}) < -0.5"), json!(-1e10), true),
        ];
        for (condition, value, expected) in cases {
            check(&condition, &[("x", value)], expected);
        }
    }

    #[test]
    fn condition_two_inputs() {
        let a = p("number-Output");
        let b = p("number-2-Output");
        let greater = format!("int({a}) > int({b})");
        let not_greater = format!("!(int({a}) > int({b}))");
        for (x, y, expected) in [
            (json!(5), json!(2), true),
            (json!(2), json!(5), false),
            (json!(3), json!(3), false),
            (json!(3.0), json!(2), true),
            (json!("10"), json!(9), true),
        ] {
            let pairs = [("number-Output", x), ("number-2-Output", y)];
            check(&greater, &pairs, expected);
            check(&not_greater, &pairs, !expected);
        }

        let c = p("flip-coin-op-2-Output");
        let d = p("flip-coin-op-3-Output");
        let same = format!("{c} == {d}");
        check(
            &same,
            &[
                ("flip-coin-op-2-Output", json!("heads")),
                ("flip-coin-op-3-Output", json!("heads")),
            ],
            true,
        );
        check(
            &same,
            &[
                ("flip-coin-op-2-Output", json!("heads")),
                ("flip-coin-op-3-Output", json!("tails")),
            ],
            false,
        );
        // Two numbers, one of them integral: equal as on KFP, where both are doubles.
        check(
            &format!("{} == {}", p("u"), p("v")),
            &[("u", json!(4)), ("v", json!(4.0))],
            true,
        );
        check(
            &format!("double({}) < double({})", p("u"), p("v")),
            &[("u", json!(0.1)), ("v", json!(4))],
            true,
        );
    }

    #[test]
    fn condition_booleans() {
        let b = p("use_csv");
        let cases = [
            (format!("{b} == true"), json!(true), true),
            (format!("{b} == true"), json!(false), false),
            (format!("!({b} == true)"), json!(false), true),
            (format!("!({b} == true)"), json!(true), false),
            (format!("{b} == false"), json!(false), true),
            (format!("{b} != false"), json!(true), true),
            (b.clone(), json!(true), true),
            (format!("!{b}"), json!(true), false),
            // A string that says true is still a string.
            (format!("{b} == true"), json!("true"), false),
        ];
        for (condition, value, expected) in cases {
            check(&condition, &[("use_csv", value)], expected);
        }
    }

    #[test]
    fn condition_literals_and_empty() {
        check("true", &[], true);
        check("false", &[], false);
        check("1 == 1.0", &[], true);
        check("'a' < 'b'", &[], true);
        check("!(1 > 2) && 2.5 >= 2", &[], true);
        check("", &[], true);
        check("  ", &[], true);
        // Lists and structs are reachable too, numbers in them doubles.
        let pairs = [("s", json!({"k": [1, 2, 3]}))];
        check(&format!("{}['k'][1] == 2", p("s")), &pairs, true);
        check(&format!("size({}['k']) == 3", p("s")), &pairs, true);
        check(&format!("has({}.k)", p("s")), &pairs, true);
        // parseJson is available in conditions, as on KFP.
        let pairs = [("j", json!("{\"a\": 7}"))];
        check(&format!("parseJson({})['a'] == 7", p("j")), &pairs, true);
    }

    #[test]
    fn condition_errors() {
        let x = p("x");
        // Syntax errors name the condition.
        let bad = format!("int({x}) >");
        check_error(&bad, &[("x", json!(1))], &["syntax error", &bad]);
        check_error("int(", &[], &["syntax error", "\"int(\""]);
        check_error(")))(((", &[], &["syntax error"]);
        check_error("a ==== b", &[], &["syntax error"]);
        check_error("'unterminated", &[], &["syntax error"]);
        // An input the task does not have.
        check_error(
            &format!("{x} == 'heads'"),
            &[("y", json!("heads"))],
            &[
                "no input named \"pipelinechannel--x\"",
                "pipelinechannel--y",
            ],
        );
        check_error(
            &format!("{x} == 'heads'"),
            &[],
            &["no input named", "it has none"],
        );
        check_error(
            &format!("{x}['k'] == 1"),
            &[("x", json!({"j": 1}))],
            &["evaluation failed", "No such key: k"],
        );
        check_error(
            "inputs.parameter_values[\"pipelinechannel--x\"] == 1",
            &[],
            &["no input named \"pipelinechannel--x\""],
        );
        // Results that are not booleans.
        check_error(
            &format!("int({x})"),
            &[("x", json!(3))],
            &["not a bool", "int 3"],
        );
        check_error(
            &x,
            &[("x", json!("heads"))],
            &["not a bool", "string \"heads\""],
        );
        check_error("1 + 1", &[], &["not a bool"]);
        // Operations CEL refuses.
        check_error(
            &format!("int({x}) > 3"),
            &[("x", json!("abc"))],
            &["evaluation failed"],
        );
        check_error(
            &format!("int({x}) > 3"),
            &[("x", json!("2.5"))],
            &["evaluation failed"],
        );
        check_error(
            &format!("int({x}) > 3"),
            &[("x", json!(1e300))],
            &["evaluation failed"],
        );
        check_error(
            &format!("{x} > 3"),
            &[("x", json!("abc"))],
            &["evaluation failed"],
        );
        check_error(
            &format!("{x} && true"),
            &[("x", json!(1))],
            &["evaluation failed"],
        );
        check_error("undefined_name == 1", &[], &["evaluation failed"]);
        check_error("1 / 0 == 1", &[], &["evaluation failed"]);
        check_error(
            "parseJson('{') == 1",
            &[],
            &["evaluation failed", "parseJson"],
        );
        // Every message names the condition.
        let err = evaluate_condition("1 + 1", &BTreeMap::new()).unwrap_err();
        assert!(err.starts_with("condition \"1 + 1\": "), "{err}");
    }

    #[test]
    fn select_from_strings() {
        let item = json!("{\"A_a\": \"x\", \"B_b\": 2, \"C_c\": 2.5, \"D\": true}");
        let sel = |key: &str| format!("parseJson(string_value)[\"{key}\"]");
        assert_eq!(select(&sel("A_a"), &item), Ok(json!("x")));
        // Numbers come back as the engine holds them: integral ones as JSON integers.
        assert_eq!(select(&sel("B_b"), &item), Ok(json!(2)));
        assert!(select(&sel("B_b"), &item).unwrap().is_i64());
        assert_eq!(select(&sel("C_c"), &item), Ok(json!(2.5)));
        assert_eq!(select(&sel("D"), &item), Ok(json!(true)));
        // The corpus's lower-case keys.
        let item = json!("{\"a\": 1, \"b\": \"two\"}");
        assert_eq!(
            select("parseJson(string_value)[\"a\"]", &item),
            Ok(json!(1))
        );
        assert_eq!(
            select("parseJson(string_value)[\"b\"]", &item),
            Ok(json!("two"))
        );
        // A plain string is its own string_value.
        assert_eq!(select("string_value", &json!("hello")), Ok(json!("hello")));
    }

    #[test]
    fn select_from_typed_values() {
        let item = json!({"A_a": "x", "B_b": [1, 2.5, {"c": null}], "n": 3});
        let sel = |key: &str| format!("parseJson(string_value)[\"{key}\"]");
        // A non-string value is seen through string_value as its JSON text.
        assert_eq!(select(&sel("A_a"), &item), Ok(json!("x")));
        assert_eq!(select(&sel("B_b"), &item), Ok(json!([1, 2.5, {"c": null}])));
        assert_eq!(select(&sel("n"), &item), Ok(json!(3)));
        // And through its protobuf field.
        assert_eq!(select("struct_value[\"A_a\"]", &item), Ok(json!("x")));
        assert_eq!(select("struct_value.n", &item), Ok(json!(3)));
        assert_eq!(select("number_value", &json!(4)), Ok(json!(4)));
        assert_eq!(select("number_value * 2.0", &json!(1.25)), Ok(json!(2.5)));
        assert_eq!(select("string_value", &json!(4)), Ok(json!("4")));
        assert_eq!(select("string_value", &json!(4.0)), Ok(json!("4")));
        assert_eq!(select("bool_value", &json!(false)), Ok(json!(false)));
        assert_eq!(select("list_value[1]", &json!(["a", "b"])), Ok(json!("b")));
        assert_eq!(
            select("parseJson(string_value)[0]", &json!([7, 8])),
            Ok(json!(7))
        );
        assert_eq!(
            select("string_value", &json!(["a", 1])),
            Ok(json!("[\"a\",1]"))
        );
        // A whole struct comes back with its keys in order.
        assert_eq!(
            select(
                "parseJson(string_value)",
                &json!("{\"b\": 1, \"a\": {\"z\": 0, \"y\": 1}}")
            ),
            Ok(json!({"a": {"y": 1, "z": 0}, "b": 1}))
        );
    }

    #[test]
    fn select_nested_keys() {
        let text = json!("{\"outer\": {\"inner\": {\"leaf\": 42}}, \"list\": [{\"k\": \"v\"}]}");
        assert_eq!(
            select(
                "parseJson(string_value)[\"outer\"][\"inner\"][\"leaf\"]",
                &text
            ),
            Ok(json!(42))
        );
        assert_eq!(
            select("parseJson(string_value)[\"outer\"][\"inner\"]", &text),
            Ok(json!({"leaf": 42}))
        );
        assert_eq!(
            select("parseJson(string_value).outer.inner.leaf", &text),
            Ok(json!(42))
        );
        assert_eq!(
            select("parseJson(string_value)[\"list\"][0][\"k\"]", &text),
            Ok(json!("v"))
        );
        let typed = json!({"outer": {"inner": "deep"}});
        assert_eq!(
            select("parseJson(string_value)[\"outer\"][\"inner\"]", &typed),
            Ok(json!("deep"))
        );
    }

    #[test]
    fn select_errors() {
        let item = json!("{\"A_a\": 1}");
        let err = select("parseJson(string_value)[\"B_b\"]", &item).unwrap_err();
        assert!(err.contains("no key \"B_b\""), "{err}");
        assert!(
            err.contains("parseJson(string_value)[\\\"B_b\\\"]"),
            "{err}"
        );
        let err = select(
            "parseJson(string_value)[\"a\"][\"missing\"]",
            &json!({"a": {"b": 1}}),
        )
        .unwrap_err();
        assert!(err.contains("no key \"missing\""), "{err}");
        // Not JSON.
        let err = select("parseJson(string_value)[\"a\"]", &json!("not json")).unwrap_err();
        assert!(
            err.contains("evaluation failed") && err.contains("parseJson"),
            "{err}"
        );
        // Syntax.
        let err = select("parseJson(string_value)[", &item).unwrap_err();
        assert!(
            err.starts_with("selector ") && err.contains("syntax error"),
            "{err}"
        );
        // A field that is not set for this value.
        let err = select("number_value", &json!("text")).unwrap_err();
        assert!(err.contains("evaluation failed"), "{err}");
        // Out of range index.
        let err = select("parseJson(string_value)[5]", &json!([1])).unwrap_err();
        assert!(err.contains("evaluation failed"), "{err}");
    }

    /// Every pipeline file of the KFP corpus and of the team's compiled pipelines: each
    /// `triggerPolicy.condition` parses and, with plausible values for the task's own input
    /// parameters, evaluates to a bool; each `parameterExpressionSelector` selects a key.
    #[test]
    fn corpus_conditions_and_selectors() {
        let roots = [
            std::path::PathBuf::from("/work/shared/kfp-corpus"),
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/pipelines"),
        ];
        let mut files = Vec::new();
        for root in &roots {
            collect_yaml(root, &mut files);
        }
        let (mut conditions, mut selectors) = (0, 0);
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            let Ok(pipeline) = coracle_spec::parse_document(&text) else {
                continue;
            };
            let spec = &pipeline.spec;
            let dags = std::iter::once(&spec.root)
                .chain(spec.components.values())
                .filter_map(|component| component.dag.as_ref());
            for dag in dags {
                for (task_name, task) in &dag.tasks {
                    let names: Vec<&str> =
                        task.inputs.parameters.keys().map(String::as_str).collect();
                    if let Some(condition) = task
                        .trigger_policy
                        .as_ref()
                        .and_then(|t| t.condition.as_deref())
                    {
                        conditions += 1;
                        let context = format!("{} task {task_name}", file.display());
                        check_corpus_condition(condition, &names, &context);
                    }
                    for input in task.inputs.parameters.values() {
                        if let Some(selector) = input.parameter_expression_selector.as_deref() {
                            selectors += 1;
                            check_corpus_selector(selector, &file.display().to_string());
                        }
                    }
                }
            }
        }
        eprintln!(
            "corpus: {} files, {conditions} conditions, {selectors} selectors checked",
            files.len()
        );
    }

    fn collect_yaml(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                collect_yaml(&path, files);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }

    /// The condition parses, names only the task's own inputs, and evaluates to a bool for
    /// at least one assignment of a number, a string or a bool to each input it names.
    fn check_corpus_condition(condition: &str, task_inputs: &[&str], context: &str) {
        if let Err(e) = compile(condition) {
            panic!("{context}: {e}");
        }
        let mut named: Vec<&str> = Vec::new();
        for piece in condition.split("parameter_values['").skip(1) {
            let name = piece.split('\'').next().unwrap_or_default();
            assert!(
                task_inputs.contains(&name),
                "{context}: condition {condition:?} names {name:?}, not an input of the task"
            );
            if !named.contains(&name) {
                named.push(name);
            }
        }
        let candidates = [json!(3), json!("heads"), json!(true)];
        let combinations = candidates.len().pow(named.len() as u32);
        let mut errors = Vec::new();
        for mut index in 0..combinations {
            let mut values = BTreeMap::new();
            for name in task_inputs {
                values.insert(name.to_string(), json!("unused"));
            }
            for name in &named {
                values.insert(
                    name.to_string(),
                    candidates[index % candidates.len()].clone(),
                );
                index /= candidates.len();
            }
            match evaluate_condition(condition, &values) {
                Ok(_) => return,
                Err(e) => errors.push(e),
            }
        }
        panic!("{context}: condition never evaluates: {errors:?}");
    }

    /// The selector picks its key out of an item given as JSON text and as a struct.
    fn check_corpus_selector(selector: &str, context: &str) {
        let key = selector
            .split("[\"")
            .nth(1)
            .and_then(|rest| rest.split("\"]").next())
            .unwrap_or_else(|| panic!("{context}: unexpected selector form {selector:?}"));
        let item = json!({ key: "picked", "other": 1 });
        assert_eq!(
            select(selector, &item),
            Ok(json!("picked")),
            "{context}: {selector}"
        );
        let text = Value::String(item.to_string());
        assert_eq!(
            select(selector, &text),
            Ok(json!("picked")),
            "{context}: {selector}"
        );
    }
}
