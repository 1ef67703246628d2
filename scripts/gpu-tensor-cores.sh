#!/usr/bin/env bash
# Checks and measures the tensor-core paths written on 2026-12-05 without a GPU (README, "Written, not
# yet run on a GPU"), which stay off unless WEBGPU_INFER_TENSOR_CORES=new, on a GPU machine that has
# f16 cooperative matrices (H100/H200 through Vulkan):
#   scripts/gpu-tensor-cores.sh stage   # here: release examples and test binaries, synthetic-model
#                                       # layouts, into bench-bin/ (carry it with .gl: ~20 MB)
#   scripts/gpu-tensor-cores.sh run     # there (OUT=$OUT): one call, ~4 min
# `run` prints and writes to $OUT/tensor-cores.jsonl:
#   1. the CPU-reference tests with the new paths on (tests/kernels.rs matmul_*, tests/quant.rs
#      matmul_*; tests/bert.rs's goldens when models/all-MiniLM-L6-v2 is there with its real weights);
#   2. the same answers both ways on synthetic weights: MiniLM's vectors (cosine and max |diff|
#      between tensor cores and --no-coop) and SmolLM2's greedy ids and first-step top logits for a
#      300-token prompt;
#   3. A/B in the same binary, alternating, two rounds (TC_ROUNDS): embed --bench 1x128 / 8x128 / 32x128,
#      generate --bench --prompt-tokens 256 / 512, and bench_kernels --ops linear_kernels (every
#      tiled and tensor-core kernel on MiniLM's linears).
# The defaults change only if 1 and 2 pass and 3 shows a win (then remove kernels::new_tensor_core_paths).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/gpu-lib.sh
source scripts/gpu-lib.sh

stage() {
  mkdir -p bench-bin/tc
  cargo build --release --quiet --example generate --example embed --example bench_kernels
  for b in generate embed bench_kernels; do
    strip -o "bench-bin/tc/$b" "target/release/examples/$b"
  done
  for t in kernels quant bert; do
    strip -o "bench-bin/tc/$t-test" "$(test_exe "$t")"
  done
  # xz -c: xz replacing files in place warned "File seems to have been moved" here and, under set -e,
  # ended the stage.
  local f
  for f in bench-bin/tc/*[!z]; do xz -T0 -9 -c "$f" >"$f.xz" && rm "$f"; done
  scripts/fetch-models.sh
  python3 -c "import gguf" 2>/dev/null || python3 -m pip install --quiet gguf
  python3 scripts/synth_gguf.py layout models/SmolLM2-135M-Instruct.Q4_1.gguf bench-bin/smollm2
  python3 scripts/synth_safetensors.py layout models/all-MiniLM-L6-v2 bench-bin/minilm
  # The GPU machine's Python has numpy but not the gguf package synth_gguf.py writes with.
  mkdir -p bench-bin/py
  cp -r "$(python3 -c 'import gguf, os; print(os.path.dirname(gguf.__file__))')" bench-bin/py/
  du -sh bench-bin/tc bench-bin
}

run() {
  : "${OUT:=bench-out}"
  mkdir -p "$OUT"
  local jsonl="$OUT/tensor-cores.jsonl" wb=/tmp/tc models=/tmp/tc-models
  mkdir -p $wb $models
  for f in bench-bin/tc/*.xz; do xz -dc "$f" >"$wb/$(basename "$f" .xz)"; done
  chmod +x $wb/*
  export PYTHONPATH="$PWD/bench-bin/py${PYTHONPATH:+:$PYTHONPATH}"
  python3 scripts/synth_safetensors.py build bench-bin/minilm $models/all-MiniLM-L6-v2 >/dev/null
  python3 scripts/synth_gguf.py build bench-bin/smollm2 $models/SmolLM2-135M-Instruct.Q4_1.gguf >/dev/null
  local gguf=$models/SmolLM2-135M-Instruct.Q4_1.gguf minilm=$models/all-MiniLM-L6-v2
  export WEBGPU_INFER_TENSOR_CORES=new
  echo "== 1. tests against CPU references, new paths on"
  $wb/kernels-test matmul 2>&1 | grep -E "^test |test result|panicked|element" || true
  $wb/quant-test matmul 2>&1 | grep -E "^test |test result|panicked|element" || true
  if [ -f models/all-MiniLM-L6-v2/model.safetensors ]; then
    $wb/bert-test minilm_matches --nocapture 2>&1 | grep -E "cosine|test result|panicked" || true
  else
    echo "(no models/all-MiniLM-L6-v2 here: the goldens test is skipped; 2. compares on synthetic weights)"
  fi
  echo "== 2. same answers with and without tensor cores (synthetic weights)"
  local texts=("a short sentence" "$(printf 'word %.0s' {1..100})" "The quick brown fox jumps over the lazy dog.")
  $wb/embed --model $minilm --json "${texts[@]}" >/tmp/tc-e1.json
  $wb/embed --model $minilm --json --no-coop "${texts[@]}" >/tmp/tc-e2.json
  local prompt
  prompt=$(python3 -c "print(' '.join(['The quick brown fox jumps over the lazy dog near the river bank.'] * 22))")
  $wb/generate --model $gguf --prompt "$prompt" --max-tokens 8 --json >/tmp/tc-g1.json
  $wb/generate --model $gguf --prompt "$prompt" --max-tokens 8 --json --no-coop >/tmp/tc-g2.json
  python3 - "$jsonl" <<'PY'
import json, math, sys
e1, e2 = (json.load(open(f"/tmp/tc-e{i}.json")) for i in (1, 2))
cos = lambda a, b: sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
emb = {"op": "embed_agreement", "adapter": e1["adapter"],
       "cosine_min": min(cos(a, b) for a, b in zip(e1["embeddings"], e2["embeddings"])),
       "max_abs_diff": max(abs(x - y) for a, b in zip(e1["embeddings"], e2["embeddings"]) for x, y in zip(a, b))}
g1, g2 = (json.load(open(f"/tmp/tc-g{i}.json")) for i in (1, 2))
l1, l2 = dict(map(tuple, g1["first_step_top_logits"])), dict(map(tuple, g2["first_step_top_logits"]))
gen = {"op": "generate_agreement", "prompt_tokens": len(g1["prompt_ids"]), "ids_equal": g1["ids"] == g2["ids"],
       "top_ids_equal": list(l1) == list(l2),
       "max_top_logit_diff": max(abs(l1[i] - l2[i]) for i in l1 if i in l2)}
with open(sys.argv[1], "a") as f:
    for o in (emb, gen):
        print(json.dumps(o)); f.write(json.dumps(o) + "\n")
PY
  local rounds="${TC_ROUNDS:-2}"
  echo "== 3. A/B, alternating, $rounds round(s)"
  local r mode s n
  for r in $(seq "$rounds"); do
    for s in 1x128 8x128 32x128; do
      for mode in "" --no-coop; do
        $wb/embed --model $minilm --bench $s $mode 2>&1 | grep '^{' |
          python3 -c "import json,sys; [print(json.dumps({**json.loads(l), 'mode': '${mode:-tensor cores}', 'round': $r})) for l in sys.stdin]" |
          tee -a "$jsonl"
      done
    done
    for n in 256 512; do
      for mode in "" --no-coop; do
        $wb/generate --model $gguf --bench --prompt-tokens $n --max-tokens 16 $mode 2>&1 | grep '^{' |
          python3 -c "import json,sys; [print(json.dumps({**json.loads(l), 'mode': '${mode:-tensor cores}', 'round': $r})) for l in sys.stdin]" |
          tee -a "$jsonl"
      done
    done
  done
  $wb/bench_kernels --ops linear_kernels 2>&1 | grep '^{' | tee -a "$jsonl"
}

case "${1:-}" in
  stage) stage ;;
  run) run ;;
  *) echo "usage: scripts/gpu-tensor-cores.sh stage|run" >&2; exit 2 ;;
esac
