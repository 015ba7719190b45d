//! Argo's `{{…}}` template tags, as KFP v1 workflows use them: parsing a string into text
//! and references, and saying what each reference names.

use crate::placeholder::SystemPlaceholder;

/// What one `{{…}}` tag refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ref {
    /// `{{inputs.parameters.x}}`
    InputParameter(String),
    /// `{{inputs.artifacts.x}}` (a DAG task's `from`)
    InputArtifact(String),
    /// `{{inputs.artifacts.x.path}}`
    InputArtifactPath(String),
    /// `{{outputs.parameters.x.path}}`
    OutputParameterPath(String),
    /// `{{outputs.artifacts.x.path}}`
    OutputArtifactPath(String),
    /// `{{tasks.t.outputs.parameters.p}}`
    TaskParameter { task: String, name: String },
    /// `{{tasks.t.outputs.artifacts.a}}`
    TaskArtifact { task: String, name: String },
    /// `{{workflow.parameters.x}}`
    WorkflowParameter(String),
    /// `{{workflow.name}}`, `{{workflow.uid}}`, `{{pod.name}}`, …
    System(SystemPlaceholder),
    /// `{{workflow.namespace}}`: one machine has no namespaces; it reads `default`.
    Namespace,
    /// `{{workflow.status}}` (exit handlers)
    WorkflowStatus,
    /// `{{item}}` or `{{item.key}}`
    Item(Option<String>),
}

/// A piece of a string: literal text or a reference (with the tag as written, for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Ref(Ref, String),
}

impl Piece {
    pub(crate) fn as_ref(&self) -> Option<&Ref> {
        match self {
            Piece::Ref(r, _) => Some(r),
            Piece::Text(_) => None,
        }
    }
}

/// Splits `text` into literal text and references. A `{{` without a closing `}}` stays text,
/// as in Argo; a tag that names nothing Coracle knows is an error naming it.
pub(crate) fn parse(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut literal = String::new();
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            break;
        };
        literal.push_str(&rest[..start]);
        let tag = &after[..end];
        let reference = parse_tag(tag.trim())
            .ok_or_else(|| format!("unknown Argo variable \"{{{{{tag}}}}}\""))?;
        if !literal.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Ref(reference, format!("{{{{{tag}}}}}")));
        rest = &after[end + 2..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// The one reference `text` consists of, when it is exactly one tag.
pub(crate) fn single(pieces: &[Piece]) -> Option<&Ref> {
    match pieces {
        [Piece::Ref(r, _)] => Some(r),
        _ => None,
    }
}

fn parse_tag(tag: &str) -> Option<Ref> {
    let parts: Vec<&str> = tag.split('.').collect();
    let name = |s: &str| -> Option<String> { is_name(s).then(|| s.to_string()) };
    Some(match parts.as_slice() {
        ["inputs", "parameters", x] => Ref::InputParameter(name(x)?),
        ["inputs", "artifacts", x] => Ref::InputArtifact(name(x)?),
        ["inputs", "artifacts", x, "path"] => Ref::InputArtifactPath(name(x)?),
        ["outputs", "parameters", x, "path"] => Ref::OutputParameterPath(name(x)?),
        ["outputs", "artifacts", x, "path"] => Ref::OutputArtifactPath(name(x)?),
        ["tasks", t, "outputs", "parameters", p] => Ref::TaskParameter {
            task: name(t)?,
            name: name(p)?,
        },
        ["tasks", t, "outputs", "artifacts", a] => Ref::TaskArtifact {
            task: name(t)?,
            name: name(a)?,
        },
        ["workflow", "parameters", x] => Ref::WorkflowParameter(name(x)?),
        ["workflow", "name"] => Ref::System(SystemPlaceholder::PipelineJobResourceName),
        ["workflow", "uid"] => Ref::System(SystemPlaceholder::PipelineJobUuid),
        ["workflow", "creationTimestamp"] => {
            Ref::System(SystemPlaceholder::PipelineJobCreateTimeUtc)
        }
        ["pod", "name"] => Ref::System(SystemPlaceholder::PipelineTaskUuid),
        ["workflow", "namespace"] => Ref::Namespace,
        ["workflow", "status"] => Ref::WorkflowStatus,
        ["item"] => Ref::Item(None),
        ["item", key] => Ref::Item(Some(name(key)?)),
        _ => return None,
    })
}

/// Argo names: letters, digits, `-` and `_`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The IR text of a system placeholder.
pub(crate) fn system_text(s: SystemPlaceholder) -> &'static str {
    match s {
        SystemPlaceholder::PipelineJobName => "{{$.pipeline_job_name}}",
        SystemPlaceholder::PipelineJobResourceName => "{{$.pipeline_job_resource_name}}",
        SystemPlaceholder::PipelineJobUuid => "{{$.pipeline_job_uuid}}",
        SystemPlaceholder::PipelineTaskName => "{{$.pipeline_task_name}}",
        SystemPlaceholder::PipelineTaskUuid => "{{$.pipeline_task_uuid}}",
        SystemPlaceholder::PipelineJobCreateTimeUtc => "{{$.pipeline_job_create_time_utc}}",
        SystemPlaceholder::PipelineJobScheduleTimeUtc => "{{$.pipeline_job_schedule_time_utc}}",
        SystemPlaceholder::PipelineRoot => "{{$.pipeline_root}}",
        SystemPlaceholder::WorkspacePath => "{{$.workspace_path}}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(text: &str) -> String {
        match parse(text) {
            Ok(pieces) => format!("{pieces:?}"),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn tags() {
        assert_eq!(
            show("--a={{inputs.parameters.a}}!"),
            r#"[Text("--a="), Ref(InputParameter("a"), "{{inputs.parameters.a}}"), Text("!")]"#
        );
        assert_eq!(
            show("{{ tasks.add.outputs.parameters.add-Output }}"),
            r#"[Ref(TaskParameter { task: "add", name: "add-Output" }, "{{ tasks.add.outputs.parameters.add-Output }}")]"#
        );
        assert_eq!(
            show("{{item.x}}/{{workflow.name}}"),
            r#"[Ref(Item(Some("x")), "{{item.x}}"), Text("/"), Ref(System(PipelineJobResourceName), "{{workflow.name}}")]"#
        );
        assert_eq!(show("a {{ b"), r#"[Text("a {{ b")]"#);
        assert_eq!(
            show("{{steps.x.outputs.result}}"),
            r#"error: unknown Argo variable "{{steps.x.outputs.result}}""#
        );
        assert_eq!(
            show("{{inputs.parameters.a.b}}"),
            r#"error: unknown Argo variable "{{inputs.parameters.a.b}}""#
        );
    }
}
