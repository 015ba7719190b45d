"""component_yaml (KFP v1): a component loaded from a v1 component.yaml
(components/echo.yaml: inputValue, inputPath, outputPath, concat, if/isPresent, a default),
used twice: with and without its optional input, its `data` from another task's file and from
a constant.

Parameter `text: str = "hi"`.
* `make-data` (lightweight) writes "DATA" to its output file `data`.
* `echo` : text, data from make-data, prefix "> ", times 2 -> result "> hi|> hi|DATA".
* `echo-2`: text, data the constant "raw", no prefix -> result "hi|raw"; its `args` output
  shows `--no-prefix`.
The component file itself runs as a one-task pipeline:
`coracle run components/echo.yaml -p text=x -p data=y -p prefix=p` -> result "px|y".
"""
import os
import sys

from kfp import compiler, components, dsl
from kfp.components import OutputPath, create_component_from_func

# Loaded from its text, not its path: kfp would write the file's absolute path into the
# workflow, and the committed YAML must not depend on where the repository is checked out.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "components", "echo.yaml")) as f:
    echo_op = components.load_component_from_text(f.read())


def make_data(data_path: OutputPath(str)):
    with open(data_path, "w") as f:
        f.write("DATA")


make_data_op = create_component_from_func(make_data, base_image="python:3.11")


@dsl.pipeline(name="component-yaml", description="a v1 component.yaml, used twice")
def component_yaml(text: str = "hi"):
    data = make_data_op()
    echo_op(text=text, data=data.output, prefix="> ", times=2)
    echo_op(text=text, data="raw")


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(component_yaml, sys.argv[1] if len(sys.argv) > 1 else default)
