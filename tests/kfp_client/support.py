"""Helpers shared by the tests: waiting for runs, reading API errors, unique names."""

import json
import time

import kfp_server_api
import pytest

# Python components may need a managed environment built first (PyPI, once).
PYTHON_RUN_TIMEOUT = 600
CONTAINER_RUN_TIMEOUT = 120
FINAL_STATES = {"SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"}


def wait_for_state(client, run_id, states=FINAL_STATES, timeout=CONTAINER_RUN_TIMEOUT):
    """Poll get_run every 0.2 s until the run is in one of `states`; return the run."""
    deadline = time.monotonic() + timeout
    run = client.get_run(run_id)
    while run.state not in states:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"run {run_id} still {run.state} after {timeout} s (waiting for {sorted(states)})"
            )
        time.sleep(0.2)
        run = client.get_run(run_id)
    return run


def api_status(call, *args, **kwargs) -> int:
    """The HTTP status of a call that must fail with an API error."""
    with pytest.raises(kfp_server_api.ApiException) as failure:
        call(*args, **kwargs)
    return failure.value.status


def api_error_message(call, *args, **kwargs) -> tuple:
    """(status, message) of a call that must fail with an API error."""
    with pytest.raises(kfp_server_api.ApiException) as failure:
        call(*args, **kwargs)
    body = failure.value.body
    try:
        message = json.loads(body).get("message", "")
    except (TypeError, ValueError):
        message = body or ""
    return failure.value.status, message


def tasks_by_name(run) -> dict:
    """The run's task details by display name (the run's top-level DAG task left out)."""
    details = (run.run_details.task_details if run.run_details else None) or []
    return {t.display_name: t for t in details}


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns()}"
