"""add_chain (KFP v1): two lightweight components in a chain, as tests/pipelines/add_chain.py
does with the v2 SDK.

add(a, b) -> double(sum). With a=2, b=3: task `add` output `Output` = "5", task `double`
output `Output` = "10".
"""
import os
import sys

from kfp import compiler, dsl
from kfp.components import create_component_from_func


def add(a: int, b: int) -> int:
    return a + b


def double(x: int) -> int:
    return 2 * x


add_op = create_component_from_func(add, base_image="python:3.11")
double_op = create_component_from_func(double, base_image="python:3.11")


@dsl.pipeline(name="add-chain", description="add(a, b), then double the sum")
def add_chain(a: int, b: int):
    total = add_op(a, b)
    double_op(total.output)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(add_chain, sys.argv[1] if len(sys.argv) > 1 else default)
