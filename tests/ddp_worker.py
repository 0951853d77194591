"""Run under torchrun by test_trainer.

    ddp_worker.py DATA OUT          a few DDP steps, then each rank writes a digest of its weights
    ddp_worker.py DATA OUT nan      rank 1 alone gets a NaN loss; each rank writes how its run ended
    ddp_worker.py DATA OUT teacher  a student of OUT/teacher, where rank 1 alone would find its older checkpoint;
                                    each rank writes the teacher it pinned
"""
import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from training import trainer as trainer_module
from training.checkpoint import list_checkpoints
from training.config import load_config
from training.trainer import Trainer, TrainingDiverged


def digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for value in module.state_dict().values():
        h.update(value.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def diverge_on_rank_1(data: str, out: str) -> None:
    cfg = load_config("tiny", ["ckpt_every=3", "log_every=3", "sample_every=3"])
    trainer = Trainer(cfg, data, Path(out) / "run", device="cpu")
    real_adv_loss = trainer_module.adv_loss

    def poisoned(logits, real):
        loss = real_adv_loss(logits, real)
        return loss * float("nan") if trainer.rank == 1 and trainer.step >= 4 else loss

    trainer_module.adv_loss = poisoned
    try:
        trainer.fit(12)
        ended = f"finished at step {trainer.step}"
    except TrainingDiverged as exc:
        ended = str(exc)
    (Path(out) / f"rank{trainer.rank}.txt").write_text(ended)
    trainer.close()


def teacher_moved_between_looks(data: str, out: str) -> None:
    """As if the teacher run saved its newest checkpoint after rank 1 looked and before rank 0 did."""
    teacher_run = Path(out) / "teacher"
    if os.environ["RANK"] == "1":
        oldest = list_checkpoints(teacher_run)[0]
        trainer_module.resolve_checkpoint = lambda path: oldest
    cfg = load_config("tiny", [f"teacher={teacher_run}"])
    trainer = Trainer(cfg, data, Path(out) / "run", device="cpu")
    (Path(out) / f"rank{trainer.rank}.txt").write_text(trainer.cfg.teacher)
    trainer.close()


def main(data: str, out: str, mode: str = "") -> None:
    if mode == "nan":
        return diverge_on_rank_1(data, out)
    if mode == "teacher":
        return teacher_moved_between_looks(data, out)
    cfg = load_config("tiny", ["ckpt_every=3"])
    trainer = Trainer(cfg, data, Path(out) / "run", device="cpu")
    initial = digest(trainer.G) + digest(trainer.D)
    first_batch = hashlib.sha256(trainer._real_batch()[0].numpy().tobytes()).hexdigest()
    trainer.fit(6)
    record = {"step": trainer.step, "weights": digest(trainer.G) + digest(trainer.D) + digest(trainer.G_ema),
              "initial": initial, "first_batch": first_batch}
    (Path(out) / f"rank{trainer.rank}.json").write_text(json.dumps(record))
    trainer.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
