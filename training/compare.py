"""`kyara compare`: several models' faces from the same noise, one row each, above a row of real faces.

Judging a model means looking at its faces beside real ones at the size a person sees them (168 px, as on
the blind sheets), and judging a change means looking at two models' faces drawn from the same noise and
tags, so that only the models differ. Models with the same vocabulary and noise size get the same inputs;
others the same seed. Each truncation asked for is a row of its own, from the same noise drawn in.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from common.packed import PackedSet
from training.blind import FACE, LABEL, enlarged
from training.evaluate import draw, open_source, truncated
from training.grid import save_png


def compare_rows(models: Sequence[str | Path], data: str | Path, n: int, seed: int, tags: str = "",
                 split: str = "val", truncations: Sequence[float] = (1.0,)) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 n x H x W x 3 faces) for each model and truncation, then n real faces of `split` picked
    by the seed."""
    if n < 1:
        raise ValueError(f"-n must be at least 1, got {n}")
    if not truncations:
        raise ValueError("at least one truncation is needed")
    packed = PackedSet.open(data)          # before any model runs: a wrong --data fails at once
    indices = packed.indices(split)
    if len(indices) == 0:
        raise ValueError(f"{data}: no faces in split {split!r}")
    rows = []
    for model in models:
        model_source = open_source(model)
        inputs = draw(model_source, n, seed, model_source.vocab.parse(tags))
        for psi in truncations:
            source = truncated(model_source, psi)
            name = str(model) if source.truncation == 1 else f"{model}, truncation {source.truncation:g}"
            rows.append((name, source.generate(*inputs)))
    pick = np.sort(np.random.default_rng(seed).choice(indices, min(n, len(indices)), replace=False))
    rows.append((f"real ({split} split of {data})", np.asarray(packed.images[pick])))
    return rows


def compare_sheet(rows: Sequence[tuple[str, np.ndarray]]) -> Image.Image:
    """One row of 168 px faces per entry, its name in a strip above it."""
    cols = max(len(faces) for _, faces in rows)
    sheet = Image.new("RGB", (cols * FACE, len(rows) * (FACE + LABEL)), "white")
    pen = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=LABEL - 6)
    for r, (name, faces) in enumerate(rows):
        y = r * (FACE + LABEL)
        pen.text((4, y + 2), name, fill="black", font=font)
        for c, face in enumerate(faces):
            sheet.paste(enlarged(face), (c * FACE, y + LABEL))
    return sheet


def compare_to_file(models: Sequence[str | Path], data: str | Path, out: str | Path, n: int = 8, seed: int = 0,
                    tags: str = "", split: str = "val", truncations: Sequence[float] = (1.0,)) -> Path:
    return save_png(compare_sheet(compare_rows(models, data, n, seed, tags, split, truncations)), out)
