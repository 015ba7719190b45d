"""retry: set_retry on lightweight components that count their attempts in files.

Parameter `state_dir: str` (required): an existing directory, a fresh empty one per run (tests
pass a temporary directory). Each attempt of `flaky` appends one line
`attempt <n> <unix time>` to `<state_dir>/<name>.attempts`, where n is the number of lines
already in the file plus one, and raises RuntimeError unless n >= `succeed_on`; on success it
returns n. Caching is off on every task.

* `flaky`       : name "flaky", succeed_on=3, set_retry(num_retries=3, backoff_duration="0s")
                  -> fails attempts 1-2, succeeds on attempt 3, returns 3.
* `flaky-2`     : name "backoff", succeed_on=3, set_retry(num_retries=2, backoff_duration="1s",
                  backoff_factor=2) -> attempts 1-2 fail; waits >= 1 s before attempt 2 and
                  >= 2 s before attempt 3, which succeeds and returns 3.
* `flaky-3`     : name "always", succeed_on=100, set_retry(num_retries=2, backoff_duration="0s"),
                  .after(flaky, flaky-2) -> 1 + 2 = 3 attempts, all fail; the run ends FAILED.
"""
import os
import sys

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
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


@dsl.pipeline(name="retry", description="retries with and without backoff")
def retry(state_dir: str):
    quick = flaky(state_dir=state_dir, name="flaky", succeed_on=3)
    quick.set_retry(num_retries=3, backoff_duration="0s")
    quick.set_caching_options(False)

    slow = flaky(state_dir=state_dir, name="backoff", succeed_on=3)
    slow.set_retry(num_retries=2, backoff_duration="1s", backoff_factor=2)
    slow.set_caching_options(False)

    # Runs last, so that its final failure cannot stop the other two.
    always = flaky(state_dir=state_dir, name="always", succeed_on=100).after(quick, slow)
    always.set_retry(num_retries=2, backoff_duration="0s")
    always.set_caching_options(False)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(retry, sys.argv[1] if len(sys.argv) > 1 else default)
