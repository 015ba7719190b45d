#!/usr/bin/env python3
"""parallelfor_10k: throughput and memory of Coracle on a dsl.ParallelFor over 10,000 items.

The pipeline (bench/pipelines/parallelfor.py, compiled to parallelfor.yaml next to it) loops with
dsl.ParallelFor over its list parameter `items`; every iteration runs one container task (image
alpine, command `true` with the item as its argument, caching off). The items 0 .. N-1
(--n, default 10000) are passed in a `--params` JSON file.

Each repetition times, in this order:
  1. the baselines: N x `true ITEM` spawned from Python, one after the other (subprocess.run),
     and the same with a pool of --pool-workers threads (default: coracle's parallelism, i.e.
     --parallelism when given in --coracle-arg, else the number of cores);
  2. one `coracle run parallelfor.yaml --output json --params items.json`, with the memory
     figures of bench/memlib.py (coracle's VmHWM, largest process, process-tree RSS sum).
Before the reps, --warmup untimed coracle runs. After them, `coracle runs get` of the last run
checks that N leaf tasks `for-loop-1/I/true-op` SUCCEEDED (the text report is read: it is
smaller than the JSON one).
Reports the median wall time, throughput (N / wall), the memory figures, and the overhead per
task over each baseline ((coracle - baseline) / N). Targets: >= 300 tasks/s and a coracle peak
RSS <= 300 MB (10^6 bytes).

A coracle run whose RSS passes --max-rss-mib (default: half the machine's memory) is killed, so
that a run growing without bound cannot take the machine down; the remaining coracle runs are
then skipped (the baselines are still timed), the result is written with the figures seen up to
the kill, and the exit status is 1.

    python3 bench/parallelfor_10k.py [--coracle PATH] [--n 10000] [--reps 3]
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import memlib  # noqa: E402
from memlib import mib  # noqa: E402

TARGET_TASKS_PER_S = 300.0
TARGET_PEAK_RSS_BYTES = 300 * 1000 * 1000
PIPELINE_SOURCE = os.path.join(benchlib.PIPELINES_DIR, "parallelfor.py")
PIPELINE_YAML = os.path.join(benchlib.PIPELINES_DIR, "parallelfor.yaml")
LEAF = re.compile(r"^for-loop-1/(\d+)/true-op$")
# Progress lines coracle prints on stderr, e.g. "   1.23s SUCCEEDED for-loop-1/17/true-op".
PROGRESS = re.compile(r"^\s*[\d.]+s\s+([A-Z]+)\s+for-loop-1/\d+/true-op\s*$")


def coracle_parallelism(coracle_args):
    """The parallelism coracle runs with: --parallelism from the extra arguments, else
    CORACLE_PARALLELISM, else the cores this process may use (as coracle counts them)."""
    value = None
    for index, arg in enumerate(coracle_args):
        if arg.startswith("--parallelism="):
            value = arg.split("=", 1)[1]
        elif arg == "--parallelism" and index + 1 < len(coracle_args):
            value = coracle_args[index + 1]
    value = value or os.environ.get("CORACLE_PARALLELISM")
    try:
        if value and int(value) > 0:
            return int(value)
    except ValueError:
        pass
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def time_sequential(n, true_path):
    start = time.perf_counter()
    for item in range(n):
        subprocess.run([true_path, str(item)], check=True)
    return time.perf_counter() - start


def time_pool(n, true_path, workers):
    def spawn(item):
        subprocess.run([true_path, str(item)], check=True)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(spawn, range(n)):
            pass
    return time.perf_counter() - start


def leaf_progress(stderr_text):
    """How many leaf tasks coracle reported RUNNING and SUCCEEDED on stderr."""
    counts = {}
    for line in stderr_text.splitlines():
        match = PROGRESS.match(line)
        if match:
            counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


def thin(trace, points=300):
    """At most `points` entries of a memory trace, evenly spread, the last one kept."""
    if len(trace) <= points:
        return trace
    step = len(trace) / points
    kept = [trace[int(index * step)] for index in range(points)]
    if kept[-1] != trace[-1]:
        kept.append(trace[-1])
    return kept


def verify_leaves(coracle, home, run_id, n, timeout):
    """Count the leaf tasks of a run by state, from `coracle runs get` (text report)."""
    report = benchlib.runs_get(coracle, home, run_id, as_json=False, timeout=timeout)
    if report.returncode != 0:
        return {"ok": False, "error": report.failure_message()}
    states = benchlib.task_states_from_text(report.stdout)
    by_state = {}
    indices = set()
    for task, state in states.items():
        match = LEAF.match(task)
        if match:
            by_state[state] = by_state.get(state, 0) + 1
            if state == "SUCCEEDED":
                indices.add(int(match.group(1)))
    ok = by_state.get("SUCCEEDED", 0) == n and indices == set(range(n)) and sum(by_state.values()) == n
    return {
        "ok": ok,
        "leaf_tasks_by_state": by_state,
        "distinct_succeeded_items": len(indices),
        "runs_get_wall_s": round(report.wall_s, 3),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    benchlib.add_common_arguments(parser, default_reps=3)
    parser.add_argument("--n", type=int, default=10000, help="number of loop items (default: 10000)")
    parser.add_argument(
        "--pipeline", default=PIPELINE_YAML, help="pipeline to run (default: bench/pipelines/parallelfor.yaml)"
    )
    parser.add_argument(
        "--pool-workers",
        type=int,
        help="threads of the pool baseline (default: coracle's parallelism)",
    )
    parser.add_argument(
        "--max-rss-mib",
        type=float,
        help="kill a coracle run whose RSS passes this many MiB (default: half the machine's "
        "memory; 0: never)",
    )
    parser.add_argument(
        "--sample-interval", type=float, default=0.1, help="seconds between /proc polls (default: 0.1)"
    )
    parser.add_argument(
        "--no-gnu-time", action="store_true", help="use os.wait4 even when /usr/bin/time exists"
    )
    parser.add_argument("--skip-verify", action="store_true", help="do not check the leaf tasks with `runs get`")
    args = parser.parse_args()
    benchlib.check_reps(args)
    if args.n < 1:
        raise benchlib.BenchError("--n must be at least 1", exit_code=2)
    if args.sample_interval <= 0:
        raise benchlib.BenchError("--sample-interval must be positive", exit_code=2)
    if not os.path.isfile(args.pipeline):
        raise benchlib.BenchError(f"pipeline {args.pipeline} not found", exit_code=2)
    workers = args.pool_workers or coracle_parallelism(args.coracle_arg)
    if workers < 1:
        raise benchlib.BenchError("--pool-workers must be at least 1", exit_code=2)
    if args.max_rss_mib is None:
        total_kb = memlib.mem_total_kb()
        rss_limit_kb = total_kb // 2 if total_kb else None
    else:
        rss_limit_kb = int(args.max_rss_mib * 1024) if args.max_rss_mib > 0 else None

    coracle = benchlib.resolve_coracle(args.coracle)
    true_path = shutil.which("true")
    if true_path is None:
        raise benchlib.BenchError("no `true` executable on PATH", exit_code=2)
    use_gnu_time = not args.no_gnu_time and memlib.gnu_time_usable()
    machine = benchlib.machine_info()
    benchlib.print_machine(machine)
    pipeline = os.path.abspath(args.pipeline)
    print(f"pipeline: {pipeline} (dsl.ParallelFor over {args.n} items, container task `true ITEM`)")
    print(f"coracle killed above {mib(rss_limit_kb) if rss_limit_kb else 'no limit'} RSS; "
          f"pool baseline: {workers} workers")

    walls, runs, warmups = [], [], []
    sequential, pooled = [], []
    aborted = None
    verification = None
    last_run_id = None

    def coracle_once(label, home, extra):
        result, memory = memlib.measured_run(
            coracle, pipeline, home, extra, use_gnu_time, args.sample_interval, scratch, label,
            args.timeout, rss_limit_kb=rss_limit_kb, trace=True,
        )
        memory["trace"] = thin(memory["trace"])
        progress = leaf_progress(result.stderr)
        record = {
            "label": label,
            "wall_s": round(result.wall_s, 6),
            "returncode": result.returncode,
            "state": benchlib.run_state_of(result),
            "run_id": benchlib.run_id_of(result),
            "leaf_progress_lines": progress,
            **memory,
        }
        if memory.get("killed_for_memory"):
            record["error"] = (
                f"killed after {memory['killed_at_s']:.1f} s at {mib(memory['killed_rss_kb'])} RSS "
                f"(limit {mib(rss_limit_kb)}); by then {progress.get('SUCCEEDED', 0)} of {args.n} "
                f"leaf tasks had succeeded, {progress.get('RUNNING', 0)} had started"
            )
        elif result.returncode != 0:
            record["error"] = result.failure_message()
        elif record["state"] != "SUCCEEDED":
            record["error"] = f"run state {record['state']!r}, expected SUCCEEDED"
        return result, record

    with tempfile.TemporaryDirectory(prefix="coracle-bench-parallelfor-") as scratch:
        params = os.path.join(scratch, "items.json")
        with open(params, "w") as handle:
            json.dump({"items": list(range(args.n))}, handle)
        extra = ["--params", params] + list(args.coracle_arg)
        with benchlib.CoracleHome(args.coracle_home, args.keep_home) as home:
            print(f"coracle: {coracle}  CORACLE_HOME={home.path}")
            for index in range(args.warmup):
                result, record = coracle_once(f"warmup-{index}", home.path, extra)
                warmups.append(record)
                print(f"  warm-up {index + 1}: {result.wall_s:.3f} s, coracle peak RSS "
                      f"{mib(record['coracle_peak_rss_kb'])}")
                if "error" in record:
                    aborted = record
                    print(f"  warm-up run failed: {record['error']}")
                    break
            for rep in range(args.reps):
                seq = time_sequential(args.n, true_path)
                pool = time_pool(args.n, true_path, workers)
                sequential.append(seq)
                pooled.append(pool)
                line = f"  rep {rep + 1}/{args.reps}: baseline sequential {seq:.3f} s, pool({workers}) {pool:.3f} s"
                if aborted is None:
                    result, record = coracle_once(f"rep-{rep}", home.path, extra)
                    runs.append(record)
                    if "error" in record:
                        aborted = record
                        line += f"; coracle FAILED: {record['error']}"
                    else:
                        walls.append(result.wall_s)
                        last_run_id = record["run_id"]
                        line += (
                            f", coracle {result.wall_s:.3f} s ({args.n / result.wall_s:.0f} tasks/s), "
                            f"peak RSS {mib(record['coracle_peak_rss_kb'])}, tree "
                            f"{mib(record['tree_peak_rss_kb'])}"
                        )
                else:
                    line += " (coracle skipped: an earlier run failed)"
                print(line)
            if last_run_id and not args.skip_verify:
                verification = verify_leaves(coracle, home.path, last_run_id, args.n, args.timeout)
                print(f"  runs get {last_run_id}: leaf tasks {verification.get('leaf_tasks_by_state')} "
                      f"({'ok' if verification['ok'] else 'NOT ok'})")

    results = {
        "baseline_sequential_wall_s": benchlib.summarize(sequential),
        "baseline_pool_wall_s": benchlib.summarize(pooled),
        "pool_workers": workers,
        "runs": runs,
        "warmups": warmups,
        "verification": verification,
        "target_tasks_per_s": TARGET_TASKS_PER_S,
        "target_peak_rss_bytes": TARGET_PEAK_RSS_BYTES,
    }
    seq_median = results["baseline_sequential_wall_s"]["median"]
    pool_median = results["baseline_pool_wall_s"]["median"]
    print()
    print(f"baseline: {args.n} x `true ITEM` from Python: sequential median {seq_median:.3f} s "
          f"({seq_median / args.n * 1000:.3f} ms each), pool of {workers} median {pool_median:.3f} s "
          f"({args.n / pool_median:.0f} spawns/s)")
    if walls:
        wall = benchlib.summarize(walls)
        peaks = [run["coracle_peak_rss_kb"] for run in runs if "error" not in run and run["coracle_peak_rss_kb"]]
        trees = [run["tree_peak_rss_kb"] for run in runs if "error" not in run]
        peak = benchlib.summarize(peaks) if peaks else None
        tasks_per_s = args.n / wall["median"]
        results.update(
            {
                "coracle_wall_s": wall,
                "tasks_per_second": round(tasks_per_s, 3),
                "coracle_peak_rss_kb": peak,
                "tree_peak_rss_kb": benchlib.summarize(trees) if trees else None,
                "overhead_ms_per_task_vs_sequential": round((wall["median"] - seq_median) / args.n * 1000, 4),
                "overhead_ms_per_task_vs_pool": round((wall["median"] - pool_median) / args.n * 1000, 4),
            }
        )
        print(f"coracle: median {wall['median']:.3f} s = {tasks_per_s:.1f} tasks/s "
              f"(min {wall['min']:.3f}, max {wall['max']:.3f})")
        print(f"coracle process peak RSS (VmHWM): median {mib(peak['median'] if peak else None)}; "
              f"process-tree peak RSS sum (sampled): median {mib(results['tree_peak_rss_kb']['median'] if trees else None)}")
        print(f"overhead per task: {results['overhead_ms_per_task_vs_sequential']:.3f} ms over the sequential "
              f"baseline, {results['overhead_ms_per_task_vs_pool']:.3f} ms over the pool of {workers}")
    complete = aborted is None and len(walls) == args.reps
    throughput_met = bool(walls) and complete and results["tasks_per_second"] >= TARGET_TASKS_PER_S
    peak_kb = results.get("coracle_peak_rss_kb")
    memory_met = bool(peak_kb) and complete and peak_kb["median"] * 1024 <= TARGET_PEAK_RSS_BYTES
    if aborted is not None:
        results["aborted"] = aborted.get("error")
        print(f"coracle run {aborted['label']} failed: {aborted['error']}")
    results["throughput_target_met"] = throughput_met
    results["memory_target_met"] = memory_met
    results["target_met"] = throughput_met and memory_met
    print(f"target >= {TARGET_TASKS_PER_S:.0f} tasks/s: {'met' if throughput_met else 'NOT met'}; "
          f"target peak RSS <= 300 MB: {'met' if memory_met else 'NOT met'}")

    benchlib.write_result(
        args.results_dir,
        "parallelfor_10k",
        {
            "machine": machine,
            "coracle": {"path": coracle, "version": benchlib.coracle_version(coracle)},
            "config": {
                "n": args.n,
                "reps": args.reps,
                "warmup": args.warmup,
                "pipeline": pipeline,
                "coracle_args": args.coracle_arg,
                "pool_workers": workers,
                "rss_limit_kb": rss_limit_kb,
                "sample_interval_s": args.sample_interval,
                "largest_process_maxrss_source": "/usr/bin/time -v" if use_gnu_time else "os.wait4 ru_maxrss",
                "coracle_home": "given" if args.coracle_home else "fresh temporary",
            },
            "results": results,
        },
    )
    if aborted is not None:
        return 1
    if verification is not None and not verification["ok"]:
        print("error: the last run's leaf tasks are not all SUCCEEDED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    benchlib.main_wrapper(main)
