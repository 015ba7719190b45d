"""Pipelines through kfp 1.8's Client: upload the team's compiled v1 workflows, versions,
templates, runs of a stored pipeline or version, pipelines made from a URL, bad uploads."""

import kfp_server_api
import yaml

from support import (
    RUN_TIMEOUT,
    api_error,
    nodes_by_name,
    output_parameters,
    read_artifact_text,
    reference_ids,
    unique,
)


def test_upload_get_template_delete(client, v1_yaml):
    name = unique("add-chain")
    pipeline = client.upload_pipeline(v1_yaml("add_chain"), pipeline_name=name, description="adds")
    assert pipeline.id
    assert pipeline.name == name
    assert pipeline.description == "adds"
    assert sorted(p.name for p in pipeline.parameters) == ["a", "b"]
    default = pipeline.default_version
    assert default.id
    assert reference_ids(default, "PIPELINE") == [pipeline.id]

    assert client.get_pipeline_id(name) == pipeline.id
    got = client.get_pipeline(pipeline.id)
    assert got.name == name
    assert got.default_version.id == default.id

    listed = client.list_pipelines(page_size=200)
    assert pipeline.id in [p.id for p in listed.pipelines]

    # The template is the stored (translated) spec, readable as YAML.
    template = client.pipelines.get_template(pipeline.id).template
    spec = next(yaml.safe_load_all(template))
    assert spec["pipelineInfo"]["name"] == "add-chain"
    assert sorted(spec["root"]["dag"]["tasks"]) == ["add", "double"]

    client.delete_pipeline(pipeline.id)
    status, message = api_error(client.get_pipeline, pipeline.id)
    assert status == 404 and pipeline.id in message
    assert client.get_pipeline_id(name) is None


def test_versions(client, v1_yaml):
    name = unique("versioned")
    pipeline = client.upload_pipeline(v1_yaml("add_chain"), pipeline_name=name)
    by_name = client.upload_pipeline_version(
        v1_yaml("metrics"), "metrics-version", pipeline_name=name, description="second"
    )
    assert by_name.name == "metrics-version"
    assert by_name.description == "second"
    assert reference_ids(by_name, "PIPELINE") == [pipeline.id]
    by_id = client.upload_pipeline_version(
        v1_yaml("add_chain"), "third", pipeline_id=pipeline.id
    )
    assert reference_ids(by_id, "PIPELINE") == [pipeline.id]

    versions = client.list_pipeline_versions(pipeline.id, page_size=10)
    assert versions.total_size == 3
    assert [v.name for v in versions.versions] == ["third", "metrics-version", name]
    # The default version is the newest.
    assert client.get_pipeline(pipeline.id).default_version.id == by_id.id

    got = client.pipelines.get_pipeline_version(by_name.id)
    assert got.name == "metrics-version"
    template = client.pipelines.get_pipeline_version_template(by_name.id).template
    assert next(yaml.safe_load_all(template))["pipelineInfo"]["name"] == "metrics"

    client.delete_pipeline_version(by_name.id)
    status, _ = api_error(client.pipelines.get_pipeline_version, by_name.id)
    assert status == 404
    assert client.list_pipeline_versions(pipeline.id).total_size == 2

    # Another default version: the pipeline shows it and a run of the pipeline runs it.
    first = versions.versions[-1]
    client.pipelines.update_pipeline_default_version(pipeline.id, first.id)
    assert client.get_pipeline(pipeline.id).default_version.id == first.id
    experiment = client.create_experiment(unique("exp-default"))
    run = client.run_pipeline(
        experiment.id, "of-default", params={"a": 1, "b": 1}, pipeline_id=pipeline.id
    )
    detail = client.wait_for_run_completion(run.id, RUN_TIMEOUT)
    assert detail.run.status == "Succeeded", detail.run.error
    assert reference_ids(detail.run, "PIPELINE_VERSION") == [first.id]
    status, message = api_error(
        client.pipelines.update_pipeline_default_version, pipeline.id, "no-such-version"
    )
    assert status == 404 and "no-such-version" in message
    # An upload makes the new version the default again.
    fourth = client.upload_pipeline_version(v1_yaml("add_chain"), "fourth", pipeline_id=pipeline.id)
    assert client.get_pipeline(pipeline.id).default_version.id == fourth.id


def test_run_a_stored_pipeline_and_version(client, v1_yaml):
    name = unique("runnable")
    pipeline = client.upload_pipeline(v1_yaml("add_chain"), pipeline_name=name)
    experiment = client.create_experiment(unique("exp-stored"))

    run = client.run_pipeline(
        experiment.id, "by-pipeline", params={"a": 2, "b": 3}, pipeline_id=pipeline.id
    )
    detail = client.wait_for_run_completion(run.id, RUN_TIMEOUT)
    assert detail.run.status == "Succeeded", detail.run.error
    assert reference_ids(detail.run, "EXPERIMENT") == [experiment.id]
    assert reference_ids(detail.run, "PIPELINE_VERSION") == [pipeline.default_version.id]
    assert detail.run.pipeline_spec.pipeline_id == pipeline.id
    nodes = nodes_by_name(detail)
    assert output_parameters(nodes["add"]) == {"add-Output": "5"}
    assert read_artifact_text(client, run.id, nodes["double"]["id"], "double-Output") == "10"

    version = client.upload_pipeline_version(v1_yaml("add_chain"), "again", pipeline_id=pipeline.id)
    run = client.run_pipeline(
        experiment.id, "by-version", params={"a": 4, "b": 5}, version_id=version.id
    )
    detail = client.wait_for_run_completion(run.id, RUN_TIMEOUT)
    assert detail.run.status == "Succeeded", detail.run.error
    assert reference_ids(detail.run, "PIPELINE_VERSION") == [version.id]
    assert output_parameters(nodes_by_name(detail)["add"]) == {"add-Output": "9"}


def test_pipeline_and_version_from_a_url(client, file_server):
    name = unique("from-url")
    pipeline = client.pipelines.create_pipeline(
        kfp_server_api.ApiPipeline(
            name=name,
            description="fetched",
            url=kfp_server_api.ApiUrl(pipeline_url=f"{file_server}/add_chain.yaml"),
        )
    )
    assert pipeline.name == name
    assert pipeline.description == "fetched"
    assert sorted(p.name for p in pipeline.parameters) == ["a", "b"]
    version = client.pipelines.create_pipeline_version(
        kfp_server_api.ApiPipelineVersion(
            name="metrics-from-url",
            package_url=kfp_server_api.ApiUrl(pipeline_url=f"{file_server}/metrics.yaml"),
            resource_references=[
                kfp_server_api.ApiResourceReference(
                    key=kfp_server_api.ApiResourceKey(id=pipeline.id, type="PIPELINE"),
                    relationship="OWNER",
                )
            ],
        )
    )
    assert version.name == "metrics-from-url"
    assert client.get_pipeline(pipeline.id).default_version.id == version.id

    status, message = api_error(
        client.pipelines.create_pipeline,
        kfp_server_api.ApiPipeline(
            name=unique("missing"),
            url=kfp_server_api.ApiUrl(pipeline_url=f"{file_server}/no-such.yaml"),
        ),
    )
    assert status == 400 and "404" in message


BAD_WORKFLOW = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: bad-}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: scripted, template: scripted}
  - name: scripted
    script: {image: alpine, source: echo hi}
"""


def test_bad_uploads_are_refused(client, v1_yaml, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_WORKFLOW)
    status, message = api_error(client.upload_pipeline, str(bad), unique("bad"))
    assert status == 400
    assert "spec.templates[scripted]" in message, message

    name = unique("twice")
    client.upload_pipeline(v1_yaml("add_chain"), pipeline_name=name)
    status, message = api_error(client.upload_pipeline, v1_yaml("add_chain"), name)
    assert status == 409 and name in message

    status, message = api_error(
        client.upload_pipeline_version, v1_yaml("add_chain"), "v", pipeline_id="no-such-pipeline"
    )
    assert status == 404 and "no-such-pipeline" in message
