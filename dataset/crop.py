"""`kyara data crop`: find anime faces in pictures and cut square, training-ready crops around them.

Per picture: decode defensively (`common.images.load_rgb`, shared with tag and pack), detect faces with
nagadomi's LBP cascade (`detect_faces`), enlarge each box (1.5x by default: the face plus hair) about its
centre, drop faces that are too small, resize to the target resolution. Across pictures: drop near-duplicate
crops (a perceptual hash, mirror images included, since mirrored copies are common in scraped art).

Output folder (its records, read and written, are `common.crops`, which the tagger reads too):
    <stem>_<hash>_<i>.png   the crops (or .jpg), each written to a temporary name and renamed; <stem> is the
                            source path without its extension, <hash> tells apart sources with equal stems
                            (x.png and x.jpg, a/b.png and a__b.png)
    crops.jsonl             one record per crop: crop, source, box, crop_box, neighbours, phash
    done.jsonl              one record per finished source: its stamp (size, modification time), faces
                            found and crops kept, or why it was skipped

A source is only marked done after its crops and their records are on disk, so an interrupted run loses
nothing and a re-run continues with the sources not yet done. A re-run also does again a picture that was
skipped (the user may have replaced the broken file) and one whose stamp changed (replaced or edited since):
what earlier runs wrote for it, records and crop files, is removed first.
"""
from __future__ import annotations

import io
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from common.crops import CropFolder
from common.images import IMAGE_SUFFIXES, load_rgb, skip_reason

CASCADE = Path(__file__).parent / "cascade" / "lbpcascade_animeface.xml"
ENLARGE = 1.5
DETECT_MAX_SIDE = 1536  # larger pictures are detected on a downscaled copy; crops still come from full size

_cascade: cv2.CascadeClassifier | None = None


def detect_faces(rgb: np.ndarray, min_size: int = 24) -> list[tuple[int, int, int, int, int]]:
    """Anime faces in an RGB picture as (x, y, w, h, neighbours); more neighbours = a surer detection.

    Upstream's recipe: equalised greyscale, scaleFactor 1.1, minNeighbors 5, minSize 24. Large pictures are
    searched at most DETECT_MAX_SIDE pixels long and the boxes scaled back. A picture narrower than `min_size`
    once searched (a 1 x 4000 strip, say) cannot hold a face: ValueError, rather than OpenCV's error on an
    empty image.
    """
    global _cascade
    if _cascade is None:
        _cascade = cv2.CascadeClassifier(str(CASCADE))
        if _cascade.empty():
            raise FileNotFoundError(f"{CASCADE}: could not load the face cascade")
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    searched = (round(width * scale), round(height * scale))
    if min(searched) < min_size:
        raise ValueError(f"{width}x{height} px is too small for the face detector (searched at most "
                         f"{DETECT_MAX_SIDE} px long, it needs {min_size} px across)")
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        grey = cv2.resize(grey, searched, interpolation=cv2.INTER_AREA)
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


def stamp_of(path: Path) -> list[int]:
    """Size and modification time (ns) of a picture: a file replaced since it was cropped has another stamp.

    Cheaper than hashing every picture on every run; like make and rsync, it trusts the modification time.
    """
    info = path.stat()
    return [info.st_size, info.st_mtime_ns]


@dataclass
class Job:
    path: Path
    source: str  # path relative to the input folder: the key of the done-record
    stamp: list[int]  # taken before the picture is read, so a file changed during the run is redone next time
    resolution: int
    min_size: int
    fmt: str
    enlarge: float


def process(job: Job) -> dict:
    """Detect and cut the faces of one picture. Returns {source, error} or {source, faces, crops: [...]}.

    Any failure of one picture (a broken file, a strip too thin to search, an OpenCV error) becomes its
    error record: one odd picture must not end the run, nor every re-run after it.
    """
    try:
        return {"source": job.source, "stamp": job.stamp, **_cut_faces(job)}
    except Exception as exc:  # whatever the type, the reason is what the user needs
        return {"source": job.source, "stamp": job.stamp, "error": skip_reason(exc)}


def _cut_faces(job: Job) -> dict:
    """The faces found in one picture and the encoded crops of those large enough; raises on a bad picture."""
    rgb = load_rgb(job.path)
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
    return {"faces": len(faces), "crops": crops}


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
    jobs = [Job(p, p.relative_to(in_dir).as_posix(), stamp_of(p), resolution, min_size, fmt, enlarge)
            for p in pictures]
    jobs = [j for j in jobs if not folder.is_current(j.source, j.stamp)]
    folder.forget({j.source for j in jobs})   # skipped or replaced since: start that picture afresh
    counts = {"pictures": len(pictures), "already_done": len(pictures) - len(jobs), "processed": 0,
              "faces": 0, "crops": 0, "duplicates": 0, "skipped": 0}
    for result in tqdm(_run(jobs, workers), total=len(jobs), desc="crop", unit="picture"):
        if "error" in result:
            tqdm.write(f"kyara data crop: skipping {result['source']}: {result['error']}", file=sys.stderr)
            counts["skipped"] += 1
        else:
            counts["faces"] += result["faces"]
        kept, dupes = folder.add(result, fmt)
        counts["processed"] += 1
        counts["crops"] += kept
        counts["duplicates"] += dupes
    print(f"kyara data crop: {counts['processed']} pictures processed ({counts['already_done']} already done, "
          f"{counts['skipped']} skipped), {counts['faces']} faces, {counts['crops']} crops written, "
          f"{counts['duplicates']} near-duplicates dropped -> {out_dir}", file=sys.stderr)
    return counts
