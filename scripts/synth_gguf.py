#!/usr/bin/env python3
"""A stand-in for a GGUF model where the real file cannot travel (the GPU machine takes 64 MiB):
the real header (metadata, tokenizer, tensor table) with synthetic tensor data of the same types and
sizes, so decoding costs exactly what it costs with the real weights (the values differ).

    python3 scripts/synth_gguf.py layout models/SmolLM2-135M-Instruct.Q4_1.gguf bench-bin/smollm2
        (here, needs the `gguf` package: writes header.bin and layout.json)
    python3 scripts/synth_gguf.py build bench-bin/smollm2 /tmp/smollm2.gguf
        (there, needs numpy: writes the stand-in file)
"""
import json, os, sys


def layout(src, out_dir):
    import gguf
    r = gguf.GGUFReader(src)
    tensors = [{"name": t.name, "offset": int(t.data_offset), "bytes": int(t.n_bytes),
                "type": t.tensor_type.name} for t in r.tensors]
    start = min(t["offset"] for t in tensors)
    cfg = {k: int(r.fields[f"llama.{k}"].parts[-1][0]) for k in
           ("embedding_length", "feed_forward_length", "block_count", "attention.head_count",
            "attention.head_count_kv", "context_length", "vocab_size")}
    cfg["rope.freq_base"] = float(r.fields["llama.rope.freq_base"].parts[-1][0])
    cfg["attention.layer_norm_rms_epsilon"] = float(
        r.fields["llama.attention.layer_norm_rms_epsilon"].parts[-1][0])
    os.makedirs(out_dir, exist_ok=True)
    with open(src, "rb") as f, open(os.path.join(out_dir, "header.bin"), "wb") as h:
        h.write(f.read(start))
    with open(os.path.join(out_dir, "layout.json"), "w") as f:
        json.dump({"file_len": os.path.getsize(src), "config": cfg, "tensors": tensors}, f)


def build(in_dir, dst):
    import numpy as np
    rng = np.random.default_rng(0)
    meta = json.load(open(os.path.join(in_dir, "layout.json")))
    with open(os.path.join(in_dir, "header.bin"), "rb") as h, open(dst, "wb") as f:
        f.write(h.read())
        for t in sorted(meta["tensors"], key=lambda t: t["offset"]):
            f.seek(t["offset"])
            n = t["bytes"]
            if t["type"] == "F32":
                f.write(np.ones(n // 4, np.float32).tobytes())
                continue
            block = {"Q4_0": 18, "Q4_1": 20, "Q8_0": 34}[t["type"]]
            data = rng.integers(0, 256, size=(n // block, block), dtype=np.uint8)
            scales = np.full((n // block, 2), 0.02, np.float16).view(np.uint8)
            head = 4 if t["type"] == "Q4_1" else 2
            data[:, :head] = scales[:, :head]
            f.write(data.tobytes())
        f.truncate(meta["file_len"])


if __name__ == "__main__":
    {"layout": layout, "build": build}[sys.argv[1]](sys.argv[2], sys.argv[3])
