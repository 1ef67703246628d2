#!/usr/bin/env bash
# The CPU backend natively against the same peers on the same machine (issue #18's "natively: report
# against the same peers where they run"), JSON lines on stdout:
#   scripts/peers/cpu-native.sh [--threads 2] [--shapes 1x128,8x128] [--rounds 3]
#       MiniLM: `embed --backend cpu --bench` against onnxruntime's CPU execution provider (PyPI wheel,
#       installed into bench-peers/venv-ort once) on models/all-MiniLM-L6-v2/onnx/model.onnx
#       (scripts/peers/cpu_native.py does the timing).
#   scripts/peers/cpu-native.sh --llama [THREADS]
#       SmolLM2-135M Q4_1: `generate --backend cpu --bench` (17-token prompt, 32 new tokens) against
#       llama.cpp's CPU build of llama-bench (-p 17 -n 32) from the source scripts/peers/anchors.sh
#       stages (bench-bin/llama.cpp.txz; `scripts/peers/anchors.sh stage` fetches it), built here once
#       into bench-peers/llama-cpu (cmake and ninja from PyPI in the same venv; ~15 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
ORT_VERSION="${ORT_VERSION:-1.32.0}"
venv=bench-peers/venv-ort
if ! "$venv/bin/python" -c "import onnxruntime, numpy; assert onnxruntime.__version__ == '$ORT_VERSION'" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "onnxruntime==$ORT_VERSION" numpy >&2
fi

if [ "${1:-}" = --llama ]; then
  threads="${2:-2}"
  gguf=models/SmolLM2-135M-Instruct.Q4_1.gguf
  b="$PWD/bench-peers/llama-cpu"
  if [ ! -x "$b/build/bin/llama-bench" ]; then
    [ -f bench-bin/llama.cpp.txz ] || { echo "bench-bin/llama.cpp.txz is missing: scripts/peers/anchors.sh stage" >&2; exit 1; }
    "$venv/bin/pip" install -q cmake ninja >&2
    rm -rf "$b" && mkdir -p "$b" && xz -dc bench-bin/llama.cpp.txz | tar xf - -C "$b"
    sed -i '/miniaudio/d' "$b/llama.cpp/vendor/CMakeLists.txt"
    # GGML_NATIVE: the build uses what this CPU has (AVX-512 here), as our native build does.
    PATH="$PWD/$venv/bin:$PATH" cmake -S "$b/llama.cpp" -B "$b/build" -G Ninja -DGGML_NATIVE=ON \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF \
      -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_APP=OFF -DGGML_CCACHE=OFF -DCMAKE_BUILD_TYPE=Release >&2
    PATH="$PWD/$venv/bin:$PATH" cmake --build "$b/build" -j"$(nproc)" --target llama-bench >&2
  fi
  cargo build --release --example generate >&2
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
  for r in 1 2 3; do
    RAYON_NUM_THREADS=$threads target/release/examples/generate --model "$gguf" --backend cpu --bench \
      --prompt-tokens 17 --max-tokens 32 | grep '^{' | python3 -c "
import json, sys
for l in sys.stdin:
    d = json.loads(l); d.update(engine='webgpu-infer (CPU backend, native)', threads=$threads, round=$r, cpu='$cpu')
    print(json.dumps(d))"
    "$b/build/bin/llama-bench" -m "$gguf" -t "$threads" -p 17 -n 32 -r 3 -o jsonl | python3 -c "
import json, sys
for l in sys.stdin:
    d = json.loads(l); d.update(engine='llama.cpp (CPU, llama-bench)', threads=$threads, round=$r, cpu='$cpu')
    print(json.dumps(d))"
  done
  exit 0
fi

[ -f models/all-MiniLM-L6-v2/onnx/model.onnx ] || {
  echo "models/all-MiniLM-L6-v2/onnx/model.onnx is missing: scripts/export_minilm_onnx.py writes it" >&2; exit 1; }
cargo build --release --example embed >&2
exec "$venv/bin/python" scripts/peers/cpu_native.py "$@"
