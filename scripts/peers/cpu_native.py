#!/usr/bin/env python3
"""MiniLM on the CPU natively: our CPU backend (`embed --backend cpu --bench`) against onnxruntime's
CPU execution provider (Python wheel) on the same ONNX export the browser peers run
(models/all-MiniLM-L6-v2/onnx/model.onnx, scripts/export_minilm_onnx.py), same threads, same shapes,
alternating rounds. JSON lines on stdout, one per engine, shape and round.

    scripts/peers/cpu-native.sh [--threads 2] [--shapes 1x128,8x128] [--rounds 3]

(cpu-native.sh builds the example and installs onnxruntime into bench-peers/venv-ort first.)
onnxruntime's time is session.run plus mean pooling and normalisation in numpy (ids given); ours is
Embedder::embed end to end (tokenizing included), median of 10 either way.
"""

import argparse
import json
import os
import platform
import subprocess
import time

import numpy as np
import onnxruntime as ort

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--shapes", default="1x128,8x128")
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--model", default="models/all-MiniLM-L6-v2")
p.add_argument("--embed", default="target/release/examples/embed")
a = p.parse_args()


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


adapter = f"cpu: {cpu_name()}, {a.threads} threads"
opts = ort.SessionOptions()
opts.intra_op_num_threads = a.threads
opts.inter_op_num_threads = 1
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(
    f"{a.model}/onnx/model.onnx", opts, providers=["CPUExecutionProvider"]
)
names = {i.name for i in session.get_inputs()}


def ort_ms(batch, seq):
    # [CLS] word … word [SEP] ("word" is one token, as in `embed --bench`); ids do not change the time.
    ids = np.full((batch, seq), 2773, dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if "token_type_ids" in names:
        feeds["token_type_ids"] = np.zeros_like(ids)

    def once():
        (h,) = session.run(["last_hidden_state"], feeds)
        m = feeds["attention_mask"][..., None].astype(np.float32)
        v = (h * m).sum(1) / m.sum(1)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    once()
    times = []
    for _ in range(10):
        t = time.perf_counter()
        once()
        times.append((time.perf_counter() - t) * 1e3)
    return sorted(times)[len(times) // 2]


def ours(shape):
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    out = subprocess.run(
        [a.embed, "--model", a.model, "--backend", "cpu", "--bench", shape],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


for r in range(1, a.rounds + 1):
    for shape in a.shapes.split(","):
        batch, seq = map(int, shape.split("x"))
        mine = ours(shape)
        theirs = ort_ms(batch, seq)
        common = {"op": "embed", "model": "all-MiniLM-L6-v2", "batch": batch, "seq": seq,
                  "round": r, "threads": a.threads}
        print(json.dumps({**common, "impl": "webgpu-infer (CPU backend, native)",
                          "ms": round(mine["ms"], 2), "adapter": mine["adapter"] + f"; {adapter}",
                          "ratio_vs_onnxruntime": round(mine["ms"] / theirs, 3)}), flush=True)
        print(json.dumps({**common, "impl": f"onnxruntime {ort.__version__} (CPU EP, Python)",
                          "ms": round(theirs, 2), "adapter": adapter}), flush=True)
