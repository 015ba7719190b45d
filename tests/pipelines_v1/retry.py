"""retry (KFP v1): set_retry on lightweight components that count their attempts in files, as
tests/pipelines/retry.py does with the v2 SDK.

Parameter `state_dir: str` (required): an existing, empty directory. Each attempt of `flaky`
appends `attempt <n> <unix time>` to `<state_dir>/<name>.attempts` (n = lines already there
plus one) and raises unless n >= `succeed_on`; on success it returns n. Caching is off on
every task (max_cache_staleness P0D).
* `flaky`   : name "flaky", succeed_on=3, set_retry(3) -> succeeds on attempt 3, returns "3".
* `flaky-2` : name "backoff", succeed_on=3, set_retry(2, backoff_duration="1s",
              backoff_factor=2) -> waits >= 1 s before attempt 2 and >= 2 s before attempt 3,
              which succeeds and returns "3".
* `flaky-3` : name "always", succeed_on=100, set_retry(2), after the other two -> 3 attempts,
              all fail; the run ends FAILED.
"""
import os
import sys

from kfp import compiler, dsl
from kfp.components import create_component_from_func


def flaky(state_dir: str, name: str, succeed_on: int) -> int:
    import os
    import time

    path = os.path.join(state_dir, f"{name}.attempts")
    attempt = 1
    if os.path.exists(path):
        with open(path) as f:
            attempt = len(f.read().splitlines()) + 1
    with open(path, "a") as f:
        f.write(f"attempt {attempt} {time.time():.3f}\n")
    print(f"{name}: attempt {attempt}", flush=True)
    if attempt < succeed_on:
        raise RuntimeError(f"{name}: attempt {attempt} fails on purpose")
    return attempt


flaky_op = create_component_from_func(flaky, base_image="python:3.11")


def no_cache(op):
    op.execution_options.caching_strategy.max_cache_staleness = "P0D"
    return op


@dsl.pipeline(name="retry", description="retries with and without backoff")
def retry(state_dir: str):
    quick = no_cache(flaky_op(state_dir, "flaky", 3)).set_retry(3)
    slow = no_cache(flaky_op(state_dir, "backoff", 3)).set_retry(
        2, backoff_duration="1s", backoff_factor=2
    )
    no_cache(flaky_op(state_dir, "always", 100)).set_retry(2).after(quick, slow)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(retry, sys.argv[1] if len(sys.argv) > 1 else default)
