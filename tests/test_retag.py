"""The paper's way of labelling a set: a tagger's confident tags, its doubts kept as unknown, labels checked by eye
on top, the source's own colours untouched; and a generator that goes on from a smaller vocabulary."""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from common.packed import PackedSet, write_packed
from common.vocab import Vocabulary
from kyara.cli import main
from tagger.model import TaggerConfig, TaggerNet, save_tagger
from tagger.report import confident_bounds
from tagger.review import apply_corrections
from dataset.labels import read_label_file
from dataset.tagfile import read_tag_columns, read_tag_file, write_tag_file
from training.config import load_config
from dataset.pack import pack
from training.trainer import Trainer, train


def test_confident_bounds_keep_a_coin_toss_undecided_and_a_good_ranking_decided():
    vocab = Vocabulary(["red hair", "smile", "blush"])
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 400)
    probs, labels = np.zeros((400, 3)), np.ones((400, 3), np.int8)
    smile, blush = vocab.index("smile"), vocab.index("blush")
    probs[:, smile] = np.clip(truth * 0.6 + rng.uniform(0, 0.4, 400), 0, 1)   # separable
    probs[:, blush] = rng.uniform(0, 1, 400)                                  # chance
    labels[:, smile] = labels[:, blush] = truth
    bounds = confident_bounds(probs, labels, vocab, {"smile": 0.5, "blush": 0.5})
    assert set(bounds) == {"smile", "blush"}                 # colours take their argmax, no bounds
    lo, hi = bounds["smile"]
    assert lo <= 0.5 <= hi and hi - lo < 0.35                # most smiles decided
    assert bounds["blush"] == [0.0, 1.0]                     # a coin toss decides nothing


def _tar_of_twins(path: Path) -> Path:
    """An MLDS tar: 3 faces, each with its mirror twin, all tagged with colours only."""
    rng = np.random.default_rng(1)
    with tarfile.open(path, "w") as tar:
        rows, files = [], []
        for i in range(3):
            im = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            for name, pixels in ((f"{i}", im), (f"{i + 10}", im[:, ::-1])):
                rows.append(f"{name},{['red', 'blue', 'red'][i]} hair {['red', 'blue', 'blue'][i]} eyes")
                buf = Path(path.parent / f"{name}.png")
                Image.fromarray(np.ascontiguousarray(pixels)).save(buf)
                files.append((buf, f"faces/{name}.png"))
        csv_path = path.parent / "tags.csv"
        csv_path.write_text("\n".join(rows) + "\n")
        tar.add(csv_path, "faces/tags.csv")
        for f, arc in files:
            tar.add(f, arc)
    return path


def test_pack_with_a_taggers_output_and_labels_checked_by_eye(tmp_path, capsys):
    source = _tar_of_twins(tmp_path / "faces.tar")
    # The tagger saw faces 0, 1, 2 (by file name, as `kyara data tag` on an unpacked folder writes them): it also
    # guessed colours, which must not replace the source's, and could not decide smile on face 1.
    tagged = tmp_path / "tagged.csv"
    write_tag_file(tagged, [("0.png", ["blue hair", "long hair", "smile"]), ("1.png", ["red hair", "short hair"]),
                            ("2.png", ["red hair", "long hair"])],
                   [[0.9, 0.1, 0.8, 0.2, 0.9]] * 3, ["blue hair", "red hair", "long hair", "short hair", "smile"],
                   {"0.png": [], "1.png": ["smile"], "2.png": []})
    by_eye = tmp_path / "by_eye.csv"
    by_eye.write_text("id,smile,glasses\n12,1,0\n")     # face 2's twin, checked by eye: smiling after all

    packed = PackedSet.open(pack(source, tmp_path / "packed", workers=1, labels=[tagged, by_eye], min_faces=1))
    rows = {n: dict(zip(packed.vocab.tags, packed.labels[i].tolist())) for i, n in enumerate(packed.meta["names"])}
    assert "glasses" not in packed.vocab.tags                # no face has it: left out by --min-faces 1
    for face, twin in (("0", "10"), ("1", "11"), ("2", "12")):
        assert rows[face] == rows[twin]                      # a face group shares its labels
    assert rows["0"]["red hair"] == 1 and rows["0"]["blue hair"] == 0     # the source's colours, not the tagger's
    assert rows["0"]["smile"] == 1 and rows["0"]["long hair"] == 1 and rows["0"]["short hair"] == 0
    assert rows["1"]["smile"] == -1 and rows["1"]["short hair"] == 1      # undecided stays unknown
    assert rows["2"]["smile"] == 1                           # the later file (by eye) wins
    err = capsys.readouterr().err
    assert "left out (fewer than 1 faces): glasses (0)" in err
    assert "smile" in err and "faces on" in err              # the per-tag counts a note gives
    assert set(packed.meta["label_files"]) == {str(tagged), str(by_eye)}


def test_pack_refuses_a_label_file_for_other_images_before_decoding(tmp_path):
    source = _tar_of_twins(tmp_path / "faces.tar")
    other = tmp_path / "other.csv"
    other.write_text("id,smile\n999,1\n")
    with pytest.raises(ValueError, match="other.csv: none of its ids is an image of"):
        pack(source, tmp_path / "packed", workers=1, labels=[other])
    assert not (tmp_path / "packed").exists()


def test_kyara_tag_writes_what_the_tagger_could_not_decide(tmp_path):
    vocab = Vocabulary(["red hair", "blue hair", "smile"])
    crops = tmp_path / "crops"
    crops.mkdir()
    for i in range(4):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(crops / f"{i}.png")
    tagger = tmp_path / "tagger"
    torch.manual_seed(0)
    save_tagger(tagger, TaggerNet("mobilenetv4_conv_small_050", len(vocab)),
                TaggerConfig(vocab.to_json(), thresholds={"smile": 0.5}, bounds={"smile": [0.0, 1.0]}))
    assert main(["data", "tag", str(crops), "--tagger", str(tagger)]) == 0
    prob_tags, probs, unknown = read_tag_columns(crops / "tags.csv")
    assert prob_tags == list(vocab.tags) and len(probs) == 4
    assert unknown == {f"{i}.png": ["smile"] for i in range(4)}       # bounds [0, 1]: never sure
    labels = read_label_file(crops / "tags.csv")
    assert {r["smile"] for r in labels.rows.values()} == {-1}
    assert all(r["red hair"] + r["blue hair"] == 1 for r in labels.rows.values())

    # Deciding it by eye takes it out of the unknown column, and keeps the probabilities.
    corrections = tmp_path / "fix.csv"
    corrections.write_text("id,smile\n0.png,1\n1.png,0\n")
    assert apply_corrections(corrections, crops / "tags.csv") == {"smile": 2}
    _, probs_after, unknown_after = read_tag_columns(crops / "tags.csv")
    assert probs_after == probs
    assert unknown_after == {"0.png": [], "1.png": [], "2.png": ["smile"], "3.png": ["smile"]}
    assert "smile" in read_tag_file(crops / "tags.csv")["0.png"]


def _packed_with(path: Path, tags: list[str]) -> Path:
    rng = np.random.default_rng(0)
    n = 32
    vocab = Vocabulary(tags)
    labels = np.zeros((n, len(vocab)), np.int8)
    for group in vocab.groups:
        cols = [vocab.index(t) for t in group.tags]
        if group.exclusive:
            labels[np.arange(n), rng.choice(cols, n)] = 1
        else:
            labels[:, cols] = rng.integers(0, 2, (n, len(cols)))
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return write_packed(path, images, labels, vocab, np.arange(n), np.arange(n) % 8 == 0, source="tests")


def test_init_carries_a_run_onto_a_larger_vocabulary(tmp_path):
    cfg = load_config("tiny")
    small = _packed_with(tmp_path / "small", ["red hair", "blue hair", "green eyes", "brown eyes"])
    large = _packed_with(tmp_path / "large", ["red hair", "blue hair", "green eyes", "brown eyes", "smile"])
    train(cfg, small, tmp_path / "colours", device="cpu", steps=3)
    old = {n: load_file(str(tmp_path / "colours/checkpoints/step_0000003" / f"{n}.safetensors")) for n in ("G", "D")}

    trainer = Trainer(cfg, large, tmp_path / "more", device="cpu", init=tmp_path / "colours")
    g, d = trainer.G.state_dict(), trainer.D.state_dict()
    z = cfg.model.noise_dim
    new_tags, old_tags = list(trainer.vocab.tags), list(Vocabulary(["red hair", "blue hair", "green eyes", "brown eyes"]).tags)
    assert torch.equal(g["fc.weight"][:, :z], old["G"]["fc.weight"][:, :z])          # the noise inputs
    for t in old_tags:                                                                # each known tag's slice
        assert torch.equal(g["fc.weight"][:, z + new_tags.index(t)], old["G"]["fc.weight"][:, z + old_tags.index(t)])
        assert torch.equal(d["tag_head.weight"][new_tags.index(t)], old["D"]["tag_head.weight"][old_tags.index(t)])
    assert not g["fc.weight"][:, z + new_tags.index("smile")].any()                   # new: changes nothing yet
    assert torch.equal(g["blocks.0.body.0.weight"], old["G"]["blocks.0.body.0.weight"])
    trainer.close()

    with pytest.raises(ValueError, match=r"cannot resume .* its tags differ \(not in the data: none; new: smile\)"):
        Trainer(cfg, large, tmp_path / "colours", device="cpu", resume=True)
    with pytest.raises(ValueError, match="--init starts a new run"):
        Trainer(cfg, large, tmp_path / "colours", device="cpu", init=tmp_path / "colours", resume=True)
    wider = load_config("tiny", ["model.g_channels=16"])
    with pytest.raises(ValueError, match=r"cannot start from .*g_channels"):
        Trainer(wider, large, tmp_path / "other", device="cpu", init=tmp_path / "colours")
    assert not (tmp_path / "other").exists()
