"""Diversity: does the generator still draw different faces for one request, or has it collapsed.

The mean pairwise feature distance among faces that all have one fixed tag set (the most common combination
of colours in the data), so that variety the tags ask for does not count. Mode collapse shows as a drop below
the real faces' figure, the same distance among the reference faces with that tag set; tag fidelity cannot
see it (a collapsed generator still draws the colours asked for).
"""
from __future__ import annotations

import numpy as np

from common.vocab import Vocabulary
from export.adapters import draw
from metrics.base import Generated, Metric, RealSide, fmt

NAME = "diversity"


def mean_pairwise_distance(features: np.ndarray) -> float | None:
    """Mean Euclidean distance over all pairs of distinct images (None below two images)."""
    if len(features) < 2:
        return None
    f = features.astype(np.float64)
    sq = (f ** 2).sum(1)
    dist = np.sqrt((sq[:, None] + sq[None, :] - 2 * f @ f.T).clip(min=0))
    return float(dist[np.triu_indices(len(f), 1)].mean())


def common_tag_set(labels: np.ndarray, vocab: Vocabulary) -> list[str]:
    """The most frequent combination of colours (one per exclusive group) among these faces."""
    groups = [[vocab.index(t) for t in g.tags] for g in vocab.exclusive_groups]
    known = np.all([(labels[:, cols] == 1).sum(1) == 1 for cols in groups], axis=0)
    combos = np.stack([np.array(cols)[labels[known][:, cols].argmax(1)] for cols in groups], axis=1)
    values, counts = np.unique(combos, axis=0, return_counts=True)
    return [vocab.tags[c] for c in values[counts.argmax()]]


def _real(side: RealSide) -> dict:
    """The tag set the generated faces are asked for, and the real faces' figure for it."""
    vocab = side.data.vocab
    tags = common_tag_set(side.labels, vocab)
    with_tags = np.all(side.labels[:, [vocab.index(t) for t in tags]] == 1, axis=1)
    return {"tags": tags, "figure": mean_pairwise_distance(side.features[with_tags])}


def _generated(gen: Generated) -> dict:
    real = gen.ref.real[NAME]
    same_tags = gen.source.generate(*draw(gen.source, gen.n_per_tag, gen.seed + 2, real["tags"]))
    return {NAME: {"tags": real["tags"], "generated": mean_pairwise_distance(gen.tagger.features(same_tags)),
                   "real": real["figure"]}}


def _headline(figures: dict) -> dict[str, float | None]:
    figure = figures.get(NAME)
    return {"diversity": figure["generated"] if figure else None}


def _summary(figures: dict) -> list[str]:
    figure = figures[NAME]
    return [f"diversity     {fmt(figure['generated'], 2)} (real {fmt(figure['real'], 2)}) "
            f"for {', '.join(figure['tags'])}"]


def _markdown(figures: dict) -> list[str]:
    figure = figures[NAME]
    return [
        f"Mean pairwise feature distance among faces tagged {', '.join(figure['tags'])} "
        "(the most common colours in the data). Mode collapse shows as a drop below the real figure.", "",
        "| generated | real |", "| --- | --- |",
        f"| {fmt(figure['generated'])} | {fmt(figure['real'])} |",
    ]


METRIC = Metric(NAME, "Diversity", _real, _generated, _headline, _summary, _markdown)
