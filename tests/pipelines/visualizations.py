"""visualizations: one artifact of every kind the web UI draws, for the browser tests.

`make-data` waits `delay` seconds (so that a test can watch a run in progress), then writes a
CSV Dataset (`label,predicted,score`, `rows` data lines); `evaluate` reads
it and logs a Metrics artifact (accuracy = 0.9 × `scale`, loss = 1 − accuracy, rows) and a
ClassificationMetrics artifact (a fixed 3-class confusion matrix and a 4-point ROC curve);
`report` writes an HTML artifact whose script tries to read the embedding page's DOM and
cookies and writes down what happened, and a Markdown artifact. Standard library only; caching
is off on every task so that each run executes (and logs) every step.
"""
import os
import sys
from typing import NamedTuple

from kfp import compiler, dsl
from kfp.dsl import (
    HTML,
    ClassificationMetrics,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Output,
)


@dsl.component(base_image="python:3.11")
def make_data(rows: int, delay: float, data: Output[Dataset]):
    import time

    # Printed (and flushed) before the wait, so that a log viewer sees it while the task runs.
    print(f"make-data: waiting {delay} s", flush=True)
    time.sleep(delay)
    labels = ["cat", "dog", "bird"]
    with open(data.path, "w") as f:
        f.write("label,predicted,score\n")
        for n in range(rows):
            label = labels[n % 3]
            predicted = labels[(n + (1 if n % 4 == 3 else 0)) % 3]
            f.write(f"{label},{predicted},{(n % 10) / 10:.1f}\n")
    data.metadata["rows"] = rows
    print(f"make-data: wrote {rows} rows to {data.path}")


@dsl.component(base_image="python:3.11")
def evaluate(
    data: Input[Dataset],
    scale: float,
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
) -> float:
    with open(data.path) as f:
        lines = f.read().splitlines()
    rows = len(lines) - 1
    accuracy = round(0.9 * scale, 6)
    loss = round(1.0 - accuracy, 6)
    metrics.log_metric("accuracy", accuracy)
    metrics.log_metric("loss", loss)
    metrics.log_metric("rows", rows)
    classification.log_confusion_matrix(
        ["cat", "dog", "bird"],
        [[8, 1, 1], [2, 7, 1], [0, 1, 9]],
    )
    classification.log_roc_curve(
        [0.0, 0.1, 0.3, 1.0],
        [0.0, 0.6, 0.9, 1.0],
        [1.0, 0.8, 0.4, 0.0],
    )
    print(f"evaluate: accuracy={accuracy} loss={loss} rows={rows}")
    return accuracy


@dsl.component(base_image="python:3.11")
def report(accuracy: float, page: Output[HTML], notes: Output[Markdown]):
    # The script runs inside the UI's sandboxed frame. Each probe records "blocked" when the
    # browser refused it, or what it managed to read or change; the results become the
    # document's title and the text of <pre id="probe">, and data-done="1" marks the end.
    script = """
var results = [];
function probe(name, attempt) {
  try { results.push(name + ':' + attempt()); }
  catch (e) { results.push(name + ':blocked'); }
}
probe('parent-dom', function () { return 'READ ' + parent.document.title; });
probe('top-cookie', function () { return 'READ ' + top.document.cookie; });
probe('own-cookie', function () {
  var c = document.cookie; return c ? 'READ ' + c : 'empty';
});
probe('local-storage', function () {
  return 'READ ' + window.localStorage.length;
});
probe('parent-write', function () {
  parent.document.title = 'hijacked by artifact';
  parent.document.body.setAttribute('data-hijacked', '1');
  return 'WROTE';
});
var out = document.getElementById('probe');
out.textContent = results.join('\\n');
out.setAttribute('data-done', '1');
document.title = 'probe ' + results.join(' ');
"""
    with open(page.path, "w") as f:
        f.write(
            "<!doctype html>\n<html><head><title>probe pending</title></head><body>\n"
            f"<h1 id=\"report-title\">Evaluation report</h1>\n"
            f"<p id=\"accuracy\">accuracy {accuracy}</p>\n"
            "<pre id=\"probe\" data-done=\"0\">not run</pre>\n"
            f"<script>{script}</script>\n</body></html>\n"
        )
    with open(notes.path, "w") as f:
        f.write(
            "# Evaluation notes\n\n"
            f"The model reached **accuracy {accuracy}**.\n\n"
            "| class | note |\n|---|---|\n| cat | fine |\n| bird | best |\n\n"
            "- first point\n- second point\n"
        )
    print(f"report: wrote {page.path} and {notes.path}")


@dsl.pipeline(name="visualizations", description="every artifact kind the web UI draws")
def visualizations(scale: float = 1.0, rows: int = 12, delay: float = 0.0) -> NamedTuple(
    "PipelineOutputs", [("accuracy", float), ("metrics", Metrics)]
):
    data = make_data(rows=rows, delay=delay).set_caching_options(False)
    scored = evaluate(data=data.outputs["data"], scale=scale).set_caching_options(False)
    report(accuracy=scored.outputs["Output"]).set_caching_options(False)
    pipeline_outputs = NamedTuple(
        "PipelineOutputs", [("accuracy", float), ("metrics", Metrics)]
    )
    return pipeline_outputs(
        accuracy=scored.outputs["Output"], metrics=scored.outputs["metrics"]
    )


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(visualizations, sys.argv[1] if len(sys.argv) > 1 else default)
