"""The DCGAN baseline (Radford et al. 2016) at 64 px: the "blurry, unsatisfactory" model the MakeGirls.moe
write-ups start from, kept so that Kyara's own recipe is always compared with it on the same data and CPU time.

The networks are the paper's (and PyTorch's DCGAN example's): G turns the noise into a 4 x 4 map with one
transposed convolution, then doubles the side with 4 x 4 stride-2 transposed convolutions, halving the channels,
BatchNorm and ReLU between, tanh out; D mirrors it with strided convolutions, LeakyReLU 0.2 and BatchNorm
(none on its first layer), down to one logit. Every weight starts from N(0, 0.02), BatchNorm scales from
N(1, 0.02). Unconditional: G takes the labels every Kyara generator takes and ignores them, and D has no tag
head (it returns None for the tag logits), so the trainer's tag losses are left out.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from training.models import ModelConfig


def dcgan_widths(cfg: ModelConfig) -> tuple[int, ...]:
    """G's channels from its 4 x 4 map up: g_channels * 8, 4, 2, 1 at 64 px (one width per doubling of the side
    to resolution / 2; the last transposed convolution draws RGB at full size)."""
    doublings = cfg.resolution.bit_length() - 1 - 2        # log2(resolution / 4)
    return tuple(cfg.g_channels * 2 ** k for k in reversed(range(doublings)))


def init_dcgan_(module: nn.Module) -> None:
    """The paper's initialisation: every (transposed) convolution from N(0, 0.02), BatchNorm from N(1, 0.02)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


class DCGANGenerator(nn.Module):
    """noise (N, Z) [+ labels (N, T), ignored] -> image (N, 3, R, R) in [-1, 1]."""

    def __init__(self, cfg: ModelConfig, n_tags: int):
        super().__init__()
        self.cfg, self.n_tags = cfg, n_tags
        widths = dcgan_widths(cfg)
        layers: list[nn.Module] = [nn.ConvTranspose2d(cfg.noise_dim, widths[0], 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
        for i, o in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(i, o, 4, 2, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(widths[-1], 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        init_dcgan_(self)

    def tag_axes(self) -> dict[str, tuple[int, int]]:
        """No weight depends on the tags."""
        return {}

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.main(noise.view(len(noise), -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image (N, 3, R, R) [, labels, ignored] -> (real/fake logit (N,), None: no tag head)."""

    # Its BatchNorm must see a real batch and a fake batch apart, as in the paper: over both at once the batch
    # statistics alone tell them apart (D's loss went to 0 within 20 steps while G's did too).
    apart = True

    def __init__(self, cfg: ModelConfig, n_tags: int):
        super().__init__()
        self.cfg, self.n_tags = cfg, n_tags
        widths = cfg.d_widths
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        for i, o in zip(widths, widths[1:]):
            layers += [nn.Conv2d(i, o, 4, 2, 1, bias=False), nn.BatchNorm2d(o), nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)
        init_dcgan_(self)

    def tag_axes(self) -> dict[str, tuple[int, int]]:
        return {}

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        return self.main(images).flatten(), None
