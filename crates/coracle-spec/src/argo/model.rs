//! The part of Argo's `Workflow` that KFP v1 (kfp 1.8) writes, as serde types. Fields this
//! model does not name land in `other` maps, so the translation can refuse (or note) them
//! instead of silently dropping them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

pub(crate) type Other = BTreeMap<String, Value>;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Workflow {
    #[serde(default)]
    pub metadata: Metadata,
    pub spec: WorkflowSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Metadata {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub generate_name: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WorkflowSpec {
    #[serde(default)]
    pub entrypoint: Option<String>,
    #[serde(default)]
    pub templates: Vec<Value>,
    #[serde(default)]
    pub arguments: Arguments,
    #[serde(default)]
    pub on_exit: Option<String>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Arguments {
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Parameter {
    pub name: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub value_from: Option<ValueFrom>,
}

impl Parameter {
    /// The value or default, as text (YAML may have written a number or a boolean).
    pub fn text(&self) -> Option<String> {
        self.value
            .as_ref()
            .or(self.default.as_ref())
            .map(scalar_text)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ValueFrom {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub parameter: Option<String>,
    #[serde(default)]
    pub json_path: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Artifact {
    pub name: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub raw: Option<RawArtifact>,
    #[serde(default)]
    pub optional: Option<bool>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct RawArtifact {
    #[serde(default)]
    pub data: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Template {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub inputs: Io,
    #[serde(default)]
    pub outputs: Io,
    #[serde(default)]
    pub metadata: TemplateMetadata,
    #[serde(default)]
    pub container: Option<Container>,
    #[serde(default)]
    pub dag: Option<Dag>,
    #[serde(default)]
    pub resource: Option<Resource>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub retry_strategy: Option<RetryStrategy>,
    #[serde(default)]
    pub active_deadline_seconds: Option<Value>,
    #[serde(default)]
    pub timeout: Option<Value>,
    #[serde(default)]
    pub parallelism: Option<Value>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, Value>,
    #[serde(default)]
    pub tolerations: Vec<BTreeMap<String, Value>>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Io {
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct TemplateMetadata {
    #[serde(default)]
    pub labels: BTreeMap<String, Value>,
    #[serde(default)]
    pub annotations: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Container {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub command: Vec<Value>,
    #[serde(default)]
    pub args: Vec<Value>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub resources: Option<Resources>,
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(default)]
    pub image_pull_policy: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub value_from: Option<EnvSource>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnvSource {
    #[serde(default)]
    pub secret_key_ref: Option<KeyRef>,
    #[serde(default)]
    pub config_map_key_ref: Option<KeyRef>,
    #[serde(default)]
    pub field_ref: Option<FieldRef>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct KeyRef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub optional: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FieldRef {
    #[serde(default)]
    pub field_path: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct Resources {
    #[serde(default)]
    pub limits: BTreeMap<String, Value>,
    #[serde(default)]
    pub requests: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VolumeMount {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mount_path: String,
    /// Accepted; volumes are mounted as the backend mounts them.
    #[serde(default)]
    #[allow(dead_code)]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub sub_path: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Volume {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub persistent_volume_claim: Option<ClaimSource>,
    #[serde(default)]
    pub secret: Option<SecretSource>,
    #[serde(default)]
    pub config_map: Option<ConfigMapSource>,
    #[serde(default)]
    pub empty_dir: Option<EmptyDirSource>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClaimSource {
    #[serde(default)]
    pub claim_name: String,
    /// Accepted; volumes are mounted as the backend mounts them.
    #[serde(default)]
    #[allow(dead_code)]
    pub read_only: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretSource {
    #[serde(default)]
    pub secret_name: String,
    #[serde(default)]
    pub optional: Option<bool>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConfigMapSource {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub optional: Option<bool>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EmptyDirSource {
    #[serde(default)]
    pub medium: Option<String>,
    #[serde(default)]
    pub size_limit: Option<Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Dag {
    #[serde(default)]
    pub tasks: Vec<DagTask>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DagTask {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub arguments: Arguments,
    #[serde(default)]
    pub dependencies: Vec<String>,
    #[serde(default)]
    pub depends: Option<String>,
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub with_items: Option<Vec<Value>>,
    #[serde(default)]
    pub with_param: Option<String>,
    #[serde(default)]
    pub with_sequence: Option<BTreeMap<String, Value>>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Resource {
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub manifest: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RetryStrategy {
    #[serde(default)]
    pub limit: Option<Value>,
    /// `Always`, `OnFailure`, `OnError`: every failure of a task is retried here.
    #[serde(default)]
    #[allow(dead_code)]
    pub retry_policy: Option<String>,
    #[serde(default)]
    pub backoff: Option<Backoff>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Backoff {
    #[serde(default)]
    pub duration: Option<Value>,
    #[serde(default)]
    pub factor: Option<Value>,
    #[serde(default)]
    pub max_duration: Option<Value>,
}

/// A YAML scalar as Argo reads it: strings as they are, numbers and booleans as written.
pub(crate) fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
