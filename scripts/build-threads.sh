#!/usr/bin/env bash
# Builds pkg-threads/: the package's WASM with shared memory and atomics, so that the CPU backend's
# kernels run on rayon's pool of Web Workers (wasm-bindgen-rayon). The worker mode loads it when the
# page is cross-origin isolated (js/worker.js); everything else uses pkg/.
# WASM threads need std rebuilt with atomics: a pinned nightly toolchain with rust-src, installed here
# when missing (idempotent). Output: pkg-threads/webgpu_infer{.js,_bg.wasm,.d.ts} and snippets/.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLCHAIN="${THREADS_TOOLCHAIN:-nightly-2026-05-20}"
if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
  echo "[build-threads] rustup toolchain install $TOOLCHAIN"
  # No wasm32 rust-std needed: build-std compiles it from rust-src.
  rustup toolchain install "$TOOLCHAIN" --profile minimal --component rust-src
fi
if ! rustup component list --toolchain "$TOOLCHAIN" --installed | grep -q '^rust-src'; then
  rustup component add rust-src --toolchain "$TOOLCHAIN"
fi
# npm's binaryen (wasm-opt) first, as for pkg/ (scripts/test.sh).
export PATH="$PWD/node_modules/.bin:$PATH"
# Shared, imported memory and the TLS exports wasm-bindgen's thread support needs; simd128 as pkg/,
# and relaxed SIMD: its fused multiply-add (LLVM lowers the GEMM's multiply-adds to
# f32x4.relaxed_madd) makes the sgemm ~1.4x faster in V8. Browsers without relaxed SIMD cannot compile
# this build; js/worker.js checks first and stays on pkg/ (one thread) there.
export RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128,+relaxed-simd \
-C link-arg=--shared-memory -C link-arg=--max-memory=4294967296 -C link-arg=--import-memory \
-C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size -C link-arg=--export=__tls_align \
-C link-arg=--export=__tls_base"
CARGO_TARGET_DIR="${THREADS_TARGET_DIR:-target/threads}" rustup run "$TOOLCHAIN" \
  wasm-pack build --target web --release --out-dir pkg-threads -- --features threads \
  -Z build-std=panic_abort,std
rm -f pkg-threads/.gitignore pkg-threads/package.json pkg-threads/README.md
# wasm-bindgen-rayon's worker imports the package root ('../../..'), which only a bundler resolves:
# point it at the module itself so that plain ES-module hosting works too.
helper=$(ls pkg-threads/snippets/wasm-bindgen-rayon-*/src/workerHelpers.js)
sed -i "s|import('../../..')|import('../../../webgpu_infer.js')|" "$helper"
grep -q "import('../../../webgpu_infer.js')" "$helper"
echo "[build-threads] pkg-threads/ ready"
