#!/usr/bin/env python3
"""Reference generations for tests/llama.rs, from transformers loading the same GGUF file.

Run by hand (never in CI), after scripts/fetch-models.sh:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch transformers gguf numpy accelerate
    /tmp/venv/bin/python scripts/goldens_smollm2.py
transformers dequantizes the GGUF's Q4_1/Q8_0 tensors to float32 and undoes llama.cpp's permutation
of the query/key rows; the model runs in float32 on the CPU. For each prompt (raw text, and a chat
rendered with the file's own chat template) it writes: the prompt text, transformers' token ids for it,
the ten highest next-token logits, and a greedy 32-token continuation (no EOS stop, so all 32 are
compared), into tests/goldens/SmolLM2-135M-Instruct.Q4_1.json.

Note on tokenization: transformers builds the GGUF's tokenizer from `tokenizer.ggml.*` but does not
know llama.cpp's "smollm" pre-tokenizer (every digit its own piece, as SmolLM2's own tokenizer.json
does), so for text with runs of digits its ids differ from the model's real tokenizer. The prompts here
are those where both agree; `digits` records the original tokenizer's behaviour separately.
"""
import json, os

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "models")
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(HERE, "..", "tests", "goldens", "SmolLM2-135M-Instruct.Q4_1.json")
NEW_TOKENS = 32

CASES = [
    {"name": "raw", "prompt": "The capital of France is", "chat": False},
    {"name": "raw_long", "prompt": "Once upon a time, in a small village by the sea, there lived an old "
     "fisherman who told stories about the lighthouse. Every evening the children gathered", "chat": False},
    {"name": "chat", "prompt": "What is the capital of France?", "chat": True},
]


def main():
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(MODELS, gguf_file=FILE)
    model = AutoModelForCausalLM.from_pretrained(MODELS, gguf_file=FILE, torch_dtype=torch.float32)
    model.eval()
    out = {"model": FILE, "transformers": __import__("transformers").__version__,
           "torch": torch.__version__, "new_tokens": NEW_TOKENS, "cases": []}
    for case in CASES:
        if case["chat"]:
            text = tok.apply_chat_template([{"role": "user", "content": case["prompt"]}],
                                           tokenize=False, add_generation_prompt=True)
        else:
            text = case["prompt"]
        ids = tok(text, add_special_tokens=False)["input_ids"]
        input_ids = torch.tensor([ids])
        with torch.no_grad():
            logits = model(input_ids).logits[0, -1]
            top = torch.topk(logits, 10)
            gen = model.generate(input_ids, max_new_tokens=NEW_TOKENS, do_sample=False,
                                 min_new_tokens=NEW_TOKENS, eos_token_id=None, pad_token_id=tok.eos_token_id)
        new_ids = gen[0, len(ids):].tolist()
        out["cases"].append({
            "name": case["name"], "chat": case["chat"], "prompt": case["prompt"], "text": text,
            "prompt_ids": ids,
            "top_logits": [[int(i), float(v)] for v, i in zip(top.values, top.indices)],
            "greedy_ids": new_ids,
            "greedy_text": tok.decode(new_ids),
        })
        print(case["name"], len(ids), "prompt tokens ->", repr(tok.decode(new_ids)))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
