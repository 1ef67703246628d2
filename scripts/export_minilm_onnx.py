#!/usr/bin/env python3
"""Exports all-MiniLM-L6-v2 to ONNX for the browser benchmark's onnxruntime-web baseline.

The same model file users of Transformers.js / onnxruntime-web load (Xenova/all-MiniLM-L6-v2's
onnx/model.onnx is this export: BertModel, float32, inputs input_ids / attention_mask / token_type_ids
with dynamic batch and sequence axes, output last_hidden_state). Pooling and normalisation happen in
the page, as Transformers.js does them.

Run by hand (never in CI), after scripts/fetch-models.sh:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch transformers onnx onnxscript
    /tmp/venv/bin/python scripts/export_minilm_onnx.py
Writes MODEL_DIR/onnx/model.onnx (default models/all-MiniLM-L6-v2/) (one file, weights inside) and checks it against
PyTorch with onnxruntime when that package is installed.
"""
import os
import sys

import torch
from transformers import AutoModel

HERE = os.path.dirname(os.path.abspath(__file__))
# The model folder: models/all-MiniLM-L6-v2, or the first argument (scripts/gpu-web-bench.sh passes
# its synthetic-weight copy on the GPU machine).
MODEL = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "models", "all-MiniLM-L6-v2")
OUT = os.path.join(MODEL, "onnx", "model.onnx")


class Encoder(torch.nn.Module):
    """BertModel called with keyword arguments (its positional order differs across versions)."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                         token_type_ids=token_type_ids).last_hidden_state


def main():
    model = AutoModel.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="eager").eval()
    batch, seq = 2, 16
    ids = torch.randint(1000, 2000, (batch, seq))
    mask = torch.ones(batch, seq, dtype=torch.int64)
    types = torch.zeros(batch, seq, dtype=torch.int64)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    dyn = {0: "batch", 1: "sequence"}
    torch.onnx.export(
        Encoder(model),
        (ids, mask, types),
        OUT,
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={"input_ids": dyn, "attention_mask": dyn, "token_type_ids": dyn,
                      "last_hidden_state": dyn},
        opset_version=18,
        dynamo=True,  # the TorchScript exporter traces a graph that is wrong here (|diff| ~2)
        external_data=False,
    )
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError:
        return
    sess = ort.InferenceSession(OUT, providers=["CPUExecutionProvider"])
    # Checked at another shape than the export's, with padding, so the dynamic axes are exercised.
    ids = torch.randint(1000, 2000, (8, 128))
    mask = torch.ones(8, 128, dtype=torch.int64)
    mask[1, 100:] = 0
    types = torch.zeros(8, 128, dtype=torch.int64)
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state.numpy()
    got = sess.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(),
                          "token_type_ids": types.numpy()})[0]
    diff = np.abs(got - want).max()
    print(f"onnxruntime vs torch at 8x128: max |diff| {diff:.2e}")
    if diff > 1e-4:
        raise SystemExit("the exported model does not match PyTorch")

if __name__ == "__main__":
    main()
