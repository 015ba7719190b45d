"""The web UI in a real browser: headless Chromium driven by Selenium against a `coracle server`
this suite starts.

Run from the repository root (needs `chromium`, `chromium-driver`, selenium 4.27.1, pytest):

    CORACLE_BIN=target/release/coracle $VENV/bin/python -m pytest tests/ui -q

The server gets a fresh data directory and the port it picks (`--listen 127.0.0.1:0`);
CORACLE_PYTHON_ENVS_DIR (or CORACLE_TEST_ENVS_DIR) is passed on so Python components reuse
built environments. Screenshots of the main pages go to $CORACLE_UI_SCREENSHOTS (default
`target/ui-screenshots`); a failing test also leaves `failed-<test>.png` there.
Env CHROMIUM / CHROMEDRIVER override `/usr/bin/chromium` / `/usr/bin/chromedriver`.
"""

import os
import shutil
import sys
import tempfile

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service

from ui_support import PIPELINE_YAML, REPO_ROOT, WINDOW, Api, unique

# tests/coracle_server.py starts the server every suite tests.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from coracle_server import serve  # noqa: E402


@pytest.fixture(scope="session")
def server():
    yield from serve("coracle-ui-")

@pytest.fixture(scope="session")
def api(server):
    return Api(server.url)


@pytest.fixture(scope="session")
def base(server):
    return server.url


def screenshots_dir() -> str:
    directory = os.environ.get("CORACLE_UI_SCREENSHOTS") or os.path.join(
        REPO_ROOT, "target", "ui-screenshots"
    )
    return os.path.abspath(directory)


def pytest_sessionstart(session):
    # Failure screenshots of an earlier run would mislead: only this run's stay.
    directory = screenshots_dir()
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            if name.startswith("failed-") and name.endswith(".png"):
                os.remove(os.path.join(directory, name))


@pytest.fixture(scope="session")
def screenshots():
    directory = screenshots_dir()
    os.makedirs(directory, exist_ok=True)
    return directory


@pytest.fixture(scope="session")
def browser():
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    chromedriver = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
    for path in (chromium, chromedriver):
        if not os.access(path, os.X_OK):
            raise RuntimeError(
                f"{path} is missing: install Debian's `chromium` and `chromium-driver`"
            )
    profile = tempfile.mkdtemp(prefix="coracle-ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    driver.set_page_load_timeout(30)
    driver.set_window_size(*WINDOW)
    yield driver
    try:
        driver.quit()
    except WebDriverException:
        pass
    shutil.rmtree(profile, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed and "browser" in item.fixturenames:
        driver = item.funcargs.get("browser")
        directory = screenshots_dir()
        try:
            os.makedirs(directory, exist_ok=True)
            driver.save_screenshot(os.path.join(directory, f"failed-{item.name}.png"))
        except (OSError, WebDriverException):
            pass
    return report


@pytest.fixture(scope="session")
def pipeline(api):
    """The visualizations pipeline uploaded through the API:
    {"pipeline_id", "version_id", "name"}."""
    name = unique("visualizations-api")
    uploaded = api.upload(PIPELINE_YAML, name, "uploaded by a fixture")
    pipeline_id = uploaded["pipeline_id"]
    return {
        "pipeline_id": pipeline_id,
        "version_id": api.newest_version(pipeline_id),
        "name": name,
    }


@pytest.fixture(scope="session")
def experiment(api):
    body = api.post("/experiments", {"display_name": unique("ui-tests")})
    return body["experiment_id"]


@pytest.fixture(scope="session")
def finished_runs(api, pipeline, experiment):
    """Two runs of the visualizations pipeline that ended SUCCEEDED, by `scale`:
    {1.0: {"run_id", "name"}, 0.5: {...}}."""
    runs = {}
    for scale in (1.0, 0.5):
        name = unique(f"ui-scale-{scale}")
        run_id = api.create_run(
            name,
            pipeline["pipeline_id"],
            pipeline["version_id"],
            {"scale": scale, "rows": 12, "delay": 0.0},
            experiment,
        )
        runs[scale] = {"run_id": run_id, "name": name}
    for scale, run in runs.items():
        ended = api.wait_run(run["run_id"])
        assert ended["state"] == "SUCCEEDED", f"fixture run scale={scale} ended {ended['state']}"
    return runs
