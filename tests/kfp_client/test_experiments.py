"""Experiments through kfp.Client: create (idempotent by name), get, list, archive, delete."""

import json

import kfp
import kfp_server_api

from support import api_status, unique


def name_filter(operation: str, value: str) -> str:
    return json.dumps(
        {"predicates": [{"operation": operation, "key": "display_name", "stringValue": value}]}
    )


def test_client_construction_checks_health(server):
    client = kfp.Client(host=server.url)
    health = client.get_kfp_healthz()
    assert health.multi_user is False


def test_create_experiment_is_idempotent_by_name(client):
    name = unique("exp")
    first = client.create_experiment(name, description="the first")
    assert first.experiment_id
    assert first.display_name == name
    assert first.description == "the first"
    assert first.storage_state == "AVAILABLE"
    assert first.created_at is not None
    again = client.create_experiment(name, description="another description")
    assert again.experiment_id == first.experiment_id
    assert again.description == "the first"


def test_get_experiment_by_id_and_by_name(client):
    name = unique("exp-get")
    created = client.create_experiment(name)
    by_id = client.get_experiment(experiment_id=created.experiment_id)
    by_name = client.get_experiment(experiment_name=name)
    assert by_id.experiment_id == by_name.experiment_id == created.experiment_id
    assert by_id.display_name == by_name.display_name == name


def test_unknown_experiment_is_not_found(client):
    assert api_status(client.get_experiment, experiment_id="no-such-experiment") == 404


def test_experiment_without_a_name_is_refused(client):
    status = api_status(
        client._experiment_api.experiment_service_create_experiment,
        experiment=kfp_server_api.V2beta1Experiment(display_name=""),
    )
    assert status == 400


def test_list_experiments_filter_sort_and_pages(client):
    prefix = unique("exp-page")
    names = [f"{prefix}-{i}" for i in range(3)]
    ids = {client.create_experiment(n).experiment_id for n in names}
    assert len(ids) == 3

    seen = []
    token = ""
    pages = 0
    while True:
        page = client.list_experiments(
            page_token=token,
            page_size=2,
            sort_by="display_name desc",
            filter=name_filter("IS_SUBSTRING", prefix),
        )
        pages += 1
        assert page.total_size == 3
        assert len(page.experiments) <= 2
        seen += [e.display_name for e in page.experiments]
        token = page.next_page_token or ""
        if not token:
            break
        assert pages < 5, "paging does not end"
    assert pages == 2
    assert seen == sorted(names, reverse=True)

    exact = client.list_experiments(filter=name_filter("EQUALS", names[1]))
    assert [e.display_name for e in exact.experiments] == [names[1]]


def test_archive_and_unarchive_experiment(client):
    experiment = client.create_experiment(unique("exp-archive"))
    client.archive_experiment(experiment.experiment_id)
    assert client.get_experiment(experiment_id=experiment.experiment_id).storage_state == "ARCHIVED"
    client.unarchive_experiment(experiment.experiment_id)
    assert (
        client.get_experiment(experiment_id=experiment.experiment_id).storage_state == "AVAILABLE"
    )


def test_delete_experiment(client):
    name = unique("exp-delete")
    experiment = client.create_experiment(name)
    client.delete_experiment(experiment.experiment_id)
    assert api_status(client.get_experiment, experiment_id=experiment.experiment_id) == 404
    assert not client.list_experiments(filter=name_filter("EQUALS", name)).experiments
    # The name is free again.
    again = client.create_experiment(name)
    assert again.experiment_id != experiment.experiment_id
