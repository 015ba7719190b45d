#!/bin/sh
# Recompile every KFP v1 pipeline in this folder: name.py -> name.yaml (next to it).
#
#   tests/pipelines_v1/compile.sh PYTHON           rewrite the .yaml files
#   tests/pipelines_v1/compile.sh PYTHON --check   compile into a temporary folder and fail
#                                                  (exit 1) if any committed .yaml differs
#
# PYTHON must have kfp==1.8.22 installed (the v1 SDK, in a venv of its own), e.g.
# `python3 -m venv V && V/bin/pip install kfp==1.8.22`.
#
# kfp 1.8 writes the compilation time into every workflow
# (`pipelines.kubeflow.org/pipeline_compilation_time`); it is set to a fixed value so that
# recompiling unchanged sources gives byte-identical YAML.
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

version="$("$python" -c 'import kfp; print(kfp.__version__)' 2>/dev/null)" || {
    echo "error: $python cannot import kfp" >&2
    exit 2
}
if [ "$version" != "1.8.22" ]; then
    echo "error: $python has kfp $version, these pipelines are compiled with kfp 1.8.22" >&2
    exit 2
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT INT TERM

compile() {
    # ContainerOp's FutureWarning goes to stderr; keep the terminal quiet.
    (cd "$here" && PYTHONWARNINGS=ignore "$python" "$1" "$2")
    sed -i "s/pipeline_compilation_time: '[^']*'/pipeline_compilation_time: '2024-01-01T00:00:00'/" "$2"
}

status=0
for source in "$here"/*.py; do
    name="$(basename "$source" .py)"
    target="$here/$name.yaml"
    if [ "$mode" = "--check" ]; then
        compile "$source" "$scratch/$name.yaml"
        if ! cmp -s "$scratch/$name.yaml" "$target"; then
            echo "out of date: $target (run $0 $python)" >&2
            diff -u "$target" "$scratch/$name.yaml" >&2 || true
            status=1
        else
            echo "up to date: $name.yaml"
        fi
    else
        compile "$source" "$target"
        echo "compiled: $name.yaml"
    fi
done
exit "$status"
