"""exit_handler: dsl.ExitHandler whose body succeeds; the exit task reads the final status.

* Body (`exit-handler-1`): `produce-message` returns "body-ok", then `print-message` prints it
  and returns it.
* Exit task `report-status` takes `status: dsl.PipelineTaskFinalStatus` (compiled as a
  `taskFinalStatus` input on `exit-handler-1`, trigger strategy ALL_UPSTREAM_TASKS_COMPLETED). It
  prints one line per field (`state=`, `task=`, `job=`, `error_code=`, `error_message=`) and
  returns the NamedTuple `state`, `task_name`, `error` ("<error_code>:<error_message>").
  Its caching is off (its input names the run). Pipeline outputs `state` and `task_name` are
  report-status's outputs (the SDK allows no pipeline output from inside the ExitHandler).
See exit_handler_fail.py for the variant whose body fails.
"""
import os
import sys
from typing import NamedTuple

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def produce_message() -> str:
    return "body-ok"


@dsl.component(base_image="python:3.11")
def print_message(msg: str) -> str:
    print(f"message: {msg}")
    return msg


@dsl.component(base_image="python:3.11")
def report_status(
    status: dsl.PipelineTaskFinalStatus,
) -> NamedTuple("StatusOutputs", [("state", str), ("task_name", str), ("error", str)]):
    from collections import namedtuple

    print(f"state={status.state}")
    print(f"task={status.pipeline_task_name}")
    print(f"job={status.pipeline_job_resource_name}")
    print(f"error_code={status.error_code}")
    print(f"error_message={status.error_message}")
    outputs = namedtuple("StatusOutputs", ["state", "task_name", "error"])
    return outputs(
        state=str(status.state),
        task_name=str(status.pipeline_task_name),
        error=f"{status.error_code}:{status.error_message}",
    )


@dsl.pipeline(name="exit-handler", description="exit handler around a succeeding body")
def exit_handler() -> NamedTuple("Outputs", [("state", str), ("task_name", str)]):
    report = report_status()
    report.set_caching_options(False)
    with dsl.ExitHandler(report):
        produced = produce_message()
        print_message(msg=produced.output)
    outputs = NamedTuple("Outputs", [("state", str), ("task_name", str)])
    return outputs(state=report.outputs["state"], task_name=report.outputs["task_name"])


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(exit_handler, sys.argv[1] if len(sys.argv) > 1 else default)
