#!/usr/bin/env bash
# Installs the real clients tests/all/contract.rs runs against a live host: schemathesis (PyPI,
# pinned in tests/clients/schemathesis-requirements.txt) into the venv target/tools/schemathesis,
# and @hey-api/openapi-ts with typescript (npm, pinned in tests/clients/ts/package-lock.json) into
# tests/clients/ts/node_modules. Idempotent: what is installed at the pinned versions is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp() { sha256sum "$1" | cut -d' ' -f1; }

reqs=tests/clients/schemathesis-requirements.txt
venv=target/tools/schemathesis
marker="$venv/.installed-requirements"
if [ "$(cat "$marker" 2>/dev/null)" != "$(stamp "$reqs")" ] || ! "$venv/bin/schemathesis" --version >/dev/null 2>&1; then
    python=$(command -v python3.11 || command -v python3)
    echo "==> installing schemathesis into $venv ($("$python" --version))"
    rm -rf "$venv"
    mkdir -p target/tools
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        # Debian ships venv apart from python3.
        command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] ||
            { echo "error: $python cannot make a venv: install python3-venv" >&2; exit 1; }
        apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$venv"
        "$python" -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$reqs"
    stamp "$reqs" >"$marker"
fi

ts=tests/clients/ts
marker="$ts/node_modules/.installed-lock"
if [ "$(cat "$marker" 2>/dev/null)" != "$(stamp "$ts/package-lock.json")" ] || [ ! -x "$ts/node_modules/.bin/openapi-ts" ]; then
    command -v npm >/dev/null 2>&1 || { echo "error: npm not found: install Node.js 20.19 or later" >&2; exit 1; }
    echo "==> installing @hey-api/openapi-ts and typescript into $ts/node_modules"
    (cd "$ts" && npm ci --no-audit --no-fund --loglevel=error)
    stamp "$ts/package-lock.json" >"$marker"
fi
