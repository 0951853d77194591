"""The distilled upscaler's data: 64 px faces from the Getchu and Konachan tars and the bundled generator, the
teacher's x2 of each (and, for some, its x2 of that: the second pass of x4), a validation share held out by face
group, and aligned training patches. Made once per run folder (RUN_DIR/data) and reused for the same settings.
"""
from __future__ import annotations

import json
import sys
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from common.files import atomic_path, write_text_atomic

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
DEFAULT_GETCHU = SHARED_DATA / "getchu_extra_data_64px.tar"
DEFAULT_KONACHAN = SHARED_DATA / "konachan_faces_96px.tar"
DEFAULT_GENERATOR = REPO / "models" / "default"
SIZE = 64                   # the faces' size: the generator's, and what the page upscales
DATA, DATA_JSON = "data", "data.json"


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------------------------------------- the data

@dataclass(frozen=True)
class DataConfig:
    """What the run's faces are made of; the run folder's data are reused only for the same settings."""

    getchu: str = str(DEFAULT_GETCHU)
    konachan: str = str(DEFAULT_KONACHAN)
    generator: str = str(DEFAULT_GENERATOR)
    getchu_faces: int = 2000
    konachan_faces: int = 600
    generated_faces: int = 600
    val_faces: int = 200
    x4_faces: int = 1000           # training faces that also get the teacher's 256 px (the second pass)
    seed: int = 0


def _grey_thumbs(images: np.ndarray) -> np.ndarray:
    from dataset.pack import THUMB
    return np.stack([np.asarray(Image.fromarray(im).convert("L").resize((THUMB, THUMB), Image.Resampling.BOX))
                     for im in images])


def read_tar_faces(path: str | Path, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` faces drawn at random from an MLDS tar (`kyara data pack`'s reader), at 64 px (Lanczos where they
    are larger), and their face groups (mirror twins and duplicates share one, as in `kyara data pack`)."""
    from common.images import load_rgb, skip_reason
    from common.packed import face_groups
    from dataset.pack import tar_items

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such tar of faces")
    if not tarfile.is_tarfile(path):
        raise ValueError(f"{path}: not a tar file")
    try:
        tags, items = tar_items(path)
        names = sorted(tags)
        chosen = set(rng.choice(names, size=min(count, len(names)), replace=False).tolist()) if names else set()
        faces = {}
        for name, data in items:
            if name in chosen:
                try:
                    faces[name] = load_rgb(data, SIZE)
                except Exception as exc:  # whatever the type, one line and on
                    print(f"kyara upscaler: skipping {path}:{name}: {skip_reason(exc)}", file=sys.stderr)
    except (tarfile.TarError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable tar of faces ({exc})") from None
    if not faces:
        raise ValueError(f"{path}: no tagged face could be read")
    order = sorted(faces)
    images = np.stack([faces[n] for n in order])
    buckets = np.unique([" ".join(sorted(tags[n])) for n in order], return_inverse=True)[1].reshape(-1)
    return images, face_groups(_grey_thumbs(images), buckets)


def generated_faces(model: str | Path, count: int, seed: int, threads: int) -> np.ndarray:
    """`count` faces of an exported generator (`kyara export` folder), at 64 px."""
    from export.runtime import Generator
    generator = Generator(model, threads=threads)
    faces = generator.run(*generator.inputs((), count, seed))[..., :3]
    if faces.shape[1:3] != (SIZE, SIZE):
        faces = np.stack([np.asarray(Image.fromarray(f).resize((SIZE, SIZE), Image.Resampling.LANCZOS))
                          for f in faces])
    return np.ascontiguousarray(faces)


def rgba(rgb: np.ndarray) -> np.ndarray:
    return np.concatenate([rgb, np.full((*rgb.shape[:3], 1), 255, np.uint8)], axis=3)


def teacher_x2(upscaler, rgb: np.ndarray, what: str, batch: int = 8) -> np.ndarray:
    """The teacher's x2 of N x H x W x 3 faces (RGB bytes), with a progress line every tenth or so."""
    out, start, every = [], time.perf_counter(), max(batch, (len(rgb) // 10) // batch * batch)
    for i in range(0, len(rgb), batch):
        out.append(upscaler.upscale(rgba(rgb[i:i + batch]), 2)[..., :3])
        done = min(i + batch, len(rgb))
        if done % every == 0 or done == len(rgb):
            log(f"teacher {what}: {done}/{len(rgb)} faces, {time.perf_counter() - start:.0f} s")
    return np.concatenate(out)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over faces of each face's PSNR in dB (8-bit RGB, N x H x W x 3)."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(1)
    return float(np.mean(10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))))


def bicubic(rgb: np.ndarray, size: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BICUBIC)) for f in rgb])


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, array)


def prepare_data(run_dir: Path, config: DataConfig, teacher, teacher_sha256: str, threads: int,
                 must_exist: bool = False) -> dict:
    """The run's faces and the teacher's pictures of them, made once and kept in RUN_DIR/data:
    faces.npy (N x 64 x 64 x 3), x2.npy (the teacher's 128 px of every face), x4.npy (the teacher's 256 px
    of x2.npy's rows `x4_rows`: the validation faces first), and data.json (the settings, which rows are
    validation, bicubic's PSNR against the teacher), written last."""
    folder = run_dir / DATA
    key = {**asdict(config), "teacher_sha256": teacher_sha256}
    info_path = folder / DATA_JSON
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text())
        except ValueError:
            info = {}
        if info.get("config") == key and all((folder / f).is_file() for f in ("faces.npy", "x2.npy", "x4.npy")):
            log(f"data: {info['faces']} faces ({len(info['val'])} for validation) from {folder}")
            return info
        if must_exist:
            raise ValueError(f"{run_dir}: its data were made with other settings or another teacher "
                             f"({info.get('config')}); resume with the same ones, or start another --run-dir")
    elif must_exist:
        raise ValueError(f"{run_dir}: has a checkpoint but no complete {DATA}/{DATA_JSON}; start another --run-dir")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    parts, groups, sources, offset = [], [], [], 0
    for name, path, count in (("getchu", config.getchu, config.getchu_faces),
                              ("konachan", config.konachan, config.konachan_faces)):
        if count:
            images, group = read_tar_faces(path, count, rng)
            parts.append(images)
            groups.append(group + offset)
            offset += int(group.max()) + 1
            sources.append({"name": name, "path": str(path), "faces": len(images),
                            "face_groups": len(np.unique(group))})
            log(f"data: {len(images)} faces ({len(np.unique(group))} face groups) from {path}")
    if config.generated_faces:
        images = generated_faces(config.generator, config.generated_faces, config.seed, threads)
        parts.append(images)
        groups.append(np.arange(len(images)) + offset)
        sources.append({"name": "generator", "path": str(config.generator), "faces": len(images),
                        "seed": config.seed})
        log(f"data: {len(images)} faces from the generator {config.generator} (seed {config.seed})")
    if not parts:
        raise ValueError("no faces: every source has 0 faces")
    faces = np.concatenate(parts)
    group = np.concatenate(groups)
    unique = np.unique(group)
    if config.val_faces >= len(faces) or len(unique) < 2:
        raise ValueError(f"--val-faces {config.val_faces} leaves nothing to train on ({len(faces)} faces, "
                         f"{len(unique)} face groups)")
    # Whole face groups, in a random order, until the validation share has its faces.
    val = np.zeros(len(faces), bool)
    for g in rng.permutation(unique):
        if val.sum() >= config.val_faces:
            break
        val |= group == g
    val_rows = np.flatnonzero(val)
    train_rows = np.flatnonzero(~val)
    x4_rows = np.concatenate([val_rows, rng.permutation(train_rows)[:config.x4_faces]])
    _save_npy(folder / "faces.npy", faces)
    log(f"data: the teacher's x2 of {len(faces)} faces and x4 of {len(x4_rows)}")
    x2 = teacher_x2(teacher, faces, "64 -> 128 px")
    _save_npy(folder / "x2.npy", x2)
    x4 = teacher_x2(teacher, x2[x4_rows], "128 -> 256 px")
    _save_npy(folder / "x4.npy", x4)
    val_x4 = x4[:len(val_rows)]
    info = {
        "config": key, "faces": len(faces), "sources": sources, "val": val_rows.tolist(),
        "x4_rows": x4_rows.tolist(),
        "bicubic_psnr_db_vs_teacher": {"x2": round(psnr(bicubic(faces[val_rows], 2 * SIZE), x2[val_rows]), 3),
                                       "x4": round(psnr(bicubic(faces[val_rows], 4 * SIZE), val_x4), 3)},
    }
    write_text_atomic(info_path, json.dumps(info) + "\n")
    return info


class Patches:
    """Aligned (input, target) patches: the input edge-padded by the student's padding like the graph, so a
    patch at (y, x) of P + 2m px gives the target's 2P px at (2y, 2x), the faces' edges included."""

    def __init__(self, inputs: np.ndarray, targets: np.ndarray, padding: int, patch: int):
        if inputs.shape[1] < patch:
            raise ValueError(f"--patch {patch} is larger than the {inputs.shape[1]} px faces")
        self.inputs = np.pad(inputs, ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode="edge")
        self.targets, self.patch, self.span = targets, patch, patch + 2 * padding
        self.positions = inputs.shape[1] - patch + 1

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        rows = rng.integers(0, len(self.inputs), n)
        ys, xs = rng.integers(0, self.positions, n), rng.integers(0, self.positions, n)
        s, p = self.span, 2 * self.patch
        x = np.stack([self.inputs[r, y:y + s, x_:x_ + s] for r, y, x_ in zip(rows, ys, xs)])
        y = np.stack([self.targets[r, 2 * y_:2 * y_ + p, 2 * x_:2 * x_ + p] for r, y_, x_ in zip(rows, ys, xs)])
        return x, y
