"""A run's folder: what `kyara train --run-dir` creates, resumes and writes into.

    config.json      the run's config (as resolved: presets, --set, the pinned teacher)
    metrics.jsonl    one line per logged step (losses, images/s, training seconds) and per evaluation
    checkpoints/     step_NNNNNNN/ folders (training.checkpoint), the newest `keep_last` kept, and the best
    best.json        the checkpoint with the lowest evaluation score, when the run is evaluated
    samples/         the sample grid every `sample_every` steps

The trainer decides when to write; this module decides where and how, and what may go on from what: a resume
needs the same network shapes and the same tags, in the same order (G's label inputs and D's tag logits are
positional), while `--init` may change the tags (matched by name) and the fields that carry no weights.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from common.files import write_text_atomic
from common.vocab import Vocabulary
from training.checkpoint import checkpoint_dir, list_checkpoints
from training.config import TrainConfig
from training.models import ModelConfig


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.log_path = self.path / "metrics.jsonl"
        self.best_path = self.path / "best.json"

    def checkpoints(self) -> list[Path]:
        return list_checkpoints(self.path)

    def to_resume(self, resume: bool) -> Path | None:
        """The checkpoint a run goes on from (None for a new run); a new run in a used folder, or a resume of an
        empty one, is refused before anything is written."""
        existing = self.checkpoints()
        if existing and not resume:
            raise FileExistsError(f"{self.path} already holds checkpoints (last: {existing[-1].name}); "
                                  "pass --resume to continue it or choose another --run-dir")
        if resume and not existing:
            raise FileNotFoundError(f"{self.path}: nothing to resume (no checkpoint in "
                                    f"{checkpoint_dir(self.path)}); drop --resume to start a new run")
        return existing[-1] if resume else None

    def recorded_config(self) -> dict:
        """The config.json a previous start of this run wrote ({} for a new run)."""
        path = self.path / "config.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def start(self, cfg: TrainConfig, step: int) -> float:
        """Write the config, and cut the log back to `step` (the checkpoint resumed from) so that no step is
        logged twice. Returns the training seconds logged up to there: they carry on across resumes, for
        time-to-quality curves."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path / "config.json", json.dumps(cfg.to_json(), indent=2))
        if not self.log_path.is_file():
            return 0.0
        lines = [ln for ln in self.log_path.read_text().splitlines() if ln.strip()]
        kept = [ln for ln in lines if json.loads(ln).get("step", 0) <= step]
        write_text_atomic(self.log_path, "".join(ln + "\n" for ln in kept))
        walls = [r["wall_s"] for r in map(json.loads, kept) if "wall_s" in r]
        return walls[-1] if walls else 0.0

    def log(self, record: dict) -> None:
        with open(self.log_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def best(self) -> set[str]:
        """The checkpoint best.json names, which `keep_last` must not delete."""
        return {json.loads(self.best_path.read_text())["checkpoint"]} if self.best_path.is_file() else set()

    def mark_if_best(self, checkpoint: Path, step: int, score: float) -> None:
        """Name the checkpoint in best.json when its score (KID, lower is better) beats the one there."""
        if score != score or score in (float("inf"), float("-inf")):
            return
        if self.best_path.is_file() and json.loads(self.best_path.read_text())["score"] <= score:
            return
        write_text_atomic(self.best_path, json.dumps({"checkpoint": checkpoint.name, "step": step, "score": score,
                                                      "metric": "kid"}, indent=2))


def check_same_model(model: ModelConfig, ckpt: Path, verb: str = "resume", ignore: Sequence[str] = ()) -> None:
    """Other network shapes cannot load the weights: say which fields differ, in one line. Both sides are
    read as ModelConfigs, so a field older checkpoints lack takes its default, and the upsampling widths
    are compared as built (an empty `g_up_channels` is `g_channels` at each stage). `ignore`: fields that
    may differ (a new run's `WEIGHTLESS_FIELDS`)."""
    def shape(config: ModelConfig) -> dict:
        built = {**config.to_json(), "g_up_channels": list(config.up_channels)}
        return {k: v for k, v in built.items() if k not in ignore}
    saved = shape(ModelConfig(**json.loads((ckpt / "config.json").read_text()).get("model", {})))
    current = shape(model)
    changed = [f"{k} {saved.get(k)!r} -> {v!r}" for k, v in current.items() if saved.get(k) != v]
    if changed:
        raise ValueError(f"cannot {verb} {ckpt}: its model differs from this config ({'; '.join(changed)}); "
                         f"use a config with the same model, or start without it")


def check_same_tags(vocab: Vocabulary, ckpt: Path) -> None:
    """A run may go on on other data (re-tagged images) only with the same tags, in the same order."""
    saved = list(Vocabulary.from_json(json.loads((ckpt / "vocab.json").read_text())).tags)
    if saved != list(vocab.tags):
        raise ValueError(f"cannot resume {ckpt} on this data: its tags differ ({tag_changes(vocab, saved)}); "
                         "start a new run from it with --init instead")


def tag_changes(vocab: Vocabulary, other: Sequence[str]) -> str:
    """How another model's tags differ from `vocab`'s, for an error message."""
    gone, new = set(other) - set(vocab.tags), set(vocab.tags) - set(other)
    return f"not in the data: {', '.join(sorted(gone)) or 'none'}; new: {', '.join(sorted(new)) or 'none'}"
