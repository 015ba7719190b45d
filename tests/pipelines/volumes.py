"""volumes: a volume made by the pipeline (kfp-kubernetes CreatePVC), written by one task, read
by another, deleted at the end (DeletePVC).

* `createpvc`: a volume named after the run with suffix `-data`; its name is the output `name`.
* `write-message` (lightweight, the volume at /data): writes `message` to /data/message.txt.
* `read-message` (container, the same volume at /data): copies /data/message.txt to its output.
* `deletepvc`: deletes the volume after `read-message`.
Output `Output` = the message.
"""
import os
import sys

from kfp import compiler, dsl, kubernetes


@dsl.component(base_image="python:3.11")
def write_message(message: str):
    with open("/data/message.txt", "w") as f:
        f.write(message)


@dsl.container_component
def read_message(content: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", 'mkdir -p "$(dirname "$0")" && cat /data/message.txt > "$0"', content],
    )


@dsl.pipeline(name="volumes", description="CreatePVC, mount_pvc, DeletePVC")
def volumes(message: str = "hello from a volume") -> str:
    pvc = kubernetes.CreatePVC(
        pvc_name_suffix="-data", access_modes=["ReadWriteOnce"], size="1Gi"
    )
    write = write_message(message=message).set_caching_options(False)
    kubernetes.mount_pvc(write, pvc_name=pvc.outputs["name"], mount_path="/data")
    read = read_message().after(write).set_caching_options(False)
    kubernetes.mount_pvc(read, pvc_name=pvc.outputs["name"], mount_path="/data")
    kubernetes.DeletePVC(pvc_name=pvc.outputs["name"]).after(read)
    return read.outputs["content"]


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(volumes, sys.argv[1] if len(sys.argv) > 1 else default)
