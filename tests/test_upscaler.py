"""`kyara upscaler` and the HD faces of the Python runtime: the ONNX graph against a plain PyTorch evaluation
of the same arrays, what the converter refuses, the shipped upscaler folder, and `kyara sample --scale`.

The waifu2x wheel is not downloaded here: the tests write a wheel of the same layout (METADATA, licence,
`waifu2x/models/<arch>/<name>.npz`) with random weights of the real shapes.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "upscaler"
TEACHER = REPO / "models" / "upscaler-waifu2x"
MODEL_DIR = REPO / "models" / "default"


def random_weights(arch: str, seed: int = 0) -> dict[str, np.ndarray]:
    from export.upscaler import ARCHITECTURES
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in ARCHITECTURES[arch].shapes.items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        weights[name] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    if arch == "upconv7":   # the transposed convolution's fan-in is its input channels x 4 x 4 / 4 (stride 2)
        weights["conv7/W"] *= 0.5
    return weights


def write_wheel(path: Path, models: dict[str, dict[str, np.ndarray]], name: str = "waifu2x",
                license_text: str | None = "The MIT License (MIT)\n\nCopyright (c) tests\n") -> Path:
    """A wheel of waifu2x's layout holding `models` (e.g. {"upconv7/anime_style_scale_rgb": arrays})."""
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{name}-2024.0.1.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 2024.0.1\n")
        if license_text is not None:
            wheel.writestr(f"{name}-2024.0.1.dist-info/LICENSE.md", license_text)
        for model, arrays in models.items():
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            wheel.writestr(f"waifu2x/models/{model}.npz", buffer.getvalue())
    return path


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return write_wheel(tmp_path_factory.mktemp("wheel") / "waifu2x-2024.0.1-py3-none-any.whl", {
        "upconv7/anime_style_scale_rgb": random_weights("upconv7", 1),
        "upresnet10/anime_style_noise1_scale_rgb": random_weights("upresnet10", 2),
    })


def reference(arch: str, w: dict[str, np.ndarray], rgb: np.ndarray) -> np.ndarray:
    """waifu2x's network in plain PyTorch calls on [0, 1] RGB (N x 3 x H x W), clipped like the graph."""
    w = {k: torch.from_numpy(v) for k, v in w.items()}
    x = torch.from_numpy(rgb)
    act = lambda t: F.leaky_relu(t, 0.1)  # noqa: E731
    if arch == "upconv7":
        x = F.pad(x, (7, 7, 7, 7), mode="replicate")
        for i in range(1, 7):
            x = act(F.conv2d(x, w[f"conv{i}/W"], w[f"conv{i}/b"]))
        y = F.conv_transpose2d(x, w["conv7/W"], stride=2, padding=3)
    else:
        x = bridge = act(F.conv2d(F.pad(x, (13,) * 4, mode="replicate"), w["conv_pre/W"], w["conv_pre/b"]))
        for i in range(1, 6):
            p = f"res{i}/"
            h = act(F.conv2d(act(F.conv2d(x, w[p + "conv1/W"], w[p + "conv1/b"])), w[p + "conv2/W"], w[p + "conv2/b"]))
            gate = torch.sigmoid(F.linear(F.relu(F.linear(h.mean((2, 3)), w[p + "fc1/W"], w[p + "fc1/b"])),
                                          w[p + "fc2/W"], w[p + "fc2/b"]))
            x = h * gate[:, :, None, None] + x[:, :, 2:-2, 2:-2]
        x = act(F.conv2d(x, w["conv_bridge/W"], w["conv_bridge/b"])) + bridge[:, :, 11:-11, 11:-11]
        y = F.conv_transpose2d(x, w["conv_post/W"], stride=2, padding=3)
    return y.clamp(0, 1).numpy()


@pytest.mark.parametrize("arch, model, seed", [("upconv7", "upconv7/anime_style_scale_rgb", 1),
                                               ("upresnet10", "upresnet10/anime_style_noise1_scale_rgb", 2)])
def test_onnx_graph_is_the_network_of_the_arrays(wheel, tmp_path, arch, model, seed):
    """A 64 px face (any RGBA bytes) becomes 128 px; `image` within 1e-4 of PyTorch on the same arrays, and
    `rgba` its rounded bytes with alpha 255, in both the fp32 file and the compact one's manifest."""
    from export.runtime import Upscaler
    from export.upscaler import convert

    manifest = convert(wheel, model, tmp_path / "up")
    assert manifest["architecture"] == {"upconv7": "UpConv7", "upresnet10": "UpResNet10"}[arch]
    assert manifest["source"]["version"] == "2024.0.1" and manifest["license"]["name"] == "MIT"
    assert "Copyright (c) tests" in (tmp_path / "up" / manifest["license"]["file"]).read_text()
    assert manifest["noise_level"] == (1 if "noise1" in model else None)

    rgba = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 4), dtype=np.uint8)
    upscaler = Upscaler(tmp_path / "up")
    out, image = upscaler.session.run(["rgba", "image"], {"rgba_in": rgba})
    expected = reference(arch, random_weights(arch, seed), rgba[..., :3].astype(np.float32).transpose(0, 3, 1, 2) / 255)
    assert out.shape == (2, 128, 128, 4) and out.dtype == np.uint8
    assert np.abs(image - expected).max() < 1e-4
    assert np.array_equal(out[..., :3], np.round(image * 255).transpose(0, 2, 3, 1).astype(np.uint8))
    assert (out[..., 3] == 255).all()
    assert upscaler.upscale(rgba, 4).shape == (2, 256, 256, 4)
    assert np.array_equal(upscaler.upscale(rgba, 2), out)


@pytest.mark.parametrize("case, message", [
    ("not a zip", "not a wheel"),
    ("another package", "not of waifu2x"),
    ("unknown model", "not a waifu2x x2 RGB anime model"),
    ("missing model", "has no waifu2x/models/upconv7/anime_style_noise2_scale_rgb.npz"),
    ("wrong shapes", "is not the UpConv7 network"),
    ("no licence", "licence"),
])
def test_converter_refuses_what_it_does_not_recognise(wheel, tmp_path, capsys, case, message):
    """One line naming the input, exit 2, and no output folder."""
    from kyara.cli import main

    bad_shapes = random_weights("upconv7")
    bad_shapes["conv3/W"] = bad_shapes["conv3/W"][:, :16]
    path, model = {
        "not a zip": (tmp_path / "x.whl", "upconv7/anime_style_scale_rgb"),
        "another package": (write_wheel(tmp_path / "o.whl", {}, name="other"), "upconv7/anime_style_scale_rgb"),
        "unknown model": (wheel, "vgg7/anime_style_scale_rgb"),
        "missing model": (wheel, "upconv7/anime_style_noise2_scale_rgb"),
        "wrong shapes": (write_wheel(tmp_path / "s.whl", {"upconv7/anime_style_scale_rgb": bad_shapes}),
                         "upconv7/anime_style_scale_rgb"),
        "no licence": (write_wheel(tmp_path / "l.whl", {"upconv7/anime_style_scale_rgb": random_weights("upconv7")},
                                   license_text=None), "upconv7/anime_style_scale_rgb"),
    }[case]
    if case == "not a zip":
        path.write_text("hello")
    out = tmp_path / "out"
    assert main(["upscaler", "convert", str(path), "--model", model, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kyara upscaler ") and message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("folder", [SHIPPED, TEACHER], ids=["bundled", "waifu2x"])
def test_shipped_upscalers_are_complete_and_say_what_they_are(folder: Path):
    """The folders a fresh clone serves (the bundled student, and the waifu2x teacher it was distilled from):
    the manifest's hashes match its files, the manifest is also inside each file, the MIT notice is there,
    and the default file draws what the fp32 one draws (to the eye)."""
    from export.manifest import sha256_of
    from export.runtime import Upscaler

    if not (folder / "manifest.json").is_file():
        pytest.skip(f"no upscaler at {folder}")
    SHIPPED = folder
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    assert manifest["format"] == "kyara-upscaler/1" and manifest["scale"] == 2
    for variant in manifest["variants"]:
        assert sha256_of(SHIPPED / variant["file"]) == variant["sha256"]
    assert "Permission is hereby granted" in (SHIPPED / manifest["license"]["file"]).read_text()
    faces = np.asarray(Image.open(REPO / "docs" / "screenshot.png").convert("RGBA"))[100:164, 100:164][None]
    fp32 = Upscaler(SHIPPED / "upscaler.onnx").upscale(np.ascontiguousarray(faces), 2)
    default = Upscaler(SHIPPED)
    assert default.path.name == manifest["file"] and default.manifest["name"] == manifest["name"]
    compact = default.upscale(np.ascontiguousarray(faces), 2)
    mse = np.mean((fp32[..., :3].astype(float) - compact[..., :3]) ** 2)
    assert 10 * np.log10(255 ** 2 / max(mse, 1e-9)) > 35


def edge_steepness(image: np.ndarray) -> float:
    """The 99th percentile of the grey image's gradient: how steep its strongest lines are. waifu2x's lines
    are ~1.5x as steep as bicubic's on the bundled model's faces, while its flat areas are smoother."""
    grey = image.mean(axis=2)
    return float(np.percentile(np.hypot(np.diff(grey, axis=0)[:, :-1], np.diff(grey, axis=1)[:-1]), 99))


@pytest.mark.skipif(not (MODEL_DIR / "manifest.json").is_file(), reason=f"no bundled model at {MODEL_DIR}")
def test_generate_scale_4_writes_the_same_faces_at_256_px(tmp_path, capsys):
    """`kyara sample --scale 4`: 256 x 256 PNGs of the faces scale 1 writes (shrunk back, they match the
    64 px face in their broad shapes), sharper than bicubic (steeper lines); --scale 3 is refused."""
    from kyara.cli import main

    for scale in (1, 4):
        assert main(["sample", str(MODEL_DIR), "-n", "3", "--seed", "5", "--scale", str(scale),
                     "-o", str(tmp_path / f"x{scale}")]) == 0
    capsys.readouterr()
    for i in range(3):
        small = np.asarray(Image.open(tmp_path / "x1" / f"seed5_{i:03d}.png"), float)
        big_image = Image.open(tmp_path / "x4" / f"seed5_{i:03d}.png")
        assert big_image.size == (256, 256)
        shrunk = np.asarray(big_image.resize((64, 64), Image.BOX), float)
        assert np.abs(shrunk - small).mean() < 6            # the same face (another face differs by ~40)
        bicubic = np.asarray(Image.fromarray(small.astype(np.uint8)).resize((256, 256), Image.BICUBIC), float)
        big = np.asarray(big_image, float)
        assert edge_steepness(big) > 1.3 * edge_steepness(bicubic)
    with pytest.raises(SystemExit) as refused:
        main(["sample", str(MODEL_DIR), "--scale", "3", "-o", str(tmp_path / "x3")])
    assert refused.value.code == 2
    assert "--scale" in capsys.readouterr().err and not (tmp_path / "x3").exists()


@pytest.mark.skipif(not (MODEL_DIR / "manifest.json").is_file(), reason=f"no bundled model at {MODEL_DIR}")
def test_generate_refuses_a_missing_upscaler_before_writing(tmp_path, capsys):
    from kyara.cli import main
    out = tmp_path / "out"
    assert main(["sample", str(MODEL_DIR), "--scale", "2", "--upscaler", str(tmp_path / "none"), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(tmp_path / "none") in err and "\n" not in err and not out.exists()
