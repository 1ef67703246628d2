# Helpers the GPU-machine scripts share (sourced by scripts/gpu-decode.sh and gpu-tensor-cores.sh).

# The path of integration test $1's release binary (built if needed, not run).
test_exe() {
  cargo test --release --test "$1" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("executable") and m.get("target", {}).get("kind") == ["test"]: print(m["executable"])'
}
