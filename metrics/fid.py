"""FID: the Frechet distance between Gaussians fitted to the generated and the real faces' features.

Like KID it is computed in the tagger's feature space (its penultimate layer; Inception weights cannot be
downloaded here), so it compares only between evaluations with the same tagger, never with published FIDs.
It is biased by the number of faces; it is kept beside KID because it is the figure most readers know. The
real figure compares real training faces with the validation faces: what a perfect generator would reach
with this many images.
"""
from __future__ import annotations

import numpy as np

from metrics.base import Generated, Metric, RealSide, fmt

NAME = "fid"


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


def _real(side: RealSide) -> float:
    return fid(side.train_features, side.features)


def _generated(gen: Generated) -> dict:
    return {NAME: {"generated": fid(gen.features, gen.ref.features), "real_train": gen.ref.real[NAME]}}


def _headline(figures: dict) -> dict[str, float | None]:
    figure = figures.get(NAME)
    return {"fid": figure["generated"] if figure else None}


def _summary(figures: dict) -> list[str]:
    figure = figures[NAME]
    return [f"FID           {fmt(figure['generated'], 1)} (train vs val {fmt(figure['real_train'], 1)})"]


def _markdown(figures: dict) -> list[str]:
    figure = figures[NAME]
    return [
        "FID: Fréchet distance of Gaussians fitted to the two feature sets, in the same space (biased by the "
        "number of faces, unlike KID).", "",
        "| | generated vs real | real train vs real |", "| --- | --- | --- |",
        f"| FID | {fmt(figure['generated'], 2)} | {fmt(figure['real_train'], 2)} |",
    ]


METRIC = Metric(NAME, "KID and FID", _real, _generated, _headline, _summary, _markdown)
