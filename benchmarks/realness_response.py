"""Does realness grade what a person sees? Real faces with a known defect at rising strength, scored as "generated".

    python benchmarks/realness_response.py --data ~/kyara-runs/data/getchu64

Defects, each at a few strengths: the dotted sub-pixel checkerboard that PixelShuffle generators draw (a +-a
pattern on alternate pixels), blur (the soft, smeared look), noise (grain), and melt (a smooth random warp of
a few pixels: bent eyes and outlines; its bilinear resampling also softens the texture a little). Each is scored by realness at full resolution
and by shape realness (32 px). A judge that agrees with a person scores clean faces near the real floor and
rises with each defect's strength; shape realness is meant to rise with melt and hardly with grain. Prints
`name: value unit` lines; never used as an assertion.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from common.packed import PackedSet
from metrics.realness import Protocol, judges, real_faces, realness


def checkerboard(images: np.ndarray, amplitude: float) -> np.ndarray:
    h, w = images.shape[1:3]
    sign = np.where((np.arange(h)[:, None] + np.arange(w)[None, :]) % 2, 1.0, -1.0)[None, :, :, None]
    return np.clip(images + amplitude * sign, 0, 255).astype(np.uint8)


def blur(images: np.ndarray, radius: float) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius))) for im in images])


def noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(images + rng.normal(0, sigma, images.shape), 0, 255).astype(np.uint8)


def melt(images: np.ndarray, pixels: float, seed: int = 0) -> np.ndarray:
    """Each face warped by its own smooth random field: a 4 x 4 grid of shifts with a standard deviation of
    `pixels` (smaller between the grid points), bicubically upsampled."""
    gen = torch.Generator().manual_seed(seed)
    n, h, w = images.shape[:3]
    shift = torch.randn(n, 2, 4, 4, generator=gen) * (2 * pixels / w)     # in grid_sample's [-1, 1] units
    field = F.interpolate(shift, size=(h, w), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    grid = torch.stack([xs, ys], dim=-1)[None] + field
    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float()
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


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
    cases += [("melt", melt, p) for p in (1, 2, 4)]
    for name, defect, strength in cases:
        fake = defect(real.stand_ins, strength)
        for judge, used in judges(protocol).items():
            score = realness(real.train, real.test, fake[:len(real.train)], fake[len(real.train):], used)
            print(f"{judge}_{name}_{strength}: {score['accuracy']:.3f} (log-loss {score['log_loss']:.3f})")


if __name__ == "__main__":
    main()
