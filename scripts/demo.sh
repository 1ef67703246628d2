#!/usr/bin/env bash
# Sets everything up, fetches the demo's model into models/, builds the npm package into pkg/ and
# serves the demo on http://127.0.0.1:8080/www/
# (PORT=... to change the port). Open it in Chrome/Edge, or Safari with WebGPU enabled.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/fetch-models.sh
# wasm-pack runs the wasm-opt it finds first on PATH: npm's binaryen (see scripts/setup.sh).
export PATH="$PWD/node_modules/.bin:$PATH"
npm run build
exec node scripts/serve.mjs --port "${PORT:-8080}"
