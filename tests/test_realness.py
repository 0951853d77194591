"""Realness and blind sheets: the judge that is meant to agree with a person."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_tiny_packed
from faces import draw_face
from common.packed import PackedSet
from judge.blind import COLS, FACE, LABEL, blind_sheets
from training.config import load_config
from training.models import Generator
from metrics.realness import Protocol, realness, shape_protocol, split_real

SMALL = Protocol(train_per_class=120, test_per_class=60, steps=150, seeds=2)


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> PackedSet:
    return PackedSet.open(make_tiny_packed(tmp_path_factory.mktemp("r") / "packed", n=480))


def random_g_faces(vocab_size: int, n: int) -> np.ndarray:
    torch.manual_seed(0)
    g = Generator(load_config("tiny").model, vocab_size).eval()
    with torch.no_grad():
        out = g(torch.randn(n, g.cfg.noise_dim), torch.zeros(n, vocab_size))
    return out.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def test_real_faces_fed_as_generated_score_far_below_a_random_generator(faces):
    """The Done-when test: a random G is told apart; real faces in its place are not (about 0.5)."""
    idx = np.arange(len(faces))
    real_train, real_test = idx[:120], idx[120:180]
    real = np.asarray(faces.images)
    stand_ins = real[240:420]                         # other real faces, in the place of generated ones
    random_faces = random_g_faces(len(faces.vocab), 180)
    as_real = realness(real[real_train], real[real_test], stand_ins[:120], stand_ins[120:], SMALL)
    as_random = realness(real[real_train], real[real_test], random_faces[:120], random_faces[120:], SMALL)
    assert as_random["accuracy"] > 0.9
    assert as_real["accuracy"] < 0.7
    assert as_real["log_loss"] > 3 * as_random["log_loss"]
    assert len(as_real["per_seed"]) == 2


def drawn_faces(n: int, seed: int) -> np.ndarray:
    """Flat-shaded 64 px faces, each in colours of its own and a few pixels off centre."""
    rng = np.random.default_rng(seed)
    base = draw_face(64).astype(np.float32)
    faces = [np.roll(base * rng.uniform(0.6, 1.1, 3), tuple(rng.integers(-3, 4, 2)), axis=(0, 1))
             + rng.normal(0, 2, base.shape) for _ in range(n)]
    return np.clip(faces, 0, 255).astype(np.uint8)


def test_shape_realness_sees_the_layout_and_not_the_grain():
    """A dotted checkerboard on every face is told apart at full resolution but not by shape realness; the
    same faces upside down (each pixel's texture as before, the layout wrong) are told apart by it."""
    real, others = drawn_faces(180, seed=1), drawn_faces(180, seed=2)
    sign = np.where(np.add.outer(np.arange(64), np.arange(64)) % 2, 1, -1)[None, :, :, None]
    grainy = np.clip(others + 24 * sign, 0, 255).astype(np.uint8)
    upside_down = np.ascontiguousarray(others[:, ::-1])
    shape = shape_protocol(SMALL)
    assert shape.resolution == 32 and shape.steps == SMALL.steps

    def score(fake: np.ndarray, protocol: Protocol) -> float:
        return realness(real[:120], real[120:], fake[:120], fake[120:], protocol)["accuracy"]

    assert score(grainy, SMALL) > 0.9
    assert score(grainy, shape) < 0.7
    assert score(upside_down, shape) > 0.9


def test_same_faces_same_score(faces):
    real = np.asarray(faces.images)
    args = (real[:40], real[40:60], real[60:100], real[100:120], Protocol(steps=20, seeds=1))
    assert realness(*args) == realness(*args)


def test_a_face_and_its_mirror_twin_stay_on_one_side():
    groups = np.repeat(np.arange(300), 2)             # every face with its twin
    train, test = split_real(groups, Protocol(train_per_class=200, test_per_class=100))
    assert len(train) == 200 and len(test) == 100
    assert not set(groups[train]) & set(groups[test])


def test_bad_input_is_one_line_naming_it():
    ok = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="fake_test must be at least 2 images") as info:
        realness(ok, ok, ok, np.zeros((4, 8, 8)), Protocol(steps=1, seeds=1))
    assert "\n" not in str(info.value)


def test_blind_sheets_number_every_face_and_the_key_tells_which_is_which(tmp_path):
    generated = np.zeros((35, 16, 16, 3), np.uint8)        # black: generated
    real = np.full((35, 16, 16, 3), 255, np.uint8)         # white: real
    key = blind_sheets(generated, real, tmp_path, seed=0)
    assert key["sheets"] == ["sheet_01.png", "sheet_02.png", "sheet_03.png"]     # 30 a sheet
    assert json.loads((tmp_path / "key.json").read_text()) == key
    kinds = [f["kind"] for f in key["faces"]]
    assert kinds.count("generated") == kinds.count("real") == 35
    assert kinds[:10] != sorted(kinds[:10])                 # shuffled, not one kind then the other
    assert [f["number"] for f in key["faces"]] == list(range(1, 71))
    sheets = {name: np.asarray(Image.open(tmp_path / name)) for name in key["sheets"]}
    assert sheets["sheet_01.png"].shape == (5 * (FACE + LABEL), COLS * FACE, 3)
    for face in key["faces"]:                               # the pixels at each number match the key
        r, c = divmod((face["number"] - 1) % 30, COLS)
        y, x = r * (FACE + LABEL) + LABEL + FACE // 2, c * FACE + FACE // 2
        assert sheets[face["sheet"]][y, x].mean() == (0 if face["kind"] == "generated" else 255), face
