"""artifact_loop: dsl.ParallelFor over a list of artifacts, and .after() inside a loop body.

No parameters.
* Loop over the raw list [0, 1, 2]: `make` writes an Output[Dataset] `data-<i>\n` with metadata
  {"i": i}; `stamp` runs .after(make) in the same iteration (no data between them) and returns
  "stamped-<i>"; it starts only after that iteration's `make` ended.
* `inner` is a pipeline used as a component with input `ds: Input[List[Dataset]]`; it loops over
  the artifacts themselves (compiled to an `artifactIterator`), `read` returns
  "<first line>/<metadata i>" for each, and `inner` outputs dsl.Collected of those strings.
* `join` gets that list and the stamps and returns them joined.
Pipeline output `Output` = "data-0/0,data-1/1,data-2/2|stamped-0,stamped-1,stamped-2".
"""
import os
import sys
from typing import List

from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Output


@dsl.component(base_image="python:3.11")
def make(i: int, out: Output[Dataset]):
    with open(out.path, "w") as f:
        f.write(f"data-{i}\n")
    out.metadata["i"] = i


@dsl.component(base_image="python:3.11")
def stamp(i: int) -> str:
    return f"stamped-{i}"


@dsl.component(base_image="python:3.11")
def read(d: Input[Dataset]) -> str:
    with open(d.path) as f:
        return f.read().strip() + f"/{d.metadata['i']}"


@dsl.component(base_image="python:3.11")
def join(read: List[str], stamps: List[str]) -> str:
    return ",".join(read) + "|" + ",".join(stamps)


@dsl.pipeline(name="inner")
def inner(ds: Input[List[Dataset]]) -> List[str]:
    with dsl.ParallelFor(ds) as d:
        r = read(d=d)
    return dsl.Collected(r.output)


@dsl.pipeline(name="artifact-loop")
def artifact_loop() -> str:
    with dsl.ParallelFor([0, 1, 2]) as i:
        m = make(i=i)
        s = stamp(i=i).after(m)
    t = inner(ds=dsl.Collected(m.outputs["out"]))
    return join(read=t.output, stamps=dsl.Collected(s.output)).output


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(artifact_loop, sys.argv[1] if len(sys.argv) > 1 else default)
