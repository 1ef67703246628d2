#!/usr/bin/env python3
"""Goldens for the image classifier: EfficientNet-Lite0 logits from the reference PyTorch implementation
(the efficientnet-lite-pytorch PyPI package) on tests/fixtures/images/*.png, written to
tests/goldens/efficientnet_lite0.json.

    pip install torch torchvision pillow safetensors efficientnet-lite-pytorch==0.1.0
    python3 scripts/goldens_efficientnet.py models/efficientnet-lite0

The preprocessing as the model was evaluated (TensorFlow's EfficientNet eval; config.json's crop_pct,
interpolation, antialias, mean and std), done here by Pillow and torchvision rather than by the
library: Pillow decodes the picture, RGB values / 255 in float; the centred square of side
floor(crop_pct * shorter side) at offset ceil((side - square) / 2) (TensorFlow's central crop); then
torchvision's resize to image_size x image_size, bicubic, antialiased when the square is more than twice
the size ("auto"); channels reversed when channel_order is "bgr"; then (x - mean) / std.
"""
import glob
import json
import os
import sys

import numpy as np
import torch
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode
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
    s = int(np.floor(config.get("crop_pct", 0.875) * min(h, w)))
    y0, x0 = (h - s + 1) // 2, (w - s + 1) // 2
    x = torch.from_numpy(np.ascontiguousarray(img[y0 : y0 + s, x0 : x0 + s])).permute(2, 0, 1)[None]
    mode = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR,
            "nearest": InterpolationMode.NEAREST}[config.get("interpolation", "bicubic")]
    aa = config.get("antialias", "auto")
    aa = s > 2 * size if aa == "auto" else bool(aa)
    x = TF.resize(x, [size, size], interpolation=mode, antialias=aa)
    if config.get("channel_order", "rgb") == "bgr":
        x = x.flip(1)
    mean = torch.tensor(config["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(config["std"]).view(1, 3, 1, 1)
    return (x - mean) / std, {"crop": [x0, y0, s, s], "antialias": aa}


out = {
    "model": config["source"],
    "preprocess": "centre crop_pct square (TF offsets), torchvision resize (config interpolation, antialias auto: square > 2x size), (x-mean)/std",
    "versions": {"torch": torch.__version__, "torchvision": __import__("torchvision").__version__},
    "images": [],
}
with torch.no_grad():
    for path in sorted(glob.glob(os.path.join(root, "tests", "fixtures", "images", "*.png"))):
        x, how = preprocess(path, config["image_size"])
        logits = model(x)[0]
        probs = torch.softmax(logits, 0)
        top = torch.topk(probs, 5)
        entry = {
            "image": os.path.basename(path),
            **how,
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
