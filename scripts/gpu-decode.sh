#!/usr/bin/env bash
# Decoding speed on a GPU machine (#15): this tree's binaries against an older commit's, and the
# decode kernels' knobs, in one call.
#   BASE=<commit> scripts/gpu-decode.sh stage   # here: release binaries of this tree and of BASE (its
#                                               # `generate`), the CPU-reference tests, the synthetic
#                                               # SmolLM2 layout, into bench-bin/dec (~15 MB with .gl)
#   scripts/gpu-decode.sh run                   # there (OUT=$OUT): ~9 min; DEC_TESTS, DEC_VARIANTS,
#                                               # DEC_ROUNDS, DEC_CHAINS=0 pick less
# `run` writes to $OUT/decode.jsonl (and prints):
#   1. the CPU-reference tests of the attention, quantized-GEMV, sampling and LLaMA kernels on this GPU (its
#      subgroup paths, which CI's adapters do not take);
#   2. the same greedy ids and first-step logits from BASE's and this tree's `generate` (synthetic
#      SmolLM2-135M Q4_1, a 300-token prompt);
#   3. A/B, alternating, DEC_ROUNDS rounds (default 2): `generate --bench --prompt-tokens 15
#      --max-tokens 128 | 512`, BASE against this tree, this tree with the knobs
#      WEBGPU_INFER_DECODE_VEC_V=0, WEBGPU_INFER_GEMV_UNROLL, WEBGPU_INFER_DECODE_SPLIT_KEYS, and
#      `--web-like` (the kernels a browser gets) both ways;
#   4. bench_kernels' dispatch chains; before 3, a per-kernel profile and the steps' GPU times (this
#      tree, `generate --bench --profile`).
# Further builds staged as bench-bin/dec/generate-x-NAME.xz run as variant x-NAME (with DEC_VARIANTS
# naming it); DEC_ENVS="TAG:VAR=V,VAR2=V2 …" runs this tree's build with those variables as new-TAG.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/gpu-lib.sh
source scripts/gpu-lib.sh

stage() {
  : "${BASE:?BASE=<commit> to compare with}"
  local d=bench-bin/dec
  mkdir -p $d
  cargo build --release --quiet --example generate --example bench_kernels
  for b in generate bench_kernels; do strip -o "$d/$b" "target/release/examples/$b"; done
  for t in attention quant llama sample; do strip -o "$d/$t-test" "$(test_exe $t)"; done
  local wt=/tmp/webgpu-infer-base
  rm -rf $wt && git worktree prune && git worktree add -q -f $wt "$BASE"
  (cd $wt && CARGO_TARGET_DIR="$OLDPWD/target-base" cargo build --release --quiet --example generate)
  strip -o "$d/generate-base" target-base/release/examples/generate
  git -C . rev-parse --short "$BASE" >"$d/base.txt"
  local f
  for f in "$d"/*; do
    case $f in *.xz | *.txt) ;; *) xz -T0 -9 -c "$f" >"$f.xz" && rm "$f" ;; esac
  done
  scripts/fetch-models.sh
  python3 -c "import gguf" 2>/dev/null || python3 -m pip install --quiet gguf
  python3 scripts/synth_gguf.py layout models/SmolLM2-135M-Instruct.Q4_1.gguf bench-bin/smollm2
  mkdir -p bench-bin/py
  cp -r "$(python3 -c 'import gguf, os; print(os.path.dirname(gguf.__file__))')" bench-bin/py/
  du -sh $d bench-bin/smollm2 bench-bin/py
}

# Runs `generate` ($1: binary, $2: tag, rest: env and flags) and appends its JSON lines, tagged.
gen() {
  local bin=$1 tag=$2
  shift 2
  local envs=() flags=()
  for a in "$@"; do
    case $a in *=*) envs+=("$a") ;; *) flags+=("$a") ;; esac
  done
  env ${envs[@]+"${envs[@]}"} "$WB/$bin" --model "$GGUF" --bench "${flags[@]}" 2>&1 | grep '^{' |
    python3 -c "import json,sys
for l in sys.stdin:
    o = {**json.loads(l), 'variant': '$tag', 'round': $ROUND}
    print(json.dumps(o))" | tee -a "$JSONL" |
    python3 -c "import json,sys
for l in sys.stdin:
    o = json.loads(l)
    if o.get('op') == 'decode': print('$tag', o.get('prompt_tokens'), o.get('new_tokens'), round(o['decode_tok_s'], 1), 'tok/s', round(o.get('ttft_ms', 0), 2), 'ms ttft')" ||
    echo "$tag: no result"
}

run() {
  : "${OUT:=bench-out}"
  mkdir -p "$OUT"
  WB=/tmp/dec
  JSONL="$OUT/decode.jsonl"
  GGUF=/tmp/dec-models/SmolLM2-135M-Instruct.Q4_1.gguf
  mkdir -p $WB /tmp/dec-models
  local f
  for f in bench-bin/dec/*.xz; do xz -dc "$f" >"$WB/$(basename "$f" .xz)"; done
  chmod +x $WB/*
  export PYTHONPATH="$PWD/bench-bin/py${PYTHONPATH:+:$PYTHONPATH}"
  python3 scripts/synth_gguf.py build bench-bin/smollm2 $GGUF >/dev/null
  echo "base: $(cat bench-bin/dec/base.txt)"
  echo "== 1. CPU-reference tests on this GPU"
  for t in ${DEC_TESTS-attention quant llama sample}; do
    timeout 240 $WB/$t-test 2>&1 | grep -E "^test .*(FAILED|panicked)|test result|panicked" || true
  done
  echo "== 2. same answers as BASE (synthetic weights, 300-token prompt)"
  local prompt
  prompt=$(python3 -c "print(' '.join(['The quick brown fox jumps over the lazy dog near the river bank.'] * 22))")
  $WB/generate-base --model $GGUF --prompt "$prompt" --max-tokens 16 --json >/tmp/dec-g1.json
  $WB/generate --model $GGUF --prompt "$prompt" --max-tokens 16 --json >/tmp/dec-g2.json
  python3 - "$JSONL" <<'PY'
import json, sys
g1, g2 = (json.load(open(f"/tmp/dec-g{i}.json")) for i in (1, 2))
l1, l2 = dict(map(tuple, g1["first_step_top_logits"])), dict(map(tuple, g2["first_step_top_logits"]))
o = {"op": "generate_agreement", "vs": "base", "prompt_tokens": len(g1["prompt_ids"]),
     "ids_equal": g1["ids"] == g2["ids"], "top_ids_equal": list(l1) == list(l2),
     "max_top_logit_diff": max(abs(l1[i] - l2[i]) for i in l1 if i in l2)}
print(json.dumps(o))
open(sys.argv[1], "a").write(json.dumps(o) + "\n")
PY
  echo "== 3. profile (first: a call cut short still has it)"
  local ROUND=0
  gen generate new-profile --profile --prompt-tokens 128 --max-tokens 16 >/dev/null
  grep '"new-profile"' "$JSONL" | python3 -c "import json,sys
for l in sys.stdin:
    o = json.loads(l)
    if o.get('op') == 'profile' and o.get('phase') == 'decode_step': print(o['kernel'], o['dispatches'], round(o['gpu_ms'] * 1e3 / o['dispatches'], 2), 'us')
    if o.get('op') == 'step_times': print(json.dumps(o))" || true
  echo "== 3b. A/B, alternating"
  local n v
  local variants=" ${DEC_VARIANTS-base new vecv0 unroll8 unroll2 split web-like} "
  for ROUND in $(seq "${DEC_ROUNDS:-2}"); do
    for n in 128 512; do
      for v in base new vecv0 unroll8 unroll2 $(ls $WB | sed -n 's/^generate-\(x-.*\)/\1/p'); do
        [[ $variants == *" $v "* ]] || continue
        case $v in
          base) gen generate-base base --prompt-tokens 15 --max-tokens $n ;;
          new) gen generate new --prompt-tokens 15 --max-tokens $n ;;
          vecv0) gen generate new-vecv0 WEBGPU_INFER_DECODE_VEC_V=0 --prompt-tokens 15 --max-tokens $n ;;
          unroll*) gen generate new-$v WEBGPU_INFER_GEMV_UNROLL=${v#unroll} --prompt-tokens 15 --max-tokens $n ;;
          x-*) gen generate-$v $v --prompt-tokens 15 --max-tokens $n ;;
        esac
      done
    done
    # DEC_ENVS="TAG:VAR=V,VAR2=V2 …": this tree with those knobs, as variant new-TAG.
    local item
    for item in ${DEC_ENVS:-}; do
      local envs
      IFS=, read -r -a envs <<<"${item#*:}"
      for n in 128 512; do
        gen generate "new-${item%%:*}" "${envs[@]}" --prompt-tokens 15 --max-tokens $n
      done
    done
    if [[ $variants == *" split "* ]]; then
      gen generate new-split128 WEBGPU_INFER_DECODE_SPLIT_KEYS=128 --prompt-tokens 15 --max-tokens 512
      gen generate new-split1024 WEBGPU_INFER_DECODE_SPLIT_KEYS=1024 --prompt-tokens 15 --max-tokens 512
    fi
    if [[ $variants == *" web-like "* ]]; then
      gen generate-base base-web-like --web-like --prompt-tokens 15 --max-tokens 128
      gen generate new-web-like --web-like --prompt-tokens 15 --max-tokens 128
    fi
  done
  echo "== 4. dispatch chains"
  [ "${DEC_CHAINS:-1}" = 1 ] || return 0
  $WB/bench_kernels --ops chain 2>&1 | grep '^{' | tee -a "$JSONL" | python3 -c "import json,sys
for l in sys.stdin:
    o = json.loads(l); print(o['kernel'], o['dependent'], o['us'], o.get('gpu_us'))" || true
}

case "${1:-}" in
  stage) stage ;;
  run) run ;;
  *) echo "usage: BASE=<commit> scripts/gpu-decode.sh stage | scripts/gpu-decode.sh run" >&2; exit 2 ;;
esac
