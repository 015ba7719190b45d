"""control_flow (KFP v1): dsl.Condition (strings and numbers, nested), dsl.ParallelFor over
static items (dicts, with parallelism), over a task's JSON output and over a pipeline
parameter, and dsl.ExitHandler with an exit task that reads {{workflow.status}}.

Parameters `side: str = "heads"`, `threshold: int = 3`, `names: str = '["p", "q"]'`.
* `echo` returns `side`.
* condition `echo.output == "heads"` -> `heads` (returns "heads won"); `echo.output != "heads"`
  -> `tails` (returns "tails won"); inside the heads branch a nested `threshold > 2` ->
  `big` (returns "big").
* ParallelFor over [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], parallelism 1: `pair` returns
  "<a>-<b>" ("1-x", "2-y").
* `make-list` returns [1, 2, 3] (JSON); ParallelFor over it: `square` returns the square
  ("1", "4", "9").
* ParallelFor over `names`: `greet` returns "hi <name>" ("hi p", "hi q").
* All of it inside dsl.ExitHandler(`final`): `final` (ContainerOp, alpine) writes
  {{workflow.status}} to its file output `status`: "Succeeded".
With side=tails: `heads` and `big` are SKIPPED, `tails` returns "tails won".
"""
import os
import sys

from kfp import compiler, dsl
from kfp.components import create_component_from_func


def echo(text: str) -> str:
    return text


def announce(message: str) -> str:
    return message


def pair(a: int, b: str) -> str:
    return f"{a}-{b}"


def make_list() -> list:
    return [1, 2, 3]


def square(x: int) -> int:
    return x * x


def greet(name: str) -> str:
    return f"hi {name}"


echo_op = create_component_from_func(echo, base_image="python:3.11")
announce_op = create_component_from_func(announce, base_image="python:3.11")
pair_op = create_component_from_func(pair, base_image="python:3.11")
make_list_op = create_component_from_func(make_list, base_image="python:3.11")
square_op = create_component_from_func(square, base_image="python:3.11")
greet_op = create_component_from_func(greet, base_image="python:3.11")


@dsl.pipeline(name="control-flow", description="conditions, loops and an exit handler")
def control_flow(side: str = "heads", threshold: int = 3, names: str = '["p", "q"]'):
    final = dsl.ContainerOp(
        name="final",
        image="alpine",
        command=["sh", "-c", 'mkdir -p /tmp/final && printf "%s" "$0" > /tmp/final/status',
                 "{{workflow.status}}"],
        file_outputs={"status": "/tmp/final/status"},
    )
    with dsl.ExitHandler(final):
        chosen = echo_op(side)
        with dsl.Condition(chosen.output == "heads"):
            announce_op("heads won").set_display_name("heads")
            with dsl.Condition(threshold > 2):
                announce_op("big").set_display_name("big")
        with dsl.Condition(chosen.output != "heads"):
            announce_op("tails won").set_display_name("tails")
        with dsl.ParallelFor([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], parallelism=1) as item:
            pair_op(item.a, item.b)
        listed = make_list_op()
        with dsl.ParallelFor(listed.output) as x:
            square_op(x)
        with dsl.ParallelFor(names) as name:
            greet_op(name)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(control_flow, sys.argv[1] if len(sys.argv) > 1 else default)
