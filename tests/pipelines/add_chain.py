"""add_chain: two lightweight components in a chain.

add(a, b) -> double(sum) -> pipeline output `Output` (int).
With a=2, b=3 the pipeline output is 10.
"""
import os
import sys

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def add(a: int, b: int) -> int:
    return a + b


@dsl.component(base_image="python:3.11")
def double(x: int) -> int:
    return 2 * x


@dsl.pipeline(name="add-chain", description="add(a, b), then double the sum")
def add_chain(a: int, b: int) -> int:
    total = add(a=a, b=b)
    doubled = double(x=total.output)
    return doubled.output


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(add_chain, sys.argv[1] if len(sys.argv) > 1 else default)
