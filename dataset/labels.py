"""Extra label files: the tags a packed set's source does not give, laid over its labels by image name.

Two kinds of file give them: a `kyara data tag` output (its undecided tags stay unknown) and a table of
1 / 0 / -1 such as `getchu_attributes.csv` (labels checked by eye). A label given for one image is given to its
whole face group (its mirror twin and duplicates, found by `kyara data pack`): they are the same face. Both
`kyara data pack` and the tagger's training read them through here.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from common.vocab import TagError, Vocabulary, canonical, split_tag_text
from dataset.tagfile import read_tag_columns


@dataclass
class LabelFile:
    """Labels read from a file: image name -> {tag: 1 / 0 / -1}."""

    path: Path
    tags: tuple[str, ...]
    rows: dict[str, dict[str, int]]


def read_label_file(path: str | Path) -> LabelFile:
    """Read extra labels, in one of three layouts.

    A table: a header `id,<tag>,<tag>,...` (or `path,...`) and one row per image of 1 (on), 0 (off) or -1
    (unknown), as `getchu_attributes.csv`. Our tag file with `p:<tag>` columns, as `kyara data tag` writes it:
    every tag with a probability column is known, on where the `tags` column names it, unknown where the
    `unknown` column does, off elsewhere. Or a tag list, `id,<tags>` without a header, as the tars' tag files
    and `konachan_hair_length.csv`: the named tags are on and the other tags of their exclusive or at-most-one
    groups off (`short hair` says the hair is not long); nothing else is known.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: label file not found")
    with open(path, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row and row[0].strip()]
    if not rows:
        raise ValueError(f"{path}: the label file is empty")
    header = [c.strip() for c in rows[0]]
    if header[:2] == ["path", "tags"] and any(c.startswith("p:") for c in header):
        return _read_tagger_output(path, rows[1:])
    if header[0].lower() in ("id", "path"):
        return _read_table(path, header, rows[1:])
    return _read_tag_list(path, rows)


def _read_tagger_output(path: Path, rows: list[list[str]]) -> LabelFile:
    prob_tags, _, undecided = read_tag_columns(path)
    tags = []
    for name in prob_tags:
        tag = canonical(name)
        if tag is None:
            raise TagError(f"{path}: column 'p:{name}' is not a known tag")
        tags.append(tag)
    result = {}
    for row in rows:
        name = row[0].strip()
        on = {canonical(t) for t in split_tag_text(row[1])}
        unknown = set((undecided or {}).get(name, ()))
        result[name] = {t: -1 if t in unknown else int(t in on) for t in tags}
    return LabelFile(path, tuple(tags), result)


def _read_table(path: Path, header: list[str], rows: list[list[str]]) -> LabelFile:
    tags = []
    for name in header[1:]:
        tag = canonical(name)
        if tag is None:
            raise TagError(f"{path}: column {name!r} is not a known tag")
        tags.append(tag)
    result = {}
    for lineno, row in enumerate(rows, start=2):
        if len(row) != len(header) or any(v.strip() not in ("1", "0", "-1") for v in row[1:]):
            raise ValueError(f"{path}:{lineno}: expected {len(header)} columns of 1, 0 or -1, got {','.join(row)!r}")
        result[row[0].strip()] = {t: int(v) for t, v in zip(tags, row[1:])}
    return LabelFile(path, tuple(tags), result)


def _read_tag_list(path: Path, rows: list[list[str]]) -> LabelFile:
    vocab = Vocabulary.full()
    result, seen = {}, set()
    for lineno, row in enumerate(rows, start=1):
        if len(row) < 2:
            raise ValueError(f"{path}:{lineno}: expected `id,tags`, got {','.join(row)!r}")
        named = [canonical(t) for t in split_tag_text(row[1])]
        if None in named:
            raise TagError(f"{path}:{lineno}: {row[1]!r} is not a list of known tags")
        labels = {t: 1 for t in named}
        for tag in named:
            group = vocab.group_of(tag)
            if group.exclusive or group.at_most_one:
                labels.update({t: labels.get(t, 0) for t in group.tags})
        result[row[0].strip()] = labels
        seen.update(labels)
    return LabelFile(path, tuple(t for t in vocab.tags if t in seen), result)


def spread_to_groups(labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Give every image of a face group the labels known for any of its images (int8 N x T).

    Where two images of one group disagree on a tag (two annotators marked a face and its twin differently),
    the tag is unknown for the whole group.
    """
    out = labels.copy()
    _, inverse = np.unique(groups, return_inverse=True)
    n_groups = inverse.max() + 1 if len(inverse) else 0
    for col in range(labels.shape[1]):
        on = np.bincount(inverse, weights=labels[:, col] == 1, minlength=n_groups)
        off = np.bincount(inverse, weights=labels[:, col] == 0, minlength=n_groups)
        value = np.where((on > 0) & (off == 0), 1, np.where((off > 0) & (on == 0), 0, -1))
        out[:, col] = value[inverse]
    return out


def overlay_by_group(labels: np.ndarray, extras: Sequence[np.ndarray], groups: np.ndarray) -> np.ndarray:
    """`labels` with each of `extras` (same shape, -1 unknown) laid over it in turn, each first given to whole
    face groups (`spread_to_groups`): a later one wins wherever it knows."""
    for extra in extras:
        extra = spread_to_groups(extra, groups)
        labels = np.where(extra >= 0, extra, labels).astype(np.int8)
    return labels


def labels_by_name(names: Sequence[str], files: Sequence[LabelFile], vocab: Vocabulary,
                   where: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """The files' labels over `vocab` (int8 N x T, -1 where none says; a later file wins over an earlier one),
    which images they name, and how many of each file's rows matched.

    An image is found by its name or by its file name without the extension where that is unique, so a tag
    file of `images/123.jpg` rows labels the image `123` of a tar. A file none of whose rows is an image of
    `where` is refused.
    """
    stems: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        stems.setdefault(Path(name).stem, []).append(i)
    index = {**{stem: i[0] for stem, i in stems.items() if len(i) == 1}, **{name: i for i, name in enumerate(names)}}
    extra = np.full((len(names), len(vocab)), -1, np.int8)
    named = np.zeros(len(names), bool)
    matched = {}
    for f in files:
        hits = [(index.get(k, index.get(Path(k).stem)), v) for k, v in f.rows.items()]
        hits = [(i, v) for i, v in hits if i is not None]
        if not hits:
            raise ValueError(f"{f.path}: none of its ids is an image of {where}")
        for i, values in hits:
            for tag, value in values.items():
                if value >= 0:
                    extra[i, vocab.index(tag)] = value
            named[i] = True
        matched[str(f.path)] = len(hits)
    return extra, named, matched
