#!/usr/bin/env python3
"""Exports EfficientNet-Lite0 to ONNX for the browser benchmark's onnxruntime-web baseline (the CPU
backend's peer, issue #18): the reference PyTorch implementation (efficientnet-lite-pytorch, as
scripts/goldens_efficientnet.py uses it) with our converted weights, float32, input `input`
[1, 3, 224, 224] (NCHW, preprocessed), output `logits` [1, 1000].

Run by hand (never in CI), after scripts/fetch-models.sh:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch onnx onnxruntime safetensors \
        efficientnet-lite-pytorch==0.1.0
    /tmp/venv/bin/python scripts/export_efficientnet_onnx.py [MODEL_DIR]
Writes MODEL_DIR/onnx/model.onnx (default models/efficientnet-lite0/) and checks it against PyTorch
with onnxruntime on a random input (max |logit difference| printed, must be below 1e-4).
"""
import os
import sys

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from safetensors.torch import load_file

model_dir = sys.argv[1] if len(sys.argv) > 1 else "models/efficientnet-lite0"
model = EfficientNet.from_name("efficientnet-lite0")
missing, unexpected = model.load_state_dict(load_file(os.path.join(model_dir, "model.safetensors")), strict=False)
assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
model.eval()
os.makedirs(os.path.join(model_dir, "onnx"), exist_ok=True)
path = os.path.join(model_dir, "onnx", "model.onnx")
x = torch.randn(1, 3, 224, 224)
torch.onnx.export(model, (x,), path, input_names=["input"], output_names=["logits"], opset_version=17,
                  dynamo=False)
print(f"wrote {path} ({os.path.getsize(path)} bytes)")
try:
    import onnxruntime
except ImportError:
    sys.exit(0)
with torch.no_grad():
    want = model(x).numpy()
got = onnxruntime.InferenceSession(path).run(None, {"input": x.numpy()})[0]
diff = float(np.abs(got - want).max())
print(f"onnxruntime vs PyTorch: max |logit difference| {diff:.2e}")
assert diff < 1e-4, diff
