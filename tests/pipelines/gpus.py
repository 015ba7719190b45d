"""gpus: two tasks that each ask for one GPU (set_accelerator_type / set_accelerator_limit).

Each (container) writes the CUDA_VISIBLE_DEVICES it was given. On a machine with two GPUs (or
CORACLE_GPUS=0,1) the outputs are two different devices; on a machine with none the run fails
before either task starts, saying what was asked for and what the machine has.
Output `first`, `second` = the devices.
"""
import os
import sys
from typing import NamedTuple

from kfp import compiler, dsl

SCRIPT = 'mkdir -p "$(dirname "$0")" && echo -n "$CUDA_VISIBLE_DEVICES" > "$0"'


@dsl.container_component
def which_gpu(device: dsl.OutputPath(str)):
    return dsl.ContainerSpec(image="alpine", command=["sh", "-c", SCRIPT, device])


@dsl.pipeline(name="gpus", description="dedicated GPU devices")
def gpus() -> NamedTuple("Outputs", [("first", str), ("second", str)]):
    first = which_gpu().set_caching_options(False)
    first.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    second = which_gpu().set_caching_options(False)
    second.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    outputs = NamedTuple("Outputs", [("first", str), ("second", str)])
    return outputs(first=first.outputs["device"], second=second.outputs["device"])


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(gpus, sys.argv[1] if len(sys.argv) > 1 else default)
