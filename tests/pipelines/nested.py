"""nested: pipelines used as components inside other pipelines, two levels deep.

* `inner` (pipeline) takes `x: int`, `y: int = 10`, `label: str = "inner"`,
  `note: Optional[str] = None`; its tasks `add` (x + y) and `describe`
  ("<label>=<value>;note=<note or none>") give the outputs `total` (int) and `text` (str).
* `middle` (pipeline) takes `x: int`, `label: str = "middle"`:
    - task `inner`   : inner(x=x)                                  (y, label, note unset)
    - task `inner-2` : inner(x=inner.total, y=5, label=label, note="given")
  and outputs `total` = inner-2.total and `text` = inner.text + " / " + inner-2.text
  (joined by its own task `describe-pair`).
* the root pipeline `nested` takes `x: int = 1` and runs:
    - task `middle`   : middle(x=x)                                (label unset)
    - task `middle-2` : middle(x=100, label="custom")
    - task `describe` : describe(label="outer", value=middle.total) (note unset)
  and outputs `total` (middle.total), `text` (middle.text), `custom_text` (middle-2.text),
  `outer` (describe.Output).
"""
import os
import sys
from typing import NamedTuple, Optional

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def add(a: int, b: int) -> int:
    return a + b


@dsl.component(base_image="python:3.11")
def describe(label: str, value: int, note: Optional[str] = None) -> str:
    text = f"{label}={value};note={note or 'none'}"
    print(text)
    return text


@dsl.component(base_image="python:3.11")
def describe_pair(first: str, second: str) -> str:
    return f"{first} / {second}"


@dsl.pipeline(name="inner")
def inner(
    x: int, y: int = 10, label: str = "inner", note: Optional[str] = None
) -> NamedTuple("InnerOutputs", [("total", int), ("text", str)]):
    total = add(a=x, b=y)
    text = describe(label=label, value=total.output, note=note)
    outputs = NamedTuple("InnerOutputs", [("total", int), ("text", str)])
    return outputs(total=total.output, text=text.output)


@dsl.pipeline(name="middle")
def middle(
    x: int, label: str = "middle"
) -> NamedTuple("MiddleOutputs", [("total", int), ("text", str)]):
    first = inner(x=x)
    second = inner(x=first.outputs["total"], y=5, label=label, note="given")
    pair = describe_pair(first=first.outputs["text"], second=second.outputs["text"])
    outputs = NamedTuple("MiddleOutputs", [("total", int), ("text", str)])
    return outputs(total=second.outputs["total"], text=pair.output)


@dsl.pipeline(name="nested", description="pipelines as components, two levels deep")
def nested(x: int = 1) -> NamedTuple(
    "Outputs", [("total", int), ("text", str), ("custom_text", str), ("outer", str)]
):
    default_middle = middle(x=x)
    custom_middle = middle(x=100, label="custom")
    outer = describe(label="outer", value=default_middle.outputs["total"])
    outputs = NamedTuple(
        "Outputs", [("total", int), ("text", str), ("custom_text", str), ("outer", str)]
    )
    return outputs(
        total=default_middle.outputs["total"],
        text=default_middle.outputs["text"],
        custom_text=custom_middle.outputs["text"],
        outer=outer.output,
    )


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(nested, sys.argv[1] if len(sys.argv) > 1 else default)
