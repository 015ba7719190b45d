"""loops: dsl.ParallelFor over raw lists, a LIST parameter, a task output and dicts; Collected.

Parameters `names: list = ["x", "y", "z"]`, `n: int = 3`.
* Loop over a raw list [1, 2, 3]: `square` returns x*x after sleeping (4 - x) * 0.2 s, so later
  iterations finish first; `sum-squares` gets dsl.Collected(square) and returns
  "<the list as JSON>=<sum>", which shows the collected order.
* Loop over the pipeline LIST parameter `names`, with parallelism=2: `greet` sleeps 0.5 s and
  returns "hi <name>"; `join-words` gets dsl.Collected(greet) and joins it with ",".
* Loop over the LIST output of an upstream task (`make-list` returns [0, 10, ..., 10*(n-1)]):
  `write-item` writes an Output[Dataset] `item-<v>\n` (sleeping so later iterations finish first)
  with metadata {"value": v}; `concat-items` gets dsl.Collected of the datasets
  (Input[List[Dataset]]) and returns their first lines joined with "," plus the metadata values.
* Loop over a list of dicts [{"a": 1, "b": 2}, {"a": 3, "b": 4}]: `use-fields` takes item.a and
  item.b (ints) and returns "<a>+<b>=<a+b>".
* Nested loops over [1, 2] and ["u", "v"]: `pair` returns "<outer><inner>".
* `after-loops` runs .after() the `greet` task inside the `names` loop (compiled as a dependency
  on the whole loop) and returns "after".
Pipeline outputs: `squares` (the dsl.Collected list of squares), `sum_squares`, `joined`,
`concatenated`, `after`.
"""
import os
import sys
from typing import List, NamedTuple

from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Output


@dsl.component(base_image="python:3.11")
def square(x: int) -> int:
    import time

    time.sleep((4 - x) * 0.2)
    print(f"square({x}) = {x * x}")
    return x * x


@dsl.component(base_image="python:3.11")
def sum_squares(values: List[int]) -> str:
    import json

    result = f"{json.dumps(values)}={sum(values)}"
    print(result)
    return result


@dsl.component(base_image="python:3.11")
def greet(name: str) -> str:
    import time

    time.sleep(0.5)
    return f"hi {name}"


@dsl.component(base_image="python:3.11")
def join_words(words: List[str]) -> str:
    return ",".join(words)


@dsl.component(base_image="python:3.11")
def make_list(n: int) -> List[int]:
    return [10 * i for i in range(n)]


@dsl.component(base_image="python:3.11")
def write_item(value: int, item: Output[Dataset]):
    import time

    time.sleep(max(0.0, 0.6 - value * 0.02))
    with open(item.path, "w") as f:
        f.write(f"item-{value}\n")
    item.metadata["value"] = value


@dsl.component(base_image="python:3.11")
def concat_items(items: Input[List[Dataset]]) -> str:
    lines = []
    values = []
    for item in items:
        with open(item.path) as f:
            lines.append(f.read().splitlines()[0])
        values.append(str(int(item.metadata["value"])))
    result = ",".join(lines) + "|" + ",".join(values)
    print(result)
    return result


@dsl.component(base_image="python:3.11")
def use_fields(a: int, b: int) -> str:
    return f"{a}+{b}={a + b}"


@dsl.component(base_image="python:3.11")
def pair(outer: int, inner: str) -> str:
    return f"{outer}{inner}"


@dsl.component(base_image="python:3.11")
def after_loops() -> str:
    return "after"


@dsl.pipeline(name="loops", description="ParallelFor forms and dsl.Collected")
def loops(names: list = ["x", "y", "z"], n: int = 3) -> NamedTuple(
    "Outputs",
    [
        ("squares", List[int]),
        ("sum_squares", str),
        ("joined", str),
        ("concatenated", str),
        ("after", str),
    ],
):
    # Raw list; collected parameter.
    with dsl.ParallelFor([1, 2, 3]) as x:
        squared = square(x=x)
    summed = sum_squares(values=dsl.Collected(squared.output))

    # Pipeline LIST parameter, at most two iterations at a time.
    with dsl.ParallelFor(names, parallelism=2) as name:
        greeted = greet(name=name)
    joined = join_words(words=dsl.Collected(greeted.output))

    # LIST output of an upstream task; collected artifacts.
    listed = make_list(n=n)
    with dsl.ParallelFor(listed.output) as value:
        written = write_item(value=value)
    concatenated = concat_items(items=dsl.Collected(written.outputs["item"]))

    # List of dicts: item fields. (The SDK types every field like the first value of the first
    # dict, so all values are ints here.)
    with dsl.ParallelFor([{"a": 1, "b": 2}, {"a": 3, "b": 4}]) as item:
        use_fields(a=item.a, b=item.b)

    # Nested loops.
    with dsl.ParallelFor([1, 2]) as outer:
        with dsl.ParallelFor(["u", "v"]) as inner:
            pair(outer=outer, inner=inner)

    # After a loop.
    after = after_loops().after(greeted)

    outputs = NamedTuple(
        "Outputs",
        [
            ("squares", List[int]),
            ("sum_squares", str),
            ("joined", str),
            ("concatenated", str),
            ("after", str),
        ],
    )
    return outputs(
        squares=dsl.Collected(squared.output),
        sum_squares=summed.output,
        joined=joined.output,
        concatenated=concatenated.output,
        after=after.output,
    )


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(loops, sys.argv[1] if len(sys.argv) > 1 else default)
