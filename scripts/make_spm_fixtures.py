#!/usr/bin/env python3
"""SentencePiece vocabularies as GGUF files store them (`tokenizer.ggml.model = "llama"`), and what
transformers' GGUF tokenizer makes of them, for tests/tokenizer.rs.

Run by hand (never in CI): /tmp/venv/bin/python scripts/make_spm_fixtures.py
    (pip install sentencepiece transformers gguf numpy)

A small BPE SentencePiece model is trained here on a built-in corpus (byte fallback on, so text outside
the vocabulary becomes <0xNN> byte tokens, as in LLaMA 2, Phi-3 and Gemma), then written as header-only
GGUF files the way llama.cpp's convert_hf_to_gguf.py writes such vocabularies: the pieces, their scores
and types (NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, BYTE 6), bos/eos/unk ids. Three files, one
per way transformers (and llama.cpp) builds the tokenizer from them, picked by architecture:
  spm-llama.gguf  `llama`: a "▁" prepended to the text (Metaspace), merges ordered by score
  spm-phi3.gguf   `phi3`: the same vocabulary; the prefix and spaces through a normalizer
  spm-gemma.gguf  `gemma3`: no prefix; runs of spaces are pieces of their own, stored as real spaces
                  (as Gemma's files have them); merges ordered by position in the file, not score
golden.json holds, for each file and text, transformers' ids (`encode(text, add_special_tokens=False)`)
and its decoding of them (`skip_special_tokens=True`); sentencepiece's own ids are printed next to them.
"""
import json
import os

import numpy as np
import sentencepiece as spm
from gguf import GGUFWriter
from transformers import AutoTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "spm")

CORPUS = """The quick brown fox jumps over the lazy dog. The dog sleeps in the sun.
A tiny model reads the text, one token after another, and writes the next one.
Hello there! How are you today? I am fine, thank you. Tell me more, please.
Numbers: 1 12 123 1234 2026 3.14 42, and the year 1999.
    Indented lines    keep    their    spaces.
def main():
    print("hello world")
    return 0
Tokens, merges and scores make a vocabulary; bytes fill the gaps.
""" * 20

# Control tokens as chat models have them, kept whole in the text.
CONTROL = ["<start_of_turn>", "<end_of_turn>", "<|user|>", "<|assistant|>", "<|end|>"]

TEXTS = [
    "Hello there! How are you today?",
    " leading space and  two spaces",
    "Indented    runs     of spaces\nand a new line\n\n",
    "digits 1234567 and 3.14159",
    "unseen: Zürich, naïve café — 東京 🙂",
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "<|user|>\nTell me more, please.<|end|>\n<|assistant|>\n",
    "",
    "the",
]


def train():
    os.makedirs(OUT, exist_ok=True)
    corpus = os.path.join(OUT, "corpus.txt")
    with open(corpus, "w") as f:
        f.write(CORPUS)
    prefix = os.path.join(OUT, "spm")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, model_type="bpe", vocab_size=420, byte_fallback=True,
        character_coverage=1.0, user_defined_symbols=CONTROL, remove_extra_whitespaces=False,
        split_digits=True, allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        minloglevel=2)
    os.remove(corpus)
    proc = spm.SentencePieceProcessor(model_file=prefix + ".model")
    os.remove(prefix + ".model")
    os.remove(prefix + ".vocab")
    return proc


def piece_type(proc, i):
    if proc.is_unknown(i):
        return 2
    if proc.is_control(i):
        return 3
    if proc.is_byte(i):
        return 6
    if proc.id_to_piece(i) in CONTROL:
        return 4 if proc.id_to_piece(i).startswith("<|") else 3
    return 1


def write(proc, name, arch, add_space_prefix, respell_spaces):
    pieces = [proc.id_to_piece(i) for i in range(proc.get_piece_size())]
    if respell_spaces:  # Gemma's files store whitespace-only pieces as spaces
        pieces = [" " * len(p) if p and set(p) == {"\u2581"} and len(p) > 1 else p for p in pieces]
    path = os.path.join(OUT, name)
    w = GGUFWriter(path, arch)
    w.add_tokenizer_model("llama")
    w.add_token_list(pieces)
    w.add_token_scores([float(proc.get_score(i)) for i in range(len(pieces))])
    w.add_token_types([piece_type(proc, i) for i in range(len(pieces))])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(add_space_prefix)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return pieces


def main():
    proc = train()
    golden = {"made_by": "scripts/make_spm_fixtures.py", "files": {}}
    for name, arch, prefix, respell in [("spm-llama.gguf", "llama", True, False),
                                        ("spm-phi3.gguf", "phi3", True, False),
                                        ("spm-gemma.gguf", "gemma3", False, True)]:
        pieces = write(proc, name, arch, prefix, respell)
        tok = AutoTokenizer.from_pretrained(OUT, gguf_file=name)
        cases = []
        for text in TEXTS:
            ids = tok.encode(text, add_special_tokens=False)
            decoded = tok.decode(ids, skip_special_tokens=True)
            cases.append({"text": text, "ids": ids, "decoded": decoded})
            print(f"{name} {text[:30]!r}: {ids[:12]} | spm {proc.encode(text)[:12]}")
        golden["files"][name] = {"vocab_size": len(pieces), "cases": cases}
        if respell:
            assert any(p.strip() == "" and len(p) > 1 for p in pieces), "no whitespace pieces to respell"
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    np.random.seed(0)
    main()
