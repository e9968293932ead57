#!/usr/bin/env bash
# Checks the Prometheus alerting rules shipped in docs/operations: `promtool check rules` on
# alerts.yml and `promtool test rules` on alerts.test.yml (a test per alert). Installs promtool
# (Debian package `prometheus`, as root: CI runs as root) when it is missing; the integration
# test tests/all/metrics.rs also runs `promtool check metrics` on a real scrape when promtool is there.
set -euo pipefail
cd "$(dirname "$0")/../docs/operations"

if ! command -v promtool >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] ||
        { echo "error: promtool not found: install the Debian package prometheus (or Prometheus' own release)" >&2; exit 1; }
    echo "==> installing promtool (Debian package prometheus)"
    # The package's service is not started: promtool is all that is needed.
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
fi
echo "==> checking the alerting rules ($(promtool --version 2>&1 | head -n1))"
promtool check rules alerts.yml
promtool test rules alerts.test.yml
