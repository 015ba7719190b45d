//! The typed model of KFP's pipeline IR (`PipelineSpec`, schema 2.1.0).
//!
//! Field names follow the IR's camelCase JSON. "One of" fields of the IR are kept as a struct of
//! options here (never `#[serde(untagged)]`) and turned into enums by the accessors, which
//! report which alternative is missing or doubled.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A whole pipeline file: the spec and, optionally, its `platforms` document.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub spec: PipelineSpec,
    /// The second YAML document (`platforms: {kubernetes: …}`), kept as JSON.
    pub platforms: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    pub pipeline_info: PipelineInfo,
    #[serde(default)]
    pub components: BTreeMap<String, ComponentSpec>,
    #[serde(default)]
    pub deployment_spec: DeploymentSpec,
    pub root: ComponentSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_pipeline_root: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    /// The file's `platforms` document (kfp-kubernetes settings), carried with the spec so
    /// that a stored run keeps it. Not part of the IR document itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<crate::platform::Platforms>,
}

impl PipelineSpec {
    /// The Kubernetes settings of executor `label`, when the file has any.
    pub fn kubernetes_executor(
        &self,
        label: &str,
    ) -> Option<&crate::platform::KubernetesExecutorConfig> {
        self.platforms
            .as_ref()?
            .kubernetes
            .as_ref()?
            .deployment_spec
            .executors
            .get(label)
    }

    /// The workspace the pipeline asks for (`pipelineConfig.workspace`), if any.
    pub fn workspace(&self) -> Option<&crate::platform::WorkspaceConfig> {
        self.platforms
            .as_ref()?
            .kubernetes
            .as_ref()?
            .pipeline_config
            .as_ref()?
            .workspace
            .as_ref()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineInfo {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `name:` with no value means no name; validation reports it as such.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    #[serde(default)]
    pub executors: BTreeMap<String, ExecutorSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_definitions: Option<InterfaceDefinitions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_definitions: Option<InterfaceDefinitions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dag: Option<DagSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_label: Option<String>,
}

/// What a component is: a graph of tasks, or one executor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Implementation<'a> {
    Dag(&'a DagSpec),
    Executor(&'a str),
}

impl ComponentSpec {
    /// The component's implementation, or `None` when it has neither or both (validation
    /// reports that).
    pub fn implementation(&self) -> Option<Implementation<'_>> {
        match (&self.dag, &self.executor_label) {
            (Some(dag), None) => Some(Implementation::Dag(dag)),
            (None, Some(label)) => Some(Implementation::Executor(label)),
            _ => None,
        }
    }

    pub fn input_parameters(&self) -> impl Iterator<Item = (&String, &ParameterSpec)> {
        self.input_definitions
            .iter()
            .flat_map(|d| d.parameters.iter())
    }
    pub fn input_artifacts(&self) -> impl Iterator<Item = (&String, &ArtifactSpec)> {
        self.input_definitions
            .iter()
            .flat_map(|d| d.artifacts.iter())
    }
    pub fn output_parameters(&self) -> impl Iterator<Item = (&String, &ParameterSpec)> {
        self.output_definitions
            .iter()
            .flat_map(|d| d.parameters.iter())
    }
    pub fn output_artifacts(&self) -> impl Iterator<Item = (&String, &ArtifactSpec)> {
        self.output_definitions
            .iter()
            .flat_map(|d| d.artifacts.iter())
    }
    pub fn input_parameter(&self, name: &str) -> Option<&ParameterSpec> {
        self.input_definitions.as_ref()?.parameters.get(name)
    }
    pub fn input_artifact(&self, name: &str) -> Option<&ArtifactSpec> {
        self.input_definitions.as_ref()?.artifacts.get(name)
    }
    pub fn output_parameter(&self, name: &str) -> Option<&ParameterSpec> {
        self.output_definitions.as_ref()?.parameters.get(name)
    }
    pub fn output_artifact(&self, name: &str) -> Option<&ArtifactSpec> {
        self.output_definitions.as_ref()?.artifacts.get(name)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceDefinitions {
    #[serde(default)]
    pub parameters: BTreeMap<String, ParameterSpec>,
    #[serde(default)]
    pub artifacts: BTreeMap<String, ArtifactSpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterSpec {
    pub parameter_type: ParameterType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<Value>,
    #[serde(default)]
    pub is_optional: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParameterType {
    NumberDouble,
    NumberInteger,
    String,
    Boolean,
    List,
    Struct,
    TaskFinalStatus,
    #[serde(rename = "PARAMETER_TYPE_ENUM_UNSPECIFIED")]
    Unspecified,
}

impl ParameterType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParameterType::NumberDouble => "NUMBER_DOUBLE",
            ParameterType::NumberInteger => "NUMBER_INTEGER",
            ParameterType::String => "STRING",
            ParameterType::Boolean => "BOOLEAN",
            ParameterType::List => "LIST",
            ParameterType::Struct => "STRUCT",
            ParameterType::TaskFinalStatus => "TASK_FINAL_STATUS",
            ParameterType::Unspecified => "PARAMETER_TYPE_ENUM_UNSPECIFIED",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactSpec {
    pub artifact_type: ArtifactTypeSchema,
    #[serde(default)]
    pub is_artifact_list: bool,
    #[serde(default)]
    pub is_optional: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactTypeSchema {
    #[serde(default)]
    pub schema_title: String,
    #[serde(default)]
    pub schema_version: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DagSpec {
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<DagOutputsSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DagOutputsSpec {
    #[serde(default)]
    pub parameters: BTreeMap<String, DagOutputParameterSpec>,
    #[serde(default)]
    pub artifacts: BTreeMap<String, DagOutputArtifactSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DagOutputParameterSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from_parameter: Option<OutputParameterSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from_oneof: Option<OneOfParameterSelectors>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OneOfParameterSelectors {
    #[serde(default)]
    pub parameter_selectors: Vec<OutputParameterSelector>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputParameterSelector {
    pub producer_subtask: String,
    pub output_parameter_key: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DagOutputArtifactSpec {
    #[serde(default)]
    pub artifact_selectors: Vec<OutputArtifactSelector>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputArtifactSelector {
    pub producer_subtask: String,
    pub output_artifact_key: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    #[serde(default)]
    pub task_info: TaskInfo,
    pub component_ref: ComponentRef,
    #[serde(default)]
    pub dependent_tasks: Vec<String>,
    #[serde(default)]
    pub inputs: TaskInputsSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_policy: Option<TriggerPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_iterator: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_iterator: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterator_policy: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caching_options: Option<CachingOptions>,
}

impl TaskSpec {
    /// The sibling tasks this task waits for: `dependentTasks` plus every producer of its
    /// inputs.
    pub fn upstream_tasks(&self) -> std::collections::BTreeSet<&str> {
        let mut up: std::collections::BTreeSet<&str> =
            self.dependent_tasks.iter().map(String::as_str).collect();
        for input in self.inputs.parameters.values() {
            match input.source() {
                Ok(ParameterSource::TaskOutput { producer_task, .. })
                | Ok(ParameterSource::TaskFinalStatus { producer_task }) => {
                    up.insert(producer_task);
                }
                _ => {}
            }
        }
        for input in self.inputs.artifacts.values() {
            if let Ok(ArtifactSource::TaskOutput { producer_task, .. }) = input.source() {
                up.insert(producer_task);
            }
        }
        up
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInfo {
    #[serde(default)]
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentRef {
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInputsSpec {
    #[serde(default)]
    pub parameters: BTreeMap<String, ParameterInputSpec>,
    #[serde(default)]
    pub artifacts: BTreeMap<String, ArtifactInputSpec>,
}

/// A task input parameter as written in the IR: exactly one source must be set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterInputSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_input_parameter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_output_parameter: Option<TaskOutputParameterSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_value: Option<RuntimeValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_final_status: Option<TaskFinalStatusSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_expression_selector: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOutputParameterSpec {
    pub producer_task: String,
    pub output_parameter_key: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeValue {
    #[serde(default)]
    pub constant: Value,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFinalStatusSpec {
    pub producer_task: String,
}

/// Where a task input parameter comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParameterSource<'a> {
    ComponentInput(&'a str),
    TaskOutput {
        producer_task: &'a str,
        output_key: &'a str,
    },
    Constant(&'a Value),
    TaskFinalStatus {
        producer_task: &'a str,
    },
}

impl ParameterInputSpec {
    /// The one source of this input, or how many were set when not exactly one.
    pub fn source(&self) -> Result<ParameterSource<'_>, usize> {
        let mut found = Vec::with_capacity(1);
        if let Some(name) = &self.component_input_parameter {
            found.push(ParameterSource::ComponentInput(name));
        }
        if let Some(t) = &self.task_output_parameter {
            found.push(ParameterSource::TaskOutput {
                producer_task: &t.producer_task,
                output_key: &t.output_parameter_key,
            });
        }
        if let Some(v) = &self.runtime_value {
            found.push(ParameterSource::Constant(&v.constant));
        }
        if let Some(t) = &self.task_final_status {
            found.push(ParameterSource::TaskFinalStatus {
                producer_task: &t.producer_task,
            });
        }
        if found.len() == 1 {
            Ok(found[0])
        } else {
            Err(found.len())
        }
    }
}

/// A task input artifact as written in the IR: exactly one source must be set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactInputSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_output_artifact: Option<TaskOutputArtifactSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_input_artifact: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOutputArtifactSpec {
    pub producer_task: String,
    pub output_artifact_key: String,
}

/// Where a task input artifact comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArtifactSource<'a> {
    ComponentInput(&'a str),
    TaskOutput {
        producer_task: &'a str,
        output_key: &'a str,
    },
}

impl ArtifactInputSpec {
    pub fn source(&self) -> Result<ArtifactSource<'_>, usize> {
        match (&self.task_output_artifact, &self.component_input_artifact) {
            (Some(t), None) => Ok(ArtifactSource::TaskOutput {
                producer_task: &t.producer_task,
                output_key: &t.output_artifact_key,
            }),
            (None, Some(name)) => Ok(ArtifactSource::ComponentInput(name)),
            (None, None) => Err(0),
            (Some(_), Some(_)) => Err(2),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<TriggerStrategy>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TriggerStrategy {
    TriggerStrategyUnspecified,
    AllUpstreamTasksSucceeded,
    AllUpstreamTasksCompleted,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    #[serde(default)]
    pub max_retry_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_max_duration: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachingOptions {
    #[serde(default)]
    pub enable_cache: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// Coracle's own field, not in KFP's IR: cached results older than this many seconds are
    /// not reused for this task. The v1 front end sets it from kfp 1.8's
    /// `max_cache_staleness` annotation; KFP 2 has no per-task staleness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cache_staleness_seconds: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importer: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_job: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSpec {
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// Container resources. The string fields (newer SDKs) may hold placeholders; the numeric
/// ones are the older form.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_cpu_limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_memory_limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_cpu_request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_memory_request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_request: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_request: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<AcceleratorSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceleratorSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_count: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub accelerator_type: Option<String>,
    /// Older form of `resourceCount`: an int64, which the IR's JSON writes as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Value>,
}
