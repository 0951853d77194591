"""The tag vocabulary: the single source of truth for tag names, their order and their groups.

The paper (Jin et al. 2017, table 1) conditions on 34 tags; Kyara adds `male` after them (`EXTENSION_TAGS`).
A data set or a model may cover only a subset (the Getchu faces here carry 12 hair colours x 10 eye
colours), so everything that stores labels also stores the `Vocabulary` it used; tag order inside a
vocabulary is always the order of `TAGS` (the paper's, then the extensions), which makes two vocabularies
over the same tags identical.

This module imports nothing heavier than numpy: the web app and the torch-free runtime use it too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import numpy as np


@dataclass(frozen=True)
class Group:
    """Tags that are chosen together.

    In an exclusive group exactly one tag is on per image (a face has one hair colour). An `at_most_one`
    group may have none of its tags on, but never two: long and short hair contradict each other, yet a face
    whose hair length nobody could tell is neither. Every other group's tags are on or off independently.
    """

    name: str
    tags: tuple[str, ...]
    exclusive: bool
    at_most_one: bool = False


GROUPS: tuple[Group, ...] = (
    Group(
        "hair colour",
        ("blonde hair", "brown hair", "black hair", "blue hair", "pink hair", "purple hair",
         "green hair", "red hair", "silver hair", "white hair", "orange hair", "aqua hair",
         "grey hair"),
        exclusive=True,
    ),
    # The paper's "hair style" row is split in two, because its first two tags exclude each other.
    Group("hair length", ("long hair", "short hair"), exclusive=False, at_most_one=True),
    Group("hair style", ("twintails", "drill hair", "ponytail"), exclusive=False),
    Group("expression and accessories", ("blush", "smile", "open mouth", "hat", "ribbon", "glasses"),
          exclusive=False),
    Group(
        "eye colour",
        ("blue eyes", "red eyes", "brown eyes", "green eyes", "purple eyes", "yellow eyes",
         "pink eyes", "aqua eyes", "black eyes", "orange eyes"),
        exclusive=True,
    ),
    # Beyond the paper's 34: MakeGirls.moe's users asked for male characters and could not get them.
    Group("character", ("male",), exclusive=False),
)
EXTENSION_TAGS: tuple[str, ...] = ("male",)
TAGS: tuple[str, ...] = tuple(tag for group in GROUPS for tag in group.tags)
PAPER_TAGS: tuple[str, ...] = tuple(tag for tag in TAGS if tag not in EXTENSION_TAGS)
_GROUP_OF = {tag: group for group in GROUPS for tag in group.tags}

# Spellings met in real tag files (Danbooru, the MLDS sets, Illustration2Vec output).
ALIASES: dict[str, str] = {
    "gray hair": "grey hair",
    "blond hair": "blonde hair",
    "twin tails": "twintails",
    "twintail": "twintails",
    "drill": "drill hair",
    "drills": "drill hair",
    "pony tail": "ponytail",
    "blushing": "blush",
    "smiling": "smile",
    "eyeglasses": "glasses",
    "hair ribbon": "ribbon",
}


class TagError(ValueError):
    """A tag name that is unknown, or a combination the groups forbid."""


def _normalise(name: str) -> str:
    return " ".join(name.strip().lower().replace("_", " ").split())


def canonical(name: str) -> str | None:
    """The vocabulary's spelling of a tag name, or None when the name is not one of `TAGS`."""
    name = _normalise(name)
    name = ALIASES.get(name, name)
    return name if name in _GROUP_OF else None


_COLOUR_TAG = re.compile(r"[a-z]+ (?:hair|eyes)")


def split_tag_text(text: str) -> list[str]:
    """Split a tag cell into tag names.

    Accepts our own format (`silver hair;red eyes;smile`), comma lists, and the MLDS format
    (`aqua hair aqua eyes`, no separator at all).
    """
    text = text.strip()
    for sep in (";", ","):
        if sep in text:
            return [t.strip() for t in text.split(sep) if t.strip()]
    if not text:
        return []
    found = _COLOUR_TAG.findall(_normalise(text))
    return found if found and " ".join(found) == _normalise(text) else [text]


class Vocabulary:
    """An ordered subset of `TAGS`, with `GROUPS` restricted to that subset."""

    def __init__(self, tags: Iterable[str]):
        names = set()
        for tag in tags:
            name = canonical(tag)
            if name is None:
                raise TagError(f"unknown tag {tag!r}; known tags are: {', '.join(TAGS)}")
            names.add(name)
        if not names:
            raise TagError("a vocabulary needs at least one tag")
        self.tags: tuple[str, ...] = tuple(t for t in TAGS if t in names)
        self.groups: tuple[Group, ...] = tuple(
            replace(g, tags=tuple(t for t in g.tags if t in names)) for g in GROUPS if any(t in names for t in g.tags)
        )
        self._index = {tag: i for i, tag in enumerate(self.tags)}

    @classmethod
    def paper(cls) -> "Vocabulary":
        """The paper's 34 tags."""
        return cls(PAPER_TAGS)

    @classmethod
    def full(cls) -> "Vocabulary":
        """Every tag Kyara knows: the paper's 34 and the extensions."""
        return cls(TAGS)

    def __len__(self) -> int:
        return len(self.tags)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tags == other.tags

    def __repr__(self) -> str:
        return f"Vocabulary({len(self.tags)} tags)"

    def index(self, tag: str) -> int:
        return self._index[self.resolve(tag)]

    def group_of(self, tag: str) -> Group:
        tag = self.resolve(tag)
        return next(g for g in self.groups if tag in g.tags)

    @property
    def exclusive_groups(self) -> tuple[Group, ...]:
        return tuple(g for g in self.groups if g.exclusive)

    @property
    def colour_tags(self) -> list[str]:
        """The tags of the exclusive groups: hair and eye colours."""
        return [tag for group in self.exclusive_groups for tag in group.tags]

    @property
    def attribute_tags(self) -> list[str]:
        """The tags outside the exclusive (colour) groups: hair length, expression, accessories, `male`."""
        return [tag for group in self.groups if not group.exclusive for tag in group.tags]

    def resolve(self, tag: str) -> str:
        """The vocabulary's spelling of `tag`, or a one-line TagError listing the valid names."""
        name = canonical(tag)
        if name is None or name not in self._index:
            raise TagError(f"unknown tag {tag.strip()!r}; valid tags: {', '.join(self.tags)}")
        return name

    def parse(self, tags: str | Sequence[str]) -> list[str]:
        """Validate a user's choice of tags (a text like "silver hair, red eyes" or a list).

        An empty text (or list) chooses no tag. An empty tag ("a,,b", ",,,", a comma at an end), an unknown
        one, and one named twice ("blonde hair, blond hair") are refused, as are two tags of one exclusive
        or at-most-one group: a face has one hair colour, and its hair is not long and short at once.
        """
        if isinstance(tags, str):
            pieces = _choice_pieces(tags)
        else:
            pieces = list(tags)
            if any(not isinstance(t, str) or not t.strip() for t in pieces):
                raise TagError(f"an empty tag among {pieces!r}; name each tag once, or none")
        names = [self.resolve(t) for t in pieces]
        twice = [t for i, t in enumerate(names) if t in names[:i]]
        if twice:
            raise TagError(f"{twice[0]!r} is named twice in {tags!r}; name each tag once")
        for group in self.groups:
            chosen = [t for t in names if t in group.tags]
            if len(chosen) > 1 and (group.exclusive or group.at_most_one):
                kind = "exclusive" if group.exclusive else "at-most-one"
                raise TagError(
                    f"{' and '.join(repr(t) for t in chosen)} are both in the {kind} group "
                    f"{group.name!r}; pick one of: {', '.join(group.tags)}"
                )
        return names

    def encode(self, tags: Sequence[str]) -> list[float]:
        """Multi-hot vector in vocabulary order (1 on, 0 off)."""
        on = {self.index(t) for t in tags}
        return [1.0 if i in on else 0.0 for i in range(len(self.tags))]

    def sample_labels(self, priors: Sequence[float], n: int, rng: np.random.Generator,
                      chosen: Sequence[str] = ()) -> np.ndarray:
        """n label vectors (float32, n x T) as the training data would have them, with `chosen` tags on.

        One tag per exclusive group, drawn by its frequency (`priors`, in vocabulary order); in an
        at-most-one group one uniform draw picks a tag with its frequency, or none with what is left
        (frequencies summing over 1 are scaled down to 1); every other tag on with its own frequency.
        Training, sampling, evaluation and the runtime all draw through here, so "random tags" means the
        same thing everywhere.
        """
        priors = np.asarray(priors, dtype=np.float64)
        fixed = {self.resolve(t) for t in chosen}
        labels = np.zeros((n, len(self.tags)), dtype=np.float32)
        for group in self.groups:
            cols = np.array([self._index[t] for t in group.tags])
            if group.exclusive:
                p = np.clip(priors[cols], 1e-6, None)
                pick = cols[rng.choice(len(cols), size=n, p=p / p.sum())]
                forced = [self._index[t] for t in group.tags if t in fixed]
                labels[np.arange(n), forced[0] if forced else pick] = 1.0
            elif group.at_most_one:
                p = np.clip(priors[cols], 0.0, None)
                edges = np.cumsum(p / max(p.sum(), 1.0))
                pick = np.searchsorted(edges, rng.random(n), side="right")   # len(cols): none
                forced = [j for j, t in enumerate(group.tags) if t in fixed]
                if forced:
                    pick[:] = forced[0]
                on = pick < len(cols)
                labels[np.flatnonzero(on), cols[pick[on]]] = 1.0
            else:
                labels[:, cols] = rng.random((n, len(cols))) < priors[cols]
                labels[:, [self._index[t] for t in group.tags if t in fixed]] = 1.0
        return labels

    def to_json(self) -> dict:
        return {
            "tags": list(self.tags),
            "groups": [{"name": g.name, "exclusive": g.exclusive, "tags": list(g.tags),
                        **({"at_most_one": True} if g.at_most_one else {})} for g in self.groups],
        }

    @classmethod
    def from_json(cls, data: dict) -> "Vocabulary":
        """The vocabulary of `to_json`'s object; a TagError (one line) when it is not one: a caller that read
        it from a file puts the file's name in front."""
        if not isinstance(data, dict) or "tags" not in data:
            raise TagError(f"a vocabulary is a JSON object with a 'tags' list, got {_shown(data)}")
        tags = data["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise TagError(f"a vocabulary's 'tags' must be a list of tag names, got {_shown(tags)}")
        return cls(tags)


def _shown(value: object, limit: int = 60) -> str:
    """A value for an error message, cut to one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _choice_pieces(text: str) -> list[str]:
    """The tag names of a user's choice (`--tags`): none for an empty text; separated by `;` or `,` (every
    piece must name a tag), or the MLDS spelling without separators (`aqua hair aqua eyes`)."""
    if not text.strip():
        return []
    for sep in (";", ","):
        if sep in text:
            pieces = text.split(sep)
            if any(not p.strip() for p in pieces):
                raise TagError(f"an empty tag in {text!r} (two separators in a row, or one at an end); "
                               "separate tag names by single commas")
            return [p.strip() for p in pieces]
    return split_tag_text(text)
