"""`kyara data review`: numbered contact sheets for checking tags by eye, and corrections read back into the labels.

The paper checked its automatic tags by hand; this is how. `kyara data review sheets` lays faces out on numbered
sheets, 30 to a sheet with each 64 px crop shown at 168 px (large enough to see a blush or glasses): either
the faces that have a tag, or all faces ranked by the tagger's probability for it (how rare tags are found:
the faces most likely to wear glasses come first). Beside the sheets it writes `corrections.csv`, one row per
numbered face in sheet order, `id,<tag>` with the face's current value (1 on, 0 off, -1 unknown). The
reviewer changes the values that are wrong; `kyara data review apply` writes them into a tag file, and the same
file is a `--labels` file for `kyara tagger train` (a packed set's labels are fixed when it is packed).

Faces come from a folder of crops with its tag file (`kyara data tag` output: its `p:<tag>` columns rank the
faces), or from a packed set (ranked by running a tagger on it; one image per face group, since a mirror
twin is the same face and takes its labels).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import AbstractSet as Set, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from common.files import write_bytes_atomic
from common.images import load_rgb
from common.packed import PackedSet
from common.vocab import TagError, canonical
from tagger.model import Tagger
from dataset.labels import read_label_file
from tagger.tag import open_tagger
from dataset.tagfile import read_tag_columns_by_row, read_tag_file, write_tag_file
from tagger.wd import WDTagger

CELL = 168          # px per face on a sheet (the annotators' sheets showed the 64 px crops at 168 px)
COLUMNS, ROWS = 6, 5
CAPTION = 16        # px of text under each face
CORRECTIONS = "corrections.csv"


@dataclass
class Face:
    """One face to review: its name in the tag file or packed set, pixels, current value and probability."""

    name: str
    image: np.ndarray
    value: int                  # 1 on, 0 off, -1 unknown
    probability: float | None


def _tag_of(name: str) -> str:
    tag = canonical(name)
    if tag is None:
        raise TagError(f"unknown tag {name!r}")
    return tag


def faces_from_folder(folder: str | Path, tag: str, tag_file: str | Path | None = None) -> list[Face]:
    """The faces of a crop folder's tag file, with the tag's probability where the file has `p:<tag>`."""
    folder = Path(folder)
    tag_path = Path(tag_file) if tag_file else folder / "tags.csv"
    rows = read_tag_file(tag_path)
    prob_tags, probs, _ = read_tag_columns_by_row(tag_path, rows)
    column = prob_tags.index(tag) if tag in prob_tags else None
    by_name = {name: p[column] for name, p in zip(rows, probs)} if column is not None else {}
    return [Face(name, load_rgb(folder / name), int(tag in tags), by_name.get(name)) for name, tags in rows.items()]


def faces_from_packed(packed: PackedSet, tag: str, tagger: Tagger | WDTagger | None = None,
                      skip: Set[str] = frozenset()) -> list[Face]:
    """One face per face group of a packed set; with a tagger, the tagger's probabilities. Groups holding an
    image named in `skip` (by name, or by file name without its extension, as label files name them) are left
    out: a search that goes on past faces already reviewed shows none of them again, nor their twins."""
    groups = np.asarray(packed.meta["group"])
    names = packed.meta.get("names") or [str(i) for i in range(len(packed))]
    reviewed = {g for g, name in zip(groups.tolist(), names) if name in skip or Path(name).stem in skip}
    first = np.unique(groups, return_index=True)[1]
    first = first[~np.isin(groups[first], list(reviewed))]
    images = np.asarray(packed.images[first])
    values = (packed.labels[first, packed.vocab.index(tag)] if tag in packed.vocab.tags
              else np.full(len(first), -1))
    probs: list[float | None] = [None] * len(first)
    if tagger is not None:
        if tag not in tagger.vocab.tags:
            raise TagError(f"the tagger does not output {tag!r}; it knows: {', '.join(tagger.vocab.tags)}")
        probs = tagger.predict(images)[:, tagger.vocab.index(tag)].tolist()
    return [Face(names[i], im, int(v), p) for i, im, v, p in zip(first, images, values, probs)]


def choose(faces: list[Face], ranked: bool, limit: int | None) -> list[Face]:
    """The faces with the tag on, or (ranked) all of them by falling probability; at most `limit`."""
    if ranked:
        if any(f.probability is None for f in faces):
            raise ValueError("ranking needs the tag's probability for every face: tag them with `kyara data tag` "
                             "(which writes p:<tag> columns) or give a tagger")
        faces = sorted(faces, key=lambda f: -f.probability)
    else:
        faces = [f for f in faces if f.value == 1]
    return faces[:limit] if limit else faces


def draw_sheet(faces: list[Face], first_number: int, title: str) -> Image.Image:
    """One contact sheet: faces at CELL px in a COLUMNS x ROWS grid, each numbered (and its probability)."""
    font = ImageFont.load_default()
    rows = -(-len(faces) // COLUMNS)
    sheet = Image.new("RGB", (COLUMNS * CELL, 20 + rows * (CELL + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), title, fill="black", font=font)
    for k, face in enumerate(faces):
        x, y = (k % COLUMNS) * CELL, 20 + (k // COLUMNS) * (CELL + CAPTION)
        sheet.paste(Image.fromarray(face.image).resize((CELL, CELL), Image.Resampling.LANCZOS), (x, y))
        caption = f"{first_number + k}" + (f"  p={face.probability:.2f}" if face.probability is not None else "")
        draw.text((x + 4, y + CELL + 2), caption, fill="black", font=font)
    return sheet


def write_sheets(faces: list[Face], tag: str, out_dir: str | Path, what: str) -> list[Path]:
    """sheet_001.png, ... and corrections.csv (one row per numbered face, in order) into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_sheet = COLUMNS * ROWS
    written = []
    for s, start in enumerate(range(0, len(faces), per_sheet), start=1):
        page = faces[start:start + per_sheet]
        title = f"{what}: faces {start + 1}-{start + len(page)} of {len(faces)}"
        buf = io.BytesIO()
        draw_sheet(page, start + 1, title).save(buf, format="PNG")
        path = out_dir / f"sheet_{s:03d}.png"
        write_bytes_atomic(path, buf.getvalue())
        written.append(path)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["id", tag])
    writer.writerows([face.name, face.value] for face in faces)
    write_bytes_atomic(out_dir / CORRECTIONS, text.getvalue().encode())
    return [*written, out_dir / CORRECTIONS]


def review_sheets(data: str | Path, tag: str, out_dir: str | Path, ranked: bool = False,
                  tagger_path: str | Path | None = None, tag_file: str | Path | None = None,
                  limit: int | None = None, skip: Sequence[str | Path] = ()) -> list[Path]:
    """`kyara data review sheets`: contact sheets of the faces of `data` (a crop folder or a packed set) for `tag`;
    the faces the label files `skip` name are left out (a packed set: their whole face groups)."""
    tag = _tag_of(tag)
    data = Path(data)
    reviewed = {name for path in skip for name in read_label_file(path).rows}     # read first: a bad file fails now
    if (data / "meta.json").is_file():
        faces = faces_from_packed(PackedSet.open(data), tag, open_tagger(tagger_path) if ranked else None,
                                  reviewed)
    elif data.is_dir():
        faces = [f for f in faces_from_folder(data, tag, tag_file)
                 if f.name not in reviewed and Path(f.name).stem not in reviewed]
    else:
        raise FileNotFoundError(f"{data}: neither a packed set nor a folder of crops")
    chosen = choose(faces, ranked, limit)
    if not chosen:
        raise ValueError(f"{data}: no face has {tag!r} (use --ranked to see all faces ranked by its probability)")
    what = f"{tag}: all faces ranked by probability" if ranked else f"faces tagged {tag!r}"
    return write_sheets(chosen, tag, out_dir, what)


def apply_corrections(corrections: str | Path, tag_file: str | Path) -> dict[str, int]:
    """Write a corrections table (`id,<tag>,...` of 1 / 0 / -1) into a tag file, in place (atomically).

    1 puts the tag on the image, 0 takes it off, -1 leaves it as it is; `p:` columns are kept, and a tag decided
    here leaves the image's `unknown` column (an eye has settled it). An id the tag file does not have is
    refused before anything is written. Returns how many images changed, per tag.
    """
    table = read_label_file(corrections)
    tag_path = Path(tag_file)
    rows = read_tag_file(tag_path)
    unknown = [name for name in table.rows if name not in rows]
    if unknown:
        raise ValueError(f"{corrections}: {len(unknown)} ids are not in {tag_path}, e.g. {unknown[0]!r}")
    prob_tags, probs, undecided = read_tag_columns_by_row(tag_path, rows)
    changed = dict.fromkeys(table.tags, 0)
    for name, values in table.rows.items():
        for tag, value in values.items():
            if value < 0:
                continue
            was_undecided = undecided is not None and tag in undecided.get(name, ())
            if was_undecided:
                undecided[name].remove(tag)      # decided by eye now
            if value == 1 and tag not in rows[name]:
                rows[name].append(tag)
            elif value == 0 and tag in rows[name]:
                rows[name].remove(tag)
            elif not was_undecided:
                continue
            changed[tag] += 1
    write_tag_file(tag_path, list(rows.items()), probs, prob_tags, undecided)
    return changed
