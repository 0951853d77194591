"""Validation of a tagger: threshold calibration, per-tag precision/recall/F1/AP, group accuracy, confusion matrices.

Everything here works on probabilities (N x T) and int8 labels (1 / 0 / -1 unknown); entries whose label is
unknown are left out of every figure.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from common.files import atomic_path, write_text_atomic
from common.vocab import Vocabulary
from tagger.model import tags_from_probabilities

CANDIDATES = np.round(np.arange(0.05, 0.96, 0.05), 2)
FINE = np.round(np.arange(0.01, 1.0, 0.01), 2)


def known_scores(probs: np.ndarray, labels: np.ndarray, vocab: Vocabulary,
                 tags: Iterable[str] | None = None) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(tag, probabilities, truth) over the images whose label of the tag is known, for `tags` (default: every
    tag outside the exclusive groups, those that have thresholds)."""
    if tags is None:
        tags = [t for g in vocab.groups if not g.exclusive for t in g.tags]
    for tag in tags:
        c = vocab.index(tag)
        known = labels[:, c] >= 0
        yield tag, probs[known, c], labels[known, c] == 1


def calibrate_thresholds(probs: np.ndarray, labels: np.ndarray, vocab: Vocabulary) -> dict[str, float]:
    """Per non-exclusive tag, the threshold with the best F1 on these (validation) images; 0.5 if unlabelled."""
    thresholds = {}
    for tag, p, truth in known_scores(probs, labels, vocab):
        best, best_f1 = 0.5, -1.0
        for t in CANDIDATES if truth.any() else ():
            pred = p >= t
            tp = float((pred & truth).sum())
            f1 = 2 * tp / max(float(pred.sum() + truth.sum()), 1.0)
            if f1 > best_f1:
                best, best_f1 = float(t), f1
        thresholds[tag] = best
    return thresholds


def confident_bounds(probs: np.ndarray, labels: np.ndarray, vocab: Vocabulary, thresholds: dict[str, float],
                     precision: float = 0.9, min_count: int = 30) -> dict[str, list[float]]:
    """Per non-exclusive tag, [lo, hi]: at or above `hi` the tag is on for at least `precision` of these
    (calibration) faces, below `lo` it is off for as many; in between the tagger cannot say. Each side must
    hold `min_count` faces, so that 90 % is not five lucky ones (tagger-v3's smile bound at 5 faces was on for
    p >= 0.95 on calibrate and 38 % right on report).

    This is how a tagged set keeps the tagger's doubts: an undecided tag is stored as unknown and masked in
    training instead of feeding a coin toss to the generator. A tag the tagger ranks no better than chance
    gets an empty confident range (hi 1: never surely on; lo 0: never surely off). The bounds bracket the
    decision threshold, so a tag outside them is decided the way the threshold decides it.
    """
    bounds = {}
    for tag, p, truth in known_scores(probs, labels, vocab):
        threshold = thresholds.get(tag, 0.5)
        hi, lo = 1.0, 0.0
        for t in FINE:
            above = p >= t
            if above.sum() >= min_count and truth[above].mean() >= precision:
                hi = max(float(t), threshold)
                break
        for t in FINE[::-1]:
            below = p < t
            if below.sum() >= min_count and (~truth[below]).mean() >= precision:
                lo = min(float(t), threshold)
                break
        bounds[tag] = [lo, hi]
    return bounds


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float | None:
    """Area under the precision-recall curve as the mean precision at each positive's rank (None: no positive).

    Independent of any threshold: how well the tagger ranks the faces that have the tag above those that don't.
    """
    if not truth.any():
        return None
    order = np.argsort(-scores, kind="stable")
    hits = truth[order]
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision_at[hits].mean())


def evaluate(probs: np.ndarray, labels: np.ndarray, vocab: Vocabulary, thresholds: dict[str, float]) -> dict:
    """Per-tag precision/recall/F1/average precision/support and, per exclusive group, accuracy and confusion
    matrix (true x pred)."""
    predicted = np.array([vocab.encode(tags) for tags in tags_from_probabilities(probs, vocab, thresholds)]) > 0
    predicted = predicted.reshape(len(labels), len(vocab))
    per_tag = {}
    for c, tag in enumerate(vocab.tags):
        known = labels[:, c] >= 0
        truth, pred = labels[known, c] == 1, predicted[known, c]
        tp = int((truth & pred).sum())
        per_tag[tag] = {
            "precision": tp / max(int(pred.sum()), 1),
            "recall": tp / max(int(truth.sum()), 1),
            "f1": 2 * tp / max(int(pred.sum() + truth.sum()), 1),
            "ap": average_precision(probs[known, c], truth),
            "support": int(truth.sum()),
            "images": int(known.sum()),
        }
    groups = {}
    for group in vocab.exclusive_groups:
        cols = [vocab.index(t) for t in group.tags]
        lb = labels[:, cols]
        known = (lb == 1).sum(1) == 1
        truth, pred = lb[known].argmax(1), probs[known][:, cols].argmax(1)
        matrix = np.zeros((len(cols), len(cols)), dtype=int)
        np.add.at(matrix, (truth, pred), 1)
        groups[group.name] = {
            "accuracy": float((truth == pred).mean()) if known.any() else None,
            "images": int(known.sum()),
            "tags": list(group.tags),
            "confusion": matrix.tolist(),
        }
    return {"images": int(len(labels)), "groups": groups, "tags": per_tag, "thresholds": thresholds}


def draw_confusion(matrix: np.ndarray, tags: list[str], title: str, cell: int = 34) -> Image.Image:
    """A confusion matrix as a picture: rows are the true tag, columns the prediction, shade = row share."""
    font = ImageFont.load_default()
    names = [t.rsplit(" ", 1)[0] for t in tags]  # "blonde hair" -> "blonde"; the title names the group
    left, top = 70, 90
    n = len(tags)
    im = Image.new("RGB", (left + n * cell + 10, top + n * cell + 10), "white")
    draw = ImageDraw.Draw(im)
    draw.text((5, 5), title, fill="black", font=font)
    draw.text((5, 20), "rows: label, columns: prediction", fill="black", font=font)
    rows = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    for j, name in enumerate(names):
        label = Image.new("L", (top - 40, 12), 255)
        ImageDraw.Draw(label).text((0, 0), name, fill=0, font=font)
        im.paste(label.rotate(90, expand=True), (left + j * cell + cell // 2 - 6, 38))
    for i, name in enumerate(names):
        y = top + i * cell
        draw.text((5, y + cell // 2 - 6), name, fill="black", font=font)
        for j in range(n):
            x = left + j * cell
            shade = int(255 * (1 - rows[i, j]))
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(shade, shade, 255), outline=(220, 220, 220))
            if matrix[i, j]:
                draw.text((x + 3, y + cell // 2 - 6), str(matrix[i, j]), fill="white" if shade < 128 else "black",
                          font=font)
    return im


def write_report(out_dir: str | Path, report: dict) -> list[Path]:
    """report.json plus one confusion PNG per exclusive group, each written atomically."""
    out_dir = Path(out_dir)
    written = []
    for name, group in report["groups"].items():
        path = out_dir / f"confusion_{name.replace(' ', '_')}.png"
        accuracy = group["accuracy"] or 0.0
        im = draw_confusion(np.array(group["confusion"]), group["tags"],
                            f"{name}: accuracy {accuracy:.1%} on {group['images']} validation images")
        with atomic_path(path) as tmp:
            im.save(tmp, format="PNG")
        written.append(path)
    path = out_dir / "report.json"
    write_text_atomic(path, json.dumps(report, indent=2))
    return [path, *written]
