"""The tagger's training data: several packed sets at once, each with extra label files (`dataset.labels`), and
its splits.

A packed set carries the labels it was packed with (the Getchu and Konachan tars: colours). Extra label files
add tags to its images by name, of two kinds: labels checked by eye (`getchu_attributes.csv`: hair length,
expression, accessories, `male`), which also measure the tagger, and weak labels (`konachan_hair_length.csv`:
hair length taken from the tags of the whole post), which only train it. Everything a file does not label is
unknown (-1) and masked in the loss, so one tagger learns from all of them together.

A label given for one image is given to its whole face group (its mirror twin and duplicates, found by
`kyara data pack`): they are the same face, and a twin left unlabelled would be a wasted copy at best and, in
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

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from common.packed import PackedSet
from common.vocab import Vocabulary
from dataset.labels import labels_by_name, overlay_by_group, read_label_file

SPLITS = ("train", "val", "calibrate", "report")


@dataclass
class TrainingData:
    """All sources in one place: images (N x R x R x 3), labels over the union vocabulary, splits."""

    images: np.ndarray
    labels: np.ndarray
    vocab: Vocabulary
    split: np.ndarray            # one of SPLITS per image
    packed_val: np.ndarray       # bool: in its packed set's validation split (where colours are measured)
    source: np.ndarray           # index into `sources` per image
    annotated: np.ndarray        # bool: its face group is labelled by eye (`LabelledSet.labels`)
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
class LabelledSet:
    """One packed set and the extra label files of its images (see the module docstring)."""

    data: str | Path
    labels: Sequence[str | Path] = ()        # checked by eye: train, calibrate and report
    weak_labels: Sequence[str | Path] = ()   # train only


def load_training_data(sources: Sequence[LabelledSet], fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0,
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
