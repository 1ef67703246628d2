#!/usr/bin/env python3
"""PyTorch's side of issue #15's anchor column, on the GPU machine (CUDA), as JSON lines:

  {"op":"matmul", "m","k","n", "dtype", "impl":"cuBLAS", "ms", "tflops"}     f32 (TF32 off) and f16
  {"op":"attention", "seq","heads","head_dim","causal","dtype","impl", "ms", "tflops"}   SDPA
  {"op":"embed", "batch","seq","impl":"torch eager f32", "ms"}              all-MiniLM-L6-v2's shape

Times are CUDA-event medians over enough repetitions to fill ~0.3 s after warm-up; FLOPs count a
multiply-add as two (attention: 4·s²·d per head, halved when causal), as bench_kernels does.
MiniLM runs transformers' BertModel (eager attention, random weights of the real config: speed does not
depend on values) when transformers is installed, else the same post-norm encoder from torch.nn
(impl says which). Pooling is included (mean over the mask, L2), like `embed --bench`.

    python3 scripts/peers/torch_anchors.py [--ops matmul,attention,embed]
"""
import argparse, json, statistics

import torch
import torch.nn.functional as F

dev = "cuda"


def timed(fn, target_s=0.3):
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record(); fn(); end.record(); torch.cuda.synchronize()
    once = max(start.elapsed_time(end), 1e-3)
    reps = max(5, min(200, int(target_s * 1000 / once)))
    times = []
    for _ in range(reps):
        start.record(); fn(); end.record(); torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def emit(**o):
    o["device"] = torch.cuda.get_device_name()
    o["torch"] = torch.__version__
    print(json.dumps(o), flush=True)


def matmuls():
    torch.backends.cuda.matmul.allow_tf32 = False
    shapes = [(1024, 1024, 1024), (4096, 4096, 4096), (4096, 384, 1536), (4096, 1536, 384), (4096, 384, 384)]
    for dtype in (torch.float32, torch.float16):
        for m, k, n in shapes:
            a = torch.randn(m, k, device=dev, dtype=dtype)
            b = torch.randn(k, n, device=dev, dtype=dtype)
            ms = timed(lambda: a @ b)
            emit(op="matmul", m=m, k=k, n=n, dtype=str(dtype).split(".")[1], impl="cuBLAS", ms=ms,
                 tflops=2 * m * k * n / ms / 1e9)


def attentions():
    from torch.nn.attention import SDPBackend, sdpa_kernel
    heads, d = 12, 64
    for dtype in (torch.float16, torch.float32):
        for seq in (512, 2048):
            q, k, v = (torch.randn(1, heads, seq, d, device=dev, dtype=dtype) for _ in range(3))
            for causal in (False, True):
                backends = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
                for backend in backends:
                    try:
                        with sdpa_kernel(backend):
                            ms = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal))
                    except RuntimeError:
                        continue  # this backend does not take this dtype
                    flops = 4 * heads * seq * seq * d / (2 if causal else 1)
                    emit(op="attention", seq=seq, heads=heads, head_dim=d, causal=causal,
                         dtype=str(dtype).split(".")[1], impl=f"SDPA {backend.name.lower()}", ms=ms,
                         tflops=flops / ms / 1e9)
                    break


def minilm():
    cfg = dict(hidden=384, layers=6, heads=12, ff=1536, vocab=30522, max_pos=512)
    try:
        from transformers import BertConfig, BertModel
        model = BertModel(BertConfig(vocab_size=cfg["vocab"], hidden_size=cfg["hidden"],
                                     num_hidden_layers=cfg["layers"], num_attention_heads=cfg["heads"],
                                     intermediate_size=cfg["ff"], max_position_embeddings=cfg["max_pos"],
                                     attn_implementation="eager"),
                          add_pooling_layer=False)
        impl = "transformers BertModel eager f32"

        def forward(ids, mask):
            return model(input_ids=ids, attention_mask=mask).last_hidden_state
    except ImportError:
        layer = torch.nn.TransformerEncoderLayer(cfg["hidden"], cfg["heads"], cfg["ff"], dropout=0.0,
                                                 activation="gelu", batch_first=True, norm_first=False)
        enc = torch.nn.TransformerEncoder(layer, cfg["layers"], enable_nested_tensor=False)
        emb = torch.nn.Embedding(cfg["vocab"], cfg["hidden"])
        norm = torch.nn.LayerNorm(cfg["hidden"])
        model = torch.nn.ModuleList([emb, norm, enc])
        impl = "torch.nn encoder eager f32"

        def forward(ids, mask):
            return enc(norm(emb(ids)), src_key_padding_mask=mask == 0)
    model = model.to(dev).eval()
    for batch in (1, 8, 32):
        ids = torch.randint(0, cfg["vocab"], (batch, 128), device=dev)
        mask = torch.ones_like(ids)

        def run():
            with torch.inference_mode():
                h = forward(ids, mask)
                m = mask.unsqueeze(-1).to(h.dtype)
                return F.normalize((h * m).sum(1) / m.sum(1), dim=-1)
        emit(op="embed", batch=batch, seq=128, impl=impl, ms=timed(run))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", default="matmul,attention,embed")
    ops = ap.parse_args().ops.split(",")
    for name, fn in (("matmul", matmuls), ("attention", attentions), ("embed", minilm)):
        if name in ops:
            fn()
