"""The shared decoder: odd pictures decode to the right pixels, bad ones fail with a one-line reason, and
`kyara data pack` sees exactly what `kyara data crop` sees (the tagger's side is in test_pack.py)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from common.images import load_rgb, skip_reason
from common.packed import PackedSet
from faces import gradient, png_header_only
from dataset.tagfile import write_tag_file
from dataset.pack import pack


def test_16_bit_is_scaled_and_alpha_laid_on_white(tmp_path):
    Image.fromarray(gradient().astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    np.testing.assert_array_equal(load_rgb(tmp_path / "grey16.png")[..., 0], gradient())
    Image.fromarray(np.full((8, 8), 200, np.uint16)).save(tmp_path / "dark16.png")   # 200 of 65535: black
    assert load_rgb(tmp_path / "dark16.png").max() == 0
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert load_rgb(tmp_path / "clear.png").min() == 255


def test_bytes_and_size():
    buf = io.BytesIO()
    Image.fromarray(gradient(32)).save(buf, format="PNG")
    rgb = load_rgb(buf.getvalue(), size=64)
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8


def test_skip_reasons_are_one_line(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_header_only(20000, 20000))
    with pytest.raises(Image.DecompressionBombError) as bomb:
        load_rgb(tmp_path / "bomb.png")
    assert skip_reason(bomb.value).startswith("DecompressionBombError: Image size (400000000 pixels)")
    with pytest.raises(FileNotFoundError) as missing:
        load_rgb(tmp_path / "gone.png")
    assert skip_reason(missing.value) == "not found"
    assert skip_reason(ValueError("first line\nsecond line")) == "ValueError: first line"
    assert skip_reason(KeyError()) == "KeyError"


def test_pack_decodes_like_crop_and_skips_bad_files_one_line_each(tmp_path, capsys):
    crops = tmp_path / "crops"
    crops.mkdir()
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(gradient().astype(np.uint16) * 257).save(crops / "grey16.png")
    Image.fromarray(np.dstack([rgb, np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))])).save(crops / "alpha.png")
    Image.fromarray(rgb).convert("CMYK").save(crops / "cmyk.jpg")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(crops / "palette.png", transparency=0)
    (crops / "bomb.png").write_bytes(png_header_only(20000, 20000))
    good = ["grey16.png", "alpha.png", "cmyk.jpg", "palette.png"]
    write_tag_file(crops / "tags.csv", [(name, ["blue hair"]) for name in [*good, "bomb.png", "gone.png"]])

    packed = PackedSet.open(pack(crops, tmp_path / "packed", workers=1))
    err = capsys.readouterr().err
    assert packed.meta["names"] == good
    for i, name in enumerate(good):
        np.testing.assert_array_equal(packed.images[i], load_rgb(crops / name), err_msg=name)
    assert "kyara data pack: skipping gone.png: not found\n" in err
    assert "kyara data pack: skipping bomb.png: DecompressionBombError: " in err
    assert "BytesIO" not in err and "(2 skipped)" in err
