#!/usr/bin/env bash
# The native anchors of issue #15, next to our native engine, in one call on the GPU machine:
# llama.cpp (CUDA, built there from source) decoding and prefilling the same GGUF, PyTorch's cuBLAS
# matmuls, SDPA attention and eager BERT (scripts/peers/torch_anchors.py), and ours
# (generate --bench, bench_kernels, embed --bench) on the same GPU.
#
#   scripts/peers/anchors.sh stage   # here: fills bench-bin/ (ignored) with what travels
#   scripts/peers/anchors.sh run     # there: JSON lines on stdout and in $OUT/anchors.jsonl
#
# What travels (carry `bench-bin` and `.gl`, the Vulkan loader of ../shared/ENVIRONMENT.md): llama.cpp's
# source as the llama-cpp-python sdist on PyPI vendors it (LLAMA_CPP_PYTHON_VERSION), trimmed to what
# builds llama-bench (~7 MB as xz); our stripped release examples; the model headers
# (scripts/synth_gguf.py / synth_safetensors.py write synthetic weights of the real types and sizes
# there). The build takes ~4 min on the machine's 16 cores; it is kept in /tmp/llama-build while the
# machine stays warm, and `run` skips it then.
#
# Env for `run`: ONLY (llama,torch,ours; default all), NEW_TOKENS (llama.cpp's -n and our
# --max-tokens; 128,512), PROMPTS (llama.cpp's -p; 15,512), REPS (llama.cpp's -r; 5), KERNELS_ONLY
# (torch and ours run only these kernel benchmarks, e.g. `attention` or `matmul,attention`: no
# decoding or embedding; the binary then needed is bench-bin/bench_kernels.gz alone), and with it
# KERNEL_ENVS="TAG:VAR=V,VAR2=V2 …" (ours again with those knobs, lines tagged "knobs": TAG).
# Every line carries "engine" (llama.cpp CUDA, torch, webgpu-infer) and "gpu".
set -euo pipefail
cd "$(dirname "$0")/../.."
log() { printf '[anchors] %s\n' "$*" >&2; }
LLAMA_CPP_PYTHON_VERSION=0.3.36

stage_llama_cpp() {
  [ -f bench-bin/llama.cpp.txz ] && [ "$(cat bench-bin/llama.cpp.version 2>/dev/null)" = "$LLAMA_CPP_PYTHON_VERSION" ] && return
  log "llama.cpp source (llama-cpp-python $LLAMA_CPP_PYTHON_VERSION sdist, PyPI)"
  local tmp url
  tmp=$(mktemp -d)
  local index=https://pypi.org/pypi/llama-cpp-python/json
  url=$(curl -fsSL "$index" | python3 -c 'import json,sys,urllib.parse
rel = json.load(sys.stdin)["releases"][sys.argv[2]]
print(urllib.parse.urljoin(sys.argv[1], next(u["url"] for u in rel if u["packagetype"] == "sdist")))' \
    "$index" "$LLAMA_CPP_PYTHON_VERSION")
  curl -fsSL -o "$tmp/sdist.tgz" "$url"
  tar xzf "$tmp/sdist.tgz" -C "$tmp"
  local src="$tmp/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
  # Only llama-bench is built: the other tools' folders (and their vendored audio library) stay here.
  find "$src/tools" -mindepth 1 -maxdepth 1 ! -name llama-bench ! -name CMakeLists.txt -exec rm -rf {} +
  printf 'find_package(Threads REQUIRED)\nllama_add_compile_flags()\nadd_subdirectory(llama-bench)\n' \
    >"$src/tools/CMakeLists.txt"
  rm -rf "$src/vendor/miniaudio"
  tar cf - -C "$src" --transform 's,^,llama.cpp/,' CMakeLists.txt cmake ggml src include common tools \
    vendor licenses LICENSE $(cd "$src" && ls -d app pocs 2>/dev/null) | xz -T0 -6 >bench-bin/llama.cpp.txz
  echo "$LLAMA_CPP_PYTHON_VERSION" >bench-bin/llama.cpp.version
  rm -rf "$tmp"
}

stage() {
  mkdir -p bench-bin
  stage_llama_cpp
  log "native release examples"
  cargo build --release --quiet --example generate --example embed --example bench_kernels
  for b in generate embed bench_kernels; do
    strip -o "bench-bin/$b" "target/release/examples/$b"
    gzip -f -9 "bench-bin/$b"
  done
  scripts/fetch-models.sh
  python3 -c "import gguf" 2>/dev/null || python3 -m pip install --quiet gguf
  python3 scripts/synth_gguf.py layout models/SmolLM2-135M-Instruct.Q4_1.gguf bench-bin/smollm2
  python3 scripts/synth_safetensors.py layout models/all-MiniLM-L6-v2 bench-bin/minilm
  du -sh bench-bin
}

build_llama_cpp() {
  local b=/tmp/llama-build
  [ -x $b/build/bin/llama-bench ] && return
  log "building llama-bench (CUDA, sm_90)"
  mkdir -p $b && xz -dc bench-bin/llama.cpp.txz | tar xf - -C $b
  # The trimmed source has no vendor/miniaudio (only the audio tools use it).
  sed -i '/miniaudio/d' $b/llama.cpp/vendor/CMakeLists.txt
  local t0=$SECONDS
  cmake -S $b/llama.cpp -B $b/build -G Ninja -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_APP=OFF -DGGML_CCACHE=OFF \
    -DCMAKE_BUILD_TYPE=Release >$b/configure.log 2>&1 || { tail -30 $b/configure.log >&2; return 1; }
  cmake --build $b/build -j"$(nproc)" --target llama-bench >$b/build.log 2>&1 || { tail -40 $b/build.log >&2; return 1; }
  log "llama-bench built in $((SECONDS - t0)) s"
}

run() {
  : "${OUT:=bench-out}"
  mkdir -p "$OUT" /tmp/anchors/models
  local only="${ONLY:-llama,torch,ours}" tokens="${NEW_TOKENS:-128,512}" prompts="${PROMPTS:-15,512}"
  local models=/tmp/anchors/models wb=/tmp/anchors jsonl="$OUT/anchors.jsonl"
  local gpu
  gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1 || echo unknown)
  : >"$jsonl"
  tag() { # adds "engine" and "gpu" to each JSON line of stdin; other lines go to stderr
    python3 -c 'import json,sys
for l in sys.stdin:
    l=l.strip()
    if not l.startswith("{"): print(l, file=sys.stderr); continue
    o=json.loads(l); o.setdefault("engine", sys.argv[1]); o["gpu"]=sys.argv[2]; print(json.dumps(o), flush=True)' "$1" "$gpu" |
      tee -a "$jsonl"
  }
  if [ -n "${KERNELS_ONLY:-}" ]; then
    [[ $only == *torch* ]] && python3 scripts/peers/torch_anchors.py --ops "$KERNELS_ONLY" 2>&1 | tag torch
    if [[ $only == *ours* ]]; then
      gzip -dc bench-bin/bench_kernels.gz >"$wb/bench_kernels" && chmod +x "$wb/bench_kernels"
      $wb/bench_kernels --ops "$KERNELS_ONLY" 2>&1 | tag webgpu-infer
      # KERNEL_ENVS="TAG:VAR=V,VAR2=V2 …": the same benchmarks again with those knobs, "knobs": TAG.
      local item
      for item in ${KERNEL_ENVS:-}; do
        local envs
        IFS=, read -r -a envs <<<"${item#*:}"
        env "${envs[@]}" $wb/bench_kernels --ops "$KERNELS_ONLY" 2>&1 |
          python3 -c 'import json,sys
for l in sys.stdin:
    if l.startswith("{"): o=json.loads(l); o["knobs"]=sys.argv[1]; l=json.dumps(o)
    print(l.rstrip(), flush=True)' "${item%%:*}" | tag webgpu-infer
      done
    fi
    log "wrote $jsonl"
    return
  fi
  python3 scripts/synth_gguf.py build bench-bin/smollm2 $models/SmolLM2-135M-Instruct.Q4_1.gguf
  local gguf=$models/SmolLM2-135M-Instruct.Q4_1.gguf
  if [[ $only == *llama* ]]; then
    build_llama_cpp
    log "llama-bench"
    /tmp/llama-build/build/bin/llama-bench -m "$gguf" -ngl 99 -p "$prompts" -n "$tokens" \
      -r "${REPS:-5}" -o jsonl | tag "llama.cpp CUDA"
  fi
  if [[ $only == *torch* ]]; then
    log "torch"
    python3 scripts/peers/torch_anchors.py 2>&1 | tag torch
  fi
  if [[ $only == *ours* ]]; then
    log "ours (native wgpu)"
    for b in generate embed bench_kernels; do
      gzip -dc "bench-bin/$b.gz" >"$wb/$b" && chmod +x "$wb/$b"
    done
    python3 scripts/synth_safetensors.py build bench-bin/minilm $models/all-MiniLM-L6-v2
    for n in ${tokens//,/ }; do
      $wb/generate --model "$gguf" --bench --prompt-tokens 15 --max-tokens "$n" 2>&1 | tag webgpu-infer
    done
    for p in ${prompts//,/ }; do
      $wb/generate --model "$gguf" --bench --prompt-tokens "$p" --max-tokens 1 2>&1 | tag webgpu-infer
    done
    for s in 1x128 8x128 32x128; do
      $wb/embed --model $models/all-MiniLM-L6-v2 --bench $s 2>&1 | tag webgpu-infer
    done
    $wb/bench_kernels --ops matmul,attention 2>&1 | tag webgpu-infer
  fi
  log "wrote $jsonl"
}

case "${1:-}" in
  stage) stage ;;
  run) run ;;
  *) echo "usage: $0 stage | run" >&2; exit 2 ;;
esac
