"""The generator and discriminator of Jin et al. 2017 (SRResNet-style G, residual D), layer by layer.

This is the one place that defines the networks: training, sampling, evaluation and export import them.
Width, depth and resolution come from `ModelConfig`; `ModelConfig()` is the paper's 128 px model.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class ModelConfig:
    resolution: int = 128          # 64, 128 or 256: G upsamples 16x16 by 2 per pixel-shuffle stage
    noise_dim: int = 128
    g_channels: int = 64
    g_blocks: int = 16
    d_widths: tuple[int, ...] = (32, 64, 128, 256, 512)
    d_blocks: int = 2              # residual blocks at each discriminator width

    def __post_init__(self) -> None:
        self.d_widths = tuple(self.d_widths)
        stages = math.log2(self.resolution / 16)
        if self.resolution < 32 or stages != int(stages):
            raise ValueError(f"resolution must be 16 * 2^k (32, 64, 128, 256), got {self.resolution}")
        if self.resolution % 2 ** len(self.d_widths):
            raise ValueError(f"resolution {self.resolution} cannot be halved {len(self.d_widths)} times")

    @property
    def upsample_stages(self) -> int:
        return int(math.log2(self.resolution / 16))

    def to_json(self) -> dict:
        return {**asdict(self), "d_widths": list(self.d_widths)}


class GResBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the identity (SRResNet)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Upsample(nn.Module):
    """conv3x3 to 4x the channels, PixelShuffle x2, BN, ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.shuffle(self.conv(x))))


class Generator(nn.Module):
    """noise (N, Z) + labels (N, T) -> image (N, 3, R, R) in [-1, 1]."""

    def __init__(self, cfg: ModelConfig, n_tags: int):
        super().__init__()
        self.cfg, self.n_tags = cfg, n_tags
        c = cfg.g_channels
        self.fc = nn.Linear(cfg.noise_dim + n_tags, c * 16 * 16)
        self.fc_bn = nn.BatchNorm2d(c)
        self.blocks = nn.Sequential(*[GResBlock(c) for _ in range(cfg.g_blocks)])
        self.blocks_bn = nn.BatchNorm2d(c)
        self.upsample = nn.Sequential(*[Upsample(c) for _ in range(cfg.upsample_stages)])
        self.to_rgb = nn.Conv2d(c, 3, 9, padding=4)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = self.fc(torch.cat([noise, labels], dim=1)).view(-1, self.cfg.g_channels, 16, 16)
        # channels_last follows from here when the weights are channels_last (4x faster convs on CPU).
        x = torch.relu(self.fc_bn(x.contiguous(memory_format=torch.channels_last)))
        x = x + torch.relu(self.blocks_bn(self.blocks(x)))   # the long skip over all residual blocks
        return torch.tanh(self.to_rgb(self.upsample(x)))


class DResBlock(nn.Module):
    """conv3x3-LeakyReLU-conv3x3 plus the identity, then LeakyReLU (no normalisation: DRAGAN's penalty)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class Discriminator(nn.Module):
    """image (N, 3, R, R) -> (real/fake logit (N,), tag logits (N, T))."""

    def __init__(self, cfg: ModelConfig, n_tags: int):
        super().__init__()
        self.cfg, self.n_tags = cfg, n_tags
        layers: list[nn.Module] = []
        in_channels = 3
        for width in cfg.d_widths:
            layers += [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            layers += [DResBlock(width) for _ in range(cfg.d_blocks)]
            in_channels = width
        self.features = nn.Sequential(*layers)
        side = cfg.resolution // 2 ** len(cfg.d_widths)
        self.adv_head = nn.Linear(in_channels * side * side, 1)
        self.tag_head = nn.Linear(in_channels * side * side, n_tags)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(images).flatten(1)
        return self.adv_head(h).squeeze(1), self.tag_head(h)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
