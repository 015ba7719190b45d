"""fanout_100: 100 independent trivial container tasks, caching on (a cached re-run benchmark).

A plain Python for-loop in the pipeline function calls the container component `noop` 100 times
with `index` = 0..99, giving the tasks `noop`, `noop-2`, ..., `noop-100` (task `noop-K` has
index K-1). Each runs `sh -c 'echo noop-$0' INDEX`: no files, no outputs. The distinct
constant `index` gives every task its own cache key. No parameters, no outputs.
"""
import os
import sys

from kfp import compiler, dsl


@dsl.container_component
def noop(index: int):
    return dsl.ContainerSpec(image="alpine", command=["sh", "-c", 'echo "noop-$0"', index])


@dsl.pipeline(name="fanout-100", description="100 independent cached container tasks")
def fanout_100():
    for index in range(100):
        noop(index=index)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(fanout_100, sys.argv[1] if len(sys.argv) > 1 else default)
