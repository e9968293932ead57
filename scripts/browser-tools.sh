#!/usr/bin/env bash
# Installs what tests/all/console.rs drives the dashboard with: Debian's Chromium (headless) and
# playwright-core (npm, pinned in tests/browser/package-lock.json) into tests/browser/node_modules.
# Idempotent: what is installed at the pinned versions is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] ||
        { echo "error: chromium not found: install it (Debian: apt-get install chromium)" >&2; exit 1; }
    echo "==> installing Debian's chromium (headless browser of the dashboard tests)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
fi

dir=tests/browser
stamp() { sha256sum "$1" | cut -d' ' -f1; }
marker="$dir/node_modules/.installed-lock"
if [ "$(cat "$marker" 2>/dev/null)" != "$(stamp "$dir/package-lock.json")" ] || [ ! -d "$dir/node_modules/playwright-core" ]; then
    command -v npm >/dev/null 2>&1 || { echo "error: npm not found: install Node.js 20 or later" >&2; exit 1; }
    echo "==> installing playwright-core into $dir/node_modules"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    stamp "$dir/package-lock.json" >"$marker"
fi
