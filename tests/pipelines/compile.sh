#!/bin/sh
# Recompile every pipeline in this folder: name.py -> name.yaml (next to it).
#
#   tests/pipelines/compile.sh PYTHON           rewrite the .yaml files
#   tests/pipelines/compile.sh PYTHON --check   compile into a temporary folder and fail (exit 1)
#                                               if any committed .yaml differs
#
# PYTHON must have kfp==2.14.6 installed (the committed YAML pins it in every bootstrap command
# and in sdkVersion), e.g. `python3 -m venv V && V/bin/pip install kfp==2.14.6`.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 PYTHON [--check]" >&2
    exit 2
fi
python="$1"
mode="${2:-write}"
case "$mode" in
    write|--check) ;;
    *) echo "usage: $0 PYTHON [--check]" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "$0")" && pwd)"

version="$("$python" -c 'import kfp; print(kfp.__version__)')" || {
    echo "error: $python cannot import kfp" >&2
    exit 2
}
if [ "$version" != "2.14.6" ]; then
    echo "error: $python has kfp $version, these pipelines are compiled with kfp 2.14.6" >&2
    exit 2
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT INT TERM

status=0
for source in "$here"/*.py; do
    name="$(basename "$source" .py)"
    target="$here/$name.yaml"
    if [ "$mode" = "--check" ]; then
        "$python" "$source" "$scratch/$name.yaml"
        if ! cmp -s "$scratch/$name.yaml" "$target"; then
            echo "out of date: $target (run $0 $python)" >&2
            diff -u "$target" "$scratch/$name.yaml" >&2 || true
            status=1
        else
            echo "up to date: $name.yaml"
        fi
    else
        "$python" "$source" "$target"
        echo "compiled: $name.yaml"
    fi
done
exit "$status"
