"""Run under torchrun by test_trainer: a few DDP steps, then each rank writes a digest of its weights."""
import hashlib
import json
import sys
from pathlib import Path

import torch

from training.config import load_config
from training.trainer import Trainer


def digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for value in module.state_dict().values():
        h.update(value.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def main(data: str, out: str) -> None:
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
