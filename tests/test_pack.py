"""`kyara data pack` and `kyara data tag`: round trips, MLDS tars, face groups and their split, contradicting labels,
decoding like `kyara data crop`, and crop -> tag -> pack end to end."""
from __future__ import annotations

import csv
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from common.crops import CROPS
from common.packed import PackedSet, split_by_group
from common.vocab import Vocabulary
from faces import canvas_with, draw_face, gradient, png_header_only
from kyara.cli import main
from tagger.model import TaggerConfig, TaggerNet, save_tagger
from dataset.tagfile import read_tag_file, write_tag_file
from dataset.crop import crop_folder
from dataset.pack import labels_for, pack


def random_tagger(path: Path, vocab: Vocabulary) -> Path:
    """An untrained tagger: its outputs still depend on the pixels, which is all these tests need."""
    save_tagger(path, TaggerNet("mobilenetv4_conv_small_050", len(vocab)), TaggerConfig(vocab.to_json()))
    return path


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
    random_tagger(tmp_path / "tagger", Vocabulary(["blue hair", "red hair", "blue eyes", "red eyes"]))

    assert main(["data", "crop", str(pictures), str(crops), "--workers", "1", "--resolution", "128"]) == 0
    assert main(["data", "tag", str(crops), "--tagger", str(tmp_path / "tagger")]) == 0
    assert main(["data", "pack", str(crops), "-o", str(tmp_path / "packed"), "--resolution", "128", "--workers", "1"]) == 0

    record = json.loads((crops / "crops.jsonl").read_text())
    tags = read_tag_file(crops / "tags.csv")
    assert list(tags) == [record["crop"]] and len(tags[record["crop"]]) == 2     # one hair, one eye colour
    packed = PackedSet.open(tmp_path / "packed")
    np.testing.assert_array_equal(packed.images[0], np.asarray(Image.open(crops / record["crop"])))
    assert sorted(t for t, v in zip(packed.vocab.tags, packed.labels[0]) if v == 1) == sorted(tags[record["crop"]])


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main(["data", "crop", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == f"kyara data crop: {tmp_path / 'missing'}: input folder not found"
    assert main(["data", "tag", str(tmp_path), "--tagger", str(tmp_path)]) == 2
    assert "no tagger here" in capsys.readouterr().err


def test_pack_reads_an_mlds_tar(tmp_path, capsys):
    rows = {"0": "gray hair aqua eyes", "1": "blue hair gray eyes", "2": "blue hair aqua eyes"}
    rng = np.random.default_rng(0)
    jpegs = {}
    for name in rows:
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
        jpegs[name] = buf.getvalue()
    tar_path = tmp_path / "faces.tar"
    with tarfile.open(tar_path, "w") as tar:
        members = {"extra_data/tags.csv": "".join(f"{k},{v}\n" for k, v in rows.items()).encode()}
        members.update({f"extra_data/images/{k}.jpg": data for k, data in jpegs.items()})
        for name, data in members.items():                       # the tag CSV first, as in ../shared/data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    packed = PackedSet.open(pack(tar_path, tmp_path / "packed", workers=1))
    assert "ignoring tags outside the vocabulary: gray eyes" in capsys.readouterr().err
    vocab, names = packed.vocab, packed.meta["names"]
    assert vocab == Vocabulary(["grey hair", "blue hair", "aqua eyes"])
    label = {name: dict(zip(vocab.tags, packed.labels[i].tolist())) for i, name in enumerate(names)}
    assert label["0"] == {"grey hair": 1, "blue hair": 0, "aqua eyes": 1}
    assert label["1"] == {"grey hair": 0, "blue hair": 1, "aqua eyes": -1}    # gray eyes: eye colour unknown
    for i, name in enumerate(names):
        np.testing.assert_array_equal(packed.images[i], np.asarray(Image.open(io.BytesIO(jpegs[name]))))


def test_mirror_twins_and_duplicates_share_a_face_group_and_a_split(tmp_path):
    crops = tmp_path / "crops"
    crops.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(crops / f"{i}.png")
    Image.fromarray(np.asarray(Image.open(crops / "0.png"))[:, ::-1]).save(crops / "0_mirror.png")
    shutil.copy(crops / "0.png", crops / "0_copy.png")
    names = sorted(p.name for p in crops.iterdir())
    write_tag_file(crops / "tags.csv", [(name, ["blue hair", "red eyes"]) for name in names])

    packed = PackedSet.open(pack(crops, tmp_path / "packed", val_fraction=0.5, workers=1))
    group = dict(zip(packed.meta["names"], packed.meta["group"]))
    split = dict(zip(packed.meta["names"], packed.meta["split"]))
    assert group["0.png"] == group["0_mirror.png"] == group["0_copy.png"]
    assert len(set(group.values())) == 10                                    # the other nine are faces of their own
    assert split["0.png"] == split["0_mirror.png"] == split["0_copy.png"]
    groups = np.array(packed.meta["group"])
    twins = [packed.meta["names"].index(n) for n in ("0.png", "0_mirror.png", "0_copy.png")]
    sides = [split_by_group(groups, 0.5, seed)[twins] for seed in range(20)]
    assert all(side.all() or not side.any() for side in sides)
    assert any(side.all() for side in sides) and not all(side.all() for side in sides)   # both sides happen


def test_two_colours_of_one_exclusive_group_are_unknown(tmp_path, capsys):
    vocab = Vocabulary(["blue hair", "red hair", "blue eyes", "red eyes", "smile"])
    labels, conflicting = labels_for([["blue hair", "red hair", "blue eyes"], ["red hair", "red eyes", "smile"]],
                                     vocab)
    assert conflicting == 1
    assert [dict(zip(vocab.tags, row)) for row in labels.tolist()] == [
        {"blue hair": -1, "red hair": -1, "smile": 0, "blue eyes": 1, "red eyes": 0},
        {"blue hair": 0, "red hair": 1, "smile": 1, "blue eyes": 0, "red eyes": 1}]

    crops = tmp_path / "crops"
    crops.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.random.default_rng(len(name)).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            crops / name)
    write_tag_file(crops / "tags.csv", [("a.png", ["blue hair", "red hair", "blue eyes", "red eyes"]),
                                        ("b.png", ["red hair", "blue eyes"])])
    packed = PackedSet.open(pack(crops, tmp_path / "packed", workers=1))
    warnings = [line for line in capsys.readouterr().err.splitlines() if "exclusive" in line]
    assert warnings == ["kyara data pack: 1 images name two tags of one exclusive or at-most-one group (e.g. two hair "
                        "colours, or long and short hair); that group is stored as unknown for them"]
    assert (packed.labels[packed.meta["names"].index("a.png")] == -1).all()


def test_long_and_short_hair_together_are_unknown(tmp_path, capsys):
    """Hair length is at-most-one: naming neither is a known "off", naming both contradicts itself."""
    vocab = Vocabulary(["red hair", "long hair", "short hair", "smile"])
    labels, conflicting = labels_for([["red hair", "long hair", "short hair", "smile"], ["red hair"],
                                      ["red hair", "short hair"]], vocab)
    assert conflicting == 1
    assert [dict(zip(vocab.tags, row)) for row in labels.tolist()] == [
        {"red hair": 1, "long hair": -1, "short hair": -1, "smile": 1},
        {"red hair": 1, "long hair": 0, "short hair": 0, "smile": 0},
        {"red hair": 1, "long hair": 0, "short hair": 1, "smile": 0}]

    crops = tmp_path / "crops"
    crops.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.random.default_rng(len(name)).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            crops / name)
    write_tag_file(crops / "tags.csv", [("a.png", ["red hair", "long hair", "short hair"]),
                                        ("b.png", ["red hair", "long hair"])])
    packed = PackedSet.open(pack(crops, tmp_path / "packed", workers=1))
    assert "kyara data pack: 1 images name two tags of one exclusive or at-most-one group" in capsys.readouterr().err
    rows = {name: dict(zip(packed.vocab.tags, packed.labels[i].tolist()))
            for i, name in enumerate(packed.meta["names"])}
    assert rows == {"a.png": {"red hair": 1, "long hair": -1, "short hair": -1},
                    "b.png": {"red hair": 1, "long hair": 1, "short hair": 0}}


def tag_rows(path: Path) -> dict[str, list[str]]:
    """The tag CSV's probability columns by image."""
    with open(path, newline="") as f:
        return {row[0]: row[2:] for row in list(csv.reader(f))[1:]}


def test_tag_decodes_like_crop_and_skips_bad_files(tmp_path, capsys):
    crops = tmp_path / "crops"
    crops.mkdir()
    Image.fromarray(gradient()).save(crops / "grey8.png")
    Image.fromarray(gradient().astype(np.uint16) * 257).save(crops / "grey16.png")
    Image.new("RGB", (64, 64), "white").save(crops / "white.png")
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(crops / "clear.png")
    (crops / "bomb.png").write_bytes(png_header_only(20000, 20000))
    tagger = random_tagger(tmp_path / "tagger", Vocabulary(["blue hair", "red hair", "blue eyes", "red eyes"]))

    assert main(["data", "tag", str(crops), "--tagger", str(tagger)]) == 0
    assert "kyara data tag: skipping bomb.png: DecompressionBombError: " in capsys.readouterr().err
    probs = tag_rows(crops / "tags.csv")
    assert sorted(probs) == ["clear.png", "grey16.png", "grey8.png", "white.png"]
    assert probs["grey16.png"] == probs["grey8.png"] and probs["clear.png"] == probs["white.png"]
    assert probs["grey8.png"] != probs["white.png"]                          # the probabilities do see the pixels


def test_tag_skips_crops_of_an_interrupted_picture(tmp_path):
    pictures, crops = tmp_path / "pictures", tmp_path / "crops"
    pictures.mkdir()
    Image.fromarray(canvas_with(draw_face(130))).save(pictures / "girl.png")
    crop_folder(pictures, crops, workers=1)
    finished = json.loads((crops / CROPS).read_text())["crop"]
    # As if killed after writing a second picture's crop and its record, before its done-record.
    shutil.copy(crops / finished, crops / "boy_0.png")
    with open(crops / CROPS, "a") as f:
        f.write(json.dumps({"crop": "boy_0.png", "source": "boy.png"}) + "\n")
    tagger = random_tagger(tmp_path / "tagger", Vocabulary(["blue hair", "red hair"]))

    assert main(["data", "tag", str(crops), "--tagger", str(tagger)]) == 0
    assert list(read_tag_file(crops / "tags.csv")) == [finished]
