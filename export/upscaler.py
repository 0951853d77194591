"""waifu2x's anime-style upscalers as Kyara models: `kyara upscaler convert WHEEL -o models/upscaler-waifu2x`.

The `waifu2x` package on PyPI (a port of waifu2x-chainer, MIT) ships its trained networks as plain `.npz`
arrays inside its wheel. This module reads those arrays straight from the wheel (no Chainer, nothing
installed), rebuilds the network as an ONNX graph from its published description, and writes a model folder
in the style of `kyara export`: the graph, a "compact" copy with int8 weights, `manifest.json` (also inside
each file), and the licence.

The graph takes what the generator gives, so the two chain with no glue in any language:

    rgba  uint8 [N, H, W, 4]  ->  rgba  uint8 [N, 2H, 2W, 4]   (alpha ignored on the way in, 255 on the way out)
                              ->  image float32 [N, 3, 2H, 2W] in [0, 1]  (for parity checks)

Inside: RGB / 255, the edge padding the network's valid convolutions eat (7 px for UpConv7, 13 for
UpResNet10), the network, clip to [0, 1], x 255, round half to even, bytes. x4 is the graph applied twice.

The two architectures, as waifu2x describes them (all convolutions 3x3 with no padding, leaky ReLU 0.1):
- UpConv7: six convolutions 3-16-32-64-128-256-256, then a 4x4 transposed convolution of stride 2 and
  padding 3 down to RGB (no bias).
- UpResNet10: a convolution to 64 channels, five residual blocks (two convolutions, a squeeze-and-excitation
  gate 64-16-64 on their mean, the block's input cropped by 2 px added), a third convolution plus the first
  one's output cropped by 11 px, then the same transposed convolution.

A third family member is made here rather than read: a small UpConv network distilled from a converted folder
(`export.distill`, `kyara upscaler distill`), written by the same `write_folder` through `student_source`.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from common.files import atomic_path, write_text_atomic
from export.manifest import MANIFEST_FILE, embed_manifest, with_hashes
from export.quantize import COMPACT_SESSION_CONFIG, quantize_weight

FORMAT = "kyara-upscaler/1"
OPSET = 21
IR_VERSION = 10    # the IR of opset 21, which onnxruntime-web 1.30 reads (the installed onnx writes a newer one)
SLOPE = 0.1
FILES = {"fp32": "upscaler.onnx", "compact": "upscaler.compact.onnx"}
LICENSE_FILE = "LICENSE.waifu2x.md"
COMPACT_SCHEME = "weights only: the six 3x3 convolutions int8 per output channel, the last layer fp32; fp32 arithmetic"
# The wheel's models: <arch>/anime_style_[noise<k>_]scale_rgb.npz. The other files (vgg7/, resnet10/, *_y.npz)
# are denoisers or work on luma only, and are refused.
MODEL_NAME = re.compile(r"^(upconv7|upresnet10)/anime_style_(?:noise([0-3])_)?scale_rgb$")


@dataclass(frozen=True)
class Architecture:
    """What sets one waifu2x network apart: its arrays (name -> shape) and the edge padding it eats."""

    name: str
    title: str
    padding: int
    shapes: dict[str, tuple[int, ...]]


def _conv(name: str, c_in: int, c_out: int, bias: bool = True) -> dict[str, tuple[int, ...]]:
    return {f"{name}/W": (c_out, c_in, 3, 3), **({f"{name}/b": (c_out,)} if bias else {})}


def upconv_architecture(channels: tuple[int, ...], name: str, title: str) -> Architecture:
    """The UpConv family: 3x3 convolutions through `channels` (starting at 3), then the transposed convolution
    to RGB. Its valid convolutions eat one pixel a side each and the transposed one two more at the output
    (2 (H + 2p - 2c) - 4 = 2H), so the input is padded by c + 1."""
    shapes = {k: v for i, (a, b) in enumerate(zip(channels, channels[1:]), 1) for k, v in _conv(f"conv{i}", a, b).items()}
    shapes[f"conv{len(channels)}/W"] = (channels[-1], 3, 4, 4)
    return Architecture(name, title, len(channels), shapes)


_UPRESNET10 = {**_conv("conv_pre", 3, 64), **_conv("conv_bridge", 64, 64), "conv_post/W": (64, 3, 4, 4)}
for _i in range(1, 6):
    _UPRESNET10.update({**_conv(f"res{_i}/conv1", 64, 64), **_conv(f"res{_i}/conv2", 64, 64),
                        f"res{_i}/fc1/W": (16, 64), f"res{_i}/fc1/b": (16,),
                        f"res{_i}/fc2/W": (64, 16), f"res{_i}/fc2/b": (64,)})

ARCHITECTURES = {
    "upconv7": upconv_architecture((3, 16, 32, 64, 128, 256, 256), "upconv7", "UpConv7"),
    "upresnet10": Architecture("upresnet10", "UpResNet10", 13, _UPRESNET10),
}


@dataclass(frozen=True)
class Source:
    """One network read from the wheel: its arrays, where they came from, and the wheel's licence text."""

    arch: Architecture
    model: str                  # e.g. "upconv7/anime_style_noise1_scale_rgb"
    noise_level: int | None     # the denoising level it was trained with (None: none)
    weights: dict[str, np.ndarray]
    package: dict
    license_text: str
    # A network this repository trained rather than read from the wheel (`student_source`) names itself, and
    # says in its own words where its weights came from; "" for the wheel's networks.
    name: str = ""
    version: str = ""
    notice: str = ""


def read_wheel(wheel: str | Path, model: str) -> Source:
    """The arrays of `model` ("upconv7/anime_style_scale_rgb") from a waifu2x wheel, checked against the
    architecture's expected names and shapes. Anything else is a ValueError naming what is wrong."""
    wheel = Path(wheel)
    match = MODEL_NAME.match(model.removesuffix(".npz"))
    if not match:
        raise ValueError(f"--model {model!r}: not a waifu2x x2 RGB anime model this converter knows; use "
                         "upconv7/ or upresnet10/ with anime_style_scale_rgb or anime_style_noise0..3_scale_rgb")
    model = model.removesuffix(".npz")
    arch = ARCHITECTURES[match.group(1)]
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{wheel}: not a wheel (zip) file ({exc})") from None
    with archive:
        names = archive.namelist()
        metadata_name = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
        if metadata_name is None:
            raise ValueError(f"{wheel}: a zip file without .dist-info/METADATA, not a wheel")
        metadata = HeaderParser().parsestr(archive.read(metadata_name).decode("utf-8", "replace"))
        if metadata.get("Name", "").lower() != "waifu2x":
            raise ValueError(f"{wheel}: a wheel of {metadata.get('Name')!r}, not of waifu2x")
        npz_name = f"waifu2x/models/{model}.npz"
        if npz_name not in names:
            raise ValueError(f"{wheel}: has no {npz_name}")
        license_name = next((n for n in names if re.search(r"\.dist-info/LICEN[CS]E", n)), None)
        if license_name is None:
            raise ValueError(f"{wheel}: has no licence file in its .dist-info; refusing to convert weights "
                             "whose licence cannot be shipped with them")
        npz_bytes = archive.read(npz_name)
        license_text = archive.read(license_name).decode("utf-8")
    try:
        with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as arrays:
            weights = {name: arrays[name].astype(np.float32) for name in arrays.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{wheel}: {npz_name} is not a readable .npz ({exc})") from None
    got = {name: tuple(w.shape) for name, w in weights.items()}
    if got != arch.shapes:
        missing = sorted(set(arch.shapes) - set(got))
        odd = sorted(n for n in got if n in arch.shapes and got[n] != arch.shapes[n])
        extra = sorted(set(got) - set(arch.shapes))
        raise ValueError(f"{wheel}: {npz_name} is not the {arch.title} network described in export/upscaler.py "
                         f"(missing {missing}, wrong shapes {odd}, unknown {extra})")
    package = {"name": "waifu2x", "version": metadata.get("Version"), "file": npz_name,
               "sha256": hashlib.sha256(npz_bytes).hexdigest(), "license": "MIT"}
    noise = match.group(2)
    return Source(arch, model, None if noise is None else int(noise), weights, package, license_text)


class _Graph:
    """A few helpers to write the network as ONNX nodes, naming every tensor after the waifu2x array."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def conv(self, x: str, layer: str, relu: bool = True) -> str:
        inputs = [x, self.const(f"{layer}/W", self.weights[f"{layer}/W"])]
        if f"{layer}/b" in self.weights:
            inputs.append(self.const(f"{layer}/b", self.weights[f"{layer}/b"]))
        y = self.node("Conv", inputs, f"{layer}/out", kernel_shape=[3, 3])
        return self.node("LeakyRelu", [y], f"{layer}/act", alpha=SLOPE) if relu else y

    def crop(self, x: str, px: int, name: str) -> str:
        """x without `px` pixels on each side (H and W)."""
        starts = self.const(f"{name}/starts", np.array([px, px], np.int64))
        ends = self.const(f"{name}/ends", np.array([-px, -px], np.int64))
        axes = self.const(f"{name}/axes", np.array([2, 3], np.int64))
        return self.node("Slice", [x, starts, ends, axes], name)

    def dense(self, x: str, layer: str) -> str:
        """waifu2x's Linear: W is out x in, so y = x W^T + b."""
        return self.node("Gemm", [x, self.const(f"{layer}/W", self.weights[f"{layer}/W"]),
                                  self.const(f"{layer}/b", self.weights[f"{layer}/b"])], f"{layer}/out", transB=1)

    def upsample(self, x: str, layer: str) -> str:
        """The 4x4 transposed convolution of stride 2 and padding 3 (no bias) that makes the RGB output."""
        return self.node("ConvTranspose", [x, self.const(f"{layer}/W", self.weights[f"{layer}/W"])],
                         f"{layer}/out", kernel_shape=[4, 4], strides=[2, 2], pads=[3, 3, 3, 3])


def _upconv(g: _Graph, x: str) -> str:
    layers = sum(name.endswith("/W") for name in g.weights)
    for i in range(1, layers):
        x = g.conv(x, f"conv{i}")
    return g.upsample(x, f"conv{layers}")


def _upresnet10(g: _Graph, x: str) -> str:
    bridge = x = g.conv(x, "conv_pre")
    for i in range(1, 6):
        block = f"res{i}"
        h = g.conv(g.conv(x, f"{block}/conv1"), f"{block}/conv2")
        mean = g.node("Flatten", [g.node("GlobalAveragePool", [h], f"{block}/mean4d")], f"{block}/mean")
        gate = g.node("Sigmoid", [g.dense(g.node("Relu", [g.dense(mean, f"{block}/fc1")], f"{block}/fc1/act"),
                                          f"{block}/fc2")], f"{block}/gate")
        gate = g.node("Unsqueeze", [gate, g.const(f"{block}/gate_axes", np.array([2, 3], np.int64))],
                      f"{block}/gate4d")
        x = g.node("Add", [g.node("Mul", [h, gate], f"{block}/gated"), g.crop(x, 2, f"{block}/skip")],
                   f"{block}/out")
    x = g.node("Add", [g.conv(x, "conv_bridge"), g.crop(bridge, 11, "bridge_skip")], "bridge_out")
    return g.upsample(x, "conv_post")


NETWORKS = {"upconv7": _upconv, "upresnet10": _upresnet10, "student": _upconv}


def build_graph(source: Source) -> onnx.ModelProto:
    """The upscaler's ONNX graph (module docstring): canvas bytes in, canvas bytes at twice the size out."""
    g = _Graph(source.weights)
    if set(source.weights) != set(source.arch.shapes):
        raise ValueError(f"{source.model}: the arrays are not those of {source.arch.title}")
    pad = source.arch.padding
    rgb = g.node("Slice", ["rgba_in", g.const("rgb_start", np.array([0], np.int64)),
                           g.const("rgb_end", np.array([3], np.int64)), g.const("rgb_axis", np.array([3], np.int64))],
                 "rgb_bytes")
    x = g.node("Div", [g.node("Cast", [rgb], "rgb_float", to=TensorProto.FLOAT), g.const("byte_max", np.array(255.0, np.float32))],
               "rgb_unit")
    x = g.node("Transpose", [x], "input_nchw", perm=[0, 3, 1, 2])
    x = g.node("Pad", [x, g.const("input_pads", np.array([0, 0, pad, pad, 0, 0, pad, pad], np.int64))],
               "input_padded", mode="edge")
    y = NETWORKS[source.arch.name](g, x)
    image = g.node("Clip", [y, g.const("zero", np.array(0.0, np.float32)), g.const("one", np.array(1.0, np.float32))],
                   "image")
    out = g.node("Round", [g.node("Mul", [image, "byte_max"], "image_scaled")], "image_rounded")
    out = g.node("Transpose", [out], "output_nhwc", perm=[0, 2, 3, 1])
    out = g.node("Pad", [out, g.const("alpha_pads", np.array([0, 0, 0, 0, 0, 0, 0, 1], np.int64)), "byte_max"],
                 "output_rgba_float", mode="constant")
    g.node("QuantizeLinear", [out, g.const("rgba_scale", np.array(1.0, np.float32)),
                              g.const("rgba_zero_point", np.array(0, np.uint8))], "rgba")
    graph = helper.make_graph(
        g.nodes, f"waifu2x-{source.arch.name}",
        [helper.make_tensor_value_info("rgba_in", TensorProto.UINT8, ["N", "H", "W", 4])],
        [helper.make_tensor_value_info("rgba", TensorProto.UINT8, ["N", "H2", "W2", 4]),
         helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H2", "W2"])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="kyara",
                              ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model


def build_manifest(source: Source, default: str) -> dict:
    """The upscaler's manifest without hash fields (`export.manifest.with_hashes` adds them)."""
    noise = "none" if source.noise_level is None else str(source.noise_level)
    return {
        "format": FORMAT,
        "name": source.name or f"waifu2x-{source.arch.name}-anime-noise{noise}",
        "version": source.version or f"{source.package['name']}-{source.package['version']}",
        "file": FILES[default],
        "scale": 2,
        "architecture": source.arch.title,
        "noise_level": source.noise_level,
        "weights": int(sum(w.size for w in source.weights.values())),
        "input_padding": {"pixels": source.arch.padding, "mode": "edge"},
        "inputs": [{"name": "rgba_in", "dtype": "uint8", "shape": ["N", "H", "W", 4],
                    "layout": "NHWC, RGBA (alpha ignored): a generator's rgba output or any canvas ImageData"}],
        "outputs": [
            {"name": "rgba", "dtype": "uint8", "shape": ["N", "2H", "2W", 4], "layout": "NHWC, RGBA, alpha 255"},
            {"name": "image", "dtype": "float32", "shape": ["N", 3, "2H", "2W"], "layout": "NCHW, RGB",
             "range": [0.0, 1.0], "use": "before rounding to bytes: for parity checks"},
        ],
        "variants": [{"file": FILES["fp32"], "precision": "fp32"},
                     {"file": FILES["compact"], "precision": "compact", "quantization": compact_scheme(source.arch),
                      "session_config": dict(COMPACT_SESSION_CONFIG)}],
        "source": {**source.package, "model": source.model},
        "license": {"name": "MIT", "file": LICENSE_FILE},
    }


def compact_scheme(arch: Architecture) -> str:
    """The manifest's words for the compact copy: the wheel's networks keep the words they were shipped with."""
    if arch.name != "student":
        return COMPACT_SCHEME
    convs = sum(len(shape) == 4 and shape[2:] == (3, 3) for shape in arch.shapes.values())
    return f"weights only: the {convs} 3x3 convolutions int8 per output channel, the last layer fp32; fp32 arithmetic"


def quantize_compact(model: onnx.ModelProto) -> onnx.ModelProto:
    """The compact copy: every 3x3 convolution's weights int8 per output channel behind a DequantizeLinear;
    the transposed convolution that makes the pixels stays fp32 (see `export.quantize`)."""
    compact = onnx.ModelProto()
    compact.CopyFrom(model)
    for node in [n for n in compact.graph.node if n.op_type == "Conv"]:
        quantize_weight(compact, node, bits=8)
    onnx.checker.check_model(compact, full_check=True)
    return compact


def convert(wheel: str | Path, model: str, out: str | Path, default: str = "fp32") -> dict:
    """Convert `model` from the waifu2x wheel into the model folder `out`; returns the full manifest."""
    if default not in FILES:
        raise ValueError(f"--default must be one of {', '.join(FILES)}, got {default!r}")
    return write_folder(read_wheel(wheel, model), out, default)   # everything is checked before anything is written


def write_folder(source: Source, out: str | Path, default: str = "fp32") -> dict:
    """Write `source` as an upscaler folder `out` (both ONNX files, the licence, manifest.json); returns the
    full manifest.

    The files are written under temporary names and renamed when complete, the manifest last.
    """
    if default not in FILES:
        raise ValueError(f"--default must be one of {', '.join(FILES)}, got {default!r}")
    manifest = build_manifest(source, default)
    fp32 = build_graph(source)                  # checks the arrays before the folder is made
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for precision, graph in (("fp32", fp32), ("compact", quantize_compact(fp32))):
        embed_manifest(graph, manifest)
        with atomic_path(out / FILES[precision]) as tmp:
            onnx.save(graph, str(tmp))
    notice = source.notice or (
        f"The weights in this folder are waifu2x's {source.model} network, converted from the "
        f"`waifu2x` {source.package['version']} wheel on PyPI ({source.package['file']}), under this "
        f"licence:\n\n{source.license_text.strip()}\n")
    write_text_atomic(out / LICENSE_FILE, notice)
    full = with_hashes(manifest, out)
    write_text_atomic(out / MANIFEST_FILE, json.dumps(full, indent=2) + "\n")
    return full


def student_source(channels: tuple[int, ...], weights: dict[str, np.ndarray], teacher: dict, teacher_license: str,
                   steps: int, extra: dict | None = None) -> Source:
    """A small UpConv network distilled from an upscaler folder (`export.distill`), as a `Source` that
    `write_folder` writes like a converted one.

    `teacher` is the teacher folder's full manifest and `teacher_license` its licence file's text, which the
    student's folder carries on: its weights were fitted to the teacher's outputs. `extra` (e.g. validation
    figures) goes into the manifest's `source` beside what the student was distilled from.
    """
    channels = tuple(int(c) for c in channels)
    title = student_title(channels)
    arch = upconv_architecture(channels, "student", title)
    got = {name: tuple(w.shape) for name, w in weights.items()}
    if got != arch.shapes:
        raise ValueError(f"the student's arrays are not those of {title} (got {sorted(got)})")
    teacher_file = next((v for v in teacher.get("variants", ()) if v.get("file") == teacher.get("file")), {})
    distilled_from = {"name": teacher.get("name"), "version": teacher.get("version"),
                      "architecture": teacher.get("architecture"), "file": teacher.get("file"),
                      "sha256": teacher_file.get("sha256", teacher.get("sha256")), "source": teacher.get("source")}
    package = {"distilled_from": distilled_from, "steps": int(steps), **(extra or {}), "license": "MIT"}
    model = f"student of {teacher.get('name')}"
    notice = (f"The weights in this folder ({title}) were distilled (trained to give the same pictures) "
              f"from {teacher.get('name')} {teacher.get('version')} ({teacher.get('file')}, sha256 "
              f"{distilled_from['sha256']}), in {int(steps)} steps. That teacher's notice and licence, which "
              f"this folder carries on, follow.\n\n{teacher_license.strip()}\n")
    return Source(arch, model, teacher.get("noise_level"), {k: np.asarray(w, np.float32) for k, w in weights.items()},
                  package, teacher_license, name=f"{teacher.get('name')}-student", version=f"step{int(steps)}",
                  notice=notice)


def student_title(channels: tuple[int, ...]) -> str:
    """The manifest's `architecture` of a student: "UpConv6 student (3-32-32-64-64-64)" (convolutions and
    the transposed one counted as in UpConv7)."""
    return f"UpConv{len(channels)} student ({'-'.join(str(c) for c in channels)})"
