"""caching (KFP v1): the caching settings of v1 ops. Each task returns a fresh random token,
so a second run of the same pipeline in the same CORACLE_HOME tells a cached result from a new
one.
* `token`   : default (cached): the second run is CACHED with the first run's token.
* `token-2` : execution_options.caching_strategy.max_cache_staleness = "P0D": runs again
              (SUCCEEDED, a new token).
* `token-3` : set_caching_options(False) (label enable_caching "false"): runs again.
* `fresh-token` : max_cache_staleness = "PT15S": CACHED while the first run's result is under
              15 seconds old, runs again after that (its own component, so it never shares a
              cache entry with `token`).
Parameter `salt: str = "a"` is passed to every task; another salt misses the cache.
"""
import os
import sys

from kfp import compiler, dsl
from kfp.components import create_component_from_func


def token(salt: str) -> str:
    import uuid

    return f"{salt}-{uuid.uuid4().hex}"


token_op = create_component_from_func(token, base_image="python:3.11")


def fresh_token(salt: str) -> str:
    import uuid

    return f"{salt}-fresh-{uuid.uuid4().hex}"


fresh_token_op = create_component_from_func(fresh_token, base_image="python:3.11")


@dsl.pipeline(name="caching", description="cached, stale and uncached tasks")
def caching(salt: str = "a"):
    token_op(salt)
    stale = token_op(salt)
    stale.execution_options.caching_strategy.max_cache_staleness = "P0D"
    token_op(salt).set_caching_options(False)
    fresh = fresh_token_op(salt)
    fresh.execution_options.caching_strategy.max_cache_staleness = "PT15S"


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(caching, sys.argv[1] if len(sys.argv) > 1 else default)
