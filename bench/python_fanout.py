#!/usr/bin/env python3
"""python_fanout: wall time and peak memory of Coracle running 200 independent Python tasks.

The pipeline (bench/pipelines/python_fanout.py, compiled to python_fanout.yaml next to it) has
200 independent `square` lightweight components (a plain Python for-loop, no dsl.ParallelFor;
image python:3.11, caching off). One untimed warm-up run warms the managed Python environment,
then --reps timed runs of `coracle run python_fanout.yaml --output json`.

Memory, per run (measured by bench/memlib.py):
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
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from memlib import gnu_time_usable, measured_run, mib  # noqa: E402

FANOUT = 200
PIPELINE_SOURCE = os.path.join(benchlib.PIPELINES_DIR, "python_fanout.py")
PIPELINE_YAML = os.path.join(benchlib.PIPELINES_DIR, "python_fanout.yaml")


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
