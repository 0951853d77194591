"""Does realness grade what a person sees? Real faces with a known defect at rising strength, scored as "generated".

    python benchmarks/realness_response.py --data ~/kyara-runs/data/getchu64

Defects, each at a few strengths: the dotted sub-pixel checkerboard that PixelShuffle generators draw (a +-a
pattern on alternate pixels), blur (the soft, smeared look), and noise (grain). A judge that agrees with a
person scores clean faces near 0.5 and rises with each defect's strength. Prints `name: value unit` lines;
never used as an assertion.
"""
from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageFilter

from common.packed import PackedSet
from training.realness import Protocol, real_faces, realness


def checkerboard(images: np.ndarray, amplitude: float) -> np.ndarray:
    h, w = images.shape[1:3]
    sign = np.where((np.arange(h)[:, None] + np.arange(w)[None, :]) % 2, 1.0, -1.0)[None, :, :, None]
    return np.clip(images + amplitude * sign, 0, 255).astype(np.uint8)


def blur(images: np.ndarray, radius: float) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius))) for im in images])


def noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(images + rng.normal(0, sigma, images.shape), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="packed set: validation faces are the real side")
    args = parser.parse_args()
    data, protocol = PackedSet.open(args.data), Protocol()
    real = real_faces(data, "val", protocol)
    cases = [("clean", noise, 0)]                  # noise of sigma 0: the faces as they are
    cases += [("checkerboard", checkerboard, a) for a in (4, 8, 16)]
    cases += [("blur", blur, r) for r in (0.5, 1.0, 2.0)]
    cases += [("noise", noise, s) for s in (4, 8, 16)]
    for name, defect, strength in cases:
        fake = defect(real.stand_ins, strength)
        score = realness(real.train, real.test, fake[:len(real.train)], fake[len(real.train):], protocol)
        print(f"realness_{name}_{strength}: {score['accuracy']:.3f} (log-loss {score['log_loss']:.3f})")


if __name__ == "__main__":
    main()
