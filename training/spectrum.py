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
chroma band while their luminance is within 1.25x of real (docs/runs/v2-runs.md, section 10).

It sees texture, not faces: a melted face with real-like texture scores well. Read it beside realness and
the blind sheets, as the figure that says *what* is wrong with the texture.
"""
from __future__ import annotations

import numpy as np

from common.images import YCBCR

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
