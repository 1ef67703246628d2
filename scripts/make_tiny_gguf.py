#!/usr/bin/env python3
"""A tiny random LLaMA as a GGUF file with every quantized format the library reads, and transformers'
answers for it, for tests/llama.rs: the K-quants as a Q4_K_M file mixes them (Q4_K, Q5_K and Q6_K in
one layer, q/k and v of different types), the 32-element formats in the other (Q5_0 q/k/v, Q5_1,
IQ4_NL gate/up, Q8_0), a Q4_K token embedding and a Q6_K LM head.

Run by hand (never in CI): /tmp/venv/bin/python scripts/make_tiny_gguf.py
    [llama|llama3|qwen2|qwen3|phi3|gemma2|gemma3|refused]
    (pip install torch transformers accelerate gguf numpy)
qwen2 and qwen3 write tiny-qwen2.gguf / tiny-qwen3.gguf and golden-<arch>.json: the same vocabulary
and layer types, Qwen2's q/k/v biases or Qwen3's per-head q/k RMSNorm (head_dim 128 there, past
hidden / heads), and rotate-half RoPE (llama.cpp permutes q and k only for `llama`). phi3: q/k/v in one
`attn_qkv` matrix and gate/up in one `ffn_up` (as Phi-3 stores them), a sliding window of 8; phi3long:
LongRoPE (`rope_factors_{short,long}.weight`, original context 64, a case whose prompt is past it, where
transformers and llama.cpp both take the long factors from the first token). gemma2:
GELU-tanh MLP, post-attention and post-MLP norms (stored as 1 + weight, as llama.cpp's converter writes
Gemma's norms), √hidden embedding scale, the tied head, soft-capped scores and logits (caps 5 and 0.5,
small enough to bend this model's values), a window of 8 on layer 0, head_dim 256 as in the real ones.
gemma3: Gemma 2's blocks without the caps, per-head q/k norms, head_dim 128, the window on layer 0
(pattern 2, written as `gemma3.attention.sliding_window_pattern`) with RoPE base 10 000 there, linear
RoPE scaling (factor 4) on the global layer. The Gemma embeddings are divided by 16 (the √hidden scale
would otherwise drown the blocks, and the tied head would repeat the last token). `refused` writes two
small files the library must refuse (see `refused`).
Writes tests/fixtures/tiny-gguf/: tiny-kquants.gguf (~0.8 MB; tokenizer and chat template inside: the
byte-level vocabulary and ChatML template of tests/fixtures/tiny-llama, two merges) and golden.json (prompt ids,
top-10 first-step logits, a greedy 16-token continuation; transformers loading this GGUF file, which
dequantizes with the gguf package, float32 on the CPU).

The quantizers below are plain round-to-nearest ones written from GGML's block layouts (not llama.cpp's
error-minimising search): the test needs valid blocks whose values transformers and the library both
read, not the best 4-bit copy of the weights. Each is checked here against gguf's dequantizer.
"""
import json
import os
import sys

import numpy as np
import torch
from gguf import GGMLQuantizationType as T, GGUFWriter, RopeScalingType
from gguf.quants import dequantize, quantize
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (Gemma2Config, Gemma2ForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig,
                          LlamaConfig, LlamaForCausalLM, Phi3Config, Phi3ForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "tiny-gguf")
TOKENIZER = os.path.join(ROOT, "tests", "fixtures", "tiny-llama", "tokenizer.json")
CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
F16 = np.float16
ROPE_THETA = 1000.0


def f16_bytes(v):
    return v.astype(F16).view(np.uint8).reshape(v.shape[0], 2)


def pack_scales_k4(sc, mn):
    """GGML's 12-byte packing of eight 6-bit scales and mins (inverse of get_scale_min_k4)."""
    n = sc.shape[0]
    out = np.zeros((n, 12), np.uint8)
    out[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    out[:, 4:8] = (mn[:, 0:4] & 63) | ((mn[:, 4:8] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:8] & 15) | ((mn[:, 4:8] & 15) << 4)
    return out


def scales_mins(x, qmax):
    """Per 32-element block: scale and min (w = scale·q − min) for q in 0..qmax, as 6-bit codes under
    f16 super-scales d and dmin. Returns d, dmin, sc, mn (uint8), and the effective scale and min."""
    lo = np.minimum(x.min(axis=-1), 0.0)
    hi = x.max(axis=-1)
    scale = (hi - lo) / qmax
    mins = -lo
    d = (scale.max(axis=-1) / 63).astype(F16).astype(np.float32)
    dmin = (mins.max(axis=-1) / 63).astype(F16).astype(np.float32)
    sc = np.clip(np.round(scale / np.maximum(d[:, None], 1e-30)), 1, 63).astype(np.uint8)
    mn = np.clip(np.round(mins / np.maximum(dmin[:, None], 1e-30)), 0, 63).astype(np.uint8)
    eff_scale = d[:, None] * sc
    eff_min = dmin[:, None] * mn
    return d, dmin, sc, mn, eff_scale, eff_min


def q_k(x, five):
    """Q4_K (five=False) or Q5_K: 256-element super-blocks of eight 32-element blocks."""
    xb = x.reshape(-1, 8, 32)
    qmax = 31 if five else 15
    d, dmin, sc, mn, s, m = scales_mins(xb, qmax)
    q = np.clip(np.round((xb + m[..., None]) / s[..., None]), 0, qmax).astype(np.uint8)
    q = q.reshape(-1, 4, 2, 32)  # chunk c holds blocks 2c (low nibble) and 2c + 1 (high nibble)
    qs = ((q[:, :, 0] & 15) | ((q[:, :, 1] & 15) << 4)).reshape(-1, 128)
    parts = [f16_bytes(d), f16_bytes(dmin), pack_scales_k4(sc, mn)]
    if five:
        hi = (q.reshape(-1, 8, 32) >> 4) & 1  # block j's fifth bits: bit j of bytes 0..31
        qh = np.zeros((q.shape[0], 32), np.uint8)
        for j in range(8):
            qh |= (hi[:, j] << j).astype(np.uint8)
        parts.append(qh)
    parts.append(qs)
    return np.concatenate(parts, axis=-1)


def q6_k(x):
    xb = x.reshape(-1, 16, 16)
    amax_i = np.abs(xb).max(axis=-1)
    scale = amax_i / 31
    d = (scale.max(axis=-1) / 127).astype(F16).astype(np.float32)
    sc = np.clip(np.round(scale / np.maximum(d[:, None], 1e-30)), 1, 127).astype(np.int8)
    s = d[:, None] * sc
    q = (np.clip(np.round(xb / s[..., None]), -32, 31) + 32).astype(np.uint8).reshape(-1, 2, 4, 32)
    ql = np.concatenate([(q[:, :, 0] & 15) | ((q[:, :, 2] & 15) << 4),
                         (q[:, :, 1] & 15) | ((q[:, :, 3] & 15) << 4)], axis=-1).reshape(-1, 128)
    qh = ((q[:, :, 0] >> 4) | ((q[:, :, 1] >> 4) << 2) | ((q[:, :, 2] >> 4) << 4)
          | ((q[:, :, 3] >> 4) << 6)).reshape(-1, 64)
    return np.concatenate([ql, qh, sc.view(np.uint8), f16_bytes(d)], axis=-1)


IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.float32)


def iq4_nl(x):
    xb = x.reshape(-1, 32)
    d = (np.abs(xb).max(axis=-1) / 127).astype(F16).astype(np.float32)
    q = np.abs(xb[..., None] / np.maximum(d[:, None, None], 1e-30) - IQ4NL).argmin(axis=-1).astype(np.uint8)
    qs = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    return np.concatenate([f16_bytes(d), qs], axis=-1)


def quantize_as(w, qtype):
    """Blocks of `qtype` for a float32 matrix [rows, cols], checked against gguf's dequantizer."""
    if qtype in (T.Q4_K, T.Q5_K):
        blocks = q_k(w, five=qtype == T.Q5_K)
    elif qtype == T.Q6_K:
        blocks = q6_k(w)
    elif qtype == T.IQ4_NL:
        blocks = iq4_nl(w)
    else:
        blocks = quantize(w, qtype)
    blocks = np.ascontiguousarray(blocks, dtype=np.uint8).reshape(w.shape[0], -1)
    back = dequantize(blocks, qtype).reshape(w.shape)
    err = np.abs(back - w).max() / np.abs(w).max()
    assert err < 0.2, (qtype.name, err)  # round-to-nearest 4-bit: ≤ ~1/15 of a block's range
    return blocks


def permute(w, heads):
    """llama.cpp's q/k row order (interleaved RoPE pairs), as convert_hf_to_gguf writes them."""
    rows, cols = w.shape
    return w.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)


LAYER_TYPES = [
    # Q4_K_M's mix: q/k Q4_K, v Q6_K, o Q5_K, gate/up Q4_K, down Q6_K
    {"attn_q": T.Q4_K, "attn_k": T.Q4_K, "attn_v": T.Q6_K, "attn_output": T.Q5_K,
     "ffn_gate": T.Q4_K, "ffn_up": T.Q4_K, "ffn_down": T.Q6_K},
    # what llama.cpp falls back to for rows that are not whole super-blocks, and IQ4_NL
    {"attn_q": T.Q5_0, "attn_k": T.Q5_0, "attn_v": T.Q5_0, "attn_output": T.Q5_1,
     "ffn_gate": T.IQ4_NL, "ffn_up": T.IQ4_NL, "ffn_down": T.Q8_0},
]
HF_NAMES = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
            "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
            "ffn_down": "mlp.down_proj"}


# The byte-level vocabulary of tests/fixtures/tiny-llama (the 256 byte symbols, ChatML's two
# specials) and two merges (GGUF's BPE needs `tokenizer.ggml.merges`; llama.cpp refuses files without).
with open(TOKENIZER) as _f:
    _vocab = json.load(_f)["model"]["vocab"]
SPECIALS = ["<|im_start|>", "<|im_end|>"]
MERGES = [("\u0120", "t"), ("h", "e")]
TOKENS = [t for t, i in sorted(_vocab.items(), key=lambda kv: kv[1]) if i < 256] + SPECIALS + ["".join(m) for m in MERGES]


def tokenizer():
    """The same vocabulary as a `tokenizers` BPE, for the reference's prompt ids."""
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(TOKENS)}, merges=MERGES))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS)
    return tok


FALLBACK = {T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1, T.Q6_K: T.Q8_0}  # llama.cpp's, for rows not of 256
LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 64}


def llama3_rope_factors(theta, dim, s):
    """rope_freqs.weight as llama.cpp's convert_hf_to_gguf.py computes it for rope_type llama3: the
    factor each pair's frequency is divided by."""
    freqs = 1.0 / (theta ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    old = s["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / s["low_freq_factor"], old / s["high_freq_factor"]
    out = []
    for f in freqs:
        wavelen = 2 * np.pi / f
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(s["factor"])
        else:
            smooth = (old / wavelen - s["low_freq_factor"]) / (s["high_freq_factor"] - s["low_freq_factor"])
            out.append(1 / ((1 - smooth) / s["factor"] + smooth))
    return np.array(out, np.float32)


PHI3_SHORT = np.linspace(1.0, 2.5, 32).astype(np.float32)
PHI3_LONG = np.geomspace(1.0, 12.0, 32).astype(np.float32)


def main(arch="llama"):
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    common = dict(vocab_size=len(TOKENS), hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  rms_norm_eps=1e-5, rope_theta=ROPE_THETA, tie_word_embeddings=False,
                  eos_token_id=257, bos_token_id=256)
    gemma = arch.startswith("gemma")
    if gemma:
        common.update(hidden_activation="gelu_pytorch_tanh", sliding_window=8, rms_norm_eps=1e-6,
                      query_pre_attn_scalar=64, pad_token_id=0, tie_word_embeddings=True)
        del common["rope_theta"]
    if arch == "llama":
        cfg = LlamaConfig(**common)
        model = LlamaForCausalLM(cfg).eval()
    elif arch == "phi3":
        cfg = Phi3Config(**common, sliding_window=8, pad_token_id=0)
        model = Phi3ForCausalLM(cfg).eval()
    elif arch == "phi3long":
        # Phi-3.5's LongRoPE: short factors up to the original context (64 here), long ones past it,
        # and the attention factor √(1 + ln(256 / 64) / ln 64) on cos and sin.
        del common["rope_theta"]
        cfg = Phi3Config(**common, pad_token_id=0, original_max_position_embeddings=64,
                         rope_parameters={"rope_type": "longrope", "rope_theta": ROPE_THETA,
                                          "short_factor": PHI3_SHORT.tolist(), "long_factor": PHI3_LONG.tolist(),
                                          "original_max_position_embeddings": 64})
        model = Phi3ForCausalLM(cfg).eval()
    elif arch == "gemma2":
        common.update(head_dim=256, query_pre_attn_scalar=256)  # Gemma 2's head size
        cfg = Gemma2Config(**common, rope_theta=ROPE_THETA, attn_logit_softcapping=5.0,
                           final_logit_softcapping=0.5, layer_types=["sliding_attention", "full_attention"])
        model = Gemma2ForCausalLM(cfg).eval()
    elif arch == "gemma3":
        common.update(head_dim=128, query_pre_attn_scalar=128)
        cfg = Gemma3TextConfig(**common, layer_types=["sliding_attention", "full_attention"],
                               rope_parameters={
                                   "full_attention": {"rope_type": "linear", "factor": 4.0,
                                                      "rope_theta": ROPE_THETA},
                                   "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0}})
        model = Gemma3ForCausalLM(cfg).eval()
    elif arch == "llama3":
        # Llama 3.1/3.2's RoPE scaling, with an original context of 64 so that the tiny model's
        # frequencies fall in all three of its bands (kept, divided by `factor`, smoothed between).
        cfg = LlamaConfig(**common, rope_scaling=LLAMA3_SCALING)
        model = LlamaForCausalLM(cfg).eval()
    elif arch == "qwen2":
        cfg = Qwen2Config(**common)
        model = Qwen2ForCausalLM(cfg).eval()
    else:
        cfg = Qwen3Config(head_dim=128, attention_bias=False, **common)
        model = Qwen3ForCausalLM(cfg).eval()
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    sd = {k: v.float().numpy() for k, v in model.state_dict().items()}
    # Larger weights than the init's 0.02, so that the logits are not all alike.
    sd = {k: v * 4.0 if v.ndim == 2 else v + np.random.default_rng(1).normal(0, 0.1, v.shape).astype(np.float32)
          for k, v in sd.items()}
    if gemma:  # the embedding is scaled by √hidden = 16 on the way in: keep it from drowning the blocks
        sd["model.embed_tokens.weight"] /= 16.0
        if cfg.tie_word_embeddings:
            sd["lm_head.weight"] = sd["model.embed_tokens.weight"]

    name = "tiny-kquants" if arch == "llama" else f"tiny-{arch}"
    path = os.path.join(OUT, f"{name}.gguf")
    gguf_arch = {"llama3": "llama", "phi3long": "phi3"}.get(arch, arch)
    writer = GGUFWriter(path, gguf_arch)
    writer.add_name(name)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_dimension_count(head_dim)
    if arch in ("qwen3", "gemma2", "gemma3"):
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    if arch in ("phi3", "gemma2", "gemma3"):
        writer.add_sliding_window(cfg.sliding_window)
    if arch == "phi3long":  # as convert_hf_to_gguf.py writes LongRoPE
        writer.add_rope_scaling_orig_ctx_len(64)
        writer.add_rope_scaling_attn_factors(float(np.sqrt(1 + np.log(256 / 64) / np.log(64))))
    if arch == "gemma2":
        writer.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
        writer.add_final_logit_softcapping(cfg.final_logit_softcapping)
    if arch == "gemma3":
        writer.add_uint32("gemma3.attention.sliding_window_pattern", 2)
        writer.add_rope_scaling_type(RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(4.0)
    writer.add_rope_freq_base(ROPE_THETA)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt2")
    writer.add_token_list(TOKENS)
    writer.add_token_types([3 if t in SPECIALS else 1 for t in TOKENS])
    writer.add_token_merges([" ".join(m) for m in MERGES])
    writer.add_bos_token_id(256)
    writer.add_eos_token_id(257)
    writer.add_add_bos_token(gemma)  # Gemma's files ask for BOS before a raw prompt (chat: the template's)
    if arch in ("phi3", "phi3long", "gemma2", "gemma3"):
        writer.add_pad_token_id(0)  # else transformers' default (32000 for Phi-3) is past this vocabulary
    writer.add_chat_template(CHATML)

    def add(name, w, qtype=None):
        if qtype is None:
            writer.add_tensor(name, w.astype(np.float32))
            return
        if w.shape[-1] % 256:
            qtype = FALLBACK.get(qtype, qtype)
        blocks = quantize_as(w, qtype)
        writer.add_tensor(name, blocks, raw_shape=blocks.shape, raw_dtype=qtype)

    add("token_embd.weight", sd["model.embed_tokens.weight"], T.Q4_K)
    # llama.cpp's convert_hf_to_gguf.py stores Gemma's RMSNorm weights w as 1 + w (its norm is x·(1 + w)).
    norm = (lambda w: w + 1.0) if gemma else (lambda w: w)
    for i, types in enumerate(LAYER_TYPES):
        p = f"model.layers.{i}."
        add(f"blk.{i}.attn_norm.weight", norm(sd[p + "input_layernorm.weight"]))
        if gemma:
            add(f"blk.{i}.post_attention_norm.weight", norm(sd[p + "post_attention_layernorm.weight"]))
            add(f"blk.{i}.ffn_norm.weight", norm(sd[p + "pre_feedforward_layernorm.weight"]))
            add(f"blk.{i}.post_ffw_norm.weight", norm(sd[p + "post_feedforward_layernorm.weight"]))
        else:
            add(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        if gguf_arch == "phi3":
            # One matrix for q, k and v and one for gate and up, each in the type of its first part.
            add(f"blk.{i}.attn_qkv.weight", sd[p + "self_attn.qkv_proj.weight"], types["attn_q"])
            add(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"], types["attn_output"])
            add(f"blk.{i}.ffn_up.weight", sd[p + "mlp.gate_up_proj.weight"], types["ffn_up"])
            add(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"], types["ffn_down"])
            continue
        for g, qtype in types.items():
            w = sd[p + HF_NAMES[g] + ".weight"]
            if gguf_arch == "llama" and g == "attn_q":
                w = permute(w, cfg.num_attention_heads)
            elif gguf_arch == "llama" and g == "attn_k":
                w = permute(w, cfg.num_key_value_heads)
            add(f"blk.{i}.{g}.weight", w, qtype)
            bias = sd.get(p + HF_NAMES[g] + ".bias")
            if bias is not None:
                add(f"blk.{i}.{g}.bias", bias)
        if arch in ("qwen3", "gemma3"):
            add(f"blk.{i}.attn_q_norm.weight", norm(sd[p + "self_attn.q_norm.weight"]))
            add(f"blk.{i}.attn_k_norm.weight", norm(sd[p + "self_attn.k_norm.weight"]))
    if arch == "phi3long":
        add("rope_factors_short.weight", PHI3_SHORT)
        add("rope_factors_long.weight", PHI3_LONG)
    if arch == "llama3":
        factors = llama3_rope_factors(ROPE_THETA, head_dim, LLAMA3_SCALING)
        assert len(set(np.round(factors, 4))) > 2, factors  # all three bands
        add("rope_freqs.weight", factors)
    add("output_norm.weight", norm(sd["model.norm.weight"]))
    if not cfg.tie_word_embeddings:
        add("output.weight", sd["lm_head.weight"], T.Q6_K)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    # The reference: transformers reading the file back (dequantized by gguf, q/k un-permuted).
    ref = type(model).from_pretrained(OUT, gguf_file=f"{name}.gguf", torch_dtype=torch.float32).eval()
    for k, v in ref.state_dict().items():  # the file holds what the model had, bar quantization
        want = torch.from_numpy(sd[k])
        assert v.shape == want.shape, (k, v.shape, want.shape)
        assert (v - want).abs().max() <= 0.2 * want.abs().max() + 1e-6, k
    if arch in ("llama3", "phi3", "phi3long", "gemma2", "gemma3"):
        # The file's weights in a model with this config: transformers' GGUF reader leaves out the
        # RoPE scaling, window, soft caps and layer pattern (it maps only the common keys).
        configured = type(model)(cfg).eval()
        configured.load_state_dict(ref.state_dict())
        ref = configured
    hf_tok = tokenizer()
    cases = []
    prompts = [("raw", "Hello, tiny model", False), ("chat", "Hi there", True)]
    if arch == "phi3long":  # a prompt past the original context: the long factors from the start
        prompts.append(("long", "Hello, tiny model. " * 4 + "Tell me more, please.", False))
    for name, prompt, chat in prompts:
        text = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n" if chat else prompt
        ids = hf_tok.encode(text, add_special_tokens=False).ids
        if gemma and not chat:
            ids = [cfg.bos_token_id] + ids
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = ref(x).logits[0, -1]
            top = torch.topk(logits, 10)
            gen = ref.generate(x, max_new_tokens=16, min_new_tokens=16, do_sample=False,
                               eos_token_id=None, pad_token_id=0)
        cases.append({"name": name, "chat": chat, "prompt": prompt, "prompt_ids": ids,
                      "top_logits": [[int(i), float(v)] for v, i in zip(top.values, top.indices)],
                      "greedy_ids": gen[0, len(ids):].tolist()})
        print(name, ids[:8], cases[-1]["greedy_ids"], cases[-1]["top_logits"][:3])
    golden = "golden.json" if arch == "llama" else f"golden-{arch}.json"
    with open(os.path.join(OUT, golden), "w") as f:
        json.dump({"made_by": "scripts/make_tiny_gguf.py", "cases": cases}, f, indent=1)
        f.write("\n")


def refused():
    """Small files the library must refuse with a clear error (tests/llama.rs): an architecture it
    lacks, YaRN RoPE scaling, which it must not silently ignore, and a model whose context (2^30
    positions) asks for a KV cache past any adapter's buffer limits, to be refused before its weights
    load (it has none but the embedding)."""
    for name, arch, scaling, context in [("refused-arch.gguf", "mamba", None, 64),
                                         ("refused-rope-scaling.gguf", "llama", "yarn", 64),
                                         ("huge-context.gguf", "llama", None, 1 << 30)]:
        w = GGUFWriter(os.path.join(OUT, name), arch)
        for key, value in [("context_length", context), ("embedding_length", 8), ("block_count", 1),
                           ("feed_forward_length", 16)]:
            w.add_uint32(f"{arch}.{key}", value)
        w.add_head_count(2)
        if scaling:
            w.add_string(f"{arch}.rope.scaling.type", scaling)
        w.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()


if __name__ == "__main__":
    if sys.argv[1:] == ["refused"]:
        refused()
    else:
        main(*sys.argv[1:])
