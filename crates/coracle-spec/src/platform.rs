//! The typed model of the `platforms.kubernetes` document that `kfp-kubernetes` adds to a
//! pipeline file: per-executor pod settings (volumes, secrets, config maps, pod metadata,
//! scheduling hints) and the pipeline's workspace.
//!
//! Names of secrets, config maps and PVCs may be constants or come from parameters (a
//! pipeline input, an upstream task's output): they are kept as [`ParameterInputSpec`]s, with
//! the older plain-name fields, and resolved per task by the engine. Settings this model does
//! not know are kept in `other`, so they can be shown and warned about instead of dropped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{ParameterInputSpec, TaskOutputParameterSpec};

/// The `platforms` document.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Platforms {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesPlatform>,
    /// Platforms other than Kubernetes, kept as written.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesPlatform {
    #[serde(default)]
    pub deployment_spec: KubernetesDeploymentSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_config: Option<PipelineConfig>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesDeploymentSpec {
    /// By executor label (`exec-train`).
    #[serde(default)]
    pub executors: BTreeMap<String, KubernetesExecutorConfig>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<WorkspaceConfig>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// `pvcSpecPatch` and the like: cluster storage details with no local meaning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<Value>,
}

/// One executor's pod settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesExecutorConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pvc_mount: Vec<PvcMount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_as_env: Vec<SecretAsEnv>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_as_volume: Vec<SecretAsVolume>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_map_as_env: Vec<ConfigMapAsEnv>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_map_as_volume: Vec<ConfigMapAsVolume>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub empty_dir_mounts: Vec<EmptyDirMount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_path_as_env: Vec<FieldPathAsEnv>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_metadata: Option<PodMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<NodeSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_affinity: Vec<NodeAffinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secret: Vec<ImagePullSecret>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// The task's time limit; the IR writes this int64 as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<Value>,
    /// Settings not modelled here (generic ephemeral volumes, shared memory, …).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PvcMount {
    pub mount_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc_name_parameter: Option<ParameterInputSpec>,
    /// Older ways of naming the PVC, still written next to `pvcNameParameter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_output_parameter: Option<TaskOutputParameterSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_input_parameter: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretAsEnv {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name_parameter: Option<ParameterInputSpec>,
    #[serde(default)]
    pub key_to_env: Vec<SecretKeyToEnv>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyToEnv {
    pub secret_key: String,
    pub env_var: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretAsVolume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name_parameter: Option<ParameterInputSpec>,
    pub mount_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapAsEnv {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_name_parameter: Option<ParameterInputSpec>,
    #[serde(default)]
    pub key_to_env: Vec<ConfigMapKeyToEnv>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyToEnv {
    pub config_map_key: String,
    pub env_var: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapAsVolume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_name_parameter: Option<ParameterInputSpec>,
    pub mount_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmptyDirMount {
    #[serde(default)]
    pub volume_name: String,
    pub mount_path: String,
    /// `Memory` for a tmpfs on a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldPathAsEnv {
    pub name: String,
    pub field_path: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMetadata {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelector {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector_json: Option<ParameterInputSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_json: Option<ParameterInputSpec>,
    /// `key`, `operator`, `value`, `effect`, `tolerationSeconds` as written.
    #[serde(flatten)]
    pub fields: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAffinity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_affinity_json: Option<ParameterInputSpec>,
    /// `matchExpressions`, `matchFields`, `weight` as written.
    #[serde(flatten)]
    pub fields: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePullSecret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name_parameter: Option<ParameterInputSpec>,
}

/// Where a resource's name comes from: the parameter form when written, else the older plain
/// name. `None` when neither is set.
pub fn name_source(
    parameter: Option<&ParameterInputSpec>,
    plain: Option<&str>,
) -> Option<ParameterInputSpec> {
    match (parameter, plain) {
        (Some(parameter), _) => Some(parameter.clone()),
        (None, Some(name)) => Some(ParameterInputSpec {
            runtime_value: Some(crate::model::RuntimeValue {
                constant: Value::String(name.to_string()),
            }),
            ..ParameterInputSpec::default()
        }),
        (None, None) => None,
    }
}

impl PvcMount {
    /// Where the PVC's name comes from, whichever of the IR's forms is written.
    pub fn name_source(&self) -> Option<ParameterInputSpec> {
        if let Some(parameter) = &self.pvc_name_parameter {
            return Some(parameter.clone());
        }
        if let Some(task) = &self.task_output_parameter {
            return Some(ParameterInputSpec {
                task_output_parameter: Some(task.clone()),
                ..ParameterInputSpec::default()
            });
        }
        if let Some(name) = &self.component_input_parameter {
            return Some(ParameterInputSpec {
                component_input_parameter: Some(name.clone()),
                ..ParameterInputSpec::default()
            });
        }
        name_source(None, self.constant.as_deref())
    }
}
