"""parameter_types: every KFP parameter type in and out of one lightweight component.

`all_types` takes int, float, str, bool, list, dict, an Optional[str] (default None) and
defaulted str/int/float/bool/list/dict inputs, and returns a NamedTuple with one output of each
type. It is called twice:
  * `all-types`   : required inputs wired to the pipeline parameters, every defaulted/optional
                    input left unset (the component's own defaults and None apply);
  * `all-types-2` : every input given as a constant, overriding all defaults.
`combine` consumes the outputs of `all-types`, prints one line `combined=<...>` and returns it.
The pipeline outputs the six typed outputs of `all-types` and the combined string.
"""
import os
import sys
from typing import Dict, List, NamedTuple, Optional

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def all_types(
    i: int,
    f: float,
    s: str,
    b: bool,
    l: list,
    d: dict,
    opt: Optional[str] = None,
    s_def: str = "hello",
    i_def: int = 7,
    f_def: float = 2.5,
    b_def: bool = True,
    l_def: List[int] = [1, 2, 3],
    d_def: Dict[str, int] = {"one": 1},
) -> NamedTuple(
    "AllTypesOutputs",
    [
        ("out_int", int),
        ("out_float", float),
        ("out_str", str),
        ("out_bool", bool),
        ("out_list", list),
        ("out_dict", dict),
    ],
):
    # Fail loudly if the executor hands over the wrong Python types.
    checks = [
        (i, int), (f, float), (s, str), (b, bool), (l, list), (d, dict),
        (s_def, str), (i_def, int), (f_def, float), (b_def, bool), (l_def, list), (d_def, dict),
    ]
    for value, expected in checks:
        # A float input may arrive as a JSON integer (2.0 is rendered `2`); an int input must
        # never arrive as a float (7 must not become 7.0) nor as a bool.
        accepted = (int, float) if expected is float else expected
        if not isinstance(value, accepted) or (expected is not bool and isinstance(value, bool)):
            raise TypeError(f"{value!r} is {type(value).__name__}, expected {expected.__name__}")
    if opt is not None and not isinstance(opt, str):
        raise TypeError(f"opt={opt!r} is not None or str")

    from collections import namedtuple

    outputs = namedtuple(
        "AllTypesOutputs",
        ["out_int", "out_float", "out_str", "out_bool", "out_list", "out_dict"],
    )
    merged = dict(d)
    merged.update(d_def)
    merged["opt"] = "none" if opt is None else opt
    return outputs(
        out_int=i + i_def,
        out_float=f * 2 + f_def,
        out_str=f"{s}|{s_def}|{'none' if opt is None else opt}",
        out_bool=b and b_def,
        out_list=l + l_def,
        out_dict=merged,
    )


@dsl.component(base_image="python:3.11")
def combine(i: int, f: float, s: str, b: bool, l: list, d: dict) -> str:
    import json

    line = f"{i};{f};{s};{b};{json.dumps(l)};{json.dumps(d, sort_keys=True)}"
    print(f"combined={line}")
    return line


@dsl.pipeline(name="parameter-types", description="every parameter type in and out")
def parameter_types(
    i: int,
    f: float,
    s: str,
    b: bool,
    l: list,
    d: dict,
) -> NamedTuple(
    "PipelineOutputs",
    [
        ("out_int", int),
        ("out_float", float),
        ("out_str", str),
        ("out_bool", bool),
        ("out_list", list),
        ("out_dict", dict),
        ("combined", str),
    ],
):
    first = all_types(i=i, f=f, s=s, b=b, l=l, d=d)
    all_types(
        i=-4,
        f=0.25,
        s="const",
        b=False,
        l=[],
        d={"nested": {"x": [1, 2]}},
        opt="given",
        s_def="bye",
        i_def=100,
        f_def=-1.5,
        b_def=False,
        l_def=[9],
        d_def={"two": 2},
    )
    combined = combine(
        i=first.outputs["out_int"],
        f=first.outputs["out_float"],
        s=first.outputs["out_str"],
        b=first.outputs["out_bool"],
        l=first.outputs["out_list"],
        d=first.outputs["out_dict"],
    )
    pipeline_outputs = NamedTuple(
        "PipelineOutputs",
        [
            ("out_int", int),
            ("out_float", float),
            ("out_str", str),
            ("out_bool", bool),
            ("out_list", list),
            ("out_dict", dict),
            ("combined", str),
        ],
    )
    return pipeline_outputs(
        out_int=first.outputs["out_int"],
        out_float=first.outputs["out_float"],
        out_str=first.outputs["out_str"],
        out_bool=first.outputs["out_bool"],
        out_list=first.outputs["out_list"],
        out_dict=first.outputs["out_dict"],
        combined=combined.output,
    )


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(parameter_types, sys.argv[1] if len(sys.argv) > 1 else default)
