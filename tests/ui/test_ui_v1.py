"""A KFP v1 pipeline in the browser: tests/pipelines_v1/metrics.yaml (Argo YAML compiled by the
kfp 1.8 SDK) uploaded through the API and run; its `mlpipeline-metrics` become the run's metric
columns in the runs list, and its `mlpipeline-ui-metadata` artifact page draws each output
(markdown, table, confusion matrix, ROC curve, web app) as the v1 UI does."""

import os

import pytest
from selenium.webdriver.common.by import By

from ui_support import (
    REPO_ROOT,
    element,
    elements,
    name_matches,
    open_page,
    screenshot,
    table_rows,
    unique,
    wait_until,
)

V1_METRICS_YAML = os.path.join(REPO_ROOT, "tests", "pipelines_v1", "metrics.yaml")
UI_METADATA = "mlpipeline-ui-metadata"
# What `evaluate` writes (tests/pipelines_v1/metrics.py).
CONFUSION = {("cat", "cat"): "9", ("cat", "dog"): "2", ("dog", "cat"): "0", ("dog", "dog"): "5"}
ROC_POINTS = [(0, 0, 1), (0.125, 0.75, 0.6), (0.25, 0.9, 0.4), (1, 1, 0)]


@pytest.fixture(scope="module")
def v1_run(api, experiment):
    """One run of the v1 metrics pipeline that ended SUCCEEDED: {"run_id", "name"}."""
    uploaded = api.upload(V1_METRICS_YAML, unique("v1-metrics"), "KFP v1 Argo YAML")
    pipeline_id = uploaded["pipeline_id"]
    name = unique("ui-v1-metrics")
    run_id = api.create_run(name, pipeline_id, api.newest_version(pipeline_id), {}, experiment)
    ended = api.wait_run(run_id)
    assert ended["state"] == "SUCCEEDED", f"v1 metrics run ended {ended['state']}: {ended}"
    return {"run_id": run_id, "name": name}


def column(header, name, what):
    matches = [i for i, label in enumerate(header) if name_matches(label, name)]
    assert len(matches) == 1, f"{what}: wanted one column {name!r} in the header {header}"
    return matches[0]


def test_v1_metrics_are_run_metric_columns(browser, base, v1_run, screenshots):
    table = open_page(browser, base, "/runs", "table#runs", "runs list")
    row = element(browser, f"tr.run[data-run-id='{v1_run['run_id']}']", "runs list: the v1 run")
    header = table_rows(table)[0]
    cells = [c.text.strip() for c in row.find_elements(By.CSS_SELECTOR, "td, th")]
    assert len(cells) == len(header), f"runs list: row {cells} against header {header}"
    accuracy = column(header, "accuracy", "runs list")
    loss = column(header, "loss", "runs list")
    assert cells[accuracy] == "0.875", f"runs list: accuracy of the v1 run: {cells}"
    assert cells[loss] == "0.25", f"runs list: loss of the v1 run: {cells}"
    for index in (accuracy, loss):
        th = table.find_elements(By.CSS_SELECTOR, "thead th")[index]
        assert "metric" in (th.get_attribute("class") or "").split(), (
            f"runs list: column {header[index]!r} is not marked a metric column"
        )
    state = row.find_element(By.CSS_SELECTOR, "td.state").text.strip()
    assert state == "SUCCEEDED", f"runs list: td.state of the v1 run: {state!r}"
    link = row.find_element(By.CSS_SELECTOR, f"a[href$='/runs/{v1_run['run_id']}']")
    assert link.text.strip() == v1_run["name"]
    screenshot(browser, screenshots, "v1-runs-list")


@pytest.fixture(scope="module")
def ui_metadata_page(browser, base, v1_run, screenshots):
    """The run page lists `mlpipeline-ui-metadata`; its link's href."""
    open_page(browser, base, f"/runs/{v1_run['run_id']}", "#artifacts", "v1 run page")
    links = elements(browser, "#artifacts a.artifact[data-name]", "v1 run page: #artifacts")
    found = [a for a in links if name_matches(a.get_attribute("data-name"), UI_METADATA)]
    names = [a.get_attribute("data-name") for a in links]
    assert len(found) == 1, f"v1 run page: wanted one artifact {UI_METADATA!r} among {names}"
    row = found[0].find_element(By.XPATH, "./ancestor::tr")
    cells = [c.text.strip() for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[1:] == ["evaluate", "coracle.UiMetadata"], f"v1 run page: artifact row {cells}"
    assert any(name_matches(n, "mlpipeline-metrics") for n in names), names
    screenshot(browser, screenshots, "v1-run-details")
    return found[0].get_attribute("href")


def open_ui_metadata(browser, href):
    browser.get(href)
    element(browser, "h1", f"artifact page of {UI_METADATA} ({href})")
    kinds = [
        s.get_attribute("data-type")
        for s in elements(browser, "#artifact-preview section.ui-output", "UiMetadata page")
    ]
    assert kinds == ["markdown", "table", "confusion_matrix", "roc", "web-app"], (
        f"UiMetadata artifact page: outputs drawn {kinds}"
    )


def section(browser, kind):
    return element(
        browser, f"#artifact-preview section.ui-output[data-type='{kind}']", f"{kind} output"
    )


def sandboxed_frame(browser, kind):
    frame = element(
        browser, "iframe.ui-metadata-frame", f"{kind} output", root=section(browser, kind)
    )
    tokens = (frame.get_attribute("sandbox") or "").split()
    assert "allow-scripts" in tokens, f"{kind} output: sandbox={tokens} lacks allow-scripts"
    assert "allow-same-origin" not in tokens, f"{kind} output: sandbox={tokens} allows same origin"
    return frame


def test_markdown_and_table(browser, ui_metadata_page, screenshots):
    open_ui_metadata(browser, ui_metadata_page)
    frame = sandboxed_frame(browser, "markdown")
    browser.switch_to.frame(frame)
    try:
        heading = element(browser, "h1", "markdown output frame")
        assert heading.text.strip() == "Evaluation", f"markdown heading {heading.text!r}"
    finally:
        browser.switch_to.default_content()
    table = element(browser, "table.ui-table", "table output", root=section(browser, "table"))
    assert table_rows(table) == [["class", "precision"], ["cat", "0.9"], ["dog", "0.85"]]
    screenshot(browser, screenshots, "v1-artifact-ui-metadata")


def test_confusion_matrix(browser, ui_metadata_page):
    open_ui_metadata(browser, ui_metadata_page)
    matrix = element(
        browser, "svg#confusion-matrix", "confusion_matrix output",
        root=section(browser, "confusion_matrix"),
    )
    # Each cell's tooltip ("true cat, predicted dog: 2") and the number drawn in it.
    cells = browser.execute_script(
        "return Array.from(arguments[0].querySelectorAll('g.cell')).map(g => ["
        "g.querySelector('title').textContent.trim(),"
        " g.querySelector('text').textContent.trim()]);",
        matrix,
    )
    drawn = {}
    for title, text in cells:
        pair, _, value = title.partition(": ")
        true_label, predicted = pair.removeprefix("true ").split(", predicted ")
        assert value == text, f"confusion matrix cell {title!r} shows {text!r}"
        drawn[(true_label, predicted)] = text
    assert drawn == CONFUSION, f"svg#confusion-matrix cells {drawn}"
    labels = browser.execute_script(
        "return Array.from(arguments[0].querySelectorAll('text.row-label, text.col-label'))"
        ".map(t => t.lastChild.textContent.trim());",
        matrix,
    )
    assert sorted(labels) == ["cat", "cat", "dog", "dog"], f"confusion matrix labels {labels}"


def test_roc_curve(browser, ui_metadata_page):
    open_ui_metadata(browser, ui_metadata_page)
    roc = element(browser, "svg#roc-curve", "roc output", root=section(browser, "roc"))
    line = element(browser, "polyline.roc", "svg#roc-curve", root=roc)
    points = (line.get_attribute("points") or "").split()
    assert len(points) == len(ROC_POINTS), f"polyline.roc points {points}"
    titles = browser.execute_script(
        "return Array.from(arguments[0].querySelectorAll('circle.point title'))"
        ".map(t => t.textContent.trim());",
        roc,
    )
    want = [
        f"false positive rate {f:g}, true positive rate {t:g}, threshold {th:g}"
        for f, t, th in ROC_POINTS
    ]
    assert titles == want, f"svg#roc-curve point tooltips {titles}"


def test_web_app_runs_in_a_sandboxed_frame(browser, ui_metadata_page):
    open_ui_metadata(browser, ui_metadata_page)
    frame = sandboxed_frame(browser, "web-app")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", frame)
    browser.switch_to.frame(frame)
    try:
        title = element(browser, "h2#app-title", "web-app output frame")
        assert title.text.strip() == "Evaluation app"
        status = element(browser, "p#app-status", "web-app output frame")
        wait_until(
            browser,
            lambda: status.text.strip() == "script ran",
            lambda: f"web-app frame: its script did not run: #app-status {status.text!r}",
        )
        # The frame's origin is opaque: the UI's cookies and DOM are out of its reach.
        origin = browser.execute_script("return window.origin;")
        assert origin == "null", f"web-app frame origin {origin!r}"
    finally:
        browser.switch_to.default_content()
