#!/usr/bin/env python3
"""Seed corpora and fixtures for the fuzz targets in fuzz/ (run by hand; the outputs are committed).

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install gguf numpy
    /tmp/venv/bin/python scripts/make_fuzz_seeds.py      # after scripts/fetch-models.sh

Writes fuzz/corpus_data/wordpiece-tokenizer.json (all-MiniLM-L6-v2's tokenizer with its vocabulary cut
to 2 537 entries: the same normalizer, pre-tokenizer and post-processor, small enough to commit) and
fuzz/seeds/<target>/: small valid files of each format, which the fuzzer then mutates.
"""
import json, os, struct

import numpy as np
import gguf

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CORPUS = os.path.join(ROOT, "fuzz", "seeds")


def seed(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def wordpiece():
    t = json.load(open(os.path.join(ROOT, "models", "all-MiniLM-L6-v2", "tokenizer.json")))
    v = t["model"]["vocab"]
    keep = sorted(((k, i) for k, i in v.items() if i < 2000 or (k.startswith("##") and i < 8000)),
                  key=lambda kv: kv[1])
    new = {k: n for n, (k, _) in enumerate(keep)}
    t["model"]["vocab"] = new
    for a in t.get("added_tokens", []):
        a["id"] = new[a["content"]]
    t["padding"] = None
    t["truncation"] = None
    for s in t["post_processor"]["special_tokens"].values():
        s["ids"] = [new[x] for x in s["tokens"]]
    out = os.path.join(ROOT, "fuzz", "corpus_data", "wordpiece-tokenizer.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    json.dump(t, open(out, "w"), ensure_ascii=False, separators=(",", ":"))


def safetensors_file(tensors):
    header, blobs, off = {}, [], 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    js = json.dumps(header).encode()
    return struct.pack("<Q", len(js)) + js + b"".join(blobs)


def gguf_file(path):
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_feed_forward_length(16)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "a", "b", "c", "Ġ", "Ġa", "ab", "abc"]
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3, 1, 1, 1, 1, 1, 1, 1])
    w.add_token_merges(["a b", "ab c", "Ġ a"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}")
    w.add_tensor("token_embd.weight", np.zeros((10, 8), dtype=np.float32))
    w.add_tensor("output_norm.weight", np.ones(8, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    wordpiece()
    f32 = np.arange(6, dtype=np.float32).tobytes()
    seed("safetensors_header", "two-tensors.safetensors", safetensors_file({
        "a.weight": ("F32", [2, 3], f32), "b": ("F16", [3], np.ones(3, dtype=np.float16).tobytes())}))
    seed("safetensors_header", "index.json", json.dumps(
        {"metadata": {"total_size": 24}, "weight_map": {"a.weight": "m-1.safetensors", "b": "m-2.safetensors"}}))
    path = os.path.join(CORPUS, "gguf_header", "tiny-llama.gguf")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    gguf_file(path)
    for name in ["tiny-llama"]:
        seed("model_config", f"{name}.json", open(os.path.join(ROOT, "tests", "fixtures", name, "config.json")).read())
    seed("model_config", "minilm.json", open(os.path.join(ROOT, "models", "all-MiniLM-L6-v2", "config.json")).read())
    for i, text in enumerate(["Hello world", "Café naïve 東京 😀", "fn main() { 12.5% }", "", "a" * 300]):
        seed("tokenizer_input", f"text-{i}", text)


if __name__ == "__main__":
    main()
