"""Jobs (recurring runs) through kfp 1.8's Client: a periodic job that fires runs of an inline
workflow, disabled, enabled and deleted; a cron job of a stored pipeline; bad triggers."""

import time

from support import (
    RUN_TIMEOUT,
    api_error,
    nodes_by_name,
    output_parameters,
    reference_ids,
    unique,
)


def job_runs(client, experiment_id, job_id):
    runs = client.list_runs(experiment_id=experiment_id, page_size=100).runs or []
    return [r for r in runs if reference_ids(r, "JOB") == [job_id]]


def test_periodic_job_fires_until_disabled(client, server, v1_yaml):
    experiment = client.create_experiment(unique("exp-job"))
    job = client.create_recurring_run(
        experiment.id,
        unique("every-second"),
        description="fires every second",
        interval_second=1,
        max_concurrency=1,
        pipeline_package_path=v1_yaml("add_chain"),
        params={"a": 1, "b": 2},
    )
    assert job.id
    assert job.enabled is True
    assert job.mode == "ENABLED"
    assert job.status == "Enabled"
    assert job.max_concurrency == "1"
    assert job.trigger.periodic_schedule.interval_second == "1"
    assert job.description == "fires every second"
    assert reference_ids(job, "EXPERIMENT") == [experiment.id]

    deadline = time.monotonic() + RUN_TIMEOUT
    while len(job_runs(client, experiment.id, job.id)) < 2:
        assert time.monotonic() < deadline, "the job did not fire twice"
        time.sleep(0.5)
    client.disable_job(job.id)
    disabled = client.get_recurring_run(job.id)
    assert disabled.enabled is False
    assert disabled.mode == "DISABLED"

    fired = job_runs(client, experiment.id, job.id)
    for run in fired:
        detail = client.wait_for_run_completion(run.id, RUN_TIMEOUT)
        assert detail.run.status == "Succeeded", detail.run.error
        assert output_parameters(nodes_by_name(detail)["add"]) == {"add-Output": "3"}
    time.sleep(2.5)
    assert len(job_runs(client, experiment.id, job.id)) == len(fired)

    client.jobs.enable_job(job.id)
    assert client.get_recurring_run(job.id).enabled is True
    assert server.get_json(f"/apis/v2beta1/recurringruns/{job.id}")["mode"] == "ENABLE"
    client.disable_job(job.id)

    client.delete_job(job.id)
    status, message = api_error(client.get_recurring_run, job.id)
    assert status == 404 and job.id in message
    # Its runs stay.
    assert len(job_runs(client, experiment.id, job.id)) >= len(fired)


def test_cron_job_of_a_stored_pipeline(client, server, v1_yaml):
    pipeline = client.upload_pipeline(v1_yaml("add_chain"), pipeline_name=unique("nightly"))
    experiment = client.create_experiment(unique("exp-cron"))
    job = client.create_recurring_run(
        experiment.id,
        unique("nightly"),
        cron_expression="0 0 2 * * *",
        start_time="2030-01-01T00:00:00Z",
        pipeline_id=pipeline.id,
        params={"a": 1, "b": 1},
        enabled=False,
        no_catchup=True,
    )
    assert job.enabled is False
    assert job.no_catchup is True
    assert job.trigger.cron_schedule.cron == "0 0 2 * * *"
    assert job.trigger.cron_schedule.start_time.year == 2030
    assert job.pipeline_spec.pipeline_id == pipeline.id
    assert reference_ids(job, "PIPELINE_VERSION") == [pipeline.default_version.id]
    params = {p.name: p.value for p in job.pipeline_spec.parameters}
    assert params == {"a": "1", "b": "1"}

    listed = client.list_recurring_runs(experiment_id=experiment.id)
    assert [j.id for j in listed.jobs] == [job.id]
    assert listed.total_size == 1
    v2 = server.get_json(f"/apis/v2beta1/recurringruns/{job.id}")
    assert v2["mode"] == "DISABLE"
    assert v2["pipeline_version_reference"]["pipeline_id"] == pipeline.id
    client.delete_job(job.id)


def test_bad_jobs_are_refused(client, v1_yaml):
    experiment = client.create_experiment(unique("exp-bad-job"))
    status, message = api_error(
        client.create_recurring_run,
        experiment.id,
        unique("bad-cron"),
        cron_expression="every tuesday",
        pipeline_package_path=v1_yaml("add_chain"),
        params={"a": 1, "b": 1},
    )
    assert status == 400 and "cron" in message
    status, message = api_error(
        client.create_recurring_run,
        experiment.id,
        unique("missing-parameter"),
        interval_second=60,
        pipeline_package_path=v1_yaml("add_chain"),
        params={"a": 1},
    )
    assert status == 400 and "b" in message
    status, message = api_error(client.get_recurring_run, "no-such-job")
    assert status == 404 and "no-such-job" in message
