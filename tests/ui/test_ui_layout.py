"""What every page shares: the navigation, a heading, <main>; `/` goes to the runs list; a page
for something that does not exist says so."""

import urllib.error
import urllib.request

import pytest
from selenium.webdriver.common.by import By

from ui_support import element, open_page, wait_for_url

NAV = ["Pipelines", "Experiments", "Runs", "Recurring runs"]


def test_root_goes_to_runs(browser, base):
    browser.get(base + "/")
    wait_for_url(browser, r"^/runs$", "GET /")
    element(browser, "table#runs", "runs list reached from /")


def test_every_page_has_nav_heading_and_main(browser, base, pipeline, experiment, finished_runs):
    run_id = finished_runs[1.0]["run_id"]
    paths = [
        "/pipelines",
        f"/pipelines/{pipeline['pipeline_id']}",
        "/experiments",
        f"/experiments/{experiment}",
        "/runs",
        f"/runs/{run_id}",
        f"/runs/new?pipeline={pipeline['pipeline_id']}&version={pipeline['version_id']}",
        f"/compare?runs={run_id},{finished_runs[0.5]['run_id']}",
        "/recurring",
    ]
    for path in paths:
        nav = open_page(browser, base, path, "nav#nav", "page")
        links = [a.text.strip() for a in nav.find_elements(By.TAG_NAME, "a")]
        for label in NAV:
            assert label in links, f"{path}: nav#nav has no link {label!r}: {links}"
        heading = element(browser, "h1", f"page {path}")
        assert heading.text.strip(), f"{path}: empty <h1>"
        element(browser, "main", f"page {path}")


@pytest.mark.parametrize("path", ["/runs/no-such-run", "/pipelines/no-such-pipeline",
                                  "/artifacts/no-such-artifact"])
def test_missing_things_are_404_pages(browser, base, path):
    with pytest.raises(urllib.error.HTTPError) as failure:
        urllib.request.urlopen(base + path, timeout=10)
    assert failure.value.code == 404, f"{path}: status {failure.value.code}"
    assert "text/html" in failure.value.headers.get("Content-Type", ""), (
        f"{path}: a 404 that is not an HTML page: {failure.value.headers.get('Content-Type')}"
    )
    browser.get(base + path)
    element(browser, "nav#nav", f"404 page {path}")
