#!/usr/bin/env python3
"""Reference sentence embeddings for tests/bert.rs, from sentence-transformers itself.

Run by hand (never in CI), after scripts/fetch-models.sh:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch sentence-transformers
    /tmp/venv/bin/python scripts/goldens_minilm.py
Writes tests/goldens/all-MiniLM-L6-v2.json: the texts, their token ids (as the model's tokenizer
gives them after sentence-transformers' own truncation to max_seq_length) and their normalized
embeddings (float32, as the model computes them on the CPU); and, under "similarities", the cosine
similarities of the pairs examples/vite-app compares (checked by tests/e2e/demo.mjs).
"""
import json, os, sys

import torch
from sentence_transformers import SentenceTransformer

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "models", "all-MiniLM-L6-v2")
OUT = os.path.join(HERE, "..", "tests", "goldens", "all-MiniLM-L6-v2.json")

long_en = ("The quick brown fox jumps over the lazy dog while the curious cat watches from the "
           "windowsill, wondering why anyone would jump over a dog at all. ")
TEXTS = [
    "Hello world",
    "",
    "A man is eating food.",
    "Café, naïve, jalapeño, résumé and Ångström: accents everywhere.",
    "東京は日本の首都です。人口は約1400万人です。",
    "I love this! 😀🎉🚀 Best day ever 👍",
    "fn main() { let x: Vec<u32> = (0..10).map(|i| i * i).collect(); println!(\"{:?}\", x); }",
    "In 2023, revenue grew 12.5% to $3,141,592.65 across 42 countries (FY24 Q3: +7%).",
    long_en * 5,   # past 128 tokens
    long_en * 12,  # past 256 tokens: truncated to max_seq_length
]


# examples/vite-app/src/main.ts embeds these three and reports two similarities.
PAIRS = {
    "meal_vs_food": ("A man is eating food.", "Someone is having a meal."),
    "meal_vs_market": ("A man is eating food.", "The stock market fell sharply today."),
}


def main():
    torch.manual_seed(0)
    model = SentenceTransformer(MODEL, device="cpu")
    tok = model.tokenizer
    ids = [tok(t, truncation=True, max_length=model.max_seq_length)["input_ids"] for t in TEXTS]
    emb = model.encode(TEXTS, batch_size=len(TEXTS), convert_to_numpy=True, normalize_embeddings=False)
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "max_seq_length": model.max_seq_length,
        "generated_by": "scripts/goldens_minilm.py, sentence-transformers "
        + __import__("sentence_transformers").__version__ + ", torch " + torch.__version__,
        "texts": TEXTS,
        "token_ids": ids,
        "embeddings": [[float(x) for x in e] for e in emb],
        "similarities": {
            name: float(torch.nn.functional.cosine_similarity(
                torch.from_numpy(model.encode([a])), torch.from_numpy(model.encode([b]))))
            for name, (a, b) in PAIRS.items()
        },
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f)
    print(f"wrote {OUT}: {len(TEXTS)} texts, lengths {[len(i) for i in ids]}", file=sys.stderr)


if __name__ == "__main__":
    main()
