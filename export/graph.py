"""The ONNX graph of the generator: folded G, then the canvas pixels, exported and simplified.

The page paints `rgba` straight into an ImageData, so the conversion from G's [-1, 1] floats to RGBA
bytes happens inside the graph, in the same arithmetic as `training.grid.to_uint8` (clamp, scale, round).
`image`, the float output before that conversion, is kept for parity checks against PyTorch.
"""
from __future__ import annotations

import warnings

import onnx
import torch
import torch.nn.functional as F
from torch import nn

from export.fold import fold_batchnorm
from training.models import Generator

OPSET = 21   # the first opset with 4-bit DequantizeLinear, used by the int8 model's dense layer
INPUTS = ("noise", "labels")
OUTPUTS = ("rgba", "image")


class CanvasGenerator(nn.Module):
    """(noise, labels) -> (rgba uint8 N x H x W x 4 with alpha 255, image float32 N x 3 x H x W)."""

    def __init__(self, generator: Generator):
        super().__init__()
        self.generator = fold_batchnorm(generator)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.generator(noise, labels)
        rgb = image.clamp(-1, 1).add(1).mul(127.5).round()
        rgba = F.pad(rgb, (0, 0, 0, 0, 0, 1), value=255.0)       # a fourth channel, all 255
        return rgba.permute(0, 2, 3, 1).to(torch.uint8), image


def export_onnx(generator: Generator) -> onnx.ModelProto:
    """Export G (eval mode, BatchNorm folded) with a dynamic batch axis.

    `optimize=True` runs the onnxscript optimizer (constant folding, dead-code and redundant-op removal);
    running it again changes nothing, and onnxsim is not a dependency we take.
    """
    model = CanvasGenerator(generator).eval()
    n_tags, noise_dim = generator.n_tags, generator.cfg.noise_dim
    example = (torch.randn(2, noise_dim), torch.zeros(2, n_tags))
    batch = torch.export.Dim("N", min=1)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*axis name: N will not be used")  # both inputs share N
        program = torch.onnx.export(
            model, example, input_names=list(INPUTS), output_names=list(OUTPUTS), opset_version=OPSET,
            dynamo=True, external_data=False, verbose=False, dynamic_shapes=({0: batch}, {0: batch}),
            optimize=True,
        )
    onnx.checker.check_model(program.model_proto, full_check=True)
    return program.model_proto
