"""exit_handler_fail: dsl.ExitHandler whose body fails, and .ignore_upstream_failure().

* Body (`exit-handler-1`):
    - `fail-step` prints "fail-step-marker" and raises RuntimeError("body failure");
    - `cleanup` runs .after(fail-step) with .ignore_upstream_failure() (trigger strategy
      ALL_UPSTREAM_TASKS_COMPLETED): it runs although fail-step failed, prints
      "cleanup-marker" and returns "cleaned".
* Exit task `report-status` (the same component as in exit_handler.py) takes
  `status: dsl.PipelineTaskFinalStatus` of `exit-handler-1`; it runs and succeeds, and reports
  the state of the failed body.
Caching is off on every task. The run ends FAILED.
"""
import os
import sys
from typing import NamedTuple

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def fail_step():
    print("fail-step-marker", flush=True)
    raise RuntimeError("body failure")


@dsl.component(base_image="python:3.11")
def cleanup() -> str:
    print("cleanup-marker")
    return "cleaned"


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


@dsl.pipeline(name="exit-handler-fail", description="exit handler around a failing body")
def exit_handler_fail():
    report = report_status()
    report.set_caching_options(False)
    with dsl.ExitHandler(report):
        failed = fail_step()
        failed.set_caching_options(False)
        cleaned = cleanup().after(failed).ignore_upstream_failure()
        cleaned.set_caching_options(False)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(exit_handler_fail, sys.argv[1] if len(sys.argv) > 1 else default)
