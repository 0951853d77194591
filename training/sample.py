"""`kyara sample`: a grid of faces from a checkpoint's EMA generator."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from training.checkpoint import load_generator
from training.grid import save_grid
from training.losses import sample_labels


@torch.no_grad()
def sample(checkpoint: str | Path, tags: str | list[str], n: int, seed: int) -> torch.Tensor:
    """n images with the given tags on; each exclusive group left open is drawn from the priors."""
    generator, vocab, priors, cfg = load_generator(checkpoint)
    chosen = vocab.parse(tags)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, cfg.model.noise_dim, generator=gen)
    labels = sample_labels(vocab, torch.tensor(priors), n, gen)
    for tag in chosen:
        group = vocab.group_of(tag)
        if group.exclusive:
            labels[:, [vocab.index(t) for t in group.tags]] = 0
        labels[:, vocab.index(tag)] = 1
    return generator(noise, labels)


def sample_to_file(checkpoint: str | Path, tags: str, n: int, seed: int, out: str | Path) -> Path:
    if n < 1:
        raise ValueError(f"-n must be at least 1, got {n}")
    images = sample(checkpoint, tags, n, seed)
    return save_grid(images, out, rows=max(1, round(math.sqrt(n))))
