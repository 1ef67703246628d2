#!/usr/bin/env bash
# `npm run build`: the npm package's two WASM builds, pkg/ (wasm-pack, release) and the threaded
# pkg-threads/ (scripts/build-threads.sh). With WEBGPU_INFER_LEAN_DISK=1 (CI) the first build's
# target/wasm32-unknown-unknown is deleted before the second starts: only pkg/ is needed from it, and
# the threaded build (std rebuilt from source) is the largest of all, so the two must not add up.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
wasm-pack build --target web --release
rm -f pkg/.gitignore
if [ "${WEBGPU_INFER_LEAN_DISK:-0}" = 1 ]; then
  rm -rf target/wasm32-unknown-unknown
  df -Pk . | awk 'NR==2 { printf "%.1f GB free on %s\n", $4 / 1048576, $6 }'
fi
scripts/build-threads.sh
