"""Runs through kfp 1.8's Client: create_run_from_pipeline_func / _package (the workflow
posted inline), wait_for_run_completion, outputs in the workflow manifest and artifacts, run
metrics, list_runs by experiment, archive / unarchive / delete, terminate, retry."""

import json
import time

from support import (
    RUN_TIMEOUT,
    add_then_double,
    api_error,
    flaky,
    napping,
    nodes_by_name,
    output_parameters,
    read_artifact_text,
    reference_ids,
    unique,
    workflow,
)


def test_run_from_pipeline_func(client, server):
    experiment_name = unique("exp-func")
    run_name = unique("func")
    result = client.create_run_from_pipeline_func(
        add_then_double,
        arguments={"a": 20, "b": 22},
        run_name=run_name,
        experiment_name=experiment_name,
    )
    detail = result.wait_for_run_completion(RUN_TIMEOUT)
    run = detail.run
    assert run.status == "Succeeded", run.error
    assert run.name == run_name
    assert run.finished_at is not None
    experiment = client.get_experiment(experiment_name=experiment_name)
    assert reference_ids(run, "EXPERIMENT") == [experiment.id]
    params = {p.name: p.value for p in run.pipeline_spec.parameters}
    assert params == {"a": "20", "b": "22"}

    manifest = workflow(detail)
    assert manifest["kind"] == "Workflow"
    assert manifest["status"]["phase"] == "Succeeded"
    nodes = nodes_by_name(detail)
    assert {n["phase"] for n in nodes.values()} == {"Succeeded"}
    assert output_parameters(nodes["add"]) == {"add-Output": "42"}
    assert read_artifact_text(client, run.id, nodes["double"]["id"], "double-Output") == "84"
    # The output key alone names it too.
    assert read_artifact_text(client, run.id, nodes["double"]["id"], "Output") == "84"

    # The same run through the v2 API.
    v2 = server.get_json(f"/apis/v2beta1/runs/{run.id}")
    assert v2["state"] == "SUCCEEDED"
    assert v2["experiment_id"] == experiment.id


def test_run_metrics(client, v1_yaml):
    experiment_name = unique("exp-metrics")
    result = client.create_run_from_pipeline_package(
        v1_yaml("metrics"), {}, run_name=unique("metrics"), experiment_name=experiment_name
    )
    detail = result.wait_for_run_completion(RUN_TIMEOUT)
    assert detail.run.status == "Succeeded", detail.run.error
    expected = {
        "accuracy": (0.875, "PERCENTAGE", "evaluate"),
        "loss": (0.25, "RAW", "evaluate"),
    }
    metrics = {m.name: (m.number_value, m.format, m.node_id) for m in detail.run.metrics}
    assert metrics == expected
    experiment = client.get_experiment(experiment_name=experiment_name)
    listed = client.list_runs(experiment_id=experiment.id).runs
    assert len(listed) == 1
    assert {m.name: (m.number_value, m.format, m.node_id) for m in listed[0].metrics} == expected


def test_list_runs_by_experiment(client):
    mine = client.create_experiment(unique("exp-list"))
    other = client.create_experiment(unique("exp-other"))
    ids = []
    for a in [1, 2]:
        result = client.create_run_from_pipeline_func(
            add_then_double, {"a": a, "b": 100}, run_name=f"list-{a}", experiment_name=mine.name
        )
        ids.append(result.run_id)
    client.create_run_from_pipeline_func(
        add_then_double, {"a": 3, "b": 100}, run_name="elsewhere", experiment_name=other.name
    )
    for run_id in ids:
        assert client.wait_for_run_completion(run_id, RUN_TIMEOUT).run.status == "Succeeded"

    listed = client.list_runs(experiment_id=mine.id, sort_by="created_at desc")
    assert listed.total_size == 2
    assert [r.id for r in listed.runs] == list(reversed(ids))
    assert all(reference_ids(r, "EXPERIMENT") == [mine.id] for r in listed.runs)

    first = client.list_runs(experiment_id=mine.id, page_size=1, sort_by="name")
    assert [r.name for r in first.runs] == ["list-1"]
    second = client.list_runs(
        experiment_id=mine.id, page_size=1, sort_by="name", page_token=first.next_page_token
    )
    assert [r.name for r in second.runs] == ["list-2"]
    assert not second.next_page_token

    named = client.list_runs(
        filter=json.dumps({"predicates": [{"op": 1, "key": "name", "stringValue": "elsewhere"}]}),
        page_size=100,
    )
    assert {reference_ids(r, "EXPERIMENT")[0] for r in named.runs} == {other.id}


def test_archive_unarchive_delete(client):
    result = client.create_run_from_pipeline_func(
        add_then_double, {"a": 5, "b": 5}, run_name=unique("archive"),
        experiment_name=unique("exp-archive-runs"),
    )
    run_id = result.run_id
    assert client.wait_for_run_completion(run_id, RUN_TIMEOUT).run.status == "Succeeded"
    client.runs.archive_run(run_id)
    assert client.get_run(run_id).run.storage_state == "STORAGESTATE_ARCHIVED"
    client.runs.unarchive_run(run_id)
    assert client.get_run(run_id).run.storage_state == "STORAGESTATE_AVAILABLE"
    client.runs.delete_run(run_id)
    status, message = api_error(client.get_run, run_id)
    assert status == 404 and run_id in message


def test_terminate(client):
    result = client.create_run_from_pipeline_func(
        napping,
        {"seconds": 300, "text": unique("nap")},
        run_name=unique("terminate"),
        experiment_name=unique("exp-terminate"),
    )
    run_id = result.run_id
    # Wait until the task itself is running.
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        detail = client.get_run(run_id)
        node = nodes_by_name(detail).get("nap")
        if node is not None and node["phase"] == "Running":
            break
        assert detail.run.status in ("Pending", "Running"), detail.run.status
        assert time.monotonic() < deadline, "the nap task never started"
        time.sleep(0.2)
    started = time.monotonic()
    client.runs.terminate_run(run_id)
    # kfp 1.8 stops waiting at a terminated run: its workflow ends Failed.
    detail = client.wait_for_run_completion(run_id, 120)
    assert time.monotonic() - started < 60
    assert detail.run.status == "Failed"
    assert detail.run.error
    assert nodes_by_name(detail)["nap"]["phase"] == "Failed"
    status, message = api_error(client.runs.terminate_run, run_id)
    assert status == 412 and "already ended" in message


def test_retry(client, tmp_path):
    state_dir = str(tmp_path / "state")
    result = client.create_run_from_pipeline_func(
        flaky, {"state_dir": state_dir}, run_name=unique("retry"),
        experiment_name=unique("exp-retry"),
    )
    run_id = result.run_id
    detail = client.wait_for_run_completion(run_id, RUN_TIMEOUT)
    assert detail.run.status == "Failed"
    assert nodes_by_name(detail)["fail-once"]["phase"] == "Failed"

    client.runs.retry_run(run_id)
    detail = client.wait_for_run_completion(run_id, RUN_TIMEOUT)
    assert detail.run.status == "Succeeded", detail.run.error
    nodes = nodes_by_name(detail)
    assert output_parameters(nodes["fail-once"]) == {"fail-once-Output": "second time lucky"}
    assert read_artifact_text(client, run_id, nodes["shout"]["id"], "shout-Output") == (
        "SECOND TIME LUCKY!"
    )
    status, message = api_error(client.runs.retry_run, run_id)
    assert status == 412 and "SUCCEEDED" in message


def test_mistakes_are_refused(client, v1_yaml):
    experiment = client.create_experiment(unique("exp-mistakes"))
    status, message = api_error(
        client.run_pipeline, experiment.id, "no pipeline", pipeline_id="no-such-pipeline"
    )
    assert status == 404 and "no-such-pipeline" in message
    status, message = api_error(
        client.run_pipeline,
        experiment.id,
        "unknown parameter",
        pipeline_package_path=v1_yaml("add_chain"),
        params={"a": 1, "b": 2, "c": 3},
    )
    assert status == 400 and '"c"' in message
    status, message = api_error(
        client.run_pipeline,
        "no-such-experiment",
        "no experiment",
        pipeline_package_path=v1_yaml("add_chain"),
        params={"a": 1, "b": 2},
    )
    assert status == 404 and "no-such-experiment" in message
    status, message = api_error(client.get_run, "no-such-run")
    assert status == 404 and "no-such-run" in message
