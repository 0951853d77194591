"""A pretrained Danbooru tagger of the WD v3 family, for users who have one (`kyara data tag --tagger DIR`).

SmilingWolf's WD taggers v3 (`SmilingWolf/wd-vit-tagger-v3`, `wd-convnext-tagger-v3`, `wd-swinv2-tagger-v3`,
...) are timm models. A hub download (`hf download SmilingWolf/wd-vit-tagger-v3 --local-dir DIR`) leaves
`config.json` (timm architecture, model arguments and `pretrained_cfg`), `model.safetensors` and
`selected_tags.csv` (`tag_id,name,category,count`; category 0 general tags, 4 characters, 9 ratings).
Nothing is downloaded here: timm reads the folder (`local-dir:`).

Preprocessing, as the models' reference code runs them (neggles/wdv3-timm, with the model author's fix of
the channel order, neggles/wdv3-timm#1): transparency laid on white, the picture padded to a square with
white (centred), then timm's evaluation transform from the folder's `pretrained_cfg` (resize to its input
size with its interpolation, scale to [0, 1], normalise with its mean and std), then RGB -> BGR: the models
were trained on BGR input. The outputs are logits; a sigmoid gives each tag's probability.

Danbooru names map to the vocabulary by spelling (`blonde_hair` -> `blonde hair`, `grey_hair`, `twintails`,
`open_mouth`, ...) plus `DANBOORU_EXTRA` (`very_long_hair` is long hair, `1boy` and `male_focus` are male).
Where several names map to one tag, the tag's probability is the largest of theirs. Colours stay exclusive
groups (the likeliest colour is the face's colour); every other tag is on at or above its threshold.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config

from common.vocab import TAGS, Vocabulary
from tagger.model import tags_from_probabilities

WD_FILES = ("config.json", "model.safetensors", "selected_tags.csv")
GENERAL = "0"   # selected_tags.csv category of general tags
# The reference code's default threshold for general tags (the model cards give the threshold where
# precision equals recall over all tags, 0.26-0.27 for the v3 models).
DEFAULT_THRESHOLD = 0.35
DANBOORU_EXTRA: dict[str, str] = {
    "very_long_hair": "long hair",
    "absurdly_long_hair": "long hair",
    "very_short_hair": "short hair",
    "twin_drills": "drill hair",
    "hair_ribbon": "ribbon",
    "neck_ribbon": "ribbon",
    "hair_bow": "ribbon",          # the annotators' rule: "a ribbon or bow in the hair or at the collar"
    "1boy": "male",
    "male_focus": "male",
}
DANBOORU: dict[str, str] = {**{tag.replace(" ", "_"): tag for tag in TAGS}, **DANBOORU_EXTRA}


def is_wd_folder(path: str | Path) -> bool:
    """Whether `path` is a folder laid out as a WD tagger's hub download."""
    return all((Path(path) / name).is_file() for name in WD_FILES)


def pad_square(image: np.ndarray) -> np.ndarray:
    """The picture centred on a white square as wide as its longer side (uint8 H x W x 3)."""
    h, w = image.shape[:2]
    size = max(h, w)
    out = np.full((size, size, 3), 255, np.uint8)
    top, left = (size - h) // 2, (size - w) // 2
    out[top:top + h, left:left + w] = image
    return out


def read_selected_tags(path: Path) -> dict[str, list[int]]:
    """Vocabulary tag -> the output columns of the Danbooru general tags that mean it."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"name", "category"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: expected the columns tag_id,name,category,count; "
                             f"missing {', '.join(sorted(missing))}")
        columns: dict[str, list[int]] = {}
        for i, row in enumerate(reader):
            tag = DANBOORU.get(row["name"])
            if tag is not None and row["category"].strip() == GENERAL:
                columns.setdefault(tag, []).append(i)
    return columns


class WDTagger:
    """A WD v3 tagger over the vocabulary tags it knows; used like `tagger.model.Tagger` by `kyara data tag`."""

    def __init__(self, folder: str | Path, device: str = "cpu", threshold: float = DEFAULT_THRESHOLD):
        folder = Path(folder)
        missing = [name for name in WD_FILES if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{folder}: not a WD tagger folder (missing {', '.join(missing)})")
        columns = read_selected_tags(folder / "selected_tags.csv")
        if not columns:
            raise ValueError(f"{folder}/selected_tags.csv: none of its general tags is a Kyara tag")
        self.model = timm.create_model(f"local-dir:{folder}", pretrained=True).to(device).eval()
        n_out = self.model.num_classes
        with open(folder / "selected_tags.csv", newline="", encoding="utf-8") as f:
            n_tags = sum(1 for _ in csv.DictReader(f))
        if n_out != n_tags:
            raise ValueError(f"{folder}: the model has {n_out} outputs but selected_tags.csv lists {n_tags} tags")
        self.vocab = Vocabulary(columns)
        self.columns = [columns[t] for t in self.vocab.tags]
        self.thresholds = {t: threshold for g in self.vocab.groups if not g.exclusive for t in g.tags}
        self.transform = create_transform(**resolve_data_config(self.model.pretrained_cfg, model=self.model))
        self.device = device

    # `kyara data tag` hands `predict` whole pictures: `preprocess` pads and resizes them as the model expects.
    load_size = None

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 H x W x 3 RGB pictures (any sizes) -> the model's input: padded, timm's transform, BGR."""
        x = torch.stack([self.transform(Image.fromarray(pad_square(np.asarray(im)))) for im in images])
        return x[:, [2, 1, 0]].to(self.device)

    @torch.no_grad()
    def predict(self, images: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """Probabilities, N x T in vocabulary order (each tag: the largest of its Danbooru tags' sigmoids)."""
        out = []
        for start in range(0, len(images), batch_size):
            probs = self.model(self.preprocess(images[start:start + batch_size])).float().sigmoid().cpu().numpy()
            out.append(np.stack([probs[:, cols].max(1) for cols in self.columns], axis=1))
        return np.concatenate(out) if out else np.zeros((0, len(self.vocab)), np.float32)

    def tags_of(self, probs: np.ndarray) -> list[list[str]]:
        return tags_from_probabilities(probs, self.vocab, self.thresholds)
