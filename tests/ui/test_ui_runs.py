"""Runs: the new-run form, the run page's live graph and task panel, streaming logs, the runs
list with metric columns."""

import re
import urllib.parse

from selenium.webdriver.common.by import By

from ui_support import (
    RUN_TIMEOUT,
    click,
    element,
    elements,
    name_matches,
    open_page,
    screenshot,
    set_field,
    table_rows,
    unique,
    wait_for_url,
    wait_until,
)

TASKS = ("make-data", "evaluate", "report")

# One look at the run page: run state, each node's state, and whether our marker survived
# (a reload or navigation would drop it).
SNAPSHOT_JS = """
var state = document.getElementById('run-state');
var nodes = {};
document.querySelectorAll('svg#graph g.node').forEach(function (n) {
  nodes[n.getAttribute('data-task')] = n.getAttribute('data-state');
});
return {state: state ? state.textContent.trim() : null, nodes: nodes,
        marker: window.__coracleUiMarker || null};
"""


def watch_run_page(browser, until_state="SUCCEEDED", timeout=RUN_TIMEOUT):
    """Mark the page, then poll it until #run-state reads a final state; return the snapshots."""
    element(browser, "#run-state", "run page")
    element(browser, "svg#graph g.node", "run page graph")
    browser.execute_script("window.__coracleUiMarker = 'still-here';")
    seen = []

    def ended():
        snap = browser.execute_script(SNAPSHOT_JS)
        if not seen or seen[-1] != snap:
            seen.append(snap)
        return snap["state"] in ("SUCCEEDED", "FAILED", "CANCELED")

    wait_until(
        browser,
        ended,
        lambda: f"run page: #run-state never became final; states seen {states(seen)}",
        timeout=timeout,
    )
    last = seen[-1]
    assert last["marker"] == "still-here", (
        "run page: the page was reloaded or left while the run went on (it must poll "
        f"and update in place); states seen {states(seen)}"
    )
    assert last["state"] == until_state, f"run page: #run-state {last['state']}: {states(seen)}"
    return seen


def states(seen):
    return [(s["state"], s["nodes"]) for s in seen]


def test_run_form_starts_run_and_graph_updates_live(browser, base, api, pipeline, screenshots):
    path = f"/runs/new?pipeline={pipeline['pipeline_id']}&version={pipeline['version_id']}"
    form = open_page(browser, base, path, "#run-form", "new-run form")
    name = unique("ui-form-run")
    set_field(browser, form, "display_name", name, "new-run form")
    scale = element(browser, "[name='param-scale']", "new-run form: parameter scale", root=form)
    assert scale.get_attribute("value") in ("1", "1.0"), "param-scale not prefilled with 1.0"
    set_field(browser, form, "param-scale", "0.5", "new-run form")
    set_field(browser, form, "param-delay", "4", "new-run form")
    element(browser, "select[name='experiment_id']", "new-run form", root=form)
    screenshot(browser, screenshots, "run-form")
    click(browser, element(browser, "#run-submit", "new-run form"), "#run-submit")

    found = wait_for_url(browser, r"^/runs/([0-9a-fA-F-]{8,})$", "after the new-run form")
    run_id = urllib.parse.unquote(found.group(1))
    seen = watch_run_page(browser)

    # It was watched in progress, then every node reached SUCCEEDED on the same page.
    assert any(s["state"] in ("PENDING", "RUNNING") for s in seen), (
        f"run page: never showed the run in progress: {states(seen)}"
    )
    assert any(s["nodes"].get("make-data") == "RUNNING" for s in seen), (
        f"run page: node make-data was never shown RUNNING: {states(seen)}"
    )
    final_nodes = wait_until(
        browser,
        lambda: (n := browser.execute_script(SNAPSHOT_JS)["nodes"])
        and all(n.get(t) == "SUCCEEDED" for t in TASKS)
        and n,
        lambda: f"run page: nodes not all SUCCEEDED: {browser.execute_script(SNAPSHOT_JS)}",
    )
    assert set(final_nodes) == set(TASKS), final_nodes
    assert browser.execute_script(SNAPSHOT_JS)["marker"] == "still-here"

    stored = api.get(f"/runs/{run_id}")
    assert stored["display_name"] == name, stored
    assert stored["state"] == "SUCCEEDED", stored
    parameters = stored["runtime_config"]["parameters"]
    assert float(parameters["scale"]) == 0.5, parameters
    assert float(parameters["delay"]) == 4.0, parameters
    screenshot(browser, screenshots, "run-details")


def test_task_panel_shows_log(browser, base, finished_runs, screenshots):
    run_id = finished_runs[1.0]["run_id"]
    open_page(browser, base, f"/runs/{run_id}", "svg#graph g.node", "run page")
    node = element(browser, "svg#graph g.node[data-task='evaluate']", "run page graph")
    click(browser, node, "run page: node evaluate")
    panel = element(browser, "#task-panel", "run page after clicking node evaluate")
    wait_until(browser, panel.is_displayed, "run page: #task-panel is not shown")
    log = element(browser, "pre#task-log", "task panel of evaluate")
    wait_until(
        browser,
        lambda: "evaluate: accuracy=0.9 loss=0.1 rows=12" in log.text,
        lambda: f"task panel: pre#task-log lacks the task's line: {log.text[-500:]!r}",
    )
    text = panel.text
    assert "scale" in text, f"task panel: inputs (scale) not shown: {text[:500]!r}"
    assert "SUCCEEDED" in text, f"task panel: state not shown: {text[:500]!r}"
    screenshot(browser, screenshots, "run-details-task-panel")


def test_task_log_streams_while_running(browser, base, api, pipeline, experiment):
    run_id = api.create_run(
        unique("ui-streaming"),
        pipeline["pipeline_id"],
        pipeline["version_id"],
        {"scale": 1.0, "rows": 3, "delay": 6.0},
        experiment,
    )
    open_page(browser, base, f"/runs/{run_id}", "svg#graph g.node", "run page")
    browser.execute_script("window.__coracleUiMarker = 'still-here';")
    node = element(browser, "svg#graph g.node[data-task='make-data']", "run page graph")
    wait_until(
        browser,
        lambda: node.get_attribute("data-state") == "RUNNING",
        lambda: f"run page: make-data not shown RUNNING ({node.get_attribute('data-state')})",
        timeout=RUN_TIMEOUT,
    )
    click(browser, node, "run page: node make-data")

    def log_text():
        # The panel may be redrawn when the task's state changes: find the log each time.
        logs = browser.find_elements(By.CSS_SELECTOR, "#task-panel pre#task-log")
        return logs[0].text if logs else None

    def panel_text():
        panels = browser.find_elements(By.ID, "task-panel")
        return panels[0].text[:300] if panels else "(no #task-panel)"

    # The task sleeps 6 s after its first line: the line must show well before it ends.
    wait_until(
        browser,
        # A float parameter of integral value reaches the component as 6 (as on KFP).
        lambda: re.search(r"make-data: waiting 6(\.0)? s", log_text() or ""),
        lambda: "task panel of the running make-data: "
        + ("no pre#task-log" if log_text() is None else "pre#task-log lacks the line the task "
           f"printed at its start: {(log_text() or '')[-300:]!r}")
        + f"; panel: {panel_text()!r}",
        timeout=4,
    )
    run = api.get(f"/runs/{run_id}")
    states = {t.get("display_name"): t.get("state") for t in
              (run.get("run_details") or {}).get("task_details") or []}
    assert states.get("make-data") == "RUNNING", f"make-data ended before its log showed: {states}"
    assert "wrote 3 rows" not in log_text()
    wait_until(
        browser,
        lambda: "make-data: wrote 3 rows" in (log_text() or ""),
        lambda: "task panel: the log did not stream the line written later: "
        f"{(log_text() or '')[-500:]!r}",
        timeout=60,
    )
    assert browser.execute_script("return window.__coracleUiMarker") == "still-here", (
        "run page: reloaded while streaming the log"
    )
    api.wait_run(run_id)


def header_index(rows, name, what):
    header = rows[0]
    for index, label in enumerate(header):
        if name_matches(label, name):
            return index
    raise AssertionError(f"{what}: no column {name!r} in the header {header}")


def same_number(text, want):
    try:
        return abs(float(text) - float(want)) < 1e-9
    except ValueError:
        return False


def test_runs_list_has_metric_columns(browser, base, finished_runs, screenshots):
    table = open_page(browser, base, "/runs", "table#runs", "runs list")
    for run in finished_runs.values():
        element(browser, f"tr.run[data-run-id='{run['run_id']}']", "runs list: fixture run")
    rows = table_rows(table)
    accuracy = header_index(rows, "accuracy", "runs list")
    loss = header_index(rows, "loss", "runs list")
    for scale, want_accuracy, want_loss in ((1.0, "0.9", "0.1"), (0.5, "0.45", "0.55")):
        row = element(browser, f"tr.run[data-run-id='{finished_runs[scale]['run_id']}']", "runs")
        cells = [c.text.strip() for c in row.find_elements("css selector", "td, th")]
        assert same_number(cells[accuracy], want_accuracy), (
            f"runs list: accuracy of scale={scale}: {cells}"
        )
        assert same_number(cells[loss], want_loss), f"runs list: loss of scale={scale}: {cells}"
        state = row.find_element("css selector", "td.state").text.strip()
        assert state == "SUCCEEDED", f"runs list: td.state of scale={scale}: {state!r}"
        link = row.find_element("css selector", f"a[href$='/runs/{finished_runs[scale]['run_id']}']")
        assert link.text.strip() == finished_runs[scale]["name"]
    screenshot(browser, screenshots, "runs-list")


def accuracy_column(browser, what):
    """The runs' ids and accuracy cells of the runs list on screen, in row order."""
    rows = table_rows(element(browser, "table#runs", what))
    column = header_index(rows, "accuracy", what)
    ids = [r.get_attribute("data-run-id") for r in elements(browser, "tr.run", what)]
    return list(zip(ids, [row[column] for row in rows[1:]]))


def test_runs_list_sorts_by_a_metric_header(browser, base, finished_runs, screenshots):
    """Clicking the accuracy header sorts the runs by it, highest first; clicking it again
    reverses the order. Runs without an accuracy come last either way."""
    high, low = finished_runs[1.0]["run_id"], finished_runs[0.5]["run_id"]
    open_page(browser, base, "/runs", "table#runs", "runs list")
    for direction in ("descending", "ascending"):
        header = element(browser, "th.metric a.sort-metric[title='sort by accuracy']",
                         "runs list: accuracy header")
        click(browser, header, "runs list: accuracy header")
        what = f"runs list sorted by accuracy, {direction}"
        element(browser, f"th.metric[aria-sort='{direction}'] a[title='sort by accuracy']", what)
        cells = accuracy_column(browser, what)
        ids = [run_id for run_id, _ in cells]
        assert high in ids and low in ids, f"{what}: fixture runs missing from {cells}"
        values = [float(value) for _, value in cells if value]
        assert values == sorted(values, reverse=direction == "descending"), f"{what}: {cells}"
        blanks = [index for index, (_, value) in enumerate(cells) if not value]
        assert all(index >= len(values) for index in blanks), f"{what}: blanks first: {cells}"
        before, after = (high, low) if direction == "descending" else (low, high)
        assert ids.index(before) < ids.index(after), f"{what}: {cells}"
        selected = element(browser, "select[name='sort'] option:checked", what).text
        assert "accuracy" in selected, f"{what}: the sort select shows {selected!r}"
    screenshot(browser, screenshots, "runs-list-by-accuracy")


def test_runs_list_filters_by_name(browser, base, finished_runs):
    wanted = finished_runs[0.5]
    query = urllib.parse.urlencode({"q": wanted["name"]})
    open_page(browser, base, f"/runs?{query}", "table#runs", "runs list filtered by q")
    runs = elements(browser, "tr.run", "runs list filtered by q")
    assert [r.get_attribute("data-run-id") for r in runs] == [wanted["run_id"]]
