#!/usr/bin/env python3
"""The PyTorch baseline for `generate --bench`: the same LLaMA config, eager `generate` (greedy, batch 1)
on the same GPU, as JSON lines {"op":"decode","impl","dtype","prompt_tokens","new_tokens",
"prefill_tok_s","decode_tok_s","device"}. Weights are random (speed does not depend on them).

    python3 scripts/bench_decode_torch.py bench-bin/smollm2/layout.json [PROMPT_TOKENS] [NEW_TOKENS]

Uses transformers' LlamaForCausalLM (attn_implementation="eager") when transformers is installed;
otherwise a plain PyTorch LLaMA with a KV cache written here (the same operations, one Python call
a layer), reported as impl "torch-minimal".
"""
import json, sys, time

import torch

cfg = json.load(open(sys.argv[1]))["config"]
P = int(sys.argv[2]) if len(sys.argv) > 2 else 16
N = int(sys.argv[3]) if len(sys.argv) > 3 else 128
dev = "cuda"
H, FF, L = cfg["embedding_length"], cfg["feed_forward_length"], cfg["block_count"]
NH, NKV, V = cfg["attention.head_count"], cfg["attention.head_count_kv"], cfg["vocab_size"]
HD = H // NH


def transformers_model(dtype):
    from transformers import LlamaConfig, LlamaForCausalLM
    c = LlamaConfig(hidden_size=H, intermediate_size=FF, num_hidden_layers=L, num_attention_heads=NH,
                    num_key_value_heads=NKV, vocab_size=V, rms_norm_eps=cfg["attention.layer_norm_rms_epsilon"],
                    rope_theta=cfg["rope.freq_base"], max_position_embeddings=cfg["context_length"],
                    tie_word_embeddings=True)
    m = LlamaForCausalLM._from_config(c, attn_implementation="eager", torch_dtype=dtype).to(dev).eval()

    def gen(ids, n):
        return m.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                          pad_token_id=0, eos_token_id=None)
    return "transformers-eager", gen


def minimal_model(dtype):
    g = torch.Generator(device=dev).manual_seed(0)
    w = lambda *s: (torch.randn(*s, device=dev, generator=g) * 0.02).to(dtype)
    emb = w(V, H)
    layers = [dict(q=w(NH * HD, H), k=w(NKV * HD, H), v=w(NKV * HD, H), o=w(H, NH * HD),
                   g=w(FF, H), u=w(FF, H), d=w(H, FF), n1=torch.ones(H, device=dev, dtype=dtype),
                   n2=torch.ones(H, device=dev, dtype=dtype)) for _ in range(L)]
    norm = torch.ones(H, device=dev, dtype=dtype)
    inv = 1.0 / (cfg["rope.freq_base"] ** (torch.arange(0, HD, 2, device=dev).float() / HD))

    def rms(x, wt):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * wt

    def rope(x, pos):
        f = torch.outer(pos.float(), inv)
        cos, sin = torch.cat([f.cos(), f.cos()], -1).to(dtype), torch.cat([f.sin(), f.sin()], -1).to(dtype)
        x1, x2 = x[..., :HD // 2], x[..., HD // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def forward(ids, cache, pos0):
        T = ids.shape[1]
        pos = torch.arange(pos0, pos0 + T, device=dev)
        x = emb[ids]
        for i, l in enumerate(layers):
            h = rms(x, l["n1"])
            q = (h @ l["q"].T).view(1, T, NH, HD).transpose(1, 2)
            k = (h @ l["k"].T).view(1, T, NKV, HD).transpose(1, 2)
            v = (h @ l["v"].T).view(1, T, NKV, HD).transpose(1, 2)
            q, k = rope(q, pos), rope(k, pos)
            if cache[i] is not None:
                k, v = torch.cat([cache[i][0], k], 2), torch.cat([cache[i][1], v], 2)
            cache[i] = (k, v)
            k, v = k.repeat_interleave(NH // NKV, 1), v.repeat_interleave(NH // NKV, 1)
            a = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=T > 1)
            x = x + a.transpose(1, 2).reshape(1, T, H) @ l["o"].T
            h = rms(x, l["n2"])
            x = x + (torch.nn.functional.silu(h @ l["g"].T) * (h @ l["u"].T)) @ l["d"].T
        return rms(x[:, -1], norm) @ emb.T

    def gen(ids, n):
        cache = [None] * L
        logits = forward(ids, cache, 0)
        out = [logits.argmax(-1)]
        for s in range(1, n):
            logits = forward(out[-1].view(1, 1), cache, ids.shape[1] + s - 1)
            out.append(logits.argmax(-1))
        return torch.stack(out)
    return "torch-minimal", gen


def bench(make, dtype):
    name, gen = make(dtype)
    ids = torch.randint(0, V, (1, P), device=dev)
    with torch.no_grad():
        gen(ids, 4)
        torch.cuda.synchronize()

        def timed(n):
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                gen(ids, n)
                torch.cuda.synchronize()
                best = min(best, time.perf_counter() - t)
            return best
        t1, tn = timed(1), timed(N)
    print(json.dumps({"op": "decode", "impl": name, "dtype": str(dtype).replace("torch.", ""),
                      "prompt_tokens": P, "new_tokens": N, "prefill_tok_s": P / t1,
                      "decode_tok_s": (N - 1) / (tn - t1), "device": torch.cuda.get_device_name()}),
          flush=True)


try:
    import transformers  # noqa: F401
    makers = [transformers_model, minimal_model]
except ImportError:
    makers = [minimal_model]
for make in makers:
    for dtype in (torch.float32, torch.float16):
        bench(make, dtype)
