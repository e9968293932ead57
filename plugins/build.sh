#!/usr/bin/env bash
# Builds every plugin of this workspace into a WebAssembly component: dist/<crate-name>.wasm.
#
#   plugins/build.sh [--out DIR]
#
# Toolchain: a rustup toolchain with the wasm32-unknown-unknown target when one is installed;
# otherwise Debian's packaged Rust (rustc-web, cargo-web, rust-web-src, lld-19), which builds std
# for wasm32 from source (-Zbuild-std). Missing Debian packages are installed when run as root.
# Each core module is then wrapped into a component by componentize/ (wit-component), which also
# checks what the component imports and exports. Reruns are incremental.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/dist"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) [[ $# -ge 2 ]] || { echo "build.sh: --out needs a directory" >&2; exit 2; }
               mkdir -p "$2"; out="$(cd "$2" && pwd)"; shift 2 ;;
        -h|--help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument $1 (usage: build.sh [--out DIR])" >&2; exit 2 ;;
    esac
done

target=wasm32-unknown-unknown
debian_pkgs=(rustc-web cargo-web rust-web-src lld-19)
say() { echo "==> $*"; }

# --- toolchain -----------------------------------------------------------------------------------
if command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    say "toolchain: rustup $(rustc --version) with $target"
    wasm_cargo=(cargo build --release --target "$target")
    wasm_env=()
else
    missing=()
    for p in "${debian_pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        install="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            say "installing Debian packages: ${missing[*]}"
            apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"
        else
            echo "build.sh: no rustup toolchain with the $target target, and Debian packages" \
                 "${missing[*]} are missing. Either run (as root):" >&2
            echo "    $install" >&2
            echo "or, with rustup: rustup target add $target" >&2
            exit 1
        fi
    fi
    say "toolchain: Debian $(/usr/bin/rustc --version), wasm-ld-19, std built from source"
    wasm_cargo=(/usr/bin/cargo build --release --target "$target" -Zbuild-std=std,panic_abort)
    wasm_env=(RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
              CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-19)
fi

# --- componentize tool (native, normal toolchain) ------------------------------------------------
say "building componentize tool"
if command -v cargo >/dev/null && cargo --version >/dev/null 2>&1; then
    native_cargo=(cargo)
else
    native_cargo=(env RUSTC=/usr/bin/rustc /usr/bin/cargo)
fi
"${native_cargo[@]}" build --release --quiet --manifest-path "$here/componentize/Cargo.toml" \
    --target-dir "$here/componentize/target"
componentize="$here/componentize/target/release/componentize"

# --- plugins -------------------------------------------------------------------------------------
say "building plugins for $target"
(cd "$here" && env "${wasm_env[@]}" "${wasm_cargo[@]}")

# Plugin crates: cdylib crates listed in the workspace's `members`.
members="$(grep -E '^members *=' "$here/Cargo.toml")"
plugins=()
for manifest in "$here"/*/Cargo.toml; do
    grep -q 'crate-type *= *\["cdylib"\]' "$manifest" || continue
    dir="$(basename "$(dirname "$manifest")")"
    if [[ "$members" != *"\"$dir\""* ]]; then
        echo "build.sh: skipping $dir/: not in \`members\` of $here/Cargo.toml" >&2
        continue
    fi
    plugins+=("$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n1)")
done

say "componentizing into $out"
mkdir -p "$out"
for name in "${plugins[@]}"; do
    module="$here/target/$target/release/${name//-/_}.wasm"
    component="$out/$name.wasm"
    if [[ -f "$component" && "$component" -nt "$module" && "$component" -nt "$componentize" ]]; then
        "$componentize" --check "$component"
    else
        "$componentize" "$module" "$component"
    fi
done

say "${#plugins[@]} components in $out"
