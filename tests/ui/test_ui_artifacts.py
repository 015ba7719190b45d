"""Artifact pages: the metrics table, the confusion matrix and ROC curve, the CSV preview, and
HTML / Markdown in a sandboxed frame that cannot reach the UI's cookies or DOM."""

import collections
import urllib.parse
import urllib.request

import pytest
from selenium.webdriver.common.by import By

from ui_support import (
    element,
    elements,
    name_matches,
    open_page,
    screenshot,
    table_rows,
)

COOKIE_NAME = "coracle_ui_probe"
COOKIE_VALUE = "s3cret-cookie-value"
PROBES = ("parent-dom", "top-cookie", "own-cookie", "local-storage", "parent-write")


@pytest.fixture(scope="module")
def artifact_links(browser, base, finished_runs):
    """The run page's artifact links of the scale=1.0 run: {data-name: href}."""
    run_id = finished_runs[1.0]["run_id"]
    open_page(browser, base, f"/runs/{run_id}", "#artifacts", "run page")
    links = elements(browser, "#artifacts a.artifact[data-name]", "run page: #artifacts", minimum=5)
    return {a.get_attribute("data-name"): a.get_attribute("href") for a in links}


def open_artifact(browser, links, name):
    """Go to the artifact page of the output `name` (a data-name of `name` or ending in it)."""
    matches = sorted({href for label, href in links.items() if name_matches(label, name)})
    assert matches, f"run page: no a.artifact for output {name!r} among {sorted(links)}"
    assert len(matches) == 1, f"run page: several a.artifact match {name!r}: {sorted(links)}"
    browser.get(matches[0])
    element(browser, "h1", f"artifact page of {name} ({matches[0]})")
    return matches[0]


def number(text):
    try:
        return float(text)
    except ValueError:
        return None


def test_metrics_table(browser, artifact_links, screenshots):
    open_artifact(browser, artifact_links, "metrics")
    table = element(browser, "table#metrics-table", "Metrics artifact page")
    values = {}
    for row in table_rows(table):
        if len(row) >= 2:
            values[row[0]] = row[-1]
    for metric, want in (("accuracy", 0.9), ("loss", 0.1), ("rows", 12)):
        label = next((k for k in values if name_matches(k, metric)), None)
        assert label is not None, f"Metrics artifact page: no row {metric!r} in {values}"
        assert number(values[label]) == want, f"metric {metric}: {values[label]!r} != {want}"
    screenshot(browser, screenshots, "artifact-metrics")


def test_confusion_matrix_and_roc_curve(browser, artifact_links, screenshots):
    open_artifact(browser, artifact_links, "classification")
    matrix = element(browser, "svg#confusion-matrix", "ClassificationMetrics artifact page")
    # The text of each <text>, without a <title> tooltip inside it.
    texts = browser.execute_script(
        "return Array.from(arguments[0].querySelectorAll('text')).map(t => "
        "Array.from(t.childNodes).filter(n => n.nodeName !== 'title')"
        ".map(n => n.textContent).join('').trim());",
        matrix,
    )
    for label in ("cat", "dog", "bird"):
        assert label in texts, f"svg#confusion-matrix: no label {label!r} in {texts}"
    counts = collections.Counter(texts)
    for value, times in collections.Counter(["8", "1", "1", "2", "7", "1", "0", "1", "9"]).items():
        assert counts[value] >= times, (
            f"svg#confusion-matrix: cell value {value} shown {counts[value]} times, "
            f"the matrix has it {times} times; texts {texts}"
        )
    cells = matrix.find_elements(By.TAG_NAME, "rect")
    assert len(cells) >= 9, f"svg#confusion-matrix: {len(cells)} rect cells, wanted 9"
    roc = element(browser, "svg#roc-curve", "ClassificationMetrics artifact page")
    lines = roc.find_elements(By.CSS_SELECTOR, "polyline, path, line")
    assert lines, "svg#roc-curve: no polyline/path/line drawn"
    screenshot(browser, screenshots, "artifact-classification")


def test_csv_preview_and_download(browser, artifact_links, screenshots):
    open_artifact(browser, artifact_links, "data")
    rows = table_rows(element(browser, "table#csv-preview", "Dataset artifact page"))
    assert rows[0] == ["label", "predicted", "score"], rows[:2]
    assert rows[1] == ["cat", "cat", "0.0"], rows[:2]
    assert ["cat", "dog", "0.3"] in rows, rows[:6]
    download = element(browser, "a#download", "Dataset artifact page")
    href = download.get_attribute("href")
    assert urllib.parse.urlsplit(href).path.endswith("/download"), href
    with urllib.request.urlopen(href, timeout=10) as answer:
        content = answer.read().decode()
    assert content.startswith("label,predicted,score\ncat,cat,0.0\n"), content[:100]
    screenshot(browser, screenshots, "artifact-dataset")


def frame_sandbox(browser, what):
    frame = element(browser, "iframe#html-artifact", what)
    sandbox = frame.get_attribute("sandbox")
    assert sandbox is not None, f"{what}: iframe#html-artifact has no sandbox attribute"
    tokens = sandbox.split()
    assert "allow-scripts" in tokens, f"{what}: sandbox={sandbox!r} lacks allow-scripts"
    assert "allow-same-origin" not in tokens, f"{what}: sandbox={sandbox!r} allows same origin"
    return frame


def view_headers(url):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.headers, answer.read().decode(errors="replace")


def test_markdown_rendered_in_sandbox(browser, artifact_links, screenshots):
    open_artifact(browser, artifact_links, "notes")
    frame = frame_sandbox(browser, "Markdown artifact page")
    headers, _ = view_headers(frame.get_attribute("src"))
    policy = headers.get("Content-Security-Policy", "")
    assert "sandbox" in policy and "allow-same-origin" not in policy, policy
    browser.switch_to.frame(frame)
    try:
        heading = element(browser, "h1", "Markdown artifact frame")
        assert heading.text.strip() == "Evaluation notes"
        strong = element(browser, "strong", "Markdown artifact frame")
        assert strong.text.strip() == "accuracy 0.9"
        cells = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "table td")]
        assert "bird" in cells and "best" in cells, f"Markdown table not rendered: {cells}"
        assert len(browser.find_elements(By.CSS_SELECTOR, "ul li")) == 2
    finally:
        browser.switch_to.default_content()
    screenshot(browser, screenshots, "artifact-markdown")


def test_html_artifact_cannot_reach_ui(browser, base, artifact_links, screenshots):
    # A cookie on the UI's origin, visible to the UI's own pages.
    open_page(browser, base, "/runs", "h1", "runs list")
    browser.execute_script(f"document.cookie = '{COOKIE_NAME}={COOKIE_VALUE}; path=/';")
    assert COOKIE_VALUE in browser.execute_script("return document.cookie;")

    open_artifact(browser, artifact_links, "page")
    frame = frame_sandbox(browser, "HTML artifact page")
    ui_title = browser.title
    ui_heading = browser.find_element(By.TAG_NAME, "h1").text
    src = frame.get_attribute("src")
    assert urllib.parse.urlsplit(src).path.endswith("/view"), src
    headers, served = view_headers(src)
    policy = headers.get("Content-Security-Policy", "")
    assert "sandbox" in policy and "allow-scripts" in policy, f"/view CSP: {policy!r}"
    assert "allow-same-origin" not in policy, f"/view CSP: {policy!r}"
    assert "parent.document" in served, "/view did not serve the artifact's script"

    browser.switch_to.frame(frame)
    try:
        probe = element(browser, "#probe[data-done='1']", "HTML artifact frame: the probe")
        probe_text = probe.text
        frame_title = browser.execute_script("return document.title;")
    finally:
        browser.switch_to.default_content()
    results = probe_text.splitlines()
    assert COOKIE_VALUE not in probe_text and COOKIE_VALUE not in frame_title, results
    for name in PROBES:
        line = next((r for r in results if r.startswith(name + ":")), None)
        assert line is not None, f"probe {name} missing from {results}"
        allowed = ("blocked", "empty") if name == "own-cookie" else ("blocked",)
        assert line.split(":", 1)[1] in allowed, f"the artifact's script got through: {line!r}"

    # The UI page is as it was.
    assert browser.title == ui_title, f"UI title changed to {browser.title!r}"
    assert browser.find_element(By.TAG_NAME, "h1").text == ui_heading
    hijacked = browser.execute_script("return document.body.getAttribute('data-hijacked');")
    assert hijacked is None, "the artifact's script wrote on the UI's body"
    assert COOKIE_VALUE in browser.execute_script("return document.cookie;")
    screenshot(browser, screenshots, "artifact-html")

    # Opened directly (no frame), the CSP header alone keeps it in an opaque origin.
    browser.get(src)
    probe = element(browser, "#probe[data-done='1']", "HTML artifact opened directly")
    direct = probe.text.splitlines()
    assert COOKIE_VALUE not in probe.text, direct
    cookie_line = next(r for r in direct if r.startswith("own-cookie:"))
    assert cookie_line in ("own-cookie:blocked", "own-cookie:empty"), direct
