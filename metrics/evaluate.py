"""`kyara eval` and the trainer's in-loop evaluation: every registered metric of a generator, each figure next
to its real counterpart, into eval.json and report.md with the sample and blind sheets.

The real side is computed once per data split and tagger (`metrics.reference`); here the generated side is
made and handed to each metric of `metrics.registry` in turn. The faces several metrics share are made once:
the distribution set (one face per reference face, asked for its tags one by one, so both sides have the same
tag distribution) and its tagger features. Everything is drawn from seeded generators: a seed gives one result.

eval.json holds the headline figures (one number each, for the generated faces) at its top level and all
the detail, real counterparts included, under "figures"; report.md shows them as tables (`metrics.report`).
"""
from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from common.files import write_text_atomic
from common.packed import PackedSet
from common.vocab import Vocabulary
from export.adapters import Source, check_resolution, draw, open_source, torch_source, truncated
from judge.blind import blind_sheets
from metrics import registry
from metrics.base import Generated, Reference, Tagger, matched_labels
from metrics.kid import NAME as KID
from metrics.realness import NAME as REALNESS, Protocol as RealnessProtocol, generated_faces
from metrics.reference import build_reference
from metrics.report import headline, markdown
from training.config import TrainConfig
from training.grid import save_grid

BLIND_FACES = 60            # generated and as many real faces on the blind sheets


def samples_per_tag(total: int, vocab: Vocabulary) -> int:
    """How many faces to ask for each colour so that all colours together make about `total`."""
    return max(2, total // max(1, len(vocab.colour_tags)))


def evaluate_source(source: Source, ref: Reference, tagger: Tagger, n_per_tag: int, seed: int,
                    progress: Callable[[str], None] = lambda stage: None) -> dict:
    """eval.json's "figures" for one generator: every registered metric the reference has a real side for.

    `progress` is told "distribution", then each metric's name as it starts (the command's progress bar).
    Realness trains a few small classifiers (about a minute at 64 px on a CPU core, a quarter of that for shape
    realness at 32 px): a reference built without it leaves it out.
    """
    progress("distribution")
    images = source.generate(*matched_labels(source, ref.vocab, ref.labels, seed + 1))
    generated = Generated(source, ref, tagger, n_per_tag, seed, images, tagger.features(images))
    figures = {}
    for metric in registry.METRICS:
        if metric.name in ref.real:
            progress(metric.name)
            figures.update(metric.generated(generated))
    figures["images"] = {"generated": int(len(images)), "reference": int(len(ref.labels)), "per_tag": n_per_tag}
    figures["score"] = figures[KID]["generated"]["mean"]    # what a run ranks its checkpoints by (best.json)
    return figures


def tag_sheet(source: Source, seed: int) -> np.ndarray:
    """Faces for the sheet: every combination of the first two exclusive groups' colours (hair colours
    down, eye colours across), all from one noise vector and one draw of the other tags."""
    combos = itertools.product(*(g.tags for g in source.vocab.exclusive_groups[:2]))
    return np.concatenate([source.generate(*draw(source, 1, seed, combo)) for combo in combos])


def write_sheets(source: Source, ref: Reference, out: Path, seed: int) -> dict:
    """The colour sheet, a sheet of faces with prior-drawn tags, and the blind sheets with their key."""
    out.mkdir(parents=True, exist_ok=True)
    axes = {g.name: list(g.tags) for g in source.vocab.exclusive_groups[:2]}
    rows = len(next(iter(axes.values()))) if axes else 1
    save_grid(tag_sheet(source, seed), out / "sheet_tags.png", rows)
    noise, labels = draw(source, 64, seed + 3)
    save_grid(source.generate(noise, labels), out / "samples.png", 8)
    # The blind sheets take the realness test's held-out faces, real and generated (tags matched).
    real = ref.real[REALNESS].faces.test
    n = min(BLIND_FACES, len(real))
    generated = generated_faces(source, ref, seed + 4)[1][:n]
    key = blind_sheets(generated, real[:n], out / "blind", seed)
    return {"tags": "sheet_tags.png", "axes": axes, "samples": "samples.png",
            "blind": [f"blind/{name}" for name in key["sheets"]], "blind_key": "blind/key.json"}


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
    stages = ("reference", "distribution", *(metric.name for metric in registry.METRICS), "sheets")
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


def training_evaluator(cfg: TrainConfig, data: str | Path) -> Callable[[torch.nn.Module], dict]:
    """What a run scores G_ema with every `cfg.eval_every` steps: `kyara eval`'s figures on the validation split
    (`cfg.eval_samples` faces, realness when `cfg.eval_realness`). The tagger is loaded now, so that a missing
    one fails before training starts; the real side is computed at the first call and kept."""
    from tagger.model import load_tagger
    # Under torchrun only rank 0 scores (the trainer calls this there alone): the others need no tagger.
    packed, tagger = PackedSet.open(data), load_tagger() if os.environ.get("RANK", "0") == "0" else None
    priors = packed.priors(packed.indices("train"))
    reference: list[Reference] = []

    def evaluate_generator(generator: torch.nn.Module) -> dict:
        if not reference:
            reference.append(build_reference(packed, "val", tagger, cfg.eval_samples, cfg.seed,
                                             leave_out=() if cfg.eval_realness else (REALNESS,)))
        n_per_tag = samples_per_tag(cfg.eval_samples, packed.vocab)
        return evaluate_source(torch_source(generator, packed.vocab, priors), reference[0], tagger, n_per_tag,
                               cfg.seed)

    return evaluate_generator
