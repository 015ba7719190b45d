"""v1_twin_file_passing: the v2 twin of tests/pipelines_v1/file_passing.py, written with the
kfp 2 SDK so that every task computes the value its v1 namesake computes.

In v1 every output is a file that can also be read as a value. In v2 an output is either an
artifact (a file) or a parameter (a value): here what a later task reads as a file is an
artifact (`write-text.out`, `shout.shout`) and the rest are parameters. (kfp 2.14.6 compiles
`InputPath(str)` as a STRING parameter, but its executor then looks for an input artifact of
that name and fails, so a parameter cannot be read as a file.)

Parameter `text: str = "hello v1"`. Task keys are the v1 task names.
* `write-text` writes `text` to its output artifact `out`.
* `measure` (display name "measure text") reads `out` (Input[Artifact]) and returns the
  NamedTuple `length` = len(text), `upper` = text.upper().
* `shout` (container, alpine) writes "<upper>!" to its output artifact `shout`.
* `count-chars` (container) reads `write-text`'s artifact (its path, as v1's
  dsl.InputArgumentPath) and writes its size in bytes (`wc -c`) to its OutputPath(str) `count`.
* `measure-2` measures "constant data". v1 passes the constant straight to the InputPath (a raw
  artifact); v2 cannot give a constant to an artifact input, so `write-text-2` writes it first:
  `length` = 13, `upper` = "CONSTANT DATA".
* `report` runs after `shout` and `count-chars` (`.after()`), reads `shout`'s file and writes
  "<shout> <count>" to its OutputPath(str) `summary`.
With the default text: measure.length = 8, measure.upper = "HELLO V1", shout.shout file
"HELLO V1!", count-chars.count = "8", measure-2.length = 13, report.summary = "HELLO V1! 8";
the pipeline outputs `summary` and `length` are report.summary and measure.length.
"""
import os
import sys
from typing import NamedTuple

from kfp import compiler, dsl
from kfp.dsl import Artifact, Input, Output, OutputPath


@dsl.component(base_image="python:3.11")
def write_text(text: str, out: Output[Artifact]):
    with open(out.path, "w") as f:
        f.write(text)


@dsl.component(base_image="python:3.11")
def measure(data: Input[Artifact]) -> NamedTuple("Outputs", [("length", int), ("upper", str)]):
    from collections import namedtuple

    with open(data.path) as f:
        text = f.read()
    outputs = namedtuple("Outputs", ["length", "upper"])
    return outputs(length=len(text), upper=text.upper())


@dsl.container_component
def shout(upper: str, shout: Output[Artifact]):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", 'mkdir -p "$(dirname "$1")" && printf "%s!" "$0" > "$1"'],
        args=[upper, shout.path],
    )


@dsl.container_component
def count_chars(data: Input[Artifact], count: OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine",
        command=[
            "sh",
            "-c",
            'mkdir -p "$(dirname "$1")" && wc -c < "$0" | tr -d " " | tr -d "\\n" > "$1"',
        ],
        args=[data.path, count],
    )


@dsl.component(base_image="python:3.11")
def report(shout: Input[Artifact], count: str, summary: OutputPath(str)):
    with open(shout.path) as f:
        shouted = f.read()
    with open(summary, "w") as f:
        f.write(f"{shouted} {count}")


@dsl.pipeline(name="v1-twin-file-passing", description="v2 twin of the v1 file_passing pipeline")
def v1_twin_file_passing(
    text: str = "hello v1",
) -> NamedTuple("Outputs", [("summary", str), ("length", int)]):
    write = write_text(text=text)
    measured = measure(data=write.outputs["out"]).set_display_name("measure text")
    shouted = shout(upper=measured.outputs["upper"])
    counted = count_chars(data=write.outputs["out"])
    constant = write_text(text="constant data")
    measure(data=constant.outputs["out"])
    summary = report(shout=shouted.outputs["shout"], count=counted.outputs["count"]).after(
        shouted, counted
    )
    outputs = NamedTuple("Outputs", [("summary", str), ("length", int)])
    return outputs(summary=summary.outputs["summary"], length=measured.outputs["length"])


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(v1_twin_file_passing, sys.argv[1] if len(sys.argv) > 1 else default)
