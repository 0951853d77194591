"""KID: how far the generated faces' distribution is from the real faces', in the tagger's feature space.

Inception weights cannot be downloaded here, so the features are the tagger's penultimate layer, a CNN trained
on anime faces: the figure is comparable only between evaluations with the same tagger, never with published
KIDs. Its mean is the run's `score`, the number the trainer's best.json ranks checkpoints by: unlike FID it has
no bias from the sample size. The generated faces are asked for the reference faces' tags one by one, so both
sides share one tag distribution. The real figure compares real training faces with the validation faces:
what a perfect generator would reach with this many images.
"""
from __future__ import annotations

import numpy as np

from metrics.base import Generated, Metric, RealSide

NAME = "kid"
KID_SUBSET_SIZE = 500       # smaller than the usual 1000 (and 50 subsets, not 100) to stay fast on a CPU
KID_SUBSETS = 50


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


def kid_text(value: dict) -> str:
    """KID x 1000 as `mean ± std over subsets`, the usual way to print it; a set smaller than a subset has
    no spread, and an unbiased estimate below zero means "no difference this many faces can show"."""
    spread = "(no spread: fewer faces than a subset)" if value["std"] is None else f"± {value['std'] * 1000:.2f}"
    below = " (below 0: within noise of no difference)" if value["mean"] < 0 else ""
    return f"{value['mean'] * 1000:.2f} {spread}{below}"


def _real(side: RealSide) -> dict:
    return kid(side.train_features, side.features, side.seed)


def _generated(gen: Generated) -> dict:
    return {NAME: {"generated": kid(gen.features, gen.ref.features, gen.seed), "real_train": gen.ref.real[NAME]}}


def _headline(figures: dict) -> dict[str, float | None]:
    figure = figures.get(NAME)
    return {"kid": figure["generated"]["mean"] if figure else None}


def _summary(figures: dict) -> list[str]:
    figure = figures[NAME]
    return [f"KID x 1000    {kid_text(figure['generated'])} (train vs val {kid_text(figure['real_train'])})"]


def _markdown(figures: dict) -> list[str]:
    figure = figures[NAME]
    return [
        "Computed in the tagger's feature space (its penultimate layer), not Inception's: comparable only between "
        "evaluations with the same tagger. The right column compares real training faces with the same "
        f"validation faces: the floor for this many images. KID: unbiased MMD², cubic kernel, mean ± std over "
        f"{KID_SUBSETS} subsets of up to {KID_SUBSET_SIZE}.", "",
        "| | generated vs real | real train vs real |", "| --- | --- | --- |",
        f"| KID × 1000 | {kid_text(figure['generated'])} | {kid_text(figure['real_train'])} |",
    ]


METRIC = Metric(NAME, "KID and FID", _real, _generated, _headline, _summary, _markdown)
