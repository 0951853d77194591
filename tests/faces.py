"""Test pictures made here, so that no artwork ships with the tests: an anime face at a known place, a grey
gradient, and a decompression bomb's header."""
from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw

CANVAS = (320, 420)  # h, w
AT = (150, 60)       # x, y of the pasted face


def draw_face(size: int) -> np.ndarray:
    """A flat-shaded anime face, `size` px square, that the LBP cascade detects."""
    s = size / 160
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)

    def at(*v: float) -> list[int]:
        return [round(x * s) for x in v]

    hair, skin = (90, 60, 40), (255, 236, 222)
    d.ellipse(at(5, 0, 155, 150), fill=hair)
    d.polygon(at(42, 50, 118, 50, 114, 110, 80, 136, 46, 110), fill=skin)
    xs = np.linspace(37, 123, 9)
    fringe = [(32, 30)] + [(x, 52 if i % 2 else 32) for i, x in enumerate(xs)] + [(128, 30), (80, 5)]
    d.polygon([tuple(at(*p)) for p in fringe], fill=hair)
    for cx in (80 - 18.5, 80 + 18.5):
        d.ellipse(at(cx - 10.5, 78, cx + 10.5, 115), fill=(60, 110, 220))
        d.ellipse(at(cx - 5, 91, cx + 5, 108), fill=(20, 20, 50))
        d.ellipse(at(cx - 6.5, 83, cx - 1, 92), fill="white")
        d.line(at(cx - 13.5, 81, cx + 13.5, 76), fill=(20, 10, 10), width=1)
    d.line(at(75, 121, 85, 121), fill=(180, 80, 80), width=2)
    return np.asarray(im)


def canvas_with(face: np.ndarray, background=(200, 220, 240)) -> np.ndarray:
    canvas = np.full((*CANVAS, 3), background, np.uint8)
    canvas[AT[1]:AT[1] + len(face), AT[0]:AT[0] + len(face)] = face
    return canvas


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height but holds almost no data: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def gradient(size: int = 64) -> np.ndarray:
    """8-bit greys 0..255 across the picture."""
    return np.tile(np.linspace(0, 255, size).round().astype(np.uint8), (size, 1))
