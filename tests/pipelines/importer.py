"""importer: dsl.importer of a local file named by a pipeline parameter, and of a constant URI.

Parameters `data_path: str` (required: an absolute path of an existing file; tests write
`line-1\nline-2\n` to a temporary file) and `owner: str = "tests"`.
* `importer` : dsl.importer(artifact_uri=data_path, artifact_class=Dataset, reimport=False,
               metadata={"source": "parameter", "owner": owner}); the metadata value `owner` is a
               pipeline parameter (compiled as the importer input `metadata`).
* `read-imported` : reads the imported Dataset (Input[Dataset]) and returns
               "<line count>|<first line>|<metadata source>|<metadata owner>", printing it.
* `importer-2` : dsl.importer(artifact_uri="file:///dev/null", artifact_class=Artifact,
               reimport=True, metadata={"source": "constant"}). /dev/null is the one absolute file
               path that exists, with fixed (empty) content, on every host, so the URI can be a
               compile-time constant.
* `read-constant` : reads the imported artifact (its path, or its URI without `file://` when the
               executor leaves the scheme in place) and returns "<byte count>|<metadata source>".
Pipeline outputs: `imported` (read-imported), `constant` (read-constant), `dataset` (the
imported Dataset artifact itself).
"""
import os
import sys
from typing import NamedTuple

from kfp import compiler, dsl
from kfp.dsl import Artifact, Dataset, Input


@dsl.component(base_image="python:3.11")
def read_imported(data: Input[Dataset]) -> str:
    with open(data.path) as f:
        lines = f.read().splitlines()
    result = (
        f"{len(lines)}|{lines[0] if lines else ''}|"
        f"{data.metadata.get('source')}|{data.metadata.get('owner')}"
    )
    print(result)
    return result


@dsl.component(base_image="python:3.11")
def read_constant(data: Input[Artifact]) -> str:
    path = data.path
    if path.startswith("file://"):
        path = path[len("file://"):]
    with open(path, "rb") as f:
        size = len(f.read())
    result = f"{size}|{data.metadata.get('source')}"
    print(result)
    return result


@dsl.pipeline(name="importer", description="dsl.importer of local files")
def importer(data_path: str, owner: str = "tests") -> NamedTuple(
    "Outputs", [("imported", str), ("constant", str), ("dataset", Dataset)]
):
    imported = dsl.importer(
        artifact_uri=data_path,
        artifact_class=Dataset,
        reimport=False,
        metadata={"source": "parameter", "owner": owner},
    )
    read = read_imported(data=imported.output)

    constant = dsl.importer(
        artifact_uri="file:///dev/null",
        artifact_class=Artifact,
        reimport=True,
        metadata={"source": "constant"},
    )
    read_const = read_constant(data=constant.output)

    outputs = NamedTuple(
        "Outputs", [("imported", str), ("constant", str), ("dataset", Dataset)]
    )
    return outputs(imported=read.output, constant=read_const.output, dataset=imported.output)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(importer, sys.argv[1] if len(sys.argv) > 1 else default)
