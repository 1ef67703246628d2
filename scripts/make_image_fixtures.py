#!/usr/bin/env python3
"""Writes the test images tests/fixtures/images/*.png from scikit-image's sample data (public domain /
CC0 pictures shipped in its wheel): a cat, a cup of coffee, a rocket. Scaled so the shorter side is 240
pixels (Pillow, Lanczos) and stored as 8-bit RGB PNG, so every decoder (Pillow, the png crate, the
browser) reads the same pixels.

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
