"""pod_settings (KFP v1): what a v1 op says about its pod: environment variables (plain, from a
secret, from a config map, from a field path), volumes added with add_volume /
add_volume_mount (a secret, a config map, an emptyDir), CPU and memory limits, a pod label
and annotation, a timeout and a node selector (kept, not applied on one machine).

Needs secret `db-creds` (key `password`) and config map `app-config` (key `mode`), made with
`coracle secret create` / `coracle configmap create`.
* `inspect` (lightweight; cpu limit 1, memory limit 512M; timeout 120 s) returns
  `greeting=<GREETING>;password_matches_file=<bool>;mode=<APP_MODE>;mode_file=<file>;`
  `scratch=<what it wrote to /scratch and read back>;pod=<POD_NAME set>`; it prints
  `password is <DB_PASSWORD>` (masked in the log).
With db-creds.password = P and app-config.mode = fast: `greeting=hi;password_matches_file=True;`
`mode=fast;mode_file=fast;scratch=ok;pod=True`.
"""
import os
import sys

from kfp import compiler, dsl
from kfp.components import create_component_from_func
from kubernetes.client import (
    V1ConfigMapKeySelector,
    V1ConfigMapVolumeSource,
    V1EmptyDirVolumeSource,
    V1EnvVar,
    V1EnvVarSource,
    V1ObjectFieldSelector,
    V1SecretKeySelector,
    V1SecretVolumeSource,
    V1Volume,
    V1VolumeMount,
)


def inspect() -> str:
    import os

    password = os.environ["DB_PASSWORD"]
    print(f"password is {password}")
    with open("/mnt/creds/password") as f:
        from_file = f.read()
    with open("/etc/app/mode") as f:
        mode_file = f.read()
    with open("/scratch/probe", "w") as f:
        f.write("ok")
    with open("/scratch/probe") as f:
        scratch = f.read()
    return (
        f"greeting={os.environ['GREETING']};"
        f"password_matches_file={from_file == password};"
        f"mode={os.environ['APP_MODE']};mode_file={mode_file};"
        f"scratch={scratch};pod={bool(os.environ.get('POD_NAME'))}"
    )


inspect_op = create_component_from_func(inspect, base_image="python:3.11")


@dsl.pipeline(name="pod-settings", description="env, volumes, limits and pod metadata")
def pod_settings():
    task = inspect_op()
    task.execution_options.caching_strategy.max_cache_staleness = "P0D"
    task.set_cpu_limit("1").set_memory_limit("512M").set_timeout(120)
    task.add_env_variable(V1EnvVar(name="GREETING", value="hi"))
    task.add_env_variable(
        V1EnvVar(
            name="DB_PASSWORD",
            value_from=V1EnvVarSource(
                secret_key_ref=V1SecretKeySelector(name="db-creds", key="password")
            ),
        )
    )
    task.add_env_variable(
        V1EnvVar(
            name="APP_MODE",
            value_from=V1EnvVarSource(
                config_map_key_ref=V1ConfigMapKeySelector(name="app-config", key="mode")
            ),
        )
    )
    task.add_env_variable(
        V1EnvVar(
            name="POD_NAME",
            value_from=V1EnvVarSource(field_ref=V1ObjectFieldSelector(field_path="metadata.name")),
        )
    )
    task.add_volume(V1Volume(name="creds", secret=V1SecretVolumeSource(secret_name="db-creds")))
    task.add_volume_mount(V1VolumeMount(name="creds", mount_path="/mnt/creds"))
    task.add_volume(V1Volume(name="config", config_map=V1ConfigMapVolumeSource(name="app-config")))
    task.add_volume_mount(V1VolumeMount(name="config", mount_path="/etc/app"))
    task.add_volume(V1Volume(name="scratch", empty_dir=V1EmptyDirVolumeSource()))
    task.add_volume_mount(V1VolumeMount(name="scratch", mount_path="/scratch"))
    task.add_pod_label("team", "ml").add_pod_annotation("owner", "v1-team")
    task.add_node_selector_constraint("disktype", "ssd")


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(pod_settings, sys.argv[1] if len(sys.argv) > 1 else default)
