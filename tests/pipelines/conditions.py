"""conditions: dsl.If / dsl.Elif / dsl.Else, nested If, output-vs-output and dsl.Condition.

Parameters `n: int = 5`, `m: int = 2`, `word: str = "heads"`.
* `pick-word` returns `word`; `number` returns `n`; `number-2` returns `m`.
* Group 1 (`condition-branches-1`) on the int parameter `n`:
    If n > 3          -> say "n>3", and a nested If on pick-word == "heads" -> say "n>3 and heads"
    Elif n > 0        -> say "0<n<=3"
    Else              -> say "n<=0"
* Group 2 (`condition-branches-6`) on the string output of `pick-word`:
    If == "heads" -> say "heads"; Elif == "tails" -> say "tails"; Else -> say "neither"
* Group 3 (`condition-branches-10`) compares two task outputs: If number > number-2 -> say "n>m",
  Else -> say "n<=m".
* `dsl.Condition` (the deprecated alias of dsl.If) on word == "tails" -> say "condition: tails".
* `finish` runs .after() a task of group 1 (compiled as a dependency on the whole
  `condition-branches-1` group) and returns "finished".
Every `say` task prints its message and returns it. Branches not taken end SKIPPED.
"""
import os
import sys
import warnings

from kfp import compiler, dsl

# dsl.Condition is used on purpose below; keep compile.sh output quiet.
warnings.filterwarnings(
    "ignore", message="dsl.Condition is deprecated", category=DeprecationWarning
)


@dsl.component(base_image="python:3.11")
def pick_word(word: str) -> str:
    return word


@dsl.component(base_image="python:3.11")
def number(x: int) -> int:
    return x


@dsl.component(base_image="python:3.11")
def say(msg: str) -> str:
    print(f"say: {msg}")
    return msg


@dsl.component(base_image="python:3.11")
def finish() -> str:
    print("finished")
    return "finished"


@dsl.pipeline(name="conditions", description="If/Elif/Else, nested If, dsl.Condition")
def conditions(n: int = 5, m: int = 2, word: str = "heads") -> str:
    picked = pick_word(word=word)
    first = number(x=n)
    second = number(x=m)

    # Group 1: int pipeline parameter, with a nested If on a task output.
    with dsl.If(n > 3):
        big = say(msg="n>3")
        with dsl.If(picked.output == "heads"):
            say(msg="n>3 and heads")
    with dsl.Elif(n > 0):
        say(msg="0<n<=3")
    with dsl.Else():
        say(msg="n<=0")

    # Group 2: string output of an upstream task.
    with dsl.If(picked.output == "heads"):
        say(msg="heads")
    with dsl.Elif(picked.output == "tails"):
        say(msg="tails")
    with dsl.Else():
        say(msg="neither")

    # Group 3: two task outputs compared with each other.
    with dsl.If(first.output > second.output):
        say(msg="n>m")
    with dsl.Else():
        say(msg="n<=m")

    # The deprecated alias, used once.
    with dsl.Condition(word == "tails"):
        say(msg="condition: tails")

    # Depends on a task inside group 1: compiles to a dependency on the whole group.
    done = finish().after(big)
    return done.output


if __name__ == "__main__":
    default = os.path.splitext(os.path.abspath(__file__))[0] + ".yaml"
    compiler.Compiler().compile(conditions, sys.argv[1] if len(sys.argv) > 1 else default)
