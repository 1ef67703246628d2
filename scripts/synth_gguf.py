#!/usr/bin/env python3
"""A stand-in for a GGUF model where the real file cannot travel (the GPU machine takes 64 MiB):
the real header (metadata, tokenizer, tensor table) with synthetic tensor data of the same types and
sizes, so decoding costs exactly what it costs with the real weights (the values differ).

    python3 scripts/synth_gguf.py layout models/SmolLM2-135M-Instruct.Q4_1.gguf bench-bin/smollm2
        (here, needs the `gguf` package: writes header.bin and layout.json)
    python3 scripts/synth_gguf.py build bench-bin/smollm2 /tmp/smollm2.gguf
        (there, needs numpy: writes the stand-in file)
    python3 scripts/synth_gguf.py q4km models/SmolLM2-135M-Instruct.Q4_1.gguf bench-bin/smollm2-q4km
        (here: the layout of the same model as llama.cpp's Q4_K_M would type its tensors; see `q4km`)
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


# type: (block bytes, [(byte offset of an f16 field, its value)])
BLOCKS = {
    "Q4_0": (18, [(0, 0.02)]), "Q4_1": (20, [(0, 0.02), (2, 0.02)]), "Q8_0": (34, [(0, 0.02)]),
    "Q5_0": (22, [(0, 0.02)]), "Q5_1": (24, [(0, 0.02), (2, 0.02)]), "IQ4_NL": (18, [(0, 0.002)]),
    "Q4_K": (144, [(0, 0.001), (2, 0.001)]), "Q5_K": (176, [(0, 0.001), (2, 0.001)]),
    "Q6_K": (210, [(208, 0.0002)]),
}


def q4km(src, out_dir):
    """The model's header with its tensors typed as llama.cpp's Q4_K_M types them (llama-quant.cpp's
    llama_tensor_get_type for a llama model): Q4_K by default; Q6_K for the output (the token
    embedding when tied) and for attn_v and ffn_down in the "more bits" layers (the first and last
    eighth, and every third between); rows that are not whole 256-element super-blocks fall back to
    Q5_0 (for Q4_K) and Q8_0 (for Q6_K). Written as header.bin + layout.json, as `layout` writes them."""
    import tempfile
    import gguf
    import numpy as np
    from gguf import GGMLQuantizationType as T
    r = gguf.GGUFReader(src)
    n_layer = int(r.fields["llama.block_count"].parts[-1][0])
    tied = not any(t.name == "output.weight" for t in r.tensors)

    def more_bits(i):
        return i < n_layer // 8 or i >= 7 * n_layer // 8 or (i - n_layer // 8) % 3 == 2

    def qtype(name, cols):
        if name == "output.weight" or (tied and name == "token_embd.weight"):
            t = T.Q6_K
        elif ".attn_v." in name or ".ffn_down." in name:
            t = T.Q6_K if more_bits(int(name.split(".")[1])) else T.Q4_K
        else:
            t = T.Q4_K
        if cols % 256:
            t = {T.Q4_K: T.Q5_0, T.Q6_K: T.Q8_0}[t]
        return t

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "q4km.gguf")
        w = gguf.GGUFWriter(path, r.fields["general.architecture"].contents())
        for key, field in r.fields.items():
            if key.startswith("GGUF.") or key == "general.architecture":
                continue
            sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            value = field.contents()
            if key == "general.file_type":
                value = 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M
            w.add_key_value(key, value, field.types[0], sub_type=sub)
        for t in r.tensors:
            shape = [int(d) for d in reversed(t.shape)]  # rows first
            if t.tensor_type.name in ("F32", "F16"):
                w.add_tensor(t.name, np.zeros(shape, np.float32))
                continue
            q = qtype(t.name, shape[-1])
            size, _ = gguf.GGML_QUANT_SIZES[q]
            _, block = gguf.GGML_QUANT_SIZES[q]
            rows = int(np.prod(shape[:-1]))
            w.add_tensor(t.name, np.zeros((rows, shape[-1] // size * block), np.uint8),
                         raw_shape=(rows, shape[-1] // size * block), raw_dtype=q)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        layout(path, out_dir)
        types = {}
        for t in gguf.GGUFReader(path).tensors:
            types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
        print(f"{out_dir}: {types}")


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
            block, halves = BLOCKS[t["type"]]
            data = rng.integers(0, 256, size=(n // block, block), dtype=np.uint8)
            for at, value in halves:  # finite f16 scales and minimums
                data[:, at:at + 2] = np.full((n // block, 1), value, np.float16).view(np.uint8)
            f.write(data.tobytes())
        f.truncate(meta["file_len"])


if __name__ == "__main__":
    {"layout": layout, "build": build, "q4km": q4km}[sys.argv[1]](sys.argv[2], sys.argv[3])
