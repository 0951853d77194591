"""A tiny random generator saved as a checkpoint and exported through the CLI, for tests that need a real
model with a chosen vocabulary (a few seconds on a CPU)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

# Hair colour, hair length (at-most-one: 0.2 of the faces have neither), a free tag and eye colour.
HAIR_LENGTH_TAGS = ["blonde hair", "red hair", "long hair", "short hair", "smile", "blue eyes", "red eyes"]
HAIR_LENGTH_PRIORS = [0.4, 0.6, 0.5, 0.3, 0.6, 0.7, 0.3]


def tiny_checkpoint(run_dir: Path, tags: Sequence[str], priors: Sequence[float], **model: object) -> Path:
    """A checkpoint of the `tiny` preset with random weights (BatchNorm statistics randomised too, so the
    export's folding is exercised) and a G that differs from G_ema (the export must take the EMA one).
    Keyword arguments change the preset's model config (e.g. `chroma_blur=True`)."""
    from dataclasses import replace

    import torch

    from common.vocab import Vocabulary
    from training.checkpoint import save_checkpoint
    from training.config import PRESETS
    from training.models import Discriminator, Generator

    cfg = replace(PRESETS["tiny"], model=replace(PRESETS["tiny"].model, **model))
    vocab = Vocabulary(tags)
    torch.manual_seed(0)
    g, d = Generator(cfg.model, len(vocab)), Discriminator(cfg.model, len(vocab))
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    other = Generator(cfg.model, len(vocab))
    ckpt = save_checkpoint(run_dir, 10, {"G": other, "G_ema": g, "D": d}, {}, cfg, vocab, list(priors),
                           keep_last=1)
    (ckpt / "eval.json").write_text(json.dumps({"score": 0.5, "fid": None, "figures": {"fid": {}}}))
    return ckpt


def export_tiny(checkpoint: Path, out: Path, default: str = "int8") -> Path:
    """`kyara export` of `checkpoint` into `out`; returns `out`."""
    from kyara.cli import main

    assert main(["export", str(checkpoint), "-o", str(out), "--default", default, "--data", "test fixture"]) == 0
    return out
