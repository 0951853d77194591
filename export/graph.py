"""The ONNX graph of the generator: folded G, then the canvas pixels, exported and simplified.

The page paints `rgba` straight into an ImageData, so the conversion from G's [-1, 1] floats to RGBA
bytes happens inside the graph, in the same arithmetic as `training.grid.to_uint8` (clamp, scale, round).
`image`, the float output before that conversion, is kept for parity checks against PyTorch.

The last step, float to bytes, is a QuantizeLinear (scale 1, zero point 0) rather than the Cast that
`torch.onnx` writes: the same bytes (its input is already rounded and within 0..255), but onnxruntime-web's
Cast from float to uint8 took as long as the whole generator before it (fp32 file, two WASM threads, headless
Chromium: 17-23 ms a face at batch 1 with the Cast, 9-11 with QuantizeLinear;
docs/experiments/2026-12-03-browser-time.md).
"""
from __future__ import annotations

import warnings

import numpy as np
import onnx
from onnx import helper, numpy_helper
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
    proto = program.model_proto      # a fresh serialisation each time it is read: take it once
    bytes_by_quantize(proto)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def bytes_by_quantize(model: onnx.ModelProto) -> None:
    """Replace the Cast that makes `rgba` (float -> uint8) by QuantizeLinear with scale 1 and zero point 0,
    in place: onnxruntime-web runs the Cast slowly (module docstring)."""
    cast = next(n for n in model.graph.node if n.op_type == "Cast" and n.output[0] == "rgba")
    scale, zero = "rgba_scale", "rgba_zero_point"
    model.graph.initializer.extend([numpy_helper.from_array(np.array(1.0, np.float32), scale),
                                    numpy_helper.from_array(np.array(0, np.uint8), zero)])
    cast.CopyFrom(helper.make_node("QuantizeLinear", [cast.input[0], scale, zero], ["rgba"], name="rgba_bytes"))
