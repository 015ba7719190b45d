"""python_fanout: 200 independent lightweight Python tasks (a plain Python for-loop, no ParallelFor).

Task `square` (and `square-2` … `square-200`) returns x * x for x = 0 … 199. No pipeline outputs.
Caching is off on every task so that repeated runs execute every step.
Compile: `PYTHON bench/pipelines/python_fanout.py` (writes python_fanout.yaml next to this file).
"""
import os
import sys

from kfp import compiler, dsl

FANOUT = 200


@dsl.component(base_image="python:3.11")
def square(x: int) -> int:
    return x * x


@dsl.pipeline(name="python-fanout", description="200 independent lightweight components")
def python_fanout():
    for x in range(FANOUT):
        task = square(x=x)
        task.set_caching_options(False)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(python_fanout, sys.argv[1] if len(sys.argv) > 1 else default)
