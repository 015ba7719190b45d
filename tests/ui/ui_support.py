"""Helpers of the browser tests: the JSON API, waiting for pages and elements with failure
messages that name the page and the element, screenshots."""

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIPELINE_YAML = os.path.join(REPO_ROOT, "tests", "pipelines", "visualizations.yaml")
API = "/apis/v2beta1"
# Python components may need a managed environment built first (PyPI, once).
RUN_TIMEOUT = 600
# How long a page element may take to appear.
ELEMENT_TIMEOUT = 15
FINAL_STATES = {"SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"}
# The browser window (screenshots grow it to the page's height for a moment).
WINDOW = (1400, 900)


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns()}"


class Api:
    """The server's JSON API (`/apis/v2beta1`), with urllib."""

    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, body=None, timeout: float = 30) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + API + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise AssertionError(
                f"{method} {API}{path} answered {error.code}: {error.read()[:500]!r}"
            ) from None

    def get(self, path: str) -> dict:
        return self.call("GET", path)

    def post(self, path: str, body=None) -> dict:
        return self.call("POST", path, body if body is not None else {})

    def upload(self, file_path: str, name: str, description: str = "") -> dict:
        """POST /pipelines/upload (multipart field `uploadfile`); returns the pipeline."""
        boundary = uuid.uuid4().hex
        with open(file_path, "rb") as f:
            content = f.read()
        body = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"uploadfile\"; "
            f"filename=\"{os.path.basename(file_path)}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
        query = urllib.parse.urlencode({"name": name, "description": description})
        request = urllib.request.Request(
            f"{self.base}{API}/pipelines/upload?{query}", data=body, method="POST"
        )
        request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def newest_version(self, pipeline_id: str) -> str:
        versions = self.get(f"/pipelines/{pipeline_id}/versions").get("pipeline_versions") or []
        assert versions, f"pipeline {pipeline_id} has no version"
        versions.sort(key=lambda v: v.get("created_at", ""))
        return versions[-1]["pipeline_version_id"]

    def create_run(self, name, pipeline_id, version_id, parameters, experiment_id=None) -> str:
        body = {
            "display_name": name,
            "pipeline_version_reference": {
                "pipeline_id": pipeline_id,
                "pipeline_version_id": version_id,
            },
            "runtime_config": {"parameters": parameters},
        }
        if experiment_id:
            body["experiment_id"] = experiment_id
        return self.post("/runs", body)["run_id"]

    def wait_run(self, run_id: str, timeout: float = RUN_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(f"/runs/{run_id}")
            if run.get("state") in FINAL_STATES:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {run.get('state')} after {timeout} s")
            time.sleep(0.2)


def describe_page(driver) -> str:
    """Where the browser is and what it shows, for failure messages."""
    try:
        url = driver.current_url
        heading = driver.execute_script(
            "var h = document.querySelector('h1'); return h ? h.textContent.trim() : null;"
        )
        error = driver.execute_script(
            "var e = document.getElementById('error');"
            "return e ? e.textContent.trim() : null;"
        )
        body = driver.execute_script(
            "return document.body ? document.body.innerText.slice(0, 300) : '';"
        )
    except WebDriverException as failure:
        return f"(page not readable: {failure.msg})"
    parts = [f"url {url}", f"h1 {heading!r}"]
    if error:
        parts.append(f"#error {error!r}")
    parts.append(f"text {body!r}")
    return "; ".join(parts)


def open_page(driver, base: str, path: str, expect: str, what: str, timeout=ELEMENT_TIMEOUT):
    """Navigate to `path` and wait for the element `expect` (CSS); return it."""
    driver.get(base + path)
    body = driver.execute_script("return document.body ? document.body.innerText : '';") or ""
    if body.lstrip().startswith('{"error"'):
        # The API's answer for a path it does not know: the page does not exist (yet).
        raise AssertionError(f"{what}: the server has no page {path}: {body[:200]}")
    return element(driver, expect, f"{what} ({path})", timeout)


def element(driver, css: str, what: str, timeout=ELEMENT_TIMEOUT, root=None):
    """Wait for the element `css` on the current page; fail naming the page and the element."""
    scope = root or driver
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
            lambda _: scope.find_element(By.CSS_SELECTOR, css)
        )
    except TimeoutException:
        raise AssertionError(
            f"{what}: no element `{css}` after {timeout} s ({describe_page(driver)})"
        ) from None


def elements(driver, css: str, what: str, timeout=ELEMENT_TIMEOUT, root=None, minimum=1):
    """Wait until at least `minimum` elements match `css`; return them all."""
    scope = root or driver
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
            lambda _: (found := scope.find_elements(By.CSS_SELECTOR, css))
            and len(found) >= minimum
            and found
        )
    except TimeoutException:
        count = len(scope.find_elements(By.CSS_SELECTOR, css))
        raise AssertionError(
            f"{what}: {count} element(s) `{css}`, wanted at least {minimum} after {timeout} s "
            f"({describe_page(driver)})"
        ) from None


def wait_until(driver, condition, what: str, timeout=ELEMENT_TIMEOUT, poll=0.1):
    """Poll `condition()` until it returns something true; fail with `what()` or `what`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except (NoSuchElementException, StaleElementReferenceException):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            message = what() if callable(what) else what
            raise AssertionError(f"{message} (after {timeout} s; {describe_page(driver)})")
        time.sleep(poll)


def wait_for_url(driver, pattern: str, what: str, timeout=ELEMENT_TIMEOUT) -> re.Match:
    """Wait until the browser's URL path matches `pattern`; return the match."""
    regex = re.compile(pattern)

    def matched():
        return regex.search(urllib.parse.urlsplit(driver.current_url).path)

    return wait_until(driver, matched, f"{what}: the browser did not go to {pattern}", timeout)


def click(driver, target, what: str):
    """A real click (SVG nodes included); falls back to a pointer move and click."""
    try:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", target)
        target.click()
    except (ElementClickInterceptedException, ElementNotInteractableException):
        try:
            ActionChains(driver).move_to_element(target).click().perform()
        except WebDriverException as failure:
            raise AssertionError(
                f"{what}: could not be clicked: {failure.msg} ({describe_page(driver)})"
            ) from None


def set_field(driver, form, name: str, value: str, what: str):
    """Replace the value of the form's input/textarea `name=...`."""
    field = element(driver, f"[name='{name}']", f"{what}: field name={name}", root=form)
    field.clear()
    field.send_keys(value)
    return field


def table_rows(table) -> list:
    """The text of each cell, row by row (header rows included)."""
    return table.parent.execute_script(
        "return Array.from(arguments[0].rows).map(r => Array.from(r.cells)"
        ".map(c => c.textContent.trim()));",
        table,
    )


def name_matches(label: str, name: str) -> bool:
    """`accuracy` matches a label `accuracy`, `metrics.accuracy`, `evaluate/metrics accuracy`…"""
    label = label.strip()
    return label == name or re.search(rf"(^|[\s./:]){re.escape(name)}$", label) is not None


def screenshot(driver, directory: str, name: str):
    """The whole page (up to 4000 px tall) as `<directory>/<name>.png`."""
    os.makedirs(directory, exist_ok=True)
    width, height = WINDOW
    try:
        full = driver.execute_script(
            "return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight);"
        )
        driver.set_window_size(width, max(height, min(int(full or height), 4000)))
        driver.save_screenshot(os.path.join(directory, f"{name}.png"))
    finally:
        driver.set_window_size(width, height)
