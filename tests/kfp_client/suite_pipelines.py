"""Pipelines the suite runs. Container components are `sh` commands (fast); `add` is a
lightweight Python component."""

from kfp import dsl


# Coracle runs a Python component with the interpreter its base image names; the test
# machines have Python 3.11 (the SDK's default image, python:3.9, names one they lack).
@dsl.component(base_image="python:3.11")
def add(a: int, b: int) -> int:
    return a + b


@dsl.container_component
def describe_number(n: int, text: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", 'printf "sum=%s" "$0" > "$1"'],
        args=[n, text],
    )


@dsl.pipeline(name="add-and-describe")
def add_and_describe(a: int = 1, b: int = 2) -> str:
    """A Python step feeding a container step: a + b, then "sum=<a+b>"."""
    total = add(a=a, b=b)
    return describe_number(n=total.output).output


@dsl.container_component
def greet(name: str, greeting: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", 'printf "hello %s" "$0" > "$1"'],
        args=[name, greeting],
    )


@dsl.container_component
def shout(text: str, loud: dsl.OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", 'printf "%s!" "$0" | tr a-z A-Z > "$1"'],
        args=[text, loud],
    )


@dsl.pipeline(name="greet-and-shout")
def greet_and_shout(name: str = "world") -> str:
    """Two container steps: "hello <name>", then "HELLO <NAME>!"."""
    greeting = greet(name=name)
    return shout(text=greeting.output).output


@dsl.container_component
def fail_with(code: int):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", 'echo "failing on purpose" >&2; exit "$0"'],
        args=[code],
    )


@dsl.pipeline(name="fails-midway")
def fails_midway(code: int = 3):
    """greet succeeds, fail-with exits with `code`, and greet-2 after it never runs."""
    first = greet(name="first")
    failing = fail_with(code=code).after(first)
    greet(name="never").after(failing)


@dsl.container_component
def sleep_for(seconds: int):
    return dsl.ContainerSpec(image="alpine", command=["sh", "-c", 'sleep "$0"'], args=[seconds])


@dsl.pipeline(name="sleeper")
def sleeper(seconds: int = 300):
    """One long step, for terminate."""
    sleep_for(seconds=seconds)
