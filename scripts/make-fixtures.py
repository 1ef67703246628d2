#!/usr/bin/env python3
"""Writes tests/fixtures/: a tiny sharded safetensors checkpoint (two shards and an index), written by
hand with struct/json so that it does not depend on the loader under test. Run by hand; the output is
committed. The tests read the expected values back with the `safetensors` crate, not from here."""
import json, os, struct

HERE = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "sharded")


def bf16(x):
    return struct.pack("<f", x)[2:]  # the top half of an f32 (these values are exact in bf16)


def write(path, tensors, header_pad):
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    text += b" " * header_pad  # an odd header length puts every tensor at an unaligned file offset
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


os.makedirs(HERE, exist_ok=True)
shard1 = [
    ("a.weight", "F32", [2, 3], struct.pack("<6f", 0.5, -1, 2, 3.25, -4, 5)),
    ("b.bias", "BF16", [3], b"".join(bf16(v) for v in (1.5, -2.0, 0.25))),
]
shard2 = [
    ("c.ids", "I64", [4], struct.pack("<4q", 0, 1, -1, 7)),
    ("d.half", "F16", [3], struct.pack("<3e", 0.5, -65504.0, 6.1e-5)),
]
write(os.path.join(HERE, "model-00001-of-00002.safetensors"), shard1, 3)
write(os.path.join(HERE, "model-00002-of-00002.safetensors"), shard2, 1)
index = {"metadata": {"total_size": 0}, "weight_map": {}}
for name, *_ in shard1:
    index["weight_map"][name] = "model-00001-of-00002.safetensors"
for name, *_ in shard2:
    index["weight_map"][name] = "model-00002-of-00002.safetensors"
with open(os.path.join(HERE, "model.safetensors.index.json"), "w") as f:
    json.dump(index, f, indent=2)
