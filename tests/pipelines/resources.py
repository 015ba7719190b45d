"""resources: tasks that declare CPU/memory requests and limits.

* `heavy` and `heavy-2` (container): set_cpu_request('2') and set_memory_request('1G'); each sleeps
  `seconds` (default 1) and writes "heavy-done" to an output parameter. On a machine with fewer than
  4 CPUs the two cannot run at the same time even with --parallelism 4: the engine must account for
  the CPU they request against the machine's.
* `limited` (container): set_cpu_limit('1'), set_memory_limit('512M') (limits only; no request):
  writes "limited-done".
* `sized` (lightweight): set_cpu_request('500m'), set_cpu_limit('1'), set_memory_request('256Mi'),
  set_memory_limit('512Mi'): returns "sized-done".
"""
import os
import sys
from typing import NamedTuple

from kfp import compiler, dsl

WORK_SCRIPT = """set -e
mkdir -p "$(dirname "$0")"
sleep "$1"
echo -n "$2" > "$0"
"""


@dsl.container_component
def heavy(seconds: int, done: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", WORK_SCRIPT, done, seconds, "heavy-done"],
    )


@dsl.container_component
def limited(done: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", WORK_SCRIPT, done, "0", "limited-done"],
    )


@dsl.component(base_image="python:3.11")
def sized() -> str:
    return "sized-done"


@dsl.pipeline(name="resources", description="CPU and memory requests and limits")
def resources(seconds: int = 1) -> NamedTuple(
    "PipelineOutputs", [("heavy", str), ("heavy2", str), ("limited", str), ("sized", str)]
):
    heavy1 = heavy(seconds=seconds)
    heavy1.set_cpu_request("2").set_memory_request("1G").set_caching_options(False)
    heavy2 = heavy(seconds=seconds)
    heavy2.set_cpu_request("2").set_memory_request("1G").set_caching_options(False)

    limited_task = limited()
    limited_task.set_cpu_limit("1").set_memory_limit("512M").set_caching_options(False)

    sized_task = sized()
    sized_task.set_cpu_request("500m").set_cpu_limit("1")
    sized_task.set_memory_request("256Mi").set_memory_limit("512Mi")
    sized_task.set_caching_options(False)

    pipeline_outputs = NamedTuple(
        "PipelineOutputs", [("heavy", str), ("heavy2", str), ("limited", str), ("sized", str)]
    )
    return pipeline_outputs(
        heavy=heavy1.outputs["done"],
        heavy2=heavy2.outputs["done"],
        limited=limited_task.outputs["done"],
        sized=sized_task.output,
    )


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(resources, sys.argv[1] if len(sys.argv) > 1 else default)
