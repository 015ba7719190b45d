#!/usr/bin/env python3
"""server_api: `coracle server` start-up, idle memory, runs created per second through the API,
and `list runs` latency with 100,000 runs stored.

Steps, each on one fresh data directory:
  1. start-up: `coracle server` started --reps times; the time from spawning it to the first
     answer of GET /apis/v2beta1/healthz. Baseline in the same run: `python3 -m http.server`
     started the same way (time to its first answer).
  2. idle memory: the server's VmRSS after --idle-s seconds without requests (and VmHWM).
     Baseline: the idle `python3 -m http.server` of step 1.
  3. runs created per second: --runs POST /apis/v2beta1/runs, one after the other, of a
     one-task pipeline (container `true`, caching off); the rate of accepted creates, then the
     time until all of them ended SUCCEEDED. Baseline: as many `coracle run` processes of the same
     pipeline, one after the other (the way to start runs without a server).
  4. list runs: the server is stopped, the runs of step 3 are copied in the database (SQLite,
     with new ids and creation times spread over a day, into 10 experiments, a third of them
     FAILED) up to --total runs (default 100,000), with their specs, tasks and state history; the
     server is started again and GET /apis/v2beta1/runs is timed (--queries requests of each
     kind, page size 100): newest first; one experiment, newest first; state FAILED sorted by
     name; and walking up to 20 pages of one experiment with next_page_token. Baseline: the same page
     read straight from SQLite by Python (`SELECT * FROM runs WHERE experiment_id = ? ORDER BY
     created_at DESC LIMIT 100`), the floor of any listing.
Targets: list p99 <= 50 ms; idle RSS <= 30 MB (10^6 bytes); start-up well under a second.

    python3 bench/server_api.py [--coracle target/release/coracle] [--total 100000]
"""

import argparse
import datetime
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

TARGET_LIST_P99_S = 0.050
TARGET_IDLE_RSS_BYTES = 30 * 1000 * 1000
API = "/apis/v2beta1"

TRUE_PIPELINE = {
    "pipelineInfo": {"name": "one-true"},
    "root": {"dag": {"tasks": {"true-op": {
        "taskInfo": {"name": "true-op"},
        "componentRef": {"name": "comp-true-op"},
        "cachingOptions": {},
    }}}},
    "components": {"comp-true-op": {"executorLabel": "exec-true-op"}},
    "deploymentSpec": {"executors": {"exec-true-op": {
        "container": {"image": "alpine", "command": ["true"]}
    }}},
    "schemaVersion": "2.1.0",
    "sdkVersion": "kfp-2.14.6",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(base, method, path, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_for(base, path, process, timeout=30.0):
    """Polls base+path until it answers 200; returns seconds since `process` was spawned."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise benchlib.BenchError(f"the server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(base + path, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.002)
    raise benchlib.BenchError(f"no answer from {base}{path} within {timeout} s")


class Server:
    """A `coracle server` (or any command) listening on a free port."""

    def __init__(self, command, home, health_path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.home = home
        self.health_path = health_path
        self.process = None
        self.log = None

    def start(self):
        self.log = tempfile.TemporaryFile()
        env = benchlib.coracle_env(self.home)
        env.setdefault("CORACLE_LOG", "warn")
        start = time.perf_counter()
        self.process = subprocess.Popen(
            self.command, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.home
        )
        wait_for(self.base, self.health_path, self.process)
        return time.perf_counter() - start

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def memory_kb(self):
        status = {}
        with open(f"/proc/{self.process.pid}/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    status[key] = int(value.split()[0])
        return status


def percentile(samples, fraction):
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[index]


def latency_summary(samples):
    return {
        "n": len(samples),
        "p50_ms": round(statistics.median(samples) * 1000, 3),
        "p99_ms": round(percentile(samples, 0.99) * 1000, 3),
        "max_ms": round(max(samples) * 1000, 3),
    }


def time_get(base, path, expect_items=None):
    start = time.perf_counter()
    status, body = request(base, "GET", path)
    wall = time.perf_counter() - start
    if status != 200:
        raise benchlib.BenchError(f"GET {path} answered {status}: {body}")
    if expect_items is not None and len(body.get("runs", [])) != expect_items:
        raise benchlib.BenchError(
            f"GET {path} gave {len(body.get('runs', []))} runs, expected {expect_items}"
        )
    return wall, body


def create_runs(base, count, experiment_id):
    """POSTs `count` runs one after the other; returns (seconds, run ids)."""
    ids = []
    start = time.perf_counter()
    for index in range(count):
        status, body = request(base, "POST", f"{API}/runs", {
            "display_name": f"bench-{index}",
            "experiment_id": experiment_id,
            "pipeline_spec": TRUE_PIPELINE,
        })
        if status != 200:
            raise benchlib.BenchError(f"POST /runs answered {status}: {body}")
        ids.append(body["run_id"])
    return time.perf_counter() - start, ids


def wait_runs(base, ids, timeout=600):
    deadline = time.time() + timeout
    pending = list(ids)
    while pending and time.time() < deadline:
        still = []
        for run_id in pending:
            status, body = request(base, "GET", f"{API}/runs/{run_id}")
            state = body.get("state") if status == 200 else None
            if state in ("FAILED", "CANCELED"):
                raise benchlib.BenchError(f"run {run_id} ended {state}: {body.get('error')}")
            if state != "SUCCEEDED":
                still.append(run_id)
        pending = still
        if pending:
            time.sleep(0.05)
    if pending:
        raise benchlib.BenchError(f"{len(pending)} runs did not finish within {timeout} s")


def stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 1000:09d}Z"


def seed(db_path, total, experiments):
    """Copies the stored runs (with their specs, tasks and state history) until `total` runs."""
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA foreign_keys = ON")
    templates = [row[0] for row in db.execute("SELECT run_id FROM runs")]
    if not templates:
        raise benchlib.BenchError("no run to copy")
    have = len(templates)
    tables = {}
    for table in ("runs", "run_specs", "run_state_history", "tasks"):
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        if columns:
            tables[table] = [c for c in columns if c != "seq"]
    base_time = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    random.seed(7)
    start = time.perf_counter()
    db.execute("BEGIN")
    for index in range(total - have):
        template = templates[index % len(templates)]
        new_id = str(uuid.uuid4())
        created = stamp(base_time + datetime.timedelta(seconds=index * 86400 / total))
        failed = index % 3 == 0
        overrides = {
            "run_id": new_id,
            "created_at": created,
            "display_name": f"seeded-{index:06d}",
            "experiment_id": experiments[index % len(experiments)],
        }
        if failed:
            overrides["state"] = "FAILED"
            overrides["error"] = "seeded failure"
        for table, columns in tables.items():
            # The run row takes every override; its specs, tasks and history only the new id.
            given = overrides if table == "runs" else {"run_id": new_id}
            select = ", ".join("?" if c in given else c for c in columns)
            values = [given[c] for c in columns if c in given]
            db.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM {table} "
                "WHERE run_id = ?",
                values + [template],
            )
    db.commit()
    count = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    db.close()
    return count, time.perf_counter() - start


def sqlite_floor(db_path, experiment_id, queries):
    db = sqlite3.connect(db_path)
    samples = []
    for _ in range(queries):
        start = time.perf_counter()
        rows = db.execute(
            "SELECT * FROM runs WHERE experiment_id = ? ORDER BY created_at DESC LIMIT 100",
            (experiment_id,),
        ).fetchall()
        samples.append(time.perf_counter() - start)
        if len(rows) != 100:
            raise benchlib.BenchError(f"the SQLite floor query gave {len(rows)} rows")
    db.close()
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coracle", default=benchlib.DEFAULT_CORACLE)
    parser.add_argument("--reps", type=int, default=5, help="server starts timed (default 5)")
    parser.add_argument("--idle-s", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=200, help="runs created through the API")
    parser.add_argument("--total", type=int, default=100_000, help="runs stored for listing")
    parser.add_argument("--queries", type=int, default=200, help="list requests of each kind")
    parser.add_argument("--results-dir", default=benchlib.RESULTS_DIR)
    args = parser.parse_args()
    coracle = benchlib.resolve_coracle(args.coracle)
    version = benchlib.coracle_version(coracle)
    info = benchlib.machine_info()
    benchlib.print_machine(info)
    results = {}
    with benchlib.CoracleHome() as home, benchlib.CoracleHome() as cli_home:
        server_command = [coracle, "server", "--listen", "127.0.0.1:{port}"]
        health = f"{API}/healthz"

        # 1 + 2: start-up and idle memory, against python3 -m http.server.
        starts, idle = [], None
        for rep in range(args.reps):
            server = Server(server_command, home.path, health)
            starts.append(server.start())
            if rep == args.reps - 1:
                time.sleep(args.idle_s)
                idle = server.memory_kb()
            server.stop()
        baseline_starts, baseline_idle = [], None
        for rep in range(args.reps):
            baseline = Server([sys.executable, "-m", "http.server", "{port}", "--bind",
                               "127.0.0.1"], home.path, "/")
            baseline_starts.append(baseline.start())
            if rep == args.reps - 1:
                time.sleep(args.idle_s)
                baseline_idle = baseline.memory_kb()
            baseline.stop()
        results["startup_s"] = benchlib.summarize(starts)
        results["startup_baseline_http_server_s"] = benchlib.summarize(baseline_starts)
        results["idle_memory_kb"] = idle
        results["idle_memory_baseline_http_server_kb"] = baseline_idle
        print(f"start-up: coracle server median {statistics.median(starts) * 1000:.1f} ms, "
              f"python3 -m http.server {statistics.median(baseline_starts) * 1000:.1f} ms")
        print(f"idle RSS after {args.idle_s:g} s: coracle server {idle['VmRSS'] / 1024:.1f} MiB "
              f"(peak {idle['VmHWM'] / 1024:.1f} MiB), python3 -m http.server "
              f"{baseline_idle['VmRSS'] / 1024:.1f} MiB")

        # 3: runs created per second through the API, against `coracle run` processes.
        server = Server(server_command, home.path, health)
        server.start()
        experiments = []
        for index in range(10):
            status, body = request(server.base, "POST", f"{API}/experiments",
                                   {"display_name": f"bench-{index}"})
            if status != 200:
                raise benchlib.BenchError(f"POST /experiments answered {status}: {body}")
            experiments.append(body["experiment_id"])
        create_s, ids = create_runs(server.base, args.runs, experiments[0])
        wait_runs(server.base, ids)
        results["api_create"] = {
            "runs": args.runs,
            "create_s": round(create_s, 6),
            "runs_per_s": round(args.runs / create_s, 1),
        }
        spec_file = os.path.join(cli_home.path, "one-true.json")
        with open(spec_file, "w") as handle:
            json.dump(TRUE_PIPELINE, handle)
        start = time.perf_counter()
        for _ in range(args.runs):
            result = benchlib.run_coracle(coracle, spec_file, cli_home.path,
                                          extra_args=["--no-cache"])
            benchlib.require_success(result)
        cli_s = time.perf_counter() - start
        results["cli_baseline"] = {"runs": args.runs, "wall_s": round(cli_s, 6),
                                   "runs_per_s": round(args.runs / cli_s, 1)}
        print(f"runs created through the API: {args.runs} in {create_s:.3f} s = "
              f"{args.runs / create_s:.1f} runs/s (all SUCCEEDED); `coracle run` one after "
              f"the other: {args.runs / cli_s:.1f} runs/s")
        server.stop()

        # 4: list latency with --total runs stored.
        db_path = os.path.join(home.path, "coracle.db")
        count, seed_s = seed(db_path, args.total, experiments)
        print(f"stored runs: {count} (seeded in {seed_s:.1f} s)")
        server = Server(server_command, home.path, health)
        server.start()
        failed_filter = urllib.parse.quote(json.dumps({"predicates": [
            {"operation": "EQUALS", "key": "state", "string_value": "FAILED"}]}))
        kinds = {
            "newest_first": f"{API}/runs?page_size=100",
            "experiment_newest_first":
                f"{API}/runs?page_size=100&experiment_id={experiments[3]}"
                "&sort_by=created_at%20desc",
            "failed_by_name": f"{API}/runs?page_size=100&filter={failed_filter}"
                              "&sort_by=display_name",
        }
        listing = {}
        for name, path in kinds.items():
            time_get(server.base, path, expect_items=100)
            samples = [time_get(server.base, path, expect_items=100)[0]
                       for _ in range(args.queries)]
            listing[name] = latency_summary(samples)
            _, body = time_get(server.base, path)
            listing[name]["total_size"] = int(body.get("total_size", 0))
        walk = []
        for _ in range(max(1, args.queries // 20)):
            token = ""
            for _page in range(20):
                path = kinds["experiment_newest_first"] + (
                    f"&page_token={urllib.parse.quote(token)}" if token else "")
                wall, body = time_get(server.base, path)
                walk.append(wall)
                token = body.get("next_page_token", "")
                if len(body.get("runs", [])) != 100 and token:
                    raise benchlib.BenchError(f"a page before the last one of {path} was short")
                if not token:
                    break
        listing["experiment_page_walk"] = latency_summary(walk)
        server.stop()
        floor = sqlite_floor(db_path, experiments[3], args.queries)
        listing["sqlite_floor"] = latency_summary(floor)
        results["list_runs"] = listing
        for name, figures in listing.items():
            print(f"list {name}: p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms"
                  + (f", total_size {figures['total_size']}" if "total_size" in figures else ""))
        worst_p99 = max(v["p99_ms"] for k, v in listing.items() if k != "sqlite_floor")
        print(f"target list p99 <= 50 ms: {'met' if worst_p99 <= 50 else 'NOT met'} "
              f"(worst {worst_p99:.2f} ms); target idle RSS <= 30 MB: "
              f"{'met' if idle['VmRSS'] * 1024 <= TARGET_IDLE_RSS_BYTES else 'NOT met'}")
    benchlib.write_result(args.results_dir, "server_api", {
        "machine": info, "coracle": {"path": coracle, "version": version},
        "config": vars(args), "results": results,
    })
    return 0


if __name__ == "__main__":
    benchlib.main_wrapper(main)
