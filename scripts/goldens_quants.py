#!/usr/bin/env python3
"""Goldens for the quantized kernels: random blocks of every GGML format the library reads, and their
values as the `gguf` package (llama.cpp's own Python reader, gguf-py) dequantizes them, written to
tests/goldens/quants/<type>.blocks (the blocks, as a GGUF file stores them) and <type>.f32 (the values,
little-endian f32, row-major), with manifest.json (counts, seed, package versions).

    pip install gguf numpy
    python3 scripts/goldens_quants.py

tests/quant.rs reads them (prefixes and windows of the blocks make its matrices) and checks the GPU's
dequantization, gather and every GEMV kernel against them. The blocks are random bytes with the f16
fields (scales, minimums) set to finite values of the sizes real weights have, so that every value is
under ~1 in magnitude, like a model's: the quants, 6-bit scales, high bits and signs cover their whole
ranges.
"""
import json
import os
from importlib.metadata import version

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "goldens", "quants")
SEED = 20261204
ELEMENTS = 32768  # per type: 1024 blocks of 32, or 128 super-blocks of 256

# name: (GGML type, block elements, block bytes, [(f16 field byte offset, low, high), ...])
FORMATS = {
    "q4_0": (T.Q4_0, 32, 18, [(0, 0.002, 0.05)]),
    "q4_1": (T.Q4_1, 32, 20, [(0, 0.002, 0.05), (2, -0.3, 0.3)]),
    "q5_0": (T.Q5_0, 32, 22, [(0, 0.002, 0.03)]),
    "q5_1": (T.Q5_1, 32, 24, [(0, 0.002, 0.03), (2, -0.3, 0.3)]),
    "q8_0": (T.Q8_0, 32, 34, [(0, 0.0005, 0.004)]),
    "q4_k": (T.Q4_K, 256, 144, [(0, 0.0002, 0.0008), (2, 0.0002, 0.0008)]),
    "q5_k": (T.Q5_K, 256, 176, [(0, 0.0001, 0.0004), (2, 0.0002, 0.0008)]),
    "q6_k": (T.Q6_K, 256, 210, [(208, 0.00005, 0.0002)]),
    "iq4_nl": (T.IQ4_NL, 32, 18, [(0, 0.0005, 0.004)]),
    "q2_k": (T.Q2_K, 256, 84, [(80, 0.002, 0.008), (82, 0.002, 0.008)]),
    "q3_k": (T.Q3_K, 256, 110, [(108, 0.0005, 0.002)]),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    manifest = {
        "script": "scripts/goldens_quants.py",
        "seed": SEED,
        "gguf": version("gguf"),
        "numpy": np.__version__,
        "dequantizer": "gguf.quants.dequantize",
        "types": {},
    }
    for name, (qtype, elems, nbytes, halves) in FORMATS.items():
        n = ELEMENTS // elems
        blocks = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
        for offset, lo, hi in halves:
            v = rng.uniform(lo, hi, size=n).astype(np.float16)
            blocks[:, offset : offset + 2] = v.view(np.uint8).reshape(n, 2)
        raw = blocks.reshape(-1)
        values = dequantize(raw, qtype).astype("<f4").reshape(-1)
        assert values.size == ELEMENTS and np.isfinite(values).all(), name
        raw.tofile(os.path.join(OUT, f"{name}.blocks"))
        values.tofile(os.path.join(OUT, f"{name}.f32"))
        manifest["types"][name] = {
            "ggml_type": int(qtype),
            "blocks": n,
            "block_elements": elems,
            "block_bytes": nbytes,
            "max_abs": float(np.abs(values).max()),
        }
        print(f"{name}: {n} blocks, max |w| {np.abs(values).max():.3f}")
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
