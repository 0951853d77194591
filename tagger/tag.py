"""`kyara tag`: label a folder of face crops with a tagger and write the tag CSV (with probabilities).

The `p:<tag>` columns keep every probability, so a different threshold can be applied later without running
the tagger again.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from tagger.model import load_tagger
from tagger.tagfile import write_tag_file
from training.crop import IMAGE_SUFFIXES


def tag_folder(folder: str | Path, out: str | Path | None = None, tagger_path: str | Path | None = None,
               batch_size: int = 128) -> Path:
    """Tag every image under `folder` (paths in the CSV are relative to it); unreadable files are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder of crops not found")
    out = Path(out) if out else folder / "tags.csv"
    tagger = load_tagger(tagger_path)
    size = tagger.config.input_size
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"{folder}: no images to tag")
    names, probs = [], []
    with tqdm(total=len(paths), desc="tag", unit="img") as bar:
        for start in range(0, len(paths), batch_size):
            batch, images = paths[start:start + batch_size], []
            for path in batch:
                try:
                    with Image.open(path) as im:
                        rgb = im.convert("RGB")
                except OSError as exc:
                    tqdm.write(f"kyara tag: skipping {path.relative_to(folder)}: {exc}")
                    continue
                images.append(np.asarray(rgb.resize((size, size), Image.Resampling.LANCZOS)))
                names.append(path.relative_to(folder).as_posix())
            if images:
                probs.append(tagger.predict(np.stack(images), batch_size=batch_size))
            bar.update(len(batch))
    if not names:
        raise ValueError(f"{folder}: none of the images could be read")
    probs_arr = np.concatenate(probs)
    write_tag_file(out, list(zip(names, tagger.tags_of(probs_arr))), probs_arr, tagger.vocab.tags)
    return out
