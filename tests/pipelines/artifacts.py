"""artifacts: typed artifacts between lightweight components.

`produce` writes an Output[Dataset] (CSV text: a header plus `rows` data lines), an
Output[Model] (text), logs Output[Metrics] (accuracy 0.9, loss 0.25, rows), writes an
Output[HTML] and an Output[Markdown], and sets metadata on the dataset and the model.
`consume` reads Input[Dataset] and Input[Model], checks their content and the metadata the
producer set, and returns the CSV line count plus a summary string.
The pipeline outputs the line count, the summary and the dataset and metrics artifacts.
"""
import os
import sys
from typing import NamedTuple

from kfp import compiler, dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Model, Output


@dsl.component(base_image="python:3.11")
def produce(
    rows: int,
    dataset: Output[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    report_html: Output[HTML],
    report_md: Output[Markdown],
):
    with open(dataset.path, "w") as f:
        f.write("x,y\n")
        for n in range(rows):
            f.write(f"{n},{n * n}\n")
    dataset.metadata["rows"] = rows
    dataset.metadata["format"] = "csv"

    with open(model.path, "w") as f:
        f.write("weights: 1 2 3\n")
    model.metadata["framework"] = "plain-text"
    model.metadata["version"] = 3

    metrics.log_metric("accuracy", 0.9)
    metrics.log_metric("loss", 0.25)
    metrics.log_metric("rows", rows)

    with open(report_html.path, "w") as f:
        f.write(f"<html><body><h1>report</h1><p>rows={rows}</p></body></html>\n")
    with open(report_md.path, "w") as f:
        f.write(f"# Report\n\nrows: {rows}\n")
    print(f"produced dataset at {dataset.uri}")


@dsl.component(base_image="python:3.11")
def consume(
    dataset: Input[Dataset], model: Input[Model]
) -> NamedTuple("ConsumeOutputs", [("line_count", int), ("summary", str)]):
    from collections import namedtuple

    with open(dataset.path) as f:
        lines = f.read().splitlines()
    if lines[0] != "x,y":
        raise ValueError(f"unexpected CSV header {lines[0]!r}")
    with open(model.path) as f:
        weights = f.read()
    if weights != "weights: 1 2 3\n":
        raise ValueError(f"unexpected model content {weights!r}")
    # Metadata set by the producer must reach the consumer's input artifacts.
    if dataset.metadata.get("format") != "csv":
        raise ValueError(f"dataset metadata not propagated: {dataset.metadata!r}")
    rows = int(dataset.metadata["rows"])
    framework = model.metadata.get("framework")
    version = int(model.metadata.get("version"))
    summary = f"rows={rows};lines={len(lines)};framework={framework};version={version}"
    print(summary)
    outputs = namedtuple("ConsumeOutputs", ["line_count", "summary"])
    return outputs(line_count=len(lines), summary=summary)


@dsl.pipeline(name="artifacts", description="typed artifacts, metadata and metrics")
def artifacts(rows: int = 3) -> NamedTuple(
    "PipelineOutputs",
    [("line_count", int), ("summary", str), ("dataset", Dataset), ("metrics", Metrics)],
):
    produced = produce(rows=rows)
    consumed = consume(
        dataset=produced.outputs["dataset"], model=produced.outputs["model"]
    )
    pipeline_outputs = NamedTuple(
        "PipelineOutputs",
        [("line_count", int), ("summary", str), ("dataset", Dataset), ("metrics", Metrics)],
    )
    return pipeline_outputs(
        line_count=consumed.outputs["line_count"],
        summary=consumed.outputs["summary"],
        dataset=produced.outputs["dataset"],
        metrics=produced.outputs["metrics"],
    )


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(artifacts, sys.argv[1] if len(sys.argv) > 1 else default)
