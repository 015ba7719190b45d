"""Pipelines: upload through the form, the pipeline page's graph and inputs; experiments."""

import os
import urllib.parse

from ui_support import (
    PIPELINE_YAML,
    click,
    element,
    elements,
    open_page,
    screenshot,
    set_field,
    table_rows,
    unique,
    wait_for_url,
    wait_until,
)

TASKS = ("make-data", "evaluate", "report")


def test_upload_pipeline_through_form(browser, base, api, screenshots):
    name = unique("visualizations-form")
    form = open_page(browser, base, "/pipelines", "#upload-form", "pipelines page")
    upload = element(browser, "input[name='uploadfile']", "pipelines page: upload form", root=form)
    upload.send_keys(os.path.abspath(PIPELINE_YAML))
    set_field(browser, form, "name", name, "pipelines page: upload form")
    set_field(browser, form, "description", "uploaded by the browser test", "upload form")
    click(browser, element(browser, "#upload-submit", "pipelines page"), "#upload-submit")

    found = wait_for_url(browser, r"^/pipelines/([^/]+)$", "after the upload form")
    pipeline_id = urllib.parse.unquote(found.group(1))
    stored = api.get(f"/pipelines/{pipeline_id}")
    assert stored["display_name"] == name, stored
    assert stored.get("description") == "uploaded by the browser test", stored

    # The pipeline page: the newest version's graph, its inputs and the link to a new run.
    element(browser, "svg#graph", "pipeline page")
    for task in TASKS:
        element(browser, f"svg#graph g.node[data-task='{task}']", "pipeline page graph")
    screenshot(browser, screenshots, "pipeline-graph")
    inputs = table_rows(element(browser, "table#inputs", "pipeline page"))
    by_name = {row[0]: row for row in inputs if row}
    for parameter in ("scale", "rows", "delay"):
        assert parameter in by_name, f"pipeline page: table#inputs has no row {parameter}: {inputs}"
    assert any(cell in ("1", "1.0") for cell in by_name["scale"][1:]), (
        f"pipeline page: table#inputs default of scale (float 1.0): {by_name['scale']}"
    )
    assert "12" in by_name["rows"][1:], (
        f"pipeline page: table#inputs default of the integer parameter rows should read 12: "
        f"{by_name['rows']}"
    )
    version_id = api.newest_version(pipeline_id)
    new_run = element(browser, "a#new-run", "pipeline page")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(new_run.get_attribute("href")).query)
    assert query.get("pipeline") == [pipeline_id], new_run.get_attribute("href")
    assert query.get("version") == [version_id], new_run.get_attribute("href")
    elements(browser, "table#versions tr", "pipeline page: versions table", minimum=2)

    # The list shows it, with its description.
    open_page(browser, base, "/pipelines", "#upload-form", "pipelines page")
    wait_body_contains(browser, name, "pipelines page: the uploaded pipeline's name")
    wait_body_contains(browser, "uploaded by the browser test", "pipelines page: its description")


def test_pipelines_list(browser, base, pipeline, screenshots):
    open_page(browser, base, "/pipelines", "#upload-form", "pipelines page")
    link = element(browser, f"a[href$='/pipelines/{pipeline['pipeline_id']}']",
                   "pipelines page: link to the fixture's pipeline")
    assert link.text.strip() == pipeline["name"], link.text
    wait_body_contains(browser, "uploaded by a fixture", "pipelines page: the description")
    screenshot(browser, screenshots, "pipelines-list")


def test_pipeline_version_by_query(browser, base, pipeline):
    path = f"/pipelines/{pipeline['pipeline_id']}?version={pipeline['version_id']}"
    open_page(browser, base, path, "svg#graph", "pipeline page with ?version")
    nodes = elements(browser, "svg#graph g.node", "pipeline page graph", minimum=3)
    assert sorted(n.get_attribute("data-task") for n in nodes) == sorted(TASKS)


def test_experiments_pages(browser, base, experiment, finished_runs, screenshots):
    open_page(browser, base, "/experiments", "#experiment-form", "experiments page")
    element(browser, f"a[href$='/experiments/{experiment}']", "experiments page: experiment link")
    screenshot(browser, screenshots, "experiments-list")
    open_page(browser, base, f"/experiments/{experiment}", "h1", "experiment page")
    for run in finished_runs.values():
        element(browser, f"tr.run[data-run-id='{run['run_id']}']", "experiment page: its runs")
    screenshot(browser, screenshots, "experiment-details")


def wait_body_contains(browser, text, what):
    wait_until(
        browser,
        lambda: text in browser.find_element("tag name", "body").text,
        f"{what}: {text!r} not on the page",
    )
