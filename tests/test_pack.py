"""`kyara pack`: a crop folder + tag file round-trips exactly, and crop -> tag -> pack works end to end."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from faces import canvas_with, draw_face
from kyara.cli import main
from tagger.model import TaggerConfig, TaggerNet, save_tagger
from tagger.tagfile import read_tag_file, write_tag_file
from tagger.vocab import Vocabulary
from training.pack import pack
from training.packed import PackedSet


def test_pack_round_trips_images_and_tags(tmp_path):
    crops = tmp_path / "crops"
    (crops / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    tags = {"a.png": ["silver hair", "red eyes", "smile"], "sub/b.png": ["blue hair", "blue eyes"],
            "c.png": ["blonde hair"]}  # c: eye colour unknown
    images = {}
    for name in tags:
        images[name] = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(images[name]).save(crops / name)
    write_tag_file(crops / "tags.csv", list(tags.items()))

    packed = PackedSet.open(pack(crops, tmp_path / "packed", workers=1))
    names = packed.meta["names"]
    assert sorted(names) == sorted(tags)
    vocab = packed.vocab
    assert vocab == Vocabulary(["silver hair", "blue hair", "blonde hair", "red eyes", "blue eyes", "smile"])
    for i, name in enumerate(names):
        np.testing.assert_array_equal(packed.images[i], images[name])
        on = [t for t, v in zip(vocab.tags, packed.labels[i]) if v == 1]
        assert on == [t for t in vocab.tags if t in tags[name]]
    c = names.index("c.png")
    assert all(packed.labels[c, vocab.index(t)] == -1 for t in vocab.group_of("red eyes").tags)
    assert packed.labels[c, vocab.index("smile")] == 0


def test_crop_tag_pack_end_to_end(tmp_path, capsys):
    pictures, crops = tmp_path / "pictures", tmp_path / "crops"
    pictures.mkdir()
    Image.fromarray(canvas_with(draw_face(130))).save(pictures / "girl.png")
    vocab = Vocabulary(["blue hair", "red hair", "blue eyes", "red eyes"])
    save_tagger(tmp_path / "tagger", TaggerNet("mobilenetv4_conv_small_050", len(vocab)),
                TaggerConfig(vocab.to_json()))

    assert main(["crop", str(pictures), str(crops), "--workers", "1", "--resolution", "128"]) == 0
    assert main(["tag", str(crops), "--tagger", str(tmp_path / "tagger")]) == 0
    assert main(["pack", str(crops), "-o", str(tmp_path / "packed"), "--resolution", "128", "--workers", "1"]) == 0

    record = json.loads((crops / "crops.jsonl").read_text())
    tags = read_tag_file(crops / "tags.csv")
    assert list(tags) == [record["crop"]] and len(tags[record["crop"]]) == 2     # one hair, one eye colour
    packed = PackedSet.open(tmp_path / "packed")
    np.testing.assert_array_equal(packed.images[0], np.asarray(Image.open(crops / record["crop"])))
    assert sorted(t for t, v in zip(packed.vocab.tags, packed.labels[0]) if v == 1) == sorted(tags[record["crop"]])


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main(["crop", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == f"kyara crop: {tmp_path / 'missing'}: input folder not found"
    assert main(["tag", str(tmp_path), "--tagger", str(tmp_path)]) == 2
    assert "no tagger here" in capsys.readouterr().err
