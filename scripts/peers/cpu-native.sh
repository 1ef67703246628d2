#!/usr/bin/env bash
# The CPU backend natively against onnxruntime's CPU execution provider on the same machine (issue
# #18's "natively: report against the same peers"): builds the embed example, installs onnxruntime
# (PyPI wheel) into bench-peers/venv-ort once, then runs scripts/peers/cpu_native.py with the flags
# given (--threads N, --shapes 1x128,8x128, --rounds R). JSON lines on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
ORT_VERSION="${ORT_VERSION:-1.32.0}"
venv=bench-peers/venv-ort
if ! "$venv/bin/python" -c "import onnxruntime, numpy; assert onnxruntime.__version__ == '$ORT_VERSION'" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "onnxruntime==$ORT_VERSION" numpy >&2
fi
[ -f models/all-MiniLM-L6-v2/onnx/model.onnx ] || {
  echo "models/all-MiniLM-L6-v2/onnx/model.onnx is missing: scripts/export_minilm_onnx.py writes it" >&2; exit 1; }
cargo build --release --example embed >&2
exec "$venv/bin/python" scripts/peers/cpu_native.py "$@"
