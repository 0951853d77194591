"""Realness: how well a small CNN, trained briefly from scratch, tells generated faces from real ones.

A person spots a generated face by its texture (grain, a dotted sub-pixel pattern), smeared eyes or a face
that does not hold together; the tagger's features and the face detector do not look for any of these. A
fresh classifier does: it learns whatever separates the two sets. Its held-out accuracy is the score
(0.5: it cannot tell them apart; 1.0: every face is told apart), with its log-loss beside it, which keeps
grading once the accuracy is near 1.

The protocol is fixed (sizes, steps, seeds, architecture) so that scores compare between checkpoints and
runs. The classifier is kept small and its training short on purpose: an unlimited one separates any
imperfect generator perfectly, and a score stuck at 1.0 could not rank checkpoints (at width 16 and 300
steps the bundled v1 model scores 1.000, log-loss 0.002; at width 4, 0.94-0.99 depending on the seed). A
short training depends on its seed, so the score is the mean over a few classifiers (`seeds`), with their
spread beside it; real training faces fed in as "generated" score about 0.5. Real faces are split
into the classifier's training and test halves by face group, so a face and its mirror twin never sit on
both sides (the test would then measure memory, not realness).

At full resolution the classifier is a texture detector: its receptive field is a quarter of a 64 px face
and its output an average over the image, so grain decides it and a melted face with a clean texture can
pass. The same protocol on faces shrunk to `SHAPE_RESOLUTION` first ("shape realness") averages the grain
away and lets the field span half the face: what is left to tell them apart is the layout (eyes, outline,
hair) and the colours. The bundled v1 model, told apart at 0.96 at 64 px, scores 0.65 at 32 px with a
third of the spread over seeds, and earlier, visibly more broken checkpoints 0.86-0.96.

In `kyara eval` it is the figure to trust (with the blind sheets) for "does it look made by a person", since
unlike the tagger's features and the face detector it sees what a person sees first. It tests the set,
variety included, so it ranks a truncated model below the same model untruncated although a person sees fewer
broken faces in it: compare realness at one truncation. The generated faces are asked for the tags of the real
faces they are set against; the real figure feeds real training faces in as "generated": what a perfect
generator would score.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.packed import PackedSet
from export.adapters import Source
from metrics.base import Generated, Metric, RealSide, Reference, fmt, matched_labels


NAME = "realness"
SHAPE_RESOLUTION = 32   # px: eyes still ~5 px wide, single-pixel grain averaged away


@dataclass(frozen=True)
class Protocol:
    train_per_class: int = 1000     # real and generated faces the classifier learns from, each
    test_per_class: int = 500       # held-out faces of each kind it is scored on
    steps: int = 300
    batch_size: int = 64            # half real, half generated
    width: int = 4                  # channels of the first layer; doubled twice
    lr: float = 2e-3
    resolution: int = 64            # larger faces are downscaled to this first (smaller ones are kept as they are)
    seeds: int = 3                  # classifiers trained (seed, seed + 1, ...); the figures are their mean
    seed: int = 0

    @property
    def per_class(self) -> int:
        return self.train_per_class + self.test_per_class


def fitted_protocol(available: int, protocol: Protocol = Protocol()) -> Protocol:
    """The protocol, shrunk to what a small split holds (a third of it for the test)."""
    if available >= protocol.per_class:
        return protocol
    test = max(2, available // 3)
    return replace(protocol, train_per_class=max(2, available - test), test_per_class=test)


def shape_protocol(protocol: Protocol = Protocol()) -> Protocol:
    """The same protocol on faces first shrunk to SHAPE_RESOLUTION: the shape-realness test."""
    return replace(protocol, resolution=min(protocol.resolution, SHAPE_RESOLUTION))


def judges(protocol: Protocol = Protocol()) -> dict[str, Protocol]:
    """Both realness tests by the name their figures go by: texture (the protocol as it is) and shape. On faces
    no larger than SHAPE_RESOLUTION the two are the same test."""
    return {"realness": protocol, "shape_realness": shape_protocol(protocol)}


def classifier(width: int) -> nn.Module:
    """Four 3x3 convolutions, the first at full resolution (so it can see single-pixel texture), then an
    average over the image: ~25k parameters at width 16."""
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, 1),
    )


def split_real(groups: np.ndarray, protocol: Protocol) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into `groups`) of the real faces to train on and to test on, whole face groups at a time."""
    rng = np.random.default_rng(protocol.seed)
    order = rng.permutation(np.unique(groups))
    members = {g: np.flatnonzero(groups == g) for g in order}
    train: list[int] = []
    test: list[int] = []
    for g in order:
        if len(test) < protocol.test_per_class:
            test.extend(members[g].tolist())
        elif len(train) < protocol.train_per_class:
            train.extend(members[g].tolist())
        else:
            break
    return np.array(train[:protocol.train_per_class]), np.array(test[:protocol.test_per_class])


@dataclass
class RealFaces:
    """The real side of the test, as `kyara eval`, the benchmarks and the trainer all pick it."""

    train: np.ndarray           # uint8 faces of the split the classifier learns from, and those it is tested on
    test: np.ndarray
    labels: np.ndarray          # their labels (train, then test): what generated faces are asked for
    stand_ins: np.ndarray       # as many training-split faces, in the place of generated ones: the real figure


def real_faces(data: PackedSet, split: str, protocol: Protocol) -> RealFaces:
    """Faces of `split` split by face group into the classifier's train and test halves, and stand-ins drawn
    from the training split (their own seed, so nothing else drawn from the data moves)."""
    candidates = data.indices(split)
    train, test = (candidates[np.asarray(i, dtype=int)]     # an empty half is an empty index, not floats
                   for i in split_real(np.asarray(data.meta["group"])[candidates], protocol))
    pool = data.indices("train")
    rng = np.random.default_rng(protocol.seed)
    stand_ins = np.sort(rng.choice(pool, min(len(train) + len(test), len(pool)), replace=False))
    return RealFaces(np.asarray(data.images[train]), np.asarray(data.images[test]),
                     data.labels[np.concatenate([train, test])], np.asarray(data.images[stand_ins]))


def real_figure(faces: RealFaces, protocol: Protocol) -> dict:
    """Realness of real training faces in the place of generated ones: what a perfect generator scores."""
    n = len(faces.train)
    return realness(faces.train, faces.test, faces.stand_ins[:n], faces.stand_ins[n:], protocol)


def _tensor(images: np.ndarray, resolution: int) -> torch.Tensor:
    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1)   # a copy: mmaps are read-only
    if x.shape[-1] > resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    return x


def realness(real_train: np.ndarray, real_test: np.ndarray, fake_train: np.ndarray, fake_test: np.ndarray,
             protocol: Protocol = Protocol()) -> dict:
    """Train `protocol.seeds` classifiers on real_train vs fake_train (uint8 N x H x W x 3) and score them
    on the test halves.

    Returns the mean held-out accuracy (the score) and its spread over the classifiers, the log-loss in
    nats (ln 2 = 0.693 at chance), the accuracy on each kind, and the protocol. Seeded: the same images
    give the same figures.
    """
    for name, images in (("real_train", real_train), ("real_test", real_test),
                         ("fake_train", fake_train), ("fake_test", fake_test)):
        if images.ndim != 4 or len(images) < 2 or images.shape[-1] != 3:
            raise ValueError(f"realness: {name} must be at least 2 images, N x H x W x 3, got {images.shape}")
    real, fake = _tensor(real_train, protocol.resolution), _tensor(fake_train, protocol.resolution)
    test = torch.cat([_tensor(real_test, protocol.resolution), _tensor(fake_test, protocol.resolution)])
    truth = torch.cat([torch.ones(len(real_test)), torch.zeros(len(fake_test))])
    runs = [_one_classifier(real, fake, test, truth, protocol, protocol.seed + k) for k in range(protocol.seeds)]
    mean = {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}
    return {
        **mean,
        "accuracy_std": float(np.std([r["accuracy"] for r in runs])),
        "per_seed": [r["accuracy"] for r in runs],
        "images": {"train_per_class": int(min(len(real_train), len(fake_train))),
                   "test_real": int(len(real_test)), "test_generated": int(len(fake_test))},
        "protocol": asdict(protocol),
    }


def _one_classifier(real: torch.Tensor, fake: torch.Tensor, test: torch.Tensor, truth: torch.Tensor,
                    protocol: Protocol, seed: int) -> dict[str, float]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = classifier(protocol.width)
    opt = torch.optim.Adam(model.parameters(), lr=protocol.lr, betas=(0.5, 0.99))
    half = protocol.batch_size // 2
    target = torch.cat([torch.ones(half), torch.zeros(half)])
    model.train()
    for _ in range(protocol.steps):
        batch = torch.cat([real[torch.randint(len(real), (half,), generator=gen)],
                           fake[torch.randint(len(fake), (half,), generator=gen)]])
        flip = torch.rand(len(batch), generator=gen) < 0.5          # mirror images are real faces too
        batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
        loss = F.binary_cross_entropy_with_logits(model(batch).squeeze(1), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        p_real = torch.sigmoid(model(test).squeeze(1))
    correct = ((p_real >= 0.5).float() == truth).float()
    is_real = truth == 1
    return {
        "accuracy": float(correct.mean()),
        "log_loss": float(F.binary_cross_entropy(p_real.clamp(1e-6, 1 - 1e-6), truth)),
        "accuracy_real": float(correct[is_real].mean()),
        "accuracy_generated": float(correct[~is_real].mean()),
    }


@dataclass
class RealnessReference:
    """The real side of both realness tests in `kyara eval`, kept in the reference for every evaluation."""

    faces: RealFaces
    protocol: Protocol
    figures: dict[str, dict]    # each judge's figure with real training faces in the generated faces' place


def generated_faces(source: Source, ref: Reference, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Generated faces for the realness test, asked for the tags of its real faces: (train, test). The blind
    sheets take the test half too, beside the real test faces."""
    real = ref.real[NAME].faces
    fake = source.generate(*matched_labels(source, ref.vocab, real.labels, seed))
    return fake[:len(real.train)], fake[len(real.train):]


def _real(side: RealSide) -> RealnessReference:
    """The split's faces for the classifiers, under the protocol given (`options["realness"]`) or one fitted to
    the split's size."""
    protocol = side.options.get(NAME) or fitted_protocol(len(side.data.indices(side.split)))
    faces = real_faces(side.data, side.split, protocol)
    figures = {name: real_figure(faces, used) for name, used in judges(protocol).items()}
    return RealnessReference(faces, protocol, figures)


def _generated(gen: Generated) -> dict:
    real = gen.ref.real[NAME]
    fakes = generated_faces(gen.source, gen.ref, gen.seed + 4)
    return {name: {"generated": realness(real.faces.train, real.faces.test, *fakes, used), "real": real.figures[name]}
            for name, used in judges(real.protocol).items()}


def _headline(figures: dict) -> dict[str, float | None]:
    """None for an evaluation made with realness switched off, or before it (or shape realness) existed."""
    return {name: figures[name]["generated"]["accuracy"] if figures.get(name) else None for name in judges()}


def _scored(value: dict) -> str:
    return (f"{value['accuracy']:.3f} ± {value['accuracy_std']:.3f} (log-loss {value['log_loss']:.3f}; "
            f"real faces told {value['accuracy_real']:.2f}, generated {value['accuracy_generated']:.2f})")


def _px(figure: dict) -> str:
    """The size a realness figure's faces were judged at."""
    return f"{figure['generated']['protocol']['resolution']} px"


def _summary(figures: dict) -> list[str]:
    texture, shape = figures[NAME], figures["shape_realness"]
    return [f"realness      {_scored(texture['generated'])}; real faces {texture['real']['accuracy']:.3f} "
            "(0.5: indistinguishable)",
            f"  shape, {_px(shape)} {_scored(shape['generated'])}; real faces {shape['real']['accuracy']:.3f}"]


def _markdown(figures: dict) -> list[str]:
    rows = []
    for key, name in ((NAME, "accuracy"), ("shape_realness", f"shape realness, {_px(figures['shape_realness'])}")):
        generated, real = figures[key]["generated"], figures[key]["real"]
        rows += [f"| {name} | {fmt(generated['accuracy'])} ± {fmt(generated['accuracy_std'])} "
                 f"| {fmt(real['accuracy'])} ± {fmt(real['accuracy_std'])} |",
                 f"| {'log-loss' if key == NAME else 'its log-loss'} (nats; 0.693 at chance) "
                 f"| {fmt(generated['log_loss'])} | {fmt(real['log_loss'])} |"]
    return [
        "Held-out accuracy of a small CNN trained briefly (fixed protocol, mean of "
        f"{figures[NAME]['generated']['protocol']['seeds']} seeds) to tell generated faces from real validation "
        "faces: 0.5 means it cannot tell them apart, 1.0 that it always can. The real column feeds real training "
        "faces in as \"generated\": the floor. At full resolution it is decided mostly by texture (grain); "
        "shape realness is the same test on faces shrunk to 32 px first, where the grain is averaged away and "
        "the layout (eyes, outline, hair) and the colours are what is left. These are the figures to trust for "
        "whether faces look made by a person; the blind sheets below let you check them by eye.", "",
        "| | generated | real |", "| --- | --- | --- |", *rows,
    ]


METRIC = Metric(NAME, "Realness", _real, _generated, _headline, _summary, _markdown)
