#!/usr/bin/env python3
"""python_fanout: wall time and peak memory of Coracle running 200 independent Python tasks.

The pipeline (bench/pipelines/python_fanout.py, compiled to python_fanout.yaml next to it) has
200 independent `square` lightweight components (a plain Python for-loop, no dsl.ParallelFor;
image python:3.11, caching off). One untimed warm-up run warms the managed Python environment,
then --reps timed runs of `coracle run python_fanout.yaml --output json`.

Memory, per run:
  * coracle_peak_rss_kb: peak RSS of the coracle process itself (VmHWM read from
    /proc/PID/status, polled every --sample-interval seconds; the last value read before exit);
  * largest_process_maxrss_kb: "Maximum resident set size" from `/usr/bin/time -v` (GNU time)
    when present, else ru_maxrss from os.wait4() on the child. Both are the peak RSS of the
    LARGEST SINGLE process among coracle and its waited-for descendants (the task processes),
    not a sum;
  * tree_peak_rss_kb: the largest SUM of RSS over coracle and all its descendants seen by the
    poller (sampled, so short peaks between two polls can be missed).

    python3 bench/python_fanout.py [--coracle PATH] [--reps 3] [--coracle-arg=--parallelism=8]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

FANOUT = 200
PIPELINE_SOURCE = os.path.join(benchlib.PIPELINES_DIR, "python_fanout.py")
PIPELINE_YAML = os.path.join(benchlib.PIPELINES_DIR, "python_fanout.yaml")
GNU_TIME = "/usr/bin/time"
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def gnu_time_usable():
    if not os.access(GNU_TIME, os.X_OK):
        return False
    with tempfile.NamedTemporaryFile(mode="r") as report:
        probe = subprocess.run(
            [GNU_TIME, "-v", "-o", report.name, "true"], capture_output=True, text=True
        )
        return probe.returncode == 0 and "Maximum resident set size" in report.read()


def process_table():
    """{pid: (ppid, rss_kb)} for every process readable in /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        try:
            ppid = int(fields[1])
            rss_pages = int(fields[21])
        except (IndexError, ValueError):
            continue
        table[int(entry)] = (ppid, rss_pages * PAGE_KB)
    return table


def descendants(table, root):
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, []):
            found.append(child)
            stack.append(child)
    return found


def read_vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class Sampler(threading.Thread):
    """Polls /proc while the run lasts: coracle's VmHWM and the RSS sum of its process tree."""

    def __init__(self, root_pid, wrapped, interval):
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.wrapped = wrapped  # True when root_pid is /usr/bin/time and coracle is its child
        self.interval = interval
        self.stop_event = threading.Event()
        self.coracle_pid = None if wrapped else root_pid
        self.coracle_hwm_kb = None
        self.tree_peak_kb = 0
        self.max_processes = 0
        self.samples = 0

    def run(self):
        while not self.stop_event.is_set():
            table = process_table()
            tree = descendants(table, self.root_pid)
            if self.wrapped:
                if self.coracle_pid is None:
                    direct = [pid for pid in tree if table[pid][0] == self.root_pid]
                    self.coracle_pid = direct[0] if direct else None
                members = tree
            else:
                members = [self.root_pid] + tree
            if self.coracle_pid is not None:
                hwm = read_vm_hwm_kb(self.coracle_pid)
                if hwm is not None:
                    self.coracle_hwm_kb = max(hwm, self.coracle_hwm_kb or 0)
            total = sum(table[pid][1] for pid in members if pid in table)
            self.tree_peak_kb = max(self.tree_peak_kb, total)
            self.max_processes = max(self.max_processes, len(members))
            self.samples += 1
            self.stop_event.wait(self.interval)

    def stop(self):
        self.stop_event.set()
        self.join()


def measured_run(coracle, pipeline, home, extra_args, use_gnu_time, interval, scratch, label, timeout):
    command = benchlib.coracle_command(coracle, pipeline, extra_args=extra_args)
    time_report = os.path.join(scratch, f"{label}.time.txt")
    full_command = [GNU_TIME, "-v", "-o", time_report] + command if use_gnu_time else command
    stdout_path = os.path.join(scratch, f"{label}.stdout")
    stderr_path = os.path.join(scratch, f"{label}.stderr")
    with open(stdout_path, "w") as stdout, open(stderr_path, "w") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(
            full_command, env=benchlib.coracle_env(home), stdout=stdout, stderr=stderr
        )
        sampler = Sampler(process.pid, use_gnu_time, interval)
        sampler.start()
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            _, status, rusage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
    with open(stdout_path) as handle:
        stdout_text = handle.read()
    with open(stderr_path) as handle:
        stderr_text = handle.read()

    returncode = process.returncode
    largest_kb = None
    source = "os.wait4 ru_maxrss"
    if use_gnu_time:
        source = "/usr/bin/time -v"
        try:
            with open(time_report) as handle:
                report = handle.read()
        except OSError:
            report = ""
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
        largest_kb = int(match.group(1)) if match else None
        exit_match = re.search(r"Exit status: (\d+)", report)
        if exit_match:
            returncode = int(exit_match.group(1))
        elif "Command terminated by signal" in report:
            returncode = returncode or -1
    else:
        largest_kb = rusage.ru_maxrss  # kilobytes on Linux
    result = benchlib.RunResult(command, wall, returncode, stdout_text, stderr_text)
    memory = {
        "coracle_peak_rss_kb": sampler.coracle_hwm_kb,
        "largest_process_maxrss_kb": largest_kb,
        "largest_process_maxrss_source": source,
        "tree_peak_rss_kb": sampler.tree_peak_kb,
        "max_processes_in_tree": sampler.max_processes,
        "polls": sampler.samples,
    }
    return result, memory


def mib(kilobytes):
    return "n/a" if kilobytes is None else f"{kilobytes / 1024:.1f} MiB"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    benchlib.add_common_arguments(parser, default_reps=3)
    parser.add_argument(
        "--pipeline", default=PIPELINE_YAML, help="pipeline to run (default: bench/pipelines/python_fanout.yaml)"
    )
    parser.add_argument(
        "--sample-interval", type=float, default=0.1, help="seconds between /proc polls (default: 0.1)"
    )
    parser.add_argument(
        "--no-gnu-time", action="store_true", help="use os.wait4 even when /usr/bin/time exists"
    )
    args = parser.parse_args()
    benchlib.check_reps(args)
    if args.sample_interval <= 0:
        raise benchlib.BenchError("--sample-interval must be positive", exit_code=2)
    if not os.path.isfile(args.pipeline):
        raise benchlib.BenchError(f"pipeline {args.pipeline} not found", exit_code=2)

    coracle = benchlib.resolve_coracle(args.coracle)
    use_gnu_time = not args.no_gnu_time and gnu_time_usable()
    machine = benchlib.machine_info()
    benchlib.print_machine(machine)
    pipeline = os.path.abspath(args.pipeline)
    print(f"pipeline: {pipeline} ({FANOUT} independent lightweight components)")
    print(f"largest-process peak RSS from: {'/usr/bin/time -v' if use_gnu_time else 'os.wait4 ru_maxrss'}")

    walls, runs = [], []
    warmups = []
    with tempfile.TemporaryDirectory(prefix="coracle-bench-fanout-") as scratch:
        with benchlib.CoracleHome(args.coracle_home, args.keep_home) as home:
            print(f"coracle: {coracle}  CORACLE_HOME={home.path}")
            for index in range(args.warmup):
                result, memory = measured_run(
                    coracle, pipeline, home.path, args.coracle_arg, use_gnu_time,
                    args.sample_interval, scratch, f"warmup-{index}", args.timeout,
                )
                benchlib.require_success(result, "warm-up coracle run")
                warmups.append({"wall_s": round(result.wall_s, 6), **memory})
                print(f"  warm-up {index + 1} (managed Python env): {result.wall_s:.3f} s")
            for rep in range(args.reps):
                result, memory = measured_run(
                    coracle, pipeline, home.path, args.coracle_arg, use_gnu_time,
                    args.sample_interval, scratch, f"rep-{rep}", args.timeout,
                )
                benchlib.require_success(result)
                walls.append(result.wall_s)
                runs.append({"wall_s": round(result.wall_s, 6), **memory})
                print(
                    f"  rep {rep + 1}/{args.reps}: {result.wall_s:.3f} s, coracle peak RSS "
                    f"{mib(memory['coracle_peak_rss_kb'])}, largest process "
                    f"{mib(memory['largest_process_maxrss_kb'])}, tree peak {mib(memory['tree_peak_rss_kb'])} "
                    f"({memory['max_processes_in_tree']} processes at most)"
                )

    def median_of(key):
        values = [run[key] for run in runs if run[key] is not None]
        return benchlib.summarize(values) if values else None

    results = {
        "wall_s": benchlib.summarize(walls),
        "tasks_per_second": round(FANOUT / benchlib.summarize(walls)["median"], 3),
        "coracle_peak_rss_kb": median_of("coracle_peak_rss_kb"),
        "largest_process_maxrss_kb": median_of("largest_process_maxrss_kb"),
        "tree_peak_rss_kb": median_of("tree_peak_rss_kb"),
        "runs": runs,
        "warmups": warmups,
    }
    print()
    print(f"wall: median {results['wall_s']['median']:.3f} s ({results['tasks_per_second']} tasks/s)")
    for key, what in [
        ("coracle_peak_rss_kb", "coracle process peak RSS (VmHWM)"),
        ("largest_process_maxrss_kb", "largest single process peak RSS"),
        ("tree_peak_rss_kb", "process-tree peak RSS sum (sampled)"),
    ]:
        summary = results[key]
        print(f"{what}: median {mib(summary['median'] if summary else None)}")

    benchlib.write_result(
        args.results_dir,
        "python_fanout",
        {
            "machine": machine,
            "coracle": {"path": coracle, "version": benchlib.coracle_version(coracle)},
            "config": {
                "fanout": FANOUT,
                "reps": args.reps,
                "warmup": args.warmup,
                "pipeline": pipeline,
                "coracle_args": args.coracle_arg,
                "sample_interval_s": args.sample_interval,
                "largest_process_maxrss_source": "/usr/bin/time -v" if use_gnu_time else "os.wait4 ru_maxrss",
                "coracle_home": "given" if args.coracle_home else "fresh temporary",
            },
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    benchlib.main_wrapper(main)
