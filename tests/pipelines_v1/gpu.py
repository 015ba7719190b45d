"""gpu (KFP v1): set_gpu_limit. `gpu` (lightweight, set_gpu_limit(1)) returns the
CUDA_VISIBLE_DEVICES it was given. With CORACLE_GPUS=3: "3"; with no GPUs the task fails at
once: `requests 1 GPU(s) but this machine has 0`.
"""
import os
import sys

from kfp import compiler, dsl
from kfp.components import create_component_from_func


def gpu() -> str:
    import os

    return os.environ.get("CUDA_VISIBLE_DEVICES", "none")


gpu_op = create_component_from_func(gpu, base_image="python:3.11")


@dsl.pipeline(name="gpu", description="a task that asks for one GPU")
def gpu_pipeline():
    task = gpu_op().set_gpu_limit(1)
    task.execution_options.caching_strategy.max_cache_staleness = "P0D"


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(gpu_pipeline, sys.argv[1] if len(sys.argv) > 1 else default)
