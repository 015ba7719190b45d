"""python_loop: a dsl.ParallelFor over 50 items of a lightweight Python component.

`python_loop` (compiled to python_loop.yaml next to this file): dsl.ParallelFor over the items
0 .. 49 (a constant list, compiled into the loop as raw items); every iteration runs `square`
(image python:3.11), which returns x * x. No pipeline outputs.
`python_loop_unrolled`: the same 50 `square` calls made by a plain Python for-loop, for runners
that do not support dsl.ParallelFor (kfp.local in kfp 2.14.6 raises NotImplementedError for it).
Caching is off on every task so that repeated runs execute every step.
Compile: `PYTHON bench/pipelines/python_loop.py` (writes python_loop.yaml next to this file).
"""
import os
import sys

from kfp import compiler, dsl

ITEMS = list(range(50))


@dsl.component(base_image="python:3.11")
def square(x: int) -> int:
    return x * x


@dsl.pipeline(name="python-loop", description="ParallelFor over 50 lightweight components")
def python_loop():
    with dsl.ParallelFor(ITEMS) as item:
        task = square(x=item)
        task.set_caching_options(False)


@dsl.pipeline(name="python-loop-unrolled", description="50 lightweight components, unrolled")
def python_loop_unrolled():
    for item in ITEMS:
        task = square(x=item)
        task.set_caching_options(False)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(python_loop, sys.argv[1] if len(sys.argv) > 1 else default)
