"""Comparing runs (parameter and metric differences) and recurring runs (create, disable)."""

import urllib.parse

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from ui_support import (
    click,
    describe_page,
    element,
    name_matches,
    open_page,
    screenshot,
    set_field,
    unique,
    wait_for_url,
    wait_until,
)


def compare_row(table, name, what):
    """The <tr> whose first cell names `name`."""
    for row in table.find_elements(By.TAG_NAME, "tr"):
        cells = row.find_elements(By.CSS_SELECTOR, "th, td")
        if cells and name_matches(cells[0].text, name):
            return row
    raise AssertionError(f"{what}: no row {name!r} in {table.text!r}")


def diff_cells(row):
    return row.find_elements(By.CSS_SELECTOR, "td.diff")


def test_compare_two_runs(browser, base, finished_runs, screenshots):
    one, half = finished_runs[1.0]["run_id"], finished_runs[0.5]["run_id"]
    open_page(browser, base, "/runs", "table#runs", "runs list")
    for run_id in (one, half):
        box = element(browser, f"input.select-run[value='{run_id}']", "runs list: checkbox")
        click(browser, box, f"runs list: checkbox of {run_id}")
        assert box.is_selected()
    click(browser, element(browser, "#compare-selected", "runs list"), "#compare-selected")
    wait_for_url(browser, r"^/compare$", "after #compare-selected")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(browser.current_url).query)
    assert sorted(",".join(query.get("runs", [])).split(",")) == sorted([one, half]), query

    params = element(browser, "table#compare-params", "compare page")
    scale = compare_row(params, "scale", "table#compare-params")
    assert len(diff_cells(scale)) >= 2, f"compare: scale row has no td.diff: {scale.text!r}"
    rows = compare_row(params, "rows", "table#compare-params")
    assert not diff_cells(rows), f"compare: rows (12 in both) marked diff: {rows.text!r}"

    metrics = element(browser, "table#compare-metrics", "compare page")
    accuracy = compare_row(metrics, "accuracy", "table#compare-metrics")
    assert len(diff_cells(accuracy)) >= 2, f"compare: accuracy not td.diff: {accuracy.text!r}"
    texts = [c.text.strip() for c in accuracy.find_elements(By.TAG_NAME, "td")]
    assert {"0.9", "0.45"} <= set(texts), f"compare: accuracy cells {texts}"
    assert len(diff_cells(compare_row(metrics, "loss", "table#compare-metrics"))) >= 2
    same = compare_row(metrics, "rows", "table#compare-metrics")
    assert not diff_cells(same), f"compare: metric rows (12 in both) marked diff: {same.text!r}"
    screenshot(browser, screenshots, "compare")


def recurring_status(browser):
    return browser.find_element(By.ID, "recurring-status").text.strip()


def test_create_and_disable_recurring_run(browser, base, api, pipeline, experiment, screenshots):
    form = open_page(browser, base, "/recurring", "#recurring-form", "recurring page")
    name = unique("ui-recurring")
    set_field(browser, form, "display_name", name, "recurring form")
    version = element(browser, "select[name='pipeline_version']", "recurring form", root=form)
    wanted = f"{pipeline['pipeline_id']}/{pipeline['version_id']}"
    options = [o.get_attribute("value") for o in Select(version).options]
    assert wanted in options, f"recurring form: pipeline_version has no {wanted}: {options}"
    Select(version).select_by_value(wanted)
    experiments = element(browser, "select[name='experiment_id']", "recurring form", root=form)
    Select(experiments).select_by_value(experiment)
    interval = form.find_elements(By.CSS_SELECTOR, "[name='interval_seconds']")
    cron = form.find_elements(By.CSS_SELECTOR, "[name='cron']")
    if interval and interval[0].is_displayed():
        interval[0].clear()
        interval[0].send_keys("3600")
    elif cron and cron[0].is_displayed():
        cron[0].clear()
        cron[0].send_keys("0 0 3 * * *")
    else:
        raise AssertionError(
            f"recurring form: no visible interval_seconds or cron field ({describe_page(browser)})"
        )
    set_field(browser, form, "max_concurrency", "1", "recurring form")
    # The parameters appear once the pipeline version is chosen.
    scale = element(browser, "[name='param-scale']", "recurring form: parameter scale", root=form)
    scale.clear()
    scale.send_keys("0.7")
    click(browser, element(browser, "#recurring-submit", "recurring page"), "#recurring-submit")

    found = wait_for_url(browser, r"^/recurring/([^/]+)$", "after the recurring form")
    recurring_id = urllib.parse.unquote(found.group(1))
    element(browser, "#recurring-status", "recurring run page")
    wait_until(browser, lambda: recurring_status(browser) == "ENABLED",
               lambda: f"recurring page: #recurring-status {recurring_status(browser)!r}")
    stored = api.get(f"/recurringruns/{recurring_id}")
    assert stored["display_name"] == name, stored
    assert stored["status"] == "ENABLED", stored
    assert float(stored["runtime_config"]["parameters"]["scale"]) == 0.7, stored
    assert str(stored.get("max_concurrency")) == "1", stored
    screenshot(browser, screenshots, "recurring-details")

    click(browser, element(browser, "#disable", "recurring run page"), "#disable")
    wait_until(
        browser,
        lambda: recurring_status(browser) == "DISABLED",
        lambda: f"recurring page: #recurring-status stayed {recurring_status(browser)!r}",
    )
    assert api.get(f"/recurringruns/{recurring_id}")["status"] == "DISABLED"
    element(browser, "#enable", "recurring run page (disabled)")

    open_page(browser, base, "/recurring", "table#recurring", "recurring page")
    row = wait_until(
        browser,
        lambda: next((r for r in browser.find_elements(By.CSS_SELECTOR, "table#recurring tr")
                      if name in r.text), None),
        f"recurring page: no row for {name}",
    )
    assert "DISABLED" in row.text, f"recurring list row: {row.text!r}"
    screenshot(browser, screenshots, "recurring-list")
