//! A task's Kubernetes settings (`platforms.kubernetes`), resolved for one task: resource
//! names that came from parameters or upstream outputs become plain names here. What the
//! names stand for (a volume's directory, a secret's values) is looked up at the edge: the
//! engine never sees a secret value.

use std::collections::BTreeMap;

use coracle_spec::ParameterInputSpec;
use coracle_spec::platform::{KubernetesExecutorConfig, name_source};
use serde_json::Value;

/// A task's pod settings with every name resolved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskPlatform {
    /// Named volumes (PVCs) at their mount paths.
    pub pvc_mounts: Vec<VolumeFrom>,
    pub secret_env: Vec<EnvFrom>,
    pub secret_volumes: Vec<VolumeFrom>,
    pub config_map_env: Vec<EnvFrom>,
    pub config_map_volumes: Vec<VolumeFrom>,
    pub empty_dirs: Vec<EmptyDir>,
    /// `(variable, field path)`: `metadata.name`, `metadata.labels['k']`, …
    pub field_path_env: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `Always`, `IfNotPresent` or `Never`.
    pub image_pull_policy: Option<String>,
    /// `activeDeadlineSeconds`: the longest one attempt may run.
    pub timeout_seconds: Option<u64>,
    /// Settings with no meaning on one machine (node selectors, tolerations, affinity, pull
    /// secrets, …), described: kept with the run, shown and warned about.
    pub not_applied: Vec<String>,
}

impl TaskPlatform {
    /// Whether the task sees any volume at a mount path.
    pub fn has_mounts(&self) -> bool {
        !(self.pvc_mounts.is_empty()
            && self.secret_volumes.is_empty()
            && self.config_map_volumes.is_empty()
            && self.empty_dirs.is_empty())
    }
}

/// A resource (PVC, secret, config map) mounted at a path.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeFrom {
    pub name: String,
    pub mount_path: String,
    /// A missing secret or config map is skipped instead of failing the task.
    pub optional: bool,
}

/// One key of a secret or config map as an environment variable.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvFrom {
    pub name: String,
    pub key: String,
    pub env_var: String,
    pub optional: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EmptyDir {
    pub name: String,
    pub mount_path: String,
    /// `medium: Memory` on a cluster (a tmpfs).
    pub memory: bool,
    pub size_limit: Option<String>,
}

/// Resolves `config` for one task. `value` gives the value of a name parameter (a parent
/// input, an upstream output or a constant); `None` when it has none (an optional input not
/// given).
pub(crate) fn resolve(
    config: &KubernetesExecutorConfig,
    value: &dyn Fn(&ParameterInputSpec) -> Result<Option<Value>, String>,
) -> Result<TaskPlatform, String> {
    let name = |source: Option<ParameterInputSpec>,
                what: &str,
                optional: bool|
     -> Result<Option<String>, String> {
        let Some(source) = source else {
            return if optional {
                Ok(None)
            } else {
                Err(format!("the {what} has no name"))
            };
        };
        match value(&source)? {
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
            Some(Value::Null) | None if optional => Ok(None),
            Some(Value::String(_)) if optional => Ok(None),
            Some(Value::Null) | None => Err(format!("the {what}'s name has no value")),
            Some(other) => Err(format!("the {what}'s name is not a string: {other}")),
        }
    };
    let mut platform = TaskPlatform::default();
    for (index, mount) in config.pvc_mount.iter().enumerate() {
        let pvc = name(
            mount.name_source(),
            &format!("pvcMount[{index}] PVC"),
            false,
        )?
        .expect("required names are present");
        platform.pvc_mounts.push(VolumeFrom {
            name: pvc,
            mount_path: mount.mount_path.clone(),
            optional: false,
        });
    }
    for (index, secret) in config.secret_as_env.iter().enumerate() {
        let optional = secret.optional.unwrap_or(false);
        let source = name_source(
            secret.secret_name_parameter.as_ref(),
            secret.secret_name.as_deref(),
        );
        let Some(secret_name) = name(source, &format!("secretAsEnv[{index}] secret"), optional)?
        else {
            continue;
        };
        for pair in &secret.key_to_env {
            platform.secret_env.push(EnvFrom {
                name: secret_name.clone(),
                key: pair.secret_key.clone(),
                env_var: pair.env_var.clone(),
                optional,
            });
        }
    }
    for (index, secret) in config.secret_as_volume.iter().enumerate() {
        let optional = secret.optional.unwrap_or(false);
        let source = name_source(
            secret.secret_name_parameter.as_ref(),
            secret.secret_name.as_deref(),
        );
        let Some(secret_name) = name(source, &format!("secretAsVolume[{index}] secret"), optional)?
        else {
            continue;
        };
        platform.secret_volumes.push(VolumeFrom {
            name: secret_name,
            mount_path: secret.mount_path.clone(),
            optional,
        });
    }
    for (index, map) in config.config_map_as_env.iter().enumerate() {
        let optional = map.optional.unwrap_or(false);
        let source = name_source(
            map.config_map_name_parameter.as_ref(),
            map.config_map_name.as_deref(),
        );
        let Some(map_name) = name(
            source,
            &format!("configMapAsEnv[{index}] config map"),
            optional,
        )?
        else {
            continue;
        };
        for pair in &map.key_to_env {
            platform.config_map_env.push(EnvFrom {
                name: map_name.clone(),
                key: pair.config_map_key.clone(),
                env_var: pair.env_var.clone(),
                optional,
            });
        }
    }
    for (index, map) in config.config_map_as_volume.iter().enumerate() {
        let optional = map.optional.unwrap_or(false);
        let source = name_source(
            map.config_map_name_parameter.as_ref(),
            map.config_map_name.as_deref(),
        );
        let Some(map_name) = name(
            source,
            &format!("configMapAsVolume[{index}] config map"),
            optional,
        )?
        else {
            continue;
        };
        platform.config_map_volumes.push(VolumeFrom {
            name: map_name,
            mount_path: map.mount_path.clone(),
            optional,
        });
    }
    for dir in &config.empty_dir_mounts {
        platform.empty_dirs.push(EmptyDir {
            name: dir.volume_name.clone(),
            mount_path: dir.mount_path.clone(),
            memory: dir.medium.as_deref() == Some("Memory"),
            size_limit: dir.size_limit.clone(),
        });
    }
    for env in &config.field_path_as_env {
        platform
            .field_path_env
            .push((env.name.clone(), env.field_path.clone()));
    }
    if let Some(metadata) = &config.pod_metadata {
        platform.labels = metadata.labels.clone();
        platform.annotations = metadata.annotations.clone();
    }
    platform.image_pull_policy = config.image_pull_policy.clone();
    platform.timeout_seconds = match &config.active_deadline_seconds {
        None => None,
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => Some(s.trim().parse::<u64>().map_err(|_| {
            format!("invalid activeDeadlineSeconds {s:?} (expected whole seconds)")
        })?),
        Some(other) => return Err(format!("invalid activeDeadlineSeconds {other}")),
    }
    .filter(|seconds| *seconds > 0);
    platform.not_applied = not_applied(config, value)?;
    Ok(platform)
}

/// Descriptions of the settings that only a cluster acts on.
fn not_applied(
    config: &KubernetesExecutorConfig,
    value: &dyn Fn(&ParameterInputSpec) -> Result<Option<Value>, String>,
) -> Result<Vec<String>, String> {
    // A setting given as a JSON parameter counts when it has a non-empty value.
    let json = |source: &Option<ParameterInputSpec>| -> Result<Option<Value>, String> {
        match source {
            None => Ok(None),
            Some(source) => Ok(value(source)?.filter(|v| match v {
                Value::Null => false,
                Value::String(s) => !s.is_empty(),
                Value::Object(o) => !o.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            })),
        }
    };
    let mut notes = Vec::new();
    if let Some(selector) = &config.node_selector {
        if !selector.labels.is_empty() {
            notes.push(format!(
                "node selector {}",
                serde_json::to_string(&selector.labels).unwrap_or_default()
            ));
        }
        if let Some(v) = json(&selector.node_selector_json)? {
            notes.push(format!("node selector {v}"));
        }
    }
    for toleration in &config.tolerations {
        if !toleration.fields.is_empty() {
            notes.push(format!(
                "toleration {}",
                serde_json::to_string(&toleration.fields).unwrap_or_default()
            ));
        }
        if let Some(v) = json(&toleration.toleration_json)? {
            notes.push(format!("toleration {v}"));
        }
    }
    for affinity in &config.node_affinity {
        if !affinity.fields.is_empty() {
            notes.push(format!(
                "node affinity {}",
                serde_json::to_string(&affinity.fields).unwrap_or_default()
            ));
        }
        if let Some(v) = json(&affinity.node_affinity_json)? {
            notes.push(format!("node affinity {v}"));
        }
    }
    for secret in &config.image_pull_secret {
        let source = name_source(
            secret.secret_name_parameter.as_ref(),
            secret.secret_name.as_deref(),
        );
        if let Some(source) = source
            && let Some(Value::String(name)) = value(&source)?
            && !name.is_empty()
        {
            notes.push(format!("image pull secret {name:?}"));
        }
    }
    for (key, setting) in &config.other {
        notes.push(format!("{key} {setting}"));
    }
    Ok(notes)
}

/// What the IR's stand-in images (`argostub/…`) ask Coracle itself to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Builtin {
    /// kfp-kubernetes `CreatePVC`: make a named volume; its name is the output `name`.
    CreateVolume {
        /// `pvc_name`, or the run's name followed by `pvc_name_suffix`.
        name: String,
        size: Option<String>,
        access_modes: Vec<String>,
        storage_class: Option<String>,
        annotations: BTreeMap<String, String>,
    },
    /// kfp-kubernetes `DeletePVC`.
    DeleteVolume { name: String },
}

/// The builtin an `argostub/…` image stands for, with its inputs read; `None` for other
/// images.
pub(crate) fn builtin(
    image: &str,
    inputs: &BTreeMap<String, Value>,
    run_name: &str,
) -> Option<Result<Builtin, String>> {
    let text = |key: &str| -> Option<String> {
        match inputs.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    };
    match image.split(':').next().unwrap_or(image) {
        "argostub/createpvc" => Some((|| {
            let name = match (text("pvc_name"), text("pvc_name_suffix")) {
                (Some(_), Some(_)) => {
                    return Err("CreatePVC takes pvc_name or pvc_name_suffix, not both".into());
                }
                (Some(name), None) => name,
                (None, Some(suffix)) => format!("{}{suffix}", volume_prefix(run_name)),
                (None, None) => return Err("CreatePVC needs pvc_name or pvc_name_suffix".into()),
            };
            let access_modes = match inputs.get("access_modes") {
                Some(Value::Array(modes)) => modes
                    .iter()
                    .filter_map(|m| m.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            let annotations = match inputs.get("annotations") {
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect(),
                _ => BTreeMap::new(),
            };
            Ok(Builtin::CreateVolume {
                name,
                size: text("size"),
                access_modes,
                storage_class: text("storage_class_name"),
                annotations,
            })
        })()),
        "argostub/deletepvc" => Some(
            text("pvc_name")
                .map(|name| Builtin::DeleteVolume { name })
                .ok_or_else(|| "DeletePVC needs pvc_name".to_string()),
        ),
        _ => None,
    }
}

/// A run's name made into the start of a volume name: lowercase letters, digits and `-`,
/// at most 200 characters, as the cluster names a PVC after its workflow.
fn volume_prefix(run_name: &str) -> String {
    let mut prefix: String = run_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(200)
        .collect();
    while prefix.starts_with('-') {
        prefix.remove(0);
    }
    if prefix.is_empty() {
        prefix.push_str("run");
    }
    prefix
}
