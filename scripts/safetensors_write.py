"""Writes float32 tensors as a safetensors file in plain Python (no numpy, no torch), for the model
conversion scripts: `tensors` maps a name to (array("f"), shape). Written to PATH.part, then renamed,
so an interrupted conversion never leaves a file that looks complete."""
import json
import os
import struct
import sys
from array import array


def write_safetensors(path, tensors):
    header, offset = {}, 0
    for name in sorted(tensors):
        arr, shape = tensors[name]
        nbytes = 4 * len(arr)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path + ".part", "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name in sorted(tensors):
            arr = tensors[name][0]
            if sys.byteorder != "little":
                arr = array("f", arr)
                arr.byteswap()
            f.write(arr.tobytes())
    os.replace(path + ".part", path)
