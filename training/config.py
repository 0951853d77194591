"""Training configuration: one dataclass, a few named presets, JSON files and `key=value` overrides.

A run directory keeps the resolved config as `config.json`, so a run can always be started over from it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from training.augment import parse_policy
from training.models import ModelConfig


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

    def to_json(self) -> dict:
        return {**asdict(self), "model": self.model.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known - {"base"}
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        data = {k: v for k, v in data.items() if k in known}
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
    # For tests: seconds on a CPU.
    "tiny": TrainConfig(
        name="tiny",
        model=ModelConfig(resolution=32, noise_dim=16, g_channels=8, g_blocks=1, d_widths=(8, 16), d_blocks=1),
        batch_size=8, steps=20, log_every=1, sample_every=10, ckpt_every=10, keep_last=2, eval_realness=False,
    ),
}


def _coerce(value: str, current: Any) -> Any:
    if isinstance(current, bool):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"expected true/false, got {value!r}")
        return value.lower() in ("true", "1")
    if isinstance(current, tuple):   # "8,16,16"; an empty value is the empty tuple (e.g. g_up_channels' default)
        return tuple(int(v) for v in value.split(",")) if value.strip() else ()
    return type(current)(value)


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply `key=value` strings; `model.g_blocks=8` reaches into the model config."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        target, name = (cfg.model, key[6:]) if key.startswith("model.") else (cfg, key)
        if name not in {f.name for f in fields(target)} or name == "model":
            raise ValueError(f"unknown config key {key!r}")
        try:
            new = replace(target, **{name: _coerce(value, getattr(target, name))})
        except ValueError as exc:
            raise ValueError(f"override {item!r}: {exc}") from None
        cfg = replace(cfg, model=new) if target is cfg.model else new
    return cfg


def load_config(spec: str, overrides: list[str] = ()) -> TrainConfig:
    """A preset name (`paper`, `cpu64`, `tiny`) or a JSON file, optionally `{"base": "cpu64", ...}`."""
    if spec in PRESETS:
        cfg = PRESETS[spec]
    else:
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"config {spec!r} is neither a preset ({', '.join(PRESETS)}) nor a JSON file")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        base_name = data.get("base", "paper")
        if base_name not in PRESETS:
            raise ValueError(f"{path}: base {base_name!r} is not a preset ({', '.join(PRESETS)})")
        base = PRESETS[base_name].to_json()
        model = {**base["model"], **data.pop("model", {})}
        cfg = TrainConfig.from_json({**base, **data, "model": model})
    return apply_overrides(cfg, list(overrides))
