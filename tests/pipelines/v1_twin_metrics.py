"""v1_twin_metrics: the v2 twin of tests/pipelines_v1/metrics.py, written with the kfp 2 SDK.

* `evaluate` logs accuracy = 0.875 and loss = 0.25 on its Output[Metrics] `metrics` (the values
  live in the artifact's metadata) and writes "# Evaluation" to its Output[Markdown] `notes`.
v1 writes the same two numbers as `mlpipeline-metrics` JSON, which Coracle turns into the metadata
of a system.Metrics artifact, so both runs end with a metrics artifact whose metadata is
{"accuracy": 0.875, "loss": 0.25}. v1's `mlpipeline-ui-metadata` (markdown, a table, a confusion
matrix, a ROC curve and a web app for the v1 UI) is matched here only by the Markdown artifact.
"""
import os
import sys

from kfp import compiler, dsl
from kfp.dsl import Markdown, Metrics, Output


@dsl.component(base_image="python:3.11")
def evaluate(metrics: Output[Metrics], notes: Output[Markdown]):
    metrics.log_metric("accuracy", 0.875)
    metrics.log_metric("loss", 0.25)
    with open(notes.path, "w") as f:
        f.write("# Evaluation\n")


@dsl.pipeline(name="v1-twin-metrics", description="v2 twin of the v1 metrics pipeline")
def v1_twin_metrics():
    evaluate()


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(v1_twin_metrics, sys.argv[1] if len(sys.argv) > 1 else default)
