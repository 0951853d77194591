"""Sample grids: PNG sheets of generated faces, written atomically."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common.files import atomic_path
from common.vocab import Vocabulary


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """G's output in [-1, 1], N x 3 x H x W -> uint8 N x H x W x 3."""
    images = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round()
    return images.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def save_grid(images: torch.Tensor | np.ndarray, path: str | Path, rows: int) -> Path:
    """Tile N images into `rows` rows and save as PNG (temporary file + rename)."""
    pixels = to_uint8(images) if isinstance(images, torch.Tensor) else images
    n, h, w, _ = pixels.shape
    cols = -(-n // rows)
    sheet = np.full((rows * h, cols * w, 3), 255, dtype=np.uint8)
    for i, im in enumerate(pixels):
        r, c = divmod(i, cols)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = im
    return save_png(Image.fromarray(sheet), path)


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Save as PNG under a temporary name, then rename: a reader never sees half a sheet."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def sample_grid_inputs(vocab: Vocabulary, priors: np.ndarray, noise_dim: int, seed: int, cols: int = 8
                       ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Fixed noise and labels for the training sample grid: one row per colour of the first exclusive
    group (hair colour), the same noise down each column, the other tags drawn once per column."""
    rng = np.random.default_rng(seed + 12345)
    noise = torch.from_numpy(rng.standard_normal((cols, noise_dim), dtype=np.float32))
    column_labels = torch.from_numpy(vocab.sample_labels(priors, cols, rng))
    groups = vocab.exclusive_groups
    row_tags = groups[0].tags if groups else (None,)
    noise_rows, label_rows = [], []
    for tag in row_tags:
        labels = column_labels.clone()
        if tag is not None:
            labels[:, [vocab.index(t) for t in groups[0].tags]] = 0
            labels[:, vocab.index(tag)] = 1
        noise_rows.append(noise)
        label_rows.append(labels)
    return torch.cat(noise_rows), torch.cat(label_rows), len(row_tags)
