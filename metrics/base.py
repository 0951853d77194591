"""What a metric is, and what the orchestrator hands every metric: the contract between `metrics.evaluate`
(which computes the shared inputs once) and the metric modules (which each turn them into their figures).

Metric modules import this and the shared helpers below, never the registry or the orchestrator, so that the
registry can import them without a cycle.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

import numpy as np

from common.packed import PackedSet
from common.vocab import Vocabulary
from export.adapters import Source, draw


class Tagger(Protocol):
    """What evaluation needs from `tagger.model.Tagger` (a stand-in with these is enough)."""

    vocab: Vocabulary
    thresholds: dict[str, float]     # where a non-colour tag counts as seen (0.5 for a tag not listed)

    def predict(self, images: np.ndarray) -> np.ndarray: ...

    def features(self, images: np.ndarray) -> np.ndarray: ...


@dataclass
class RealSide:
    """The real faces every metric's real side reads, picked and run through the tagger once per reference."""

    data: PackedSet
    split: str
    tagger: Tagger
    seed: int
    images: np.ndarray          # uint8, up to n faces of the split: the reference faces
    labels: np.ndarray          # int8, their labels over the data's tags
    probs: np.ndarray           # the tagger's probabilities for them
    features: np.ndarray        # the tagger's features of them
    train_images: np.ndarray    # as many training faces: the real-vs-real floor of the distribution figures
    train_features: np.ndarray
    options: Mapping[str, Any] = field(default_factory=dict)   # settings of particular metrics, by metric name


@dataclass
class Reference:
    """The real side of every figure, computed once per data split and tagger; the trainer keeps one for all
    its evaluations."""

    vocab: Vocabulary           # the data's
    labels: np.ndarray          # int8, reference faces x data tags: what the generated distribution asks for
    features: np.ndarray        # their tagger features
    real: dict[str, Any]        # each metric's real side (`Metric.real`'s result) by the metric's name


@dataclass
class Generated:
    """The generated side handed to every metric: the source, and the faces several metrics share, made once."""

    source: Source
    ref: Reference
    tagger: Tagger
    n_per_tag: int              # faces asked for each colour (fidelity) or each fixed tag set (diversity)
    seed: int
    images: np.ndarray          # one face per reference face, asked for its tags: the generated distribution
    features: np.ndarray        # their tagger features


@dataclass(frozen=True)
class Metric:
    """One figure of `kyara eval` (or a few that share their work, as realness and shape realness do): listed in
    `metrics.registry.METRICS`, it is computed, written to eval.json and rendered with nothing else to edit.

    Every render function takes eval.json's whole "figures" object, since a metric may write more than one key.
    `headline` is also read from files written before the metric existed: its numbers are None there.
    `summary` and `markdown` are asked only where `name` is among the figures."""

    name: str                                          # its key under "figures" and in `Reference.real`
    title: str                                         # its report.md section; neighbours with one title share it
    real: Callable[[RealSide], Any]                    # its real side, kept in the reference
    generated: Callable[[Generated], dict[str, Any]]   # its figures by key, each with its real counterpart
    headline: Callable[[dict], dict[str, float | None]]   # flat numbers for eval.json's top level and manifests
    summary: Callable[[dict], list[str]]               # its terminal lines
    markdown: Callable[[dict], list[str]]              # its report.md section, below the title


def matched_labels(source: Source, vocab: Vocabulary, real_labels: np.ndarray, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Noise, and for each real face (its labels over `vocab`) its known tags (the rest drawn from the priors):
    generated faces asked for what the real ones have, so both sides share one tag distribution."""
    noise, labels = draw(source, len(real_labels), seed)
    for tag in source.vocab.tags:
        if tag in vocab.tags:
            real = real_labels[:, vocab.index(tag)]
            col = labels[:, source.vocab.index(tag)]
            labels[:, source.vocab.index(tag)] = np.where(real >= 0, real, col)
    return noise, labels


def fmt(value: float | None, digits: int = 3) -> str:
    """A figure for a table or the terminal: `n/a` where there is none (too few faces, or none labelled)."""
    return "n/a" if value is None else f"{value:.{digits}f}"
