"""volumes (KFP v1): a volume made by the pipeline (dsl.VolumeOp), passed with pvolumes,
written by one task, read by another, deleted at the end (VolumeOp.delete()); and a volume
that outlives runs (made with `coracle volume create`) mounted with onprem.mount_pvc.

Parameters `message: str = "hello from a v1 volume"`, `line: str = "a line"`,
`shared: str = "team-data"`.
* `make-volume` (VolumeOp, resource name "data", 1Gi, RWO): a volume named after the run.
* `write` (ContainerOp, alpine, the volume at /data): writes `message` to /data/message.txt.
* `read` (lightweight, the volume at /data through write.pvolume, so after `write`):
  returns the file's content.
* `kubernetes-resource-delete` deletes the volume after `read`.
* `append` (ContainerOp, alpine; onprem.mount_pvc of `shared` at /shared) appends `line` and a
  newline to /shared/log.txt.
Outputs: `read.Output` = `message`; the named volume's log.txt gains one line per run.
"""
import os
import sys

from kfp import compiler, dsl, onprem
from kfp.components import create_component_from_func


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


read_op = create_component_from_func(read, base_image="python:3.11")


@dsl.pipeline(name="volumes", description="VolumeOp, pvolumes, delete, mount_pvc")
def volumes(message: str = "hello from a v1 volume", line: str = "a line", shared: str = "team-data"):
    volume = dsl.VolumeOp(
        name="make-volume", resource_name="data", size="1Gi", modes=dsl.VOLUME_MODE_RWO
    )
    write = dsl.ContainerOp(
        name="write",
        image="alpine",
        command=["sh", "-c", 'printf "%s" "$0" > /data/message.txt', message],
        pvolumes={"/data": volume.volume},
    )
    write.execution_options.caching_strategy.max_cache_staleness = "P0D"
    reader = read_op("/data/message.txt").add_pvolumes({"/data": write.pvolume})
    reader.execution_options.caching_strategy.max_cache_staleness = "P0D"
    volume.delete().after(reader)
    append = dsl.ContainerOp(
        name="append",
        image="alpine",
        command=["sh", "-c", 'printf "%s\\n" "$0" >> /shared/log.txt', line],
    )
    append.apply(onprem.mount_pvc(shared, "shared", "/shared"))
    append.execution_options.caching_strategy.max_cache_staleness = "P0D"


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(volumes, sys.argv[1] if len(sys.argv) > 1 else default)
