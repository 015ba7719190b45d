"""The kfp.local baseline of the Coracle benchmarks. Standard library only.

`run_kfp_local()` calls one pipeline function of a source file in bench/pipelines/ under
`kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=...))`, in a fresh process of a
python that has kfp 2.14.6 (`--kfp-python`), and returns the whole-process wall time together
with what the driver saw: the seconds spent inside the pipeline call (without interpreter start
and imports), the seconds before it, and the pipeline's outputs.

kfp 2.14.6's SubprocessRunner has one option, use_venv (default True). With use_venv=True it
creates a new virtual environment for every task and the components' bootstrap pip-installs kfp
into it from the package index; with use_venv=False every task runs with the driver's python,
where the bootstrap's `pip install kfp==2.14.6 --no-deps` finds kfp already installed.
"""

import json
import os
import subprocess
import time

import benchlib

# Runs inside --kfp-python.
# argv = module path, function name, pipeline root, use_venv, result file, JSON of the arguments.
DRIVER = r'''
import importlib.util
import json
import sys
import time

process_start = time.perf_counter()
from kfp import local

module_path, function_name, pipeline_root, use_venv, result_path, arguments = sys.argv[1:7]
spec = importlib.util.spec_from_file_location("bench_pipeline", module_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
local.init(
    runner=local.SubprocessRunner(use_venv=use_venv == "true"),
    pipeline_root=pipeline_root,
)
start = time.perf_counter()
task = getattr(module, function_name)(**json.loads(arguments))
pipeline_s = time.perf_counter() - start
outputs = getattr(task, "outputs", None)
with open(result_path, "w") as handle:
    json.dump(
        {
            "pipeline_s": pipeline_s,
            "setup_s": start - process_start,
            "outputs": outputs,
        },
        handle,
        default=str,
    )
'''


def run_kfp_local(python, use_venv, scratch, rep, source, function, arguments=None):
    """One kfp.local run of `function` from `source` in a fresh process.

    Returns (process wall s, driver report {pipeline_s, setup_s, outputs}); BenchError when the
    run fails.
    """
    workdir = os.path.join(scratch, f"kfp-local-{rep}")
    os.makedirs(workdir)
    driver = os.path.join(scratch, "kfp_local_driver.py")
    if not os.path.exists(driver):
        with open(driver, "w") as handle:
            handle.write(DRIVER)
    result_path = os.path.join(workdir, "result.json")
    log_path = os.path.join(workdir, "log.txt")
    command = [
        python,
        driver,
        source,
        function,
        os.path.join(workdir, "local_outputs"),
        "true" if use_venv else "false",
        result_path,
        json.dumps(arguments or {}),
    ]
    start = time.perf_counter()
    with open(log_path, "w") as log:
        completed = subprocess.run(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if completed.returncode != 0 or not os.path.exists(result_path):
        with open(log_path) as log:
            tail = "\n".join(log.read().splitlines()[-30:])
        raise benchlib.BenchError(
            f"kfp.local baseline run failed (exit {completed.returncode}):\n{tail}"
        )
    with open(result_path) as handle:
        report = json.load(handle)
    return wall, report


def add_kfp_local_arguments(parser, default_baseline_reps):
    parser.add_argument("--kfp-python", help="python with kfp 2.14.6, for the kfp.local baseline")
    parser.add_argument(
        "--baseline-reps",
        type=int,
        default=default_baseline_reps,
        help=f"timed kfp.local runs (default: {default_baseline_reps})",
    )
    parser.add_argument(
        "--kfp-local-venv",
        action="store_true",
        help="kfp.local with SubprocessRunner(use_venv=True) (needs the package index)",
    )
