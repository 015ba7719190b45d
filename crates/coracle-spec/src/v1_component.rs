//! A KFP v1 `component.yaml` (`name`, `inputs`, `outputs`, `implementation.container` with
//! `inputValue` / `inputPath` / `inputUri` / `outputPath` / `outputUri` / `concat` /
//! `if`-`isPresent`), loaded as a one-task pipeline: every input is a pipeline parameter (an
//! input read as a file gets its content written to a file first, as KFP v1 does with a
//! constant), every output a pipeline output.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::load::ParseError;
use crate::model::*;
use crate::{Issue, Issues};

/// Whether a YAML document is a v1 component file rather than a pipeline spec.
pub(crate) fn is_component(document: &Map<String, Value>) -> bool {
    document.contains_key("implementation")
        && !document.contains_key("root")
        && !document.contains_key("pipelineInfo")
}

#[derive(Debug, Deserialize)]
struct ComponentFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    inputs: Vec<Port>,
    #[serde(default)]
    outputs: Vec<Port>,
    implementation: Implementation,
}

#[derive(Debug, Deserialize)]
struct Port {
    name: String,
    #[serde(default, rename = "type")]
    kind: Option<Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    default: Option<Value>,
    #[serde(default)]
    optional: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct Implementation {
    #[serde(default)]
    container: Option<Container>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    #[serde(default)]
    image: String,
    #[serde(default)]
    command: Vec<Value>,
    #[serde(default)]
    args: Vec<Value>,
    #[serde(default)]
    env: BTreeMap<String, Value>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

/// Output types whose file is a small value: these outputs are parameters too.
fn is_value_type(kind: &Option<Value>) -> bool {
    let Some(Value::String(kind)) = kind else {
        return false;
    };
    matches!(
        kind.to_ascii_lowercase().as_str(),
        "string"
            | "str"
            | "integer"
            | "int"
            | "float"
            | "double"
            | "bool"
            | "boolean"
            | "jsonobject"
            | "jsonarray"
            | "dict"
            | "list"
    )
}

fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out.trim_matches('-').to_string()
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

struct Converter<'a> {
    file: &'a ComponentFile,
    issues: Vec<Issue>,
    /// Inputs read as values and as files.
    value_inputs: Vec<String>,
    file_inputs: Vec<String>,
}

impl Converter<'_> {
    fn input(&mut self, name: &str, at: &str, as_file: bool) -> bool {
        if !self.file.inputs.iter().any(|i| i.name == name) {
            self.issues
                .push(Issue::new(at, format!("input \"{name}\" is not declared")));
            return false;
        }
        let list = if as_file {
            &mut self.file_inputs
        } else {
            &mut self.value_inputs
        };
        if !list.iter().any(|n| n == name) {
            list.push(name.to_string());
        }
        true
    }

    fn output(&mut self, name: &str, at: &str) -> bool {
        let known = self.file.outputs.iter().any(|o| o.name == name);
        if !known {
            self.issues
                .push(Issue::new(at, format!("output \"{name}\" is not declared")));
        }
        known
    }

    /// One argument as the IR writes it: a string with placeholders, or a `Concat` /
    /// `IfPresent` object.
    fn arg(&mut self, value: &Value, at: &str) -> Option<Value> {
        let Value::Object(map) = value else {
            return match value {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                    Some(Value::String(text_of(value)))
                }
                _ => {
                    self.issues
                        .push(Issue::new(at, "expected a string or a placeholder"));
                    None
                }
            };
        };
        let Some((key, body)) = map.iter().next().filter(|_| map.len() == 1) else {
            self.issues
                .push(Issue::new(at, "a placeholder is a mapping with one key"));
            return None;
        };
        let name = body.as_str().unwrap_or_default();
        let placeholder = |text: String| Some(Value::String(text));
        match key.as_str() {
            "inputValue" => self
                .input(name, at, false)
                .then(|| format!("{{{{$.inputs.parameters['{name}']}}}}"))
                .and_then(placeholder),
            "inputPath" | "inputUri" => {
                let field = if key == "inputPath" { "path" } else { "uri" };
                self.input(name, at, true)
                    .then(|| format!("{{{{$.inputs.artifacts['{name}'].{field}}}}}"))
                    .and_then(placeholder)
            }
            "outputPath" | "outputUri" => {
                let field = if key == "outputPath" { "path" } else { "uri" };
                self.output(name, at)
                    .then(|| format!("{{{{$.outputs.artifacts['{name}'].{field}}}}}"))
                    .and_then(placeholder)
            }
            "concat" => {
                let Value::Array(items) = body else {
                    self.issues.push(Issue::new(at, "concat must hold a list"));
                    return None;
                };
                let parts = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.arg(item, &format!("{at}.concat[{i}]")))
                    .collect::<Option<Vec<_>>>()?;
                Some(json!({ "Concat": parts }))
            }
            "if" => {
                let cond = body.get("cond");
                let branch = |this: &mut Self, key: &str| -> Option<Option<Vec<Value>>> {
                    match body.get(key) {
                        None | Some(Value::Null) => Some(None),
                        Some(Value::Array(items)) => items
                            .iter()
                            .enumerate()
                            .map(|(i, item)| this.arg(item, &format!("{at}.if.{key}[{i}]")))
                            .collect::<Option<Vec<_>>>()
                            .map(Some),
                        Some(item) => this
                            .arg(item, &format!("{at}.if.{key}"))
                            .map(|v| Some(vec![v])),
                    }
                };
                let then = branch(self, "then")?.unwrap_or_default();
                let otherwise = branch(self, "else")?;
                match cond {
                    Some(Value::Object(c)) if c.contains_key("isPresent") => {
                        let input = c["isPresent"].as_str().unwrap_or_default().to_string();
                        if !self.file.inputs.iter().any(|i| i.name == input) {
                            self.issues.push(Issue::new(
                                format!("{at}.if.cond"),
                                format!("input \"{input}\" is not declared"),
                            ));
                            return None;
                        }
                        let mut object = json!({ "InputName": input, "Then": then });
                        if let Some(otherwise) = otherwise {
                            object["Else"] = Value::Array(otherwise);
                        }
                        Some(json!({ "IfPresent": object }))
                    }
                    Some(Value::Bool(b)) => {
                        let chosen = if *b {
                            then
                        } else {
                            otherwise.unwrap_or_default()
                        };
                        Some(json!({ "Concat": chosen }))
                    }
                    _ => {
                        self.issues.push(Issue::new(
                            format!("{at}.if.cond"),
                            "only isPresent (or a constant true/false) conditions are supported",
                        ));
                        None
                    }
                }
            }
            other => {
                self.issues.push(Issue::new(
                    at,
                    format!("unknown placeholder \"{other}\" (expected inputValue, inputPath, inputUri, outputPath, outputUri, concat or if)"),
                ));
                None
            }
        }
    }
}

/// The IR text of one command/args element.
fn arg_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Translates a v1 component file into a one-task pipeline.
pub(crate) fn translate(document: Value) -> Result<Pipeline, ParseError> {
    let file: ComponentFile = serde_path_to_error::deserialize(document).map_err(|e| {
        ParseError::Invalid(Issues(vec![Issue::new(
            e.path().to_string(),
            e.into_inner().to_string(),
        )]))
    })?;
    let mut converter = Converter {
        file: &file,
        issues: Vec::new(),
        value_inputs: Vec::new(),
        file_inputs: Vec::new(),
    };
    for key in file.implementation.other.keys() {
        converter.issues.push(Issue::new(
            format!("implementation.{key}"),
            "only container implementations are supported",
        ));
    }
    let Some(container) = &file.implementation.container else {
        converter.issues.push(Issue::new(
            "implementation",
            "the component has no container implementation",
        ));
        return Err(ParseError::Invalid(Issues(converter.issues)));
    };
    for key in container.other.keys() {
        converter.issues.push(Issue::new(
            format!("implementation.container.{key}"),
            "not supported",
        ));
    }
    let mut command = Vec::new();
    for (i, v) in container.command.iter().enumerate() {
        if let Some(arg) = converter.arg(v, &format!("implementation.container.command[{i}]")) {
            command.push(arg_text(arg));
        }
    }
    let mut args = Vec::new();
    for (i, v) in container.args.iter().enumerate() {
        if let Some(arg) = converter.arg(v, &format!("implementation.container.args[{i}]")) {
            args.push(arg_text(arg));
        }
    }
    let env = container
        .env
        .iter()
        .map(|(name, value)| EnvVar {
            name: name.clone(),
            value: text_of(value),
        })
        .collect();
    for name in &converter.file_inputs {
        if converter.value_inputs.contains(name) {
            converter.issues.push(Issue::new(
                "implementation.container",
                format!(
                    "input \"{name}\" is read both as a value and as a file, which is not supported"
                ),
            ));
        }
    }
    if container.image.trim().is_empty() {
        converter.issues.push(Issue::new(
            "implementation.container.image",
            "the container has no image",
        ));
    }
    let issues = std::mem::take(&mut converter.issues);
    if !issues.is_empty() {
        return Err(ParseError::Invalid(Issues(issues)));
    }
    let name = file
        .name
        .as_deref()
        .map(sanitize)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "component".to_string());

    // The component run by the one task.
    let mut inputs = InterfaceDefinitions::default();
    let mut root_inputs = InterfaceDefinitions::default();
    let mut task_inputs = TaskInputsSpec::default();
    let mut tasks = BTreeMap::new();
    for port in &file.inputs {
        let optional = port.optional.unwrap_or(false) || port.default.is_some();
        root_inputs.parameters.insert(
            port.name.clone(),
            ParameterSpec {
                parameter_type: ParameterType::String,
                default_value: port.default.as_ref().map(|d| Value::String(text_of(d))),
                is_optional: port.optional.unwrap_or(false) && port.default.is_none(),
                description: port.description.clone(),
            },
        );
        if converter.file_inputs.contains(&port.name) {
            inputs.artifacts.insert(
                port.name.clone(),
                ArtifactSpec {
                    artifact_type: ArtifactTypeSchema {
                        schema_title: "system.Artifact".into(),
                        schema_version: "0.0.1".into(),
                    },
                    is_artifact_list: false,
                    is_optional: optional,
                    description: port.description.clone(),
                },
            );
            // The value is written to a file first; an optional input left out writes
            // nothing, so the component sees it absent.
            let writer = format!("{name}-{}-data", sanitize(&port.name));
            tasks.insert(
                writer.clone(),
                TaskSpec {
                    task_info: TaskInfo {
                        name: writer.clone(),
                    },
                    component_ref: ComponentRef {
                        name: "comp-write-data".into(),
                    },
                    inputs: TaskInputsSpec {
                        parameters: BTreeMap::from([(
                            "data".to_string(),
                            ParameterInputSpec {
                                component_input_parameter: Some(port.name.clone()),
                                ..Default::default()
                            },
                        )]),
                        artifacts: BTreeMap::new(),
                    },
                    trigger_policy: optional.then(|| TriggerPolicy {
                        condition: Some("'data' in inputs.parameter_values".into()),
                        strategy: None,
                    }),
                    caching_options: Some(CachingOptions {
                        enable_cache: true,
                        cache_key: None,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            );
            task_inputs.artifacts.insert(
                port.name.clone(),
                ArtifactInputSpec {
                    task_output_artifact: Some(TaskOutputArtifactSpec {
                        producer_task: writer,
                        output_artifact_key: "data".into(),
                    }),
                    component_input_artifact: None,
                },
            );
        } else {
            inputs.parameters.insert(
                port.name.clone(),
                ParameterSpec {
                    parameter_type: ParameterType::String,
                    default_value: port.default.as_ref().map(|d| Value::String(text_of(d))),
                    is_optional: port.optional.unwrap_or(false),
                    description: port.description.clone(),
                },
            );
            task_inputs.parameters.insert(
                port.name.clone(),
                ParameterInputSpec {
                    component_input_parameter: Some(port.name.clone()),
                    ..Default::default()
                },
            );
        }
    }
    let mut outputs = InterfaceDefinitions::default();
    let mut root_outputs = InterfaceDefinitions::default();
    let mut dag_outputs = DagOutputsSpec::default();
    for port in &file.outputs {
        let schema = if port.kind.as_ref().and_then(Value::as_str) == Some("Metrics") {
            "system.Metrics"
        } else {
            "system.Artifact"
        };
        let artifact = ArtifactSpec {
            artifact_type: ArtifactTypeSchema {
                schema_title: schema.into(),
                schema_version: "0.0.1".into(),
            },
            is_artifact_list: false,
            is_optional: false,
            description: port.description.clone(),
        };
        outputs
            .artifacts
            .insert(port.name.clone(), artifact.clone());
        root_outputs.artifacts.insert(port.name.clone(), artifact);
        dag_outputs.artifacts.insert(
            port.name.clone(),
            DagOutputArtifactSpec {
                artifact_selectors: vec![OutputArtifactSelector {
                    producer_subtask: name.clone(),
                    output_artifact_key: port.name.clone(),
                }],
            },
        );
        if is_value_type(&port.kind) {
            // Read from the artifact's file after the task (see the orchestrator).
            let parameter = ParameterSpec {
                parameter_type: ParameterType::String,
                default_value: None,
                is_optional: false,
                description: port.description.clone(),
            };
            outputs
                .parameters
                .insert(port.name.clone(), parameter.clone());
            root_outputs.parameters.insert(port.name.clone(), parameter);
            dag_outputs.parameters.insert(
                port.name.clone(),
                DagOutputParameterSpec {
                    value_from_parameter: Some(OutputParameterSelector {
                        producer_subtask: name.clone(),
                        output_parameter_key: port.name.clone(),
                    }),
                    value_from_oneof: None,
                },
            );
        }
    }
    let mut task = TaskSpec {
        task_info: TaskInfo { name: name.clone() },
        component_ref: ComponentRef {
            name: format!("comp-{name}"),
        },
        inputs: task_inputs,
        caching_options: Some(CachingOptions {
            enable_cache: true,
            cache_key: None,
            ..Default::default()
        }),
        ..Default::default()
    };
    task.dependent_tasks = tasks.keys().cloned().collect();
    tasks.insert(name.clone(), task);
    let non_empty = |d: InterfaceDefinitions| {
        (!d.parameters.is_empty() || !d.artifacts.is_empty()).then_some(d)
    };
    let mut components = BTreeMap::new();
    components.insert(
        format!("comp-{name}"),
        ComponentSpec {
            input_definitions: non_empty(inputs),
            output_definitions: non_empty(outputs),
            dag: None,
            executor_label: Some(format!("exec-{name}")),
        },
    );
    let mut executors = BTreeMap::new();
    executors.insert(
        format!("exec-{name}"),
        ExecutorSpec {
            container: Some(ContainerSpec {
                image: container.image.clone(),
                command,
                args,
                env,
                resources: None,
            }),
            ..Default::default()
        },
    );
    if !converter.file_inputs.is_empty() {
        components.insert(
            "comp-write-data".into(),
            ComponentSpec {
                input_definitions: Some(InterfaceDefinitions {
                    parameters: BTreeMap::from([(
                        "data".to_string(),
                        ParameterSpec {
                            parameter_type: ParameterType::String,
                            default_value: None,
                            is_optional: false,
                            description: None,
                        },
                    )]),
                    artifacts: BTreeMap::new(),
                }),
                output_definitions: Some(InterfaceDefinitions {
                    parameters: BTreeMap::new(),
                    artifacts: BTreeMap::from([(
                        "data".to_string(),
                        ArtifactSpec {
                            artifact_type: ArtifactTypeSchema {
                                schema_title: "system.Artifact".into(),
                                schema_version: "0.0.1".into(),
                            },
                            is_artifact_list: false,
                            is_optional: false,
                            description: None,
                        },
                    )]),
                }),
                dag: None,
                executor_label: Some("exec-write-data".into()),
            },
        );
        executors.insert(
            "exec-write-data".into(),
            ExecutorSpec {
                container: Some(ContainerSpec {
                    image: container.image.clone(),
                    command: vec![
                        "sh".into(),
                        "-c".into(),
                        "mkdir -p \"$(dirname \"$1\")\" && printf '%s' \"$0\" > \"$1\"".into(),
                        "{{$.inputs.parameters['data']}}".into(),
                        "{{$.outputs.artifacts['data'].path}}".into(),
                    ],
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
    }
    let spec = PipelineSpec {
        pipeline_info: PipelineInfo {
            name: name.clone(),
            display_name: file.name.clone(),
            description: file.description.clone(),
        },
        components,
        deployment_spec: DeploymentSpec { executors },
        root: ComponentSpec {
            input_definitions: non_empty(root_inputs),
            output_definitions: non_empty(root_outputs),
            dag: Some(DagSpec {
                tasks,
                outputs: (!dag_outputs.parameters.is_empty() || !dag_outputs.artifacts.is_empty())
                    .then_some(dag_outputs),
            }),
            executor_label: None,
        },
        default_pipeline_root: None,
        sdk_version: Some("kfp-v1-component".into()),
        schema_version: Some("2.1.0".into()),
        platforms: None,
    };
    Ok(Pipeline {
        spec,
        platforms: None,
    })
}
