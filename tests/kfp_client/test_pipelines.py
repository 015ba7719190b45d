"""Pipelines and pipeline versions through kfp.Client: upload, get, list, names, delete."""

import json

from suite_pipelines import fails_midway, greet_and_shout, sleeper
from support import api_error_message, api_status, unique


def name_filter(operation: str, value: str) -> str:
    return json.dumps(
        {"predicates": [{"operation": operation, "key": "display_name", "stringValue": value}]}
    )


def test_upload_pipeline_and_get_it(client, tmp_yaml):
    path = tmp_yaml(greet_and_shout)
    name = unique("greet")
    pipeline = client.upload_pipeline(path, pipeline_name=name, description="says hello")
    assert pipeline.pipeline_id
    assert pipeline.display_name == name
    assert pipeline.description == "says hello"
    assert pipeline.created_at is not None

    got = client.get_pipeline(pipeline.pipeline_id)
    assert (got.pipeline_id, got.display_name, got.description) == (
        pipeline.pipeline_id,
        name,
        "says hello",
    )
    assert client.get_pipeline_id(name) == pipeline.pipeline_id
    assert client.get_pipeline_id(unique("no-such-pipeline")) is None

    # The upload is the pipeline's first version, holding the spec.
    versions = client.list_pipeline_versions(pipeline.pipeline_id)
    assert versions.total_size == 1
    (listed,) = versions.pipeline_versions
    assert listed.pipeline_id == pipeline.pipeline_id
    version = client.get_pipeline_version(pipeline.pipeline_id, listed.pipeline_version_id)
    assert version.pipeline_spec["pipelineInfo"]["name"] == "greet-and-shout"
    assert "greet" in version.pipeline_spec["root"]["dag"]["tasks"]


def test_upload_without_a_name_takes_the_pipelines_name(client, tmp_yaml):
    pipeline = client.upload_pipeline(tmp_yaml(fails_midway))
    assert pipeline.display_name == "fails-midway"
    assert client.get_pipeline_id("fails-midway") == pipeline.pipeline_id


def test_pipeline_names_are_unique(client, tmp_yaml):
    path = tmp_yaml(greet_and_shout)
    name = unique("twice")
    first = client.upload_pipeline(path, pipeline_name=name)
    assert api_status(client.upload_pipeline, path, pipeline_name=name) == 409
    found = client.list_pipelines(filter=name_filter("EQUALS", name))
    assert [p.pipeline_id for p in found.pipelines] == [first.pipeline_id]


def test_upload_of_something_that_is_not_a_pipeline_is_refused(client, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("pipelineInfo:\n  name: broken\nroot: [this is not a component]\n")
    name = unique("broken")
    status, message = api_error_message(client.upload_pipeline, str(path), pipeline_name=name)
    assert status == 400
    assert "root" in message
    assert client.get_pipeline_id(name) is None


def test_upload_pipeline_versions(client, tmp_yaml):
    name = unique("versioned")
    pipeline = client.upload_pipeline(tmp_yaml(greet_and_shout), pipeline_name=name)
    second = client.upload_pipeline_version(
        tmp_yaml(sleeper, "sleeper.yaml"),
        "v2",
        pipeline_id=pipeline.pipeline_id,
        description="second version",
    )
    assert second.pipeline_id == pipeline.pipeline_id
    assert second.pipeline_version_id
    assert second.display_name == "v2"
    assert second.description == "second version"
    assert second.pipeline_spec["pipelineInfo"]["name"] == "sleeper"
    third = client.upload_pipeline_version(
        tmp_yaml(greet_and_shout), "v3", pipeline_name=name
    )
    assert third.pipeline_id == pipeline.pipeline_id

    got = client.get_pipeline_version(pipeline.pipeline_id, second.pipeline_version_id)
    assert (got.pipeline_version_id, got.display_name) == (second.pipeline_version_id, "v2")

    newest_first = client.list_pipeline_versions(pipeline.pipeline_id, sort_by="created_at desc")
    assert newest_first.total_size == 3
    ids = [v.pipeline_version_id for v in newest_first.pipeline_versions]
    assert ids[:2] == [third.pipeline_version_id, second.pipeline_version_id]

    # Version names are unique within a pipeline.
    assert (
        api_status(
            client.upload_pipeline_version,
            tmp_yaml(greet_and_shout),
            "v2",
            pipeline_id=pipeline.pipeline_id,
        )
        == 409
    )


def test_delete_pipeline_versions_then_the_pipeline(client, tmp_yaml):
    path = tmp_yaml(greet_and_shout)
    name = unique("deleted")
    pipeline = client.upload_pipeline(path, pipeline_name=name)
    client.upload_pipeline_version(path, "v2", pipeline_id=pipeline.pipeline_id)

    # A pipeline that still has versions is not deleted.
    status = api_status(client.delete_pipeline, pipeline.pipeline_id)
    assert 400 <= status < 500
    assert client.get_pipeline(pipeline.pipeline_id).display_name == name

    versions = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions
    assert len(versions) == 2
    client.delete_pipeline_version(pipeline.pipeline_id, versions[0].pipeline_version_id)
    assert (
        api_status(
            client.get_pipeline_version, pipeline.pipeline_id, versions[0].pipeline_version_id
        )
        == 404
    )
    left = client.list_pipeline_versions(pipeline.pipeline_id)
    assert [v.pipeline_version_id for v in left.pipeline_versions] == [
        versions[1].pipeline_version_id
    ]
    client.delete_pipeline_version(pipeline.pipeline_id, versions[1].pipeline_version_id)
    assert not client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions

    client.delete_pipeline(pipeline.pipeline_id)
    assert api_status(client.get_pipeline, pipeline.pipeline_id) == 404
    assert client.get_pipeline_id(name) is None


def test_delete_pipeline_with_cascade(client, tmp_yaml):
    path = tmp_yaml(greet_and_shout)
    pipeline = client.upload_pipeline(path, pipeline_name=unique("cascade"))
    version = client.upload_pipeline_version(path, "v2", pipeline_id=pipeline.pipeline_id)
    client._pipelines_api.pipeline_service_delete_pipeline(pipeline.pipeline_id, cascade=True)
    assert api_status(client.get_pipeline, pipeline.pipeline_id) == 404
    assert (
        api_status(client.get_pipeline_version, pipeline.pipeline_id, version.pipeline_version_id)
        == 404
    )


def test_list_pipelines_filter_sort_and_pages(client, tmp_yaml):
    path = tmp_yaml(greet_and_shout)
    prefix = unique("listed")
    names = [f"{prefix}-{i}" for i in range(3)]
    for n in names:
        client.upload_pipeline(path, pipeline_name=n)

    seen = []
    token = ""
    for _ in range(5):
        page = client.list_pipelines(
            page_token=token,
            page_size=2,
            sort_by="display_name",
            filter=name_filter("IS_SUBSTRING", prefix),
        )
        assert page.total_size == 3
        seen += [p.display_name for p in page.pipelines]
        token = page.next_page_token or ""
        if not token:
            break
    assert seen == names

    everything = client.list_pipelines(page_size=200)
    assert set(names) <= {p.display_name for p in everything.pipelines}
