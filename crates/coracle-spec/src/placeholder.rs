//! Parsing of the placeholders KFP puts in an executor's command, args and env:
//! `{{$…}}` text placeholders and the whole-argument `Concat` / `IfPresent` JSON forms.
//! Resolution (substituting values) belongs to the engine; this module only says what a
//! string means, so that validation and resolution read it the same way.

use serde_json::Value;

/// One `{{$…}}` placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placeholder {
    /// `{{$}}`: the whole executor input as JSON.
    ExecutorInput,
    InputParameter(String),
    InputArtifact(String, ArtifactField),
    OutputArtifact(String, ArtifactField),
    OutputParameterFile(String),
    /// `{{$.outputs.output_file}}`: the executor output JSON file.
    OutputMetadataFile,
    System(SystemPlaceholder),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactField {
    Path,
    Uri,
    Metadata,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemPlaceholder {
    PipelineJobName,
    PipelineJobResourceName,
    PipelineJobUuid,
    PipelineTaskName,
    PipelineTaskUuid,
    PipelineJobCreateTimeUtc,
    PipelineJobScheduleTimeUtc,
    PipelineRoot,
    WorkspacePath,
}

impl SystemPlaceholder {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "pipeline_job_name" => Self::PipelineJobName,
            "pipeline_job_resource_name" => Self::PipelineJobResourceName,
            "pipeline_job_uuid" => Self::PipelineJobUuid,
            "pipeline_task_name" => Self::PipelineTaskName,
            "pipeline_task_uuid" => Self::PipelineTaskUuid,
            "pipeline_job_create_time_utc" => Self::PipelineJobCreateTimeUtc,
            "pipeline_job_schedule_time_utc" => Self::PipelineJobScheduleTimeUtc,
            "pipeline_root" => Self::PipelineRoot,
            "workspace_path" => Self::WorkspacePath,
            _ => return None,
        })
    }
}

/// A piece of a text template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Placeholder(Placeholder),
}

/// A string with its placeholders found.
pub type TextTemplate = Vec<Segment>;

/// One element of a command or args list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgTemplate {
    Text(TextTemplate),
    /// `{"Concat": [...]}`: the parts joined into one argument.
    Concat(Vec<ArgTemplate>),
    /// `{"IfPresent": {...}}`: `then` when the input is given, else `otherwise` (or nothing).
    IfPresent {
        input_name: String,
        then: Vec<ArgTemplate>,
        otherwise: Option<Vec<ArgTemplate>>,
    },
}

/// Parses every `{{$…}}` in `text`. Text that merely looks like a template (`{{x}}`) stays
/// literal; a `{{$` that does not name a known placeholder is an error.
pub fn parse_text(text: &str) -> Result<TextTemplate, String> {
    let mut segments = Vec::new();
    let mut rest = text;
    let mut literal = String::new();
    while let Some(start) = rest.find("{{$") {
        literal.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("unterminated placeholder {:?}", &rest[start..]));
        };
        let body = &after[..end];
        let placeholder = parse_placeholder(body)
            .ok_or_else(|| format!("unknown placeholder \"{{{{{body}}}}}\""))?;
        if !literal.is_empty() {
            segments.push(Segment::Literal(std::mem::take(&mut literal)));
        }
        segments.push(Segment::Placeholder(placeholder));
        rest = &after[end + 2..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    Ok(segments)
}

/// Parses one command/args element, recognising the JSON `Concat` and `IfPresent` forms.
pub fn parse_arg(arg: &str) -> Result<ArgTemplate, String> {
    let trimmed = arg.trim_start();
    if (trimmed.starts_with("{\"Concat\"") || trimmed.starts_with("{\"IfPresent\""))
        && let Ok(value) = serde_json::from_str::<Value>(arg)
    {
        return parse_structured(&value);
    }
    parse_text(arg).map(ArgTemplate::Text)
}

fn parse_structured(value: &Value) -> Result<ArgTemplate, String> {
    match value {
        Value::String(s) => parse_arg(s),
        Value::Object(map) if map.len() == 1 && map.contains_key("Concat") => {
            let Value::Array(items) = &map["Concat"] else {
                return Err("\"Concat\" must hold a list".into());
            };
            Ok(ArgTemplate::Concat(
                items
                    .iter()
                    .map(parse_structured)
                    .collect::<Result<_, _>>()?,
            ))
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("IfPresent") => {
            let Value::Object(body) = &map["IfPresent"] else {
                return Err("\"IfPresent\" must hold an object".into());
            };
            let input_name = body
                .get("InputName")
                .and_then(Value::as_str)
                .ok_or("\"IfPresent\" needs a string \"InputName\"")?
                .to_string();
            if let Some(key) = body
                .keys()
                .find(|k| !matches!(k.as_str(), "InputName" | "Then" | "Else"))
            {
                return Err(format!("\"IfPresent\" has unknown key \"{key}\""));
            }
            let branch = |key: &str| -> Result<Option<Vec<ArgTemplate>>, String> {
                match body.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(parse_structured)
                        .collect::<Result<_, _>>()
                        .map(Some),
                    Some(other) => parse_structured(other).map(|a| Some(vec![a])),
                }
            };
            Ok(ArgTemplate::IfPresent {
                input_name,
                then: branch("Then")?.unwrap_or_default(),
                otherwise: branch("Else")?,
            })
        }
        Value::Object(_) => {
            Err("a placeholder object must be {\"Concat\": …} or {\"IfPresent\": …}".into())
        }
        other => Ok(ArgTemplate::Text(vec![Segment::Literal(other.to_string())])),
    }
}

/// `body` is what stands between `{{` and `}}`, starting with `$`.
fn parse_placeholder(body: &str) -> Option<Placeholder> {
    let body = body.trim();
    if body == "$" {
        return Some(Placeholder::ExecutorInput);
    }
    let path = body.strip_prefix("$.")?;
    if let Some(name) = path.strip_prefix("inputs.parameters") {
        let (name, rest) = bracketed_name(name)?;
        return rest.is_empty().then_some(Placeholder::InputParameter(name));
    }
    if let Some(name) = path.strip_prefix("inputs.artifacts") {
        let (name, rest) = bracketed_name(name)?;
        return Some(Placeholder::InputArtifact(name, artifact_field(rest)?));
    }
    if let Some(name) = path.strip_prefix("outputs.artifacts") {
        let (name, rest) = bracketed_name(name)?;
        return Some(Placeholder::OutputArtifact(name, artifact_field(rest)?));
    }
    if let Some(name) = path.strip_prefix("outputs.parameters") {
        let (name, rest) = bracketed_name(name)?;
        return (rest == ".output_file").then_some(Placeholder::OutputParameterFile(name));
    }
    if path == "outputs.output_file" {
        return Some(Placeholder::OutputMetadataFile);
    }
    SystemPlaceholder::from_name(path).map(Placeholder::System)
}

/// `['name']rest` or `["name"]rest` → (name, rest).
fn bracketed_name(text: &str) -> Option<(String, &str)> {
    let text = text.strip_prefix('[')?;
    let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let text = &text[1..];
    let end = text.find(quote)?;
    let rest = text[end + 1..].strip_prefix(']')?;
    Some((text[..end].to_string(), rest))
}

fn artifact_field(rest: &str) -> Option<ArtifactField> {
    match rest {
        ".path" => Some(ArtifactField::Path),
        ".uri" => Some(ArtifactField::Uri),
        ".metadata" => Some(ArtifactField::Metadata),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let got = match parse_arg(input) {
            Ok(t) => format!("{t:?}"),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "input: {input}");
    }

    #[test]
    fn text_placeholders() {
        check("{{$}}", "Text([Placeholder(ExecutorInput)])");
        check(
            "--x={{$.inputs.parameters['a b']}}!",
            r#"Text([Literal("--x="), Placeholder(InputParameter("a b")), Literal("!")])"#,
        );
        check(
            r#"{{$.inputs.artifacts["d"].path}}"#,
            r#"Text([Placeholder(InputArtifact("d", Path))])"#,
        );
        check(
            "{{$.outputs.parameters['o'].output_file}}",
            r#"Text([Placeholder(OutputParameterFile("o"))])"#,
        );
        check(
            "{{$.outputs.output_file}}",
            "Text([Placeholder(OutputMetadataFile)])",
        );
        check(
            "{{$.pipeline_task_name}}",
            "Text([Placeholder(System(PipelineTaskName))])",
        );
        check("{{not-kfp}}", r#"Text([Literal("{{not-kfp}}")])"#);
        check(
            "{{$.inputs.parameters['a'].path}}",
            r#"error: unknown placeholder "{{$.inputs.parameters['a'].path}}""#,
        );
        check("{{$.nope}}", r#"error: unknown placeholder "{{$.nope}}""#);
        check(
            "{{$.inputs",
            r#"error: unterminated placeholder "{{$.inputs""#,
        );
    }

    #[test]
    fn structured_placeholders() {
        check(
            r#"{"Concat": ["a", "{{$.inputs.parameters['x']}}"]}"#,
            r#"Concat([Text([Literal("a")]), Text([Placeholder(InputParameter("x"))])])"#,
        );
        check(
            r#"{"IfPresent": {"InputName": "x", "Then": ["--x", "{{$.inputs.parameters['x']}}"], "Else": "none"}}"#,
            r#"IfPresent { input_name: "x", then: [Text([Literal("--x")]), Text([Placeholder(InputParameter("x"))])], otherwise: Some([Text([Literal("none")])]) }"#,
        );
        check(
            r#"{"IfPresent": {"InputName": "x", "Then": "y", "Other": 1}}"#,
            r#"error: "IfPresent" has unknown key "Other""#,
        );
        check(r#"{"Concat": "a"}"#, r#"error: "Concat" must hold a list"#);
        // Not valid JSON: kept as text.
        check(r#"{"Concat": [}"#, r#"Text([Literal("{\"Concat\": [}")])"#);
    }
}
