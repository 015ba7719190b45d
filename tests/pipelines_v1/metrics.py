"""metrics (KFP v1): the mlpipeline-metrics and mlpipeline-ui-metadata outputs.
* `evaluate` (lightweight) writes mlpipeline-metrics
  {"metrics": [{"name": "accuracy", "numberValue": 0.875, "format": "PERCENTAGE"},
               {"name": "loss", "numberValue": 0.25, "format": "RAW"}]}
  and mlpipeline-ui-metadata with five inline outputs, one of each kind the v1 UI draws:
  - markdown "# Evaluation";
  - a table (header class, precision; rows cat 0.9, dog 0.85);
  - a confusion_matrix (labels cat, dog; CSV target,predicted,count with cat->cat 9,
    cat->dog 2, dog->cat 0, dog->dog 5: 14 of 16 right, the accuracy above);
  - a roc (CSV fpr,tpr,thresholds: (0,0,1), (0.125,0.75,0.6), (0.25,0.9,0.4), (1,1,0));
  - a web-app: a small HTML page whose script fills in `#app-status` ("script ran").
Run metrics: accuracy = 0.875, loss = 0.25 (the `mlpipeline-metrics` artifact is a
system.Metrics artifact with that metadata); `mlpipeline-ui-metadata` is a coracle.UiMetadata
artifact holding the JSON, drawn on its artifact page.
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
                    {
                        "type": "confusion_matrix",
                        "storage": "inline",
                        "format": "csv",
                        "schema": [
                            {"name": "target", "type": "CATEGORY"},
                            {"name": "predicted", "type": "CATEGORY"},
                            {"name": "count", "type": "NUMBER"},
                        ],
                        "labels": ["cat", "dog"],
                        "source": "cat,cat,9\ncat,dog,2\ndog,cat,0\ndog,dog,5",
                    },
                    {
                        "type": "roc",
                        "storage": "inline",
                        "format": "csv",
                        "schema": [
                            {"name": "fpr", "type": "NUMBER"},
                            {"name": "tpr", "type": "NUMBER"},
                            {"name": "thresholds", "type": "NUMBER"},
                        ],
                        "source": "0,0,1\n0.125,0.75,0.6\n0.25,0.9,0.4\n1,1,0",
                    },
                    {
                        "type": "web-app",
                        "storage": "inline",
                        "source": (
                            "<html><body><h2 id='app-title'>Evaluation app</h2>"
                            "<p id='app-status'>waiting</p>"
                            "<script>document.getElementById('app-status').textContent"
                            " = 'script ran';</script></body></html>"
                        ),
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
