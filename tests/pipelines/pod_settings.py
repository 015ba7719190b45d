"""pod_settings: pod metadata, field paths, an empty dir, limits, and settings that only a
cluster acts on.

`inspect` (container): labels `team: ml` and annotation `note: hi` read back through
`use_field_path_as_env` (POD_TEAM, POD_NOTE, POD_NAME); an empty dir at /scratch written and read;
set_memory_limit('256Mi') and set_cpu_limit('500m') read from the task's cgroup (cgroup v1 or
v2); a node selector, a toleration and an image pull secret (no local meaning: kept and warned
about). Output `Output` =
`team=ml;note=hi;named=<yes if POD_NAME is set>;scratch=ok;memory=<bytes or max>;cpu=<millicores or none>`.
On the Docker backend memory is 268435456 and cpu 500m; the process backend enforces no limits.
"""
import os
import sys

from kfp import compiler, dsl, kubernetes

SCRIPT = """set -e
mkdir -p "$(dirname "$0")"
if [ -f /sys/fs/cgroup/memory.max ]; then
    memory=$(cat /sys/fs/cgroup/memory.max)
    read quota period < /sys/fs/cgroup/cpu.max
else
    memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
    quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)
    period=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)
fi
if [ "$quota" = max ] || [ "$quota" = -1 ]; then cpu=none; else cpu=$((quota * 1000 / period))m; fi
echo ok > /scratch/probe
named=no
if [ -n "$POD_NAME" ]; then named=yes; fi
echo -n "team=$POD_TEAM;note=$POD_NOTE;named=$named;scratch=$(cat /scratch/probe);memory=$memory;cpu=$cpu" > "$0"
"""


@dsl.container_component
def inspect(report: dsl.OutputPath(str)):
    return dsl.ContainerSpec(image="alpine", command=["sh", "-c", SCRIPT, report])


@dsl.pipeline(name="pod-settings", description="pod metadata, empty dirs, limits")
def pod_settings() -> str:
    task = inspect().set_caching_options(False)
    task.set_memory_limit("256Mi").set_cpu_limit("500m")
    kubernetes.add_pod_label(task, "team", "ml")
    kubernetes.add_pod_annotation(task, "note", "hi")
    kubernetes.use_field_path_as_env(task, env_name="POD_TEAM", field_path="metadata.labels['team']")
    kubernetes.use_field_path_as_env(
        task, env_name="POD_NOTE", field_path="metadata.annotations['note']"
    )
    kubernetes.use_field_path_as_env(task, env_name="POD_NAME", field_path="metadata.name")
    kubernetes.empty_dir_mount(task, volume_name="scratch", mount_path="/scratch")
    kubernetes.add_node_selector(task, label_key="disktype", label_value="ssd")
    kubernetes.add_toleration(task, key="dedicated", operator="Equal", value="ml", effect="NoSchedule")
    kubernetes.set_image_pull_secrets(task, ["registry-creds"])
    return task.outputs["report"]


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(pod_settings, sys.argv[1] if len(sys.argv) > 1 else default)
