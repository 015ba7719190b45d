"""metrics (KFP v1): the mlpipeline-metrics and mlpipeline-ui-metadata outputs.
* `evaluate` (lightweight) writes mlpipeline-metrics
  {"metrics": [{"name": "accuracy", "numberValue": 0.875, "format": "PERCENTAGE"},
               {"name": "loss", "numberValue": 0.25, "format": "RAW"}]}
  and mlpipeline-ui-metadata with a markdown output ("# Evaluation") and an inline table.
Run metrics: accuracy = 0.875, loss = 0.25 (the `mlpipeline-metrics` artifact is a
system.Metrics artifact with that metadata); `mlpipeline-ui-metadata` is a coracle.UiMetadata
artifact holding the JSON.
"""
import os
import sys

from kfp import compiler, dsl
from kfp.components import OutputPath, create_component_from_func


def evaluate(mlpipeline_metrics_path: OutputPath("Metrics"), mlpipeline_ui_metadata_path: OutputPath()):
    import json

    with open(mlpipeline_metrics_path, "w") as f:
        json.dump(
            {
                "metrics": [
                    {"name": "accuracy", "numberValue": 0.875, "format": "PERCENTAGE"},
                    {"name": "loss", "numberValue": 0.25, "format": "RAW"},
                ]
            },
            f,
        )
    with open(mlpipeline_ui_metadata_path, "w") as f:
        json.dump(
            {
                "outputs": [
                    {"type": "markdown", "storage": "inline", "source": "# Evaluation"},
                    {
                        "type": "table",
                        "storage": "inline",
                        "format": "csv",
                        "header": ["class", "precision"],
                        "source": "cat,0.9\ndog,0.85",
                    },
                ]
            },
            f,
        )


evaluate_op = create_component_from_func(evaluate, base_image="python:3.11")


@dsl.pipeline(name="metrics", description="mlpipeline-metrics and mlpipeline-ui-metadata")
def metrics():
    evaluate_op()


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(metrics, sys.argv[1] if len(sys.argv) > 1 else default)
