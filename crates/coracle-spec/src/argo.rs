//! KFP v1 pipelines: the Argo `Workflow` that kfp 1.8 compiles, translated into the IR
//! (`PipelineSpec` plus its `platforms.kubernetes` settings) that the one engine runs.
//!
//! How each part maps:
//!
//! * DAG templates become DAG components, container templates executors (one component per
//!   distinct use), `resource` templates that create a PersistentVolumeClaim (`dsl.VolumeOp`)
//!   the `argostub/createpvc` builtin, and `kubectl delete pvc` containers (`VolumeOp.delete()`)
//!   `argostub/deletepvc`. The entrypoint DAG is the root; `spec.arguments.parameters` are the
//!   root's STRING parameters. Argo values are text: other parameters are declared untyped, so
//!   whatever a loop item or output holds passes through and renders as Argo renders it.
//! * `{{inputs.parameters.x}}`, `{{tasks.t.outputs.parameters.p}}`, `{{workflow.parameters.x}}`,
//!   `{{item}}` / `{{item.k}}` and the `{{workflow.name}}`-like variables become task inputs and
//!   IR placeholders; text mixing several of them becomes a constant with placeholders of the
//!   task's own `pipelinechannel--…` inputs (as f-strings compile in v2). Workflow parameters
//!   used below the root are passed down as `workflow.parameters.x` inputs.
//! * Files: a v1 container reads and writes fixed paths (`/tmp/inputs/x/data`,
//!   `/tmp/outputs/y/data`, a `file_outputs` path). Every place such a path is written in the
//!   command, args or env is replaced by the IR placeholder of the artifact's path, so the
//!   engine's artifact is where the program reads or writes, on the process backend (host
//!   paths) and the Docker backend (the run directory mounted at the same path) alike, with no
//!   wrapper script and no shared `/tmp`. A declared path that appears nowhere cannot be
//!   redirected and is refused. An output parameter (`valueFrom.path`) is declared with an
//!   output artifact of the same key at that path; the orchestrator reads such a parameter
//!   from the artifact's file, less one trailing newline, as Argo does.
//! * `when` becomes a CEL trigger condition over task inputs (see `when`), `withItems` /
//!   `withParam` / `withSequence` a parameter iterator (a container looped directly gets a DAG
//!   around it), a loop template's `parallelism` the iterator's parallelism limit,
//!   `retryStrategy` the retry policy, `onExit` an exit task that waits for the others with
//!   ALL_UPSTREAM_TASKS_COMPLETED (`{{workflow.status}}` read from the body's final status),
//!   the `pipelines.kubeflow.org/enable_caching` label and `max_cache_staleness` annotation
//!   the caching option, `task_display_name` the task's name.
//! * Volumes (PVC claims, secrets, config maps, emptyDir), env from secrets, config maps and
//!   field paths, pod labels and annotations, node selectors, tolerations, deadlines and image
//!   pull policies become `platforms.kubernetes` executor settings; CPU, memory and GPU limits
//!   and requests the container's resources.
//! * A raw input artifact (a constant passed to an `InputPath`) is written by a small `sh`
//!   task in the consumer's image before the consumer runs.
//! * `mlpipeline-metrics` is a `system.Metrics` artifact (the orchestrator turns its JSON into
//!   the artifact's metadata), `mlpipeline-ui-metadata` a `coracle.UiMetadata` artifact.
//!
//! Anything else (steps, scripts, sidecars, other resources, unknown variables, references to
//! undeclared things) is an issue naming the template and field.

mod model;
mod refs;
mod when;

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use serde_json::{Map, Value, json};

use crate::load::ParseError;
use crate::model::*;
use crate::platform::*;
use crate::{Issue, Issues};
use model::*;
use refs::{Piece, Ref};

/// Schema title of the `mlpipeline-ui-metadata` artifact.
pub const UI_METADATA_SCHEMA: &str = "coracle.UiMetadata";

const KFP: &str = "pipelines.kubeflow.org/";
const STATUS_INPUT: &str = "workflow.status";
/// What `{{workflow.status}}` reads, from the body's final status.
const STATUS_SELECTOR: &str = "parseJson(string_value)[\"state\"] == \"COMPLETE\" ? \"Succeeded\" : (parseJson(string_value)[\"state\"] == \"FAILED\" ? \"Failed\" : \"Error\")";

/// Whether a YAML document is an Argo Workflow.
pub(crate) fn is_workflow(document: &Map<String, Value>) -> bool {
    document.get("kind").and_then(Value::as_str) == Some("Workflow")
}

/// Translates an Argo Workflow document into a pipeline.
pub(crate) fn translate(document: Value) -> Result<Pipeline, ParseError> {
    let api_version = document
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !api_version.starts_with("argoproj.io/") {
        return Err(ParseError::Format(format!(
            "a Workflow of apiVersion {api_version:?} is not an Argo Workflow (expected argoproj.io/v1alpha1)"
        )));
    }
    let workflow: Workflow = serde_path_to_error::deserialize(document).map_err(|e| {
        ParseError::Invalid(Issues(vec![Issue::new(
            e.path().to_string(),
            e.into_inner().to_string(),
        )]))
    })?;
    let mut translator = Translator::new(&workflow)?;
    let spec = translator.pipeline();
    if !translator.issues.is_empty() {
        return Err(ParseError::Invalid(Issues(translator.issues)));
    }
    let platforms = spec
        .platforms
        .as_ref()
        .and_then(|p| serde_json::to_value(p).ok());
    Ok(Pipeline { spec, platforms })
}

/// Where a loop body's input comes from: the iteration's item, maybe one key of it.
#[derive(Clone, Debug, PartialEq)]
struct ItemSource {
    input: String,
    selector: Option<String>,
}

/// The DAG a task is translated in.
struct Ctx {
    /// `spec.templates[name]`
    path: String,
    is_root: bool,
    /// Declared input parameters (not counting item inputs).
    params: BTreeSet<String>,
    artifacts: BTreeSet<String>,
    items: BTreeMap<String, ItemSource>,
    /// Task name → template name.
    tasks: BTreeMap<String, String>,
    /// Tasks that loop (their outputs cannot be read).
    looping: BTreeSet<String>,
}

/// Output names of a template: Argo name → IR key.
#[derive(Clone, Debug, Default)]
struct OutputNames {
    parameters: BTreeMap<String, String>,
    artifacts: BTreeMap<String, String>,
}

/// A name (PVC, secret, config map) as the template writes it, to resolve per use.
#[derive(Clone, Debug)]
struct NameText {
    text: String,
    at: String,
}

/// A container template's pod settings, names still in the template's terms.
#[derive(Clone, Debug, Default)]
struct PodTemplate {
    pvc: Vec<(String, NameText)>,
    secret_env: Vec<(NameText, SecretKeyToEnv, Option<bool>)>,
    secret_volumes: Vec<(NameText, String, Option<bool>)>,
    config_map_env: Vec<(NameText, ConfigMapKeyToEnv, Option<bool>)>,
    config_map_volumes: Vec<(NameText, String, Option<bool>)>,
    /// Everything without names to resolve.
    fixed: KubernetesExecutorConfig,
}

/// What a container template becomes, independent of who calls it.
struct ContainerParts {
    component: ComponentSpec,
    executor: ExecutorSpec,
    pod: PodTemplate,
    uses_status: bool,
}

/// What a resource (or `kubectl delete`) template becomes.
#[derive(Clone)]
enum VolumeAction {
    Create {
        name: NameText,
        /// `{{workflow.name}}<suffix>`: a name unique to the run.
        suffix: Option<String>,
        size: Option<String>,
        access_modes: Vec<String>,
        storage_class: Option<String>,
        annotations: Map<String, Value>,
    },
    Delete {
        name: NameText,
    },
}

/// Template-level task settings.
struct TaskSettings {
    retry: Option<RetryPolicy>,
    caching: Option<CachingOptions>,
    display: Option<String>,
}

struct Translator<'w> {
    workflow: &'w Workflow,
    templates: BTreeMap<String, (Template, Value)>,
    issues: Vec<Issue>,
    components: BTreeMap<String, ComponentSpec>,
    executors: BTreeMap<String, ExecutorSpec>,
    kubernetes: BTreeMap<String, KubernetesExecutorConfig>,
    /// Labels taken (`comp-L`, `exec-L`).
    taken: BTreeSet<String>,
    /// (template, variant) → component name.
    memo: BTreeMap<(String, String), String>,
    containers: BTreeMap<String, Option<Rc<ContainerParts>>>,
    volume_actions: BTreeMap<String, Option<VolumeAction>>,
    outputs: BTreeMap<String, OutputNames>,
    workflow_params: BTreeMap<String, BTreeSet<String>>,
    visiting: Vec<String>,
    root_inputs: BTreeSet<String>,
    raw_writers: BTreeMap<String, String>,
}

fn template_path(name: &str) -> String {
    format!("spec.templates[{name}]")
}

fn constant(value: impl Into<Value>) -> ParameterInputSpec {
    ParameterInputSpec {
        runtime_value: Some(RuntimeValue {
            constant: value.into(),
        }),
        ..Default::default()
    }
}

fn component_input(name: &str) -> ParameterInputSpec {
    ParameterInputSpec {
        component_input_parameter: Some(name.to_string()),
        ..Default::default()
    }
}

fn untyped(default: Option<String>) -> ParameterSpec {
    ParameterSpec {
        parameter_type: ParameterType::Unspecified,
        default_value: default.map(Value::String),
        is_optional: false,
        description: None,
    }
}

fn string_parameter() -> ParameterSpec {
    ParameterSpec {
        parameter_type: ParameterType::String,
        default_value: None,
        is_optional: false,
        description: None,
    }
}

fn artifact_spec(schema_title: &str) -> ArtifactSpec {
    ArtifactSpec {
        artifact_type: ArtifactTypeSchema {
            schema_title: schema_title.to_string(),
            schema_version: "0.0.1".to_string(),
        },
        is_artifact_list: false,
        is_optional: false,
        description: None,
    }
}

/// The schema an output artifact of this Argo name gets.
fn schema_of(argo_name: &str) -> &'static str {
    match argo_name {
        "mlpipeline-metrics" => "system.Metrics",
        "mlpipeline-ui-metadata" => UI_METADATA_SCHEMA,
        _ => "system.Artifact",
    }
}

/// kfp 1.8's `sanitize_k8s_name`: lower case, runs of other characters as one `-`.
fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out.trim_matches('-').to_string()
}

/// Argo durations (`30s`, `1m30s`, `2h`, a number of seconds) in seconds.
fn duration_seconds(value: &Value) -> Option<f64> {
    let text = scalar_text(value);
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Some(seconds);
    }
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            0.001
        } else {
            match c {
                'h' => 3600.0,
                'm' => 60.0,
                's' => 1.0,
                _ => return None,
            }
        };
        total += number.parse::<f64>().ok()? * unit;
        number.clear();
        any = true;
    }
    (any && number.is_empty()).then_some(total)
}

fn seconds_text(seconds: f64) -> String {
    if seconds.fract() == 0.0 {
        format!("{}s", seconds as i64)
    } else {
        format!("{seconds}s")
    }
}

/// Whether an ISO 8601 duration (`P0D`, `PT0S`, `P30D`) is zero.
/// Whole seconds of an ISO 8601 duration as kfp 1.8 writes `max_cache_staleness`
/// (`P30D`, `PT1H30M`, `P1W`, `P1DT0.5S`); a year counts 365 days and a month 30, as KFP's
/// cache server counts them. Fractions of a second round down.
fn iso_duration_seconds(text: &str) -> Option<u64> {
    let rest = text.trim().strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) if !time.is_empty() => (date, Some(time)),
        Some(_) => return None,
        None => (rest, None),
    };
    if date.is_empty() && time.is_none() {
        return None;
    }
    const DAY: f64 = 86_400.0;
    let part = |text: &str, units: &[(char, f64)]| -> Option<f64> {
        let mut total = 0.0;
        let mut number = String::new();
        let mut next_unit = 0;
        for c in text.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                number.push(if c == ',' { '.' } else { c });
                continue;
            }
            // Units in their order, each at most once, each after a number.
            let at = units[next_unit..].iter().position(|(u, _)| *u == c)? + next_unit;
            total += number.parse::<f64>().ok()? * units[at].1;
            number.clear();
            next_unit = at + 1;
        }
        number.is_empty().then_some(total)
    };
    let date = part(
        date,
        &[
            ('Y', 365.0 * DAY),
            ('M', 30.0 * DAY),
            ('W', 7.0 * DAY),
            ('D', DAY),
        ],
    )?;
    let time = match time {
        Some(time) => part(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?,
        None => 0.0,
    };
    let total = date + time;
    (total.is_finite() && total < u64::MAX as f64).then_some(total as u64)
}

/// Replaces every occurrence of a declared path in `text` by its placeholder. A match must not
/// continue a longer path or name before it, nor a name after it (a following `/` is fine:
/// a file inside a directory artifact). Longer paths are tried first.
fn substitute_paths(
    text: &str,
    paths: &[(String, String)],
    found: &mut BTreeSet<String>,
) -> String {
    let path_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let mut out = String::new();
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < text.len() {
        let before_ok = i == 0 || {
            let prev = text[..i].chars().next_back().unwrap_or(' ');
            !(path_char(prev) || prev == '/')
        };
        let mut matched = None;
        if before_ok && bytes[i] == b'/' {
            for (path, placeholder) in paths {
                if text[i..].starts_with(path.as_str()) {
                    let after = text[i + path.len()..].chars().next();
                    if after.is_none_or(|c| !path_char(c)) {
                        matched = Some((path, placeholder));
                        break;
                    }
                }
            }
        }
        if let Some((path, placeholder)) = matched {
            out.push_str(placeholder);
            found.insert(path.clone());
            i += path.len();
        } else {
            let c = text[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Every `{{workflow.parameters.x}}` in the strings of `value`.
fn workflow_params_in(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            if let Ok(pieces) = refs::parse(s) {
                for piece in pieces {
                    if let Some(Ref::WorkflowParameter(name)) = piece.as_ref() {
                        out.insert(name.clone());
                    }
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| workflow_params_in(v, out)),
        Value::Object(map) => map.values().for_each(|v| workflow_params_in(v, out)),
        _ => {}
    }
}

impl<'w> Translator<'w> {
    fn new(workflow: &'w Workflow) -> Result<Self, ParseError> {
        let mut templates = BTreeMap::new();
        let mut issues = Vec::new();
        for (index, raw) in workflow.spec.templates.iter().enumerate() {
            let name = raw
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let at = if name.is_empty() {
                format!("spec.templates[{index}]")
            } else {
                template_path(&name)
            };
            if name.is_empty() {
                issues.push(Issue::new(at, "the template has no name"));
                continue;
            }
            match serde_path_to_error::deserialize::<_, Template>(raw.clone()) {
                Ok(template) => {
                    if templates
                        .insert(name.clone(), (template, raw.clone()))
                        .is_some()
                    {
                        issues.push(Issue::new(at, "two templates have this name"));
                    }
                }
                Err(e) => {
                    let inner = e.path().to_string();
                    let path = if inner == "." {
                        at
                    } else {
                        format!("{at}.{inner}")
                    };
                    issues.push(Issue::new(path, e.into_inner().to_string()));
                }
            }
        }
        if !issues.is_empty() {
            return Err(ParseError::Invalid(Issues(issues)));
        }
        let mut translator = Translator {
            workflow,
            templates,
            issues: Vec::new(),
            components: BTreeMap::new(),
            executors: BTreeMap::new(),
            kubernetes: BTreeMap::new(),
            taken: BTreeSet::new(),
            memo: BTreeMap::new(),
            containers: BTreeMap::new(),
            volume_actions: BTreeMap::new(),
            outputs: BTreeMap::new(),
            workflow_params: BTreeMap::new(),
            visiting: Vec::new(),
            root_inputs: workflow
                .spec
                .arguments
                .parameters
                .iter()
                .map(|p| p.name.clone())
                .collect(),
            raw_writers: BTreeMap::new(),
        };
        let names: Vec<String> = translator.templates.keys().cloned().collect();
        for name in names {
            let outputs = translator.output_names(&name);
            translator.outputs.insert(name, outputs);
        }
        Ok(translator)
    }

    fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue::new(path, message));
    }

    fn template(&self, name: &str) -> Option<&Template> {
        self.templates.get(name).map(|(t, _)| t)
    }

    /// A fresh label for a component/executor pair based on `base`.
    fn label(&mut self, base: &str) -> String {
        let base = sanitize(base);
        let base = if base.is_empty() { "task".into() } else { base };
        let mut label = base.clone();
        let mut n = 2;
        while self.taken.contains(&label) {
            label = format!("{base}-{n}");
            n += 1;
        }
        self.taken.insert(label.clone());
        label
    }

    // ---- the pipeline ----------------------------------------------------------------------

    fn pipeline(&mut self) -> PipelineSpec {
        let workflow = self.workflow;
        self.check_workflow_fields();
        let root = self.root().unwrap_or_default();
        let annotation = workflow
            .metadata
            .annotations
            .get(&format!("{KFP}pipeline_spec"))
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str::<Value>(s).ok());
        let name = annotation
            .as_ref()
            .and_then(|a| a.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                workflow
                    .metadata
                    .generate_name
                    .as_deref()
                    .map(|g| g.trim_end_matches('-').to_string())
            })
            .or_else(|| workflow.metadata.name.clone())
            .unwrap_or_default();
        let description = annotation
            .as_ref()
            .and_then(|a| a.get("description"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let sdk_version = workflow
            .metadata
            .annotations
            .get(&format!("{KFP}kfp_sdk_version"))
            .map(scalar_text)
            .map(|v| format!("kfp-{v}"));
        let executors: BTreeMap<String, KubernetesExecutorConfig> =
            std::mem::take(&mut self.kubernetes)
                .into_iter()
                .filter(|(_, config)| *config != KubernetesExecutorConfig::default())
                .collect();
        let platforms = (!executors.is_empty()).then(|| Platforms {
            kubernetes: Some(KubernetesPlatform {
                deployment_spec: KubernetesDeploymentSpec { executors },
                pipeline_config: None,
            }),
            other: BTreeMap::new(),
        });
        PipelineSpec {
            pipeline_info: PipelineInfo {
                name,
                display_name: None,
                description,
            },
            components: std::mem::take(&mut self.components),
            deployment_spec: DeploymentSpec {
                executors: std::mem::take(&mut self.executors),
            },
            root,
            default_pipeline_root: None,
            sdk_version,
            schema_version: Some("2.1.0".into()),
            platforms,
        }
    }

    fn check_workflow_fields(&mut self) {
        const IGNORED: [&str; 14] = [
            "serviceAccountName",
            "parallelism",
            "podGC",
            "ttlStrategy",
            "ttlSecondsAfterFinished",
            "imagePullSecrets",
            "priority",
            "podPriority",
            "podPriorityClassName",
            "securityContext",
            "activeDeadlineSeconds",
            "artifactRepositoryRef",
            "podDisruptionBudget",
            "executor",
        ];
        let workflow = self.workflow;
        for key in workflow.spec.other.keys() {
            if !IGNORED.contains(&key.as_str()) {
                self.issue(
                    format!("spec.{key}"),
                    "this workflow setting is not supported by Coracle",
                );
            }
        }
        for key in workflow.spec.arguments.other.keys() {
            self.issue(format!("spec.arguments.{key}"), "not supported");
        }
        if !workflow.spec.arguments.artifacts.is_empty() {
            self.issue(
                "spec.arguments.artifacts",
                "workflow artifact arguments are not supported",
            );
        }
    }

    /// The root DAG: the entrypoint's tasks (or the entrypoint container as one task), plus
    /// the exit handler's task.
    fn root(&mut self) -> Option<ComponentSpec> {
        let workflow = self.workflow;
        let Some(entry) = workflow.spec.entrypoint.clone() else {
            self.issue(
                "spec.entrypoint",
                "the workflow names no entrypoint template",
            );
            return None;
        };
        let Some(template) = self.template(&entry).cloned() else {
            self.issue(
                "spec.entrypoint",
                format!("template \"{entry}\" is not defined in spec.templates"),
            );
            return None;
        };
        let exit = match &workflow.spec.on_exit {
            None => None,
            Some(name) if self.template(name).is_none() => {
                self.issue(
                    "spec.onExit",
                    format!("template \"{name}\" is not defined in spec.templates"),
                );
                return None;
            }
            Some(name) => Some(name.clone()),
        };
        let arguments: BTreeMap<String, Option<String>> = workflow
            .spec
            .arguments
            .parameters
            .iter()
            .map(|p| (p.name.clone(), p.text()))
            .collect();
        let mut root_params: BTreeMap<String, ParameterSpec> = arguments
            .iter()
            .map(|(name, value)| {
                let mut spec = string_parameter();
                spec.default_value = value.clone().map(Value::String);
                (name.clone(), spec)
            })
            .collect();
        let passed = |params: &[Parameter]| -> Vec<Parameter> {
            params
                .iter()
                .filter(|p| arguments.contains_key(&p.name))
                .map(|p| Parameter {
                    name: p.name.clone(),
                    value: Some(Value::String(format!(
                        "{{{{workflow.parameters.{}}}}}",
                        p.name
                    ))),
                    ..Default::default()
                })
                .collect()
        };
        // The DAG the root is made of.
        let mut dag_template = if template.dag.is_some() {
            // The entrypoint's own inputs are the workflow's arguments by name.
            for p in &template.inputs.parameters {
                if !root_params.contains_key(&p.name) {
                    let mut spec = string_parameter();
                    spec.default_value = p.text().map(Value::String);
                    if p.text().is_none() {
                        self.issue(
                            format!("{}.inputs.parameters", template_path(&entry)),
                            format!(
                                "the entrypoint needs input parameter \"{}\", which spec.arguments.parameters does not give",
                                p.name
                            ),
                        );
                    }
                    root_params.insert(p.name.clone(), spec);
                }
            }
            template.clone()
        } else {
            Template {
                name: entry.clone(),
                dag: Some(Dag {
                    tasks: vec![DagTask {
                        name: entry.clone(),
                        template: Some(entry.clone()),
                        arguments: Arguments {
                            parameters: passed(&template.inputs.parameters),
                            ..Default::default()
                        },
                        ..Default::default()
                    }],
                    other: Default::default(),
                }),
                ..Default::default()
            }
        };
        let mut exit_task = None;
        if let Some(exit) = &exit {
            let exit_template = self.template(exit).cloned().unwrap_or_default();
            let dag = dag_template.dag.get_or_insert_with(Default::default);
            let mut name = exit.clone();
            while dag.tasks.iter().any(|t| t.name == name) {
                name.push_str("-exit");
            }
            dag.tasks.push(DagTask {
                name: name.clone(),
                template: Some(exit.clone()),
                arguments: Arguments {
                    parameters: passed(&exit_template.inputs.parameters),
                    ..Default::default()
                },
                ..Default::default()
            });
            exit_task = Some(name);
        }
        let mut root = self.dag_component(
            &dag_template,
            &template_path(&entry),
            BTreeMap::new(),
            true,
            exit_task.as_deref(),
        );
        let definitions = root.input_definitions.get_or_insert_with(Default::default);
        definitions.parameters = root_params;
        if definitions.parameters.is_empty() && definitions.artifacts.is_empty() {
            root.input_definitions = None;
        }
        Some(root)
    }

    // ---- outputs and workflow parameters of templates -----------------------------------

    fn output_names(&self, name: &str) -> OutputNames {
        let Some(template) = self.template(name) else {
            return OutputNames::default();
        };
        let mut names = OutputNames::default();
        if template.resource.is_some() {
            for p in &template.outputs.parameters {
                let json_path = p.value_from.as_ref().and_then(|v| v.json_path.as_deref());
                if json_path == Some("{.metadata.name}") {
                    names.parameters.insert(p.name.clone(), "name".into());
                }
            }
            return names;
        }
        if template.dag.is_some() {
            for p in &template.outputs.parameters {
                names.parameters.insert(p.name.clone(), p.name.clone());
            }
            for a in &template.outputs.artifacts {
                names.artifacts.insert(a.name.clone(), a.name.clone());
            }
            return names;
        }
        // Container: `<template>-<output>` back to the component's own output name.
        let declared: Vec<String> = template
            .metadata
            .annotations
            .get(&format!("{KFP}component_spec"))
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .and_then(|spec| spec.get("outputs").cloned())
            .and_then(|outputs| outputs.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|o| o.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
        let prefix = format!("{name}-");
        let key_of = |argo: &str| -> String {
            match argo.strip_prefix(&prefix).filter(|rest| !rest.is_empty()) {
                Some(rest) => declared
                    .iter()
                    .find(|d| sanitize(d) == rest)
                    .cloned()
                    .unwrap_or_else(|| rest.to_string()),
                None => argo.to_string(),
            }
        };
        let mut used = BTreeSet::new();
        let mut by_path = BTreeMap::new();
        for a in &template.outputs.artifacts {
            let mut key = key_of(&a.name);
            if used.contains(&key) {
                key = a.name.clone();
            }
            used.insert(key.clone());
            if let Some(path) = &a.path {
                by_path.entry(path.clone()).or_insert_with(|| key.clone());
            }
            names.artifacts.insert(a.name.clone(), key);
        }
        for p in &template.outputs.parameters {
            let path = p.value_from.as_ref().and_then(|v| v.path.clone());
            let key = match path.as_ref().and_then(|path| by_path.get(path)) {
                Some(key) => key.clone(),
                None => {
                    let mut key = key_of(&p.name);
                    if used.contains(&key) {
                        key = p.name.clone();
                    }
                    used.insert(key.clone());
                    if let Some(path) = path {
                        by_path.insert(path, key.clone());
                    }
                    key
                }
            };
            names.parameters.insert(p.name.clone(), key);
        }
        names
    }

    /// The workflow parameters a template reads, itself or through the templates it calls.
    fn workflow_params(&mut self, name: &str) -> BTreeSet<String> {
        if let Some(known) = self.workflow_params.get(name) {
            return known.clone();
        }
        if self.visiting.iter().any(|v| v == name) {
            // Reported as recursion where the call is made.
            return BTreeSet::new();
        }
        let Some((template, raw)) = self.templates.get(name).cloned() else {
            return BTreeSet::new();
        };
        self.visiting.push(name.to_string());
        let mut params = BTreeSet::new();
        workflow_params_in(&raw, &mut params);
        if let Some(dag) = &template.dag {
            for task in &dag.tasks {
                if let Some(called) = &task.template {
                    params.extend(self.workflow_params(called));
                }
            }
        }
        self.visiting.pop();
        self.workflow_params
            .insert(name.to_string(), params.clone());
        params
    }

    /// Whether `name` (transitively) calls `target`.
    fn calls(&self, name: &str, target: &str, seen: &mut BTreeSet<String>) -> bool {
        if !seen.insert(name.to_string()) {
            return false;
        }
        let Some(dag) = self.template(name).and_then(|t| t.dag.as_ref()) else {
            return false;
        };
        dag.tasks
            .iter()
            .filter_map(|t| t.template.as_deref())
            .any(|called| called == target || self.calls(called, target, seen))
    }

    // ---- DAGs --------------------------------------------------------------------------------

    fn dag_component(
        &mut self,
        template: &Template,
        path: &str,
        items: BTreeMap<String, ItemSource>,
        is_root: bool,
        exit_task: Option<&str>,
    ) -> ComponentSpec {
        let empty = Dag::default();
        let dag = template.dag.as_ref().unwrap_or(&empty);
        self.check_template_fields(template, path, "dag");
        for key in dag.other.keys() {
            if !matches!(key.as_str(), "failFast" | "target") {
                self.issue(format!("{path}.dag.{key}"), "not supported");
            }
        }
        let ctx = Ctx {
            path: path.to_string(),
            is_root,
            params: template
                .inputs
                .parameters
                .iter()
                .filter(|p| !items.contains_key(&p.name))
                .map(|p| p.name.clone())
                .collect(),
            artifacts: template
                .inputs
                .artifacts
                .iter()
                .map(|a| a.name.clone())
                .collect(),
            items,
            tasks: dag
                .tasks
                .iter()
                .map(|t| (t.name.clone(), t.template.clone().unwrap_or_default()))
                .collect(),
            looping: dag
                .tasks
                .iter()
                .filter(|t| {
                    t.with_items.is_some() || t.with_param.is_some() || t.with_sequence.is_some()
                })
                .map(|t| t.name.clone())
                .collect(),
        };
        let mut inputs = InterfaceDefinitions::default();
        if !is_root {
            for p in &template.inputs.parameters {
                if !ctx.items.contains_key(&p.name) {
                    inputs.parameters.insert(p.name.clone(), untyped(p.text()));
                }
            }
            for name in self.workflow_params(&template.name) {
                inputs
                    .parameters
                    .insert(format!("workflow.parameters.{name}"), untyped(None));
            }
        }
        for a in &template.inputs.artifacts {
            let mut spec = artifact_spec("system.Artifact");
            spec.is_optional = a.optional.unwrap_or(false);
            inputs.artifacts.insert(a.name.clone(), spec);
        }
        let mut spec = DagSpec::default();
        let mut seen = BTreeSet::new();
        let body: Vec<String> = dag
            .tasks
            .iter()
            .map(|t| t.name.clone())
            .filter(|t| Some(t.as_str()) != exit_task)
            .collect();
        for task in &dag.tasks {
            let at = format!("{path}.dag.tasks[{}]", task.name);
            if task.name.is_empty() {
                self.issue(&at, "the task has no name");
                continue;
            }
            if !seen.insert(task.name.clone()) {
                self.issue(&at, "two tasks of this DAG have this name");
                continue;
            }
            let exit = (Some(task.name.as_str()) == exit_task).then_some(body.as_slice());
            self.dag_task(&ctx, task, &at, &mut spec, exit);
        }
        // DAG outputs.
        let mut outputs = InterfaceDefinitions::default();
        let mut dag_outputs = DagOutputsSpec::default();
        for (i, p) in template.outputs.parameters.iter().enumerate() {
            let at = format!("{path}.outputs.parameters[{i}]");
            let source = p.value_from.as_ref().and_then(|v| v.parameter.as_deref());
            let reference = source
                .and_then(|s| refs::parse(s).ok())
                .and_then(|pieces| refs::single(&pieces).cloned());
            match reference {
                Some(Ref::TaskParameter { task, name }) => {
                    if let Some(key) = self.task_output(&ctx, &task, &name, false, &at) {
                        outputs.parameters.insert(p.name.clone(), string_parameter());
                        dag_outputs.parameters.insert(
                            p.name.clone(),
                            DagOutputParameterSpec {
                                value_from_parameter: Some(OutputParameterSelector {
                                    producer_subtask: task,
                                    output_parameter_key: key,
                                }),
                                value_from_oneof: None,
                            },
                        );
                    }
                }
                _ => self.issue(
                    at,
                    "a DAG output parameter must be valueFrom.parameter: {{tasks.<task>.outputs.parameters.<name>}}",
                ),
            }
        }
        for (i, a) in template.outputs.artifacts.iter().enumerate() {
            let at = format!("{path}.outputs.artifacts[{i}]");
            let reference = a
                .from
                .as_deref()
                .and_then(|s| refs::parse(s).ok())
                .and_then(|pieces| refs::single(&pieces).cloned());
            match reference {
                Some(Ref::TaskArtifact { task, name }) => {
                    if let Some(key) = self.task_output(&ctx, &task, &name, true, &at) {
                        outputs
                            .artifacts
                            .insert(a.name.clone(), artifact_spec("system.Artifact"));
                        dag_outputs.artifacts.insert(
                            a.name.clone(),
                            DagOutputArtifactSpec {
                                artifact_selectors: vec![OutputArtifactSelector {
                                    producer_subtask: task,
                                    output_artifact_key: key,
                                }],
                            },
                        );
                    }
                }
                _ => self.issue(
                    at,
                    "a DAG output artifact must be from: {{tasks.<task>.outputs.artifacts.<name>}}",
                ),
            }
        }
        if !dag_outputs.parameters.is_empty() || !dag_outputs.artifacts.is_empty() {
            spec.outputs = Some(dag_outputs);
        }
        ComponentSpec {
            input_definitions: (!inputs.parameters.is_empty() || !inputs.artifacts.is_empty())
                .then_some(inputs),
            output_definitions: (!outputs.parameters.is_empty() || !outputs.artifacts.is_empty())
                .then_some(outputs),
            dag: Some(spec),
            executor_label: None,
        }
    }

    /// The IR key of output `name` of task `task`, checking it exists.
    fn task_output(
        &mut self,
        ctx: &Ctx,
        task: &str,
        name: &str,
        artifact: bool,
        at: &str,
    ) -> Option<String> {
        let what = if artifact { "artifact" } else { "parameter" };
        let Some(template) = ctx.tasks.get(task).cloned() else {
            self.issue(at, format!("task \"{task}\" is not in this DAG"));
            return None;
        };
        if ctx.looping.contains(task) {
            self.issue(
                at,
                format!("task \"{task}\" loops; reading the outputs of a loop is not supported"),
            );
            return None;
        }
        let names = self.outputs.get(&template).cloned().unwrap_or_default();
        let map = if artifact {
            &names.artifacts
        } else {
            &names.parameters
        };
        match map.get(name) {
            Some(key) => Some(key.clone()),
            None => {
                let is_volume = self
                    .template(&template)
                    .is_some_and(|t| t.resource.is_some());
                let hint = if is_volume {
                    " (of a VolumeOp, only the volume's name is known)"
                } else {
                    ""
                };
                self.issue(
                    at,
                    format!("task \"{task}\" (template \"{template}\") has no output {what} \"{name}\"{hint}"),
                );
                None
            }
        }
    }

    /// Where a reference, in the terms of DAG `ctx`, gets its value.
    fn ref_source(
        &mut self,
        ctx: &Ctx,
        r: &Ref,
        tag: &str,
        at: &str,
    ) -> Option<ParameterInputSpec> {
        match r {
            Ref::InputParameter(name) => {
                if let Some(item) = ctx.items.get(name) {
                    Some(ParameterInputSpec {
                        component_input_parameter: Some(item.input.clone()),
                        parameter_expression_selector: item.selector.clone(),
                        ..Default::default()
                    })
                } else if ctx.params.contains(name) {
                    Some(component_input(name))
                } else {
                    self.issue(
                        at,
                        format!(
                            "{tag}: template declares no input parameter \"{name}\" (in {})",
                            ctx.path
                        ),
                    );
                    None
                }
            }
            Ref::TaskParameter { task, name } => {
                let key = self.task_output(ctx, task, name, false, at)?;
                Some(ParameterInputSpec {
                    task_output_parameter: Some(TaskOutputParameterSpec {
                        producer_task: task.clone(),
                        output_parameter_key: key,
                    }),
                    ..Default::default()
                })
            }
            Ref::WorkflowParameter(name) => {
                if !self.root_inputs.contains(name) {
                    self.issue(
                        at,
                        format!("{tag}: spec.arguments.parameters has no parameter \"{name}\""),
                    );
                    return None;
                }
                Some(if ctx.is_root {
                    component_input(name)
                } else {
                    component_input(&format!("workflow.parameters.{name}"))
                })
            }
            Ref::System(s) => Some(constant(refs::system_text(*s))),
            Ref::Namespace => Some(constant("default")),
            Ref::WorkflowStatus => {
                self.issue(
                    at,
                    format!("{tag} is only known to the exit handler's template (spec.onExit)"),
                );
                None
            }
            Ref::Item(_) => {
                self.issue(
                    at,
                    format!("{tag} is only allowed in the arguments of a task with withItems, withParam or withSequence"),
                );
                None
            }
            Ref::InputArtifact(_)
            | Ref::TaskArtifact { .. }
            | Ref::InputArtifactPath(_)
            | Ref::OutputArtifactPath(_)
            | Ref::OutputParameterPath(_) => {
                self.issue(at, format!("{tag} is not a parameter value here"));
                None
            }
        }
    }

    /// A text in the terms of DAG `ctx` as a task input: a constant, one reference, or a
    /// constant with placeholders of extra `pipelinechannel--{hint}-N` inputs.
    fn text_source(
        &mut self,
        ctx: &Ctx,
        text: &str,
        at: &str,
        hint: &str,
        extra: &mut BTreeMap<String, ParameterInputSpec>,
    ) -> Option<ParameterInputSpec> {
        let pieces = match refs::parse(text) {
            Ok(pieces) => pieces,
            Err(e) => {
                self.issue(at, e);
                return None;
            }
        };
        if let Some(r) = refs::single(&pieces) {
            let tag = match &pieces[0] {
                Piece::Ref(_, tag) => tag.clone(),
                Piece::Text(_) => String::new(),
            };
            return self.ref_source(ctx, r, &tag, at);
        }
        let mut out = String::new();
        for (index, piece) in pieces.iter().enumerate() {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Ref(Ref::System(s), _) => out.push_str(refs::system_text(*s)),
                Piece::Ref(Ref::Namespace, _) => out.push_str("default"),
                Piece::Ref(r, tag) => {
                    let source = self.ref_source(ctx, r, tag, at)?;
                    let name = format!("pipelinechannel--{hint}-{index}");
                    out.push_str(&format!("{{{{$.inputs.parameters['{name}']}}}}"));
                    extra.insert(name, source);
                }
            }
        }
        Some(constant(out))
    }

    /// A name (PVC, secret, config map) for one use of a template: the template's text with
    /// its inputs replaced by what the task passes, as one source the engine resolves.
    fn name_source(
        &mut self,
        ctx: &Ctx,
        name: &NameText,
        binding: &BTreeMap<String, String>,
    ) -> Option<ParameterInputSpec> {
        let text = self.bind(&name.text, binding, &name.at)?;
        let mut extra = BTreeMap::new();
        let source = self.text_source(ctx, &text, &name.at, "name", &mut extra)?;
        let interpolated = source
            .runtime_value
            .as_ref()
            .and_then(|v| v.constant.as_str())
            .is_some_and(|s| s.contains("{{$"));
        if !extra.is_empty() || interpolated || source.parameter_expression_selector.is_some() {
            self.issue(
                &name.at,
                format!(
                    "{:?}: a volume, secret or config map name must be a constant or one parameter",
                    name.text
                ),
            );
            return None;
        }
        Some(source)
    }

    /// `text` of a template with `{{inputs.parameters.x}}` replaced by the task's argument.
    fn bind(&mut self, text: &str, binding: &BTreeMap<String, String>, at: &str) -> Option<String> {
        let pieces = match refs::parse(text) {
            Ok(pieces) => pieces,
            Err(e) => {
                self.issue(at, e);
                return None;
            }
        };
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => out.push_str(&t),
                Piece::Ref(Ref::InputParameter(name), tag) => match binding.get(&name) {
                    Some(value) => out.push_str(value),
                    None => {
                        self.issue(at, format!("{tag}: the template's input has no value here"));
                        return None;
                    }
                },
                Piece::Ref(_, tag) => out.push_str(&tag),
            }
        }
        Some(out)
    }

    fn dag_task(
        &mut self,
        ctx: &Ctx,
        task: &DagTask,
        at: &str,
        dag: &mut DagSpec,
        exit_body: Option<&[String]>,
    ) {
        for key in task.other.keys() {
            let what = match key.as_str() {
                "templateRef" => "templates of other workflows (templateRef) are not supported",
                "continueOn" => "continueOn is not supported",
                "onExit" | "hooks" => "task exit handlers are not supported (use spec.onExit)",
                "inline" => "inline templates are not supported",
                _ => "not supported",
            };
            self.issue(format!("{at}.{key}"), what);
        }
        let Some(template_name) = task.template.clone() else {
            self.issue(format!("{at}.template"), "the task names no template");
            return;
        };
        let Some(template) = self.template(&template_name).cloned() else {
            self.issue(
                format!("{at}.template"),
                format!("template \"{template_name}\" is not defined in spec.templates"),
            );
            return;
        };
        if template.dag.is_some()
            && self.calls(&template_name, &template_name, &mut BTreeSet::new())
        {
            self.issue(
                format!("{at}.template"),
                format!("template \"{template_name}\" calls itself; recursive pipelines are not supported"),
            );
            return;
        }
        let mut spec = TaskSpec {
            task_info: TaskInfo {
                name: task.name.clone(),
            },
            ..Default::default()
        };
        let mut inputs = BTreeMap::new();
        // Dependencies.
        let mut dependencies: Vec<String> = task.dependencies.clone();
        if let Some(depends) = &task.depends {
            for part in depends.split("&&") {
                let part = part.trim();
                let name = part.strip_suffix(".Succeeded").unwrap_or(part);
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    self.issue(
                        format!("{at}.depends"),
                        format!(
                            "{depends:?}: only \"a && b\" (optionally with .Succeeded) is supported"
                        ),
                    );
                    break;
                }
                dependencies.push(name.to_string());
            }
        }
        for dep in &dependencies {
            if !ctx.tasks.contains_key(dep) {
                self.issue(
                    format!("{at}.dependencies"),
                    format!("task \"{dep}\" is not in this DAG"),
                );
            } else if !spec.dependent_tasks.contains(dep) {
                spec.dependent_tasks.push(dep.clone());
            }
        }
        if let Some(body) = exit_body {
            for name in body {
                if !spec.dependent_tasks.contains(name) {
                    spec.dependent_tasks.push(name.clone());
                }
            }
            spec.trigger_policy = Some(TriggerPolicy {
                condition: None,
                strategy: Some(TriggerStrategy::AllUpstreamTasksCompleted),
            });
        }
        // Condition.
        if let Some(condition) = &task.when {
            let mut references: Vec<(String, Ref, String)> = Vec::new();
            let cel = {
                let mut input = |r: &Ref, tag: &str| -> Result<String, String> {
                    if matches!(r, Ref::Item(_)) {
                        return Err(format!("{tag}: conditions on loop items are not supported"));
                    }
                    let name = format!("pipelinechannel--condition-{}", references.len());
                    references.push((name.clone(), r.clone(), tag.to_string()));
                    Ok(name)
                };
                when::to_cel(condition, &mut input)
            };
            match cel {
                Err(e) => self.issue(format!("{at}.when"), format!("{condition:?}: {e}")),
                Ok(cel) => {
                    let mut ok = true;
                    for (name, r, tag) in references {
                        match self.ref_source(ctx, &r, &tag, &format!("{at}.when")) {
                            Some(source) => {
                                inputs.insert(name.clone(), source);
                            }
                            None => ok = false,
                        }
                    }
                    if ok {
                        let policy = spec.trigger_policy.get_or_insert_with(Default::default);
                        policy.condition = Some(cel);
                    }
                }
            }
        }
        let looping =
            task.with_items.is_some() || task.with_param.is_some() || task.with_sequence.is_some();
        let component = if looping {
            self.loop_task(ctx, task, &template, at, &mut spec, &mut inputs)
        } else {
            self.call(
                ctx,
                task,
                &template,
                at,
                &mut spec,
                &mut inputs,
                dag,
                exit_body,
            )
        };
        let Some(component) = component else {
            return;
        };
        spec.component_ref = ComponentRef { name: component };
        spec.inputs.parameters = inputs;
        dag.tasks.insert(task.name.clone(), spec);
    }

    /// A task that runs its template once: its inputs from the arguments, and the
    /// component for this use.
    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        ctx: &Ctx,
        task: &DagTask,
        template: &Template,
        at: &str,
        spec: &mut TaskSpec,
        inputs: &mut BTreeMap<String, ParameterInputSpec>,
        dag: &mut DagSpec,
        exit_body: Option<&[String]>,
    ) -> Option<String> {
        let declared: BTreeSet<&str> = template
            .inputs
            .parameters
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        // Template inputs: the task's arguments, else the template's defaults.
        let mut binding = BTreeMap::new();
        let mut given = Vec::new();
        for (i, p) in task.arguments.parameters.iter().enumerate() {
            let pat = format!("{at}.arguments.parameters[{i}]");
            if !declared.contains(p.name.as_str()) {
                continue;
            }
            let Some(text) = p.text() else {
                self.issue(&pat, format!("argument \"{}\" has no value", p.name));
                continue;
            };
            binding.insert(p.name.clone(), text.clone());
            given.push((p.name.clone(), text, pat));
        }
        for p in &template.inputs.parameters {
            if binding.contains_key(&p.name) {
                continue;
            }
            match p.text() {
                Some(default) => {
                    binding.insert(p.name.clone(), default);
                }
                None if exit_body.is_some() => {
                    self.issue(
                        format!("{}.inputs.parameters", template_path(&template.name)),
                        format!("the exit handler needs input parameter \"{}\", which spec.arguments.parameters does not give", p.name),
                    );
                }
                None => self.issue(
                    format!("{at}.arguments"),
                    format!(
                        "template \"{}\" needs input parameter \"{}\", which the task does not give",
                        template.name, p.name
                    ),
                ),
            }
        }
        if template.resource.is_some() || is_kubectl_delete(template) {
            return self.volume_use(ctx, template, &binding, spec, inputs);
        }
        for (name, text, pat) in given {
            if let Some(source) = self.text_source(ctx, &text, &pat, &sanitize(&name), inputs) {
                inputs.insert(name, source);
            }
        }
        self.pass_workflow_params(ctx, &template.name, inputs);
        if template.dag.is_some() {
            let mut artifacts = BTreeMap::new();
            self.artifact_arguments(ctx, task, template, at, &binding, &mut artifacts, dag);
            spec.inputs.artifacts = artifacts;
            return Some(self.dag_use(template, BTreeMap::new()));
        }
        if template.container.is_none() {
            self.unsupported_kind(template);
            return None;
        }
        let parts = self.container_parts(template)?;
        let mut artifacts = BTreeMap::new();
        self.artifact_arguments(ctx, task, template, at, &binding, &mut artifacts, dag);
        spec.inputs.artifacts = artifacts;
        if parts.uses_status {
            match exit_body {
                Some([body]) => {
                    inputs.insert(
                        STATUS_INPUT.into(),
                        ParameterInputSpec {
                            task_final_status: Some(TaskFinalStatusSpec {
                                producer_task: body.clone(),
                            }),
                            parameter_expression_selector: Some(STATUS_SELECTOR.into()),
                            ..Default::default()
                        },
                    );
                }
                Some(_) => self.issue(
                    template_path(&template.name),
                    "{{workflow.status}} is supported when the entrypoint DAG has one task (as kfp's ExitHandler writes it)",
                ),
                None => self.issue(
                    template_path(&template.name),
                    "{{workflow.status}} is only known to the exit handler's template (spec.onExit)",
                ),
            }
        }
        let settings = self.task_settings(template);
        spec.retry_policy = settings.retry;
        spec.caching_options = settings.caching;
        if let Some(display) = settings.display {
            spec.task_info.name = display;
        }
        let pod = self.pod_config(ctx, &parts.pod, &binding);
        Some(self.container_use(template, &parts, pod))
    }

    /// The workflow parameters template `name` reads, passed down from DAG `ctx`.
    fn pass_workflow_params(
        &mut self,
        ctx: &Ctx,
        name: &str,
        inputs: &mut BTreeMap<String, ParameterInputSpec>,
    ) {
        for param in self.workflow_params(name) {
            if !self.root_inputs.contains(&param) {
                continue; // reported where it is read
            }
            let from = if ctx.is_root {
                param.clone()
            } else {
                format!("workflow.parameters.{param}")
            };
            inputs.insert(
                format!("workflow.parameters.{param}"),
                component_input(&from),
            );
        }
    }

    /// An artifact argument's `from`: another task's output or an input of this DAG.
    fn artifact_source(&mut self, ctx: &Ctx, a: &Artifact, aat: &str) -> Option<ArtifactInputSpec> {
        for key in a.other.keys() {
            self.issue(
                format!("{aat}.{key}"),
                "artifact sources other than from and raw are not supported",
            );
        }
        let Some(from) = &a.from else {
            if a.other.is_empty() {
                self.issue(aat, "the artifact argument has no from");
            }
            return None;
        };
        let reference = match refs::parse(from) {
            Ok(pieces) => refs::single(&pieces).cloned(),
            Err(e) => {
                self.issue(format!("{aat}.from"), e);
                return None;
            }
        };
        match reference {
            Some(Ref::TaskArtifact {
                task: producer,
                name,
            }) => {
                let key = self.task_output(ctx, &producer, &name, true, &format!("{aat}.from"))?;
                Some(ArtifactInputSpec {
                    task_output_artifact: Some(TaskOutputArtifactSpec {
                        producer_task: producer,
                        output_artifact_key: key,
                    }),
                    component_input_artifact: None,
                })
            }
            Some(Ref::InputArtifact(name)) if ctx.artifacts.contains(&name) => {
                Some(ArtifactInputSpec {
                    task_output_artifact: None,
                    component_input_artifact: Some(name),
                })
            }
            _ => {
                self.issue(
                    format!("{aat}.from"),
                    format!("{from:?}: expected {{{{tasks.<task>.outputs.artifacts.<name>}}}} or {{{{inputs.artifacts.<name>}}}} of this DAG"),
                );
                None
            }
        }
    }

    /// The input artifacts of a task: from another task, from the DAG's inputs, or raw data
    /// written by a small task first.
    #[allow(clippy::too_many_arguments)]
    fn artifact_arguments(
        &mut self,
        ctx: &Ctx,
        task: &DagTask,
        template: &Template,
        at: &str,
        binding: &BTreeMap<String, String>,
        out: &mut BTreeMap<String, ArtifactInputSpec>,
        dag: &mut DagSpec,
    ) {
        let raw_in_template: BTreeMap<String, String> = template
            .inputs
            .artifacts
            .iter()
            .filter_map(|a| a.raw.as_ref().map(|r| (a.name.clone(), r.data.clone())))
            .collect();
        for (i, a) in task.arguments.artifacts.iter().enumerate() {
            let aat = format!("{at}.arguments.artifacts[{i}]");
            if !template.inputs.artifacts.iter().any(|d| d.name == a.name) {
                self.issue(
                    &aat,
                    format!(
                        "template \"{}\" has no input artifact \"{}\"",
                        template.name, a.name
                    ),
                );
                continue;
            }
            let source = match &a.raw {
                Some(raw) => {
                    self.raw_writer(ctx, &raw.data, template, &task.name, &a.name, &aat, dag)
                }
                None => self.artifact_source(ctx, a, &aat),
            };
            if let Some(source) = source {
                out.insert(a.name.clone(), source);
            }
        }
        for a in &template.inputs.artifacts {
            if out.contains_key(&a.name)
                || task.arguments.artifacts.iter().any(|g| g.name == a.name)
            {
                continue;
            }
            if let Some(data) = raw_in_template.get(&a.name) {
                let Some(text) = self.bind(
                    data,
                    binding,
                    &format!("{}.inputs.artifacts", template_path(&template.name)),
                ) else {
                    continue;
                };
                if let Some(source) =
                    self.raw_writer(ctx, &text, template, &task.name, &a.name, at, dag)
                {
                    out.insert(a.name.clone(), source);
                }
            } else if !a.optional.unwrap_or(false) {
                self.issue(
                    format!("{at}.arguments"),
                    format!(
                        "template \"{}\" needs input artifact \"{}\", which the task does not give",
                        template.name, a.name
                    ),
                );
            }
        }
    }

    /// A task that writes raw data (text in the terms of `ctx`) to an artifact, in the
    /// consumer's image; the source of the consumer's input artifact.
    #[allow(clippy::too_many_arguments)]
    fn raw_writer(
        &mut self,
        ctx: &Ctx,
        data: &str,
        consumer: &Template,
        task: &str,
        artifact: &str,
        at: &str,
        dag: &mut DagSpec,
    ) -> Option<ArtifactInputSpec> {
        let image = consumer
            .container
            .as_ref()
            .and_then(|c| c.image.clone())
            .unwrap_or_else(|| "alpine".to_string());
        let mut inputs = BTreeMap::new();
        let source = self.text_source(ctx, data, at, "data", &mut inputs)?;
        inputs.insert("data".to_string(), source);
        let component = match self.raw_writers.get(&image) {
            Some(name) => name.clone(),
            None => {
                let label = self.label("raw-data");
                let mut input_definitions = InterfaceDefinitions::default();
                input_definitions
                    .parameters
                    .insert("data".into(), untyped(None));
                let mut output_definitions = InterfaceDefinitions::default();
                output_definitions
                    .artifacts
                    .insert("data".into(), artifact_spec("system.Artifact"));
                self.components.insert(
                    format!("comp-{label}"),
                    ComponentSpec {
                        input_definitions: Some(input_definitions),
                        output_definitions: Some(output_definitions),
                        dag: None,
                        executor_label: Some(format!("exec-{label}")),
                    },
                );
                self.executors.insert(
                    format!("exec-{label}"),
                    ExecutorSpec {
                        container: Some(ContainerSpec {
                            image: image.clone(),
                            command: vec![
                                "sh".into(),
                                "-c".into(),
                                "mkdir -p \"$(dirname \"$1\")\" && printf '%s' \"$0\" > \"$1\""
                                    .into(),
                                "{{$.inputs.parameters['data']}}".into(),
                                "{{$.outputs.artifacts['data'].path}}".into(),
                            ],
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                );
                let name = format!("comp-{label}");
                self.raw_writers.insert(image, name.clone());
                name
            }
        };
        let mut name = format!("{task}-raw-{}", sanitize(artifact));
        while dag.tasks.contains_key(&name) || ctx.tasks.contains_key(&name) {
            name.push_str("-raw");
        }
        dag.tasks.insert(
            name.clone(),
            TaskSpec {
                task_info: TaskInfo { name: name.clone() },
                component_ref: ComponentRef { name: component },
                inputs: TaskInputsSpec {
                    parameters: inputs,
                    artifacts: BTreeMap::new(),
                },
                caching_options: Some(CachingOptions {
                    enable_cache: true,
                    cache_key: None,
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        Some(ArtifactInputSpec {
            task_output_artifact: Some(TaskOutputArtifactSpec {
                producer_task: name,
                output_artifact_key: "data".into(),
            }),
            component_input_artifact: None,
        })
    }

    /// A DAG template's component for this item context.
    fn dag_use(&mut self, template: &Template, items: BTreeMap<String, ItemSource>) -> String {
        let variant = format!("{items:?}");
        if let Some(name) = self.memo.get(&(template.name.clone(), variant.clone())) {
            return name.clone();
        }
        let label = self.label(&template.name);
        let name = format!("comp-{label}");
        self.memo
            .insert((template.name.clone(), variant), name.clone());
        let component =
            self.dag_component(template, &template_path(&template.name), items, false, None);
        self.components.insert(name.clone(), component);
        name
    }

    /// A looping task: its items, and the DAG each iteration runs.
    fn loop_task(
        &mut self,
        ctx: &Ctx,
        task: &DagTask,
        template: &Template,
        at: &str,
        spec: &mut TaskSpec,
        inputs: &mut BTreeMap<String, ParameterInputSpec>,
    ) -> Option<String> {
        let item_input = format!("pipelinechannel--{}-loop-item", task.name);
        // Arguments made from the item.
        let mut items = BTreeMap::new();
        let mut plain = Vec::new();
        for (i, p) in task.arguments.parameters.iter().enumerate() {
            let pat = format!("{at}.arguments.parameters[{i}]");
            let text = p.text().unwrap_or_default();
            let pieces = match refs::parse(&text) {
                Ok(pieces) => pieces,
                Err(e) => {
                    self.issue(&pat, e);
                    continue;
                }
            };
            let has_item = pieces
                .iter()
                .any(|p| matches!(p.as_ref(), Some(Ref::Item(_))));
            if !has_item {
                plain.push(p.clone());
                continue;
            }
            let selector = match pieces.as_slice() {
                [Piece::Ref(Ref::Item(None), _)] => None,
                [Piece::Ref(Ref::Item(Some(key)), _)] => {
                    Some(format!("parseJson(string_value)[\"{key}\"]"))
                }
                _ => {
                    let mut parts = Vec::new();
                    for piece in &pieces {
                        match piece {
                            Piece::Text(t) => parts.push(format!(
                                "'{}'",
                                t.replace('\\', "\\\\").replace('\'', "\\'")
                            )),
                            Piece::Ref(Ref::Item(None), _) => parts.push("string_value".into()),
                            Piece::Ref(Ref::Item(Some(key)), _) => {
                                parts.push(format!("string(parseJson(string_value)[\"{key}\"])"))
                            }
                            Piece::Ref(_, tag) => {
                                self.issue(
                                    &pat,
                                    format!("{text:?}: {tag} cannot be mixed with {{{{item}}}} in one argument"),
                                );
                                parts.clear();
                                break;
                            }
                        }
                    }
                    if parts.is_empty() {
                        continue;
                    }
                    Some(parts.join(" + "))
                }
            };
            items.insert(
                p.name.clone(),
                ItemSource {
                    input: item_input.clone(),
                    selector,
                },
            );
        }
        // The items.
        let mut iterator = Map::new();
        iterator.insert("itemInput".into(), Value::String(item_input.clone()));
        if let Some(list) = &task.with_items {
            let raw = serde_json::to_string(list).unwrap_or_default();
            iterator.insert("items".into(), json!({ "raw": raw }));
        } else if let Some(param) = &task.with_param {
            let name = "pipelinechannel--loop-items".to_string();
            let source =
                self.text_source(ctx, param, &format!("{at}.withParam"), "loop-items", inputs)?;
            inputs.insert(name.clone(), source);
            iterator.insert("items".into(), json!({ "inputParameter": name }));
        } else if let Some(sequence) = &task.with_sequence {
            let list = self.sequence(sequence, &format!("{at}.withSequence"))?;
            iterator.insert(
                "items".into(),
                json!({ "raw": serde_json::to_string(&list).unwrap_or_default() }),
            );
        }
        spec.parameter_iterator = Some(Value::Object(iterator));
        let limit = template
            .parallelism
            .as_ref()
            .and_then(|v| scalar_text(v).trim().parse::<u64>().ok())
            .filter(|n| *n > 0);
        if let Some(limit) = limit {
            spec.iterator_policy = Some(json!({ "parallelismLimit": limit }));
        }
        // The body: the template itself when it is a DAG, else a DAG around the one task.
        let (body, body_items) = if template.dag.is_some() {
            let declared: BTreeSet<&str> = template
                .inputs
                .parameters
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            for name in items.keys() {
                if !declared.contains(name.as_str()) {
                    self.issue(
                        format!("{at}.arguments"),
                        format!(
                            "template \"{}\" has no input parameter \"{name}\"",
                            template.name
                        ),
                    );
                }
            }
            (template.clone(), items)
        } else {
            let mut wrapper = Template {
                name: template.name.clone(),
                ..Default::default()
            };
            let mut inner = DagTask {
                name: task.name.clone(),
                template: task.template.clone(),
                ..Default::default()
            };
            for p in &task.arguments.parameters {
                wrapper.inputs.parameters.push(Parameter {
                    name: p.name.clone(),
                    ..Default::default()
                });
                inner.arguments.parameters.push(Parameter {
                    name: p.name.clone(),
                    value: Some(Value::String(format!(
                        "{{{{inputs.parameters.{}}}}}",
                        p.name
                    ))),
                    ..Default::default()
                });
            }
            for a in &task.arguments.artifacts {
                if a.raw.is_some() {
                    inner.arguments.artifacts.push(a.clone());
                } else {
                    wrapper.inputs.artifacts.push(Artifact {
                        name: a.name.clone(),
                        ..Default::default()
                    });
                    inner.arguments.artifacts.push(Artifact {
                        name: a.name.clone(),
                        from: Some(format!("{{{{inputs.artifacts.{}}}}}", a.name)),
                        ..Default::default()
                    });
                }
            }
            wrapper.dag = Some(Dag {
                tasks: vec![inner],
                other: Default::default(),
            });
            (wrapper, items)
        };
        // The loop task's own inputs: every argument not made from the item.
        let body_declared: BTreeSet<String> = body
            .inputs
            .parameters
            .iter()
            .map(|p| p.name.clone())
            .collect();
        for (i, p) in plain.iter().enumerate() {
            if !body_declared.contains(&p.name) {
                continue;
            }
            let pat = format!("{at}.arguments.parameters[{i}]");
            let text = p.text().unwrap_or_default();
            if let Some(source) = self.text_source(ctx, &text, &pat, &sanitize(&p.name), inputs) {
                inputs.insert(p.name.clone(), source);
            }
        }
        self.pass_workflow_params(ctx, &template.name, inputs);
        let mut artifacts = BTreeMap::new();
        for (i, a) in task.arguments.artifacts.iter().enumerate() {
            if a.raw.is_some() {
                continue; // written inside each iteration
            }
            let aat = format!("{at}.arguments.artifacts[{i}]");
            if !body.inputs.artifacts.iter().any(|d| d.name == a.name) {
                self.issue(
                    &aat,
                    format!(
                        "template \"{}\" has no input artifact \"{}\"",
                        template.name, a.name
                    ),
                );
                continue;
            }
            if let Some(source) = self.artifact_source(ctx, a, &aat) {
                artifacts.insert(a.name.clone(), source);
            }
        }
        spec.inputs.artifacts = artifacts;
        if template.dag.is_some() {
            Some(self.dag_use(&body, body_items))
        } else {
            let label = self.label(&format!("for-{}", task.name));
            let name = format!("comp-{label}");
            let component = self.dag_component(
                &body,
                &template_path(&template.name),
                body_items,
                false,
                None,
            );
            self.components.insert(name.clone(), component);
            Some(name)
        }
    }

    fn sequence(&mut self, sequence: &BTreeMap<String, Value>, at: &str) -> Option<Vec<Value>> {
        let number = |key: &str| -> Result<Option<i64>, String> {
            match sequence.get(key) {
                None => Ok(None),
                Some(v) => scalar_text(v).trim().parse::<i64>().map(Some).map_err(|_| {
                    format!("{key} must be a whole number (parameters are not supported here)")
                }),
            }
        };
        if let Some(key) = sequence
            .keys()
            .find(|k| !matches!(k.as_str(), "count" | "start" | "end"))
        {
            self.issue(format!("{at}.{key}"), "not supported");
            return None;
        }
        let (count, start, end) = match (number("count"), number("start"), number("end")) {
            (Ok(c), Ok(s), Ok(e)) => (c, s.unwrap_or(0), e),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                self.issue(at, e);
                return None;
            }
        };
        let list: Vec<i64> = match (count, end) {
            (Some(count), _) => (start..start + count.max(0)).collect(),
            (None, Some(end)) if end >= start => (start..=end).collect(),
            (None, Some(end)) => (end..=start).rev().collect(),
            (None, None) => {
                self.issue(at, "a sequence needs count or end");
                return None;
            }
        };
        Some(
            list.into_iter()
                .map(|n| Value::String(n.to_string()))
                .collect(),
        )
    }

    // ---- containers --------------------------------------------------------------------------

    fn unsupported_kind(&mut self, template: &Template) {
        let kind = [
            "steps",
            "script",
            "suspend",
            "data",
            "http",
            "plugin",
            "containerSet",
        ]
        .into_iter()
        .find(|k| template.other.contains_key(*k));
        let message = match kind {
            Some(kind) => format!(
                "{kind} templates are not supported (only container, dag and PVC resource templates)"
            ),
            None => "the template has no container, dag or resource".to_string(),
        };
        self.issue(template_path(&template.name), message);
    }

    /// Template fields other than what `kind` uses: noted when they only matter on a
    /// cluster, refused when they would change what runs.
    fn check_template_fields(
        &mut self,
        template: &Template,
        path: &str,
        kind: &str,
    ) -> Vec<(String, Value)> {
        let mut notes = Vec::new();
        for (key, value) in &template.other {
            match key.as_str() {
                "failFast" | "archiveLocation" | "metrics" | "executor" => {}
                "affinity"
                | "securityContext"
                | "serviceAccountName"
                | "priorityClassName"
                | "priority"
                | "schedulerName"
                | "hostAliases"
                | "podSpecPatch"
                | "automountServiceAccountToken"
                    if kind == "container" =>
                {
                    notes.push((key.clone(), value.clone()));
                }
                "sidecars" | "initContainers" => self.issue(
                    format!("{path}.{key}"),
                    "sidecars and init containers are not supported",
                ),
                "steps" | "script" | "suspend" | "data" | "http" | "plugin" | "containerSet" => {
                    self.issue(
                        format!("{path}.{key}"),
                        format!("{key} templates are not supported"),
                    )
                }
                _ => self.issue(format!("{path}.{key}"), "not supported"),
            }
        }
        if kind == "dag" {
            for (key, present) in [
                ("retryStrategy", template.retry_strategy.is_some()),
                ("container", template.container.is_some()),
                ("resource", template.resource.is_some()),
            ] {
                if present {
                    self.issue(format!("{path}.{key}"), "not supported on a DAG template");
                }
            }
        }
        notes
    }

    fn container_parts(&mut self, template: &Template) -> Option<Rc<ContainerParts>> {
        if let Some(parts) = self.containers.get(&template.name) {
            return parts.clone();
        }
        let parts = self.build_container(template).map(Rc::new);
        self.containers.insert(template.name.clone(), parts.clone());
        parts
    }

    fn build_container(&mut self, template: &Template) -> Option<ContainerParts> {
        let path = template_path(&template.name);
        let before = self.issues.len();
        let notes = self.check_template_fields(template, &path, "container");
        let container = template.container.clone().unwrap_or_default();
        let names = self
            .outputs
            .get(&template.name)
            .cloned()
            .unwrap_or_default();
        let mut component = ComponentSpec::default();
        let mut inputs = InterfaceDefinitions::default();
        let mut outputs = InterfaceDefinitions::default();
        for key in template.inputs.other.keys() {
            self.issue(format!("{path}.inputs.{key}"), "not supported");
        }
        for key in template.outputs.other.keys() {
            self.issue(format!("{path}.outputs.{key}"), "not supported");
        }
        for p in &template.inputs.parameters {
            inputs.parameters.insert(p.name.clone(), untyped(p.text()));
        }
        for name in self.workflow_params(&template.name) {
            inputs
                .parameters
                .insert(format!("workflow.parameters.{name}"), untyped(None));
        }
        // Paths and what replaces them; where each is declared.
        let mut paths: Vec<(String, String)> = Vec::new();
        let mut declared_at: BTreeMap<String, (String, &'static str)> = BTreeMap::new();
        let mut add_path = |this: &mut Self,
                            path_text: &Option<String>,
                            at: String,
                            placeholder: String,
                            what: &'static str| {
            let Some(p) = path_text else {
                this.issue(&at, "the artifact has no path");
                return;
            };
            if !p.starts_with('/') || p.contains("{{") {
                this.issue(
                    format!("{at}.path"),
                    format!("{p:?}: only fixed absolute paths are supported"),
                );
                return;
            }
            if let Some((_, other)) = paths.iter().find(|(q, _)| q == p) {
                if *other != placeholder {
                    this.issue(
                        format!("{at}.path"),
                        format!("{p:?} is also the path of another input or output"),
                    );
                }
                return;
            }
            paths.push((p.clone(), placeholder));
            declared_at.insert(p.clone(), (format!("{at}.path"), what));
        };
        for (i, a) in template.inputs.artifacts.iter().enumerate() {
            let at = format!("{path}.inputs.artifacts[{i}]");
            for key in a.other.keys() {
                if key != "mode" {
                    self.issue(
                        format!("{at}.{key}"),
                        "artifact locations other than raw are not supported",
                    );
                }
            }
            let mut spec = artifact_spec("system.Artifact");
            spec.is_optional = a.optional.unwrap_or(false);
            inputs.artifacts.insert(a.name.clone(), spec);
            add_path(
                self,
                &a.path,
                at,
                format!("{{{{$.inputs.artifacts['{}'].path}}}}", a.name),
                "input",
            );
        }
        for (i, a) in template.outputs.artifacts.iter().enumerate() {
            let at = format!("{path}.outputs.artifacts[{i}]");
            for key in a.other.keys() {
                if !matches!(key.as_str(), "archive" | "globalName" | "mode") {
                    self.issue(format!("{at}.{key}"), "not supported");
                }
            }
            let key = names
                .artifacts
                .get(&a.name)
                .cloned()
                .unwrap_or(a.name.clone());
            let mut spec = artifact_spec(schema_of(&a.name));
            spec.is_optional = a.optional.unwrap_or(false);
            outputs.artifacts.insert(key.clone(), spec);
            add_path(
                self,
                &a.path,
                at,
                format!("{{{{$.outputs.artifacts['{key}'].path}}}}"),
                "output",
            );
        }
        for (i, p) in template.outputs.parameters.iter().enumerate() {
            let at = format!("{path}.outputs.parameters[{i}]");
            let Some(value_from) = &p.value_from else {
                self.issue(&at, "an output parameter needs valueFrom.path");
                continue;
            };
            if value_from.parameter.is_some()
                || value_from.json_path.is_some()
                || !value_from.other.is_empty()
                || value_from.path.is_none()
            {
                self.issue(
                    format!("{at}.valueFrom"),
                    "only valueFrom.path is supported for a container's output parameter",
                );
                continue;
            }
            let key = names
                .parameters
                .get(&p.name)
                .cloned()
                .unwrap_or(p.name.clone());
            outputs.parameters.insert(key.clone(), string_parameter());
            // The parameter is read from the artifact of the same key at its path.
            outputs
                .artifacts
                .entry(key.clone())
                .or_insert_with(|| artifact_spec("system.Artifact"));
            add_path(
                self,
                &value_from.path,
                at,
                format!("{{{{$.outputs.artifacts['{key}'].path}}}}"),
                "output",
            );
        }
        paths.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        // Command, args, env.
        let mut found = BTreeSet::new();
        let mut uses_status = false;
        let mut convert = |this: &mut Self,
                           value: &Value,
                           at: &str,
                           found: &mut BTreeSet<String>|
         -> Option<String> {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) => value.to_string(),
                _ => {
                    this.issue(at, "expected a string");
                    return None;
                }
            };
            let pieces = match refs::parse(&text) {
                Ok(pieces) => pieces,
                Err(e) => {
                    this.issue(at, e);
                    return None;
                }
            };
            let mut out = String::new();
            for piece in pieces {
                match piece {
                    Piece::Text(t) => out.push_str(&substitute_paths(&t, &paths, found)),
                    Piece::Ref(r, tag) => {
                        let text = match &r {
                            Ref::InputParameter(n)
                                if template.inputs.parameters.iter().any(|p| &p.name == n) =>
                            {
                                format!("{{{{$.inputs.parameters['{n}']}}}}")
                            }
                            Ref::InputArtifactPath(n) => {
                                match template.inputs.artifacts.iter().find(|a| &a.name == n) {
                                    Some(a) => {
                                        if let Some(p) = &a.path {
                                            found.insert(p.clone());
                                        }
                                        format!("{{{{$.inputs.artifacts['{n}'].path}}}}")
                                    }
                                    None => {
                                        this.issue(at, format!("{tag}: the template declares no input artifact \"{n}\""));
                                        return None;
                                    }
                                }
                            }
                            Ref::OutputArtifactPath(n) | Ref::OutputParameterPath(n) => {
                                let artifact = matches!(r, Ref::OutputArtifactPath(_));
                                let (key, p) = if artifact {
                                    let a =
                                        template.outputs.artifacts.iter().find(|a| &a.name == n);
                                    (
                                        names.artifacts.get(n).cloned(),
                                        a.and_then(|a| a.path.clone()),
                                    )
                                } else {
                                    let p =
                                        template.outputs.parameters.iter().find(|p| &p.name == n);
                                    (
                                        names.parameters.get(n).cloned(),
                                        p.and_then(|p| p.value_from.as_ref())
                                            .and_then(|v| v.path.clone()),
                                    )
                                };
                                match key {
                                    Some(key) => {
                                        if let Some(p) = p {
                                            found.insert(p);
                                        }
                                        format!("{{{{$.outputs.artifacts['{key}'].path}}}}")
                                    }
                                    None => {
                                        this.issue(
                                            at,
                                            format!("{tag}: the template declares no such output"),
                                        );
                                        return None;
                                    }
                                }
                            }
                            Ref::WorkflowParameter(n) => {
                                if !this.root_inputs.contains(n) {
                                    this.issue(at, format!("{tag}: spec.arguments.parameters has no parameter \"{n}\""));
                                    return None;
                                }
                                format!("{{{{$.inputs.parameters['workflow.parameters.{n}']}}}}")
                            }
                            Ref::System(s) => refs::system_text(*s).to_string(),
                            Ref::Namespace => "default".to_string(),
                            Ref::WorkflowStatus => {
                                uses_status = true;
                                format!("{{{{$.inputs.parameters['{STATUS_INPUT}']}}}}")
                            }
                            Ref::InputParameter(n) => {
                                this.issue(
                                    at,
                                    format!(
                                        "{tag}: the template declares no input parameter \"{n}\""
                                    ),
                                );
                                return None;
                            }
                            _ => {
                                this.issue(at, format!("{tag} cannot be used in a container"));
                                return None;
                            }
                        };
                        out.push_str(&text);
                    }
                }
            }
            Some(out)
        };
        let mut ir = ContainerSpec {
            image: container.image.clone().unwrap_or_default(),
            ..Default::default()
        };
        if ir.image.trim().is_empty() {
            self.issue(
                format!("{path}.container.image"),
                "the container has no image",
            );
        }
        for (i, v) in container.command.iter().enumerate() {
            if let Some(s) = convert(
                self,
                v,
                &format!("{path}.container.command[{i}]"),
                &mut found,
            ) {
                ir.command.push(s);
            }
        }
        for (i, v) in container.args.iter().enumerate() {
            if let Some(s) = convert(self, v, &format!("{path}.container.args[{i}]"), &mut found) {
                ir.args.push(s);
            }
        }
        let mut pod = PodTemplate::default();
        for (i, env) in container.env.iter().enumerate() {
            let at = format!("{path}.container.env[{i}]");
            match (&env.value, &env.value_from) {
                (value, None) => {
                    let value = value.clone().unwrap_or(Value::String(String::new()));
                    if let Some(s) = convert(self, &value, &format!("{at}.value"), &mut found) {
                        ir.env.push(crate::model::EnvVar {
                            name: env.name.clone(),
                            value: s,
                        });
                    }
                }
                (_, Some(from)) => self.env_from(&env.name, from, &at, &mut pod),
            }
        }
        if ir.command.is_empty() && ir.args.is_empty() && self.issues.len() == before {
            self.issue(
                format!("{path}.container.command"),
                "the container has no command (Coracle cannot read an image's entrypoint)",
            );
        }
        if ir.command.is_empty() {
            // The args are the whole command line.
            ir.command = std::mem::take(&mut ir.args);
        }
        for (p, (at, what)) in &declared_at {
            if !found.contains(p) {
                self.issue(
                    at,
                    format!(
                        "{p:?} appears nowhere in the container's command, args or env; Coracle passes a v1 {what} file by rewriting its path there"
                    ),
                );
            }
        }
        // Resources.
        if let Some(resources) = &container.resources {
            let mut spec = ResourceSpec::default();
            let mut text = |this: &mut Self, v: &Value, at: &str| -> Option<String> {
                convert(this, &Value::String(scalar_text(v)), at, &mut found)
            };
            for (kind, map) in [
                ("limits", &resources.limits),
                ("requests", &resources.requests),
            ] {
                for (key, value) in map {
                    let at = format!("{path}.container.resources.{kind}.{key}");
                    let Some(value) = text(self, value, &at) else {
                        continue;
                    };
                    match (kind, key.as_str()) {
                        ("limits", "cpu") => spec.resource_cpu_limit = Some(value),
                        ("limits", "memory") => spec.resource_memory_limit = Some(value),
                        ("requests", "cpu") => spec.resource_cpu_request = Some(value),
                        ("requests", "memory") => spec.resource_memory_request = Some(value),
                        (_, gpu) if gpu.ends_with("/gpu") => {
                            let accelerator = spec.accelerator.get_or_insert_with(Default::default);
                            if kind == "limits" || accelerator.resource_count.is_none() {
                                accelerator.resource_type = Some(gpu.to_string());
                                accelerator.resource_count = Some(value);
                            }
                        }
                        _ => {
                            pod.fixed
                                .other
                                .insert(format!("resources.{kind}.{key}"), Value::String(value));
                        }
                    }
                }
            }
            if spec != ResourceSpec::default() {
                ir.resources = Some(spec);
            }
        }
        // Other container fields.
        for (key, value) in &container.other {
            match key.as_str() {
                "name"
                | "terminationMessagePath"
                | "terminationMessagePolicy"
                | "stdin"
                | "stdinOnce"
                | "tty" => {}
                "ports" | "securityContext" | "livenessProbe" | "readinessProbe"
                | "startupProbe" | "lifecycle" => {
                    pod.fixed
                        .other
                        .insert(format!("container.{key}"), value.clone());
                }
                "workingDir" => self.issue(
                    format!("{path}.container.workingDir"),
                    "a working directory is not supported (tasks run in their own directory)",
                ),
                "envFrom" => self.issue(
                    format!("{path}.container.envFrom"),
                    "envFrom is not supported; name each variable with valueFrom",
                ),
                _ => self.issue(format!("{path}.container.{key}"), "not supported"),
            }
        }
        if let Some(policy) = &container.image_pull_policy {
            pod.fixed.image_pull_policy = Some(policy.clone());
        }
        self.volume_mounts(template, &container, &path, &mut pod);
        // Pod-level settings.
        pod.fixed.active_deadline_seconds =
            match (&template.active_deadline_seconds, &template.timeout) {
                (Some(v), _) => Some(Value::String(scalar_text(v))),
                (None, Some(t)) => match duration_seconds(t) {
                    Some(s) => Some(Value::String((s.ceil() as u64).to_string())),
                    None => {
                        self.issue(format!("{path}.timeout"), format!("{t}: not a duration"));
                        None
                    }
                },
                (None, None) => None,
            };
        if !template.node_selector.is_empty() {
            pod.fixed.node_selector = Some(NodeSelector {
                labels: template
                    .node_selector
                    .iter()
                    .map(|(k, v)| (k.clone(), scalar_text(v)))
                    .collect(),
                node_selector_json: None,
            });
        }
        for toleration in &template.tolerations {
            pod.fixed.tolerations.push(Toleration {
                toleration_json: None,
                fields: toleration.clone(),
            });
        }
        for (key, value) in notes {
            pod.fixed.other.insert(key, value);
        }
        let user = |map: &BTreeMap<String, Value>| -> BTreeMap<String, String> {
            map.iter()
                .filter(|(k, _)| !k.starts_with(KFP) && !k.starts_with("workflows.argoproj.io/"))
                .map(|(k, v)| (k.clone(), scalar_text(v)))
                .collect()
        };
        let labels = user(&template.metadata.labels);
        let annotations = user(&template.metadata.annotations);
        if !labels.is_empty() || !annotations.is_empty() {
            pod.fixed.pod_metadata = Some(PodMetadata {
                labels,
                annotations,
            });
        }
        if uses_status {
            inputs.parameters.insert(STATUS_INPUT.into(), untyped(None));
        }
        if self.issues.len() > before {
            return None;
        }
        component.input_definitions =
            (!inputs.parameters.is_empty() || !inputs.artifacts.is_empty()).then_some(inputs);
        component.output_definitions =
            (!outputs.parameters.is_empty() || !outputs.artifacts.is_empty()).then_some(outputs);
        Some(ContainerParts {
            component,
            executor: ExecutorSpec {
                container: Some(ir),
                ..Default::default()
            },
            pod,
            uses_status,
        })
    }

    fn env_from(&mut self, name: &str, from: &EnvSource, at: &str, pod: &mut PodTemplate) {
        for key in from.other.keys() {
            self.issue(
                format!("{at}.valueFrom.{key}"),
                "only secretKeyRef, configMapKeyRef and fieldRef are supported",
            );
        }
        if let Some(secret) = &from.secret_key_ref {
            pod.secret_env.push((
                NameText {
                    text: secret.name.clone(),
                    at: format!("{at}.valueFrom.secretKeyRef.name"),
                },
                SecretKeyToEnv {
                    secret_key: secret.key.clone(),
                    env_var: name.to_string(),
                },
                secret.optional,
            ));
        }
        if let Some(map) = &from.config_map_key_ref {
            pod.config_map_env.push((
                NameText {
                    text: map.name.clone(),
                    at: format!("{at}.valueFrom.configMapKeyRef.name"),
                },
                ConfigMapKeyToEnv {
                    config_map_key: map.key.clone(),
                    env_var: name.to_string(),
                },
                map.optional,
            ));
        }
        if let Some(field) = &from.field_ref {
            pod.fixed.field_path_as_env.push(FieldPathAsEnv {
                name: name.to_string(),
                field_path: field.field_path.clone(),
            });
        }
    }

    fn volume_mounts(
        &mut self,
        template: &Template,
        container: &Container,
        path: &str,
        pod: &mut PodTemplate,
    ) {
        let workflow = self.workflow;
        for (i, mount) in container.volume_mounts.iter().enumerate() {
            let at = format!("{path}.container.volumeMounts[{i}]");
            if mount.sub_path.is_some() {
                self.issue(format!("{at}.subPath"), "subPath mounts are not supported");
                continue;
            }
            for key in mount.other.keys() {
                if key != "mountPropagation" {
                    self.issue(format!("{at}.{key}"), "not supported");
                }
            }
            if !mount.mount_path.starts_with('/') {
                self.issue(
                    format!("{at}.mountPath"),
                    format!("{:?} is not an absolute path", mount.mount_path),
                );
                continue;
            }
            let volume = template
                .volumes
                .iter()
                .position(|v| v.name == mount.name)
                .map(|index| (format!("{path}.volumes[{index}]"), &template.volumes[index]))
                .or_else(|| {
                    workflow
                        .spec
                        .volumes
                        .iter()
                        .position(|v| v.name == mount.name)
                        .map(|index| {
                            (
                                format!("spec.volumes[{index}]"),
                                &workflow.spec.volumes[index],
                            )
                        })
                });
            let Some((vat, volume)) = volume else {
                self.issue(&at, format!("volume \"{}\" is not declared", mount.name));
                continue;
            };
            let mount_path = mount.mount_path.clone();
            if let Some(claim) = &volume.persistent_volume_claim {
                pod.pvc.push((
                    mount_path,
                    NameText {
                        text: claim.claim_name.clone(),
                        at: format!("{vat}.persistentVolumeClaim.claimName"),
                    },
                ));
            } else if let Some(secret) = &volume.secret {
                if !secret.other.is_empty() {
                    self.issue(
                        format!("{vat}.secret"),
                        "only secretName and optional are supported",
                    );
                }
                pod.secret_volumes.push((
                    NameText {
                        text: secret.secret_name.clone(),
                        at: format!("{vat}.secret.secretName"),
                    },
                    mount_path,
                    secret.optional,
                ));
            } else if let Some(map) = &volume.config_map {
                if !map.other.is_empty() {
                    self.issue(
                        format!("{vat}.configMap"),
                        "only name and optional are supported",
                    );
                }
                pod.config_map_volumes.push((
                    NameText {
                        text: map.name.clone(),
                        at: format!("{vat}.configMap.name"),
                    },
                    mount_path,
                    map.optional,
                ));
            } else if let Some(dir) = &volume.empty_dir {
                pod.fixed.empty_dir_mounts.push(EmptyDirMount {
                    volume_name: volume.name.clone(),
                    mount_path,
                    medium: dir.medium.clone().filter(|m| !m.is_empty()),
                    size_limit: dir.size_limit.as_ref().map(scalar_text),
                });
            } else {
                let kind = volume.other.keys().next().cloned().unwrap_or_default();
                self.issue(
                    vat,
                    format!("{kind} volumes are not supported (only persistentVolumeClaim, secret, configMap and emptyDir)"),
                );
            }
        }
    }

    fn task_settings(&mut self, template: &Template) -> TaskSettings {
        let path = template_path(&template.name);
        let retry = template.retry_strategy.as_ref().and_then(|r| {
            for key in r.other.keys() {
                if !matches!(key.as_str(), "affinity" | "expression") {
                    self.issue(format!("{path}.retryStrategy.{key}"), "not supported");
                }
            }
            let limit = r
                .limit
                .as_ref()
                .map(scalar_text)
                .and_then(|l| l.trim().parse::<i64>().ok());
            let Some(limit) = limit else {
                self.issue(
                    format!("{path}.retryStrategy.limit"),
                    "a retry strategy needs a whole-number limit (unlimited retries are not supported)",
                );
                return None;
            };
            let backoff = r.backoff.clone().unwrap_or_default();
            let duration = |this: &mut Self, v: &Option<Value>, field: &str| -> Option<String> {
                let v = v.as_ref()?;
                match duration_seconds(v) {
                    Some(s) => Some(seconds_text(s)),
                    None => {
                        this.issue(format!("{path}.retryStrategy.backoff.{field}"), format!("{v}: not a duration"));
                        None
                    }
                }
            };
            Some(RetryPolicy {
                max_retry_count: limit,
                backoff_duration: duration(self, &backoff.duration, "duration"),
                backoff_factor: backoff
                    .factor
                    .as_ref()
                    .and_then(|f| scalar_text(f).trim().parse::<f64>().ok()),
                backoff_max_duration: duration(self, &backoff.max_duration, "maxDuration"),
            })
        });
        let text = |map: &BTreeMap<String, Value>, key: &str| {
            map.get(&format!("{KFP}{key}")).map(scalar_text)
        };
        let enabled = text(&template.metadata.labels, "enable_caching")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let staleness = text(&template.metadata.annotations, "max_cache_staleness")
            .filter(|v| !v.trim().is_empty())
            .and_then(|v| match iso_duration_seconds(&v) {
                Some(seconds) => Some(seconds),
                None => {
                    self.issue(
                        format!("{path}.metadata.annotations.{KFP}max_cache_staleness"),
                        format!("{v:?}: not an ISO 8601 duration (e.g. P30D, PT12H, P0D)"),
                    );
                    None
                }
            });
        TaskSettings {
            retry,
            caching: Some(CachingOptions {
                // A staleness of zero means "never reuse": caching off, as in KFP v1.
                enable_cache: enabled && staleness != Some(0),
                cache_key: None,
                max_cache_staleness_seconds: staleness.filter(|s| *s > 0),
            }),
            display: text(&template.metadata.annotations, "task_display_name")
                .filter(|d| !d.is_empty()),
        }
    }

    /// The pod settings of one use of a container template.
    fn pod_config(
        &mut self,
        ctx: &Ctx,
        pod: &PodTemplate,
        binding: &BTreeMap<String, String>,
    ) -> KubernetesExecutorConfig {
        let mut config = pod.fixed.clone();
        for (mount_path, name) in &pod.pvc {
            if let Some(source) = self.name_source(ctx, name, binding) {
                config.pvc_mount.push(PvcMount {
                    mount_path: mount_path.clone(),
                    pvc_name_parameter: Some(source),
                    ..Default::default()
                });
            }
        }
        for (name, pair, optional) in &pod.secret_env {
            if let Some(source) = self.name_source(ctx, name, binding) {
                config.secret_as_env.push(SecretAsEnv {
                    secret_name: None,
                    secret_name_parameter: Some(source),
                    key_to_env: vec![pair.clone()],
                    optional: *optional,
                });
            }
        }
        for (name, mount_path, optional) in &pod.secret_volumes {
            if let Some(source) = self.name_source(ctx, name, binding) {
                config.secret_as_volume.push(SecretAsVolume {
                    secret_name: None,
                    secret_name_parameter: Some(source),
                    mount_path: mount_path.clone(),
                    optional: *optional,
                });
            }
        }
        for (name, pair, optional) in &pod.config_map_env {
            if let Some(source) = self.name_source(ctx, name, binding) {
                config.config_map_as_env.push(ConfigMapAsEnv {
                    config_map_name: None,
                    config_map_name_parameter: Some(source),
                    key_to_env: vec![pair.clone()],
                    optional: *optional,
                });
            }
        }
        for (name, mount_path, optional) in &pod.config_map_volumes {
            if let Some(source) = self.name_source(ctx, name, binding) {
                config.config_map_as_volume.push(ConfigMapAsVolume {
                    config_map_name: None,
                    config_map_name_parameter: Some(source),
                    mount_path: mount_path.clone(),
                    optional: *optional,
                });
            }
        }
        config
    }

    /// The component of one use of a container template: shared by uses with the same pod
    /// settings.
    fn container_use(
        &mut self,
        template: &Template,
        parts: &ContainerParts,
        pod: KubernetesExecutorConfig,
    ) -> String {
        let variant = serde_json::to_string(&pod).unwrap_or_default();
        let key = (template.name.clone(), variant);
        if let Some(name) = self.memo.get(&key) {
            return name.clone();
        }
        let label = self.label(&template.name);
        let mut component = parts.component.clone();
        component.executor_label = Some(format!("exec-{label}"));
        let name = format!("comp-{label}");
        self.components.insert(name.clone(), component);
        self.executors
            .insert(format!("exec-{label}"), parts.executor.clone());
        self.kubernetes.insert(format!("exec-{label}"), pod);
        self.memo.insert(key, name.clone());
        name
    }

    // ---- volumes (VolumeOp) ------------------------------------------------------------------

    fn volume_action(&mut self, template: &Template) -> Option<VolumeAction> {
        if let Some(action) = self.volume_actions.get(&template.name) {
            return action.clone();
        }
        let action = self.build_volume_action(template);
        self.volume_actions
            .insert(template.name.clone(), action.clone());
        action
    }

    fn build_volume_action(&mut self, template: &Template) -> Option<VolumeAction> {
        let path = template_path(&template.name);
        if is_kubectl_delete(template) {
            let command = &template.container.as_ref()?.command;
            let name = command.get(3).map(scalar_text).unwrap_or_default();
            return Some(VolumeAction::Delete {
                name: NameText {
                    text: name,
                    at: format!("{path}.container.command[3]"),
                },
            });
        }
        self.check_template_fields(template, &path, "resource");
        let resource = template.resource.as_ref()?;
        for key in resource.other.keys() {
            if !matches!(
                key.as_str(),
                "successCondition"
                    | "failureCondition"
                    | "setOwnerReference"
                    | "flags"
                    | "mergeStrategy"
            ) {
                self.issue(format!("{path}.resource.{key}"), "not supported");
            }
        }
        let manifest_text = resource.manifest.clone().unwrap_or_default();
        let options = serde_saphyr::options! { strict_booleans: true };
        let manifest: Value = match serde_saphyr::from_str_with_options(&manifest_text, options) {
            Ok(v) => v,
            Err(e) => {
                self.issue(
                    format!("{path}.resource.manifest"),
                    format!(
                        "not valid YAML: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    ),
                );
                return None;
            }
        };
        let kind = manifest
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind != "PersistentVolumeClaim"
            || !matches!(resource.action.as_str(), "create" | "delete")
        {
            self.issue(
                format!("{path}.resource"),
                format!(
                    "only creating or deleting a PersistentVolumeClaim (dsl.VolumeOp) is supported, not action {:?} of kind {kind:?}",
                    resource.action
                ),
            );
            return None;
        }
        let name_text = manifest
            .pointer("/metadata/name")
            .map(scalar_text)
            .unwrap_or_default();
        let name = NameText {
            text: name_text.clone(),
            at: format!("{path}.resource.manifest.metadata.name"),
        };
        if resource.action == "delete" {
            return Some(VolumeAction::Delete { name });
        }
        if let Some(spec) = manifest.get("spec").and_then(Value::as_object) {
            for key in spec.keys() {
                if !matches!(
                    key.as_str(),
                    "accessModes" | "resources" | "storageClassName" | "volumeMode"
                ) {
                    self.issue(
                        format!("{path}.resource.manifest.spec.{key}"),
                        "not supported",
                    );
                }
            }
        }
        let suffix = name_text
            .strip_prefix("{{workflow.name}}")
            .filter(|rest| !rest.contains("{{"))
            .map(str::to_string);
        Some(VolumeAction::Create {
            name,
            suffix,
            size: manifest
                .pointer("/spec/resources/requests/storage")
                .map(scalar_text),
            access_modes: manifest
                .pointer("/spec/accessModes")
                .and_then(Value::as_array)
                .map(|modes| modes.iter().map(scalar_text).collect())
                .unwrap_or_default(),
            storage_class: manifest.pointer("/spec/storageClassName").map(scalar_text),
            annotations: manifest
                .pointer("/metadata/annotations")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        })
    }

    fn volume_use(
        &mut self,
        ctx: &Ctx,
        template: &Template,
        binding: &BTreeMap<String, String>,
        spec: &mut TaskSpec,
        inputs: &mut BTreeMap<String, ParameterInputSpec>,
    ) -> Option<String> {
        let action = self.volume_action(template)?;
        let path = template_path(&template.name);
        let mut definitions = InterfaceDefinitions::default();
        let optional = |ty: ParameterType| ParameterSpec {
            parameter_type: ty,
            default_value: None,
            is_optional: true,
            description: None,
        };
        let value = |this: &mut Self,
                     text: &str,
                     at: &str,
                     extra: &mut BTreeMap<String, ParameterInputSpec>|
         -> Option<ParameterInputSpec> {
            let bound = this.bind(text, binding, at)?;
            this.text_source(ctx, &bound, at, "volume", extra)
        };
        let mut extra = BTreeMap::new();
        let (image, outputs) = match &action {
            VolumeAction::Delete { name } => {
                definitions
                    .parameters
                    .insert("pvc_name".into(), string_parameter());
                let source = value(self, &name.text, &name.at, &mut extra)?;
                inputs.insert("pvc_name".into(), source);
                ("argostub/deletepvc", None)
            }
            VolumeAction::Create {
                name,
                suffix,
                size,
                access_modes,
                storage_class,
                annotations,
            } => {
                definitions
                    .parameters
                    .insert("pvc_name".into(), optional(ParameterType::String));
                definitions
                    .parameters
                    .insert("pvc_name_suffix".into(), optional(ParameterType::String));
                definitions
                    .parameters
                    .insert("size".into(), optional(ParameterType::String));
                definitions
                    .parameters
                    .insert("access_modes".into(), optional(ParameterType::List));
                definitions
                    .parameters
                    .insert("storage_class_name".into(), optional(ParameterType::String));
                definitions
                    .parameters
                    .insert("annotations".into(), optional(ParameterType::Struct));
                match suffix {
                    Some(suffix) => {
                        inputs.insert("pvc_name_suffix".into(), constant(suffix.clone()));
                    }
                    None => {
                        let source = value(self, &name.text, &name.at, &mut extra)?;
                        inputs.insert("pvc_name".into(), source);
                    }
                }
                if let Some(size) = size {
                    let at = format!("{path}.resource.manifest.spec.resources.requests.storage");
                    let source = value(self, size, &at, &mut extra)?;
                    inputs.insert("size".into(), source);
                }
                inputs.insert("access_modes".into(), constant(json!(access_modes)));
                if let Some(class) = storage_class {
                    inputs.insert("storage_class_name".into(), constant(class.clone()));
                }
                if !annotations.is_empty() {
                    inputs.insert(
                        "annotations".into(),
                        constant(Value::Object(annotations.clone())),
                    );
                }
                let mut outputs = InterfaceDefinitions::default();
                outputs.parameters.insert("name".into(), string_parameter());
                ("argostub/createpvc", Some(outputs))
            }
        };
        inputs.extend(extra);
        spec.caching_options = Some(CachingOptions {
            enable_cache: false,
            cache_key: None,
            ..Default::default()
        });
        let label = match self.memo.get(&(template.name.clone(), "volume".into())) {
            Some(name) => return Some(name.clone()),
            None => self.label(&template.name),
        };
        let name = format!("comp-{label}");
        self.components.insert(
            name.clone(),
            ComponentSpec {
                input_definitions: Some(definitions),
                output_definitions: outputs,
                dag: None,
                executor_label: Some(format!("exec-{label}")),
            },
        );
        self.executors.insert(
            format!("exec-{label}"),
            ExecutorSpec {
                container: Some(ContainerSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        self.memo
            .insert((template.name.clone(), "volume".into()), name.clone());
        Some(name)
    }
}

/// `VolumeOp.delete()` in kfp 1.8: a `kubectl delete PersistentVolumeClaim NAME …` container.
fn is_kubectl_delete(template: &Template) -> bool {
    let Some(container) = &template.container else {
        return false;
    };
    let words: Vec<String> = container.command.iter().map(scalar_text).collect();
    matches!(
        words.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
        ["kubectl", "delete", kind, _, ..]
            if matches!(kind.to_ascii_lowercase().as_str(), "persistentvolumeclaim" | "pvc")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_replaced_only_where_they_stand_alone() {
        let paths = vec![
            ("/tmp/outputs/Output/data".to_string(), "<out>".to_string()),
            ("/tmp/out".to_string(), "<short>".to_string()),
        ];
        let mut found = BTreeSet::new();
        assert_eq!(
            substitute_paths("--o=/tmp/outputs/Output/data", &paths, &mut found),
            "--o=<out>"
        );
        assert_eq!(
            substitute_paths(
                "echo hi > /tmp/out; cat /tmp/out/x /tmp/out.txt /x/tmp/out",
                &paths,
                &mut found
            ),
            "echo hi > <short>; cat <short>/x /tmp/out.txt /x/tmp/out"
        );
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn durations_and_names() {
        assert_eq!(duration_seconds(&json!("1m30s")), Some(90.0));
        assert_eq!(duration_seconds(&json!(5)), Some(5.0));
        assert_eq!(duration_seconds(&json!("500ms")), Some(0.5));
        assert_eq!(duration_seconds(&json!("x")), None);
        assert_eq!(iso_duration_seconds("P0D"), Some(0));
        assert_eq!(iso_duration_seconds("PT0S"), Some(0));
        assert_eq!(iso_duration_seconds("P30D"), Some(30 * 86_400));
        assert_eq!(iso_duration_seconds("PT1H30M"), Some(5_400));
        assert_eq!(iso_duration_seconds("P1W"), Some(7 * 86_400));
        assert_eq!(iso_duration_seconds("P1DT2.5S"), Some(86_402));
        assert_eq!(iso_duration_seconds("P1M"), Some(30 * 86_400));
        assert_eq!(iso_duration_seconds("PT1M"), Some(60));
        for bad in ["", "P", "PT", "30D", "P1H", "PD", "P1D1D", "PT1S1H", "P1DT"] {
            assert_eq!(iso_duration_seconds(bad), None, "{bad:?}");
        }
        assert_eq!(sanitize("My_Output  x"), "my-output-x");
    }
}
