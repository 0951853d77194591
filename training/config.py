"""Training configuration: one dataclass, a few named presets, JSON files and `key=value` overrides (loaded as
the tagger's are: `common.config`).

A run directory keeps the resolved config as `config.json`, so a run can always be started over from it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from common import config as common_config
from common.vocab import Vocabulary
from training.augment import parse_policy
from training.models import ModelConfig


def parse_tag_boost(text: str) -> dict[str, float]:
    """"male=8,hat=4" -> {"male": 8.0, "hat": 4.0}; each factor at least 1. The tags are checked against the data
    when training starts."""
    boosts = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        tag, sep, value = item.rpartition("=")
        try:
            factor = float(value)
        except ValueError:
            factor = 0.0
        if not sep or not tag.strip() or not factor >= 1:
            raise ValueError(f"tag_boost must be TAG=FACTOR[,TAG=FACTOR] with factors of at least 1, got {text!r}")
        boosts[tag.strip()] = factor
    return boosts


@dataclass
class TrainConfig:
    name: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    batch_size: int = 64            # per process; torchrun multiplies it by the world size
    steps: int = 100_000
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_adv: float = 0.0         # 0 means "the number of tags", as in the paper
    lambda_gp: float = 0.5
    ema_decay: float = 0.999
    # Recipe switches, off in the presets so that `paper` stays the paper's recipe (configs/ turns them on).
    augment: str = ""               # DiffAugment policy for D's inputs, e.g. "translation,cutout" (training/augment.py)
    gp_every: int = 1               # lazy DRAGAN: the penalty on every k-th step only, weighted by k
    standing_stats: int = 0         # batches that re-estimate G_ema's BatchNorm statistics before it is used
    # Rare tags shown and asked for more often: "male=8" draws real images with `male` on 8x as often and asks G
    # for it 8x as often (at most half the time). A tag on in 1 % of faces is otherwise in a batch of 32 about
    # one step in three, too seldom for G to learn it from fresh label weights. The page's priors stay the data's.
    tag_boost: str = ""
    # Distillation: a trained run (checkpoint or run directory) whose G_ema the new G also copies, face for face
    # (L1 on the same noise and tags), with this weight. How a narrower G for the page learns from a wide one.
    teacher: str = ""
    lambda_teacher: float = 10.0
    seed: int = 0
    log_every: int = 10
    sample_every: int = 500
    ckpt_every: int = 1000
    keep_last: int = 3
    eval_every: int = 0             # 0: no evaluation during training
    eval_samples: int = 500
    eval_realness: bool = True      # the realness classifiers: about a minute, plus a quarter for shape realness,
                                    # per evaluation at 64 px on a CPU
    amp: bool = True                # bf16 autocast, CUDA only
    compile: bool = False           # torch.compile G (pays off on long GPU runs)

    def __post_init__(self) -> None:
        parse_policy(self.augment)
        for name in ("batch_size", "steps", "gp_every", "log_every", "sample_every", "ckpt_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lambda_teacher < 0:
            raise ValueError(f"lambda_teacher must be 0 or more, got {self.lambda_teacher}")
        if self.standing_stats < 0:
            raise ValueError(f"standing_stats must be 0 (off) or a number of batches, got {self.standing_stats}")
        parse_tag_boost(self.tag_boost)

    @property
    def boosts(self) -> dict[str, float]:
        return parse_tag_boost(self.tag_boost)

    def to_json(self) -> dict:
        return {**asdict(self), "model": self.model.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> "TrainConfig":
        data = common_config.known_fields(cls, data)
        data["model"] = ModelConfig(**data.get("model", {}))
        return cls(**data)


PRESETS: dict[str, TrainConfig] = {
    # Jin et al. 2017: 128 px, 64-channel G with 16 residual blocks, batch 64.
    "paper": TrainConfig(),
    # Fits a 2-core CPU: 64 px, a 32-channel G with 8 blocks and a half-width D.
    "cpu64": TrainConfig(
        name="cpu64",
        model=ModelConfig(resolution=64, g_channels=32, g_blocks=8, d_widths=(16, 32, 64, 128, 256), d_blocks=1),
        steps=10_000, sample_every=250, ckpt_every=250, eval_every=1000,
    ),
    # The DCGAN baseline (Radford et al. 2016, training/dcgan.py): the paper's 64 px networks and optimiser,
    # unconditional, plain GAN loss: no tag losses, no DRAGAN penalty, no EMA (G_ema is G).
    "dcgan": TrainConfig(
        name="dcgan",
        model=ModelConfig(family="dcgan", resolution=64, noise_dim=100, g_channels=64, d_widths=(64, 128, 256, 512)),
        batch_size=64, lambda_adv=1.0, lambda_gp=0.0, ema_decay=0.0, sample_every=250, ckpt_every=250,
    ),
    # For tests: seconds on a CPU.
    "tiny": TrainConfig(
        name="tiny",
        model=ModelConfig(resolution=32, noise_dim=16, g_channels=8, g_blocks=1, d_widths=(8, 16), d_blocks=1),
        batch_size=8, steps=20, log_every=1, sample_every=10, ckpt_every=10, keep_last=2, eval_realness=False,
    ),
}


def boosted(boosts: dict[str, float], priors: np.ndarray, labels: np.ndarray, vocab: Vocabulary
            ) -> tuple[np.ndarray, np.ndarray | None]:
    """`tag_boost` applied to a training split: the tag priors G is asked by, and each image's chance of a place
    in a real batch (None: uniform), with each boosted tag `factor` times as frequent (its prior at most 0.5)."""
    if not boosts:
        return priors, None
    unknown = [t for t in boosts if t not in vocab.tags]
    if unknown:
        raise ValueError(f"tag_boost: {', '.join(unknown)} not among the data's tags ({', '.join(vocab.tags)})")
    priors, weights = np.array(priors, dtype=np.float64), np.ones(len(labels))
    for tag, factor in boosts.items():
        col = vocab.index(tag)
        priors[col] = min(0.5, priors[col] * factor)
        weights[labels[:, col] == 1] *= factor
    return priors.astype(np.float32), weights / weights.sum()


def load_config(spec: str, overrides: list[str] = ()) -> TrainConfig:
    """A preset name (`paper`, `cpu64`, `dcgan`, `tiny`) or a JSON file, optionally `{"base": "cpu64", ...}`; then the
    `--set` overrides (`common.config`)."""
    return common_config.load_config(spec, list(overrides), PRESETS, TrainConfig.from_json, default_base="paper")
