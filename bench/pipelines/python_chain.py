"""python_chain: a chain of 20 lightweight Python components, each adding 1.

Pipeline parameter `start` (int, default 0); pipeline output `Output` = start + 20.
Caching is off on every task so that repeated runs execute every step.
Compile: `PYTHON bench/pipelines/python_chain.py` (writes python_chain.yaml next to this file).
"""
import os
import sys

from kfp import compiler, dsl

CHAIN_LENGTH = 20


@dsl.component(base_image="python:3.11")
def add_one(x: int) -> int:
    return x + 1


@dsl.pipeline(name="python-chain", description="20 lightweight components in a chain")
def python_chain(start: int = 0) -> int:
    value = start
    for _ in range(CHAIN_LENGTH):
        task = add_one(x=value)
        task.set_caching_options(False)
        value = task.output
    return value


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(python_chain, sys.argv[1] if len(sys.argv) > 1 else default)
