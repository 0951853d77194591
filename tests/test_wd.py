"""`kyara data tag --tagger DIR` with a WD v3 Danbooru tagger folder: a small timm model with random weights, saved
in exactly the hub layout (config.json + model.safetensors by timm, selected_tags.csv with the real columns)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from timm.models import save_for_hf

from common.vocab import TagError
from kyara.cli import main
from tagger.tag import tag_folder
from dataset.tagfile import read_tag_file
from tagger.wd import WDTagger, pad_square

SIZE = 32
MODEL_ARGS = {"img_size": SIZE, "depth": 1, "class_token": False, "global_pool": "avg", "fc_norm": False}
# name, category (9 rating, 0 general, 4 character), head bias (the probability is about sigmoid(bias))
TAGS = [
    ("general", 9, 0.0), ("sensitive", 9, 0.0),
    ("1girl", 0, 3.0), ("blonde_hair", 0, 2.0), ("black_hair", 0, 0.0), ("red_eyes", 0, 1.0),
    ("long_hair", 0, -1.0), ("very_long_hair", 0, 1.5), ("smile", 0, -1.0), ("1boy", 0, 0.4),
    ("hair_ribbon", 0, -3.0), ("blush", 4, 4.0),      # a character that happens to be called "blush"
]


def make_wd_folder(folder: Path, head_from_input: bool = False) -> Path:
    """A WD-layout folder. The head's bias sets each tag's probability; with `head_from_input` the head also
    reads the features, so the output depends on the pixels (and their channel order)."""
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=len(TAGS), **MODEL_ARGS)
    with torch.no_grad():
        model.head.weight.mul_(3.0 if head_from_input else 0.0)
        model.head.bias.copy_(torch.tensor([bias for _, _, bias in TAGS]))
    save_for_hf(model, str(folder), model_args=MODEL_ARGS, safe_serialization=True,
                data_config={"input_size": (3, SIZE, SIZE), "interpolation": "bicubic", "crop_pct": 1.0,
                             "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)})
    with open(folder / "selected_tags.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["tag_id", "name", "category", "count"])
        for i, (name, category, _) in enumerate(TAGS):
            writer.writerow([9000 + i, name, category, 1000 - i])
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "selected_tags.csv"]
    return folder


def sigmoid(x: float) -> float:
    return 1 / (1 + np.exp(-x))


def test_danbooru_names_map_to_the_vocabulary(tmp_path):
    tagger = WDTagger(make_wd_folder(tmp_path / "wd"))
    # blush is a character tag here, 1girl is no Kyara tag, hair_ribbon -> ribbon, 1boy -> male
    assert tagger.vocab.tags == ("blonde hair", "black hair", "long hair", "smile", "ribbon", "red eyes", "male")
    probs = tagger.predict([np.zeros((SIZE, SIZE, 3), np.uint8)])[0]
    got = dict(zip(tagger.vocab.tags, probs))
    assert got["long hair"] == pytest.approx(sigmoid(1.5), abs=1e-4)      # the larger of long / very long hair
    assert got["male"] == pytest.approx(sigmoid(0.4), abs=1e-4)
    assert tagger.tags_of(probs[None]) == [["blonde hair", "long hair", "red eyes", "male"]]   # default 0.35


def test_preprocessing_is_white_square_padding_and_bgr(tmp_path):
    tagger = WDTagger(make_wd_folder(tmp_path / "wd", head_from_input=True))
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (20, 48, 3), dtype=np.uint8)         # wide: padded above and below
    square = np.full((48, 48, 3), 255, np.uint8)
    square[14:34] = picture
    np.testing.assert_array_equal(pad_square(picture), square)
    resized = np.asarray(Image.fromarray(square).resize((SIZE, SIZE), Image.Resampling.BICUBIC), np.float32)
    rgb = torch.from_numpy((resized / 255 - 0.5) / 0.5).permute(2, 0, 1)[None]
    with torch.no_grad():
        bgr_logits, rgb_logits = tagger.model(rgb[:, [2, 1, 0]]), tagger.model(rgb)
    def per_tag(logits: torch.Tensor) -> np.ndarray:
        return np.array([logits.sigmoid()[0, cols].max().item() for cols in tagger.columns])
    got = tagger.predict([picture])[0]
    np.testing.assert_allclose(got, per_tag(bgr_logits), atol=2e-3)
    assert np.abs(got - per_tag(rgb_logits)).max() > 0.01     # the channel order matters


def test_kyara_tag_with_a_wd_folder_writes_tags_probabilities_and_thresholds(tmp_path, capsys):
    wd = make_wd_folder(tmp_path / "wd")
    crops = tmp_path / "crops"
    crops.mkdir()
    Image.fromarray(np.full((40, 30, 3), 200, np.uint8)).save(crops / "a.png")
    Image.fromarray(np.full((64, 64, 3), 30, np.uint8)).save(crops / "b.jpg")
    out = tag_folder(crops, tmp_path / "tags.csv", tagger_path=wd)
    lines = out.read_text().splitlines()
    assert lines[0] == ("path,tags,p:blonde hair,p:black hair,p:long hair,p:smile,p:ribbon,p:red eyes,p:male")
    assert read_tag_file(out) == {n: ["blonde hair", "long hair", "red eyes", "male"] for n in ("a.png", "b.jpg")}
    row = next(csv.DictReader(out.open()))
    assert float(row["p:male"]) == pytest.approx(sigmoid(0.4), abs=1e-4)

    assert main(["data", "tag", str(crops), "-o", str(tmp_path / "t2.csv"), "--tagger", str(wd), "--threshold", "0.2",
                 "--tag-threshold", "male=0.7"]) == 0
    assert read_tag_file(tmp_path / "t2.csv")["a.png"] == ["blonde hair", "long hair", "smile", "red eyes"]
    with pytest.raises(TagError, match="unknown tag 'hat'; valid tags: blonde hair"):
        tag_folder(crops, tagger_path=wd, tag_thresholds={"hat": 0.5})
    assert main(["data", "tag", str(crops), "--tagger", str(wd), "--tag-threshold", "blonde hair=0.5"]) == 2
    assert "'blonde hair' is in the exclusive group 'hair colour'" in capsys.readouterr().err


def test_a_folder_that_is_not_a_wd_tagger_is_one_clear_error(tmp_path):
    wd = make_wd_folder(tmp_path / "wd")
    (wd / "selected_tags.csv").write_text("tag_id,name,category,count\n1,blonde_hair,0,5\n")
    with pytest.raises(ValueError, match="the model has 12 outputs but selected_tags.csv lists 1 tags"):
        WDTagger(wd)
    (wd / "selected_tags.csv").write_text("id,tag\n1,blonde_hair\n")
    with pytest.raises(ValueError, match="expected the columns tag_id,name,category,count"):
        WDTagger(wd)
