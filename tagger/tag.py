"""`kyara data tag`: label a folder of face crops with a tagger and write the tag CSV (with probabilities).

The tagger is the shipped one, one of `kyara tagger train`, or a pretrained WD v3 Danbooru tagger
(`tagger.wd`). The `p:<tag>` columns keep every probability, so a different threshold can be applied later
without running the tagger again.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.crops import finished_crops
from common.images import IMAGE_SUFFIXES, load_rgb, skip_reason
from common.vocab import TagError
from tagger.model import Tagger, load_tagger
from dataset.tagfile import write_tag_file
from tagger.wd import WDTagger, is_wd_folder


def crops_to_tag(folder: Path) -> list[str]:
    """The images of `folder` to tag, as paths relative to it.

    In a `kyara data crop` output folder only the crops of finished pictures: an interrupted picture's crops are
    written again by the next crop run and must not be tagged twice. Anywhere else every image, recursively.
    """
    names = finished_crops(folder)
    if names is None:
        names = [p.relative_to(folder).as_posix() for p in folder.rglob("*")
                 if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(names)


def open_tagger(path: str | Path | None = None, device: str = "cpu") -> Tagger | WDTagger:
    """The shipped tagger (None), a folder of `kyara tagger train`, or a WD tagger's hub download."""
    if path is not None and is_wd_folder(path):
        return WDTagger(path, device)
    return load_tagger(path, device)


def set_thresholds(tagger: Tagger | WDTagger, default: float | None = None,
                   per_tag: dict[str, float] | None = None) -> None:
    """Override the thresholds of non-exclusive tags: `default` for all of them, then `per_tag` for some.

    A tag the tagger does not output, a tag of an exclusive group (colours take the likeliest) or a
    threshold outside [0, 1] is refused in one line.
    """
    values = {**({t: default for t in tagger.thresholds} if default is not None else {}), **(per_tag or {})}
    for tag, value in values.items():
        name = tagger.vocab.resolve(tag)
        if tagger.vocab.group_of(name).exclusive:
            raise TagError(f"{name!r} is in the exclusive group {tagger.vocab.group_of(name).name!r}: "
                           "its likeliest tag is taken, it has no threshold")
        if not 0 <= value <= 1:
            raise ValueError(f"threshold of {name!r} must be between 0 and 1, got {value}")
        tagger.thresholds[name] = float(value)


def tag_folder(folder: str | Path, out: str | Path | None = None, tagger_path: str | Path | None = None,
               batch_size: int = 128, threshold: float | None = None,
               tag_thresholds: dict[str, float] | None = None) -> Path:
    """Tag the crops under `folder` (paths in the CSV are relative to it); unreadable files are skipped.

    `threshold` and `tag_thresholds` override the tagger's own thresholds (see `set_thresholds`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder of crops not found")
    out = Path(out) if out else folder / "tags.csv"
    tagger = open_tagger(tagger_path)
    set_thresholds(tagger, threshold, tag_thresholds)
    todo = crops_to_tag(folder)
    if not todo:
        raise ValueError(f"{folder}: no images to tag")
    names, probs = [], []
    with tqdm(total=len(todo), desc="tag", unit="img") as bar:
        for start in range(0, len(todo), batch_size):
            images = []
            for name in todo[start:start + batch_size]:
                try:
                    images.append(load_rgb(folder / name, tagger.load_size))
                except Exception as exc:  # whatever the type, the reason is what the user needs
                    tqdm.write(f"kyara data tag: skipping {name}: {skip_reason(exc)}", file=sys.stderr)
                    continue
                names.append(name)
            if images:
                probs.append(tagger.predict(images))
            bar.update(min(batch_size, len(todo) - start))
    if not names:
        raise ValueError(f"{folder}: none of the images could be read")
    probs_arr = np.concatenate(probs)
    undecided = tagger.undecided_of(probs_arr) if isinstance(tagger, Tagger) else None
    write_tag_file(out, list(zip(names, tagger.tags_of(probs_arr))), probs_arr, tagger.vocab.tags,
                   dict(zip(names, undecided)) if undecided is not None else None)
    return out
