"""file_passing (KFP v1): files between tasks through InputPath / OutputPath, NamedTuple return
values, a ContainerOp with file outputs and an InputArgumentPath, a constant passed to an
InputPath (a raw artifact), `.after()` and `set_display_name`.

Parameter `text: str = "hello v1"`.
* `write-text` writes `text` to its output file `out`.
* `measure` (display name "measure text") reads it (InputPath) and returns the NamedTuple
  `length` = len(text) and `upper` = text.upper().
* `shout` (ContainerOp, alpine) writes "<upper>!" to /tmp/shout/out.txt, its file output `shout`.
* `count-chars` (ContainerOp) reads `write-text`'s file through dsl.InputArgumentPath and
  writes its size in bytes (`wc -c`) to /tmp/count/out.txt (file output `count`).
* `measure-2` measures the constant "constant data" passed to the InputPath: `length` = 13.
* `report` runs after `shout` and `count-chars` (`.after()`), reads `shout`'s file and writes
  "<shout> <count>" to its output `summary`.
With the default text: measure.length = "8", measure.upper = "HELLO V1", shout.shout =
"HELLO V1!", count-chars.count = "8", measure-2.length = "13", report.summary = "HELLO V1! 8".
"""
import os
import sys
from typing import NamedTuple

from kfp import compiler, dsl
from kfp.components import InputPath, OutputPath, create_component_from_func


def write_text(text: str, out_path: OutputPath(str)):
    with open(out_path, "w") as f:
        f.write(text)


def measure(data_path: InputPath(str)) -> NamedTuple("Outputs", [("length", int), ("upper", str)]):
    with open(data_path) as f:
        text = f.read()
    return (len(text), text.upper())


def report(shout_path: InputPath(str), count: str, summary_path: OutputPath(str)):
    with open(shout_path) as f:
        shout = f.read()
    with open(summary_path, "w") as f:
        f.write(f"{shout} {count}")


write_op = create_component_from_func(write_text, base_image="python:3.11")
measure_op = create_component_from_func(measure, base_image="python:3.11")
report_op = create_component_from_func(report, base_image="python:3.11")


@dsl.pipeline(name="file-passing", description="files, NamedTuples, ContainerOp file outputs")
def file_passing(text: str = "hello v1"):
    write = write_op(text)
    measured = measure_op(write.output).set_display_name("measure text")
    shout = dsl.ContainerOp(
        name="shout",
        image="alpine",
        command=["sh", "-c", 'mkdir -p /tmp/shout && printf "%s!" "$0" > /tmp/shout/out.txt',
                 measured.outputs["upper"]],
        file_outputs={"shout": "/tmp/shout/out.txt"},
    )
    count = dsl.ContainerOp(
        name="count-chars",
        image="alpine",
        command=["sh", "-c", 'mkdir -p /tmp/count && wc -c < "$0" | tr -d " " | tr -d "\\n" > /tmp/count/out.txt',
                 dsl.InputArgumentPath(write.output)],
        file_outputs={"count": "/tmp/count/out.txt"},
    )
    measure_op("constant data")
    report_op(shout.outputs["shout"], count.outputs["count"]).after(shout, count)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(file_passing, sys.argv[1] if len(sys.argv) > 1 else default)
