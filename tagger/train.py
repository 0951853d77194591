"""`kyara tagger train`: fit a tagger on a packed set's train split, calibrate and report on its val split.

The packed set's split is by face group (an image, its mirror twin and its duplicates stay together), so the
validation figures are not inflated by near-copies of training images.

Re-running with the same --out continues from the last finished epoch (`state.pt`). The finished tagger is
`tagger.safetensors` + `tagger.json` (see `tagger.model`), next to `report.json`, confusion PNGs and
`metrics.jsonl`.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from tagger.model import DEFAULT_BACKBONE, Tagger, TaggerConfig, TaggerNet, save_tagger, tagger_loss
from tagger.report import calibrate_thresholds, evaluate, write_report
from training.packed import PackedSet

STATE = "state.pt"


def augment(x: torch.Tensor, generator: torch.Generator, shift: int = 4) -> torch.Tensor:
    """Random mirror and a random shift of up to `shift` pixels. No colour jitter: colour is the label."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    padded = F.pad(x, (shift,) * 4, mode="replicate")
    dy, dx = torch.randint(0, 2 * shift + 1, (2, n), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))


def _save_state(out: Path, state: dict) -> None:
    torch.save(state, out / f".{STATE}.tmp")
    os.replace(out / f".{STATE}.tmp", out / STATE)


def train_tagger(data: str | Path, out: str | Path, backbone: str = DEFAULT_BACKBONE, epochs: int = 10,
                 batch_size: int = 64, lr: float = 3e-3, weight_decay: float = 0.05,
                 backbone_weights: str | Path | None = None, seed: int = 0, device: str = "cpu",
                 limit: int | None = None) -> Tagger:
    """Train, then calibrate thresholds and write the tagger and its validation report into `out`.

    `limit` caps the number of training images (for smoke tests).
    """
    packed = PackedSet.open(data)
    vocab = packed.vocab
    train_idx, val_idx = packed.indices("train"), packed.indices("val")
    if limit is not None:
        train_idx = train_idx[:limit]
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise ValueError(f"{data}: the packed set needs both a train and a val split "
                         f"(has {len(train_idx)} train, {len(val_idx)} val images)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = TaggerConfig(vocabulary=vocab.to_json(), backbone=backbone, input_size=packed.resolution)
    tagger = Tagger(TaggerNet(backbone, len(vocab), backbone_weights), config, device)
    net = tagger.net
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(train_idx) / batch_size)
    total, warmup = epochs * steps_per_epoch, min(steps_per_epoch, 500)

    start_epoch = 0
    if (out / STATE).is_file():
        state = torch.load(out / STATE, map_location=device, weights_only=False)
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"]
        print(f"kyara tagger train: continuing after epoch {start_epoch} of {epochs}")

    labels = torch.from_numpy(packed.labels.astype(np.int64))
    for epoch in range(start_epoch, epochs):
        net.train()
        rng = np.random.default_rng([seed, epoch])  # per-epoch RNGs make a resumed run draw the same batches
        gen = torch.Generator().manual_seed(seed * 1000 + epoch)
        order = rng.permutation(train_idx)
        running, started = 0.0, time.time()
        bar = tqdm(range(steps_per_epoch), desc=f"tagger epoch {epoch + 1}/{epochs}", unit="batch")
        for i in bar:
            batch = np.sort(order[i * batch_size:(i + 1) * batch_size])  # sorted reads are kinder to the mmap
            x = augment(tagger.preprocess(packed.images[batch]), gen)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(epoch * steps_per_epoch + i, total, lr, warmup)
            loss = tagger_loss(net(x), labels[batch].to(device), vocab)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running = 0.98 * running + 0.02 * loss.item() if i else loss.item()
            bar.set_postfix(loss=f"{running:.3f}")
        tagger.net.eval()
        probs = tagger.predict(packed.images[val_idx])
        accuracy = {name: g["accuracy"] for name, g in
                    evaluate(probs, packed.labels[val_idx], vocab, {})["groups"].items()}
        record = {"epoch": epoch + 1, "train_loss": running, "val_accuracy": accuracy,
                  "seconds": round(time.time() - started, 1)}
        print(f"kyara tagger train: {json.dumps(record)}")
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        _save_state(out, {"net": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1})

    tagger.net.eval()
    probs = tagger.predict(packed.images[val_idx])
    val_labels = packed.labels[val_idx]
    tagger.thresholds = calibrate_thresholds(probs, val_labels, vocab)
    report = evaluate(probs, val_labels, vocab, tagger.thresholds)
    report["data"] = {"path": str(packed.path), "source": packed.meta.get("source"),
                      "train_images": int(len(train_idx)), "val_images": int(len(val_idx))}
    config.thresholds = tagger.thresholds
    config.training = {"data": report["data"], "epochs": epochs, "batch_size": batch_size, "lr": lr,
                       "weight_decay": weight_decay, "seed": seed,
                       "val_accuracy": {k: g["accuracy"] for k, g in report["groups"].items()}}
    report["config"] = {k: v for k, v in asdict(config).items() if k != "vocabulary"}
    save_tagger(out, net, config)
    write_report(out, report)
    return tagger
