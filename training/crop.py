"""`kyara crop`: find anime faces in pictures and cut square, training-ready crops around them.

Per picture: decode defensively (`load_rgb`), detect faces with nagadomi's LBP cascade (`detect_faces`),
enlarge each box (1.5x by default: the face plus hair) about its centre, drop faces that are too small,
resize to the target resolution. Across pictures: drop near-duplicate crops (a perceptual
hash, mirror images included, since mirrored copies are common in scraped art).

Output folder:
    <source>_<i>.png        the crops (or .jpg), each written to a temporary name and renamed
    crops.jsonl             one record per crop: crop, source, box, crop_box, neighbours, phash
    done.jsonl              one record per finished source: faces found, crops kept, or why it was skipped

A source is only marked done after its crops and their records are on disk, so an interrupted run loses
nothing and a re-run continues with the sources not yet done.
"""
from __future__ import annotations

import io
import json
import os
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

CASCADE = Path(__file__).parent / "cascade" / "lbpcascade_animeface.xml"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
CROPS, DONE = "crops.jsonl", "done.jsonl"
ENLARGE = 1.5
DETECT_MAX_SIDE = 1536  # larger pictures are detected on a downscaled copy; crops still come from full size
DUPLICATE_BITS = 6      # perceptual hashes this close (of 64 bits) are the same picture

_cascade: cv2.CascadeClassifier | None = None


def load_rgb(path: str | Path) -> np.ndarray:
    """Decode a picture to uint8 RGB (H x W x 3), or raise with a one-line reason.

    Converted rather than refused: CMYK, 16-bit, greyscale, palette; transparency is laid on white (the usual
    background of character art). Refused: unreadable or truncated files, and pictures above PIL's
    MAX_IMAGE_PIXELS (decompression bombs; PIL's warning below twice that limit is treated as an error too).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(im, dtype=np.uint32)
        im = Image.fromarray((pixels >> 8 if pixels.max() > 255 else pixels).astype(np.uint8), "L")
    if im.mode in ("P", "PA", "LA", "RGBA", "La", "RGBa") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def detect_faces(rgb: np.ndarray, min_size: int = 24) -> list[tuple[int, int, int, int, int]]:
    """Anime faces in an RGB picture as (x, y, w, h, neighbours); more neighbours = a surer detection.

    Upstream's recipe: equalised greyscale, scaleFactor 1.1, minNeighbors 5, minSize 24. Large pictures are
    searched at most DETECT_MAX_SIDE pixels wide and the boxes scaled back.
    """
    global _cascade
    if _cascade is None:
        _cascade = cv2.CascadeClassifier(str(CASCADE))
        if _cascade.empty():
            raise FileNotFoundError(f"{CASCADE}: could not load the face cascade")
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    scale = min(1.0, DETECT_MAX_SIDE / max(grey.shape))
    if scale < 1.0:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(grey)
    boxes, neighbours = _cascade.detectMultiScale2(grey, scaleFactor=1.1, minNeighbors=5,
                                                   minSize=(min_size, min_size))
    return [(round(x / scale), round(y / scale), round(w / scale), round(h / scale), int(n))
            for (x, y, w, h), n in zip(np.reshape(boxes, (-1, 4)), np.reshape(neighbours, -1))]


def crop_box(box: tuple[int, int, int, int], width: int, height: int, enlarge: float = ENLARGE
             ) -> tuple[int, int, int]:
    """The square (x0, y0, side) around a face box enlarged `enlarge` times about its centre.

    Moved inside the picture where it fits (a face at the border stays whole); where the square is larger
    than the picture it sticks out and `cut_square` pads it.
    """
    x, y, w, h = box
    side = round(max(w, h) * enlarge)
    cx, cy = x + w / 2, y + h / 2
    x0 = round(min(max(cx - side / 2, 0), width - side)) if side <= width else round(cx - side / 2)
    y0 = round(min(max(cy - side / 2, 0), height - side)) if side <= height else round(cy - side / 2)
    return x0, y0, side


def cut_square(rgb: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """rgb[y0:y0+side, x0:x0+side], padded by repeating the edge pixels where it leaves the picture."""
    h, w = rgb.shape[:2]
    pad = (max(0, -y0), max(0, y0 + side - h)), (max(0, -x0), max(0, x0 + side - w)), (0, 0)
    if any(p for pair in pad for p in pair):
        rgb = np.pad(rgb, pad, mode="edge")
        x0, y0 = x0 + pad[1][0], y0 + pad[0][0]
    return rgb[y0:y0 + side, x0:x0 + side]


def phash(rgb: np.ndarray) -> int:
    """64-bit DCT perceptual hash: robust to rescaling and recompression, unlike a byte hash."""
    grey = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(grey.astype(np.float32))[:8, :8].reshape(-1)
    bits = low > np.median(low[1:])
    return int(np.packbits(bits).view(">u8")[0])


def _encode(crop: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "png":
        Image.fromarray(crop).save(buf, format="PNG", optimize=False)
    else:
        Image.fromarray(crop).save(buf, format="JPEG", quality=95, subsampling=0)
    return buf.getvalue()


@dataclass
class Job:
    path: Path
    source: str  # path relative to the input folder: the key of the done-record
    resolution: int
    min_size: int
    fmt: str
    enlarge: float


def process(job: Job) -> dict:
    """Detect and cut the faces of one picture. Returns {source, error} or {source, faces, crops: [...]}."""
    try:
        rgb = load_rgb(job.path)
    except Exception as exc:  # PIL and the OS raise many types for broken files; the reason is what matters
        return {"source": job.source, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    faces = detect_faces(rgb)
    crops = []
    for x, y, w, h, n in faces:
        if max(w, h) < job.min_size:
            continue
        x0, y0, side = crop_box((x, y, w, h), rgb.shape[1], rgb.shape[0], job.enlarge)
        crop = cv2.resize(cut_square(rgb, x0, y0, side), (job.resolution, job.resolution),
                          interpolation=cv2.INTER_AREA if side >= job.resolution else cv2.INTER_LANCZOS4)
        crops.append({"box": [x, y, w, h], "crop_box": [x0, y0, side, side], "neighbours": n,
                      "phash": phash(crop), "mirror_phash": phash(crop[:, ::-1]),
                      "data": _encode(crop, job.fmt)})
    return {"source": job.source, "faces": len(faces), "crops": crops}


def _read_jsonl(path: Path) -> list[dict]:
    """Records of a JSON-lines file; a torn last line (from a kill mid-write) is ignored."""
    records = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


class CropFolder:
    """The output folder: what is done, the hashes of kept crops, and the atomic writes."""

    def __init__(self, out_dir: Path):
        self.out = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.done = {r["source"] for r in _read_jsonl(out_dir / DONE)}
        # Crop records of a source that never finished are dropped; its crops will be written again.
        lines = (out_dir / CROPS).read_text(encoding="utf-8").splitlines() if (out_dir / CROPS).is_file() else []
        records = [r for r in _read_jsonl(out_dir / CROPS) if r["source"] in self.done]
        if len(records) != len(lines):
            _atomic_write(out_dir / CROPS, "".join(json.dumps(r) + "\n" for r in records).encode())
        self.hashes = np.array([int(r["phash"], 16) for r in records], dtype=np.uint64)

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
        stem = result["source"].rsplit(".", 1)[0].replace("/", "__")
        lines, kept, dupes = [], 0, 0
        for i, crop in enumerate(result.get("crops", [])):
            if self.is_duplicate(crop):
                dupes += 1
                continue
            name = f"{stem}_{i}.{fmt}"
            _atomic_write(self.out / name, crop["data"])
            self.hashes = np.append(self.hashes, np.uint64(crop["phash"]))
            lines.append({"crop": name, "source": result["source"], "box": crop["box"],
                          "crop_box": crop["crop_box"], "neighbours": crop["neighbours"],
                          "phash": f"{crop['phash']:016x}"})
            kept += 1
        _append(self.out / CROPS, lines)
        done = {"source": result["source"]}
        done.update({"error": result["error"]} if "error" in result else
                    {"faces": result["faces"], "kept": kept, "duplicates": dupes})
        _append(self.out / DONE, [done])
        self.done.add(result["source"])
        return kept, dupes


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _append(path: Path, records: list[dict]) -> None:
    """Append whole lines in one write, flushed to disk before the caller goes on."""
    if not records:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
        f.flush()
        os.fsync(f.fileno())


def find_pictures(in_dir: Path, out_dir: Path) -> list[Path]:
    """Picture files under `in_dir` (recursively, sorted), leaving out the output folder if it is inside."""
    out_dir = out_dir.resolve()
    return sorted(p for p in in_dir.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and out_dir not in p.resolve().parents)


def _init_worker() -> None:
    cv2.setNumThreads(1)  # the parallelism is one process per core


def _run(jobs: list[Job], workers: int) -> Iterator[dict]:
    if workers <= 1:
        _init_worker()
        yield from map(process, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
        yield from pool.map(process, jobs, chunksize=4)


def crop_folder(in_dir: str | Path, out_dir: str | Path, resolution: int = 64, min_size: int = 32,
                workers: int = 2, fmt: str = "png", enlarge: float = ENLARGE) -> dict:
    """Crop every picture under `in_dir` not yet done into `out_dir`; returns the run's counts.

    `enlarge` 1.0 frames faces like the MLDS Getchu crops (cut at the cascade's box); 1.5 adds hair and chin.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise FileNotFoundError(f"{in_dir}: input folder not found")
    if resolution not in (64, 128, 256):
        raise ValueError(f"--resolution must be 64, 128 or 256, got {resolution}")
    if not 1.0 <= enlarge <= 3.0:
        raise ValueError(f"--enlarge must be between 1 and 3, got {enlarge}")
    if fmt not in ("png", "jpg"):
        raise ValueError(f"--format must be png or jpg, got {fmt}")
    folder = CropFolder(out_dir)
    pictures = find_pictures(in_dir, out_dir)
    jobs = [Job(p, p.relative_to(in_dir).as_posix(), resolution, min_size, fmt, enlarge) for p in pictures]
    jobs = [j for j in jobs if j.source not in folder.done]
    counts = {"pictures": len(pictures), "already_done": len(pictures) - len(jobs), "processed": 0,
              "faces": 0, "crops": 0, "duplicates": 0, "skipped": 0}
    for result in tqdm(_run(jobs, workers), total=len(jobs), desc="crop", unit="picture"):
        if "error" in result:
            tqdm.write(f"kyara crop: skipping {result['source']}: {result['error']}", file=sys.stderr)
            counts["skipped"] += 1
        else:
            counts["faces"] += result["faces"]
        kept, dupes = folder.add(result, fmt)
        counts["processed"] += 1
        counts["crops"] += kept
        counts["duplicates"] += dupes
    print(f"kyara crop: {counts['processed']} pictures processed ({counts['already_done']} already done, "
          f"{counts['skipped']} skipped), {counts['faces']} faces, {counts['crops']} crops written, "
          f"{counts['duplicates']} near-duplicates dropped -> {out_dir}", file=sys.stderr)
    return counts
