"""Differentiable augmentation of D's inputs (Zhao et al. 2020, "DiffAugment"), for small data sets.

D sees every real and every fake image through the same random transforms, and G's gradient flows back
through them. D can then no longer memorise the ~16k distinct Getchu faces, and, because the fakes are
transformed too, G is not taught to draw the transforms (as it would be if only the reals were augmented).

Policies, comma-separated in `TrainConfig.augment`:
- translation: shift by up to 1/8 of the side, the uncovered border filled with zeros (mid grey);
- cutout: a square of half the side set to zero at a random place;
- colour: brightness, saturation and contrast jitter. It changes the colours the tag head is asked about,
  so it is off in the shipped configs: hair and eye colour are the labels.
Every random draw comes from the trainer's device generator, so a resumed run repeats exactly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("translation", "cutout", "colour")


def parse_policy(policy: str) -> tuple[str, ...]:
    """`"translation,cutout"` -> ("translation", "cutout"); an unknown name is a one-line error."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"augment: unknown policy {', '.join(unknown)} (known: {', '.join(POLICIES)})")
    return names


def augment(images: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator) -> torch.Tensor:
    """Apply each policy in turn to a batch in [-1, 1] (N x 3 x H x W); an empty policy returns the batch."""
    for name in policy:
        images = _OPS[name](images, generator)
    return images


def _uniform(n: int, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, generator=generator, device=like.device, dtype=like.dtype)


def _colour(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n = len(x)
    x = x + (_uniform(n, x, generator) - 0.5)                               # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(n, x, generator) * 2) + mean                  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(n, x, generator) + 0.5) + mean             # contrast


def _translation(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (n,), generator=generator, device=x.device)
    dx = torch.randint(-sx, sx + 1, (n,), generator=generator, device=x.device)
    # Gather from a zero-padded copy: output pixel (i, j) of image k reads (i - dy[k], j - dx[k]).
    padded = F.pad(x, (sx, sx, sy, sy))
    rows = (torch.arange(h, device=x.device)[None, :] - dy[:, None] + sy)          # n x h
    cols = (torch.arange(w, device=x.device)[None, :] - dx[:, None] + sx)          # n x w
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]    # n x h x w x c
    return out.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


def _cutout(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n,), generator=generator, device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n,), generator=generator, device=x.device)
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    inside_y = (ys >= (cy[:, None] - ch // 2)) & (ys < (cy[:, None] - ch // 2 + ch))
    inside_x = (xs >= (cx[:, None] - cw // 2)) & (xs < (cx[:, None] - cw // 2 + cw))
    keep = ~(inside_y[:, :, None] & inside_x[:, None, :])                          # n x h x w
    return x * keep[:, None].to(x.dtype)


_OPS = {"translation": _translation, "cutout": _cutout, "colour": _colour}
