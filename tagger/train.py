"""`kyara tagger train`: fit a tagger on one or more packed sets (and extra label files), calibrate, report.

The data and its splits come from `tagger.data`: splits are by face group (an image, its mirror twin and
its duplicates stay together), colours are measured on the packed validation splits, and every other tag's
threshold is chosen on one split (`calibrate`) and its figures measured on another (`report`).

Re-running with the same --out continues from the last finished epoch (`state.pt`). The finished tagger is
`tagger.safetensors` + `tagger.json` (see `tagger.model`), next to `report.json`, confusion PNGs and
`metrics.jsonl`.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from common.files import atomic_path
from tagger.model import (DEFAULT_BACKBONE, Tagger, TaggerConfig, TaggerNet, build_net, load_state, load_tagger,
                          save_tagger, tagger_loss)
from tagger.report import calibrate_thresholds, confident_bounds, evaluate, known_scores, write_report
from tagger.config import TaggerTrainConfig
from tagger.data import LabelledSet, TrainingData, load_training_data

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
    with atomic_path(out / STATE) as tmp:
        torch.save(state, tmp)


def epoch_order(data: TrainingData, train_idx: np.ndarray, oversample: int, rng: np.random.Generator) -> np.ndarray:
    """One epoch's images in random order: every training image once, those labelled by eye `oversample`
    times (a few hundred annotated faces would otherwise be lost among tens of thousands of colour labels)."""
    repeats = np.where(data.annotated[train_idx], oversample, 1)
    return rng.permutation(np.repeat(train_idx, repeats))


def start_from(net: TaggerNet, vocab, start: Tagger, backbone: str) -> None:
    """Copy a trained tagger's backbone and, for the tags both know, its head rows into `net`; from a tagger
    with a second (or mouth) trunk, that trunk too (and its head's rows), which `net` must then have as well."""
    if start.config.backbone != backbone:
        raise ValueError(f"the tagger to start from has backbone {start.config.backbone!r}, not {backbone!r}")
    theirs = start.config.attribute_backbone
    if theirs and theirs != net.attribute_backbone_name:
        raise ValueError(f"the tagger to start from reads its non-colour tags with a second trunk ({theirs}); "
                         f"pass --attribute-backbone {theirs} to go on from it")
    mouth = start.config.mouth_backbone
    if mouth and (mouth != net.mouth_backbone_name or start.config.mouth_tags != [vocab.tags[c] for c in
                                                                                 net.mouth_columns.tolist()]):
        raise ValueError(f"the tagger to start from reads {', '.join(start.config.mouth_tags)} with a mouth trunk "
                         f"({mouth}); pass --mouth-backbone {mouth} --mouth-tags "
                         f"\"{', '.join(start.config.mouth_tags)}\" to go on from it")
    if mouth:
        net.mouth_backbone.load_state_dict(start.net.mouth_backbone.state_dict())
        net.mouth_head.load_state_dict(start.net.mouth_head.state_dict())
    net.backbone.load_state_dict(start.net.backbone.state_dict())
    with torch.no_grad():
        for tag in set(vocab.tags) & set(start.vocab.tags):
            net.head.weight[vocab.index(tag)] = start.net.head.weight[start.vocab.index(tag)]
            net.head.bias[vocab.index(tag)] = start.net.head.bias[start.vocab.index(tag)]
    if not theirs:
        return
    net.attribute_backbone.load_state_dict(start.net.attribute_backbone.state_dict())
    theirs_rows = {t: i for i, t in enumerate(start.vocab.attribute_tags)}     # the second head's row order
    with torch.no_grad():
        for row, tag in enumerate(vocab.attribute_tags):
            if tag in theirs_rows:
                net.attribute_head.weight[row] = start.net.attribute_head.weight[theirs_rows[tag]]
                net.attribute_head.bias[row] = start.net.attribute_head.bias[theirs_rows[tag]]


def _learning_trunk(net: TaggerNet) -> tuple[torch.nn.Module, torch.nn.Module, list[int], str] | None:
    """The trunk that learns when training goes on from a tagger (its backbone, head, tag columns and the
    option that adds it): the mouth trunk where there is one, else the second; None for one trunk."""
    if net.mouth_backbone is not None:
        return net.mouth_backbone, net.mouth_head, net.mouth_columns.tolist(), "--mouth-backbone"
    if net.attribute_backbone is not None:
        return net.attribute_backbone, net.attribute_head, net.attribute_columns.tolist(), "--attribute-backbone"
    return None


def train_tagger(sources: Sequence[LabelledSet], out: str | Path, cfg: TaggerTrainConfig = TaggerTrainConfig(),
                 device: str = "cpu", limit: int | None = None) -> Tagger:
    """Train, then calibrate thresholds and write the tagger and its report into `out`.

    `cfg` is the recipe (`tagger.config`). `cfg.init` starts from a trained tagger (its backbone, and the head
    rows of the tags it knows), e.g. the shipped colour tagger, so that training goes to the new tags.
    `cfg.backbone` defaults to the init tagger's, else to `DEFAULT_BACKBONE`. `limit` caps the number of
    training images (for smoke tests).

    `cfg.attribute_backbone` adds a second trunk for the non-exclusive tags (`tagger.model`),
    `cfg.mouth_backbone` a third that reads `cfg.mouth_tags` from the mouth alone. With `init` as well, only the
    last of the trunks learns (the mouth trunk where there is one, else the second): every other trunk and head
    is the init tagger's and stays frozen (its colours do not change), and only the images with a known label
    for the learning trunk's tags train: it learns from those alone, as the probe that read short hair best did.
    """
    init, backbone, backbone_weights = cfg.init or None, cfg.backbone or None, cfg.backbone_weights or None
    attribute_backbone, mouth_backbone, mouth_tags = cfg.attribute_backbone, cfg.mouth_backbone, cfg.mouth_tags
    epochs, batch_size, lr, weight_decay = cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay
    oversample, fractions, min_positives, seed = cfg.oversample, cfg.fractions, cfg.min_positives, cfg.seed
    data = load_training_data(sources, fractions, seed, min_positives)
    vocab = data.vocab
    train_idx = data.indices("train")
    if limit is not None:
        train_idx = train_idx[:limit]
    colour_idx, calibrate_idx, report_idx = np.flatnonzero(data.packed_val), data.indices("calibrate"), \
        data.indices("report")
    if not (len(train_idx) and len(colour_idx) and len(calibrate_idx) and len(report_idx)):
        raise ValueError(f"{', '.join(str(s.data) for s in sources)}: the tagger needs images to train, validate, "
                         f"calibrate and report on (has {len(train_idx)} train, {len(colour_idx)} val, "
                         f"{len(calibrate_idx)} calibrate, {len(report_idx)} report)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    resolution = int(data.images.shape[1])
    start = load_tagger(init) if init is not None else None
    backbone = backbone or (start.config.backbone if start is not None else DEFAULT_BACKBONE)
    config = TaggerConfig(vocabulary=vocab.to_json(), backbone=backbone, input_size=resolution,
                          attribute_backbone=attribute_backbone, mouth_backbone=mouth_backbone,
                          mouth_tags=list(mouth_tags) if mouth_backbone else [])
    tagger = Tagger(build_net(config, backbone_weights), config, device)
    net = tagger.net
    if start is not None:
        start_from(net, vocab, start, backbone)
    learning = _learning_trunk(net) if start is not None else None
    frozen = learning is not None
    if frozen:
        trunk, head, columns, flag = learning
        untrained = sorted(set(vocab.colour_tags) - set(start.vocab.tags))
        if untrained:
            raise ValueError(f"{init}: its first trunk stays frozen under {flag}, but it was not "
                             f"trained on {', '.join(untrained)}; start from a tagger that knows every colour")
        net.requires_grad_(False)
        trunk.requires_grad_(True)
        head.requires_grad_(True)
        labelled = (data.labels[:, columns] >= 0).any(1)
        train_idx = train_idx[labelled[train_idx]]
        if not len(train_idx):
            raise ValueError(f"{', '.join(str(s.data) for s in sources)}: no training image has a label for "
                             f"{', '.join(vocab.tags[c] for c in columns)}, so the trunk of {flag} has nothing "
                             "to learn from")
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    per_epoch = len(epoch_order(data, train_idx, oversample, np.random.default_rng(0)))
    steps_per_epoch = math.ceil(per_epoch / batch_size)
    total, warmup = epochs * steps_per_epoch, min(steps_per_epoch, 500)

    start_epoch = 0
    if (out / STATE).is_file():
        state = load_state(out / STATE, device)
        if state.get("backbone", backbone) != backbone:
            raise ValueError(f"{out / STATE}: an interrupted run on backbone {state['backbone']!r}, not "
                             f"{backbone!r}: pass --backbone {state['backbone']} to continue it, or a new --out")
        if (state.get("attribute_backbone", "") != attribute_backbone or state.get("frozen", False) != frozen
                or state.get("mouth_backbone", "") != mouth_backbone):
            theirs, their_mouth = state.get("attribute_backbone", ""), state.get("mouth_backbone", "")
            trunks = " ".join([f"--attribute-backbone {theirs}"] * bool(theirs) +
                              [f"--mouth-backbone {their_mouth}"] * bool(their_mouth)) or "one trunk"
            raise ValueError(f"{out / STATE}: an interrupted run with {trunks}"
                             f"{' from a frozen --init' if state.get('frozen') else ''}: continue it with the same "
                             "trunks and --init, or use a new --out")
        try:
            net.load_state_dict(state["net"])
        except RuntimeError:
            raise ValueError(f"{out / STATE}: an interrupted run of another network than {backbone!r} with "
                             f"{len(vocab)} tags; continue it with its own --backbone and data, or use a new "
                             "--out") from None
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"]
        print(f"kyara tagger train: continuing after epoch {start_epoch} of {epochs}")

    labels = torch.from_numpy(data.labels.astype(np.int64))
    for epoch in range(start_epoch, epochs):
        net.train()
        if frozen:
            net.eval()               # the frozen trunks' BatchNorm statistics stay the init tagger's
            learning[0].train()
        rng = np.random.default_rng([seed, epoch])  # per-epoch RNGs make a resumed run draw the same batches
        gen = torch.Generator().manual_seed(seed * 1000 + epoch)
        order = epoch_order(data, train_idx, oversample, rng)
        running, started = 0.0, time.time()
        bar = tqdm(range(steps_per_epoch), desc=f"tagger epoch {epoch + 1}/{epochs}", unit="batch")
        for i in bar:
            batch = order[i * batch_size:(i + 1) * batch_size]
            x = augment(tagger.preprocess(data.images[batch]), gen)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(epoch * steps_per_epoch + i, total, lr, warmup)
            loss = tagger_loss(net(x), labels[batch].to(device), vocab)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running = 0.98 * running + 0.02 * loss.item() if i else loss.item()
            bar.set_postfix(loss=f"{running:.3f}")
        tagger.net.eval()
        colour = evaluate(tagger.predict(data.images[colour_idx]), data.labels[colour_idx], vocab, {})
        calibrate = evaluate(tagger.predict(data.images[calibrate_idx]), data.labels[calibrate_idx], vocab, {})
        record = {"epoch": epoch + 1, "images": int(len(order)), "train_loss": running,
                  "val_accuracy": {name: g["accuracy"] for name, g in colour["groups"].items()},
                  "calibrate_ap": {t: f["ap"] for t, f in calibrate["tags"].items()
                                   if not vocab.group_of(t).exclusive and f["ap"] is not None},
                  "seconds": round(time.time() - started, 1)}
        print(f"kyara tagger train: {json.dumps(record)}")
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        _save_state(out, {"net": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                          "backbone": backbone, "attribute_backbone": attribute_backbone,
                          "mouth_backbone": mouth_backbone, "frozen": frozen})

    tagger.net.eval()
    calibrate_probs = tagger.predict(data.images[calibrate_idx])
    tagger.thresholds = calibrate_thresholds(calibrate_probs, data.labels[calibrate_idx], vocab)
    config.bounds = confident_bounds(calibrate_probs, data.labels[calibrate_idx], vocab, tagger.thresholds)
    report = final_report(tagger, data, colour_idx, calibrate_idx, report_idx, min_positives)
    config.thresholds = tagger.thresholds
    config.training = {"data": report["data"], "recipe": cfg.to_json(),
                       "epochs": epochs, "batch_size": batch_size, "lr": lr,
                       **({"frozen_from": str(init)} if frozen else {}),
                       "weight_decay": weight_decay, "seed": seed, "oversample": oversample,
                       "fractions": list(fractions), "min_positives": min_positives,
                       "val_accuracy": {k: g["accuracy"] for k, g in report["groups"].items()}}
    report["config"] = {k: v for k, v in asdict(config).items() if k != "vocabulary"}
    save_tagger(out, net, config)
    write_report(out, report)
    return tagger


def decided_accuracy(probs: np.ndarray, labels: np.ndarray, vocab, bounds: dict[str, list[float]]) -> dict:
    """Per tag with bounds: the share of these faces the tagger decides (outside its bounds) and how many of
    those it gets right; what a set tagged with it will hold, measured on faces the bounds were not fitted to."""
    out = {}
    for tag, p, truth in known_scores(probs, labels, vocab, bounds):
        lo, hi = bounds[tag]
        on, off = p >= hi, p < lo
        decided = on | off
        out[tag] = {"decided": round(float(decided.mean()), 3) if len(p) else None,
                    "accuracy_on": round(float(truth[on].mean()), 3) if on.any() else None,
                    "accuracy_off": round(float((~truth[off]).mean()), 3) if off.any() else None,
                    "faces": int(len(p))}
    return out


def final_report(tagger: Tagger, data: TrainingData, colour_idx: np.ndarray, calibrate_idx: np.ndarray,
                 report_idx: np.ndarray, min_positives: int) -> dict:
    """Colours on the packed validation splits (all sources, then each); every other tag on `report`."""
    vocab = tagger.vocab
    colour = evaluate(tagger.predict(data.images[colour_idx]), data.labels[colour_idx], vocab, tagger.thresholds)
    report_probs = tagger.predict(data.images[report_idx])
    reported = evaluate(report_probs, data.labels[report_idx], vocab, tagger.thresholds)
    per_source = {}
    for s, note in enumerate(data.sources):
        idx = colour_idx[data.source[colour_idx] == s]
        if len(idx):
            figures = evaluate(tagger.predict(data.images[idx]), data.labels[idx], vocab, tagger.thresholds)
            per_source[note["path"]] = {name: {"accuracy": g["accuracy"], "images": g["images"]}
                                        for name, g in figures["groups"].items()}
    exclusive = set(vocab.colour_tags)
    unseen = report_idx[data.packed_val[report_idx]]
    # The report faces that are also in the packed validation split: not even a tagger this one started
    # from (`init`, trained on the packed train split) has seen them.
    unseen_figures = evaluate(tagger.predict(data.images[unseen]), data.labels[unseen], vocab,
                              tagger.thresholds)["tags"] if len(unseen) else {}
    return {
        "images": {"val": int(len(colour_idx)), "calibrate": int(len(calibrate_idx)), "report": int(len(report_idx)),
                   "report_in_packed_val": int(len(unseen))},
        "groups": colour["groups"],
        "groups_per_source": per_source,
        "tags": {t: {**(colour if t in exclusive else reported)["tags"][t],
                     "measured_on": "val" if t in exclusive else "report"} for t in vocab.tags},
        "tags_report_in_packed_val": {t: f for t, f in unseen_figures.items() if t not in exclusive},
        "thresholds": tagger.thresholds,
        "thresholds_calibrated_on": "calibrate",
        "bounds": tagger.config.bounds,
        "decided_on_report": decided_accuracy(report_probs, data.labels[report_idx], vocab, tagger.config.bounds),
        "data": {"sources": data.sources, "train_images": int((data.split == "train").sum()),
                 "dropped_tags": {"min_positive_train_images": min_positives, "positives": data.dropped_tags}},
    }
