"""The tagger's training data: several packed sets at once, each with extra label files, and its splits.

A packed set carries the labels it was packed with (the Getchu and Konachan tars: colours). Extra label files
add tags to its images by name, of two kinds: labels checked by eye (`getchu_attributes.csv`: hair length,
expression, accessories, `male`), which also measure the tagger, and weak labels (`konachan_hair_length.csv`:
hair length taken from the tags of the whole post), which only train it. Everything a file does not label is
unknown (-1) and masked in the loss, so one tagger learns from all of them together.

A label given for one image is given to its whole face group (its mirror twin and duplicates, found by
`kyara pack`): they are the same face, and a twin left unlabelled would be a wasted copy at best and, in
validation, a near-copy of a training image at worst.

Splits, per image:
- `val`: the packed set's validation split (whole face groups). Exclusive groups (colours) are measured on
  all of it (`packed_val`), as before, whichever of its images also serve for calibrate or report.
- `calibrate` / `report`: face groups labelled by eye are divided (by `fractions`) into train / calibrate /
  report. Thresholds are chosen on `calibrate` and every figure of the non-exclusive tags is measured on
  `report`, so no figure is measured on the images its threshold was fitted to. Groups in the packed
  validation split are never trained on, so they go to calibrate or report only. When no source has labels
  checked by eye, each packed validation split is halved into calibrate and report instead.
- `train`: everything else of the packed train split.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from common.packed import PackedSet
from common.vocab import TagError, Vocabulary, canonical, split_tag_text
from tagger.tagfile import read_tag_columns

SPLITS = ("train", "val", "calibrate", "report")


@dataclass
class LabelFile:
    """Labels read from a file: image name -> {tag: 1 / 0 / -1}."""

    path: Path
    tags: tuple[str, ...]
    rows: dict[str, dict[str, int]]


def read_label_file(path: str | Path) -> LabelFile:
    """Read extra labels, in one of three layouts.

    A table: a header `id,<tag>,<tag>,...` (or `path,...`) and one row per image of 1 (on), 0 (off) or -1
    (unknown), as `getchu_attributes.csv`. Our tag file with `p:<tag>` columns, as `kyara tag` writes it:
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


@dataclass
class TrainingData:
    """All sources in one place: images (N x R x R x 3), labels over the union vocabulary, splits."""

    images: np.ndarray
    labels: np.ndarray
    vocab: Vocabulary
    split: np.ndarray            # one of SPLITS per image
    packed_val: np.ndarray       # bool: in its packed set's validation split (where colours are measured)
    source: np.ndarray           # index into `sources` per image
    annotated: np.ndarray        # bool: its face group is labelled by eye (`Source.labels`)
    sources: list[dict]          # what was read from where, and the split sizes
    dropped_tags: dict[str, int] = field(default_factory=dict)   # tag -> its few positive training images

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)


def assign_splits(groups: np.ndarray, packed_val: np.ndarray, annotated: np.ndarray,
                  fractions: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """The split of each image of one packed set (see the module docstring), by whole face groups."""
    split = np.where(packed_val, "val", "train").astype("<U9")
    if annotated.any():
        pool, roles = np.unique(groups[annotated]), np.array(["train", "calibrate", "report"])
    else:
        pool, roles, fractions = np.unique(groups[packed_val]), np.array(["calibrate", "report"]), (1, 1)
    pool = rng.permutation(pool)
    cut = np.cumsum(fractions) / np.sum(fractions)
    role = roles[np.searchsorted(cut, (np.arange(len(pool)) + 0.5) / max(len(pool), 1))]
    # Groups of the packed validation split are never trained on: they alternate between calibrate and report.
    retrain = np.isin(pool, groups[packed_val]) & (role == "train")
    role[retrain] = np.array(["calibrate", "report"])[np.arange(int(retrain.sum())) % 2]
    role_of = dict(zip(pool.tolist(), role.tolist()))
    held = np.isin(groups, pool[role != "train"])
    split[held] = [role_of[g] for g in groups[held].tolist()]
    return split


@dataclass
class Source:
    """One packed set and the extra label files of its images (see the module docstring)."""

    data: str | Path
    labels: Sequence[str | Path] = ()        # checked by eye: train, calibrate and report
    weak_labels: Sequence[str | Path] = ()   # train only


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


def load_training_data(sources: Sequence[Source], fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0,
                       min_positives: int = 0) -> TrainingData:
    """Open every source and merge them over one vocabulary (the union of their tags).

    Label files are read before any image, so a bad file fails in one line at once. Tags with fewer than
    `min_positives` positive training images are left out (a head trained on one or two faces ranks noise);
    `dropped_tags` says which.
    """
    if not sources:
        raise ValueError("the tagger needs at least one packed set")
    opened = [(PackedSet.open(s.data), [read_label_file(p) for p in s.labels],
               [read_label_file(p) for p in s.weak_labels]) for s in sources]
    vocab = Vocabulary({t for packed, gold, weak in opened
                        for t in (*packed.vocab.tags, *(t for f in (*gold, *weak) for t in f.tags))})
    resolutions = {packed.resolution for packed, _, _ in opened}
    if len(resolutions) > 1:
        raise ValueError(f"the packed sets have different resolutions ({sorted(resolutions)}); pack them at one")
    any_gold = any(gold for _, gold, _ in opened)

    rng = np.random.default_rng(seed)
    parts, notes = [], []
    for s, (packed, gold, weak) in enumerate(opened):
        n = len(packed)
        groups = np.asarray(packed.meta["group"])
        labels = np.full((n, len(vocab)), -1, np.int8)
        labels[:, [vocab.index(t) for t in packed.vocab.tags]] = packed.labels
        names = packed.meta.get("names")
        if names is None and (gold or weak):
            raise ValueError(f"{packed.path}: the packed set has no image names, so its label files cannot be matched")
        names = names if names is not None else [str(i) for i in range(n)]    # no files to match, see above
        gold_labels, gold_named, gold_matched = labels_by_name(names, gold, vocab, str(packed.path))
        weak_labels, _, weak_matched = labels_by_name(names, weak, vocab, str(packed.path))
        labels = overlay_by_group(labels, [weak_labels, gold_labels], groups)   # checked by eye wins
        annotated = np.isin(groups, groups[gold_named])
        packed_val = np.zeros(n, bool)
        packed_val[packed.indices("val")] = True
        if gold or not any_gold:
            split = assign_splits(groups, packed_val, annotated, fractions, rng)
        else:
            split = np.where(packed_val, "val", "train").astype("<U9")
        parts.append((np.asarray(packed.images), labels, split, packed_val, np.full(n, s), annotated))
        notes.append({"path": str(packed.path), "source": packed.meta.get("source"), "images": n,
                      "labels": gold_matched, "weak_labels": weak_matched,
                      "split": {k: int((split == k).sum()) for k in SPLITS}})
    images, labels, split, packed_val, source, annotated = (np.concatenate(x) for x in zip(*parts))
    data = TrainingData(images, labels, vocab, split, packed_val, source, annotated, notes)
    return drop_rare_tags(data, min_positives) if min_positives else data


def drop_rare_tags(data: TrainingData, min_positives: int) -> TrainingData:
    """Leave out non-exclusive tags with fewer than `min_positives` positive images in the train split."""
    train = data.split == "train"
    positives = {t: int((data.labels[train, data.vocab.index(t)] == 1).sum()) for t in data.vocab.tags}
    dropped = {t: n for t, n in positives.items() if n < min_positives and not data.vocab.group_of(t).exclusive}
    if not dropped:
        return data
    vocab = Vocabulary(t for t in data.vocab.tags if t not in dropped)
    return replace(data, labels=data.labels[:, [data.vocab.index(t) for t in vocab.tags]], vocab=vocab,
                   dropped_tags=dropped)
