"""The tagger's multi-source training data: extra label files, face groups sharing labels, and the splits
(thresholds calibrated on one split, figures reported on another)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from common.packed import write_packed
from common.vocab import TagError, Vocabulary
from tagger.model import load_tagger
from tagger.report import calibrate_thresholds, evaluate
from dataset.labels import read_label_file
from tagger.config import TaggerTrainConfig
from tagger.data import LabelledSet, load_training_data

COLOURS = ["red hair", "blue hair", "green eyes", "brown eyes"]


def twin_set(path: Path, n: int = 80, seed: int = 0, smile_in_pixels: bool = False) -> tuple[Path, np.ndarray]:
    """A packed set of n images named "0".."n-1" in face groups of two (an image and its mirror twin).

    Hair colour is the image's colour, eye colour a bright or dark centre; with `smile_in_pixels` a white
    bar at the bottom marks the faces that smile. Returns the path and the smiling faces' mask.
    """
    rng = np.random.default_rng(seed)
    vocab = Vocabulary(COLOURS)
    faces = n // 2
    hair, eyes, smile = rng.integers(0, 2, faces), rng.integers(0, 2, faces), rng.random(faces) < 0.5
    images = rng.integers(0, 60, (faces, 32, 32, 3), dtype=np.uint8)
    images[hair == 0, :, :, 0] += 180
    images[hair == 1, :, :, 2] += 180
    images[eyes == 0, 8:-8, 8:-8, 1] = 250
    if smile_in_pixels:
        images[smile, 26:30, 6:26] = 255
    images = np.repeat(images, 2, axis=0)
    images[1::2] = images[1::2, :, ::-1]                                    # the mirror twins
    labels = np.zeros((n, len(vocab)), np.int8)
    labels[np.arange(n), np.repeat(hair, 2)] = 1
    labels[np.arange(n), 2 + np.repeat(eyes, 2)] = 1
    groups = np.repeat(np.arange(faces), 2)
    val = np.isin(groups, rng.choice(faces, faces // 5, replace=False))
    out = write_packed(path, images, labels, vocab, groups, val, source="test", names=[str(i) for i in range(n)])
    return out, np.repeat(smile, 2)


def write_table(path: Path, rows: dict[str, dict[str, int]], tags: list[str]) -> Path:
    lines = ["id," + ",".join(tags)] + [f"{k}," + ",".join(str(v.get(t, -1)) for t in tags) for k, v in rows.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_label_files_read_tables_and_tag_lists(tmp_path):
    table = read_label_file(write_table(tmp_path / "a.csv", {"3": {"long hair": 1, "smile": 0}}, ["long hair", "smile"]))
    assert table.tags == ("long hair", "smile") and table.rows == {"3": {"long hair": 1, "smile": 0}}
    (tmp_path / "b.csv").write_text("3,long hair\n4,short hair\n5,smile\n")
    listed = read_label_file(tmp_path / "b.csv")
    # "short hair" says the hair is not long; "smile" says nothing of blush
    assert listed.rows == {"3": {"long hair": 1, "short hair": 0}, "4": {"long hair": 0, "short hair": 1},
                           "5": {"smile": 1}}
    (tmp_path / "bad.csv").write_text("id,smile\n3,1\n4,yes\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: expected 2 columns of 1, 0 or -1, got '4,yes'"):
        read_label_file(tmp_path / "bad.csv")
    (tmp_path / "unknown.csv").write_text("id,cat ears\n3,1\n")
    with pytest.raises(TagError, match="unknown.csv: column 'cat ears' is not a known tag"):
        read_label_file(tmp_path / "unknown.csv")


def test_twins_share_labels_and_the_splits_keep_faces_apart(tmp_path):
    getchu, _ = twin_set(tmp_path / "g", n=200)
    konachan, _ = twin_set(tmp_path / "k", n=40, seed=1)
    rows = {str(i): {"smile": i % 4 // 2, "long hair": 1, "short hair": 0} for i in range(0, 120, 2)}
    rows["1"] = {"smile": 1}                                    # the twin of "0" (smile 0) disagrees
    gold = write_table(tmp_path / "attributes.csv", rows, ["long hair", "short hair", "smile"])
    (tmp_path / "weak.csv").write_text("0,short hair\n2,long hair\n")
    (tmp_path / "weak_g.csv").write_text("4,short hair\n")     # weak labels lose against labels checked by eye
    data = load_training_data([LabelledSet(getchu, [gold], [tmp_path / "weak_g.csv"]),
                               LabelledSet(konachan, weak_labels=[tmp_path / "weak.csv"])])
    assert set(data.vocab.tags) == {*COLOURS, "long hair", "short hair", "smile"}
    col = data.vocab.index
    g = np.flatnonzero(data.source == 0)
    assert data.labels[g[2], col("smile")] == data.labels[g[3], col("smile")] == 1    # "3" from its twin "2"
    assert data.labels[g[0], col("smile")] == data.labels[g[1], col("smile")] == -1   # disagreement: unknown
    assert data.labels[g[4], col("long hair")] == 1 and data.labels[g[4], col("short hair")] == 0
    assert (data.labels[g[120:], col("smile")] == -1).all()                          # never annotated
    k = np.flatnonzero(data.source == 1)
    assert list(data.labels[k[:4], col("short hair")]) == [1, 1, 0, 0]

    groups = np.concatenate([json.loads((p / "meta.json").read_text())["group"] for p in (getchu, konachan)])
    groups = groups + np.where(data.source == 1, 10_000, 0)
    sides = {s: set(groups[data.split == s]) for s in ("train", "calibrate", "report")}
    assert not (sides["train"] & sides["calibrate"]) and not (sides["train"] & sides["report"])
    assert not (sides["calibrate"] & sides["report"])
    assert not (set(groups[data.packed_val]) & sides["train"])              # validation faces never train
    assert data.annotated[data.split == "calibrate"].all() and data.annotated[data.split == "report"].all()
    assert len(sides["calibrate"]) >= 8 and len(sides["report"]) >= 8      # about a fifth of 60 faces each
    assert set(data.split[k]) <= {"train", "val"}                          # weak labels only train


def test_training_calibrates_on_one_split_and_reports_on_another(tmp_path):
    """Through the command, from a recipe file with a shortcut option over it: the report keeps the recipe."""
    from kyara.cli import main

    data, smile = twin_set(tmp_path / "g", n=160, smile_in_pixels=True)
    gold = write_table(tmp_path / "attributes.csv", {str(i): {"smile": int(smile[i])} for i in range(0, 160, 2)},
                       ["smile"])
    out, recipe = tmp_path / "tagger", tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"base": "tiny", "epochs": 3, "batch_size": 16, "lr": 3e-3}))
    assert main(["tagger", "train", "--data", str(data), "--labels", str(gold), "--out", str(out),
                 "--config", str(recipe), "--oversample", "2"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["training"]["recipe"] == TaggerTrainConfig(
        epochs=3, batch_size=16, lr=3e-3, oversample=2).to_json()
    tagger = load_tagger(out)
    split = load_training_data([LabelledSet(data, [gold])])
    calibrate, reported = split.indices("calibrate"), split.indices("report")
    assert report["thresholds"] == calibrate_thresholds(tagger.predict(split.images[calibrate]),
                                                        split.labels[calibrate], tagger.vocab) == tagger.thresholds
    expected = evaluate(tagger.predict(split.images[reported]), split.labels[reported], tagger.vocab,
                        tagger.thresholds)["tags"]["smile"]
    assert report["tags"]["smile"] == pytest.approx({**expected, "measured_on": "report"})
    assert report["tags"]["smile"]["images"] == len(reported)
    assert set(report["tags"]["smile"]) >= {"precision", "recall", "f1", "ap", "support"}
    assert report["groups"]["hair colour"]["images"] == int(split.packed_val.sum())


def test_label_files_must_follow_their_packed_set_on_the_command_line(tmp_path, capsys):
    from kyara.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["tagger", "train", "--labels", "a.csv", "--data", str(tmp_path), "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert "argument --labels: must follow the --data whose images it labels" in err
