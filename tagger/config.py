"""The tagger's training recipe: one dataclass, named presets, JSON files with "base" and `--set` overrides,
loaded as the GAN's are (`common.config`). The data (`--data`, `--labels`) and the machine (`--device`) are
not part of it: one recipe trains on any data, anywhere. `report.json` records the recipe a tagger was made with.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from common import config as common_config


@dataclass(frozen=True)
class TaggerTrainConfig:
    backbone: str = ""              # "" : the --init tagger's, else tagger.model.DEFAULT_BACKBONE
    attribute_backbone: str = ""    # a second trunk for the tags outside the colour groups (tagger.model)
    mouth_backbone: str = ""        # a trunk that reads `mouth_tags` from an enlarged box around the mouth
    mouth_tags: tuple[str, ...] = ("smile",)
    backbone_weights: str = ""      # a local weights file for a timm backbone (nothing is downloaded)
    init: str = ""                  # a tagger folder to start from (its backbone and the head rows it knows)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.05
    oversample: int = 1             # each epoch shows the images labelled by eye this many times
    fractions: tuple[float, ...] = (0.6, 0.2, 0.2)   # labelled-by-eye face groups: train / calibrate / report
    min_positives: int = 0          # leave out tags with fewer positive training images
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "min_positives", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        for name in ("batch_size", "oversample"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if len(self.fractions) != 3 or min(self.fractions) < 0 or not sum(self.fractions) > 0:
            raise ValueError(f"fractions must be three shares (train, calibrate, report), got {self.fractions}")

    def to_json(self) -> dict:
        return {**asdict(self), "mouth_tags": list(self.mouth_tags), "fractions": list(self.fractions)}

    @classmethod
    def from_json(cls, data: dict) -> "TaggerTrainConfig":
        data = common_config.known_fields(cls, data, "tagger config")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


PRESETS: dict[str, TaggerTrainConfig] = {
    "default": TaggerTrainConfig(),
    # For tests: one quick epoch of small batches.
    "tiny": TaggerTrainConfig(epochs=1, batch_size=8),
}


def load_tagger_config(spec: str = "default", overrides: list[str] = ()) -> TaggerTrainConfig:
    """A preset name (`default`, `tiny`) or a JSON file, optionally `{"base": "tiny", ...}`; then `--set`."""
    return common_config.load_config(spec, list(overrides), PRESETS, TaggerTrainConfig.from_json,
                                     default_base="default")
