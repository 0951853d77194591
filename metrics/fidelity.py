"""Tag fidelity: does the generator draw the colour that was asked for.

For each colour of each exclusive group (hair colours, eye colours), faces asked for that colour, and how often
the tagger sees it (its most likely tag of the group). The real figure is the tagger's own accuracy on the
validation faces: a generator cannot be judged better than the judge.
"""
from __future__ import annotations

import numpy as np

from common.vocab import Vocabulary
from export.adapters import Source, draw
from metrics.base import Generated, Metric, RealSide, Tagger, fmt

NAME = "fidelity"


def judged_tags(probs: np.ndarray, tagger_vocab: Vocabulary, tag: str) -> np.ndarray:
    """The tag of `tag`'s exclusive group that the tagger finds most likely, per image."""
    group = tagger_vocab.group_of(tag)
    return np.array(group.tags)[probs[:, [tagger_vocab.index(t) for t in group.tags]].argmax(1)]


def with_group_means(per_tag: dict[str, float], vocab: Vocabulary) -> dict:
    """Per-colour shares, with their mean per group and over the groups (each group weighs the same)."""
    per_group = {g.name: float(np.mean([per_tag[t] for t in g.tags if t in per_tag]))
                 for g in vocab.exclusive_groups if any(t in per_tag for t in g.tags)}
    return {"per_tag": per_tag, "per_group": per_group, "mean": float(np.mean(list(per_group.values())))}


def real_fidelity(probs: np.ndarray, labels: np.ndarray, vocab: Vocabulary, tagger_vocab: Vocabulary) -> dict:
    """The tagger's accuracy on real faces, per colour (among the faces that have it) and per group."""
    per_tag = {}
    for tag in vocab.colour_tags:
        has = labels[:, vocab.index(tag)] == 1
        if tag in tagger_vocab.tags and has.any():
            per_tag[tag] = float(np.mean(judged_tags(probs[has], tagger_vocab, tag) == tag))
    return with_group_means(per_tag, vocab)


def fidelity(source: Source, tagger: Tagger, n: int, seed: int) -> dict:
    """For each colour the tagger knows: n faces asking for it, and the share it sees as that colour.

    Every colour gets the same noise and the same other tags, so colours differ only in what was asked.
    """
    per_tag = {}
    for tag in source.vocab.colour_tags:
        if tag in tagger.vocab.tags:
            probs = tagger.predict(source.generate(*draw(source, n, seed, [tag])))
            per_tag[tag] = float(np.mean(judged_tags(probs, tagger.vocab, tag) == tag))
    return with_group_means(per_tag, source.vocab)


def _real(side: RealSide) -> dict:
    return real_fidelity(side.probs, side.labels, side.data.vocab, side.tagger.vocab)


def _generated(gen: Generated) -> dict:
    return {NAME: {**fidelity(gen.source, gen.tagger, gen.n_per_tag, gen.seed), "real": gen.ref.real[NAME]}}


def _headline(figures: dict) -> dict[str, float | None]:
    figure = figures.get(NAME)
    return {"tag_fidelity": figure["mean"] if figure else None}


def _summary(figures: dict) -> list[str]:
    figure = figures[NAME]
    groups = ", ".join(f"{g} {fmt(v, 2)}" for g, v in figure["per_group"].items())
    return [f"tag fidelity  {fmt(figure['mean'], 2)} ({groups}); tagger on real faces {fmt(figure['real']['mean'], 2)}"]


def _markdown(figures: dict) -> list[str]:
    figure = figures[NAME]
    real = figure["real"]
    return [
        "Share of faces asked for a colour in which the tagger sees that colour (its most likely colour of the "
        "group). The real column is the tagger's accuracy on real faces of that colour.", "",
        "| tag | generated | real |", "| --- | --- | --- |",
        *[f"| {t} | {fmt(v)} | {fmt(real['per_tag'].get(t))} |" for t, v in figure["per_tag"].items()],
        *[f"| **{g}** (mean) | **{fmt(v)}** | {fmt(real['per_group'].get(g))} |"
          for g, v in figure["per_group"].items()],
        f"| **all groups** | **{fmt(figure['mean'])}** | {fmt(real['mean'])} |",
    ]


METRIC = Metric(NAME, "Tag fidelity", _real, _generated, _headline, _summary, _markdown)
