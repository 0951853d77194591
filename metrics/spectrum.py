"""Spectrum: the share of power at each spatial frequency, generated faces against real ones.

The grain a person sees on every generated face (a dotted texture at the pixel scale) and the blur of a
half-trained model are both a wrong amount of power at high spatial frequencies, which the face rate and
tagger-space KID do not measure. This compares the mean radial power spectrum of the faces with real faces',
in a few bands of frequency, twice: for luminance (brightness) and for chroma (colour, BT.601 Cb and Cr).
A ratio of 1.0 in every band is real, above 1 in the top bands is grain, below 1 in the upper bands is blur
or missing detail. A distance condenses the bands into one number, the mean |log2 ratio| (0: the real
spectrum; 1: off by a factor of two on average).

Chroma is measured on its own because that is where most of the grain is. Anime faces are flat fills of
colour with dark lines, so nearly all of their fine detail is in luminance; the speckle on generated faces is
coloured (red, green and blue dots side by side), and on v2 and v1 it puts 13-39x the real power in the top
chroma band while their luminance is within 1.25x of real (docs/experiments/2026-12-01-v2-grain-and-chroma-blur.md).

It sees texture, not faces: a melted face with real-like texture scores well. Read it beside realness and
the blind sheets, as the figure that says *what* is wrong with the texture. The generated faces are the
distribution set (asked for the reference faces' tags); the real figure compares real training faces with the
validation faces, the floor for this many images.
"""
from __future__ import annotations

import numpy as np

from common.images import YCBCR
from metrics.base import Generated, Metric, RealSide, fmt

NAME = "spectrum"

# Radial frequency bands in cycles per pixel (0.5 is the Nyquist frequency along an axis; the top band also
# takes the corners of the spectrum, up to 0.71 on the diagonals).
BANDS = ((0.0, 0.125), (0.125, 0.25), (0.25, 0.375), (0.375, 0.75))


def band_power(images: np.ndarray) -> np.ndarray:
    """Mean power in each band of `BANDS` over uint8 images (N, H, W, 3): row 0 of luminance, row 1 of chroma
    (Cb's power plus Cr's), in [0, 1] units with each image's mean removed (so the colour and brightness of
    the whole face do not count, only structure). Shape (2, bands)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"expected square RGB images (N, R, R, 3), got shape {images.shape}")
    ycc = (images.astype(np.float64) / 255.0) @ np.array(YCBCR).T
    ycc -= ycc.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(ycc, axes=(1, 2))) ** 2                        # (N, R, R, 3)
    power = np.stack([power[..., 0], power[..., 1] + power[..., 2]])          # (2, N, R, R)
    freq = np.fft.fftfreq(images.shape[1])
    radius = np.hypot(freq[:, None], freq[None, :])
    return np.array([[channel[:, (radius >= low) & (radius < high)].mean() for low, high in BANDS]
                     for channel in power])


def compare(power: np.ndarray, reference: np.ndarray) -> dict:
    """Per-band ratio of `power` to `reference` (both from `band_power`) and their distance, for luminance
    (`ratio`, `distance`) and chroma (`chroma_ratio`, `chroma_distance`)."""
    ratio = np.asarray(power) / np.asarray(reference)
    def distance(r: np.ndarray) -> float:
        return float(np.abs(np.log2(r)).mean())
    return {"bands": [list(b) for b in BANDS],
            "ratio": [round(float(r), 4) for r in ratio[0]], "distance": distance(ratio[0]),
            "chroma_ratio": [round(float(r), 4) for r in ratio[1]], "chroma_distance": distance(ratio[1])}


def _real(side: RealSide) -> dict:
    """The reference faces' power (what generated faces are held against) and the real-vs-real figure."""
    power = band_power(side.images)
    return {"power": power, "train": compare(band_power(side.train_images), power)}


def _generated(gen: Generated) -> dict:
    real = gen.ref.real[NAME]
    return {NAME: {"generated": compare(band_power(gen.images), real["power"]), "real_train": real["train"]}}


def _headline(figures: dict) -> dict[str, float | None]:
    figure = figures.get(NAME)      # absent from evaluations made before it existed
    generated = figure["generated"] if figure else None
    return {"spectral_distance": generated["distance"] if generated else None,
            "chroma_distance": generated.get("chroma_distance") if generated else None}   # added later still


def _ratios(values: list[float]) -> str:
    return " ".join(f"{r:.2f}" for r in values)


def _summary(figures: dict) -> list[str]:
    generated, real = figures[NAME]["generated"], figures[NAME]["real_train"]
    return [f"spectrum      luminance distance {fmt(generated['distance'], 2)} (train vs val "
            f"{fmt(real['distance'], 2)}); power vs real, low to high: {_ratios(generated['ratio'])} "
            "(top above 1: grain)",
            f"              chroma distance {fmt(generated['chroma_distance'], 2)} (train vs val "
            f"{fmt(real['chroma_distance'], 2)}); power vs real: {_ratios(generated['chroma_ratio'])} "
            "(coloured speckle)"]


def _markdown(figures: dict) -> list[str]:
    generated, real = figures[NAME]["generated"], figures[NAME]["real_train"]
    return [
        "Power of the faces' luminance and, apart, of their chroma (colour: Cb and Cr) in bands of spatial "
        "frequency (cycles per pixel), as a ratio to the real validation faces': 1.0 is real, above 1 in the top "
        "bands is grain (a dotted texture at the pixel scale; in chroma, the coloured speckle), below 1 in the "
        "upper bands is blur. Distance: the mean |log2 ratio| over the bands. The real columns compare real "
        "training faces with the same validation faces.", "",
        "| band | luminance, generated | real train | chroma, generated | real train |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {low:g}-{high:g} | {fmt(g, 2)} | {fmt(r, 2)} | {fmt(gc, 2)} | {fmt(rc, 2)} |"
          for (low, high), g, r, gc, rc in zip(generated["bands"], generated["ratio"], real["ratio"],
                                               generated["chroma_ratio"], real["chroma_ratio"])],
        f"| **distance** | **{fmt(generated['distance'], 3)}** | {fmt(real['distance'], 3)} "
        f"| **{fmt(generated['chroma_distance'], 3)}** | {fmt(real['chroma_distance'], 3)} |",
    ]


METRIC = Metric(NAME, "Spectrum", _real, _generated, _headline, _summary, _markdown)
