"""fstring: a lightweight component argument built with an f-string.

`echo-msg` gets msg=f"{p}-{token.output}" where `p` is a pipeline parameter and `token` an
upstream task (`make-token` upper-cases `seed`); `echo-msg-2` gets f"{p}:{n}" with an int pipeline
parameter `n` (an int interpolates without ".0"). The SDK compiles the f-string to a
runtimeValue constant holding `{{$.inputs.parameters['pipelinechannel--…']}}` placeholders.
"""
import os
import sys
from typing import NamedTuple

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def make_token(seed: str) -> str:
    return seed.upper()


@dsl.component(base_image="python:3.11")
def echo_msg(msg: str) -> str:
    print(f"msg={msg}")
    return msg


@dsl.pipeline(name="fstring", description="f-string argument from a parameter and an output")
def fstring(p: str = "run", seed: str = "abc", n: int = 7) -> NamedTuple(
    "PipelineOutputs", [("message", str), ("numbered", str)]
):
    token = make_token(seed=seed)
    echoed = echo_msg(msg=f"{p}-{token.output}")
    numbered = echo_msg(msg=f"{p}:{n}")
    pipeline_outputs = NamedTuple("PipelineOutputs", [("message", str), ("numbered", str)])
    return pipeline_outputs(message=echoed.output, numbered=numbered.output)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(fstring, sys.argv[1] if len(sys.argv) > 1 else default)
