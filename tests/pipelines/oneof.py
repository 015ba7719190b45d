"""oneof: dsl.OneOf over parameters and over artifacts produced in condition branches.

Parameters `n: int = 7`, `use_csv: bool = True`.
* Group 1 (If n > 5 / Elif n > 2 / Else): `label` returns "big", "medium" or "small";
  `size = dsl.OneOf(...)` of the three outputs.
* Group 2 (If use_csv == True / Else): `make-data` writes an Output[Dataset] whose file is
  `format=csv\n` or `format=tsv\n` and whose metadata is {"format": "csv"|"tsv"};
  `data = dsl.OneOf(...)` of the two dataset outputs.
* `show` (downstream of both groups) reads `size` and the dataset and returns
  "<size>|<first line of the file>|<metadata format>".
Pipeline outputs: `size` (the OneOf parameter), `data` (the OneOf artifact), `shown`.
"""
import os
import sys
from typing import NamedTuple

from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Output


@dsl.component(base_image="python:3.11")
def label(text: str) -> str:
    print(f"label: {text}")
    return text


@dsl.component(base_image="python:3.11")
def make_data(fmt: str, data: Output[Dataset]):
    with open(data.path, "w") as f:
        f.write(f"format={fmt}\n")
    data.metadata["format"] = fmt


@dsl.component(base_image="python:3.11")
def show(size: str, data: Input[Dataset]) -> str:
    with open(data.path) as f:
        first = f.read().splitlines()[0]
    shown = f"{size}|{first}|{data.metadata['format']}"
    print(f"shown: {shown}")
    return shown


@dsl.pipeline(name="oneof", description="dsl.OneOf over parameters and artifacts")
def oneof(n: int = 7, use_csv: bool = True) -> NamedTuple(
    "Outputs", [("size", str), ("data", Dataset), ("shown", str)]
):
    with dsl.If(n > 5):
        big = label(text="big")
    with dsl.Elif(n > 2):
        medium = label(text="medium")
    with dsl.Else():
        small = label(text="small")
    size = dsl.OneOf(big.output, medium.output, small.output)

    with dsl.If(use_csv == True):  # noqa: E712 (compiles to a CEL bool comparison)
        csv = make_data(fmt="csv")
    with dsl.Else():
        tsv = make_data(fmt="tsv")
    data = dsl.OneOf(csv.outputs["data"], tsv.outputs["data"])

    shown = show(size=size, data=data)
    outputs = NamedTuple("Outputs", [("size", str), ("data", Dataset), ("shown", str)])
    return outputs(size=size, data=data, shown=shown.output)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(oneof, sys.argv[1] if len(sys.argv) > 1 else default)
