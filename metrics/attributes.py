"""Attribute fidelity: does the generator draw the tags outside the colour groups (hair length, expression, ...).

For each such tag, the same faces (noise and other tags) asked for it on and then off, and how often the
tagger sees it (its probability at or above the tagger's threshold). The real figures are the tagger on real
faces labelled with and without the tag: how well the judge itself tells them apart.
"""
from __future__ import annotations

import numpy as np

from common.vocab import Vocabulary
from export.adapters import Source, draw
from metrics.base import Generated, Metric, RealSide, Tagger, fmt
from tagger.model import tags_from_probabilities

NAME = "attributes"


def seen(probs: np.ndarray, tagger: Tagger, tag: str) -> np.ndarray:
    """Whether the tagger sees a non-colour tag in each image, decided as its own tagging decides (at or above
    its threshold; in an at-most-one group such as hair length, only the likelier of the tags above theirs)."""
    return np.array([tag in tags for tags in tags_from_probabilities(probs, tagger.vocab, tagger.thresholds)])


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


def _real(side: RealSide) -> dict:
    return real_attribute_fidelity(side.probs, side.labels, side.data.vocab, side.tagger)


def _generated(gen: Generated) -> dict:
    return {NAME: {"generated": attribute_fidelity(gen.source, gen.tagger, gen.n_per_tag, gen.seed + 5),
                   "real": gen.ref.real[NAME]}}


def _headline(figures: dict) -> dict[str, float | None]:
    """None at the top level: a share per tag and way asked does not condense into one number for the model."""
    return {}


def _summary(figures: dict) -> list[str]:
    generated = figures[NAME]["generated"]
    if not generated:
        return []
    return ["attributes    seen when asked on / off: "
            + ", ".join(f"{t} {fmt(v['on'], 2)} / {fmt(v['off'], 2)}" for t, v in generated.items())]


def _markdown(figures: dict) -> list[str]:
    generated, real = figures[NAME]["generated"], figures[NAME]["real"]
    return [
        "Each tag outside the colour groups, asked on and then off for the same faces (noise and other tags): "
        "the share in which the tagger sees it. The real columns are the tagger on real faces labelled with and "
        "without the tag: a generator cannot be judged more precisely than that.", "",
        "| tag | asked on | asked off | real, with | real, without |", "| --- | --- | --- | --- | --- |",
        *[f"| {t} | {fmt(v['on'])} | {fmt(v['off'])} | {fmt(real.get(t, {}).get('with'))} "
          f"| {fmt(real.get(t, {}).get('without'))} |" for t, v in generated.items()],
        *(["", "(This model has no tags outside the colour groups.)"] if not generated else []),
    ]


METRIC = Metric(NAME, "Attribute fidelity", _real, _generated, _headline, _summary, _markdown)
