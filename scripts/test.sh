#!/usr/bin/env bash
# The whole test suite: builds the example plugins, makes sure a PostgreSQL server is reachable
# (the suite creates its own databases on it), then runs every unit and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building the example plugins (Rust, then Python and JavaScript from source)"
plugins/build.sh
plugins/python/build.sh --out plugins/dist
plugins/js/build.sh --out plugins/dist

PG_BIN=/usr/lib/postgresql/15/bin
export HYPHAE_TEST_POSTGRES="${HYPHAE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
pg_up() { psql "$HYPHAE_TEST_POSTGRES" -qtAc 'SELECT 1' >/dev/null 2>&1; }
if ! pg_up; then
    echo "==> PostgreSQL not reachable at $HYPHAE_TEST_POSTGRES; trying to start it"
    if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql/*/main >/dev/null 2>&1; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    fi
fi
if ! pg_up; then
    if [ ! -x "$PG_BIN/initdb" ]; then
        echo "error: no PostgreSQL server and no $PG_BIN/initdb; install it: apt-get install -y postgresql-15" >&2
        exit 1
    fi
    echo "==> starting a throwaway PostgreSQL cluster in target/pg"
    rm -rf target/pg && mkdir -p target/pg
    run_pg() { if [ "$(id -u)" = 0 ]; then chown -R postgres target/pg; su postgres -c "$*"; else sh -c "$*"; fi; }
    run_pg "$PG_BIN/initdb -D $PWD/target/pg/data -U postgres -A trust >/dev/null"
    run_pg "$PG_BIN/pg_ctl -D $PWD/target/pg/data -o '-p 55432 -k /tmp' -l $PWD/target/pg/log -w start >/dev/null"
    export HYPHAE_TEST_POSTGRES="postgres://postgres@127.0.0.1:55432/postgres"
    pg_up || { echo "error: the throwaway PostgreSQL cluster did not start (see target/pg/log)" >&2; exit 1; }
fi

# Each test makes its own database; drop the ones earlier runs left behind.
psql "$HYPHAE_TEST_POSTGRES" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'hyphae\_test\_%'" |
    while read -r db; do psql "$HYPHAE_TEST_POSTGRES" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null || true; done

export HYPHAE_PLUGINS_DIST="$PWD/plugins/dist"
# The interpreter with the Python SDK (and its pinned componentize-py) that plugins/python/build.sh made.
export HYPHAE_PYTHON="$PWD/plugins/python/.venv/bin/python"
echo "==> running the plugin SDK and example plugin unit tests (native)"
(cd plugins && cargo test --quiet)
echo "==> running the Python and JavaScript SDKs' unit tests (native)"
"$HYPHAE_PYTHON" -m unittest discover -s plugins/python/tests
(cd plugins/js && npm test --silent)
scripts/contract-tools.sh
scripts/check-alerts.sh
scripts/browser-tools.sh
echo "==> running the tests (PostgreSQL at $HYPHAE_TEST_POSTGRES)"
cargo test --workspace --no-fail-fast "$@"

# Short fuzz runs (host/fuzz/README.md), seeded so that a run is the same every time (long runs
# look for new inputs): they need a nightly toolchain; cargo-fuzz is installed under
# target/tools when missing. HYPHAE_FUZZ_RUNS=0 skips them.
FUZZ_RUNS="${HYPHAE_FUZZ_RUNS:-100000}"
if [ "$FUZZ_RUNS" != 0 ]; then
    if rustup run nightly rustc --version >/dev/null 2>&1; then
        export PATH="$PWD/target/tools/bin:$PATH"
        if ! cargo fuzz --version >/dev/null 2>&1; then
            echo "==> installing cargo-fuzz into target/tools"
            cargo install --quiet --locked --root target/tools cargo-fuzz
        fi
        for target in workflow_json handoff event_blocks; do
            echo "==> fuzzing $target: $FUZZ_RUNS inputs"
            log="$PWD/target/fuzz-$target.log"
            if ! (cd host && cargo +nightly fuzz run --sanitizer none "$target" -- \
                -seed=1 -runs="$FUZZ_RUNS" -max_len=65536) >"$log" 2>&1; then
                tail -n 60 "$log"
                echo "error: fuzz target $target failed; the input is in host/fuzz/artifacts/$target (see host/fuzz/README.md)" >&2
                exit 1
            fi
            grep -E '^Done [0-9]+ runs' "$log" | tail -n 1
        done
    else
        echo "==> no nightly toolchain: fuzz targets not run (rustup toolchain install nightly to run them)"
    fi
fi
