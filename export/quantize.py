"""Quantization of the exported generator ("int8" and "compact" variants), and how far their faces drift from fp32.

"int8":

- Convolutions: static int8, weights per output channel, activations uint8 per tensor (QDQ format, which
  onnxruntime on the CPU and in the browser fuses into integer kernels). Activation ranges are calibrated
  on the inputs the model really gets: standard normal noise and labels drawn from the training priors,
  as the runtime and the page draw them.
- The dense layer (noise + labels -> 16 x 16 map): weight-only 4-bit, one scale per output row. It holds
  over half of G's weights but a tiny share of its arithmetic, so it is worth shrinking, not speeding up;
  at 8 bits the paper's 128 px G cannot fit its 3.8 MB budget (4.3 M weights).
- The output layers stay fp32 (`output_layer`: the last conv, its tanh and, with `chroma_blur`, the fixed
  blur after it): they make the pixels, where 8-bit steps show as banding, and their weights are few.

"compact": the same file size class with fp32 speed. Every weight but the output layers' is stored in few bits
(convolutions int8 per output channel, the dense layer int4 per row) behind a DequantizeLinear, and all the
arithmetic is fp32. The browser's WASM build runs int8 QDQ convolutions slower than fp32 ones (the "int8"
variant took 29.7 ms a face at batch 1 against fp32's 15.7), so the page's file keeps the small weights and
drops the integer arithmetic. The weights are expanded once, when onnxruntime loads the file: its variant
entry in the manifest carries `session_config` (`COMPACT_SESSION_CONFIG`), which both runtimes pass on. Without
it onnxruntime keeps every DequantizeLinear in the graph (it saves them for fusing with quantized kernels) and
runs it on every call.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from export.runtime import open_session, sample_labels

SCHEME = "convs int8 (QDQ, weights per channel, activations uint8), dense layer int4 weight-only, output layers fp32"
COMPACT_SCHEME = "weights only: convs int8 per output channel, dense layer int4 per row, output layers fp32; fp32 arithmetic"
# onnxruntime's session config entry that lets its constant folding turn DequantizeLinear of a stored weight
# into an fp32 weight at load time (by default it keeps them for QDQ fusion and dequantizes on every run).
COMPACT_SESSION_CONFIG = {"session.disable_quant_qdq": "1"}


def generator_inputs(manifest: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    """n (noise, labels) pairs as the page draws them."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, manifest["noise_dim"]), dtype=np.float32)
    return {"noise": noise, "labels": sample_labels(manifest, n, rng)}


class PriorInputs(CalibrationDataReader):
    """Calibration batches of real generator inputs."""

    def __init__(self, manifest: dict, samples: int, batch: int = 16, seed: int = 0):
        data = generator_inputs(manifest, samples, seed)
        self.batches = iter([{k: v[i:i + batch] for k, v in data.items()} for i in range(0, samples, batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)


def dense_layer(model: onnx.ModelProto) -> onnx.NodeProto:
    return next(node for node in model.graph.node if node.op_type == "Gemm")


def output_layer(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The nodes that compute `image` from the last hidden map: the final conv, its tanh and, in a model with
    `chroma_blur`, the fixed blur after it (pad, conv, clip). They stay float: few FLOPs, and every pixel's
    colour depends on them."""
    producer = {out: node for node in model.graph.node for out in node.output}
    after, node = [], producer["image"]
    while node.op_type != "Tanh":
        after.insert(0, node)
        node = producer[node.input[0]]
    return [producer[node.input[0]], node, *after]


def int4_tensor(name: str, values: np.ndarray) -> onnx.TensorProto:
    """An INT4 initializer from integers in [-8, 7], packed two per byte (low nibble first) as ONNX stores it."""
    nibbles = (values.astype(np.int8).ravel() & 0x0F).astype(np.uint8)
    nibbles = np.append(nibbles, np.uint8(0)) if nibbles.size % 2 else nibbles
    packed = nibbles[0::2] | (nibbles[1::2] << 4)
    return helper.make_tensor(name, onnx.TensorProto.INT4, values.shape, packed.tobytes(), raw=True)


def quantize_weight(model: onnx.ModelProto, node: onnx.NodeProto, bits: int) -> None:
    """Replace the weight of a Gemm (out x in) or Conv (out x in x k x k) by `bits`-bit integers (4 or 8) and a
    DequantizeLinear, symmetric with one scale per output row / channel.

    Each row's scale is chosen among clipping ratios of its largest weight to minimise the row's squared
    error: clipping a few outliers buys finer steps for all the other weights.
    """
    initializers = {t.name: t for t in model.graph.initializer}
    weight = initializers[node.input[1]]
    shape = tuple(weight.dims)
    w = numpy_helper.to_array(weight).astype(np.float32).reshape(shape[0], -1)
    top, low = 2 ** (bits - 1) - 1, -2 ** (bits - 1)
    best_scale, best_err = None, None
    for ratio in np.linspace(0.5, 1.0, 11):
        scale = np.maximum(np.abs(w).max(1) * ratio / top, 1e-12)
        err = ((np.clip(np.round(w / scale[:, None]), low, top) * scale[:, None] - w) ** 2).sum(1)
        if best_err is None:
            best_scale, best_err = scale, err
        else:
            better = err < best_err
            best_scale, best_err = np.where(better, scale, best_scale), np.minimum(err, best_err)
    q = np.clip(np.round(w / best_scale[:, None]), low, top).reshape(shape)
    name, suffix = weight.name, f"int{bits}"
    stored = int4_tensor(f"{name}_{suffix}", q) if bits == 4 else numpy_helper.from_array(q.astype(np.int8), f"{name}_{suffix}")
    model.graph.initializer.remove(weight)
    model.graph.initializer.extend([stored, numpy_helper.from_array(best_scale.astype(np.float32), f"{name}_scale")])
    dequantize = helper.make_node("DequantizeLinear", [f"{name}_{suffix}", f"{name}_scale"], [name], axis=0,
                                  name=f"{name}_dequantize")
    nodes = list(model.graph.node)
    nodes.insert(nodes.index(node), dequantize)
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def quantize_compact(fp32_path: str | Path, compact_path: str | Path) -> None:
    """Write the "compact" model of `fp32_path` to `compact_path` (see the module docstring)."""
    model = onnx.load(str(fp32_path))
    kept = {node.output[0] for node in output_layer(model)}
    quantize_weight(model, dense_layer(model), bits=4)
    for node in [n for n in model.graph.node if n.op_type == "Conv" and n.output[0] not in kept]:
        quantize_weight(model, node, bits=8)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(compact_path))


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, manifest: dict, samples: int = 128) -> None:
    """Write the quantized model of `fp32_path` to `int8_path` (see the module docstring)."""
    model = onnx.load(str(fp32_path))
    dense = dense_layer(model)
    # The exporter already stored every tensor's shape, which is what the quantizer's "consider
    # pre-processing" warning (logged on the root logger) is about.
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR
    try:
        quantize_static(
            str(fp32_path), str(int8_path), PriorInputs(manifest, samples),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
            nodes_to_exclude=[node.name for node in [dense, *output_layer(model)]],
        )
    finally:
        root.level = level
    quantized = onnx.load(str(int8_path))
    quantize_weight(quantized, dense_layer(quantized), bits=4)
    onnx.checker.check_model(quantized, full_check=True)
    onnx.save(quantized, str(int8_path))


def psnr(reference_path: str | Path, test_path: str | Path, manifest: dict, n: int = 256, seed: int = 1) -> float:
    """PSNR in dB of the test model's RGB bytes against the reference model's, over n faces drawn from
    the priors (one mean squared error over all pixels)."""
    inputs = generator_inputs(manifest, n, seed)
    outputs = []
    for path in (reference_path, test_path):
        session = open_session(Path(path))
        rgba = np.concatenate([session.run(["rgba"], {k: v[i:i + 32] for k, v in inputs.items()})[0]
                               for i in range(0, n, 32)])
        outputs.append(rgba[..., :3].astype(np.float64))
    mse = float(np.mean((outputs[0] - outputs[1]) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
