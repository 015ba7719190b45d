#!/usr/bin/env python3
"""ui_pages: how long `coracle server` takes to answer each page of the web UI with 10,000 runs
stored, against the JSON API's list of runs in the same run.

Steps, on one fresh data directory:
  1. seed: pipelines uploaded through the API (five one-task pipelines, container `true`, and
     tests/pipelines/visualizations.yaml), 10 experiments, then --runs runs created with
     POST /apis/v2beta1/runs from --workers threads at once: all but the last --metric-runs are
     runs of the `true` pipelines spread over the experiments; the last --metric-runs are runs of
     the visualizations pipeline (Metrics, ClassificationMetrics, HTML, Markdown, CSV artifacts;
     different `scale`), so the newest page of /runs has metric columns. Reports the time until
     every POST was answered and until every run ended SUCCEEDED. Five recurring runs
     (disabled) for /recurring.
  2. pages: each page GET --requests times (after one untimed request) over one kept-alive
     HTTP connection on loopback; the wall time of each request, from sending it to the last
     byte of the body, is server time plus a small loopback cost. Each answer must be 200 and
     contain the page's own element (e.g. `id="runs"`); a page that does not is reported
     missing and the exit status is 1. Baseline in the same run: GET /apis/v2beta1/runs with
     the UI's page size (50), and the same sorted by a metric.
Target: every page p95 < 200 ms.

    python3 bench/ui_pages.py [--coracle target/release/coracle] [--runs 10000] [--requests 20]

Python components need a managed environment: set CORACLE_PYTHON_ENVS_DIR (or
--python-envs-dir) to a folder with one built, or the first visualizations run builds it (PyPI).
"""

import argparse
import concurrent.futures
import html.parser
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from server_api import TRUE_PIPELINE, Server, request  # noqa: E402

API = "/apis/v2beta1"
TARGET_P95_S = 0.200
VISUALIZATIONS = os.path.join(benchlib.REPO_ROOT, "tests", "pipelines", "visualizations.yaml")


def upload(base, path, name):
    """POST /pipelines/upload; returns (pipeline_id, version_id)."""
    boundary = uuid.uuid4().hex
    with open(path, "rb") as handle:
        content = handle.read()
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"uploadfile\"; "
        f"filename=\"{os.path.basename(path)}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    query = urllib.parse.urlencode({"name": name, "description": f"bench pipeline {name}"})
    req = urllib.request.Request(f"{base}{API}/pipelines/upload?{query}", data=body,
                                 method="POST")
    req.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    with urllib.request.urlopen(req, timeout=30) as answer:
        pipeline_id = json.loads(answer.read())["pipeline_id"]
    status, versions = request(base, "GET", f"{API}/pipelines/{pipeline_id}/versions")
    if status != 200 or not versions.get("pipeline_versions"):
        raise benchlib.BenchError(f"pipeline {name} has no version: {status} {versions}")
    return pipeline_id, versions["pipeline_versions"][0]["pipeline_version_id"]


def create_run(base, body):
    status, answer = request(base, "POST", f"{API}/runs", body, timeout=120)
    if status != 200:
        raise benchlib.BenchError(f"POST /runs answered {status}: {answer}")
    return answer["run_id"]


def count_runs(base, state):
    predicate = {"predicates": [{"operation": "EQUALS", "key": "state", "string_value": state}]}
    query = urllib.parse.urlencode({"page_size": 1, "filter": json.dumps(predicate)})
    status, body = request(base, "GET", f"{API}/runs?{query}")
    if status != 200:
        raise benchlib.BenchError(f"GET /runs (state {state}) answered {status}: {body}")
    return int(body.get("total_size") or 0)


def seed(base, args, workdir):
    """Pipelines, experiments, runs and recurring runs; returns what the pages need."""
    true_file = os.path.join(workdir, "one-true.json")
    with open(true_file, "w") as handle:
        json.dump(TRUE_PIPELINE, handle)
    true_versions = [upload(base, true_file, f"bench-true-{index}") for index in range(5)]
    vis_pipeline, vis_version = upload(base, VISUALIZATIONS, "bench-visualizations")
    experiments = []
    for index in range(10):
        status, body = request(base, "POST", f"{API}/experiments",
                               {"display_name": f"bench-experiment-{index}"})
        if status != 200:
            raise benchlib.BenchError(f"POST /experiments answered {status}: {body}")
        experiments.append(body["experiment_id"])

    plain = args.runs - args.metric_runs
    bodies = []
    for index in range(plain):
        pipeline_id, version_id = true_versions[index % len(true_versions)]
        bodies.append({
            "display_name": f"bench-run-{index:05d}",
            "experiment_id": experiments[index % len(experiments)],
            "pipeline_version_reference": {"pipeline_id": pipeline_id,
                                           "pipeline_version_id": version_id},
        })
    metric_bodies = []
    for index in range(args.metric_runs):
        metric_bodies.append({
            "display_name": f"bench-metrics-{index:03d}",
            "experiment_id": experiments[0],
            "pipeline_version_reference": {"pipeline_id": vis_pipeline,
                                           "pipeline_version_id": vis_version},
            "runtime_config": {"parameters": {"scale": round(1.0 - index / 100, 4),
                                              "rows": 12, "delay": 0.0}},
        })
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(lambda body: create_run(base, body), bodies))
        # The metric runs last: they are the newest, on the first page of /runs.
        metric_ids = list(pool.map(lambda body: create_run(base, body), metric_bodies))
    created_s = time.perf_counter() - start
    deadline = time.perf_counter() + args.seed_timeout
    while True:
        succeeded = count_runs(base, "SUCCEEDED")
        failed = count_runs(base, "FAILED")
        if failed:
            raise benchlib.BenchError(f"{failed} seeded runs FAILED")
        if succeeded >= args.runs:
            break
        if time.perf_counter() > deadline:
            raise benchlib.BenchError(
                f"only {succeeded} of {args.runs} runs SUCCEEDED after {args.seed_timeout} s")
        time.sleep(0.5)
    done_s = time.perf_counter() - start

    recurring = []
    for index in range(5):
        pipeline_id, version_id = true_versions[index]
        status, body = request(base, "POST", f"{API}/recurringruns", {
            "display_name": f"bench-recurring-{index}",
            "experiment_id": experiments[index],
            "pipeline_version_reference": {"pipeline_id": pipeline_id,
                                           "pipeline_version_id": version_id},
            "trigger": {"cron_schedule": {"cron": "0 0 0 1 1 *"}},
            "max_concurrency": 1,
            "mode": "DISABLE",
        })
        if status != 200:
            raise benchlib.BenchError(f"POST /recurringruns answered {status}: {body}")
        recurring.append(body["recurring_run_id"])
    return {
        "created_s": created_s,
        "done_s": done_s,
        "experiments": experiments,
        "visualizations": (vis_pipeline, vis_version),
        "metric_runs": metric_ids,
        "recurring": recurring,
    }


class Links(html.parser.HTMLParser):
    """The `a` elements of a page: (attributes) in order."""

    def __init__(self):
        super().__init__()
        self.anchors = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.anchors.append(dict(attrs))


def anchors(body):
    parser = Links()
    parser.feed(body)
    return parser.anchors


class Client:
    """One kept-alive HTTP/1.1 connection to the server."""

    def __init__(self, port):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path):
        """(seconds, status, body text) of one GET, timed to the last byte."""
        start = time.perf_counter()
        try:
            self.connection.request("GET", path)
            answer = self.connection.getresponse()
            body = answer.read()
        except (http.client.HTTPException, OSError):
            # The server closed the kept-alive connection: one retry on a new one.
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            start = time.perf_counter()
            self.connection.request("GET", path)
            answer = self.connection.getresponse()
            body = answer.read()
        return time.perf_counter() - start, answer.status, body.decode(errors="replace")


def deep_page(client, pages):
    """Follows `a#next-page` from /runs `pages` times; returns the last page's path."""
    path = "/runs"
    for _ in range(pages):
        _, status, body = client.get(path)
        if status != 200:
            raise benchlib.BenchError(f"GET {path} answered {status}")
        following = [a.get("href") for a in anchors(body) if a.get("id") == "next-page"]
        if not following or not following[0]:
            raise benchlib.BenchError(f"{path} has no a#next-page")
        path = urllib.parse.urljoin(path, following[0])
    return path


def artifact_paths(client, run_id):
    """{data-name: href} of the run page's artifact links."""
    _, status, body = client.get(f"/runs/{run_id}")
    if status != 200:
        return {}
    return {a.get("data-name"): a.get("href") for a in anchors(body)
            if "artifact" in (a.get("class") or "").split() and a.get("href")}


def pick(paths, name):
    for label, href in paths.items():
        label = label or ""
        if label == name or label.endswith(("/" + name, "." + name, " " + name)):
            return href
    return None


def p95(samples):
    ordered = sorted(samples)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


def summary(samples):
    return {
        "n": len(samples),
        "median_ms": round(statistics.median(samples) * 1000, 3),
        "p95_ms": round(p95(samples) * 1000, 3),
        "min_ms": round(min(samples) * 1000, 3),
        "max_ms": round(max(samples) * 1000, 3),
    }


def time_page(client, path, marker, requests):
    """Times `requests` GETs of `path` after one untimed one; None figures when missing."""
    _, status, body = client.get(path)
    if status != 200 or (marker and marker not in body):
        return {"path": path, "missing": True, "status": status, "start": body[:160]}
    samples, sizes = [], set()
    for _ in range(requests):
        wall, status, body = client.get(path)
        if status != 200:
            return {"path": path, "missing": True, "status": status, "start": body[:160]}
        samples.append(wall)
        sizes.add(len(body.encode()))
    result = summary(samples)
    result.update({"path": path, "bytes": max(sizes)})
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coracle", default=benchlib.DEFAULT_CORACLE)
    parser.add_argument("--runs", type=int, default=10_000, help="runs stored (default 10000)")
    parser.add_argument("--metric-runs", type=int, default=50,
                        help="of which runs of the visualizations pipeline (default 50)")
    parser.add_argument("--workers", type=int, default=8, help="parallel POST /runs (default 8)")
    parser.add_argument("--requests", type=int, default=20, help="timed GETs per page")
    parser.add_argument("--deep-page", type=int, default=100,
                        help="the deep page of /runs: this many a#next-page hops (default 100)")
    parser.add_argument("--seed-timeout", type=float, default=1800.0)
    parser.add_argument("--python-envs-dir", metavar="DIR")
    parser.add_argument("--coracle-home", help="use this CORACLE_HOME (kept)")
    parser.add_argument("--results-dir", default=benchlib.RESULTS_DIR)
    args = parser.parse_args()
    if args.metric_runs < 3 or args.runs <= args.metric_runs:
        raise benchlib.BenchError("need --metric-runs >= 3 and --runs > --metric-runs", 2)
    if args.python_envs_dir:
        os.environ["CORACLE_PYTHON_ENVS_DIR"] = os.path.abspath(args.python_envs_dir)
    coracle = benchlib.resolve_coracle(args.coracle)
    version = benchlib.coracle_version(coracle)
    info = benchlib.machine_info()
    benchlib.print_machine(info)
    load_before = os.getloadavg()
    results = {}
    missing = []
    with benchlib.CoracleHome(args.coracle_home) as home:
        server = Server([coracle, "server", "--listen", "127.0.0.1:{port}"], home.path,
                        f"{API}/healthz")
        server.start()
        try:
            with tempfile.TemporaryDirectory() as workdir:
                seeded = seed(server.base, args, workdir)
            results["seed"] = {
                "runs": args.runs,
                "metric_runs": args.metric_runs,
                "workers": args.workers,
                "all_created_s": round(seeded["created_s"], 3),
                "all_succeeded_s": round(seeded["done_s"], 3),
                "runs_per_s": round(args.runs / seeded["done_s"], 1),
            }
            print(f"seeded {args.runs} runs ({args.metric_runs} with metrics) through POST /runs "
                  f"from {args.workers} threads: all created in {seeded['created_s']:.1f} s, "
                  f"all SUCCEEDED after {seeded['done_s']:.1f} s "
                  f"({args.runs / seeded['done_s']:.0f} runs/s)")

            client = Client(server.port)
            vis_pipeline, vis_version = seeded["visualizations"]
            newest = seeded["metric_runs"][-1]
            artifacts = artifact_paths(client, newest)
            try:
                deep = deep_page(client, args.deep_page)
            except benchlib.BenchError as error:
                print(f"deep page: {error}")
                deep = None
            compared = ",".join(seeded["metric_runs"][:3])
            experiment = seeded["experiments"][1]
            pages = [
                ("runs", "/runs", 'id="runs"'),
                (f"runs page {args.deep_page + 1} (page_token)", deep, 'id="runs"'),
                ("runs sorted by name", "/runs?sort=display_name", 'id="runs"'),
                ("runs oldest first", "/runs?sort=created_at", 'id="runs"'),
                ("runs whose name contains a text", "/runs?q=metrics-04", 'id="runs"'),
                ("runs of one state, finished last",
                 "/runs?state=SUCCEEDED&sort=finished_at%20desc", 'id="runs"'),
                ("runs by a metric, highest first", "/runs?sort=metric%3Aaccuracy%20desc",
                 'class="sort-metric"'),
                ("runs by a metric, lowest first", "/runs?sort=metric%3Aaccuracy%20asc",
                 'class="sort-metric"'),
                ("runs by a metric no run has", "/runs?sort=metric%3Anone%20desc", 'id="runs"'),
                ("run details", f"/runs/{newest}", 'id="graph"'),
                ("run status json", f"/runs/{newest}/status.json", '"state"'),
                ("pipelines", "/pipelines", 'id="upload-form"'),
                ("pipeline", f"/pipelines/{vis_pipeline}?version={vis_version}", 'id="graph"'),
                ("experiments", "/experiments", 'id="experiment-form"'),
                ("experiment (~1,000 runs)", f"/experiments/{experiment}", 'class="run"'),
                ("compare 3 runs", f"/compare?runs={compared}", 'id="compare-metrics"'),
                ("artifact: Metrics", pick(artifacts, "metrics"), 'id="metrics-table"'),
                ("artifact: ClassificationMetrics", pick(artifacts, "classification"),
                 'id="confusion-matrix"'),
                ("artifact: HTML", pick(artifacts, "page"), 'id="html-artifact"'),
                ("artifact: Dataset (CSV)", pick(artifacts, "data"), 'id="csv-preview"'),
                ("recurring", "/recurring", 'id="recurring"'),
                ("baseline: GET /apis/v2beta1/runs?page_size=50",
                 f"{API}/runs?page_size=50", '"runs"'),
                ("GET /apis/v2beta1/runs?page_size=50 by a metric",
                 f"{API}/runs?page_size=50&sort_by=metric%3Aaccuracy%20desc", '"runs"'),
            ]
            timings = {}
            for name, path, marker in pages:
                if path is None:
                    timings[name] = {"path": None, "missing": True, "status": None,
                                     "start": "no link to it was found"}
                else:
                    timings[name] = time_page(client, path, marker, args.requests)
                if timings[name].get("missing"):
                    missing.append(name)
            results["pages"] = timings
        finally:
            server.stop()
    load_after = os.getloadavg()
    results["load_average"] = {"before": load_before, "after": load_after}

    print(f"{'page':48} {'median':>9} {'p95':>9} {'max':>9} {'bytes':>9}")
    worst = 0.0
    for name, figures in results["pages"].items():
        if figures.get("missing"):
            print(f"{name:48} MISSING (status {figures['status']}): {figures['start'][:60]!r}")
            continue
        if not name.startswith("baseline"):
            worst = max(worst, figures["p95_ms"])
        print(f"{name:48} {figures['median_ms']:7.2f}ms {figures['p95_ms']:7.2f}ms "
              f"{figures['max_ms']:7.2f}ms {figures['bytes']:9d}")
    met = not missing and worst < TARGET_P95_S * 1000
    print(f"target every page p95 < 200 ms: {'met' if met else 'NOT met'} "
          f"(worst p95 {worst:.2f} ms{', pages missing: ' + ', '.join(missing) if missing else ''})")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    results["target_met"] = met
    benchlib.write_result(args.results_dir, "ui_pages", {
        "machine": info, "coracle": {"path": coracle, "version": version},
        "config": vars(args), "results": results,
    })
    return 1 if missing else 0


if __name__ == "__main__":
    benchlib.main_wrapper(main)
