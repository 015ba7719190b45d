"""Experiments through kfp 1.8's Client: create (found again by name), get by id and by name,
list with v1 filters, sorting and pages, archive / unarchive, delete."""

import json

from support import api_error, unique


def name_filter(op: int, name: str) -> str:
    return json.dumps({"predicates": [{"op": op, "key": "name", "stringValue": name}]})


def test_create_get_and_create_again(client):
    name = unique("exp")
    experiment = client.create_experiment(name, description="for the v1 client")
    assert experiment.id
    assert experiment.name == name
    assert experiment.description == "for the v1 client"
    assert experiment.storage_state == "STORAGESTATE_AVAILABLE"
    assert experiment.created_at is not None

    assert client.get_experiment(experiment_id=experiment.id).name == name
    assert client.get_experiment(experiment_name=name).id == experiment.id
    # create_experiment looks the name up first: the same experiment comes back.
    assert client.create_experiment(name).id == experiment.id

    listed = client.list_experiments(filter=name_filter(1, name))
    assert [e.id for e in listed.experiments] == [experiment.id]
    assert listed.total_size == 1


def test_pages_and_sorting(client):
    prefix = unique("paged")
    for suffix in ["b", "c", "a"]:
        client.create_experiment(f"{prefix}-{suffix}")
    # IS_SUBSTRING (9): the v1 SDK does not name it, the API takes it.
    substring = name_filter(9, prefix)
    first = client.list_experiments(page_size=2, sort_by="name", filter=substring)
    assert [e.name for e in first.experiments] == [f"{prefix}-a", f"{prefix}-b"]
    assert first.total_size == 3
    assert first.next_page_token
    second = client.list_experiments(
        page_token=first.next_page_token, page_size=2, sort_by="name", filter=substring
    )
    assert [e.name for e in second.experiments] == [f"{prefix}-c"]
    assert not second.next_page_token
    newest_first = client.list_experiments(sort_by="created_at desc", filter=substring)
    assert [e.name for e in newest_first.experiments] == [
        f"{prefix}-a",
        f"{prefix}-c",
        f"{prefix}-b",
    ]


def test_archive_unarchive_delete(client):
    experiment = client.create_experiment(unique("exp-archive"))
    client.archive_experiment(experiment.id)
    assert (
        client.get_experiment(experiment_id=experiment.id).storage_state
        == "STORAGESTATE_ARCHIVED"
    )
    archived = client.list_experiments(
        page_size=200,
        filter=json.dumps(
            {
                "predicates": [
                    {"op": 1, "key": "storage_state", "stringValue": "STORAGESTATE_ARCHIVED"}
                ]
            }
        ),
    )
    assert experiment.id in [e.id for e in archived.experiments]
    assert all(e.storage_state == "STORAGESTATE_ARCHIVED" for e in archived.experiments)

    client.experiments.unarchive_experiment(experiment.id)
    assert (
        client.get_experiment(experiment_id=experiment.id).storage_state
        == "STORAGESTATE_AVAILABLE"
    )

    client.delete_experiment(experiment.id)
    status, message = api_error(client.get_experiment, experiment_id=experiment.id)
    assert status == 404
    assert experiment.id in message


def test_mistakes_are_refused(client):
    status, message = api_error(client.get_experiment, experiment_id="no-such-experiment")
    assert status == 404 and "no-such-experiment" in message
    status, message = api_error(client.experiments.archive_experiment, "no-such-experiment")
    assert status == 404
    status, message = api_error(
        client.list_experiments, filter='{"predicates": [{"op": 4, "key": "name"}]}'
    )
    assert status == 400 and "filter" in message
    status, message = api_error(client.list_experiments, sort_by="colour")
    assert status == 400 and "colour" in message
