#!/usr/bin/env python3
"""A tiny random LLaMA checkpoint in Hugging Face's layout, and transformers' answers for it, for
tests/llama.rs: the safetensors path (BF16 weights, converted to f32 on the GPU at load; an untied LM
head; rotate-half RoPE) that the GGUF model does not exercise.

Run by hand (never in CI): /tmp/venv/bin/python scripts/make_tiny_llama.py [--goldens-only]
(--goldens-only: recompute golden.json from the checkpoint on disk, leaving the weights as they are)
Writes tests/fixtures/tiny-llama/: config.json, model.safetensors (bf16, ~0.3 MB), tokenizer.json
(byte-level BPE over the 256 bytes, no merges), tokenizer_config.json (a ChatML template) and
golden.json (prompt ids, top-10 first-step logits, a greedy 16-token continuation, float32 on the CPU).
"""
import json, os, sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from tokenizers.pre_tokenizers import ByteLevel
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "tiny-llama")
CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def main():
    os.makedirs(OUT, exist_ok=True)
    alphabet = sorted(ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}
    vocab["<|im_start|>"], vocab["<|im_end|>"] = 256, 257
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    tok.save(os.path.join(OUT, "tokenizer.json"))
    fast = PreTrainedTokenizerFast(tokenizer_file=os.path.join(OUT, "tokenizer.json"),
                                   eos_token="<|im_end|>", bos_token="<|im_start|>")
    fast.chat_template = CHATML
    with open(os.path.join(OUT, "tokenizer_config.json"), "w") as f:
        json.dump({"eos_token": "<|im_end|>", "bos_token": "<|im_start|>", "chat_template": CHATML}, f, indent=1)

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=258, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      rms_norm_eps=1e-5, rope_theta=1000.0, tie_word_embeddings=False,
                      eos_token_id=257, bos_token_id=256)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # larger weights than the init's 0.02, so the logits are not all alike
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(4.0)
    model = model.to(torch.bfloat16)
    model.save_pretrained(OUT, safe_serialization=True)
    goldens(fast)


def goldens(fast):
    # The reference reads the saved bf16 weights back into float32. (Not `model.float()` of the bf16
    # model in memory: `.to(bfloat16)` also rounds RoPE's inv_freq buffer, which puts the logits
    # ~3e-4 off what transformers computes from the checkpoint; the first goldens had that error.)
    model = LlamaForCausalLM.from_pretrained(OUT, torch_dtype=torch.float32).eval()
    cases = []
    for name, prompt, chat in [("raw", "Hello, tiny model", False), ("chat", "Hi there", True)]:
        text = fast.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                        add_generation_prompt=True) if chat else prompt
        ids = fast(text, add_special_tokens=False)["input_ids"]
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = model(x).logits[0, -1]
            top = torch.topk(logits, 10)
            gen = model.generate(x, max_new_tokens=16, min_new_tokens=16, do_sample=False,
                                 eos_token_id=None, pad_token_id=0)
        cases.append({"name": name, "chat": chat, "prompt": prompt, "prompt_ids": ids,
                      "top_logits": [[int(i), float(v)] for v, i in zip(top.values, top.indices)],
                      "greedy_ids": gen[0, len(ids):].tolist()})
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump({"cases": cases}, f, indent=1)
    for f in ("generation_config.json",):
        if os.path.exists(os.path.join(OUT, f)):
            os.remove(os.path.join(OUT, f))


if __name__ == "__main__":
    if "--goldens-only" in sys.argv:
        fast = PreTrainedTokenizerFast(tokenizer_file=os.path.join(OUT, "tokenizer.json"),
                                       eos_token="<|im_end|>", bos_token="<|im_start|>")
        fast.chat_template = CHATML
        goldens(fast)
    else:
        main()
