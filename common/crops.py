"""The crop folder's records, read and written: what `kyara data crop` made and what `kyara data tag` reads.

    crops.jsonl   one record per crop: crop, source, box, crop_box, neighbours, phash
    done.jsonl    one record per finished source: its stamp, faces found and crops kept, or why it was skipped

Here rather than in `dataset/crop.py` (detection and cutting, which need OpenCV) because the tagger reads
these records too and may not import `training`.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from common.files import write_bytes_atomic, writing

CROPS, DONE = "crops.jsonl", "done.jsonl"
DUPLICATE_BITS = 6      # perceptual hashes this close (of 64 bits) are the same picture


def _read_jsonl(path: Path) -> tuple[list[dict], bool]:
    """The records of a JSON-lines file, and whether it is intact.

    Not intact: a line that is not JSON or a missing final newline, which a kill mid-append leaves behind.
    """
    if not path.is_file():
        return [], True
    text = path.read_text(encoding="utf-8")
    lines, records = text.splitlines(), []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records, not text or (len(records) == len(lines) and text.endswith("\n"))


def _repair_jsonl(path: Path, keep: Callable[[dict], bool] = lambda record: True) -> list[dict]:
    """The records `keep` accepts; the file is rewritten with just those if it held anything else.

    Left in place, a torn last line would swallow the next record appended after it.
    """
    records, intact = _read_jsonl(path)
    kept = [r for r in records if keep(r)]
    if not intact or len(kept) != len(records):
        write_bytes_atomic(path, "".join(json.dumps(r) + "\n" for r in kept).encode())
    return kept


def finished_crops(folder: str | Path) -> list[str] | None:
    """Crop file names of the pictures `kyara data crop` finished in `folder`; None if it is no crop folder.

    Crops of a picture whose run was interrupted are left out: the next crop run writes them again.
    """
    folder = Path(folder)
    if not (folder / CROPS).is_file():
        return None
    done = {r["source"] for r in _read_jsonl(folder / DONE)[0]}
    return [r["crop"] for r in _read_jsonl(folder / CROPS)[0] if r["source"] in done]


class CropFolder:
    """The output folder: what is done, the records and hashes of kept crops, and the atomic writes."""

    def __init__(self, out_dir: Path):
        self.out = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.done = {r["source"]: r for r in _repair_jsonl(out_dir / DONE)}
        # Crop records of a source that never finished are dropped; its crops will be written again.
        self.records = _repair_jsonl(out_dir / CROPS, keep=lambda r: r["source"] in self.done)
        self.hashes = self._hashes()

    def _hashes(self) -> np.ndarray:
        return np.array([int(r["phash"], 16) for r in self.records], dtype=np.uint64)

    def is_current(self, source: str, stamp: list[int]) -> bool:
        """Whether `source` was cropped (not skipped) from the file that now has `stamp`."""
        record = self.done.get(source)
        return record is not None and "error" not in record and record.get("stamp") == stamp

    def forget(self, sources: set[str]) -> None:
        """Remove what earlier runs wrote for `sources`: done-records, crop records, then the crop files.

        In that order, so a kill part way leaves crop records without a done-record, which the next run drops.
        """
        sources = sources & self.done.keys()
        if not sources:
            return
        self.done = {s: r for s, r in self.done.items() if s not in sources}
        write_bytes_atomic(self.out / DONE, "".join(json.dumps(r) + "\n" for r in self.done.values()).encode())
        stale = [r for r in self.records if r["source"] in sources]
        self.records = [r for r in self.records if r["source"] not in sources]
        write_bytes_atomic(self.out / CROPS, "".join(json.dumps(r) + "\n" for r in self.records).encode())
        for record in stale:
            (self.out / record["crop"]).unlink(missing_ok=True)
        self.hashes = self._hashes()

    def is_duplicate(self, crop: dict) -> bool:
        if not len(self.hashes):
            return False
        for h in (crop["phash"], crop["mirror_phash"]):
            distance = np.unpackbits((self.hashes ^ np.uint64(h)).view(np.uint8).reshape(-1, 8), axis=1).sum(1)
            if distance.min() <= DUPLICATE_BITS:
                return True
        return False

    def add(self, result: dict, fmt: str) -> tuple[int, int]:
        """Write one source's new crops, their records, then its done-record. Returns (kept, duplicates)."""
        stem = crop_stem(result["source"])
        lines, kept, dupes = [], 0, 0
        for i, crop in enumerate(result.get("crops", [])):
            if self.is_duplicate(crop):
                dupes += 1
                continue
            name = f"{stem}_{i}.{fmt}"
            write_bytes_atomic(self.out / name, crop["data"])
            self.hashes = np.append(self.hashes, np.uint64(crop["phash"]))
            lines.append({"crop": name, "source": result["source"], "box": crop["box"],
                          "crop_box": crop["crop_box"], "neighbours": crop["neighbours"],
                          "phash": f"{crop['phash']:016x}"})
            kept += 1
        _append(self.out / CROPS, lines)
        self.records.extend(lines)
        done = {"source": result["source"], "stamp": result["stamp"]}
        done.update({"error": result["error"]} if "error" in result else
                    {"faces": result["faces"], "kept": kept, "duplicates": dupes})
        _append(self.out / DONE, [done])
        self.done[result["source"]] = done
        return kept, dupes


def crop_stem(source: str) -> str:
    """Readable and unique per source: the path without its extension, plus a short hash of the whole path.

    The stem alone is shared by x.png and x.jpg (and by a/b.png and a__b.png), whose crops would overwrite
    each other.
    """
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:8]
    return f"{source.rsplit('.', 1)[0].replace('/', '__')}_{digest}"


def _append(path: Path, records: list[dict]) -> None:
    """Append whole lines in one write, flushed to disk before the caller goes on."""
    if not records:
        return
    with writing(path), open(path, "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())
