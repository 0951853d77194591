"""Generate faces from an exported model with onnxruntime, numpy and pillow only (no torch, no training).

    from export.runtime import Generator
    faces = Generator("models/default").generate(tags=["blonde hair", "red eyes"], n=8, seed=7)
    hd = Generator("models/default").generate(tags=["blonde hair"], n=8, seed=7, scale=4)   # 256 px, waifu2x

Everything the model needs (noise size, tag order, groups, priors) comes from the manifest embedded in the
ONNX file. One seed gives the same faces every time: the noise is drawn first, then one draw per tag group
whether or not the user fixed that group, so fixing a tag changes that tag only, not the other draws.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import onnxruntime as ort
from PIL import Image

from common.vocab import Vocabulary
from export.manifest import MANIFEST_KEY, check_listed_file, model_file

BATCH = 16   # images per onnxruntime call: keeps memory flat for large n
UPSCALE_BATCH = 4   # faces per upscaler call: its 256-channel maps take ~20 MB a 128 px face
SCALES = (1, 2, 4)
DEFAULT_UPSCALER = Path(__file__).resolve().parent.parent / "models" / "upscaler"


def sample_labels(manifest: dict, n: int, rng: np.random.Generator, chosen: Sequence[str] = ()) -> np.ndarray:
    """Labels (n x T float32) with `chosen` on, the rest drawn from the manifest's priors
    (`Vocabulary.sample_labels` with the priors read from the manifest's groups)."""
    priors = {tag: p for group in manifest["groups"] for tag, p in zip(group["tags"], group["priors"])}
    return Vocabulary(manifest["tags"]).sample_labels([priors[t] for t in manifest["tags"]], n, rng, chosen)


def check_scale(scale: int) -> None:
    """Refuse a scale other than 1, 2 or 4 (ValueError)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale}")


def session_config(manifest: dict, file_name: str) -> dict[str, str]:
    """The onnxruntime session config entries the manifest's variant of `file_name` asks for (none: {})."""
    variant = next((v for v in manifest.get("variants", ()) if v.get("file") == file_name), {})
    return dict(variant.get("session_config", {}))


def open_session(path: Path, threads: int = 0, config: dict[str, str] | None = None,
                 optimized_copy: Path | None = None) -> ort.InferenceSession:
    """A CPU session for `path` with `config` entries; `optimized_copy` saves the graph onnxruntime runs."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    if optimized_copy is not None:
        options.optimized_model_filepath = str(optimized_copy)
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not an ONNX model onnxruntime can load ({reason})") from None


def open_model(model: str | Path, threads: int, made_by: str) -> tuple[Path, ort.InferenceSession, dict]:
    """The ONNX file a user means (a file, or a folder's default file), its session and its embedded manifest.

    The file's variant entry may ask for session config (the compact variants: fold their weights at load);
    it is only known once the file's own manifest is read, so such a file is opened a second time.
    """
    path = model_file(model)
    check_listed_file(path)             # a file its folder's manifest.json lists must be the file it lists
    session = open_session(path, threads)
    metadata = session.get_modelmeta().custom_metadata_map
    if MANIFEST_KEY not in metadata:
        raise ValueError(f"{path}: an ONNX model, but not one made by `{made_by}` (no {MANIFEST_KEY!r} in its metadata)")
    try:
        manifest = json.loads(metadata[MANIFEST_KEY])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: its embedded manifest is not valid JSON ({exc.msg})") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: its embedded manifest is not a JSON object")
    config = session_config(manifest, path.name)
    if config:
        session = open_session(path, threads, config)
    return path, session, manifest


class Upscaler:
    """An upscaler folder made by `kyara upscaler` (waifu2x, x2): RGBA bytes in, RGBA bytes twice the size out.

    x4 is x2 applied twice (docs/experiments/2026-12-07-hd-upscaler.md compares it with bicubic, then x2).
    """

    def __init__(self, model: str | Path = DEFAULT_UPSCALER, threads: int = 0):
        self.path, self.session, self.manifest = open_model(model, threads, "kyara upscaler")
        if self.manifest.get("format", "").split("/")[0] != "kyara-upscaler" or self.manifest.get("scale") != 2:
            raise ValueError(f"{self.path}: not an x2 upscaler made by `kyara upscaler`")

    def upscale(self, rgba: np.ndarray, scale: int) -> np.ndarray:
        """N x H x W x 4 uint8 faces at `scale` (1, 2 or 4) times their size."""
        check_scale(scale)
        for _ in range({1: 0, 2: 1, 4: 2}[scale]):
            rgba = np.concatenate([self.session.run(["rgba"], {"rgba_in": rgba[i:i + UPSCALE_BATCH]})[0]
                                   for i in range(0, len(rgba), UPSCALE_BATCH)])
        return rgba


class Generator:
    """An exported Kyara generator: the .onnx file, or a model folder (its manifest's default file).

    `upscaler`: the folder `generate(..., scale=2 or 4)` upscales with (default: the repository's
    models/upscaler), opened the first time it is needed.
    """

    def __init__(self, model: str | Path, threads: int = 0, upscaler: str | Path = DEFAULT_UPSCALER):
        self.path, self.session, self.manifest = open_model(model, threads, "kyara export")
        self.session_config: dict[str, str] = session_config(self.manifest, self.path.name)
        self.threads, self.upscaler_path = threads, upscaler
        self._upscaler: Upscaler | None = None
        self.vocab = Vocabulary(self.manifest["tags"])
        # The groups decide which tags exclude each other; the page reads them from the manifest, so this
        # runtime must agree with it, not only with the vocabulary it rebuilds from the tag list.
        listed = [(g["name"], g["exclusive"], g.get("at_most_one", False), list(g["tags"]))
                  for g in self.manifest["groups"]]
        if listed != [(g.name, g.exclusive, g.at_most_one, list(g.tags)) for g in self.vocab.groups]:
            raise ValueError(f"{self.path}: the manifest's tag groups differ from the paper's groups of its tags")
        self.noise_dim: int = self.manifest["noise_dim"]

    def run(self, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The model's `rgba` output (N x H x W x 4 uint8) for float32 noise and labels."""
        batches = [self.session.run(["rgba"], {"noise": noise[i:i + BATCH], "labels": labels[i:i + BATCH]})[0]
                   for i in range(0, len(noise), BATCH)]
        return np.concatenate(batches)

    def inputs(self, tags: str | Sequence[str] = (), n: int | None = None, seed: int | None = None,
               noise: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Validated (noise, labels) for `generate`; the tags are checked before anything is drawn.

        n defaults to the number of noise rows given, else 1.
        """
        if n is None:
            n = len(noise) if noise is not None and np.ndim(noise) == 2 else 1
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        chosen = self.vocab.parse(tags)
        rng = np.random.default_rng(seed)
        drawn = rng.standard_normal((n, self.noise_dim), dtype=np.float32)  # drawn anyway: same labels
        if noise is not None:
            noise = np.asarray(noise, dtype=np.float32)
            if noise.shape != (n, self.noise_dim):
                raise ValueError(f"noise has shape {noise.shape}; this model takes noise of shape "
                                 f"({n}, {self.noise_dim}) for n={n}")
            drawn = noise
        return drawn, sample_labels(self.manifest, n, rng, chosen)

    @property
    def upscaler(self) -> Upscaler:
        if self._upscaler is None:
            self._upscaler = Upscaler(self.upscaler_path, self.threads)
        return self._upscaler

    def faces(self, noise: np.ndarray, labels: np.ndarray, scale: int = 1) -> Iterator[Image.Image]:
        """The faces (RGB PIL images) of `inputs`' noise and labels one by one, made BATCH at a time: memory
        stays flat however many are asked for, and a caller can write each as it comes."""
        check_scale(scale)     # before anything runs
        for i in range(0, len(noise), BATCH):
            rgba = self.run(noise[i:i + BATCH], labels[i:i + BATCH])
            if scale > 1:
                rgba = self.upscaler.upscale(rgba, scale)
            yield from (Image.fromarray(np.ascontiguousarray(face[..., :3])) for face in rgba)

    def generate(self, tags: str | Sequence[str] = (), n: int | None = None, seed: int | None = None,
                 noise: np.ndarray | None = None, scale: int = 1) -> list[Image.Image]:
        """n faces (RGB PIL images) with `tags` on; groups left open are drawn from the priors. `scale` 2 or 4
        gives the same faces at twice or four times the size, through the upscaler."""
        check_scale(scale)     # before anything runs
        return list(self.faces(*self.inputs(tags, n, seed, noise), scale=scale))
