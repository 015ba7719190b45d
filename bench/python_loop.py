#!/usr/bin/env python3
"""python_loop: Coracle vs kfp.local on 50 lightweight Python components in a loop.

The pipeline `python_loop` (bench/pipelines/python_loop.py, compiled to python_loop.yaml next to
it) is a dsl.ParallelFor over the items 0 .. 49; every iteration runs `square` (image
python:3.11, caching off), which returns x * x.

1. Coracle: one untimed warm-up run (it builds/warms the managed Python environment), then
   --reps timed runs of `coracle run python_loop.yaml --output json` in the same CORACLE_HOME.
   After them, `coracle runs get --output json` of the last run checks that the 50 leaf tasks
   `for-loop-2/I/square` SUCCEEDED with Output = I * I.
2. Baseline, in the same run, when --kfp-python is given (a python with kfp 2.14.6): kfp.local in
   kfp 2.14.6 does not run dsl.ParallelFor (it raises NotImplementedError before any task runs;
   the script checks this once and records the message), so the baseline calls
   `python_loop_unrolled` from the same source -- the same 50 `square` calls made by a plain
   Python for-loop -- under `kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False))`
   in a fresh process of that python (bench/kfplocal.py), --baseline-reps times.
Reports both medians (whole-process wall time) and the ratio kfp.local / coracle.

    python3 bench/python_loop.py --kfp-python /path/to/venv/bin/python [--reps 5] [--baseline-reps 3]
"""

import argparse
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import kfplocal  # noqa: E402

ITEMS = list(range(50))
PIPELINE_SOURCE = os.path.join(benchlib.PIPELINES_DIR, "python_loop.py")
PIPELINE_YAML = os.path.join(benchlib.PIPELINES_DIR, "python_loop.yaml")
LOOP_FUNCTION = "python_loop"
UNROLLED_FUNCTION = "python_loop_unrolled"
LEAF = re.compile(r"^for-loop-\d+/(\d+)/square$")


def verify_leaves(coracle, home, run_id, timeout):
    """Check the leaf tasks of a run: 50 `square` tasks SUCCEEDED, Output = item * item."""
    report = benchlib.runs_get(coracle, home, run_id, timeout=timeout)
    document = report.output_json()
    if report.returncode != 0 or document is None:
        return {"ok": False, "error": report.failure_message()}
    by_state, wrong = {}, []
    seen = set()
    for task in document.get("tasks", []):
        match = LEAF.match(task.get("task_id") or "")
        if not match:
            continue
        index = int(match.group(1))
        by_state[task.get("state")] = by_state.get(task.get("state"), 0) + 1
        value = ((task.get("outputs") or {}).get("parameters") or {}).get("Output")
        if task.get("state") == "SUCCEEDED" and index < len(ITEMS):
            seen.add(index)
            try:
                if int(value) != ITEMS[index] ** 2:
                    wrong.append(index)
            except (TypeError, ValueError):
                wrong.append(index)
    ok = by_state == {"SUCCEEDED": len(ITEMS)} and seen == set(range(len(ITEMS))) and not wrong
    return {"ok": ok, "leaf_tasks_by_state": by_state, "wrong_outputs": wrong}


def probe_kfp_local_parallelfor(python, use_venv, scratch):
    """What kfp.local does with the dsl.ParallelFor pipeline: its error, or that it ran."""
    try:
        wall, report = kfplocal.run_kfp_local(
            python, use_venv, scratch, "parallelfor-probe", PIPELINE_SOURCE, LOOP_FUNCTION
        )
    except benchlib.BenchError as error:
        message = str(error)
        lines = [line for line in message.splitlines() if "Error" in line or "error" in line]
        return {"ran": False, "error": lines[-1].strip() if lines else message[-300:]}
    return {"ran": True, "wall_s": round(wall, 3), "outputs": report.get("outputs")}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    benchlib.add_common_arguments(parser, default_reps=5)
    kfplocal.add_kfp_local_arguments(parser, default_baseline_reps=3)
    parser.add_argument(
        "--baseline-only", action="store_true", help="only time kfp.local (no coracle binary needed)"
    )
    parser.add_argument("--skip-baseline", action="store_true", help="only time coracle")
    args = parser.parse_args()
    benchlib.check_reps(args)
    if args.baseline_reps < 1:
        raise benchlib.BenchError("--baseline-reps must be at least 1", exit_code=2)
    if args.baseline_only and args.skip_baseline:
        raise benchlib.BenchError("--baseline-only and --skip-baseline exclude each other", exit_code=2)
    if args.baseline_only and not args.kfp_python:
        raise benchlib.BenchError("--baseline-only needs --kfp-python", exit_code=2)

    coracle = None if args.baseline_only else benchlib.resolve_coracle(args.coracle)
    python = kfp_version = None
    if args.kfp_python and not args.skip_baseline:
        python, kfp_version = benchlib.resolve_python(args.kfp_python)
    elif not args.skip_baseline:
        print("note: no --kfp-python given: the kfp.local baseline is skipped")

    machine = benchlib.machine_info()
    benchlib.print_machine(machine)
    print(f"pipeline: {PIPELINE_YAML} (dsl.ParallelFor over {len(ITEMS)} lightweight components)")

    results = {}
    coracle_samples = []
    baseline_samples = []
    baseline_call_samples = []
    verification = None
    with tempfile.TemporaryDirectory(prefix="coracle-bench-pyloop-") as scratch:
        if coracle:
            with benchlib.CoracleHome(args.coracle_home, args.keep_home) as home:
                print(f"coracle: {coracle}  CORACLE_HOME={home.path}")
                last = None
                for index in range(args.warmup):
                    result = benchlib.run_coracle(
                        coracle, PIPELINE_YAML, home.path, extra_args=args.coracle_arg, timeout=args.timeout
                    )
                    benchlib.require_success(result, "warm-up coracle run")
                    print(f"  warm-up {index + 1} (managed Python env): {result.wall_s:.3f} s")
                    results.setdefault("coracle_warmup_wall_s", []).append(round(result.wall_s, 6))
                for rep in range(args.reps):
                    result = benchlib.run_coracle(
                        coracle, PIPELINE_YAML, home.path, extra_args=args.coracle_arg, timeout=args.timeout
                    )
                    benchlib.require_success(result)
                    state = benchlib.run_state_of(result)
                    if state != "SUCCEEDED":
                        raise benchlib.BenchError(f"coracle run ended {state!r}, expected SUCCEEDED")
                    coracle_samples.append(result.wall_s)
                    last = benchlib.run_id_of(result)
                    print(f"  coracle rep {rep + 1}/{args.reps}: {result.wall_s:.3f} s")
                if last:
                    verification = verify_leaves(coracle, home.path, last, args.timeout)
                    print(f"  runs get {last}: leaf tasks {verification.get('leaf_tasks_by_state')}, "
                          f"outputs {'ok' if verification['ok'] else 'NOT ok'}")
            results["coracle_wall_s"] = benchlib.summarize(coracle_samples)
            results["coracle_verification"] = verification

        if python and not args.skip_baseline:
            runner = f"SubprocessRunner(use_venv={args.kfp_local_venv})"
            print(f"kfp.local: {python} (kfp {kfp_version}), {runner}")
            probe = probe_kfp_local_parallelfor(python, args.kfp_local_venv, scratch)
            results["kfp_local_parallelfor"] = probe
            if probe["ran"]:
                print(f"  kfp.local ran the dsl.ParallelFor pipeline itself ({probe['wall_s']:.3f} s)")
            else:
                print(f"  kfp.local with the dsl.ParallelFor pipeline: {probe['error']}")
            print(f"  baseline: `{UNROLLED_FUNCTION}` (the same {len(ITEMS)} calls in a Python for-loop)")
            for rep in range(args.baseline_reps):
                wall, report = kfplocal.run_kfp_local(
                    python, args.kfp_local_venv, scratch, rep, PIPELINE_SOURCE, UNROLLED_FUNCTION
                )
                baseline_samples.append(wall)
                baseline_call_samples.append(report["pipeline_s"])
                print(f"  kfp.local rep {rep + 1}/{args.baseline_reps}: {wall:.3f} s process, "
                      f"{report['pipeline_s']:.3f} s in the pipeline call")
            results["kfp_local_runner"] = runner
            results["kfp_local_pipeline"] = UNROLLED_FUNCTION
            results["kfp_local_wall_s"] = benchlib.summarize(baseline_samples)
            results["kfp_local_pipeline_call_s"] = benchlib.summarize(baseline_call_samples)

    print()
    if coracle_samples:
        print(f"coracle   median {results['coracle_wall_s']['median']:.3f} s (whole process)")
    if baseline_samples:
        print(f"kfp.local median {results['kfp_local_wall_s']['median']:.3f} s (whole process), "
              f"{results['kfp_local_pipeline_call_s']['median']:.3f} s inside the pipeline call")
    if coracle_samples and baseline_samples:
        ratio = results["kfp_local_wall_s"]["median"] / results["coracle_wall_s"]["median"]
        results["ratio_kfp_local_over_coracle"] = round(ratio, 3)
        print(f"ratio kfp.local / coracle: {ratio:.1f}x")

    benchlib.write_result(
        args.results_dir,
        "python_loop",
        {
            "machine": machine,
            "coracle": {"path": coracle, "version": benchlib.coracle_version(coracle) if coracle else None},
            "kfp_python": {"path": python, "kfp_version": kfp_version},
            "config": {
                "items": len(ITEMS),
                "reps": args.reps,
                "baseline_reps": args.baseline_reps,
                "warmup": args.warmup,
                "pipeline": os.path.relpath(PIPELINE_YAML, benchlib.REPO_ROOT),
                "coracle_args": args.coracle_arg,
                "coracle_home": "given" if args.coracle_home else "fresh temporary",
                "python_envs_dir": os.environ.get("CORACLE_PYTHON_ENVS_DIR"),
            },
            "results": results,
        },
    )
    if verification is not None and not verification["ok"]:
        print("error: the last coracle run's leaf tasks are not as expected", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    benchlib.main_wrapper(main)
