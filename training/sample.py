"""`kyara sample`: a grid of faces from a checkpoint's EMA generator.

The noise and labels come from `training.evaluate.draw`, the one place that turns a seed and the chosen tags
into generator inputs, and the faces from evaluation's `torch_source` wrapper of the generator.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from training.checkpoint import load_generator
from training.evaluate import draw, torch_source
from training.grid import save_grid


def sample(checkpoint: str | Path, tags: str | list[str], n: int, seed: int) -> np.ndarray:
    """n faces (uint8, N x H x W x 3) with the given tags on; each group left open is drawn from the priors."""
    generator, vocab, priors, _ = load_generator(checkpoint)
    source = torch_source(generator, vocab, priors)
    return source.generate(*draw(source, n, seed, vocab.parse(tags)))


def sample_to_file(checkpoint: str | Path, tags: str, n: int, seed: int, out: str | Path) -> Path:
    if n < 1:
        raise ValueError(f"-n must be at least 1, got {n}")
    images = sample(checkpoint, tags, n, seed)
    return save_grid(images, out, rows=max(1, round(math.sqrt(n))))
