"""caching: which tasks a second identical run serves from the cache, counted through files.

Parameters `state_dir: str` (required; an existing directory that the test keeps between runs)
and `content: str = "alpha"`. Every task appends one line (its label) to
`<state_dir>/<label>.log` each time it really executes, so the line count of each file is the
number of real executions of that task.

* `record` (lightweight, caching on): label "record"; returns "recorded".
* `record-2` (lightweight, caching OFF): label "record-nocache"; returns "recorded".
* `record-sh` (container, caching on): label "container"; writes `container-done` to its output
  parameter `done`.
* `make-data` (caching on): label "make-data"; writes Output[Dataset] with the text `content`.
* `read-data` (caching on): label "read-data"; reads make-data's dataset and returns its text.
* `make-data-2` (caching OFF): label "make-data-nocache"; always writes the same text "fixed".
* `read-data-2` (caching on): label "read-data-fixed"; reads make-data-2's dataset. Its producer
  really runs every time but writes identical bytes, so a cache keyed on the input artifact's
  content (not on its URI or identity) serves it from the cache on a repeated run.
Pipeline outputs: `recorded` (record), `text` (read-data), `fixed_text` (read-data-2),
`container` (record-sh.done).
"""
import os
import sys
from typing import NamedTuple

from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Output

RECORD_SCRIPT = """set -e
mkdir -p "$(dirname "$1")"
echo container >> "$0/container.log"
echo -n container-done > "$1"
"""


@dsl.component(base_image="python:3.11")
def record(state_dir: str, label: str) -> str:
    import os

    with open(os.path.join(state_dir, f"{label}.log"), "a") as f:
        f.write(f"{label}\n")
    print(f"executed {label}")
    return "recorded"


@dsl.container_component
def record_sh(state_dir: str, done: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine", command=["sh", "-c", RECORD_SCRIPT, state_dir, done]
    )


@dsl.component(base_image="python:3.11")
def make_data(state_dir: str, label: str, text: str, data: Output[Dataset]):
    import os

    with open(os.path.join(state_dir, f"{label}.log"), "a") as f:
        f.write(f"{label}\n")
    with open(data.path, "w") as f:
        f.write(text)
    print(f"executed {label}")


@dsl.component(base_image="python:3.11")
def read_data(state_dir: str, label: str, data: Input[Dataset]) -> str:
    import os

    with open(os.path.join(state_dir, f"{label}.log"), "a") as f:
        f.write(f"{label}\n")
    with open(data.path) as f:
        text = f.read()
    print(f"executed {label}: {text}")
    return text


@dsl.pipeline(name="caching", description="cache hits and misses, counted in state_dir")
def caching(state_dir: str, content: str = "alpha") -> NamedTuple(
    "Outputs", [("recorded", str), ("text", str), ("fixed_text", str), ("container", str)]
):
    cached = record(state_dir=state_dir, label="record")
    uncached = record(state_dir=state_dir, label="record-nocache")
    uncached.set_caching_options(False)
    container = record_sh(state_dir=state_dir)

    made = make_data(state_dir=state_dir, label="make-data", text=content)
    read = read_data(state_dir=state_dir, label="read-data", data=made.outputs["data"])

    made_fixed = make_data(state_dir=state_dir, label="make-data-nocache", text="fixed")
    made_fixed.set_caching_options(False)
    read_fixed = read_data(
        state_dir=state_dir, label="read-data-fixed", data=made_fixed.outputs["data"]
    )

    outputs = NamedTuple(
        "Outputs", [("recorded", str), ("text", str), ("fixed_text", str), ("container", str)]
    )
    return outputs(
        recorded=cached.output,
        text=read.output,
        fixed_text=read_fixed.output,
        container=container.outputs["done"],
    )


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(caching, sys.argv[1] if len(sys.argv) > 1 else default)
