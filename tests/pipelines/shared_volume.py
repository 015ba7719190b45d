"""shared_volume: a volume that outlives runs (made with `coracle volume create`), named by a
parameter.

Parameters `volume: str = "team-data"`, `line: str`. `append-line` (lightweight, the volume at
/shared) appends `line` and a newline to /shared/log.txt; `read-log` (container, the volume at
/shared, read after) copies /shared/log.txt to its output. Output `Output` = the whole log, so a
second run shows the first run's line too.
"""
import os
import sys

from kfp import compiler, dsl, kubernetes


@dsl.component(base_image="python:3.11")
def append_line(line: str):
    with open("/shared/log.txt", "a") as f:
        f.write(line + "\n")


@dsl.container_component
def read_log(content: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", 'mkdir -p "$(dirname "$0")" && cat /shared/log.txt > "$0"', content],
    )


@dsl.pipeline(name="shared-volume", description="a named volume shared by runs")
def shared_volume(line: str, volume: str = "team-data") -> str:
    append = append_line(line=line).set_caching_options(False)
    kubernetes.mount_pvc(append, pvc_name=volume, mount_path="/shared")
    read = read_log().after(append).set_caching_options(False)
    kubernetes.mount_pvc(read, pvc_name=volume, mount_path="/shared")
    return read.outputs["content"]


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(shared_volume, sys.argv[1] if len(sys.argv) > 1 else default)
