"""Shared helpers for the Coracle benchmarks. Standard library only; any python3 >= 3.9.

Every benchmark:
  * finds the coracle binary (`--coracle PATH`, default `target/release/coracle`, looked up in the
    current directory and then in the repository root) and stops with a clear message (exit 2)
    when it is missing;
  * runs `coracle run FILE --output json` with CORACLE_HOME set to a fresh temporary folder
    (or the folder given with `--coracle-home`, which is then kept);
  * reports medians over `--reps` repetitions and the machine it ran on;
  * writes one JSON result into bench/results/ (git-ignored);
  * never fails because of a timing: a missed target is reported, the exit status stays 0.
Exit status: 0 measured, 1 a coracle run (or the baseline) failed, 2 bad usage / missing binary.
"""

import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
RESULTS_DIR = os.path.join(BENCH_DIR, "results")
PIPELINES_DIR = os.path.join(BENCH_DIR, "pipelines")
DEFAULT_CORACLE = os.path.join("target", "release", "coracle")


class BenchError(Exception):
    """A failure that ends the benchmark with a message (not a timing)."""

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


def add_common_arguments(parser, default_reps):
    parser.add_argument(
        "--coracle",
        default=DEFAULT_CORACLE,
        help="path of the coracle binary (default: target/release/coracle)",
    )
    parser.add_argument(
        "--reps",
        type=int,
        default=default_reps,
        help=f"timed repetitions of each measurement (default: {default_reps})",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed coracle runs before the timed ones (default: 1)",
    )
    parser.add_argument(
        "--coracle-home",
        help="use this CORACLE_HOME (kept afterwards) instead of a fresh temporary one",
    )
    parser.add_argument(
        "--keep-home",
        action="store_true",
        help="do not delete the temporary CORACLE_HOME (its path is printed)",
    )
    parser.add_argument(
        "--coracle-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `coracle run` (repeatable), e.g. --coracle-arg=--parallelism=4",
    )
    parser.add_argument(
        "--python-envs-dir",
        metavar="DIR",
        help="CORACLE_PYTHON_ENVS_DIR for coracle: managed Python environments shared with other "
        "data directories (default: the environment's value, else inside CORACLE_HOME)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds after which one coracle run is killed and counted as failed (default: 900)",
    )
    parser.add_argument(
        "--results-dir",
        default=RESULTS_DIR,
        help="where the JSON result is written (default: bench/results/)",
    )


def check_reps(args):
    """Check the common options; apply those that reach coracle through its environment."""
    if args.reps < 1:
        raise BenchError("--reps must be at least 1", exit_code=2)
    if args.warmup < 0:
        raise BenchError("--warmup must not be negative", exit_code=2)
    if getattr(args, "python_envs_dir", None):
        os.environ["CORACLE_PYTHON_ENVS_DIR"] = os.path.abspath(args.python_envs_dir)


def resolve_coracle(path):
    """Absolute path of an executable coracle binary, or BenchError (exit 2)."""
    if os.path.isabs(path):
        candidates = [path]
    else:
        candidates = [os.path.abspath(path), os.path.join(REPO_ROOT, path)]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    looked = ", ".join(dict.fromkeys(candidates))
    raise BenchError(
        f"coracle binary not found (looked at {looked}); build it with "
        "`cargo build --release -p coracle` or pass --coracle PATH",
        exit_code=2,
    )


def resolve_python(path, what="--kfp-python"):
    """Absolute path of a python that imports kfp, with its kfp version, or BenchError (exit 2)."""
    found = shutil.which(path) if os.sep not in path else path
    if not found or not os.path.isfile(found):
        raise BenchError(f"{what}: {path} not found", exit_code=2)
    probe = subprocess.run(
        [found, "-c", "import kfp; print(kfp.__version__)"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        raise BenchError(
            f"{what}: {path} cannot import kfp ({probe.stderr.strip().splitlines()[-1:]}); "
            "create one with `python3 -m venv V && V/bin/pip install kfp==2.14.6`",
            exit_code=2,
        )
    version = probe.stdout.strip()
    if version != "2.14.6":
        print(f"warning: {what} has kfp {version}; the pipelines pin kfp 2.14.6", file=sys.stderr)
    return os.path.abspath(found), version


class CoracleHome:
    """A CORACLE_HOME folder: fresh and temporary unless a path is given."""

    def __init__(self, given=None, keep=False):
        self.given = given
        self.keep = keep or given is not None
        self.path = None

    def __enter__(self):
        if self.given:
            os.makedirs(self.given, exist_ok=True)
            self.path = os.path.abspath(self.given)
        else:
            self.path = tempfile.mkdtemp(prefix="coracle-bench-home-")
        return self

    def __exit__(self, *exc):
        if self.keep:
            print(f"CORACLE_HOME kept at {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)
        return False


def coracle_command(coracle, pipeline, params=None, extra_args=()):
    command = [coracle, "run", pipeline, "--output", "json"]
    for key, value in (params or {}).items():
        command += ["-p", f"{key}={value}"]
    command += list(extra_args)
    return command


def coracle_env(home):
    """This process's environment (CORACLE_PYTHON_ENVS_DIR and the like pass through) with
    CORACLE_HOME set."""
    env = dict(os.environ)
    env["CORACLE_HOME"] = home
    return env


class RunResult:
    def __init__(self, command, wall_s, returncode, stdout, stderr):
        self.command = command
        self.wall_s = wall_s
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def output_json(self):
        """stdout parsed as JSON, or None."""
        try:
            return json.loads(self.stdout)
        except ValueError:
            return None

    def failure_message(self):
        tail = "\n".join((self.stderr or "").strip().splitlines()[-20:])
        return (
            f"`{' '.join(self.command)}` exited with {self.returncode} after {self.wall_s:.2f} s"
            + (f"\n--- stderr (last lines) ---\n{tail}" if tail else "")
        )


def run_timed(command, home, timeout=None):
    """Run a coracle command once with CORACLE_HOME=home; wall time around the whole process."""
    start = time.perf_counter()
    try:
        completed = subprocess.run(
            command, env=coracle_env(home), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as timeout_error:
        wall = time.perf_counter() - start
        return RunResult(command, wall, "timeout", _text(timeout_error.stdout), _text(timeout_error.stderr))
    wall = time.perf_counter() - start
    return RunResult(command, wall, completed.returncode, completed.stdout, completed.stderr)


def run_coracle(coracle, pipeline, home, params=None, extra_args=(), timeout=None):
    """Run `coracle run` once; wall time measured around the whole process."""
    return run_timed(coracle_command(coracle, pipeline, params, extra_args), home, timeout)


def _text(data):
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def runs_get(coracle, home, run_id, as_json=True, timeout=None):
    """`coracle runs get RUN_ID [--output json]`; RunResult (stdout holds the report)."""
    command = [coracle, "runs", "get", run_id] + (["--output", "json"] if as_json else [])
    return run_timed(command, home, timeout)


def task_states(document):
    """{task_id: state} from the JSON of `coracle runs get`."""
    return {task.get("task_id"): task.get("state") for task in document.get("tasks", [])}


def task_states_from_text(text):
    """{task path: state} from the text report of `coracle runs get` (its TASK table)."""
    states = {}
    in_table = False
    for line in text.splitlines():
        if not in_table:
            in_table = line.startswith("TASK ")
            continue
        fields = line.split()
        if len(fields) >= 2 and fields[1].isupper():
            states[fields[0]] = fields[1]
    return states


def run_id_of(result):
    """The run id in a `coracle run --output json` result, else None."""
    document = result.output_json()
    return document.get("run_id") if isinstance(document, dict) else None


def run_state_of(result):
    """The state in a `coracle run --output json` result, else None."""
    document = result.output_json()
    return document.get("state") if isinstance(document, dict) else None


def require_success(result, what="coracle run"):
    if result.returncode != 0:
        raise BenchError(f"{what} failed: {result.failure_message()}")


def find_value(document, key):
    """First value stored under `key` anywhere in a parsed JSON document, else None."""
    if isinstance(document, dict):
        if key in document:
            return document[key]
        for value in document.values():
            found = find_value(value, key)
            if found is not None:
                return found
    elif isinstance(document, list):
        for value in document:
            found = find_value(value, key)
            if found is not None:
                return found
    return None


def summarize(samples):
    return {
        "samples": [round(sample, 6) for sample in samples],
        "median": round(statistics.median(samples), 6),
        "min": round(min(samples), 6),
        "max": round(max(samples), 6),
    }


def _read_first_line(path, prefix):
    try:
        with open(path) as handle:
            for line in handle:
                if line.lower().startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_info():
    try:
        uname = subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip()
    except OSError:
        uname = " ".join(platform.uname())
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
    except (OSError, ValueError):
        nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu_model = (
        _read_first_line("/proc/cpuinfo", "model name")
        or _read_first_line("/proc/cpuinfo", "hardware")
        or _read_first_line("/proc/cpuinfo", "cpu model")
        or platform.processor()
        or "unknown"
    )
    return {
        "uname": uname,
        "nproc": nproc,
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_total": _read_first_line("/proc/meminfo", "memtotal"),
        "python": sys.version.split()[0],
    }


def coracle_version(coracle):
    try:
        completed = subprocess.run(
            [coracle, "--version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.strip() or None


def print_machine(info):
    print(f"machine: {info['uname']}")
    print(f"cpu:     {info['cpu_model']} (nproc {info['nproc']}, mem {info['mem_total']})")


def write_result(results_dir, name, payload):
    os.makedirs(results_dir, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    payload = dict(payload)
    payload.setdefault("benchmark", name)
    payload.setdefault("finished_at", now.isoformat(timespec="seconds"))
    stem = os.path.join(results_dir, f"{name}-{now.strftime('%Y%m%dT%H%M%SZ')}")
    path = f"{stem}.json"
    counter = 2
    while os.path.exists(path):
        path = f"{stem}-{counter}.json"
        counter += 1
    with open(path, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")
    print(f"result written to {path}")
    return path


def main_wrapper(main):
    """Run main(); turn BenchError into a message and its exit status."""
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
