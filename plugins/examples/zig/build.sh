#!/usr/bin/env bash
# Build the Zig CapacityFilter and CapacityWeigher into components:
#   build.sh OUTDIR  →  OUTDIR/capacity_filter.wasm, OUTDIR/capacity_weigher.wasm
# Needs Zig 0.17 ($ZIG, else `zig`; PyPI `ziglang` ships it: `python -m ziglang`) and
# kiln-componentize ($KILN_COMPONENTIZE, else `cargo run -p kiln-componentize`).
#
# Zig works over the C bindings of ../c/bindings (from `wit-bindgen c`): `zig translate-c`
# turns the world's header into the Zig module `world`, and the bindings' C file and
# component-type object are compiled in. Zig's own wasi-libc gives malloc without any WASI
# import; the component imports only the world's `log` and `config`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
read -r -a zig <<< "${ZIG:-zig}"
if [ -n "${KILN_COMPONENTIZE:-}" ]; then
    kc=("$KILN_COMPONENTIZE")
else
    kc=(cargo run -q --manifest-path "$here/../../../Cargo.toml" -p kiln-componentize --)
fi
bindings=$here/../c/bindings
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export ZIG_LOCAL_CACHE_DIR=${ZIG_LOCAL_CACHE_DIR:-$tmp/zig-cache}

for world in filter weigher; do
    "${zig[@]}" translate-c -lc -target wasm32-wasi -I "$bindings/$world" \
        "$bindings/$world/$world.h" > "$tmp/world_$world.zig"
    "${zig[@]}" build-exe -target wasm32-wasi -O ReleaseSmall -fno-entry -mexec-model=reactor \
        -lc -fstrip --name "$world" -femit-bin="$tmp/$world.wasm" \
        --dep world -Mroot="$here/src/capacity_$world.zig" \
        -I "$bindings/$world" "$bindings/$world/$world.c" "$bindings/$world/${world}_component_type.o" \
        -Mworld="$tmp/world_$world.zig"
    "${kc[@]}" "$tmp/$world.wasm" "$out/capacity_$world.wasm"
done
