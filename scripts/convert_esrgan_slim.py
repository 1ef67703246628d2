#!/usr/bin/env python3
"""Converts the RDN super-resolution models of the @upscalerjs/esrgan-slim npm package (TF.js layers
format: model.json + one float32 weight shard) to safetensors, with a config.json that the library reads.

    python3 scripts/convert_esrgan_slim.py PACKAGE_DIR OUT_DIR     # PACKAGE_DIR: the unpacked npm tarball

Writes OUT_DIR/x{2,3,4,8}/model.safetensors (+ config.json). Kernels are stored in PyTorch's layout,
[out, in, kh, kw] (TF.js keeps [kh, kw, in, out]), biases as they are; tensor names are the Keras layer
names ("F_0.weight", "F_0.bias"). Plain Python (no numpy), so the test set-up needs nothing installed.
"""
import json
import os
import re
import sys

from array import array

from safetensors_write import write_safetensors


def convert(model_dir, out_dir):
    spec = json.load(open(os.path.join(model_dir, "model.json")))
    topo = spec["modelTopology"]["model_config"]["config"]
    layers = {l["name"]: l for l in topo["layers"]}
    manifest = spec["weightsManifest"]
    tensors = {}
    for group in manifest:
        blob = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            if w["dtype"] != "float32" or "quantization" in w:
                raise SystemExit(f"{w['name']}: only unquantized float32 weights are handled")
            shape = w["shape"]
            n = 1
            for d in shape:
                n *= d
            arr = array("f")
            arr.frombytes(blob[off : off + 4 * n])
            if sys.byteorder != "little":
                arr.byteswap()
            off += 4 * n
            layer, kind = w["name"].split("/")
            if kind == "kernel":
                tensors[f"{layer}.weight"] = hwio_to_oihw(arr, shape)
            elif kind == "bias":
                tensors[f"{layer}.bias"] = (arr, shape)
            else:
                raise SystemExit(f"unexpected weight {w['name']}")
        if off != len(blob):
            raise SystemExit(f"{model_dir}: {len(blob) - off} bytes of the weight shard left unread")

    # The RDN hyper-parameters, read off the layer names (F_{d}_{c}: conv c of dense block d) and shapes.
    blocks = sorted({int(m.group(1)) for n in layers if (m := re.fullmatch(r"F_(\d+)_(\d+)", n))})
    convs = sorted({int(m.group(1)) for n in layers if (m := re.fullmatch(r"F_1_(\d+)", n))})
    up = layers["UPsample"]["config"]["size"]
    config = {
        "architecture": "rdn",
        "scale": int(up[0]),
        "D": len(blocks),
        "C": len(convs),
        "G": tensors["F_1_1.weight"][1][0],
        "G0": tensors["F_0.weight"][1][0],
        "upsample": "nearest",
        "input_range": [0, 255],
        "output_range": [0, 255],
        "source": "@upscalerjs/esrgan-slim " + os.path.basename(model_dir),
    }
    if up[0] != up[1] or layers["UPsample"]["config"]["interpolation"] != "nearest":
        raise SystemExit("only square nearest upsampling is handled")
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    return config


def hwio_to_oihw(arr, shape):
    kh, kw, ci, co = shape
    out = array("f", bytes(4 * len(arr)))
    for y in range(kh):
        for x in range(kw):
            for i in range(ci):
                src = ((y * kw + x) * ci + i) * co
                for o in range(co):
                    out[((o * ci + i) * kh + y) * kw + x] = arr[src + o]
    return out, [co, ci, kh, kw]


if __name__ == "__main__":
    pkg, out = sys.argv[1], sys.argv[2]
    for scale in ("x2", "x3", "x4", "x8"):
        src = os.path.join(pkg, "models", scale)
        if os.path.isdir(src):
            print(scale, convert(src, os.path.join(out, scale)))
