"""container_placeholders: container components and their placeholders, run with POSIX sh.

* `greet` (container): args use ConcatPlaceholder and two IfPresentPlaceholders (one with list
  Then/Else, one with a Concat Then and a plain-string Else). The sh script writes the
  `|`-joined remaining args to its OutputPath(str) parameter `message` with `echo -n` and one arg
  per line to its output artifact `transcript`.
  - task `greet`   : name and suffix given (pipeline parameters)  -> Then branches;
  - task `greet-2` : name constant "kfp", suffix absent (None)   -> Else branches; runs .after(sys-info).
* `count-lines` (container): reads the `greet` transcript through its input artifact path and writes
  an OutputPath(int) parameter with `wc -l`.
* `sys-info` (container): writes {{$.pipeline_task_name}}, {{$.pipeline_job_name}} and the env
  variable GREETING_ENV (set with set_env_variable) to three output parameters.
* `read-both` (lightweight): reads the `greet` message parameter and transcript artifact, the line
  count, the sys-info outputs and its own env variable READER_MODE; returns one combined string.
"""
import os
import sys
from typing import NamedTuple, Optional

from kfp import compiler, dsl
from kfp.dsl import Artifact, Input, Output

GREET_SCRIPT = """set -e
out="$1"
art="$2"
shift 2
mkdir -p "$(dirname "$out")" "$(dirname "$art")"
msg=""
for arg in "$@"; do
  msg="${msg:+$msg|}$arg"
done
echo -n "$msg" > "$out"
printf '%s\\n' "$@" > "$art"
"""

COUNT_SCRIPT = """set -e
mkdir -p "$(dirname "$2")"
wc -l < "$1" | tr -d ' \\n' > "$2"
"""

SYS_INFO_SCRIPT = """set -e
mkdir -p "$(dirname "$1")" "$(dirname "$2")" "$(dirname "$3")"
echo -n "$4" > "$1"
echo -n "$5" > "$2"
echo -n "$GREETING_ENV" > "$3"
"""


@dsl.container_component
def greet(
    name: str,
    message: dsl.OutputPath(str),
    transcript: Output[Artifact],
    suffix: Optional[str] = None,
):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", GREET_SCRIPT, "greet"],
        args=[
            message,
            transcript.path,
            dsl.ConcatPlaceholder(["hello-", name]),
            dsl.IfPresentPlaceholder(
                input_name="suffix", then=["--suffix", suffix], else_=["--no-suffix"]
            ),
            dsl.IfPresentPlaceholder(
                input_name="suffix",
                then=dsl.ConcatPlaceholder(["tail=", suffix]),
                else_="tail=none",
            ),
        ],
    )


@dsl.container_component
def count_lines(infile: Input[Artifact], lines: dsl.OutputPath(int)):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", COUNT_SCRIPT, "count-lines"],
        args=[infile.path, lines],
    )


@dsl.container_component
def sys_info(
    task_name: dsl.OutputPath(str),
    job_name: dsl.OutputPath(str),
    env_value: dsl.OutputPath(str),
):
    return dsl.ContainerSpec(
        image="alpine",
        command=["sh", "-c", SYS_INFO_SCRIPT, "sys-info"],
        args=[
            task_name,
            job_name,
            env_value,
            dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
            dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        ],
    )


@dsl.component(base_image="python:3.11")
def read_both(
    message: str,
    transcript: Input[Artifact],
    line_count: int,
    task_name: str,
    env_value: str,
) -> str:
    import os

    with open(transcript.path) as f:
        lines = f.read().splitlines()
    mode = os.environ.get("READER_MODE", "unset")
    combined = f"{message}#{','.join(lines)}#{line_count}#{task_name}#{env_value}#{mode}"
    print(combined)
    return combined


@dsl.pipeline(name="container-placeholders", description="container placeholders under sh")
def container_placeholders(name: str = "world", suffix: str = "sfx") -> NamedTuple(
    "PipelineOutputs",
    [
        ("greet_message", str),
        ("greet2_message", str),
        ("line_count", int),
        ("job_name", str),
        ("combined", str),
    ],
):
    info = sys_info()
    info.set_env_variable(name="GREETING_ENV", value="hi-env")
    info.set_caching_options(False)

    given = greet(name=name, suffix=suffix)
    absent = greet(name="kfp").after(info)

    counted = count_lines(infile=given.outputs["transcript"])

    reader = read_both(
        message=given.outputs["message"],
        transcript=given.outputs["transcript"],
        line_count=counted.outputs["lines"],
        task_name=info.outputs["task_name"],
        env_value=info.outputs["env_value"],
    )
    reader.set_env_variable(name="READER_MODE", value="reader")

    pipeline_outputs = NamedTuple(
        "PipelineOutputs",
        [
            ("greet_message", str),
            ("greet2_message", str),
            ("line_count", int),
            ("job_name", str),
            ("combined", str),
        ],
    )
    return pipeline_outputs(
        greet_message=given.outputs["message"],
        greet2_message=absent.outputs["message"],
        line_count=counted.outputs["lines"],
        job_name=info.outputs["job_name"],
        combined=reader.output,
    )


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(
        container_placeholders, sys.argv[1] if len(sys.argv) > 1 else default
    )
