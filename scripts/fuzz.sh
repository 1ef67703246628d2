#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (cargo-fuzz, libFuzzer) for SECONDS each (default 30: the smoke run of
# the test command; the long runs quoted in the README were 600).
#   scripts/fuzz.sh [SECONDS] [TARGET ...]
# Each run starts from the committed seeds (fuzz/seeds/TARGET) plus what earlier runs here found
# (target/fuzz-corpus/TARGET, not committed). A crash, a panic, a hang (10 s an input) or more than
# 2 GiB of memory fails the run; libFuzzer leaves the input in fuzz/artifacts/TARGET/.
# Stable Rust: `-s none` (no sanitizer: the parsers are safe Rust, so what is looked for is panics,
# hangs and runaway allocations), so no nightly toolchain is needed. `-a`: debug assertions, and with
# them integer overflow checks, on in the optimized build (an overflow panics instead of wrapping).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors_header gguf_header model_config tokenizer_input)
# Built once up front; a failed build is retried once (a second failure shows cargo's own output).
if ! cargo fuzz build -s none -O -a; then
  echo "fuzz build failed; retrying once" >&2
  cargo fuzz build -s none -O -a -v
fi
for t in "${targets[@]}"; do
  mkdir -p "target/fuzz-corpus/$t"
  echo "--- fuzz $t for ${seconds}s"
  log="target/fuzz-logs/$t.log"
  mkdir -p target/fuzz-logs
  rc=0
  cargo fuzz run -s none -O -a "$t" "target/fuzz-corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || rc=$?
  grep -E "^Done|^stat::(number_of_executed_units|peak_rss_mb)|ERROR|SUMMARY|panicked" "$log" || true
  if [ "$rc" -ne 0 ]; then
    tail -40 "$log"
    echo "fuzz target $t failed (exit $rc); the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
