"""Runs through kfp.Client: create from a function, a package and a pipeline version; wait,
get, list (filter, sort, pages), archive, delete, terminate."""

import json

from suite_pipelines import add_and_describe, fails_midway, greet_and_shout, sleeper
from support import (
    PYTHON_RUN_TIMEOUT,
    api_error_message,
    api_status,
    tasks_by_name,
    unique,
    wait_for_state,
)


def predicates(*items) -> str:
    return json.dumps({"predicates": [dict(zip(("key", "operation", "stringValue"), i)) for i in items]})


def recorded_task(recorded: dict, name: str) -> dict:
    """The store's record of a task (the last attempt) by name."""
    tasks = [t for t in recorded["tasks"] if t["name"] == name]
    assert tasks, f"no task {name} in {[t['name'] for t in recorded['tasks']]}"
    return tasks[-1]


def test_run_from_pipeline_func_succeeds_with_outputs(client, server):
    experiment_name = unique("runs-func")
    result = client.create_run_from_pipeline_func(
        add_and_describe,
        arguments={"a": 20, "b": 22},
        run_name=unique("add"),
        experiment_name=experiment_name,
        enable_caching=False,
    )
    assert result.run_id
    # kfp.Client's own wait (polls every 5 s).
    run = result.wait_for_run_completion(timeout=PYTHON_RUN_TIMEOUT)
    assert run.run_id == result.run_id
    assert run.state == "SUCCEEDED", run.error
    assert run.experiment_id == client.get_experiment(experiment_name=experiment_name).experiment_id
    assert run.runtime_config.parameters == {"a": 20, "b": 22}
    assert run.created_at <= run.finished_at
    history = [s.state for s in run.state_history or []]
    assert "RUNNING" in history and history[-1] == "SUCCEEDED", history

    tasks = tasks_by_name(run)
    assert tasks["add"].state == "SUCCEEDED"
    assert tasks["describe-number"].state == "SUCCEEDED"
    assert tasks["add"].end_time <= tasks["describe-number"].start_time

    recorded = server.recorded_run(run.run_id)
    assert recorded["state"] == "SUCCEEDED"
    assert recorded_task(recorded, "add")["outputs"]["parameters"]["Output"] == 42
    assert recorded["outputs"]["parameters"]["Output"] == "sum=42"


def test_run_from_pipeline_package_that_fails(client, tmp_yaml):
    path = tmp_yaml(fails_midway)
    result = client.create_run_from_pipeline_package(
        path, arguments={"code": 3}, run_name=unique("fails"), enable_caching=False
    )
    run = wait_for_state(client, result.run_id)
    assert run.state == "FAILED"
    assert run.error is not None and run.error.message
    # No experiment given: the run is in the "Default" experiment.
    assert run.experiment_id == client.get_experiment(experiment_name="Default").experiment_id

    tasks = tasks_by_name(run)
    assert tasks["greet"].state == "SUCCEEDED"
    assert tasks["fail-with"].state == "FAILED"
    assert "greet-2" not in tasks or tasks["greet-2"].state != "SUCCEEDED"


def test_run_pipeline_version(client, server, tmp_yaml):
    pipeline = client.upload_pipeline(tmp_yaml(sleeper), pipeline_name=unique("run-version"))
    version = client.upload_pipeline_version(
        tmp_yaml(greet_and_shout), "greeter", pipeline_id=pipeline.pipeline_id
    )
    experiment = client.create_experiment(unique("runs-version"))
    who = unique("kfp")
    run = client.run_pipeline(
        experiment_id=experiment.experiment_id,
        job_name=unique("by-version"),
        params={"name": who},
        pipeline_id=pipeline.pipeline_id,
        version_id=version.pipeline_version_id,
    )
    assert run.pipeline_version_reference.pipeline_id == pipeline.pipeline_id
    assert run.pipeline_version_reference.pipeline_version_id == version.pipeline_version_id
    assert run.experiment_id == experiment.experiment_id

    done = wait_for_state(client, run.run_id)
    assert done.state == "SUCCEEDED", done.error
    assert set(tasks_by_name(done)) >= {"greet", "shout"}
    recorded = server.recorded_run(run.run_id)
    assert recorded["outputs"]["parameters"]["Output"] == f"HELLO {who.upper()}!"


def test_run_with_a_parameter_the_pipeline_lacks_is_refused(client, tmp_yaml):
    experiment = client.create_experiment(unique("runs-bad"))
    status, message = api_error_message(
        client.run_pipeline,
        experiment_id=experiment.experiment_id,
        job_name="bad",
        pipeline_package_path=tmp_yaml(greet_and_shout),
        params={"nme": "typo"},
    )
    assert status == 400
    assert "nme" in message
    runs = client.list_runs(experiment_id=experiment.experiment_id)
    assert not runs.runs


def test_run_with_a_wrongly_typed_parameter_is_refused(client, tmp_yaml):
    status, message = api_error_message(
        client.run_pipeline,
        experiment_id=client.create_experiment(unique("runs-bad-type")).experiment_id,
        job_name="bad",
        pipeline_package_path=tmp_yaml(fails_midway),
        params={"code": "three"},
    )
    assert status == 400
    assert "code" in message


def test_unknown_run_is_not_found(client):
    assert api_status(client.get_run, "00000000-0000-0000-0000-000000000000") == 404


def test_list_runs_filter_sort_and_pages(client, tmp_yaml):
    path = tmp_yaml(greet_and_shout)
    experiment = client.create_experiment(unique("runs-list"))
    prefix = unique("listed")
    created = []
    for i in range(3):
        run = client.run_pipeline(
            experiment_id=experiment.experiment_id,
            job_name=f"{prefix}-{i}",
            pipeline_package_path=path,
            params={"name": f"list-{i}"},
        )
        created.append(run.run_id)
    for run_id in created:
        assert wait_for_state(client, run_id).state == "SUCCEEDED"

    seen = []
    token = ""
    pages = 0
    while True:
        page = client.list_runs(
            page_token=token,
            page_size=2,
            sort_by="created_at desc",
            experiment_id=experiment.experiment_id,
        )
        pages += 1
        assert page.total_size == 3
        seen += [r.run_id for r in page.runs]
        token = page.next_page_token or ""
        if not token:
            break
        assert pages < 5, "paging does not end"
    assert pages == 2
    assert seen == list(reversed(created))

    by_name = client.list_runs(sort_by="display_name", experiment_id=experiment.experiment_id)
    assert [r.display_name for r in by_name.runs] == [f"{prefix}-{i}" for i in range(3)]

    one = client.list_runs(filter=predicates(("display_name", "EQUALS", f"{prefix}-1")))
    assert [r.run_id for r in one.runs] == [created[1]]

    substring = client.list_runs(
        filter=predicates(("display_name", "IS_SUBSTRING", prefix)), page_size=10
    )
    assert sorted(r.run_id for r in substring.runs) == sorted(created)


def test_archive_unarchive_and_delete_run(client, tmp_yaml):
    experiment = client.create_experiment(unique("runs-archive"))
    run = client.run_pipeline(
        experiment_id=experiment.experiment_id,
        job_name=unique("archived"),
        pipeline_package_path=tmp_yaml(greet_and_shout),
        params={"name": "archive"},
    )
    assert wait_for_state(client, run.run_id).state == "SUCCEEDED"
    assert client.get_run(run.run_id).storage_state == "AVAILABLE"

    client.archive_run(run.run_id)
    assert client.get_run(run.run_id).storage_state == "ARCHIVED"
    archived = client.list_runs(
        experiment_id=experiment.experiment_id,
        filter=predicates(("storage_state", "EQUALS", "ARCHIVED")),
    )
    assert [r.run_id for r in archived.runs] == [run.run_id]

    client.unarchive_run(run.run_id)
    assert client.get_run(run.run_id).storage_state == "AVAILABLE"
    archived = client.list_runs(
        experiment_id=experiment.experiment_id,
        filter=predicates(("storage_state", "EQUALS", "ARCHIVED")),
    )
    assert not archived.runs

    client.delete_run(run.run_id)
    assert api_status(client.get_run, run.run_id) == 404
    assert not client.list_runs(experiment_id=experiment.experiment_id).runs


def test_terminate_a_long_run(client, server, tmp_yaml):
    result = client.create_run_from_pipeline_package(
        tmp_yaml(sleeper),
        arguments={"seconds": 300},
        run_name=unique("sleeper"),
        experiment_name=unique("runs-terminate"),
    )
    running = wait_for_state(client, result.run_id, states={"RUNNING"}, timeout=60)
    assert running.finished_at is None or running.finished_at.year < 2000

    client.terminate_run(result.run_id)
    run = wait_for_state(client, result.run_id, timeout=30)
    assert run.state == "CANCELED"
    tasks = tasks_by_name(run)
    assert tasks["sleep-for"].state != "SUCCEEDED"
    recorded = server.recorded_run(result.run_id)
    assert recorded["state"] == "CANCELED"
    # The sleeping process was stopped: the run ended long before its 300 s.
    assert (run.finished_at - run.created_at).total_seconds() < 60
