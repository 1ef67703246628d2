#!/usr/bin/env python3
"""Writes the test images tests/fixtures/images/*.png from scikit-image's sample data (public domain /
CC0 pictures shipped in its wheel): a cat, a cup of coffee, a rocket, scaled so the shorter side is 240
pixels (Pillow, Lanczos); and at their own size an astronaut (512x512), a motorcycle (741x500) and a
portrait strip of the Hubble deep field (520x872). Stored as 8-bit RGB PNG, so every decoder (Pillow,
the png crate, the browser) reads the same pixels.

    pip install pillow && python3 scripts/make_image_fixtures.py
"""
import glob
import io
import os
import subprocess
import sys
import tempfile
import zipfile

from PIL import Image

IMAGES = {"chelsea.png": "cat.png", "coffee.png": "coffee.png", "rocket.jpg": "rocket.png"}
# Kept at their own size (other aspect ratios and sizes, for the preprocessing's crop and resize):
# name in the wheel -> (file, box to cut or None). The Hubble strip is a portrait cut of the 1000x872
# picture, 520 wide, so its crop (455) is more than twice the model's 224: the antialiased resize.
NATIVE = {
    "astronaut.png": ("astronaut.png", None),
    "motorcycle_left.png": ("motorcycle.png", None),
    "hubble_deep_field.jpg": ("hubble-portrait.png", (240, 0, 760, 872)),
}

out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "images")
os.makedirs(out_dir, exist_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    subprocess.check_call([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp,
                           "--only-binary=:all:", "scikit-image==0.24.0"])
    wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
    with zipfile.ZipFile(wheel) as z:
        for src, dst in IMAGES.items():
            img = Image.open(io.BytesIO(z.read(f"skimage/data/{src}"))).convert("RGB")
            scale = 240 / min(img.size)
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
            img.save(os.path.join(out_dir, dst), optimize=True)
            print(dst, img.size)
        for src, (dst, box) in NATIVE.items():
            img = Image.open(io.BytesIO(z.read(f"skimage/data/{src}"))).convert("RGB")
            if box:
                img = img.crop(box)
            img.save(os.path.join(out_dir, dst), optimize=True)
            print(dst, img.size)
