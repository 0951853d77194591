"""`kyara tag`: label a folder of face crops with a tagger and write the tag CSV (with probabilities).

The `p:<tag>` columns keep every probability, so a different threshold can be applied later without running
the tagger again.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tagger.model import load_tagger
from tagger.tagfile import write_tag_file
from training.crop import finished_crops
from training.images import IMAGE_SUFFIXES, load_rgb, skip_reason


def crops_to_tag(folder: Path) -> list[str]:
    """The images of `folder` to tag, as paths relative to it.

    In a `kyara crop` output folder only the crops of finished pictures: an interrupted picture's crops are
    written again by the next crop run and must not be tagged twice. Anywhere else every image, recursively.
    """
    names = finished_crops(folder)
    if names is None:
        names = [p.relative_to(folder).as_posix() for p in folder.rglob("*")
                 if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(names)


def tag_folder(folder: str | Path, out: str | Path | None = None, tagger_path: str | Path | None = None,
               batch_size: int = 128) -> Path:
    """Tag the crops under `folder` (paths in the CSV are relative to it); unreadable files are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder of crops not found")
    out = Path(out) if out else folder / "tags.csv"
    tagger = load_tagger(tagger_path)
    size = tagger.config.input_size
    todo = crops_to_tag(folder)
    if not todo:
        raise ValueError(f"{folder}: no images to tag")
    names, probs = [], []
    with tqdm(total=len(todo), desc="tag", unit="img") as bar:
        for start in range(0, len(todo), batch_size):
            images = []
            for name in todo[start:start + batch_size]:
                try:
                    images.append(load_rgb(folder / name, size))
                except Exception as exc:  # whatever the type, the reason is what the user needs
                    tqdm.write(f"kyara tag: skipping {name}: {skip_reason(exc)}", file=sys.stderr)
                    continue
                names.append(name)
            if images:
                probs.append(tagger.predict(np.stack(images), batch_size=batch_size))
            bar.update(min(batch_size, len(todo) - start))
    if not names:
        raise ValueError(f"{folder}: none of the images could be read")
    probs_arr = np.concatenate(probs)
    write_tag_file(out, list(zip(names, tagger.tags_of(probs_arr))), probs_arr, tagger.vocab.tags)
    return out
