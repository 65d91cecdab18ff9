#!/usr/bin/env bash
# Build the JavaScript CapacityFilter and CapacityWeigher into components:
#   build.sh OUTDIR  →  OUTDIR/capacity_filter.wasm, OUTDIR/capacity_weigher.wasm
# Needs jco (npm `@bytecodealliance/jco`, installed by `npm ci` here): $JCO, else
# ./node_modules/.bin/jco. QuickJS backend, synchronous exports; --backend-qjs-stub-wasi
# replaces the WASI imports QuickJS's runtime carries with traps, so the component imports
# only the world's `log` and `config` (Kiln grants filters and weighers no WASI).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
jco=${JCO:-$here/node_modules/.bin/jco}
wit=$here/../../../wit

for plugin in capacity_filter capacity_weigher; do
    world=${plugin#capacity_}
    "$jco" componentize "$here/src/$plugin.js" --wit "$wit" --world-name "$world" \
        --backend qjs --backend-qjs-stub-wasi --backend-qjs-disable-async \
        -o "$out/$plugin.wasm" >/dev/null
done
