"""Helpers shared by the tests: v1 pipelines built from lightweight components, reading a
run's workflow manifest, API errors, unique names."""

import base64
import io
import json
import tarfile
import time

import kfp_server_api
import pytest
from kfp import dsl
from kfp.components import create_component_from_func

# Python components may need a managed environment built first (PyPI, once).
RUN_TIMEOUT = 600
DONE = {"succeeded", "failed", "skipped", "error"}


# ---- components and pipelines (kfp 1.8 lightweight components, standard library only) ----


def add(a: int, b: int) -> int:
    return a + b


def double(x: int) -> int:
    return 2 * x


def nap(seconds: int, text: str) -> str:
    import time

    time.sleep(seconds)
    return text


def fail_once(state_dir: str) -> str:
    """Fails the first time (leaving a mark in state_dir), succeeds after."""
    import os

    mark = os.path.join(state_dir, "failed-once")
    if not os.path.exists(mark):
        os.makedirs(state_dir, exist_ok=True)
        with open(mark, "w") as f:
            f.write("x")
        raise SystemExit("failing on purpose the first time")
    return "second time lucky"


def shout(text: str) -> str:
    return text.upper() + "!"


add_op = create_component_from_func(add, base_image="python:3.11")
double_op = create_component_from_func(double, base_image="python:3.11")
nap_op = create_component_from_func(nap, base_image="python:3.11")
fail_once_op = create_component_from_func(fail_once, base_image="python:3.11")
shout_op = create_component_from_func(shout, base_image="python:3.11")


@dsl.pipeline(name="v1-client-add", description="add then double")
def add_then_double(a: int = 1, b: int = 2):
    total = add_op(a, b)
    double_op(total.output)


@dsl.pipeline(name="v1-client-nap")
def napping(seconds: int = 120, text: str = "zzz"):
    nap_op(seconds, text)


@dsl.pipeline(name="v1-client-flaky")
def flaky(state_dir: str):
    first = fail_once_op(state_dir)
    shout_op(first.output)


# ---- reading runs --------------------------------------------------------------------------


def wait_for_status(client, run_id, statuses, timeout=RUN_TIMEOUT):
    """Poll get_run every 0.2 s until the run's status (lowercased) is in `statuses`."""
    deadline = time.monotonic() + timeout
    detail = client.get_run(run_id)
    while (detail.run.status or "").lower() not in statuses:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"run {run_id} still {detail.run.status} after {timeout} s "
                f"(waiting for {sorted(statuses)})"
            )
        time.sleep(0.2)
        detail = client.get_run(run_id)
    return detail


def workflow(detail) -> dict:
    """The run's workflow manifest (pipeline_runtime.workflow_manifest), parsed."""
    return json.loads(detail.pipeline_runtime.workflow_manifest)


def nodes_by_name(detail) -> dict:
    """The workflow's nodes by display name."""
    return {n["displayName"]: n for n in workflow(detail)["status"]["nodes"].values()}


def output_parameters(node) -> dict:
    return {p["name"]: p["value"] for p in node["outputs"].get("parameters", [])}


def read_artifact_text(client, run_id, node_id, name) -> str:
    """The one file of an artifact, read through read_artifact (a base64 gzipped tar)."""
    data = client.runs.read_artifact(run_id, node_id, name).data
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(data)), mode="r:gz") as tar:
        members = tar.getmembers()
        assert len(members) == 1, [m.name for m in members]
        return tar.extractfile(members[0]).read().decode()


def reference_ids(resource, kind) -> list:
    return [r.key.id for r in (resource.resource_references or []) if r.key.type == kind]


# ---- errors --------------------------------------------------------------------------------


def api_error(call, *args, **kwargs) -> tuple:
    """(status, message) of a call that must fail with an API error."""
    with pytest.raises(kfp_server_api.ApiException) as failure:
        call(*args, **kwargs)
    body = failure.value.body
    try:
        message = json.loads(body).get("message", "")
    except (TypeError, ValueError):
        message = body or ""
    return failure.value.status, message


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns()}"
