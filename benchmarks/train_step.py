"""Speed of one full training step (G forward, D on real + fake + perturbed real with the gradient
penalty, both optimizer steps, EMA) on random data, and the FLOPs it costs.

    python benchmarks/train_step.py --config cpu64 --device cpu --batch 32 --steps 10

Prints one `name: value unit` line per figure. Never used as an assertion.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from tagger.vocab import PAPER_TAGS, Vocabulary
from training.config import load_config
from training.models import count_params
from training.packed import write_packed
from training.trainer import Trainer


def random_packed(path: Path, resolution: int, n: int = 256) -> Path:
    vocab = Vocabulary(PAPER_TAGS)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, resolution, resolution, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, (n, len(vocab)), dtype=np.int8)
    groups = np.arange(n)
    return write_packed(path, images, labels, vocab, groups, groups % 10 == 0, source="benchmark")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cpu64")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="torch.compile G (D needs a double backward, which compiled graphs lack)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    # eval_every=0: a benchmark step needs no tagger, and building the trainer would load it.
    overrides = [f"batch_size={args.batch}", f"compile={args.compile}", "eval_every=0", *args.set]
    cfg = load_config(args.config, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        data = random_packed(Path(tmp) / "data", cfg.model.resolution)
        trainer = Trainer(cfg, data, Path(tmp) / "run", device=args.device)
        device = trainer.device
        with FlopCounterMode(display=False) as counter:
            trainer.train_step()
        flops_per_image = counter.get_total_flops() / args.batch
        for _ in range(args.warmup):
            trainer.train_step()
        sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            losses = trainer.train_step()
        float(losses["loss_d"])            # one sync at the end, none inside the timed loop
        sync(device)
        elapsed = time.perf_counter() - start

    images_per_s = args.batch * args.steps / elapsed
    print(f"config: {cfg.name}")
    print(f"device: {device} ({torch.get_num_threads()} threads)")
    print(f"g_params: {count_params(trainer.G)}")
    print(f"d_params: {count_params(trainer.D)}")
    print(f"train_step_flops_per_image: {flops_per_image / 1e9:.3f} GFLOP")
    print(f"step_time: {elapsed / args.steps * 1000:.1f} ms")
    print(f"images_per_s: {images_per_s:.1f} img/s")
    print(f"achieved: {images_per_s * flops_per_image / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
