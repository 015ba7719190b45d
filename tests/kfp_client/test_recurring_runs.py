"""Recurring runs through kfp.Client: a periodic schedule that starts runs, stops when
disabled and starts again when enabled; cron schedules; get, list, delete."""

import time

from suite_pipelines import greet_and_shout
from support import api_status, unique, wait_for_state


def runs_of(client, experiment_id: str, recurring_run_id: str) -> list:
    runs = client.list_runs(experiment_id=experiment_id, page_size=200).runs or []
    return [r for r in runs if r.recurring_run_id == recurring_run_id]


def wait_for_runs(client, experiment_id, recurring_run_id, at_least, timeout) -> list:
    deadline = time.monotonic() + timeout
    while True:
        runs = runs_of(client, experiment_id, recurring_run_id)
        if len(runs) >= at_least:
            return runs
        if time.monotonic() > deadline:
            raise AssertionError(
                f"recurring run {recurring_run_id} started {len(runs)} runs in {timeout} s, "
                f"expected at least {at_least}"
            )
        time.sleep(0.25)


def test_periodic_recurring_run_starts_runs_until_disabled(client, tmp_yaml):
    experiment = client.create_experiment(unique("recurring-periodic"))
    name = unique("every-2s")
    recurring = client.create_recurring_run(
        experiment_id=experiment.experiment_id,
        job_name=name,
        description="a tick every two seconds",
        interval_second=2,
        pipeline_package_path=tmp_yaml(greet_and_shout),
        params={"name": "tick"},
        max_concurrency=1,
    )
    rr_id = recurring.recurring_run_id
    assert rr_id
    assert recurring.display_name == name
    assert recurring.status == "ENABLED"
    assert recurring.experiment_id == experiment.experiment_id
    assert int(recurring.trigger.periodic_schedule.interval_second) == 2
    assert int(recurring.max_concurrency) == 1

    try:
        runs = wait_for_runs(client, experiment.experiment_id, rr_id, at_least=2, timeout=30)
        assert all(r.recurring_run_id == rr_id for r in runs)
        assert wait_for_state(client, runs[-1].run_id).state == "SUCCEEDED"

        client.disable_recurring_run(rr_id)
        disabled = client.get_recurring_run(rr_id)
        assert disabled.status == "DISABLED"
        assert disabled.mode == "DISABLE"
        time.sleep(1)  # a run being started as it was disabled has been recorded by now
        stopped_at = len(runs_of(client, experiment.experiment_id, rr_id))
        time.sleep(6)  # three intervals
        assert len(runs_of(client, experiment.experiment_id, rr_id)) == stopped_at

        client.enable_recurring_run(rr_id)
        assert client.get_recurring_run(rr_id).status == "ENABLED"
        wait_for_runs(client, experiment.experiment_id, rr_id, at_least=stopped_at + 1, timeout=20)

        listed = client.list_recurring_runs(experiment_id=experiment.experiment_id)
        assert [r.recurring_run_id for r in listed.recurring_runs] == [rr_id]
        assert listed.total_size == 1
        assert rr_id in {r.recurring_run_id for r in client.list_recurring_runs(page_size=200).recurring_runs}
    finally:
        client.delete_recurring_run(rr_id)
    assert api_status(client.get_recurring_run, rr_id) == 404
    # The runs it started stay.
    left = runs_of(client, experiment.experiment_id, rr_id)
    assert len(left) >= 3
    assert client.get_run(left[0].run_id).run_id == left[0].run_id
    time.sleep(4)
    assert len(runs_of(client, experiment.experiment_id, rr_id)) == len(left)


def test_cron_recurring_run_of_a_pipeline_version(client, tmp_yaml):
    pipeline = client.upload_pipeline(tmp_yaml(greet_and_shout), pipeline_name=unique("cron"))
    (version,) = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions
    experiment = client.create_experiment(unique("recurring-cron"))
    recurring = client.create_recurring_run(
        experiment_id=experiment.experiment_id,
        job_name=unique("every-second"),
        cron_expression="* * * * * *",
        pipeline_id=pipeline.pipeline_id,
        version_id=version.pipeline_version_id,
        params={"name": "cron"},
        enabled=False,
    )
    rr_id = recurring.recurring_run_id
    try:
        assert recurring.status == "DISABLED"
        got = client.get_recurring_run(rr_id)
        assert got.trigger.cron_schedule.cron == "* * * * * *"
        assert got.pipeline_version_reference.pipeline_version_id == version.pipeline_version_id
        time.sleep(3)
        assert runs_of(client, experiment.experiment_id, rr_id) == []

        client.enable_recurring_run(rr_id)
        runs = wait_for_runs(client, experiment.experiment_id, rr_id, at_least=1, timeout=15)
        assert runs[0].pipeline_version_reference.pipeline_version_id == version.pipeline_version_id
        assert runs[0].runtime_config.parameters == {"name": "cron"}
    finally:
        client.delete_recurring_run(rr_id)
    time.sleep(1)
    count = len(runs_of(client, experiment.experiment_id, rr_id))
    time.sleep(3)
    assert len(runs_of(client, experiment.experiment_id, rr_id)) == count


def test_recurring_run_with_a_bad_cron_is_refused(client, tmp_yaml):
    experiment = client.create_experiment(unique("recurring-bad"))
    status = api_status(
        client.create_recurring_run,
        experiment_id=experiment.experiment_id,
        job_name="bad-cron",
        cron_expression="every tuesday",
        pipeline_package_path=tmp_yaml(greet_and_shout),
    )
    assert status == 400
    assert not client.list_recurring_runs(experiment_id=experiment.experiment_id).recurring_runs
