"""`kyara eval`: how good is a generator, in figures that can be compared between checkpoints.

Every figure stands next to the same figure for real faces, because on their own they mean little:
- tag fidelity: for each colour of each exclusive group, faces asked for that colour, and how often the
  tagger sees it (its most likely tag of the group). The real figure is the tagger's own accuracy on the
  validation faces: a generator cannot be judged better than the judge.
- attribute fidelity: for each tag outside the colour groups (hair length, expression, ...), the same faces
  (noise and other tags) asked for it on and then off, and how often the tagger sees it (its probability
  at or above the tagger's threshold). The real figures are the tagger on real faces labelled with and
  without the tag: how well the judge itself tells them apart.
- face rate: how often lbpcascade_animeface finds a face (upscaled to 256 px first: the cascade was made
  for faces in full-size pictures); 1 - face rate is the nightmare rate, a stand-in for the share of faces
  a person would call broken.
- KID and FID in the tagger's feature space: Inception weights cannot be downloaded here, so the features
  are the tagger's penultimate layer, a CNN trained on anime faces. The figures are therefore comparable
  only between evaluations with the same tagger, never with published FIDs. The real figure compares real
  training faces with the validation faces: what a perfect generator would reach with this many images.
- diversity: the mean pairwise feature distance among faces that all have one fixed tag set (the most
  common one in the data); mode collapse shows as a drop below the real faces' figure.
- realness (training/realness.py): the held-out accuracy of a small CNN trained briefly to tell generated
  faces from real validation faces (0.5: it cannot; 1.0: it always can). Unlike the figures above it
  sees what a person sees first. At 64 px that is mostly texture (grain); shape realness is the same test
  on faces shrunk to 32 px, where grain is averaged away and what separates them is the layout (smeared
  eyes, melted faces) and the colours. The real figure feeds real training faces in as "generated": what
  a perfect generator would score.
- spectrum (training/spectrum.py): the power of the faces' luminance and, apart, of their chroma (colour)
  in bands of spatial frequency, as a ratio to the real faces' (1.0: real; above 1 in the top band: grain;
  below 1: blur), and a distance for each (mean |log2 ratio|). Chroma grain is the coloured speckle a
  person sees first. The real figure compares real training faces with the validation faces.
- sample sheets: hair colours down, eye colours across, one fixed noise vector; and faces with tags
  drawn from the priors. Blind sheets (training/blind.py): generated and real faces shuffled and
  numbered, with the key in a separate file, for a person's own count.

Which to trust for what: the blind sheets, then realness (texture) and shape realness (layout), for "does it
look made by a person" (realness tests the set, variety included, so it ranks a truncated model below the same
model untruncated although a person sees fewer broken faces in it: compare realness at one truncation); fidelity
for "does it draw what was asked"; diversity for collapse; face rate only for gross failures (the
detector accepts blurred faces); the spectrum for what is wrong with the texture (grain or blur, chroma for
the coloured speckle); KID and
FID for comparing checkpoints of one run with one tagger.

eval.json holds the headline figures (one number each, for the generated faces) at its top level and all
the detail, real counterparts included, under "figures"; report.md shows them as tables.

The generated set for KID/FID and face rate asks for the tags of the reference faces one by one, so both
sides have the same tag distribution. Everything is drawn from seeded generators: a seed gives one result.
"""
from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from common.files import write_text_atomic
from common.packed import PackedSet
from common.vocab import Vocabulary
from tagger.model import tags_from_probabilities
from training.blind import blind_sheets
from training.grid import save_grid, to_uint8
from training.realness import Protocol as RealnessProtocol, judges, real_faces, real_figure, realness
from training.spectrum import band_power, compare as compare_spectra

FACE_DETECTION_SIZE = 256   # faces are upscaled to this first: the cascade was made for full-size pictures
KID_SUBSET_SIZE = 500       # smaller than the usual 1000 (and 50 subsets, not 100) to stay fast on a CPU
KID_SUBSETS = 50
BLIND_FACES = 60            # generated and as many real faces on the blind sheets


class Tagger(Protocol):
    """What evaluation needs from `tagger.model.Tagger` (a stand-in with these is enough)."""

    vocab: Vocabulary
    thresholds: dict[str, float]     # where a non-colour tag counts as seen (0.5 for a tag not listed)

    def predict(self, images: np.ndarray) -> np.ndarray: ...

    def features(self, images: np.ndarray) -> np.ndarray: ...


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
                         f"faces; use a packed set of {source.resolution} px (kyara pack --resolution "
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


# --- what is asked of the generator ----------------------------------------------------------------

def draw(source: Source, n: int, seed: int, chosen: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Noise and labels for n faces with the `chosen` tags on and every other group drawn from the priors.

    One seed gives the same noise and the same other tags whatever is chosen, so faces asked for different
    colours differ only in what was asked.
    """
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, source.noise_dim), dtype=np.float32)
    return noise, source.vocab.sample_labels(source.priors, n, rng, chosen)


def seen(probs: np.ndarray, tagger: Tagger, tag: str) -> np.ndarray:
    """Whether the tagger sees a non-colour tag in each image, decided as its own tagging decides (at or above
    its threshold; in an at-most-one group such as hair length, only the likelier of the tags above theirs)."""
    return np.array([tag in tags for tags in tags_from_probabilities(probs, tagger.vocab, tagger.thresholds)])


def samples_per_tag(total: int, vocab: Vocabulary) -> int:
    """How many faces to ask for each colour so that all colours together make about `total`."""
    return max(2, total // max(1, len(vocab.colour_tags)))


# --- the figures -----------------------------------------------------------------------------------

def judged_tags(probs: np.ndarray, tagger_vocab: Vocabulary, tag: str) -> np.ndarray:
    """The tag of `tag`'s exclusive group that the tagger finds most likely, per image."""
    group = tagger_vocab.group_of(tag)
    return np.array(group.tags)[probs[:, [tagger_vocab.index(t) for t in group.tags]].argmax(1)]


def face_rate(images: np.ndarray) -> float:
    """Share of images in which the anime face detector finds a face."""
    from training.crop import detect_faces
    found = [bool(detect_faces(np.asarray(Image.fromarray(im).resize(
        (FACE_DETECTION_SIZE, FACE_DETECTION_SIZE), Image.BICUBIC)))) for im in images]
    return float(np.mean(found))


def kid(x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, float]:
    """Kernel inception distance: the unbiased MMD^2 with the cubic polynomial kernel (x.y / d + 1)^3,
    averaged over random subsets (Binkowski et al. 2018). Unlike FID it has no bias from the sample size.

    The kernel is computed once for every pair (n^2 memory: 30 MB for the default 1100 faces) and the
    subsets index into it, which is ten times faster than a matrix product per subset.
    """
    rng = np.random.default_rng(seed)
    m = min(KID_SUBSET_SIZE, len(x), len(y))
    d = x.shape[1]

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        k = a.astype(np.float64) @ b.astype(np.float64).T / d + 1
        return k * k * k      # much faster than k ** 3, which numpy computes as a float power

    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    values = []
    for _ in range(KID_SUBSETS):
        i, j = rng.choice(len(x), m, replace=False), rng.choice(len(y), m, replace=False)
        a, b = kxx[np.ix_(i, i)], kyy[np.ix_(j, j)]
        within = (a.sum() - np.trace(a) + b.sum() - np.trace(b)) / (m * (m - 1))
        values.append(within - 2 * kxy[np.ix_(i, j)].mean())
    # With fewer faces than a subset, every subset is the whole set: there is no spread to report.
    spread = float(np.std(values)) if m < max(len(x), len(y)) else None
    return {"mean": float(np.mean(values)), "std": spread, "subset_size": int(m)}


def fid(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance of Gaussians fitted to two feature sets.

    Tr(sqrt(S1 S2)) is taken as the sum of square roots of the eigenvalues of sqrt(S1) S2 sqrt(S1), which is
    symmetric: numpy's eigh suffices (no scipy) and no complex parts appear.
    """
    x, y = x.astype(np.float64), y.astype(np.float64)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(w.clip(min=0))) @ v.T
    cross = np.sqrt(np.linalg.eigvalsh(root @ s2 @ root).clip(min=0)).sum()
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross)


def mean_pairwise_distance(features: np.ndarray) -> float | None:
    """Mean Euclidean distance over all pairs of distinct images (None below two images)."""
    if len(features) < 2:
        return None
    f = features.astype(np.float64)
    sq = (f ** 2).sum(1)
    dist = np.sqrt((sq[:, None] + sq[None, :] - 2 * f @ f.T).clip(min=0))
    return float(dist[np.triu_indices(len(f), 1)].mean())


# --- the real side, computed once per data split and tagger ---------------------------------------

@dataclass
class Reference:
    """Real validation faces and their figures; the trainer keeps one for all its evaluations."""

    vocab: Vocabulary
    labels: np.ndarray          # int8, reference faces x data tags
    features: np.ndarray
    diversity_tags: list[str]
    figures: dict
    realness_train: np.ndarray  # real faces the realness classifier learns from, and those it is tested on:
    realness_test: np.ndarray   # split by face group
    realness_labels: np.ndarray # their labels (train, then test), which the generated faces are asked for
    protocol: RealnessProtocol


def fitted_protocol(available: int, protocol: RealnessProtocol = RealnessProtocol()) -> RealnessProtocol:
    """The realness protocol, shrunk to what a small split holds (a third of it for the test)."""
    if available >= protocol.per_class:
        return protocol
    test = max(2, available // 3)
    return replace(protocol, train_per_class=max(2, available - test), test_per_class=test)


def build_reference(data: PackedSet, split: str, tagger: Tagger, n: int, seed: int,
                    protocol: RealnessProtocol | None = None, with_realness: bool = True) -> Reference:
    """Pick up to n faces of `split` (and as many training faces), and compute every real figure."""
    rng = np.random.default_rng(seed)
    candidates, train = data.indices(split), data.indices("train")
    protocol = protocol or fitted_protocol(len(candidates))
    real = real_faces(data, split, protocol)
    pick = np.sort(rng.choice(candidates, min(n, len(candidates)), replace=False))
    train_pick = np.sort(rng.choice(train, min(len(pick), len(train)), replace=False))
    images = np.asarray(data.images[pick])
    labels = data.labels[pick]
    features = tagger.features(images)
    train_images = np.asarray(data.images[train_pick])
    train_features = tagger.features(train_images)
    spectrum = band_power(images)
    tags = common_tag_set(labels, data.vocab)
    with_tags = np.all(labels[:, [data.vocab.index(t) for t in tags]] == 1, axis=1)
    probs = tagger.predict(images)
    figures = {
        "fidelity": real_fidelity(probs, labels, data.vocab, tagger.vocab),
        "attributes": real_attribute_fidelity(probs, labels, data.vocab, tagger),
        "face_rate": face_rate(images),
        "kid": kid(train_features, features, seed),
        "fid": fid(train_features, features),
        "diversity": mean_pairwise_distance(features[with_tags]),
        **{name: real_figure(real, used) if with_realness else None for name, used in judges(protocol).items()},
        "spectrum": compare_spectra(band_power(train_images), spectrum),
        "spectrum_power": spectrum.tolist(),
        "images": int(len(pick)),
    }
    return Reference(data.vocab, labels, features, tags, figures, real.train, real.test, real.labels, protocol)


def common_tag_set(labels: np.ndarray, vocab: Vocabulary) -> list[str]:
    """The most frequent combination of colours (one per exclusive group) among these faces."""
    groups = [[vocab.index(t) for t in g.tags] for g in vocab.exclusive_groups]
    known = np.all([(labels[:, cols] == 1).sum(1) == 1 for cols in groups], axis=0)
    combos = np.stack([np.array(cols)[labels[known][:, cols].argmax(1)] for cols in groups], axis=1)
    values, counts = np.unique(combos, axis=0, return_counts=True)
    return [vocab.tags[c] for c in values[counts.argmax()]]


def real_attribute_fidelity(probs: np.ndarray, labels: np.ndarray, vocab: Vocabulary, tagger: Tagger) -> dict:
    """Per non-colour tag: the share of real faces labelled with it (`with`) and without it (`without`) in
    which the tagger sees it; None where no face is labelled so (unknown labels count for neither)."""
    result = {}
    for tag in vocab.attribute_tags:
        if tag in tagger.vocab.tags:
            said = seen(probs, tagger, tag)
            column = labels[:, vocab.index(tag)]
            result[tag] = {"with": float(said[column == 1].mean()) if (column == 1).any() else None,
                           "without": float(said[column == 0].mean()) if (column == 0).any() else None}
    return result


def real_fidelity(probs: np.ndarray, labels: np.ndarray, vocab: Vocabulary, tagger_vocab: Vocabulary) -> dict:
    """The tagger's accuracy on real faces, per colour (among the faces that have it) and per group."""
    per_tag = {}
    for tag in vocab.colour_tags:
        has = labels[:, vocab.index(tag)] == 1
        if tag in tagger_vocab.tags and has.any():
            per_tag[tag] = float(np.mean(judged_tags(probs[has], tagger_vocab, tag) == tag))
    return _with_group_means(per_tag, vocab)


def _with_group_means(per_tag: dict[str, float], vocab: Vocabulary) -> dict:
    per_group = {g.name: float(np.mean([per_tag[t] for t in g.tags if t in per_tag]))
                 for g in vocab.exclusive_groups if any(t in per_tag for t in g.tags)}
    return {"per_tag": per_tag, "per_group": per_group, "mean": float(np.mean(list(per_group.values())))}


# --- the generated side ------------------------------------------------------------------------------

def fidelity(source: Source, tagger: Tagger, n: int, seed: int) -> dict:
    """For each colour the tagger knows: n faces asking for it, and the share it sees as that colour.

    Every colour gets the same noise and the same other tags, so colours differ only in what was asked.
    """
    per_tag = {}
    for tag in source.vocab.colour_tags:
        if tag in tagger.vocab.tags:
            probs = tagger.predict(source.generate(*draw(source, n, seed, [tag])))
            per_tag[tag] = float(np.mean(judged_tags(probs, tagger.vocab, tag) == tag))
    return _with_group_means(per_tag, source.vocab)


def attribute_fidelity(source: Source, tagger: Tagger, n: int, seed: int) -> dict:
    """For each non-colour tag both know: n faces asked for it on, the same n (noise and every other tag)
    asked for it off, and the share of each in which the tagger sees it. In an at-most-one group (hair length)
    on turns the group's other tags off, as a visitor's choice on the page does, and off asks for none of the
    group, so that "off" means the same for every face rather than a mix drawn from the priors."""
    noise, labels = draw(source, n, seed)
    result = {}
    for tag in source.vocab.attribute_tags:
        if tag not in tagger.vocab.tags:
            continue
        group, col = source.vocab.group_of(tag), source.vocab.index(tag)
        on, off = labels.copy(), labels.copy()
        if group.at_most_one:
            on[:, [source.vocab.index(t) for t in group.tags]] = 0.0
            off[:, [source.vocab.index(t) for t in group.tags]] = 0.0
        on[:, col], off[:, col] = 1.0, 0.0
        result[tag] = {asked: float(seen(tagger.predict(source.generate(noise, x)), tagger, tag).mean())
                       for asked, x in (("on", on), ("off", off))}
    return result


def matched_labels(source: Source, vocab: Vocabulary, real_labels: np.ndarray, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Noise, and for each real face (its labels over `vocab`) its known tags (the rest drawn from the priors)."""
    noise, labels = draw(source, len(real_labels), seed)
    for tag in source.vocab.tags:
        if tag in vocab.tags:
            real = real_labels[:, vocab.index(tag)]
            col = labels[:, source.vocab.index(tag)]
            labels[:, source.vocab.index(tag)] = np.where(real >= 0, real, col)
    return noise, labels


def realness_inputs(source: Source, ref: Reference, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Generated faces for the realness test, asked for the tags of its real faces: (train, test)."""
    fake = source.generate(*matched_labels(source, ref.vocab, ref.realness_labels, seed))
    return fake[:len(ref.realness_train)], fake[len(ref.realness_train):]


def evaluate_source(source: Source, ref: Reference, tagger: Tagger, n_per_tag: int, seed: int,
                    progress: Callable[[str], None] = lambda stage: None, with_realness: bool = True) -> dict:
    """All figures of one generator against a reference, each next to its real counterpart.

    `progress` is told the name of each stage as it starts (the command's progress bar). Realness trains
    a few small classifiers (about a minute at 64 px on a CPU core, a quarter of that for shape realness at
    32 px); `with_realness=False` leaves both out.
    """
    progress("distribution")
    images = source.generate(*matched_labels(source, ref.vocab, ref.labels, seed + 1))
    features = tagger.features(images)
    same_tags = tagger.features(source.generate(*draw(source, n_per_tag, seed + 2, ref.diversity_tags)))
    real = ref.figures
    kid_gen = kid(features, ref.features, seed)
    progress("face rate")
    generated_face_rate = face_rate(images)
    progress("realness")
    realness_fig = {}
    if with_realness:
        fakes = realness_inputs(source, ref, seed + 4)
        realness_fig = {name: {"generated": realness(ref.realness_train, ref.realness_test, *fakes, used),
                               "real": real[name]} for name, used in judges(ref.protocol).items()}
    progress("fidelity")
    return {
        **realness_fig,
        "fidelity": {**fidelity(source, tagger, n_per_tag, seed), "real": real["fidelity"]},
        "attributes": {"generated": attribute_fidelity(source, tagger, n_per_tag, seed + 5),
                       "real": real["attributes"]},
        "face_rate": {"generated": generated_face_rate, "real": real["face_rate"]},
        "nightmare_rate": {"generated": 1 - generated_face_rate, "real": 1 - real["face_rate"]},
        "kid": {"generated": kid_gen, "real_train": real["kid"]},
        "fid": {"generated": fid(features, ref.features), "real_train": real["fid"]},
        "diversity": {"tags": ref.diversity_tags, "generated": mean_pairwise_distance(same_tags),
                      "real": real["diversity"]},
        "spectrum": {"generated": compare_spectra(band_power(images), np.asarray(real["spectrum_power"])),
                     "real_train": real["spectrum"]},
        "images": {"generated": int(len(images)), "reference": real["images"], "per_tag": n_per_tag},
        "score": kid_gen["mean"],
    }


def tag_sheet(source: Source, seed: int) -> np.ndarray:
    """Faces for the sheet: every combination of the first two exclusive groups' colours (hair colours
    down, eye colours across), all from one noise vector and one draw of the other tags."""
    combos = itertools.product(*(g.tags for g in source.vocab.exclusive_groups[:2]))
    return np.concatenate([source.generate(*draw(source, 1, seed, combo)) for combo in combos])


# --- the command ---------------------------------------------------------------------------------------

def evaluate(model: str | Path, data: str | Path, out: str | Path, split: str = "val", n_per_tag: int = 50,
             tagger_path: str | Path | None = None, seed: int = 0,
             protocol: RealnessProtocol | None = None, truncation: float = 1.0) -> dict:
    """`kyara eval`: every figure of `model` against the `split` faces of `data`, written to `out`.

    `truncation` draws the noise in on top of whatever the model itself does (an exported model may already
    be truncated): eval.json records the product, the truncation its faces were made with."""
    from tagger.model import load_tagger
    start = time.perf_counter()
    source = truncated(open_source(model), truncation)
    packed = PackedSet.open(data)
    if not len(packed.indices(split)):
        raise ValueError(f"{data}: no {split!r} faces in this packed set")
    check_resolution(source, model, packed)
    tagger = load_tagger(tagger_path)
    out = Path(out)
    stages = ("reference", "distribution", "face rate", "realness", "fidelity", "sheets")
    with tqdm(total=len(stages), desc="eval", unit="stage", dynamic_ncols=True) as bar:
        def progress(stage: str) -> None:
            bar.update(stages.index(stage) - bar.n)
            bar.set_postfix_str(stage)

        progress("reference")
        ref = build_reference(packed, split, tagger, n_per_tag * len(source.vocab.colour_tags), seed, protocol)
        figures = evaluate_source(source, ref, tagger, n_per_tag, seed, progress)
        progress("sheets")
        result = {"model": str(model), "data": str(data), "split": split, "seed": seed,
                  "truncation": round(source.truncation, 6),
                  "tagger": str(tagger_path or "shipped"), "feature_space": "tagger penultimate features",
                  **headline(figures), "figures": figures}
        result["sheets"] = write_sheets(source, ref, out, seed)
        bar.update(len(stages) - bar.n)
    result["seconds"] = round(time.perf_counter() - start, 1)
    write_text_atomic(out / "eval.json", json.dumps(result, indent=2))
    write_text_atomic(out / "report.md", markdown(result))
    return result


def write_sheets(source: Source, ref: Reference, out: Path, seed: int) -> dict:
    """The colour sheet, a sheet of faces with prior-drawn tags, and the blind sheets with their key."""
    out.mkdir(parents=True, exist_ok=True)
    axes = {g.name: list(g.tags) for g in source.vocab.exclusive_groups[:2]}
    rows = len(next(iter(axes.values()))) if axes else 1
    save_grid(tag_sheet(source, seed), out / "sheet_tags.png", rows)
    noise, labels = draw(source, 64, seed + 3)
    save_grid(source.generate(noise, labels), out / "samples.png", 8)
    # The blind sheets take the realness test's held-out faces, real and generated (tags matched).
    n = min(BLIND_FACES, len(ref.realness_test))
    generated = realness_inputs(source, ref, seed + 4)[1][:n]
    key = blind_sheets(generated, ref.realness_test[:n], out / "blind", seed)
    return {"tags": "sheet_tags.png", "axes": axes, "samples": "samples.png",
            "blind": [f"blind/{name}" for name in key["sheets"]], "blind_key": "blind/key.json"}


def headline(figures: dict) -> dict[str, float | None]:
    """One number per figure, for the generated faces: flat, so that a manifest or a table can quote it."""
    realness_ = figures.get("realness")      # absent from evaluations made before it existed, or switched off
    shape = figures.get("shape_realness")    # the same, and absent from evaluations made before it existed
    spectrum = figures.get("spectrum")       # absent from evaluations made before it existed
    return {"score": figures["score"], "realness": realness_["generated"]["accuracy"] if realness_ else None,
            "shape_realness": shape["generated"]["accuracy"] if shape else None,
            "spectral_distance": spectrum["generated"]["distance"] if spectrum else None,
            "chroma_distance": spectrum["generated"].get("chroma_distance") if spectrum else None,
            "tag_fidelity": figures["fidelity"]["mean"],
            "face_rate": figures["face_rate"]["generated"], "nightmare_rate": figures["nightmare_rate"]["generated"],
            "kid": figures["kid"]["generated"]["mean"], "fid": figures["fid"]["generated"],
            "diversity": figures["diversity"]["generated"]}


def _f(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _kid(value: dict) -> str:
    """KID x 1000 as `mean ± std over subsets`, the usual way to print it; a set smaller than a subset has
    no spread, and an unbiased estimate below zero means "no difference this many faces can show"."""
    spread = "(no spread: fewer faces than a subset)" if value["std"] is None else f"± {value['std'] * 1000:.2f}"
    below = " (below 0: within noise of no difference)" if value["mean"] < 0 else ""
    return f"{value['mean'] * 1000:.2f} {spread}{below}"


def _realness(value: dict) -> str:
    return (f"{value['accuracy']:.3f} ± {value['accuracy_std']:.3f} (log-loss {value['log_loss']:.3f}; "
            f"real faces told {value['accuracy_real']:.2f}, generated {value['accuracy_generated']:.2f})")


def _px(figure: dict) -> str:
    """The size a realness figure's faces were judged at."""
    return f"{figure['generated']['protocol']['resolution']} px"


def summary(result: dict) -> str:
    """A few lines for the terminal."""
    fig = result["figures"]
    groups = ", ".join(f"{g} {_f(v, 2)}" for g, v in fig["fidelity"]["per_group"].items())
    return "\n".join([
        *([f"truncation    {result['truncation']:g} (every generated face below)"]
          if result.get("truncation", 1.0) != 1.0 else []),
        f"realness      {_realness(fig['realness']['generated'])}; "
        f"real faces {fig['realness']['real']['accuracy']:.3f} "
        "(0.5: indistinguishable)",
        f"  shape, {_px(fig['shape_realness'])} {_realness(fig['shape_realness']['generated'])}; "
        f"real faces {fig['shape_realness']['real']['accuracy']:.3f}",
        f"tag fidelity  {_f(fig['fidelity']['mean'], 2)} ({groups}); "
        f"tagger on real faces {_f(fig['fidelity']['real']['mean'], 2)}",
        *(["attributes    seen when asked on / off: " + ", ".join(
            f"{t} {_f(v['on'], 2)} / {_f(v['off'], 2)}" for t, v in fig["attributes"]["generated"].items())]
          if fig["attributes"]["generated"] else []),
        f"face rate     {_f(fig['face_rate']['generated'], 2)} (real {_f(fig['face_rate']['real'], 2)}); "
        f"nightmare rate {_f(fig['nightmare_rate']['generated'], 2)}",
        f"KID x 1000    {_kid(fig['kid']['generated'])} (train vs val {_kid(fig['kid']['real_train'])})",
        f"FID           {_f(fig['fid']['generated'], 1)} (train vs val {_f(fig['fid']['real_train'], 1)})",
        f"diversity     {_f(fig['diversity']['generated'], 2)} (real {_f(fig['diversity']['real'], 2)}) "
        f"for {', '.join(fig['diversity']['tags'])}",
        f"spectrum      luminance distance {_f(fig['spectrum']['generated']['distance'], 2)} "
        f"(train vs val {_f(fig['spectrum']['real_train']['distance'], 2)}); power vs real, low to high: "
        f"{' '.join(f'{r:.2f}' for r in fig['spectrum']['generated']['ratio'])} (top above 1: grain)",
        f"              chroma distance {_f(fig['spectrum']['generated']['chroma_distance'], 2)} "
        f"(train vs val {_f(fig['spectrum']['real_train']['chroma_distance'], 2)}); power vs real: "
        f"{' '.join(f'{r:.2f}' for r in fig['spectrum']['generated']['chroma_ratio'])} (coloured speckle)",
    ])


def _truncation_note(result: dict) -> str:
    psi = result.get("truncation", 1.0)    # absent from evaluations made before it existed
    return "" if psi == 1.0 else f"; every generated face with its noise truncated by {psi:g}"


def markdown(result: dict) -> str:
    """report.md: one section per figure, the real counterpart beside each, then the sheets."""
    fig = result["figures"]
    fidelity_, sheets = fig["fidelity"], result["sheets"]
    real_attr = fig["attributes"]["real"]
    return "\n".join([
        "# Evaluation", "",
        f"Model `{result['model']}` against the `{result['split']}` faces of `{result['data']}` "
        f"(seed {result['seed']}, {fig['images']['generated']} generated faces for the distribution figures, "
        f"{fig['images']['per_tag']} per colour for fidelity; {result['seconds']} s)"
        f"{_truncation_note(result)}.", "",
        "## Realness", "",
        "Held-out accuracy of a small CNN trained briefly (fixed protocol, mean of "
        f"{fig['realness']['generated']['protocol']['seeds']} seeds) to tell generated faces from real validation "
        "faces: 0.5 means it cannot tell them apart, 1.0 that it always can. The real column feeds real training "
        "faces in as \"generated\": the floor. At full resolution it is decided mostly by texture (grain); "
        "shape realness is the same test on faces shrunk to 32 px first, where the grain is averaged away and "
        "the layout (eyes, outline, hair) and the colours are what is left. These are the figures to trust for "
        "whether faces look made by a person; the blind sheets below let you check them by eye.", "",
        "| | generated | real |", "| --- | --- | --- |",
        *[row for key, name in (("realness", "accuracy"),
                                ("shape_realness", f"shape realness, {_px(fig['shape_realness'])}"))
          for row in (
              f"| {name} | {_f(fig[key]['generated']['accuracy'])} ± {_f(fig[key]['generated']['accuracy_std'])} "
              f"| {_f(fig[key]['real']['accuracy'])} ± {_f(fig[key]['real']['accuracy_std'])} |",
              f"| {'log-loss' if key == 'realness' else 'its log-loss'} (nats; 0.693 at chance) "
              f"| {_f(fig[key]['generated']['log_loss'])} | {_f(fig[key]['real']['log_loss'])} |")], "",
        "## Tag fidelity", "",
        "Share of faces asked for a colour in which the tagger sees that colour (its most likely colour of the "
        "group). The real column is the tagger's accuracy on real faces of that colour.", "",
        "| tag | generated | real |", "| --- | --- | --- |",
        *[f"| {t} | {_f(v)} | {_f(fidelity_['real']['per_tag'].get(t))} |" for t, v in fidelity_["per_tag"].items()],
        *[f"| **{g}** (mean) | **{_f(v)}** | {_f(fidelity_['real']['per_group'].get(g))} |"
          for g, v in fidelity_["per_group"].items()],
        f"| **all groups** | **{_f(fidelity_['mean'])}** | {_f(fidelity_['real']['mean'])} |", "",
        "## Attribute fidelity", "",
        "Each tag outside the colour groups, asked on and then off for the same faces (noise and other tags): "
        "the share in which the tagger sees it. The real columns are the tagger on real faces labelled with and "
        "without the tag: a generator cannot be judged more precisely than that.", "",
        "| tag | asked on | asked off | real, with | real, without |", "| --- | --- | --- | --- | --- |",
        *[f"| {t} | {_f(v['on'])} | {_f(v['off'])} | {_f(real_attr.get(t, {}).get('with'))} "
          f"| {_f(real_attr.get(t, {}).get('without'))} |" for t, v in fig["attributes"]["generated"].items()],
        *(["", "(This model has no tags outside the colour groups.)"] if not fig["attributes"]["generated"] else []),
        "",
        "## Face rate", "",
        f"lbpcascade_animeface on faces upscaled to {FACE_DETECTION_SIZE} px.", "",
        "| | generated | real |", "| --- | --- | --- |",
        f"| face rate | {_f(fig['face_rate']['generated'])} | {_f(fig['face_rate']['real'])} |",
        f"| nightmare rate | {_f(fig['nightmare_rate']['generated'])} | {_f(fig['nightmare_rate']['real'])} |", "",
        "## KID and FID", "",
        "Computed in the tagger's feature space (its penultimate layer), not Inception's: comparable only between "
        "evaluations with the same tagger. The right column compares real training faces with the same "
        f"validation faces: the floor for this many images. KID: unbiased MMD², cubic kernel, mean ± std over "
        f"{KID_SUBSETS} subsets of up to {KID_SUBSET_SIZE}.", "",
        "| | generated vs real | real train vs real |", "| --- | --- | --- |",
        f"| KID × 1000 | {_kid(fig['kid']['generated'])} | {_kid(fig['kid']['real_train'])} |",
        f"| FID | {_f(fig['fid']['generated'], 2)} | {_f(fig['fid']['real_train'], 2)} |", "",
        "## Diversity", "",
        f"Mean pairwise feature distance among faces tagged {', '.join(fig['diversity']['tags'])} "
        "(the most common colours in the data). Mode collapse shows as a drop below the real figure.", "",
        "| generated | real |", "| --- | --- |",
        f"| {_f(fig['diversity']['generated'])} | {_f(fig['diversity']['real'])} |", "",
        "## Spectrum", "",
        "Power of the faces' luminance and, apart, of their chroma (colour: Cb and Cr) in bands of spatial "
        "frequency (cycles per pixel), as a ratio to the real validation faces': 1.0 is real, above 1 in the top "
        "bands is grain (a dotted texture at the pixel scale; in chroma, the coloured speckle), below 1 in the "
        "upper bands is blur. Distance: the mean |log2 ratio| over the bands. The real columns compare real "
        "training faces with the same validation faces.", "",
        "| band | luminance, generated | real train | chroma, generated | real train |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {low:g}-{high:g} | {_f(g, 2)} | {_f(r, 2)} | {_f(gc, 2)} | {_f(rc, 2)} |"
          for (low, high), g, r, gc, rc in zip(
              fig["spectrum"]["generated"]["bands"], fig["spectrum"]["generated"]["ratio"],
              fig["spectrum"]["real_train"]["ratio"], fig["spectrum"]["generated"]["chroma_ratio"],
              fig["spectrum"]["real_train"]["chroma_ratio"])],
        f"| **distance** | **{_f(fig['spectrum']['generated']['distance'], 3)}** "
        f"| {_f(fig['spectrum']['real_train']['distance'], 3)} "
        f"| **{_f(fig['spectrum']['generated']['chroma_distance'], 3)}** "
        f"| {_f(fig['spectrum']['real_train']['chroma_distance'], 3)} |", "",
        "## Samples", "",
        "One fixed noise vector; rows, then columns: "
        + "; ".join(f"{name} ({', '.join(tags)})" for name, tags in sheets["axes"].items()) + ".", "",
        f"![colour sheet]({sheets['tags']})", "",
        "Tags drawn from the data's priors:", "",
        f"![samples]({sheets['samples']})", "",
        "## Blind sheets", "",
        f"{len(sheets['blind'])} sheets of generated faces shuffled with as many real validation faces, 168 px each, "
        f"numbered: {', '.join(f'[{b}]({b})' for b in sheets['blind'])}. Count good / flawed / broken before "
        f"opening the key, [{sheets['blind_key']}]({sheets['blind_key']}).", "",
        "## Which figure to trust for what", "",
        "- Does it look made by a person: your own count on the blind sheets first. Realness (texture) and "
        "shape realness (eyes, outline: melted faces) test the whole set against real faces, variety included: "
        "they rank a truncated model below the same model untruncated although a person counts far fewer broken "
        "faces in it, and near 0.5 they stop telling checkpoints apart. Compare realness only at one truncation.",
        "- Does it draw what was asked: tag fidelity and attribute fidelity (no better than the tagger: compare "
        "with the real columns).",
        "- Mode collapse: diversity.",
        "- What is wrong with the texture (grain or blur): the spectrum, chroma for the coloured speckle; it does "
        "not see the shape of a face.",
        "- Gross failures only: face rate (the detector also accepts blurred and half-formed faces).",
        "- Comparing checkpoints of one run: KID and FID, in this tagger's space only; near the real floor they "
        "stop telling checkpoints apart.", "",
    ])
