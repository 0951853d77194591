"""Data-pipeline throughput: `kyara data crop` on ../shared/data/test_pictures, and the shipped tagger.

    python benchmarks/data.py [--pictures DIR] [--workers 2]

Prints `name: value unit` lines. Timings include decoding and writing, as a user's run would.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tagger.model import load_tagger
from tagger.tag import tag_folder
from dataset.crop import crop_folder

PICTURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "test_pictures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=Path, default=PICTURES)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not args.pictures.is_dir():
        raise SystemExit(f"{args.pictures}: folder of test pictures not found")

    with tempfile.TemporaryDirectory() as tmp:
        crops = Path(tmp) / "crops"
        start = time.perf_counter()
        counts = crop_folder(args.pictures, crops, resolution=64, workers=args.workers)
        seconds = time.perf_counter() - start
        print(f"crop_pictures_per_s: {counts['processed'] / seconds:.2f} pictures/s")
        print(f"crop_crops_per_s: {counts['crops'] / seconds:.2f} crops/s")
        print(f"crop_crops: {counts['crops']} crops")

        start = time.perf_counter()
        tag_folder(crops)
        print(f"tag_folder_images_per_s: {counts['crops'] / (time.perf_counter() - start):.1f} img/s")

    tagger = load_tagger()
    images = np.random.default_rng(0).integers(0, 256, (512, 64, 64, 3), dtype=np.uint8)
    tagger.predict(images[:64])  # warm-up
    start = time.perf_counter()
    tagger.predict(images)
    print(f"tagger_predict_images_per_s: {len(images) / (time.perf_counter() - start):.1f} img/s")
    big = np.stack([np.asarray(Image.fromarray(im).resize((256, 256))) for im in images[:128]])
    start = time.perf_counter()
    tagger.predict(big)
    print(f"tagger_predict_256px_images_per_s: {len(big) / (time.perf_counter() - start):.1f} img/s")


if __name__ == "__main__":
    main()
