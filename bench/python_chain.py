#!/usr/bin/env python3
"""python_chain: Coracle vs kfp.local on a chain of 20 lightweight Python components.

The pipeline (bench/pipelines/python_chain.py, compiled to python_chain.yaml next to it) chains 20
`add_one` components (image python:3.11, caching off); its output is start + 20 = 20.

1. Coracle: one untimed warm-up run (it builds/warms the managed Python environment), then
   --reps timed runs of `coracle run python_chain.yaml --output json` in the same CORACLE_HOME.
2. Baseline, in the same run, when --kfp-python is given (a python with kfp 2.14.6): the same
   pipeline function called under
   `kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False))` in a fresh process of
   that python (bench/kfplocal.py), --baseline-reps times. use_venv=False runs every task with
   that python; the components' bootstrap `pip install kfp==2.14.6 --no-deps` then finds kfp installed and needs no
   network. (--kfp-local-venv selects use_venv=True: a new venv per task, which downloads kfp from
   the package index for every task.)
Reports both medians (whole-process wall time) and the ratio kfp.local / coracle. Target >= 10x.

    python3 bench/python_chain.py --kfp-python /path/to/venv/bin/python [--coracle PATH] [--reps 5]
"""

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import kfplocal  # noqa: E402

TARGET_RATIO = 10.0
CHAIN_LENGTH = 20
START = 0
EXPECTED_OUTPUT = START + CHAIN_LENGTH
PIPELINE_SOURCE = os.path.join(benchlib.PIPELINES_DIR, "python_chain.py")
PIPELINE_YAML = os.path.join(benchlib.PIPELINES_DIR, "python_chain.yaml")
PIPELINE_FUNCTION = "python_chain"


def check_coracle_output(result):
    document = result.output_json()
    if document is None:
        return "stdout is not JSON"
    value = benchlib.find_value(document, "Output")
    if value is None:
        return "no `Output` in the JSON output"
    try:
        ok = float(value) == EXPECTED_OUTPUT
    except (TypeError, ValueError):
        ok = False
    return "ok" if ok else f"Output is {value!r}, expected {EXPECTED_OUTPUT}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    benchlib.add_common_arguments(parser, default_reps=5)
    kfplocal.add_kfp_local_arguments(parser, default_baseline_reps=3)
    parser.add_argument(
        "--recompile",
        action="store_true",
        help="compile bench/pipelines/python_chain.py with --kfp-python instead of using the committed YAML",
    )
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
    if (args.baseline_only or args.recompile) and not args.kfp_python:
        raise benchlib.BenchError("--baseline-only and --recompile need --kfp-python", exit_code=2)

    coracle = None if args.baseline_only else benchlib.resolve_coracle(args.coracle)
    python = kfp_version = None
    if (args.kfp_python and not args.skip_baseline) or args.recompile:
        python, kfp_version = benchlib.resolve_python(args.kfp_python)
    elif not args.skip_baseline:
        print("note: no --kfp-python given: the kfp.local baseline is skipped")

    machine = benchlib.machine_info()
    benchlib.print_machine(machine)

    with tempfile.TemporaryDirectory(prefix="coracle-bench-pychain-") as scratch:
        pipeline = PIPELINE_YAML
        if args.recompile:
            pipeline = os.path.join(scratch, "python_chain.yaml")
            completed = subprocess.run([python, PIPELINE_SOURCE, pipeline], capture_output=True, text=True)
            if completed.returncode != 0:
                raise benchlib.BenchError(f"compiling {PIPELINE_SOURCE} failed:\n{completed.stderr}")
        print(f"pipeline: {pipeline} ({CHAIN_LENGTH} lightweight components in a chain)")

        results = {}
        coracle_samples = []
        output_checks = []
        if coracle:
            with benchlib.CoracleHome(args.coracle_home, args.keep_home) as home:
                print(f"coracle: {coracle}  CORACLE_HOME={home.path}")
                for index in range(args.warmup):
                    result = benchlib.run_coracle(
                        coracle, pipeline, home.path, extra_args=args.coracle_arg, timeout=args.timeout
                    )
                    benchlib.require_success(result, "warm-up coracle run")
                    print(f"  warm-up {index + 1} (managed Python env): {result.wall_s:.3f} s")
                    results.setdefault("coracle_warmup_wall_s", []).append(round(result.wall_s, 6))
                for rep in range(args.reps):
                    result = benchlib.run_coracle(
                        coracle, pipeline, home.path, extra_args=args.coracle_arg, timeout=args.timeout
                    )
                    benchlib.require_success(result)
                    check = check_coracle_output(result)
                    output_checks.append(check)
                    coracle_samples.append(result.wall_s)
                    print(f"  coracle rep {rep + 1}/{args.reps}: {result.wall_s:.3f} s (output check: {check})")
            results["coracle_wall_s"] = benchlib.summarize(coracle_samples)
            results["coracle_output_checks"] = output_checks

        baseline_samples = []
        baseline_pipeline_samples = []
        if python and not args.skip_baseline:
            runner = f"SubprocessRunner(use_venv={args.kfp_local_venv})"
            print(f"kfp.local: {python} (kfp {kfp_version}), {runner}")
            for rep in range(args.baseline_reps):
                wall, report = kfplocal.run_kfp_local(
                    python, args.kfp_local_venv, scratch, rep,
                    PIPELINE_SOURCE, PIPELINE_FUNCTION, {"start": START},
                )
                outputs = report.get("outputs")
                baseline_samples.append(wall)
                baseline_pipeline_samples.append(report["pipeline_s"])
                print(
                    f"  kfp.local rep {rep + 1}/{args.baseline_reps}: {wall:.3f} s process, "
                    f"{report['pipeline_s']:.3f} s in the pipeline call (outputs {outputs})"
                )
            results["kfp_local_runner"] = runner
            results["kfp_local_wall_s"] = benchlib.summarize(baseline_samples)
            results["kfp_local_pipeline_call_s"] = benchlib.summarize(baseline_pipeline_samples)

    print()
    if coracle_samples:
        print(f"coracle   median {results['coracle_wall_s']['median']:.3f} s (whole process)")
    if baseline_samples:
        print(f"kfp.local median {results['kfp_local_wall_s']['median']:.3f} s (whole process), "
              f"{results['kfp_local_pipeline_call_s']['median']:.3f} s inside the pipeline call")
    if coracle_samples and baseline_samples:
        ratio = results["kfp_local_wall_s"]["median"] / results["coracle_wall_s"]["median"]
        results["ratio_kfp_local_over_coracle"] = round(ratio, 3)
        results["target_ratio"] = TARGET_RATIO
        results["target_met"] = ratio >= TARGET_RATIO
        print(f"ratio kfp.local / coracle: {ratio:.1f}x "
              f"(target >= {TARGET_RATIO:.0f}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'})")

    benchlib.write_result(
        args.results_dir,
        "python_chain",
        {
            "machine": machine,
            "coracle": {"path": coracle, "version": benchlib.coracle_version(coracle) if coracle else None},
            "kfp_python": {"path": python, "kfp_version": kfp_version},
            "config": {
                "chain_length": CHAIN_LENGTH,
                "reps": args.reps,
                "baseline_reps": args.baseline_reps,
                "warmup": args.warmup,
                "pipeline": "recompiled" if args.recompile else os.path.relpath(PIPELINE_YAML, benchlib.REPO_ROOT),
                "coracle_args": args.coracle_arg,
                "coracle_home": "given" if args.coracle_home else "fresh temporary",
            },
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    benchlib.main_wrapper(main)
