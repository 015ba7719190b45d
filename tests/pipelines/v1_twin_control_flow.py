"""v1_twin_control_flow: the v2 twin of tests/pipelines_v1/control_flow.py, written with the
kfp 2 SDK. The groups get the same task keys as in the v1 workflow (`exit-handler-1`,
`condition-2` … `condition-4`, `for-loop-6` … `for-loop-8`) and every leaf task computes the value
its v1 namesake computes.

Parameters `side: str = "heads"`, `threshold: int = 3`, `names: list = ["p", "q"]`.
* `echo` returns `side`.
* dsl.If `echo.output == "heads"` -> `announce` (display name "heads", returns "heads won");
  inside it dsl.If `threshold > 2` -> `announce-2` ("big"); dsl.If `echo.output != "heads"` ->
  `announce-3` ("tails", returns "tails won").
* ParallelFor over [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], parallelism 1: `pair` takes the
  whole item (a dict) and returns "<a>-<b>" ("1-x", "2-y"). v1 passes the fields (`item.a`,
  `item.b`); the kfp 2.14.6 compiler cannot pass dict fields inside an ExitHandler: it wires them
  as inputs of `exit-handler-1` taken from a root input that does not exist (Coracle refuses
  such a spec when it loads it), and it types every field by the first field of the first item.
* `make-list` returns [1, 2, 3]; ParallelFor over it: `square` returns the square (1, 4, 9).
* ParallelFor over `names`: `greet` returns "hi <name>" ("hi p", "hi q"). The SDK loops only
  over a LIST parameter (v1 loops over a str parameter holding JSON), so `-p names=oops` is
  refused before the run instead of failing in the loop.
* All of it inside dsl.ExitHandler(`final`): `final` takes dsl.PipelineTaskFinalStatus and
  writes its `state` to its OutputPath(str) `status`: "COMPLETE", the state the KFP backend
  passes for a group that succeeded (v1 writes Argo's {{workflow.status}}, "Succeeded"). Its
  caching is off (its input names the run).
With side=tails: `announce` and `announce-2` are SKIPPED, `announce-3` returns "tails won".
"""
import os
import sys

from kfp import compiler, dsl
from kfp.dsl import OutputPath


@dsl.component(base_image="python:3.11")
def echo(text: str) -> str:
    return text


@dsl.component(base_image="python:3.11")
def announce(message: str) -> str:
    return message


@dsl.component(base_image="python:3.11")
def pair(item: dict) -> str:
    return f"{item['a']}-{item['b']}"


@dsl.component(base_image="python:3.11")
def make_list() -> list:
    return [1, 2, 3]


@dsl.component(base_image="python:3.11")
def square(x: int) -> int:
    return x * x


@dsl.component(base_image="python:3.11")
def greet(name: str) -> str:
    return f"hi {name}"


@dsl.component(base_image="python:3.11")
def final(run_status: dsl.PipelineTaskFinalStatus, status: OutputPath(str)):
    with open(status, "w") as f:
        f.write(run_status.state)


@dsl.pipeline(name="v1-twin-control-flow", description="v2 twin of the v1 control_flow pipeline")
def v1_twin_control_flow(side: str = "heads", threshold: int = 3, names: list = ["p", "q"]):
    final_task = final()
    final_task.set_caching_options(False)
    with dsl.ExitHandler(final_task):
        chosen = echo(text=side)
        with dsl.If(chosen.output == "heads"):
            announce(message="heads won").set_display_name("heads")
            with dsl.If(threshold > 2):
                announce(message="big").set_display_name("big")
        with dsl.If(chosen.output != "heads"):
            announce(message="tails won").set_display_name("tails")
        with dsl.ParallelFor([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], parallelism=1) as item:
            pair(item=item)
        listed = make_list()
        with dsl.ParallelFor(listed.output) as x:
            square(x=x)
        with dsl.ParallelFor(names) as name:
            greet(name=name)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(v1_twin_control_flow, sys.argv[1] if len(sys.argv) > 1 else default)
