"""parallel_sleep: four independent `sleep` container tasks, then a join task.

`nap`, `nap-2`, `nap-3`, `nap-4` each run `sleep SECONDS` (pipeline parameter `seconds`,
default 1); `join` runs .after() all four and writes "joined" to its output parameter, which is
the pipeline output. Caching is off so that repeated runs really sleep.
With --parallelism 4 the run takes about 1 x SECONDS, with --parallelism 1 about 4 x SECONDS.
"""
import os
import sys

from kfp import compiler, dsl


@dsl.container_component
def nap(seconds: int):
    return dsl.ContainerSpec(image="alpine", command=["sleep", seconds])


@dsl.container_component
def join(result: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", 'mkdir -p "$(dirname "$0")" && echo -n joined > "$0"', result],
    )


@dsl.pipeline(name="parallel-sleep", description="four parallel sleeps and a join")
def parallel_sleep(seconds: int = 1) -> str:
    naps = []
    for _ in range(4):
        task = nap(seconds=seconds)
        task.set_caching_options(False)
        naps.append(task)
    joined = join().after(*naps)
    joined.set_caching_options(False)
    return joined.outputs["result"]


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(parallel_sleep, sys.argv[1] if len(sys.argv) > 1 else default)
