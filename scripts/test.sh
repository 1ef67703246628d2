#!/usr/bin/env bash
# Every test of the project, on a fresh machine too (the set-up steps install what is missing and
# fetch the test models into models/):
# formatting and lints on both targets, native tests (lavapipe Vulkan where there is no GPU), the same
# tests in headless Chromium (WebGPU on SwiftShader), the npm package build, and the demo page
# end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n=== %s\n' "$*"; }
# WEBGPU_INFER_LEAN_DISK=1 (set by .ci/run): delete each build's output once no later step needs it
# (fuzz binaries after the fuzz run, the native test build after the native tests), so a clean run peaks
# at a few GB of disk instead of the sum of all builds.
lean="${WEBGPU_INFER_LEAN_DISK:-0}"
free_disk() { df -Pk . | awk 'NR==2 { printf "%.1f GB free on %s\n", $4 / 1048576, $6 }'; }

step "set-up"
free_disk
scripts/setup.sh
scripts/fetch-models.sh
# wasm-pack runs the wasm-opt it finds first on PATH: npm's binaryen (see scripts/setup.sh).
export PATH="$PWD/node_modules/.bin:$PATH"
# wgpu's Vulkan loader wants a runtime dir; CI machines may have none.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

step "every raw result the README and docs/ cite exists in bench-results/"
missing=$(grep -oh 'bench-results/[A-Za-z0-9_.-]*\.\(jsonl\|txt\)' README.md docs/*.md | sort -u |
  while read -r p; do [ -e "$p" ] || echo "$p"; done)
if [ -n "$missing" ]; then echo "cited but missing: $missing" >&2; exit 1; fi

step "cargo fmt --check"
cargo fmt --all --check
step "clippy (native, wasm32)"
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo clippy --locked --workspace --all-targets --target wasm32-unknown-unknown -- -D warnings

step "fuzz smoke run (cargo-fuzz, 30 s a target)"
scripts/fuzz.sh 30
if [ "$lean" = 1 ]; then rm -rf fuzz/target; free_disk; fi

step "native tests (cargo test)"
cargo test --locked --workspace
if [ "$lean" = 1 ]; then rm -rf target/debug; free_disk; fi

step "browser tests (wasm-pack test --headless --chrome)"
# SwiftShader runs WebGPU on the CPU: allow a test file (all its tests, one page) up to 15 minutes.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-900}"
wasm-pack test --headless --chrome
# The browser tests' build (and clippy's wasm32 check) is not needed again.
if [ "$lean" = 1 ]; then rm -rf target/wasm32-unknown-unknown/debug; free_disk; fi

step "npm package (wasm-pack build --target web --release; the threaded build)"
# Both builds: pkg/ and the threaded pkg-threads/ (scripts/build-threads.sh: a pinned nightly rebuilds
# std with atomics) that the worker mode loads on cross-origin-isolated pages. scripts/build.sh frees the
# first build's target dir before the second in lean mode: CI once ran out of disk in the threaded build.
npm run build
test -f pkg/webgpu_infer.d.ts
test -f pkg-threads/webgpu_infer_bg.wasm
if [ "$lean" = 1 ]; then rm -rf target/threads; free_disk; fi

step "the packed npm package in a Vite app (npm pack, tsc, vite build)"
# What a user installs: the tarball npm would publish, installed into the example app, type-checked
# and bundled; tests/e2e/demo.mjs then opens the bundle.
rm -rf target/npm examples/vite-app/node_modules examples/vite-app/dist
mkdir -p target/npm
npm pack --ignore-scripts --pack-destination target/npm >/dev/null
(
  cd examples/vite-app
  npm install --no-save --no-package-lock --ignore-scripts --no-audit --no-fund --omit=dev \
    ../../target/npm/webgpu-infer-*.tgz >/dev/null
  ../../node_modules/.bin/tsc -p .
  ../../node_modules/.bin/vite build --logLevel warn
)

step "static server serves only the repository (tests/e2e/serve.mjs)"
node tests/e2e/serve.mjs

step "demo page end to end (Playwright, headless Chromium)"
node tests/e2e/demo.mjs

free_disk
step "all tests passed"
