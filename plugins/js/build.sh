#!/usr/bin/env bash
# Builds the JavaScript SDK's example plugins into WebAssembly components: OUT/<example>.wasm.
#
#   plugins/js/build.sh [--out DIR]      (default DIR: plugins/js/dist)
#
# Installs the SDK's pinned dependencies (componentize-js, esbuild) from npm on first use
# (`npm ci`), links the SDK into each example, then runs `hyphae-plugin-js build` per example. An
# example is rebuilt only when one of its files or the SDK's is newer than its component.
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
command -v npm >/dev/null || { echo "build.sh: npm is missing: install Node.js 20 or later (apt-get install -y nodejs npm)" >&2; exit 1; }

if [[ ! -d "$here/node_modules/@bytecodealliance/componentize-js" ]] || [[ "$here/package-lock.json" -nt "$here/node_modules" ]]; then
    echo "==> installing the JavaScript SDK's pinned dependencies (npm ci)"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$here/node_modules"
fi

for example in "$here"/examples/*/; do
    name="$(basename "$example")"
    [[ -e "$example/node_modules/@hyphae/plugin" ]] ||
        (cd "$example" && npm install --no-audit --no-fund --loglevel=error --no-package-lock)
    target="$out/$name.wasm"
    if [[ -f "$target" ]] && [[ -z "$(find "$example" "$here/src" "$here/wit" -newer "$target" -type f -not -path '*/node_modules/*' -print -quit)" ]]; then
        echo "==> $name: up to date"
        continue
    fi
    echo "==> building JavaScript example $name"
    node "$here/bin/hyphae-plugin-js.js" build "$example" --out "$target" --quiet
done
