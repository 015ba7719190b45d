//! What a task's Kubernetes settings turn into on this machine, at the edge where the store
//! and the filesystem are: volume directories, secret and config-map files and variables,
//! empty dirs, pod metadata, field-path variables. The engine resolved the names; here they
//! become paths and values.
//!
//! Secret values go only into the task's environment, into files in a private temporary
//! directory (mode 0700, removed when the attempt ends) and onto the list of values masked in
//! the task's log. They are never written to the run's directory, the store's run records or
//! a progress message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use coracle_engine::{Launch, TaskPlatform, VolumeFrom};
use coracle_exec::Mount;
use coracle_store::Store;
use serde_json::{Value, json};

/// A task's pod, made real.
#[derive(Debug, Default)]
pub(crate) struct Pod {
    pub mounts: Vec<Mount>,
    /// Variables to add to the task's own.
    pub env: Vec<(String, String)>,
    /// Secret values to mask in the task's log.
    pub redact: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Directories made for this attempt only, removed when it ends.
    pub scratch: Vec<PathBuf>,
}

/// Where a run's task-private files go (secret and config-map copies): outside the run's
/// directory, so nothing secret outlives the attempt there.
fn private_dir(run_id: &str, task_path: &str, attempt: u32) -> PathBuf {
    let safe: String = task_path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(60)
        .collect();
    std::env::temp_dir().join(format!(
        "coracle-{}-{}-{safe}-{attempt}",
        std::process::id(),
        run_id.get(..8).unwrap_or(run_id)
    ))
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)?;
    file.write_all(bytes)
}

/// Builds the pod of `launch`. `Err` says why the task cannot start (a missing volume or
/// secret), in words for the task's error.
pub(crate) async fn prepare(
    store: &Store,
    home: &Path,
    run_id: &str,
    launch: &Launch,
) -> Result<Pod, String> {
    let platform = &launch.platform;
    let mut pod = Pod::default();
    if *platform == TaskPlatform::default() {
        return Ok(pod);
    }
    let private = private_dir(run_id, &launch.task_path, launch.attempt);
    let result = fill(store, home, launch, platform, &private, &mut pod).await;
    if private.exists() {
        pod.scratch.push(private);
    }
    match result {
        Ok(()) => Ok(pod),
        Err(error) => {
            remove_scratch(&pod.scratch);
            Err(error)
        }
    }
}

async fn fill(
    store: &Store,
    home: &Path,
    launch: &Launch,
    platform: &TaskPlatform,
    private: &Path,
    pod: &mut Pod,
) -> Result<(), String> {
    let io_error = |what: &str, path: &Path, e: std::io::Error| {
        format!("cannot prepare {what} at {}: {e}", path.display())
    };
    for mount in &platform.pvc_mounts {
        let exists = store
            .get_volume(&mount.name)
            .await
            .map_err(|e| format!("cannot look up volume {:?}: {e}", mount.name))?
            .is_some();
        if !exists {
            return Err(format!(
                "volume (PVC) {:?} does not exist: create it with `coracle volume create {}` or a CreatePVC task",
                mount.name, mount.name
            ));
        }
        let dir = coracle_store::volume_dir(home, &mount.name);
        std::fs::create_dir_all(&dir).map_err(|e| io_error("volume", &dir, e))?;
        pod.mounts.push(Mount {
            source: dir,
            target: PathBuf::from(&mount.mount_path),
            read_only: false,
        });
    }
    let mut secrets: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>> = BTreeMap::new();
    let names = platform
        .secret_env
        .iter()
        .map(|e| &e.name)
        .chain(platform.secret_volumes.iter().map(|v| &v.name));
    for name in names {
        if !secrets.contains_key(name) {
            let data = store
                .get_secret(name)
                .await
                .map_err(|e| format!("cannot look up secret {name:?}: {e}"))?;
            secrets.insert(name.clone(), data);
        }
    }
    let mut maps: BTreeMap<String, Option<BTreeMap<String, String>>> = BTreeMap::new();
    let names = platform
        .config_map_env
        .iter()
        .map(|e| &e.name)
        .chain(platform.config_map_volumes.iter().map(|v| &v.name));
    for name in names {
        if !maps.contains_key(name) {
            let data = store
                .get_config_map(name)
                .await
                .map_err(|e| format!("cannot look up config map {name:?}: {e}"))?;
            maps.insert(name.clone(), data);
        }
    }
    for values in secrets.values().flatten() {
        for value in values.values() {
            let text = String::from_utf8_lossy(value).into_owned();
            if !text.trim().is_empty() {
                pod.redact.push(text.trim_end_matches('\n').to_string());
            }
        }
    }
    let missing = |kind: &str, name: &str, command: &str| {
        format!(
            "{kind} {name:?} does not exist: create it with `coracle {command} create {name} …`"
        )
    };
    for env in &platform.secret_env {
        match secrets.get(&env.name).and_then(Option::as_ref) {
            None if env.optional => {}
            None => return Err(missing("secret", &env.name, "secret")),
            Some(data) => match data.get(&env.key) {
                Some(value) => pod.env.push((
                    env.env_var.clone(),
                    String::from_utf8_lossy(value).into_owned(),
                )),
                None if env.optional => {}
                None => {
                    return Err(format!(
                        "secret {:?} has no key {:?} (for variable {})",
                        env.name, env.key, env.env_var
                    ));
                }
            },
        }
    }
    for env in &platform.config_map_env {
        match maps.get(&env.name).and_then(Option::as_ref) {
            None if env.optional => {}
            None => return Err(missing("config map", &env.name, "configmap")),
            Some(data) => match data.get(&env.key) {
                Some(value) => pod.env.push((env.env_var.clone(), value.clone())),
                None if env.optional => {}
                None => {
                    return Err(format!(
                        "config map {:?} has no key {:?} (for variable {})",
                        env.name, env.key, env.env_var
                    ));
                }
            },
        }
    }
    let mut files_index = 0;
    let mut volume_of_files =
        |pod: &mut Pod, volume: &VolumeFrom, files: Vec<(String, Vec<u8>)>| -> Result<(), String> {
            files_index += 1;
            let dir = private.join(format!("volume-{files_index}"));
            create_private_dir(private).map_err(|e| io_error("a private directory", private, e))?;
            std::fs::create_dir_all(&dir).map_err(|e| io_error("a volume", &dir, e))?;
            for (key, bytes) in files {
                let path = dir.join(&key);
                write_private_file(&path, &bytes).map_err(|e| io_error("a file", &path, e))?;
            }
            pod.mounts.push(Mount {
                source: dir,
                target: PathBuf::from(&volume.mount_path),
                read_only: true,
            });
            Ok(())
        };
    for volume in &platform.secret_volumes {
        match secrets.get(&volume.name).and_then(Option::as_ref) {
            None if volume.optional => {}
            None => return Err(missing("secret", &volume.name, "secret")),
            Some(data) => volume_of_files(
                pod,
                volume,
                data.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            )?,
        }
    }
    for volume in &platform.config_map_volumes {
        match maps.get(&volume.name).and_then(Option::as_ref) {
            None if volume.optional => {}
            None => return Err(missing("config map", &volume.name, "configmap")),
            Some(data) => volume_of_files(
                pod,
                volume,
                data.iter()
                    .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                    .collect(),
            )?,
        }
    }
    for (index, dir) in platform.empty_dirs.iter().enumerate() {
        let path = Path::new(&launch.task_dir).join(format!("empty-dir-{index}"));
        std::fs::create_dir_all(&path).map_err(|e| io_error("an empty dir", &path, e))?;
        pod.scratch.push(path.clone());
        pod.mounts.push(Mount {
            source: path,
            target: PathBuf::from(&dir.mount_path),
            read_only: false,
        });
    }
    for (name, field_path) in &platform.field_path_env {
        pod.env
            .push((name.clone(), field_value(launch, platform, field_path)));
    }
    pod.labels = platform.annotations.clone();
    pod.labels.extend(platform.labels.clone());
    Ok(())
}

/// What `fieldRef.fieldPath` gives inside a pod, for this task on this machine.
fn field_value(launch: &Launch, platform: &TaskPlatform, field_path: &str) -> String {
    let keyed = |prefix: &str| -> Option<String> {
        let rest = field_path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(rest.to_string())
    };
    if let Some(key) = keyed("metadata.labels['") {
        return platform.labels.get(&key).cloned().unwrap_or_default();
    }
    if let Some(key) = keyed("metadata.annotations['") {
        return platform.annotations.get(&key).cloned().unwrap_or_default();
    }
    match field_path {
        "metadata.name" => pod_name(&launch.task_path, launch.attempt),
        "metadata.namespace" => "default".into(),
        "spec.nodeName" => hostname(),
        "spec.serviceAccountName" => "default".into(),
        "status.podIP" | "status.hostIP" => "127.0.0.1".into(),
        _ => String::new(),
    }
}

/// A pod-like name for a task attempt: `{task path}-{attempt}` in lowercase DNS form.
pub(crate) fn pod_name(task_path: &str, attempt: u32) -> String {
    let base: String = task_path
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("{base}-{attempt}")
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

pub(crate) fn remove_scratch(paths: &[PathBuf]) {
    for path in paths {
        let _ = std::fs::remove_dir_all(path);
    }
}

/// The task's pod settings as kept in its directory (`pod.json`): names and mount paths,
/// never a secret's value.
pub(crate) fn describe(platform: &TaskPlatform, gpu_devices: &[String]) -> Value {
    let volumes = |list: &[VolumeFrom]| -> Vec<Value> {
        list.iter()
            .map(|v| json!({"name": v.name, "mountPath": v.mount_path, "optional": v.optional}))
            .collect()
    };
    let env_from = |list: &[coracle_engine::EnvFrom]| -> Vec<Value> {
        list.iter()
            .map(
                |e| json!({"name": e.name, "key": e.key, "env": e.env_var, "optional": e.optional}),
            )
            .collect()
    };
    json!({
        "pvcMounts": volumes(&platform.pvc_mounts),
        "secretVolumes": volumes(&platform.secret_volumes),
        "secretEnv": env_from(&platform.secret_env),
        "configMapVolumes": volumes(&platform.config_map_volumes),
        "configMapEnv": env_from(&platform.config_map_env),
        "emptyDirs": platform.empty_dirs.iter().map(|d| json!({"name": d.name, "mountPath": d.mount_path})).collect::<Vec<_>>(),
        "labels": platform.labels,
        "annotations": platform.annotations,
        "gpuDevices": gpu_devices,
        "notApplied": platform.not_applied,
    })
}

/// Whether any executor of `spec` mounts a volume (then the process backend needs private
/// mount namespaces).
pub(crate) fn spec_has_mounts(spec: &coracle_spec::PipelineSpec) -> bool {
    spec.platforms
        .as_ref()
        .and_then(|p| p.kubernetes.as_ref())
        .is_some_and(|k| {
            k.deployment_spec.executors.values().any(|c| {
                !(c.pvc_mount.is_empty()
                    && c.secret_as_volume.is_empty()
                    && c.config_map_as_volume.is_empty()
                    && c.empty_dir_mounts.is_empty())
            })
        })
}
