"""Tagger backbones: timm's by name, and Kyara's own plain full-resolution CNN.

Why a plain CNN of our own: timm's small ImageNet backbones (MobileNet, ResNet) halve the resolution twice or
more before their first real features, because they were made for 224 px photographs. A 64 px anime face's
mouth is then a pixel or two wide, and a tagger built on one learns hair colour and length but ranks smile and
blush hardly better than chance. Four VGG-style blocks whose first block sees the full 64 px, trained on about
three quarters of the 1,500 annotated faces, reach average precision 0.78 for smile and blush on the rest, where
MobileNetV4 (even on inputs upsampled to 128 px) stays at 0.49-0.58 (`tagger/weights/README.md`).

`create_backbone(name)` is the one door: a name of `PLAIN` (e.g. `kyara_plain_32`) builds the plain CNN at that
first width, any other name is handed to `timm.create_model` (never pretrained: nothing is downloaded).
"""
from __future__ import annotations

import timm
from torch import nn

PLAIN = {"kyara_plain_16": 16, "kyara_plain_32": 32}


def _block(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3x3 convolutions at one resolution, then a 2x2 max pool."""
    layers: list[nn.Module] = []
    for a, b in ((c_in, c_out), (c_out, c_out)):
        layers += [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


class PlainCNN(nn.Module):
    """Four blocks of widths w, 2w, 4w, 4w (the first at full resolution), global average pool, dropout.

    Like a timm backbone built with `num_classes=0`, it returns pooled features and says their width in
    `num_features`.
    """

    def __init__(self, width: int = 32, dropout: float = 0.3):
        super().__init__()
        widths = (width, 2 * width, 4 * width, 4 * width)
        self.blocks = nn.Sequential(*[_block(a, b) for a, b in zip((3,) + widths[:-1], widths)])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))
        self.num_features = widths[-1]

    def forward(self, x):
        return self.pool(self.blocks(x))


def create_backbone(name: str) -> nn.Module:
    """A backbone that maps images to pooled features (see the module docstring for the names)."""
    if name in PLAIN:
        return PlainCNN(PLAIN[name])
    return timm.create_model(name, pretrained=False, num_classes=0)
