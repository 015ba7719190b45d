#!/usr/bin/env python3
"""cached_rerun: how fast Coracle re-runs a 100-task pipeline that is fully served from its cache.

The pipeline is tests/pipelines/fanout_100.yaml (100 independent container tasks `noop` ..
`noop-100`, image alpine, `sh -c 'echo noop-N'`, caching on). All runs share one CORACLE_HOME.
--warmup untimed plain runs first (in a fresh data directory they fill the cache). Then each
repetition times, in this order:
  1. the baseline: `coracle run fanout_100.yaml --output json --no-cache`, which runs every task
     (and stores its results in the cache again);
  2. the cached re-run: `coracle run fanout_100.yaml --output json`, which runs nothing.
`coracle runs get --output json` checks every timed run: all tasks SUCCEEDED in the uncached run,
all of them CACHED in the cached one (a run that is not fully cached fails the benchmark).
Reports both medians and the ratio uncached / cached. Target: cached re-run < 1 s.

    python3 bench/cached_rerun.py [--coracle PATH] [--reps 5]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

TARGET_CACHED_S = 1.0
EXPECTED_TASKS = 100
PIPELINE_YAML = os.path.join(benchlib.REPO_ROOT, "tests", "pipelines", "fanout_100.yaml")


def states_of(coracle, home, result, timeout):
    """{task_id: state} of the run that `result` reports, from `coracle runs get --output json`."""
    run_id = benchlib.run_id_of(result)
    if not run_id:
        raise benchlib.BenchError(f"no run id in the output of `{' '.join(result.command)}`")
    report = benchlib.runs_get(coracle, home, run_id, timeout=timeout)
    document = report.output_json()
    if report.returncode != 0 or document is None:
        raise benchlib.BenchError(f"`coracle runs get` failed: {report.failure_message()}")
    return run_id, benchlib.task_states(document)


def count_states(states):
    counts = {}
    for state in states.values():
        counts[state] = counts.get(state, 0) + 1
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    benchlib.add_common_arguments(parser, default_reps=5)
    parser.add_argument(
        "--pipeline",
        default=PIPELINE_YAML,
        help="pipeline to run (default: tests/pipelines/fanout_100.yaml)",
    )
    parser.add_argument(
        "--tasks",
        type=int,
        default=EXPECTED_TASKS,
        help=f"how many tasks the pipeline has (default: {EXPECTED_TASKS})",
    )
    args = parser.parse_args()
    benchlib.check_reps(args)
    if not os.path.isfile(args.pipeline):
        raise benchlib.BenchError(f"pipeline {args.pipeline} not found", exit_code=2)

    coracle = benchlib.resolve_coracle(args.coracle)
    machine = benchlib.machine_info()
    benchlib.print_machine(machine)
    pipeline = os.path.abspath(args.pipeline)
    print(f"pipeline: {pipeline} ({args.tasks} independent container tasks, caching on)")

    uncached, cached = [], []
    checks = []
    warmups = []
    with benchlib.CoracleHome(args.coracle_home, args.keep_home) as home:
        print(f"coracle: {coracle}  CORACLE_HOME={home.path}")

        def run(no_cache):
            extra = (["--no-cache"] if no_cache else []) + list(args.coracle_arg)
            result = benchlib.run_coracle(coracle, pipeline, home.path, extra_args=extra, timeout=args.timeout)
            benchlib.require_success(result, "coracle run --no-cache" if no_cache else "coracle run")
            state = benchlib.run_state_of(result)
            if state != "SUCCEEDED":
                raise benchlib.BenchError(f"`{' '.join(result.command)}` ended {state!r}, expected SUCCEEDED")
            return result

        for index in range(args.warmup):
            result = run(no_cache=False)
            warmups.append(round(result.wall_s, 6))
            print(f"  warm-up {index + 1}: {result.wall_s:.3f} s")
        for rep in range(args.reps):
            baseline = run(no_cache=True)
            rerun = run(no_cache=False)
            baseline_id, baseline_states = states_of(coracle, home.path, baseline, args.timeout)
            rerun_id, rerun_states = states_of(coracle, home.path, rerun, args.timeout)
            baseline_counts = count_states(baseline_states)
            rerun_counts = count_states(rerun_states)
            checks.append(
                {
                    "uncached_run_id": baseline_id,
                    "uncached_tasks_by_state": baseline_counts,
                    "cached_run_id": rerun_id,
                    "cached_tasks_by_state": rerun_counts,
                }
            )
            if baseline_counts != {"SUCCEEDED": args.tasks}:
                raise benchlib.BenchError(
                    f"the --no-cache run {baseline_id} has tasks {baseline_counts}, "
                    f"expected {args.tasks} SUCCEEDED"
                )
            if rerun_counts != {"CACHED": args.tasks}:
                raise benchlib.BenchError(
                    f"the re-run {rerun_id} has tasks {rerun_counts}, expected {args.tasks} CACHED"
                )
            uncached.append(baseline.wall_s)
            cached.append(rerun.wall_s)
            print(f"  rep {rep + 1}/{args.reps}: uncached (--no-cache) {baseline.wall_s:.3f} s, "
                  f"cached re-run {rerun.wall_s:.3f} s ({args.tasks} tasks CACHED)")

    uncached_summary = benchlib.summarize(uncached)
    cached_summary = benchlib.summarize(cached)
    ratio = uncached_summary["median"] / cached_summary["median"]
    met = cached_summary["median"] < TARGET_CACHED_S
    results = {
        "uncached_wall_s": uncached_summary,
        "cached_wall_s": cached_summary,
        "ratio_uncached_over_cached": round(ratio, 3),
        "target_cached_s": TARGET_CACHED_S,
        "target_met": met,
        "checks": checks,
        "warmup_wall_s": warmups,
    }
    print()
    print(f"uncached (--no-cache) median {uncached_summary['median']:.3f} s "
          f"(min {uncached_summary['min']:.3f}, max {uncached_summary['max']:.3f})")
    print(f"fully cached re-run   median {cached_summary['median']:.3f} s "
          f"(min {cached_summary['min']:.3f}, max {cached_summary['max']:.3f})")
    print(f"ratio uncached / cached: {ratio:.1f}x")
    print(f"target cached re-run < {TARGET_CACHED_S:.0f} s: {'met' if met else 'NOT met'}")

    benchlib.write_result(
        args.results_dir,
        "cached_rerun",
        {
            "machine": machine,
            "coracle": {"path": coracle, "version": benchlib.coracle_version(coracle)},
            "config": {
                "tasks": args.tasks,
                "reps": args.reps,
                "warmup": args.warmup,
                "pipeline": os.path.relpath(pipeline, benchlib.REPO_ROOT),
                "coracle_args": args.coracle_arg,
                "coracle_home": "given" if args.coracle_home else "fresh temporary",
            },
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    benchlib.main_wrapper(main)
