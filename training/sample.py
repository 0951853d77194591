"""`kyara sample`: a grid of faces from a checkpoint's EMA generator."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from training.checkpoint import load_generator
from training.grid import save_grid


@torch.no_grad()
def sample(checkpoint: str | Path, tags: str | list[str], n: int, seed: int) -> torch.Tensor:
    """n images with the given tags on; each group left open is drawn from the priors."""
    generator, vocab, priors, cfg = load_generator(checkpoint)
    chosen = vocab.parse(tags)
    rng = np.random.default_rng(seed)
    noise = torch.from_numpy(rng.standard_normal((n, cfg.model.noise_dim), dtype=np.float32))
    labels = torch.from_numpy(vocab.sample_labels(priors, n, rng, chosen))
    return generator(noise, labels)


def sample_to_file(checkpoint: str | Path, tags: str, n: int, seed: int, out: str | Path) -> Path:
    if n < 1:
        raise ValueError(f"-n must be at least 1, got {n}")
    images = sample(checkpoint, tags, n, seed)
    return save_grid(images, out, rows=max(1, round(math.sqrt(n))))
