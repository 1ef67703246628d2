#!/usr/bin/env python3
"""Goldens for the image classifier: EfficientNet-Lite0 logits from the reference PyTorch implementation
(the efficientnet-lite-pytorch PyPI package) on tests/fixtures/images/*.png, written to
tests/goldens/efficientnet_lite0.json.

    pip install torch pillow safetensors efficientnet-lite-pytorch==0.1.0
    python3 scripts/goldens_efficientnet.py models/efficientnet-lite0

The preprocessing is the library's, written out in PyTorch: RGB values / 255, the centred square crop
(offset floor((side - short) / 2)), bilinear resize to 224x224 (half-pixel centres, no antialiasing:
F.interpolate(align_corners=False)), then (x - mean) / std from config.json.
"""
import glob
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from safetensors.torch import load_file

model_dir = sys.argv[1]
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
config = json.load(open(os.path.join(model_dir, "config.json")))
model = EfficientNet.from_name("efficientnet-lite0")
missing, unexpected = model.load_state_dict(load_file(os.path.join(model_dir, "model.safetensors")), strict=False)
assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
model.eval()


def preprocess(path, size):
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    h, w, _ = img.shape
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    x = torch.from_numpy(img[y0 : y0 + s, x0 : x0 + s]).permute(2, 0, 1)[None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    mean = torch.tensor(config["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(config["std"]).view(1, 3, 1, 1)
    return (x - mean) / std


out = {"model": config["source"], "preprocess": "centre square crop, bilinear 224, (x-mean)/std", "images": []}
with torch.no_grad():
    for path in sorted(glob.glob(os.path.join(root, "tests", "fixtures", "images", "*.png"))):
        x = preprocess(path, config["image_size"])
        logits = model(x)[0]
        probs = torch.softmax(logits, 0)
        top = torch.topk(probs, 5)
        entry = {
            "image": os.path.basename(path),
            "input_sum": float(x.double().sum()),
            "logits": [round(float(v), 6) for v in logits],
            "top5": [
                {"index": int(i), "label": config["id2label"][str(int(i))], "score": round(float(p), 6)}
                for p, i in zip(top.values, top.indices)
            ],
        }
        print(entry["image"], [(t["label"], t["score"]) for t in entry["top5"]])
        out["images"].append(entry)
with open(os.path.join(root, "tests", "goldens", "efficientnet_lite0.json"), "w") as f:
    json.dump(out, f)
