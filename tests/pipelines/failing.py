"""failing: one task raises, an independent sibling is stopped, a dependent never starts.

* `explode` (lightweight) prints "boom-marker" and raises RuntimeError("intentional failure: kaboom").
* `sleeper` (container, alpine) runs `sleep 30`, independent of `explode`: when `explode` fails,
  the run must stop it and end FAILED well before the 30 s are up.
* `never-runs` (container) runs .after(explode): it must never start.
Caching is off on every task so a repeated run behaves the same.
"""
import os
import sys

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def explode():
    print("boom-marker", flush=True)
    raise RuntimeError("intentional failure: kaboom")


@dsl.container_component
def sleeper():
    return dsl.ContainerSpec(image="alpine", command=["sleep", "30"])


@dsl.container_component
def never_runs():
    return dsl.ContainerSpec(
        image="alpine", command=["sh", "-c", "echo never-runs-marker; exit 0"]
    )


@dsl.pipeline(name="failing", description="a failing task stops its sibling")
def failing():
    boom = explode()
    boom.set_caching_options(False)
    sleep = sleeper()
    sleep.set_caching_options(False)
    after = never_runs().after(boom)
    after.set_caching_options(False)


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(failing, sys.argv[1] if len(sys.argv) > 1 else default)
