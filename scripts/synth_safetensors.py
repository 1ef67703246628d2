#!/usr/bin/env python3
"""A stand-in for a safetensors model folder where the real weights cannot travel (the GPU machine
takes 64 MiB): the real header and every small file of the folder, with synthetic tensor data of the
same dtypes and sizes, so a forward pass costs what it costs with the real weights (values differ).

    python3 scripts/synth_safetensors.py layout models/all-MiniLM-L6-v2 bench-bin/minilm
        (here: copies the header and the small files)
    python3 scripts/synth_safetensors.py build bench-bin/minilm /tmp/models/all-MiniLM-L6-v2
        (there, needs numpy: writes model.safetensors)
"""
import os, shutil, struct, sys


def layout(src, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(src, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = f.read(n)
    with open(os.path.join(out_dir, "header.bin"), "wb") as h:
        h.write(struct.pack("<Q", n) + header)
    for root, _, files in os.walk(src):
        for name in files:
            if name == "model.safetensors" or name.endswith(".onnx"):
                continue
            rel = os.path.relpath(os.path.join(root, name), src)
            os.makedirs(os.path.join(out_dir, "files", os.path.dirname(rel)), exist_ok=True)
            shutil.copy(os.path.join(root, name), os.path.join(out_dir, "files", rel))


def build(in_dir, dst):
    import json
    import numpy as np
    rng = np.random.default_rng(0)
    shutil.copytree(os.path.join(in_dir, "files"), dst, dirs_exist_ok=True)
    with open(os.path.join(in_dir, "header.bin"), "rb") as h:
        raw = h.read()
    meta = json.loads(raw[8:])
    end = max(v["data_offsets"][1] for k, v in meta.items() if k != "__metadata__")
    data = np.zeros(end, dtype=np.uint8)
    for name, t in meta.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        if t["dtype"] == "F32":
            vals = rng.normal(0, 0.05, (b - a) // 4).astype(np.float32)
            if name.endswith("LayerNorm.weight"):
                vals = np.ones_like(vals)
            data[a:b] = vals.view(np.uint8)
        else:
            data[a:b] = rng.integers(0, 256, b - a, dtype=np.uint8)
    with open(os.path.join(dst, "model.safetensors"), "wb") as f:
        f.write(raw)
        f.write(data.tobytes())


if __name__ == "__main__":
    {"layout": layout, "build": build}[sys.argv[1]](*sys.argv[2:])
