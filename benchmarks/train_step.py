"""Speed of one full training step (G forward, D on real + fake + perturbed real with the gradient
penalty, both optimizer steps, EMA) on random data, and the FLOPs it costs.

    python benchmarks/train_step.py --config cpu64 --device cpu --batch 32 --steps 10
    python benchmarks/train_step.py --config paper --batch 16 --recipe configs/v5.json

With --recipe, the same config is measured twice, as it is ("old") and with the recipe file's switches
on top ("new": augmentation, lazy penalty, upsampling, G's widths, ...), in alternating rounds, so that a noisy box
slows both alike; the speed-up is the ratio of their median rounds. FLOPs are averaged over a full
cycle of the lazy penalty (gp_every steps), not one step.

Prints one `name: value unit` line per figure. Never used as an assertion.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from common.packed import write_packed
from common.vocab import PAPER_TAGS, Vocabulary
from training.config import load_config
from training.models import count_params
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


RECIPE_KEYS = ("augment", "gp_every", "standing_stats")
# G's shape counts as a switch too: a narrower generator is the other way to more images per CPU-second.
RECIPE_MODEL_KEYS = ("upsample", "icnr", "rgb_kernel", "g_channels", "g_blocks", "g_up_channels")


def recipe_overrides(path: str) -> list[str]:
    """The recipe switches of a config file as --set overrides, so they can go on top of another config."""
    data = json.loads(Path(path).read_text())
    sets = [f"{k}={data[k]}" for k in RECIPE_KEYS if k in data]
    return sets + [f"model.{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                   for k, v in data.get("model", {}).items() if k in RECIPE_MODEL_KEYS]


def measure(trainer: Trainer, batch: int, rounds: list[float], steps: int) -> None:
    """Time `steps` steps and append the images per second to `rounds`."""
    sync(trainer.device)
    start = time.perf_counter()
    for _ in range(steps):
        losses = trainer.train_step()
        trainer.step += 1
    float(losses["loss_d"])            # one sync at the end, none inside the timed loop
    sync(trainer.device)
    rounds.append(batch * steps / (time.perf_counter() - start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cpu64")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (alternating with --recipe)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="torch.compile G (D needs a double backward, which compiled graphs lack)")
    parser.add_argument("--recipe", help="a config file whose recipe switches are measured against the config as is")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    # eval_every=0: a benchmark step needs no tagger, and building the trainer would load it.
    overrides = [f"batch_size={args.batch}", f"compile={args.compile}", "eval_every=0", *args.set]
    variants = {"old": overrides, "new": overrides + recipe_overrides(args.recipe)} if args.recipe else {"": overrides}
    with tempfile.TemporaryDirectory() as tmp:
        trainers, flops, rounds = {}, {}, {}
        for name, sets in variants.items():
            cfg = load_config(args.config, sets)
            data = random_packed(Path(tmp) / f"data{name}", cfg.model.resolution)
            trainer = trainers[name] = Trainer(cfg, data, Path(tmp) / f"run{name}", device=args.device)
            with FlopCounterMode(display=False) as counter:
                for _ in range(cfg.gp_every):        # one whole cycle of the lazy penalty
                    trainer.train_step()
                    trainer.step += 1
            flops[name] = counter.get_total_flops() / args.batch / cfg.gp_every
            for _ in range(args.warmup):
                trainer.train_step()
                trainer.step += 1
            rounds[name] = []
        for _ in range(args.rounds):
            for name, trainer in trainers.items():
                measure(trainer, args.batch, rounds[name], args.steps)

    first = next(iter(trainers.values()))
    print(f"config: {first.cfg.name}")
    print(f"device: {first.device} ({torch.get_num_threads()} threads)")
    for name, trainer in trainers.items():
        tag = f"{name}_" if name else ""
        images_per_s = float(np.median(rounds[name]))
        print(f"{tag}g_params: {count_params(trainer.G)}")
        print(f"{tag}d_params: {count_params(trainer.D)}")
        print(f"{tag}train_step_flops_per_image: {flops[name] / 1e9:.3f} GFLOP")
        print(f"{tag}step_time: {args.batch / images_per_s * 1000:.1f} ms")
        print(f"{tag}images_per_s: {images_per_s:.1f} img/s")
        print(f"{tag}achieved: {images_per_s * flops[name] / 1e9:.1f} GFLOP/s")
    if args.recipe:
        speedup = np.median(rounds["new"]) / np.median(rounds["old"])
        print(f"speedup_new_over_old: {speedup:.2f} x")
        print(f"flops_ratio_old_over_new: {flops['old'] / flops['new']:.2f} x")


if __name__ == "__main__":
    main()
