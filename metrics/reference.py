"""The real side of every figure: real faces picked and run through the tagger once, then each registered
metric's real counterpart computed from them, kept in a `Reference` for every evaluation against that split."""
from __future__ import annotations

from typing import Collection

import numpy as np

from common.packed import PackedSet
from metrics import registry
from metrics.base import RealSide, Reference, Tagger
from metrics.realness import NAME as REALNESS, Protocol as RealnessProtocol


def build_reference(data: PackedSet, split: str, tagger: Tagger, n: int, seed: int,
                    protocol: RealnessProtocol | None = None, leave_out: Collection[str] = ()) -> Reference:
    """Pick up to n faces of `split` (and as many training faces), and compute every registered metric's real
    side but those named in `leave_out` (the trainer leaves realness out unless asked: it trains classifiers).

    `protocol` is the realness test's (default: the standard one, shrunk to what the split holds)."""
    rng = np.random.default_rng(seed)
    candidates, train = data.indices(split), data.indices("train")
    pick = np.sort(rng.choice(candidates, min(n, len(candidates)), replace=False))
    train_pick = np.sort(rng.choice(train, min(len(pick), len(train)), replace=False))
    images, train_images = np.asarray(data.images[pick]), np.asarray(data.images[train_pick])
    side = RealSide(data, split, tagger, seed, images, data.labels[pick], tagger.predict(images),
                    tagger.features(images), train_images, tagger.features(train_images),
                    {REALNESS: protocol} if protocol else {})
    return Reference(data.vocab, side.labels, side.features,
                     {m.name: m.real(side) for m in registry.METRICS if m.name not in leave_out})
