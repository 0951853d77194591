"""The packed training set: `images.npy` (uint8 N x H x W x 3), `labels.npy` (int8 N x T) and `meta.json`.

Labels are 1 (on), 0 (off) or -1 (unknown: the group was not labelled for that image). `meta.json` holds the
vocabulary, the resolution, where the images came from, and per image its face group and split, so that an
image and its mirror twin or duplicate always land on the same side of the train/validation split.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.files import atomic_dir, read_json
from common.vocab import Vocabulary

IMAGES, LABELS, META = "images.npy", "labels.npy", "meta.json"


def write_packed(out_dir: str | Path, images: np.ndarray, labels: np.ndarray, vocab: Vocabulary,
                 groups: np.ndarray, split: np.ndarray, source: str, names: list[str] | None = None,
                 extra: dict | None = None) -> Path:
    """Write a packed set atomically: into a temporary folder that is renamed when complete.

    `extra` goes into meta.json as it is (e.g. which label files made the labels)."""
    out_dir = Path(out_dir)
    n = len(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be uint8 N x R x R x 3, got {images.dtype} {images.shape}")
    if labels.shape != (n, len(vocab)):
        raise ValueError(f"labels must be {n} x {len(vocab)}, got {labels.shape}")
    meta = {
        "format": "kyara-packed/1",
        "vocabulary": vocab.to_json(),
        "resolution": int(images.shape[1]),
        "count": n,
        "source": source,
        "group": [int(g) for g in groups],
        "split": ["val" if s else "train" for s in split],
        **({"names": list(names)} if names is not None else {}),
        **(extra or {}),
    }
    with atomic_dir(out_dir) as tmp:
        np.save(tmp / IMAGES, images)
        np.save(tmp / LABELS, labels.astype(np.int8))
        (tmp / META).write_text(json.dumps(meta))
    return out_dir


@dataclass
class PackedSet:
    """A packed set opened for reading; images stay memory-mapped."""

    path: Path
    images: np.ndarray
    labels: np.ndarray
    vocab: Vocabulary
    meta: dict

    @classmethod
    def open(cls, path: str | Path) -> "PackedSet":
        """Open a packed set, checked before anything reads it: each problem is a one-line ValueError naming
        the file (a broken meta.json, an array of the wrong type or shape, a truncated or pickled .npy, files
        that disagree on the number of images)."""
        path = Path(path)
        for name in (IMAGES, LABELS, META):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path}: not a packed set (missing {name}); make one with `kyara data pack`")
        meta = read_json(path / META)
        try:
            vocab = Vocabulary.from_json(meta.get("vocabulary"))
        except ValueError as exc:
            raise ValueError(f"{path / META}: 'vocabulary': {exc}") from None
        images = _load_array(path / IMAGES, mmap=True)
        labels = _load_array(path / LABELS)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2] \
                or images.shape[1] == 0:
            raise ValueError(f"{path / IMAGES}: expected uint8 images, N x R x R x 3; got {images.dtype} "
                             f"{' x '.join(map(str, images.shape))}")
        n = len(images)
        if labels.dtype != np.int8 or labels.shape != (n, len(vocab)):
            raise ValueError(f"{path / LABELS}: expected int8 labels, {n} x {len(vocab)} (images x the tags of "
                             f"{META}); got {labels.dtype} {' x '.join(map(str, labels.shape))}")
        if labels.size and (labels.min() < -1 or labels.max() > 1):
            raise ValueError(f"{path / LABELS}: labels must be 1, 0 or -1, got values from {labels.min()} to "
                             f"{labels.max()}")
        split = meta.get("split")
        if not isinstance(split, list) or len(split) != n or not all(s in ("train", "val") for s in split):
            got = f"{len(split)} entries" if isinstance(split, list) else type(split).__name__
            raise ValueError(f"{path / META}: 'split' must list 'train' or 'val' for each of the {n} images of "
                             f"{IMAGES}, got {got}")
        for key, value in (("count", n), ("resolution", images.shape[1])):
            if key in meta and meta[key] != value:
                raise ValueError(f"{path / META}: {key!r} is {meta[key]!r} but {IMAGES} holds {value}")
        return cls(path, images, labels, vocab, meta)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def resolution(self) -> int:
        return int(self.images.shape[1])

    def indices(self, split: str | None) -> np.ndarray:
        """Indices of the `train` or `val` split (all images for None)."""
        if split is None:
            return np.arange(len(self))
        return np.flatnonzero(np.array(self.meta["split"]) == split)

    def priors(self, indices: np.ndarray | None = None) -> np.ndarray:
        """Frequency of each tag among the images where it is known (0.5 where it never is)."""
        labels = self.labels if indices is None else self.labels[indices]
        known = (labels >= 0).sum(0)
        on = (labels == 1).sum(0)
        return np.where(known > 0, on / np.maximum(known, 1), 0.5)


def _load_array(path: Path, mmap: bool = False) -> np.ndarray:
    """A .npy file (memory-mapped with `mmap`), or a one-line ValueError naming it: truncated, empty, not .npy,
    or an object array (which would need unpickling, never done for a file that may come from anyone)."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "allow_pickle" in reason:
            reason = "an array of Python objects, not numbers"
        elif "mmap length" in reason or "cannot reshape" in reason or "No data left" in reason:
            reason = f"truncated: shorter than its header says ({reason})"
        raise ValueError(f"{path}: not a readable .npy array ({reason})") from None


def face_groups(thumbs: np.ndarray, buckets: np.ndarray, threshold: float = 0.97) -> np.ndarray:
    """Group images that are the same face: duplicates and mirror twins.

    `thumbs` are small grey thumbnails (N x h x w). Two images are the same face when the correlation of
    their thumbnails, or of one with the other's mirror image, reaches `threshold`. Only images in the same
    bucket (e.g. with the same labels) are compared, which keeps this fast on large sets.
    """
    n = len(thumbs)
    flat = thumbs.reshape(n, -1).astype(np.float32)
    mirror = thumbs[:, :, ::-1].reshape(n, -1).astype(np.float32)

    def unit(x: np.ndarray) -> np.ndarray:
        x = x - x.mean(1, keepdims=True)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)

    flat, mirror = unit(flat), unit(mirror)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for bucket in np.unique(buckets):
        idx = np.flatnonzero(buckets == bucket)
        for start in range(0, len(idx), 2048):
            rows = idx[start:start + 2048]
            sim = np.maximum(flat[rows] @ flat[idx].T, flat[rows] @ mirror[idx].T)
            for r, c in zip(*np.nonzero(sim >= threshold)):
                a, b = find(rows[r]), find(idx[c])
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(n)])


def split_by_group(groups: np.ndarray, val_fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean mask of validation images, choosing whole face groups at random."""
    unique = np.unique(groups)
    rng = np.random.default_rng(seed)
    val_groups = rng.choice(unique, size=int(round(len(unique) * val_fraction)), replace=False)
    return np.isin(groups, val_groups)
