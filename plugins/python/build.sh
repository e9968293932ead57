#!/usr/bin/env bash
# Builds the Python SDK's example plugins into WebAssembly components: OUT/<example>.wasm.
#
#   plugins/python/build.sh [--out DIR]      (default DIR: plugins/python/dist)
#
# Makes plugins/python/.venv on first use (the SDK, editable, with its pinned componentize-py from
# PyPI), then runs `python -m hyphae_plugin build` per example. An example is rebuilt only when
# one of its files or the SDK's is newer than its component.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/dist"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) [[ $# -ge 2 ]] || { echo "build.sh: --out needs a directory" >&2; exit 2; }
               mkdir -p "$2"; out="$(cd "$2" && pwd)"; shift 2 ;;
        -h|--help) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument $1 (usage: build.sh [--out DIR])" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"

python="$here/.venv/bin/python"
if ! "$python" -c 'import hyphae_plugin, componentize_py' 2>/dev/null || [[ "$here/pyproject.toml" -nt "$here/.venv" ]]; then
    echo "==> installing the Python SDK and its pinned componentize-py into plugins/python/.venv"
    python3 -m venv "$here/.venv" || { echo "build.sh: python3 -m venv failed: install python3-venv (apt-get install -y python3-venv)" >&2; exit 1; }
    "$python" -m pip install --quiet --disable-pip-version-check -e "$here"
    touch "$here/.venv"
fi

for example in "$here"/examples/*/; do
    name="$(basename "$example")"
    target="$out/$name.wasm"
    if [[ -f "$target" ]] && [[ -z "$(find "$example" "$here/hyphae_plugin" -newer "$target" -type f -not -path '*/__pycache__/*' -print -quit)" ]]; then
        echo "==> $name: up to date"
        continue
    fi
    echo "==> building Python example $name"
    "$python" -m hyphae_plugin build "$example" --out "$target" >/dev/null
done
