#!/usr/bin/env bash
# Fetches the browser engines we measure ourselves against into bench-peers/ (ignored), idempotently,
# from npm at exact versions (`npm pack`: no install scripts, no dependencies pulled in):
#
#   bench-peers/transformers/   @huggingface/transformers 4.3.2: transformers.min.js (it bundles its
#                               own onnxruntime-web 1.31.0-dev), and the WASM that build loads
#                               (ort-wasm-simd-threaded.asyncify.{mjs,wasm} from that onnxruntime-web)
#   bench-peers/wllama/         @wllama/wllama 3.13.0: esm/ (index.js, wasm/wllama.wasm: llama.cpp with
#                               its WebGPU backend and its CPU backend in one build)
#
# onnxruntime-web 1.30.0 itself is a devDependency (node_modules/onnxruntime-web). Used by
# `npm run bench:browser` (www/bench/embed.html, decode.html) and scripts/gpu-web-bench.sh (Deno).
# Not needed by the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[peers] %s\n' "$*" >&2; }

TRANSFORMERS_VERSION=4.3.2
WLLAMA_VERSION=3.13.0
DEST=bench-peers

# npm_pack SPEC DIR: unpacks the package's tarball into DIR (its files under DIR/package/).
npm_pack() {
  local spec=$1 dir=$2
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz)
}

fetch_transformers() {
  local dest=$DEST/transformers
  [ -f "$dest/VERSION" ] && [ "$(cat "$dest/VERSION")" = "$TRANSFORMERS_VERSION" ] && return
  log "@huggingface/transformers $TRANSFORMERS_VERSION"
  local tmp
  tmp=$(mktemp -d)
  npm_pack "@huggingface/transformers@$TRANSFORMERS_VERSION" "$tmp/t"
  # The onnxruntime-web build it was made with (its package.json pins it).
  local ort
  ort=$(node -p "require('$tmp/t/package/package.json').dependencies['onnxruntime-web']")
  log "onnxruntime-web $ort (the one Transformers.js $TRANSFORMERS_VERSION bundles; its WASM)"
  npm_pack "onnxruntime-web@$ort" "$tmp/o"
  rm -rf "$dest"
  mkdir -p "$dest"
  cp "$tmp/t/package/dist/transformers.min.js" "$tmp/t/package/LICENSE" "$dest/"
  cp "$tmp/o/package/dist/ort-wasm-simd-threaded.asyncify.mjs" \
    "$tmp/o/package/dist/ort-wasm-simd-threaded.asyncify.wasm" "$dest/"
  echo "$ort" >"$dest/ORT_VERSION"
  echo "$TRANSFORMERS_VERSION" >"$dest/VERSION"
  rm -rf "$tmp"
}

fetch_wllama() {
  local dest=$DEST/wllama
  [ -f "$dest/VERSION" ] && [ "$(cat "$dest/VERSION")" = "$WLLAMA_VERSION" ] && return
  log "@wllama/wllama $WLLAMA_VERSION"
  local tmp
  tmp=$(mktemp -d)
  npm_pack "@wllama/wllama@$WLLAMA_VERSION" "$tmp/w"
  rm -rf "$dest"
  mkdir -p "$dest/esm/wasm"
  cp "$tmp/w/package/esm/index.js" "$dest/esm/"
  cp "$tmp/w/package/esm/wasm/wllama.wasm" "$dest/esm/wasm/"
  cp "$tmp/w/package/LICENCE" "$dest/"
  echo "$WLLAMA_VERSION" >"$dest/VERSION"
  rm -rf "$tmp"
}

fetch_transformers
fetch_wllama
log "ready: $(du -sh $DEST | cut -f1) in $DEST/"
