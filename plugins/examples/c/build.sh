#!/usr/bin/env bash
# Build the C CapacityFilter and CapacityWeigher into components:
#   build.sh OUTDIR  →  OUTDIR/capacity_filter.wasm, OUTDIR/capacity_weigher.wasm
# Needs clang-19 with the wasm32 compiler-rt and wasi-libc (Debian: clang-19 lld-19
# libclang-rt-19-dev-wasm32 wasi-libc; $CLANG, default clang-19) and kiln-componentize
# ($KILN_COMPONENTIZE, else `cargo run -p kiln-componentize`).
#
# The bindings in bindings/ come from `wit-bindgen c` (committed; scripts/build-examples
# regenerates them when the WIT changes). wasi-libc gives malloc, string and math functions
# without any WASI import as long as nothing does I/O (no printf to stdout, no files, no
# clock): the component then imports only the world's `log` and `config`, which is all Kiln
# grants a filter or weigher. kiln-componentize refuses a module that imports more.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
clang=${CLANG:-clang-19}
if [ -n "${KILN_COMPONENTIZE:-}" ]; then
    kc=("$KILN_COMPONENTIZE")
else
    kc=(cargo run -q --manifest-path "$here/../../../Cargo.toml" -p kiln-componentize --)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for world in filter weigher; do
    WORLD=$(echo "$world" | tr a-z A-Z)
    "$clang" --target=wasm32-wasi -mexec-model=reactor -O2 -std=c11 -Wall -Wextra -Werror \
        -Wno-unused-parameter -DKILN_WORLD_$WORLD -I "$here/bindings/$world" -I "$here/src" \
        -Wl,--strip-debug \
        -o "$tmp/$world.wasm" \
        "$here/src/capacity_$world.c" "$here/src/capacity.c" "$here/src/pool_table.c" \
        "$here/bindings/$world/$world.c" "$here/bindings/$world/${world}_component_type.o"
    "${kc[@]}" "$tmp/$world.wasm" "$out/capacity_$world.wasm"
done
