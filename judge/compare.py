"""`kyara judge compare`: several models' faces from the same noise, one row each, above a row of real faces.

Judging a model means looking at its faces beside real ones at the size a person sees them (168 px, as on
the blind sheets), and judging a change means looking at two models' faces drawn from the same noise and
tags, so that only the models differ. Models with the same vocabulary and noise size get the same inputs;
others the same seed. Each truncation asked for is a row of its own, from the same noise drawn in.

`kyara judge blind` is the same judgement made blind: one model's faces shuffled with real ones, or two models'
(or truncations') faces shuffled with each other, on numbered sheets with the key apart (judge/blind.py).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from common.packed import PackedSet
from judge.blind import FACE, LABEL, blind_sheets, enlarged
from export.adapters import BUNDLED_UPSCALER, Source, check_resolution, draw, open_source, truncated, upscaled
from training.grid import save_png


def _entries(models: Sequence[str | Path], truncations: Sequence[float], scale: int = 1,
             methods: Sequence[str] = (BUNDLED_UPSCALER,)) -> list[tuple[str, Source]]:
    """(name, source) for each model at each truncation (and, at a scale above 1, each upscaling method),
    in that order."""
    if not truncations:
        raise ValueError("at least one truncation is needed")
    entries = []
    for model in models:
        model_source = open_source(model)
        for psi in truncations:
            source = truncated(model_source, psi)
            name = str(model) if source.truncation == 1 else f"{model}, truncation {source.truncation:g}"
            if scale == 1:
                entries.append((name, source))
                continue
            for method in methods:
                entries.append((f"{name}, x{scale} {method}", _upscaling(source, scale, method)))
    return entries


def _upscaling(source: Source, scale: int, method: str) -> Source:
    generate = source.generate
    return Source(lambda noise, labels: upscaled(generate(noise, labels), scale, method), source.vocab,
                  source.priors, source.noise_dim, source.truncation, source.resolution * scale)


def compare_rows(models: Sequence[str | Path], data: str | Path, n: int, seed: int, tags: str = "",
                 split: str = "val", truncations: Sequence[float] = (1.0,)) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 n x H x W x 3 faces) for each model and truncation, then n real faces of `split` picked
    by the seed."""
    if n < 1:
        raise ValueError(f"-n must be at least 1, got {n}")
    packed, indices = _real_split(data, split)     # before any model runs: a wrong --data fails at once
    entries = _entries(models, truncations)
    chosen = [source.vocab.parse(tags) for _, source in entries]     # every model's tags checked before any runs
    rows = []
    for (name, source), tags_on in zip(entries, chosen):
        rows.append((name, source.generate(*draw(source, n, seed, tags_on))))
    rows.append((f"real ({split} split of {data})", _picked(packed, indices, n, seed)))
    return rows


def _real_split(data: str | Path, split: str) -> tuple[PackedSet, np.ndarray]:
    packed = PackedSet.open(data)
    indices = packed.indices(split)
    if len(indices) == 0:
        raise ValueError(f"{data}: no faces in split {split!r}")
    return packed, indices


def _picked(packed: PackedSet, indices: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n of the split's faces (all, if it has fewer), picked by the seed, in index order."""
    pick = np.sort(np.random.default_rng(seed).choice(indices, min(n, len(indices)), replace=False))
    return np.asarray(packed.images[pick])


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


def paired_inputs(entries: Sequence[tuple[str, Source]], n: int, seed: int
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The same noise and tags for both entries of a paired A/B, drawn once from the priors of the entry with
    fewer tags. A model whose vocabulary adds tags to the other's (a model carried on to a larger vocabulary,
    e.g. with `male`) is asked for its extra tags off: both are asked for the same faces over the tags both
    know. Otherwise the tags, their priors (the data they were trained on) and the noise size must agree."""
    (first, a), (second, b) = entries
    small, large = (a, b) if len(a.vocab.tags) <= len(b.vocab.tags) else (b, a)
    shared = [large.vocab.index(t) for t in small.vocab.tags if t in large.vocab.tags]
    if (len(shared) != len(small.vocab.tags) or a.noise_dim != b.noise_dim
            or not np.allclose(small.priors, large.priors[shared], atol=1e-3)):
        raise ValueError(f"--paired needs the same tags (or one model's tags within the other's), the same tag "
                         f"priors on them and the same noise size: {first} and {second} differ")
    noise, labels = draw(small, n, seed)
    wide = np.zeros((n, len(large.vocab.tags)), labels.dtype)      # the larger model's extra tags off
    wide[:, shared] = labels
    return [(noise, labels if source is small else wide) for _, source in entries]


def blind_to_folder(models: Sequence[str | Path], out: str | Path, n: int = 60, seed: int = 0,
                    truncations: Sequence[float] = (1.0,), data: str | Path | None = None,
                    split: str = "val", paired: bool = False, scale: int = 1,
                    methods: Sequence[str] = (BUNDLED_UPSCALER,)) -> dict:
    """Blind sheets of n faces of each of two kinds, tags drawn from the priors as the page draws them:
    a model (at a truncation) against n real faces of `data`, or two (model, truncation) entries against
    each other. Each entry draws its own noise, so no face on the sheet has a twin to be matched with.

    `paired` gives both entries of an A/B the same noise and tags instead: each face has a twin from the
    other entry, and `paired_tally` counts which of the two a person called better. Two sets of 60 drawn
    apart differ by chance alone by about a tenth of their faces; twins differ only by the models (so both
    must have been trained on the same tags and priors).

    `scale` 2 or 4 shows every face at that many times its size, at that size on the sheet, upscaled by each
    of `methods` ("upscaler", the page's HD; "bicubic"; or another upscaler folder): two methods make an A/B
    of one model, and real faces are upscaled by the one method, as the generated faces beside them."""
    if n < 1:
        raise ValueError(f"-n must be at least 1, got {n}")
    methods = tuple(methods) if scale > 1 else (BUNDLED_UPSCALER,)
    for method in methods:      # before any model runs: a wrong folder fails at once
        if method not in ("bicubic", BUNDLED_UPSCALER) and not (Path(method) / "manifest.json").is_file():
            raise ValueError(f"--upscale {method}: not bicubic, upscaler, or an upscaler folder with manifest.json")
    wanted = len(models) * len(truncations) * len(methods)
    if wanted not in (1, 2):
        raise ValueError(f"kyara judge blind compares one model with real faces or two with each other; "
                         f"{len(models)} models at {len(truncations)} truncations and {len(methods)} upscaling "
                         f"methods make {wanted}")
    if wanted == 1 and data is None:
        raise ValueError("one model is judged against real faces: give --data (a packed set)")
    if wanted == 1 and paired:
        raise ValueError("--paired is for two models (or truncations): a real face has no generated twin")
    real = _real_split(data, split) if wanted == 1 else None      # a wrong --data fails before any model runs
    entries = _entries(models, truncations, scale, methods)
    # Faces of two sizes cannot share a sheet: checked before any model runs.
    if real is not None:
        check_resolution(replace(entries[0][1], resolution=entries[0][1].resolution // scale), models[0], real[0])
    elif entries[0][1].resolution != entries[1][1].resolution:
        raise ValueError(f"{entries[0][0]} makes {entries[0][1].resolution} px faces but {entries[1][0]} makes "
                         f"{entries[1][1].resolution} px: blind sheets compare faces of one size")
    if paired:
        faces = [source.generate(*inputs) for (_, source), inputs in zip(entries, paired_inputs(entries, n, seed))]
    else:
        faces = [source.generate(*draw(source, n, seed + k)) for k, (_, source) in enumerate(entries)]
    names = [name for name, _ in entries]
    if real is not None:
        faces.append(upscaled(_picked(*real, n, seed), scale, methods[0]))
        names.append(f"real ({split} split of {data})" + (f", x{scale} {methods[0]}" if scale > 1 else ""))
    return blind_sheets(faces[0], faces[1], out, seed, kinds=(names[0], names[1]), twins=paired,
                        face=FACE if scale == 1 else faces[0].shape[1])
