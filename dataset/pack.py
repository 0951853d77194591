"""`kyara data pack`: tagged face images -> the packed training set (see `common.packed`).

Sources: a folder of crops with a tag file (our CSV, e.g. from `kyara data tag`), or an uncompressed tar in the
MLDS layout of `../shared/data` (its tag CSV is the first member, images named `<id>.jpg`).

Extra label files (`--labels`) add the tags the source does not give, the paper's way of labelling a set: a
tagger's output (`kyara data tag`, whose undecided tags stay unknown) and labels checked by eye
(`getchu_attributes.csv`, `kyara data review` corrections). The source's own labels win where it has them (the
Getchu colours), and a label of one image is given to its whole face group (its mirror twin, its duplicates).
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import sys
import tarfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from common.images import load_rgb, skip_reason
from common.packed import face_groups, split_by_group, write_packed
from common.vocab import Vocabulary, canonical
from dataset.labels import labels_by_name, overlay_by_group, read_label_file
from dataset.tagfile import open_text, read_tag_file, read_tag_rows

THUMB = 16
RESOLUTIONS = (32, 64, 128, 256)   # what training.models.ModelConfig builds a generator for (16 px x 2^k)


def _decode(args: tuple[str, bytes | Path, int]) -> tuple[str, np.ndarray | None, str]:
    """Decode one image (its bytes, or its path) to RGB at `resolution`; returns (name, pixels or None, reason)."""
    name, source, resolution = args
    try:
        return name, load_rgb(source, resolution), ""
    except Exception as exc:  # whatever the type, the reason is what the user needs
        return name, None, skip_reason(exc)


def tar_items(path: Path) -> tuple[dict[str, list[str]], Iterator[tuple[str, bytes]]]:
    """The tar's tag rows and its images. Every member's header is read first, so a tar that ends early (cut
    off in a copy or a download) is refused before any image is decoded, not after an hour of decoding."""
    try:
        tar = tarfile.open(path)
        members = tar.getmembers()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as exc:
        raise ValueError(f"{path}: the tar ends early or is damaged ({exc or type(exc).__name__}); copy or "
                         "download it again") from None
    # A tar ends with zero blocks; one cut exactly between two members reads as shorter, not as damaged.
    if tar.fileobj is not None and not isinstance(tar.fileobj, (gzip.GzipFile, bz2.BZ2File, lzma.LZMAFile)) \
            and path.stat().st_size < tar.offset + tarfile.BLOCKSIZE:
        raise ValueError(f"{path}: the tar ends early (after {len(members)} members, with no end-of-archive "
                         "marker); copy or download it again")
    first = members[0] if members else None
    if first is None or not first.name.endswith(".csv"):
        raise ValueError(f"{path}: expected the tag CSV as the first member of the tar")
    tags = read_tag_rows(open_text(tar.extractfile(first)), f"{path}:{first.name}")

    def items() -> Iterator[tuple[str, bytes]]:
        for member in members[1:]:
            if member.isfile() and member.name.lower().endswith((".jpg", ".jpeg", ".png")):
                yield Path(member.name).stem, tar.extractfile(member).read()
    return tags, items()


def _folder_items(folder: Path, tag_file: Path) -> tuple[dict[str, list[str]], Iterator[tuple[str, Path]]]:
    """The tag file's rows and their paths: the workers read the files, so a missing one says `not found`."""
    tags = read_tag_file(tag_file)
    return tags, ((name, folder / name) for name in tags)


def labels_for(tag_lists: list[list[str]], vocab: Vocabulary) -> tuple[np.ndarray, int]:
    """int8 label matrix (1 on, 0 off, -1 unknown), and how many images name two tags of one exclusive or
    at-most-one group.

    An exclusive group (a colour) is known for an image only when the image names exactly one of its tags:
    none says nothing, two contradict each other, so training must not believe either. An at-most-one group
    (hair length) is known when the image names at most one of its tags (none: neither long nor short), and
    unknown when it names two (long and short hair). Any other group counts as labelled (absent = off) for
    every image.
    """
    present = np.zeros((len(tag_lists), len(vocab)), dtype=bool)
    for row, tags in enumerate(tag_lists):
        present[row, [vocab.index(t) for t in set(tags) if t in vocab.tags]] = True
    labels = present.astype(np.int8)
    conflicting = np.zeros(len(tag_lists), dtype=bool)
    for group in vocab.groups:
        if not (group.exclusive or group.at_most_one):
            continue
        cols = [vocab.index(t) for t in group.tags]
        named = present[:, cols].sum(1)
        unknown = named > 1 if group.at_most_one else named != 1
        labels[np.ix_(unknown, cols)] = -1
        conflicting |= named > 1
    return labels, int(conflicting.sum())


def with_extra_labels(own: np.ndarray, own_vocab: Vocabulary, extras: Sequence[np.ndarray], vocab: Vocabulary,
                      groups: np.ndarray) -> np.ndarray:
    """The source's labels (over `own_vocab`) completed by the extra files' (each over `vocab`).

    Each file's labels are first given to whole face groups, then a later file wins over an earlier one
    (a face checked by eye over the tagger's guess for its mirror twin), and the source's known values win
    over every file: the files fill what it leaves unknown or does not tag at all."""
    filled = overlay_by_group(np.full((len(own), len(vocab)), -1, np.int8), extras, groups)
    labels = np.full((len(own), len(vocab)), -1, np.int8)
    labels[:, [vocab.index(t) for t in own_vocab.tags]] = own
    return np.where(labels >= 0, labels, filled).astype(np.int8)


def drop_rare(labels: np.ndarray, vocab: Vocabulary, groups: np.ndarray, min_faces: int) -> tuple[np.ndarray, Vocabulary, dict]:
    """Leave out the non-exclusive tags that fewer than `min_faces` distinct faces (face groups) have."""
    faces = {t: len(np.unique(groups[labels[:, vocab.index(t)] == 1])) for t in vocab.tags}
    dropped = {t: n for t, n in faces.items() if n < min_faces and not vocab.group_of(t).exclusive}
    kept = Vocabulary(t for t in vocab.tags if t not in dropped)
    return labels[:, [vocab.index(t) for t in kept.tags]], kept, dropped


def pack(source: str | Path, out_dir: str | Path, resolution: int = 64, tag_file: str | Path | None = None,
         val_fraction: float = 0.1, seed: int = 0, workers: int = 2, labels: Sequence[str | Path] = (),
         min_faces: int = 0) -> Path:
    """Pack a crop folder (with its tag file) or an MLDS tar into `out_dir`; returns `out_dir`.

    Unreadable images are skipped with one line each. Mirror twins and duplicates form one face group, and
    the validation split takes whole groups, so no face is on both sides of it. `labels` are extra label
    files (see the module docstring; a later file wins over an earlier one); tags fewer than `min_faces`
    distinct faces have are left out. The settings and label files are checked before any image is decoded.
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"--resolution must be one of {', '.join(map(str, RESOLUTIONS))} (the sizes the "
                         f"generator trains at), got {resolution}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"--val-fraction must be at least 0 and below 1, got {val_fraction}")
    source = Path(source)
    if source.is_file() and tarfile.is_tarfile(source):
        if tag_file:
            raise ValueError(f"--tags {tag_file}: a tag file is for a folder of crops; {source} is a tar, whose tags "
                             "are its first member (add tags a source lacks with --labels)")
        tags, items = tar_items(source)
    elif source.is_dir():
        tag_path = Path(tag_file) if tag_file else source / "tags.csv"
        tags, items = _folder_items(source, tag_path)
    else:
        raise FileNotFoundError(f"{source}: neither a folder of crops nor a tar of tagged faces")

    label_files = [read_label_file(p) for p in labels]
    unknown = sorted({t for ts in tags.values() for t in ts if canonical(t) is None})
    if unknown:
        print(f"kyara data pack: ignoring tags outside the vocabulary: {', '.join(unknown)}", file=sys.stderr)
    own_vocab = Vocabulary(t for ts in tags.values() for t in ts if canonical(t) is not None)
    vocab = Vocabulary({*own_vocab.tags, *(t for f in label_files for t in f.tags)})

    names, images, skipped = [], [], 0
    jobs = ((name, data, resolution) for name, data in items if name in tags)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for name, pixels, reason in tqdm(pool.map(_decode, jobs, chunksize=256), total=len(tags),
                                         desc="pack", unit="img"):
            if pixels is None:
                tqdm.write(f"kyara data pack: skipping {name}: {reason}", file=sys.stderr)
                skipped += 1
                continue
            names.append(name)
            images.append(pixels)
    if not images:
        raise ValueError(f"{source}: no tagged image could be read")
    images_arr = np.stack(images)
    own, conflicting = labels_for([tags[n] for n in names], own_vocab)
    if conflicting:
        print(f"kyara data pack: {conflicting} images name two tags of one exclusive or at-most-one group (e.g. two "
              f"hair colours, or long and short hair); that group is stored as unknown for them", file=sys.stderr)

    thumbs = np.stack([np.asarray(Image.fromarray(im).convert("L").resize((THUMB, THUMB), Image.Resampling.BOX))
                       for im in images_arr])
    # Twins are found among images of the same source labels: an extra file may tell a face and its mirror
    # image apart (a tagger sees them differently), which must not split the group.
    buckets = np.unique(own, axis=0, return_inverse=True)[1].reshape(-1)
    groups = face_groups(thumbs, buckets)
    extras, matched = [], {}
    for f in label_files:
        extra, _, hits = labels_by_name(names, [f], vocab, str(source))
        extras.append(extra)
        matched.update(hits)
    all_labels = with_extra_labels(own, own_vocab, extras, vocab, groups)
    all_labels, vocab, dropped = drop_rare(all_labels, vocab, groups, min_faces)
    val = split_by_group(groups, val_fraction, seed)
    out = write_packed(out_dir, images_arr, all_labels, vocab, groups, val, source=str(source), names=names,
                       extra={"label_files": matched, "dropped_tags": dropped} if label_files else None)
    print(f"kyara data pack: {len(names)} images ({skipped} skipped), {len(np.unique(groups))} face groups, "
          f"{int(val.sum())} in validation, {len(vocab)} tags -> {out}", file=sys.stderr)
    for f in label_files:
        print(f"kyara data pack: {f.path}: {matched[str(f.path)]} of its {len(f.rows)} rows are images here",
              file=sys.stderr)
    if dropped:
        print(f"kyara data pack: left out (fewer than {min_faces} faces): "
              + ", ".join(f"{t} ({n})" for t, n in dropped.items()), file=sys.stderr)
    print(tag_counts(all_labels, vocab, groups), file=sys.stderr)
    return out


def tag_counts(labels: np.ndarray, vocab: Vocabulary, groups: np.ndarray) -> str:
    """Per tag: images on / off / unknown and distinct faces on, the figures a note about a packed set gives."""
    lines = [f"{'tag':<14} {'on':>6} {'off':>6} {'unknown':>8} {'faces on':>9}"]
    for t in vocab.tags:
        col = labels[:, vocab.index(t)]
        lines.append(f"{t:<14} {int((col == 1).sum()):>6} {int((col == 0).sum()):>6} {int((col < 0).sum()):>8} "
                     f"{len(np.unique(groups[col == 1])):>9}")
    return "\n".join(lines)
