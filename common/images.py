"""The one picture decoder of `kyara data crop`, `kyara data tag` and `kyara data pack`.

All three read the same files, so they must see the same pixels: a 16-bit or transparent picture that crop
reads one way and pack another would train on something the tagger never saw. Each caller skips a file it
cannot read with one line from `skip_reason` and goes on.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# BT.601 RGB -> (Y, Cb, Cr): luminance and chroma, for the spectrum that measures grain in each
# (metrics/spectrum.py) and the generator's chroma blur (training/models.ChromaBlur).
YCBCR = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))


def load_rgb(source: str | Path | bytes, size: int | None = None) -> np.ndarray:
    """Decode a picture (a path or the file's bytes) to uint8 RGB, H x W x 3, or raise.

    Converted rather than refused: CMYK, 16-bit (scaled to 8 bits, not clipped), greyscale, palette; EXIF
    rotation is applied; transparency is laid on white (the usual background of character art). Refused:
    unreadable or truncated files, and pictures above PIL's MAX_IMAGE_PIXELS (decompression bombs; PIL's
    warning below twice that limit is treated as an error too). With `size`, the result is resized to
    size x size (Lanczos) unless it already is.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
    if im.mode.startswith("I"):
        pixels = np.asarray(im).astype(np.uint32)
        sixteen_bit = im.mode.startswith("I;16") or pixels.max() > 255  # mode "I" holds 8- or 16-bit data
        im = Image.fromarray((pixels >> 8 if sixteen_bit else pixels).astype(np.uint8), "L")
    if im.mode in ("P", "PA", "LA", "RGBA", "La", "RGBa") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    im = im.convert("RGB")
    if size is not None and im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


def skip_reason(exc: BaseException) -> str:
    """Why a file was skipped, on one line: PIL and the OS raise many types, some with multi-line messages."""
    if isinstance(exc, FileNotFoundError):
        return "not found"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
