"""Distillation as one more loss term of G: a student learns to draw its teacher's face from the same noise and
tags (L1 to the teacher's G_ema), beside the usual adversarial and tag losses (`cfg.teacher`,
`cfg.lambda_teacher`).

The teacher is pinned to one checkpoint folder, recorded in the run's config.json: a run directory's best or
newest checkpoint moves on while that run trains, and a student resumed later must go on learning from the
checkpoint it started with, not from whatever the teacher run holds now.
"""
from __future__ import annotations

from pathlib import Path

import torch

from common.vocab import Vocabulary
from training.checkpoint import checkpoint_dir, load_generator, resolve_checkpoint
from training.config import TrainConfig
from training.run import RunFolder, tag_changes


def pin_teacher(spec: str, run: RunFolder, resume: bool) -> str:
    """The one checkpoint folder `spec` (a checkpoint or a run directory) is, as an absolute path. On resume, a
    teacher given as a run directory stays the checkpoint of it that this run recorded."""
    path = Path(spec).expanduser()
    recorded = run.recorded_config().get("teacher", "") if resume else ""
    if recorded and Path(recorded).parent.resolve() == checkpoint_dir(path).resolve():
        return recorded
    try:
        return str(resolve_checkpoint(path).resolve())
    except FileNotFoundError:
        raise FileNotFoundError(f"teacher {spec}: no checkpoint here; expected a checkpoint folder (step_*, "
                                "with G_ema.safetensors) or a run directory (its best, else newest, checkpoint)"
                                ) from None


class TeacherLoss:
    """L1 between the student's faces and the frozen teacher's for the same noise and labels."""

    name = "g_teacher"      # its key in metrics.jsonl

    def __init__(self, path: str, cfg: TrainConfig, vocab: Vocabulary, device: torch.device):
        try:
            teacher, teacher_vocab, _, teacher_cfg = load_generator(path, device=str(device))
        except FileNotFoundError:      # a recorded checkpoint that its own run's keep_last has since deleted
            raise FileNotFoundError(f"teacher {path}: this checkpoint is gone; name another checkpoint folder "
                                    "with --set teacher=CHECKPOINT (the run directory again would keep this one)"
                                    ) from None
        if list(teacher_vocab.tags) != list(vocab.tags):
            raise ValueError(f"teacher {path}: its tags differ from this data's "
                             f"({tag_changes(vocab, teacher_vocab.tags)}; or another order); distil on the data it "
                             "was trained on")
        for field_name in ("resolution", "noise_dim"):
            theirs, ours = getattr(teacher_cfg.model, field_name), getattr(cfg.model, field_name)
            if theirs != ours:
                raise ValueError(f"teacher {path}: its model.{field_name} is {theirs}, this config's {ours}")
        self.teacher = teacher.to(memory_format=torch.channels_last).requires_grad_(False)
        self.weight = cfg.lambda_teacher

    def __call__(self, fake: torch.Tensor, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.teacher(noise, labels)
        return (fake.float() - target.float()).abs().mean()
