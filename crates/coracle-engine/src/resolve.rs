//! Turning a task's resolved inputs into what its executor runs: the executor input JSON,
//! the output locations, and the command line with every placeholder substituted.

use std::collections::BTreeMap;

use coracle_spec::placeholder::{
    self, ArgTemplate, ArtifactField, Placeholder, Segment, SystemPlaceholder,
};
use coracle_spec::{ComponentSpec, ContainerSpec, value};
use serde_json::{Map, Value, json};

use crate::resources::{parse_cpu_millis, parse_memory_bytes};
use crate::{ArtifactValue, Io, Limits, OutputPlan, Resources, RunConfig};

/// A resolved argv and environment.
pub(crate) type CommandLine = (Vec<String>, Vec<(String, String)>);

/// Everything placeholders of one task can refer to.
pub(crate) struct TaskContext<'a> {
    pub config: &'a RunConfig,
    pub task_name: &'a str,
    pub task_uuid: String,
    pub inputs: &'a Io,
    pub outputs: &'a OutputPlan,
    pub executor_input: Value,
}

pub(crate) fn artifact_json(a: &ArtifactValue) -> Value {
    json!({
        "name": a.name,
        "uri": a.uri,
        "type": {"schemaTitle": a.schema_title, "schemaVersion": a.schema_version},
        "metadata": Value::Object(a.metadata.clone()),
    })
}

fn artifact_lists(artifacts: &BTreeMap<String, Vec<ArtifactValue>>) -> Value {
    let map: Map<String, Value> = artifacts
        .iter()
        .map(|(k, list)| {
            (
                k.clone(),
                json!({"artifacts": list.iter().map(artifact_json).collect::<Vec<_>>()}),
            )
        })
        .collect();
    Value::Object(map)
}

/// Plans where a task's outputs go: `{task_dir}/outputs/{name}` for parameters,
/// `{pipeline_root}/{run_id}/{task_path}/{name}` for artifacts.
pub(crate) fn plan_outputs(
    component: &ComponentSpec,
    config: &RunConfig,
    task_path: &str,
    task_dir: &str,
) -> OutputPlan {
    let parameters = component
        .output_parameters()
        .map(|(name, p)| {
            (
                name.clone(),
                (p.parameter_type, format!("{task_dir}/outputs/{name}")),
            )
        })
        .collect();
    let root = config.pipeline_root.trim_end_matches('/');
    let artifacts = component
        .output_artifacts()
        .map(|(name, a)| {
            let artifact = ArtifactValue {
                name: name.clone(),
                uri: format!("{root}/{}/{task_path}/{name}", config.run_id),
                schema_title: a.artifact_type.schema_title.clone(),
                schema_version: a.artifact_type.schema_version.clone(),
                metadata: Map::new(),
            };
            (name.clone(), artifact)
        })
        .collect();
    OutputPlan {
        executor_output_file: format!("{task_dir}/executor_output.json"),
        parameters,
        artifacts,
    }
}

/// The JSON a KFP executor reads (`{{$}}`).
pub(crate) fn executor_input(inputs: &Io, outputs: &OutputPlan) -> Value {
    let out_params: Map<String, Value> = outputs
        .parameters
        .iter()
        .map(|(k, (_, file))| (k.clone(), json!({"outputFile": file})))
        .collect();
    let out_artifacts: BTreeMap<String, Vec<ArtifactValue>> = outputs
        .artifacts
        .iter()
        .map(|(k, a)| (k.clone(), vec![a.clone()]))
        .collect();
    json!({
        "inputs": {
            "parameterValues": Value::Object(inputs.parameters.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            "artifacts": artifact_lists(&inputs.artifacts),
        },
        "outputs": {
            "parameters": Value::Object(out_params),
            "artifacts": artifact_lists(&out_artifacts),
            "outputFile": outputs.executor_output_file,
        },
    })
}

/// What a system placeholder (`{{$.pipeline_job_name}}`, …) stands for in one task.
pub(crate) fn system_value(
    config: &RunConfig,
    task_name: &str,
    task_uuid: &str,
    s: SystemPlaceholder,
) -> String {
    match s {
        SystemPlaceholder::PipelineJobName | SystemPlaceholder::PipelineJobResourceName => {
            config.run_name.clone()
        }
        SystemPlaceholder::PipelineJobUuid => config.run_id.clone(),
        SystemPlaceholder::PipelineTaskName => task_name.to_string(),
        SystemPlaceholder::PipelineTaskUuid => task_uuid.to_string(),
        SystemPlaceholder::PipelineJobCreateTimeUtc
        | SystemPlaceholder::PipelineJobScheduleTimeUtc => config.create_time.clone(),
        SystemPlaceholder::PipelineRoot => config.pipeline_root.clone(),
        SystemPlaceholder::WorkspacePath => format!("{}/workspace", config.run_dir),
    }
}

/// Substitutes placeholders in a constant input: `{{$.inputs.parameters['…']}}` of an
/// f-string from the task's other inputs, and system placeholders (`system`).
pub(crate) fn interpolate_constant(
    text: &str,
    parameters: &BTreeMap<String, Value>,
    system: &dyn Fn(SystemPlaceholder) -> String,
) -> Result<String, String> {
    let segments = placeholder::parse_text(text)?;
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Literal(s) => out.push_str(&s),
            Segment::Placeholder(Placeholder::InputParameter(name)) => {
                match parameters.get(&name) {
                    Some(v) => out.push_str(&value::to_placeholder_text(v)),
                    None => {
                        return Err(format!(
                            "the constant refers to input \"{name}\", which has no value"
                        ));
                    }
                }
            }
            Segment::Placeholder(Placeholder::System(p)) => out.push_str(&system(p)),
            Segment::Placeholder(other) => {
                return Err(format!("placeholder {other:?} cannot appear in a constant"));
            }
        }
    }
    Ok(out)
}

impl TaskContext<'_> {
    fn placeholder(&self, p: &Placeholder) -> Result<String, String> {
        let artifact = |list: Option<&Vec<ArtifactValue>>,
                        name: &str,
                        field: ArtifactField|
         -> Result<String, String> {
            let a = list
                .and_then(|l| l.first())
                .ok_or_else(|| format!("artifact \"{name}\" has no value"))?;
            Ok(match field {
                ArtifactField::Path | ArtifactField::Uri => a.uri.clone(),
                ArtifactField::Metadata => Value::Object(a.metadata.clone()).to_string(),
            })
        };
        Ok(match p {
            Placeholder::ExecutorInput => self.executor_input.to_string(),
            Placeholder::InputParameter(name) => self
                .inputs
                .parameters
                .get(name)
                .map(value::to_placeholder_text)
                .unwrap_or_default(),
            Placeholder::InputArtifact(name, field) => {
                artifact(self.inputs.artifacts.get(name), name, *field)?
            }
            Placeholder::OutputArtifact(name, field) => {
                let planned = self.outputs.artifacts.get(name).cloned().map(|a| vec![a]);
                artifact(planned.as_ref(), name, *field)?
            }
            Placeholder::OutputParameterFile(name) => self
                .outputs
                .parameters
                .get(name)
                .map(|(_, file)| file.clone())
                .ok_or_else(|| format!("output parameter \"{name}\" is not declared"))?,
            Placeholder::OutputMetadataFile => self.outputs.executor_output_file.clone(),
            Placeholder::System(s) => {
                system_value(self.config, self.task_name, &self.task_uuid, *s)
            }
        })
    }

    fn text(&self, segments: &[Segment]) -> Result<String, String> {
        let mut out = String::new();
        for s in segments {
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Placeholder(p) => out.push_str(&self.placeholder(p)?),
            }
        }
        Ok(out)
    }

    fn is_present(&self, name: &str) -> bool {
        self.inputs
            .parameters
            .get(name)
            .is_some_and(|v| !v.is_null())
            || self.inputs.artifacts.contains_key(name)
    }

    /// One command/args element → zero or more argv entries.
    fn arg(&self, template: &ArgTemplate, out: &mut Vec<String>) -> Result<(), String> {
        match template {
            ArgTemplate::Text(segments) => out.push(self.text(segments)?),
            ArgTemplate::Concat(parts) => {
                let mut pieces = Vec::new();
                for part in parts {
                    self.arg(part, &mut pieces)?;
                }
                out.push(pieces.concat());
            }
            ArgTemplate::IfPresent {
                input_name,
                then,
                otherwise,
            } => {
                let branch = if self.is_present(input_name) {
                    Some(then)
                } else {
                    otherwise.as_ref()
                };
                for part in branch.into_iter().flatten() {
                    self.arg(part, out)?;
                }
            }
        }
        Ok(())
    }

    /// The container's command and args with placeholders resolved, and its env.
    pub(crate) fn command_line(&self, container: &ContainerSpec) -> Result<CommandLine, String> {
        let mut argv = Vec::new();
        for (field, list) in [("command", &container.command), ("args", &container.args)] {
            for (i, raw) in list.iter().enumerate() {
                let template =
                    placeholder::parse_arg(raw).map_err(|e| format!("{field}[{i}]: {e}"))?;
                self.arg(&template, &mut argv)
                    .map_err(|e| format!("{field}[{i}]: {e}"))?;
            }
        }
        let mut env = Vec::new();
        for var in &container.env {
            let segments = placeholder::parse_text(&var.value)
                .map_err(|e| format!("env {}: {e}", var.name))?;
            env.push((var.name.clone(), self.text(&segments)?));
        }
        Ok((argv, env))
    }

    /// Declared requests (falling back to limits, as Kubernetes does).
    /// The task's requests (what scheduling counts: a request, else its limit) and limits.
    pub(crate) fn resources(
        &self,
        container: &ContainerSpec,
    ) -> Result<(Resources, Limits), String> {
        let Some(r) = &container.resources else {
            return Ok((Resources::default(), Limits::default()));
        };
        let resolve = |s: &Option<String>| -> Result<Option<String>, String> {
            match s {
                Some(s) => Ok(Some(self.text(&placeholder::parse_text(s)?)?))
                    .map(|v| v.filter(|t| !t.is_empty())),
                None => Ok(None),
            }
        };
        let cpu = |text: Option<String>, old: Option<f64>| -> Result<Option<u64>, String> {
            match text {
                Some(text) => parse_cpu_millis(&text).map(Some),
                None => Ok(old.map(|c| (c * 1000.0).ceil() as u64)),
            }
        };
        let memory = |text: Option<String>, old: Option<f64>| -> Result<Option<u64>, String> {
            match text {
                Some(text) => parse_memory_bytes(&text).map(Some),
                None => Ok(old.map(|m| (m * 1e9).ceil() as u64)),
            }
        };
        let limits = Limits {
            cpu_millis: cpu(resolve(&r.resource_cpu_limit)?, r.cpu_limit)?,
            memory_bytes: memory(resolve(&r.resource_memory_limit)?, r.memory_limit)?,
        };
        let cpu_request = cpu(resolve(&r.resource_cpu_request)?, r.cpu_request)?;
        let memory_request = memory(resolve(&r.resource_memory_request)?, r.memory_request)?;
        let gpus = match &r.accelerator {
            None => 0,
            Some(accelerator) => {
                let count = match resolve(&accelerator.resource_count)? {
                    Some(text) => Some(text),
                    None => accelerator.count.as_ref().map(|c| match c {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }),
                };
                match count {
                    None => 1,
                    Some(text) => text.trim().parse::<u32>().map_err(|_| {
                        format!(
                            "invalid accelerator count {text:?} (expected a whole number of devices)"
                        )
                    })?,
                }
            }
        };
        Ok((
            Resources {
                cpu_millis: cpu_request.or(limits.cpu_millis).unwrap_or(0),
                memory_bytes: memory_request.or(limits.memory_bytes).unwrap_or(0),
                gpus,
            },
            limits,
        ))
    }
}

/// A UUID-shaped identifier derived from the run and task path: stable for the same run.
pub(crate) fn task_uuid(run_id: &str, task_path: &str) -> String {
    fn fnv(seed: u64, data: &[u8]) -> u64 {
        let mut h = seed;
        for b in data {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
        h
    }
    let key = format!("{run_id}/{task_path}");
    let a = fnv(0xcbf29ce484222325, key.as_bytes());
    let b = fnv(0x84222325cbf29ce4, key.as_bytes());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}
