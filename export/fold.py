"""BatchNorm folding: an eval-mode generator with every foldable BatchNorm merged into the layer before it.

In eval mode a BatchNorm is a per-channel affine y = s * x + t (s = gamma / sqrt(var + eps),
t = beta - s * mean). When it directly follows a linear layer, scaling that layer's output rows by s and
adding t to its bias gives the same function with one op fewer in the graph, and keeps the int8 model
from quantizing a tensor that only exists between the two. Folded here:

- `fc_bn` into `fc`: fc's output feature c * 256 + p is channel c at pixel p of the 16 x 16 map;
- both BatchNorms of each residual block into the conv before it;
- each upsampling stage's BatchNorm into its conv: after a PixelShuffle(2), which moves conv channel
  c * 4 + k to channel c, rows c*4 .. c*4+3 take s[c], t[c]; after a nearest resize, row c takes s[c], t[c].

`blocks_bn` follows a residual sum, not a linear layer, so it stays (an affine per channel).
The folded copy reuses `Generator.forward` unchanged: folded BatchNorms become `nn.Identity`.

The truncation of the noise is folded the same way (`fold_truncation`): G(psi * z) is fc's noise columns
scaled by psi, so a truncated model costs nothing at run time and still takes standard normal noise.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from training.models import Generator


def _affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The eval-mode BatchNorm as (scale, shift) per channel."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - scale * bn.running_mean


def _fold_into(layer: nn.Conv2d | nn.Linear, scale: torch.Tensor, shift: torch.Tensor) -> None:
    """layer(x) * scale + shift, per output row of `layer`, written into its weight and bias."""
    shape = (-1,) + (1,) * (layer.weight.dim() - 1)
    layer.weight.copy_(layer.weight * scale.view(shape))
    layer.bias.copy_(layer.bias * scale + shift)


@torch.no_grad()
def fold_batchnorm(generator: Generator) -> Generator:
    """A folded copy of `generator` (which is left untouched), in eval mode."""
    g = copy.deepcopy(generator).float().eval()
    side = 16 * 16   # fc produces a 16 x 16 map per channel, as Generator.forward views it
    scale, shift = _affine(g.fc_bn)
    _fold_into(g.fc, scale.repeat_interleave(side), shift.repeat_interleave(side))
    g.fc_bn = nn.Identity()
    for block in g.blocks:
        body = block.body   # conv, BN, ReLU, conv, BN
        for conv_i, bn_i in ((0, 1), (3, 4)):
            _fold_into(body[conv_i], *_affine(body[bn_i]))
            body[bn_i] = nn.Identity()
    for stage in g.upsample:
        factor = stage.conv.out_channels // stage.bn.num_features   # 4 after a PixelShuffle(2), 1 after a resize
        scale, shift = _affine(stage.bn)
        _fold_into(stage.conv, scale.repeat_interleave(factor), shift.repeat_interleave(factor))
        stage.bn = nn.Identity()
    # Generator.forward puts the map in channels_last for speed; the weights must be contiguous for export.
    return g.to(memory_format=torch.contiguous_format)


@torch.no_grad()
def fold_truncation(generator: Generator, psi: float) -> Generator:
    """A copy of `generator` that computes G(psi * noise, labels), with psi in fc's noise columns.

    Why truncate: noise far from 0 is where G is least trained, and those faces are the melted ones; drawing
    the noise in towards 0 (psi < 1) trades a little variety for far fewer broken faces, as BigGAN's and
    StyleGAN's truncation tricks do. The colours and attributes come from the labels, so they are untouched.
    """
    if not 0 < psi <= 1:
        raise ValueError(f"truncation must be above 0 and at most 1, got {psi}")
    g = copy.deepcopy(generator)
    g.fc.weight[:, :g.cfg.noise_dim] *= psi
    return g
