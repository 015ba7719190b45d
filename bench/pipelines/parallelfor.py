"""parallelfor: a dsl.ParallelFor over a list of items, one trivial container task per item.

Pipeline parameter `items` (list, default [0, 1, 2]); for every item a container task
(image alpine, command `true`, the item as its argument) runs. No pipeline outputs.
Caching is off so that repeated runs execute every task. bench/parallelfor_10k.py passes
10,000 items through a `--params` JSON file.
Compile: `PYTHON bench/pipelines/parallelfor.py` (writes parallelfor.yaml next to this file).
"""
import os
import sys

from kfp import compiler, dsl


@dsl.container_component
def true_op(item: int):
    return dsl.ContainerSpec(image="alpine", command=["true"], args=[item])


@dsl.pipeline(name="parallelfor", description="ParallelFor over a list of trivial container tasks")
def parallelfor(items: list = [0, 1, 2]):
    with dsl.ParallelFor(items) as item:
        task = true_op(item=item)
        task.set_caching_options(False)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(parallelfor, sys.argv[1] if len(sys.argv) > 1 else default)
