"""Generator adapters: a checkpoint, a run folder or an exported ONNX model, seen as one function of noise and
labels to faces, so that sampling, the metrics and the blind sheets treat them alike.

`draw` is the one place that turns a seed and the chosen tags into noise and labels: the same seed asks every
model for the same faces.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from common.packed import PackedSet
from common.vocab import Vocabulary
from training.grid import to_uint8


@dataclass
class Source:
    """A generator seen as a function of noise and labels (float32 numpy) to uint8 N x H x W x 3 faces,
    whether it is a PyTorch checkpoint or an exported ONNX model."""

    generate: Callable[[np.ndarray, np.ndarray], np.ndarray]
    vocab: Vocabulary
    priors: np.ndarray
    noise_dim: int
    truncation: float = 1.0     # how far the noise is drawn in towards 0 before G sees it (1: not at all)
    resolution: int = 0         # side of its faces in px (0: not known), checked against real faces' before use


def check_resolution(source: Source, model: str | Path, data: PackedSet) -> None:
    """Refuse a model whose faces are not the size of the real faces they are to be set beside (before any
    figure is computed: the two would only meet deep inside, as a numpy or torch error)."""
    if source.resolution and source.resolution != data.resolution:
        raise ValueError(f"{model}: makes {source.resolution} px faces, but {data.path} holds {data.resolution} px "
                         f"faces; use a packed set of {source.resolution} px (kyara data pack --resolution "
                         f"{source.resolution}) or a model of {data.resolution} px")


def truncated(source: Source, psi: float) -> Source:
    """`source` with its noise scaled by psi (0 < psi <= 1) on the way in: the faces of a model exported with
    `kyara export --truncation psi` (`export.fold.fold_truncation` puts the same factor in the weights)."""
    if not 0 < psi <= 1:
        raise ValueError(f"truncation must be above 0 and at most 1, got {psi}")
    if psi == 1:
        return source
    return replace(source, generate=lambda noise, labels: source.generate(noise * np.float32(psi), labels),
                   truncation=source.truncation * psi)


def torch_source(generator: torch.nn.Module, vocab: Vocabulary, priors: np.ndarray | list[float],
                 batch_size: int = 128) -> Source:
    """Wrap a PyTorch generator (in eval mode) on whatever device it lives."""
    device = next(generator.parameters()).device

    @torch.no_grad()
    def generate(noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.concatenate([
            to_uint8(generator(torch.from_numpy(noise[i:i + batch_size]).to(device),
                               torch.from_numpy(labels[i:i + batch_size]).to(device)))
            for i in range(0, len(noise), batch_size)])

    return Source(generate, vocab, np.asarray(priors, dtype=np.float32), generator.cfg.noise_dim,
                  resolution=generator.cfg.resolution)


def open_source(path: str | Path) -> Source:
    """A checkpoint or run directory (its EMA generator), or an exported model directory / .onnx file."""
    path = Path(path)
    if path.suffix == ".onnx" or (path / "manifest.json").is_file():
        return _onnx_source(path)
    from training.checkpoint import load_generator
    generator, vocab, priors, _ = load_generator(path)
    return torch_source(generator, vocab, priors)


def _onnx_source(path: Path) -> Source:
    """The torch-free runtime's model; its priors come from the manifest, group by group."""
    from export.runtime import Generator as OnnxGenerator
    model = OnnxGenerator(path)
    priors = np.zeros(len(model.vocab), np.float32)
    for group in model.manifest["groups"]:
        for tag, prior in zip(group["tags"], group["priors"]):
            priors[model.vocab.index(tag)] = prior
    noise_input = next(i for i in model.manifest["inputs"] if i["name"] == "noise")
    return Source(lambda noise, labels: model.run(noise, labels)[..., :3], model.vocab, priors, model.noise_dim,
                  noise_input.get("truncation", 1.0),   # models exported before truncation have none
                  model.manifest["resolution"])


BUNDLED_UPSCALER = "upscaler"     # the `upscaled` method that means the repository's models/upscaler


def upscaled(faces: np.ndarray, scale: int, method: str = BUNDLED_UPSCALER) -> np.ndarray:
    """uint8 N x H x W x 3 faces at `scale` times their size: "bicubic" (as a browser enlarges a picture),
    "upscaler" (the repository's upscaler, as the page's HD faces are drawn) or the path of another upscaler
    folder (`kyara upscaler`). Scale 1: the faces."""
    if scale == 1:
        return faces
    if method == "bicubic":
        size = (faces.shape[2] * scale, faces.shape[1] * scale)
        return np.stack([np.asarray(Image.fromarray(face).resize(size, Image.BICUBIC)) for face in faces])
    from export.runtime import DEFAULT_UPSCALER, Upscaler
    upscaler = Upscaler(DEFAULT_UPSCALER if method == BUNDLED_UPSCALER else method)
    rgba = np.concatenate([faces, np.full((*faces.shape[:3], 1), 255, np.uint8)], axis=3)
    return np.ascontiguousarray(upscaler.upscale(rgba, scale)[..., :3])


def draw(source: Source, n: int, seed: int, chosen: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Noise and labels for n faces with the `chosen` tags on and every other group drawn from the priors.

    One seed gives the same noise and the same other tags whatever is chosen, so faces asked for different
    colours differ only in what was asked.
    """
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, source.noise_dim), dtype=np.float32)
    return noise, source.vocab.sample_labels(source.priors, n, rng, chosen)
