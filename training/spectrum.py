"""Spectrum: the share of power at each spatial frequency, generated faces against real ones.

The grain a person sees on every generated face (a dotted texture at the pixel scale) and the blur of a
half-trained model are both a wrong amount of power at high spatial frequencies, which the face rate and
tagger-space KID do not measure. This compares the mean radial power spectrum of the faces' luminance with
real faces', in a few bands of frequency: a ratio of 1.0 in every band is real, above 1 in the top band is
grain, below 1 in the upper bands is blur or missing detail. `distance` condenses the bands into one number,
the mean |log2 ratio| (0: the real spectrum; 1: off by a factor of two on average).

It sees texture, not faces: a melted face with real-like texture scores well. Read it beside realness and
the blind sheets, as the figure that says *what* is wrong with the texture.
"""
from __future__ import annotations

import numpy as np

# Radial frequency bands in cycles per pixel (0.5 is the Nyquist frequency along an axis; the top band also
# takes the corners of the spectrum, up to 0.71 on the diagonals).
BANDS = ((0.0, 0.125), (0.125, 0.25), (0.25, 0.375), (0.375, 0.75))
LUMA = np.array([0.299, 0.587, 0.114])


def band_power(images: np.ndarray) -> np.ndarray:
    """Mean power of each band of `BANDS` over uint8 images (N, H, W, 3), of luminance in [0, 1] with each
    image's mean removed (so brightness does not count, only structure)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"expected square RGB images (N, R, R, 3), got shape {images.shape}")
    luma = (images.astype(np.float64) @ LUMA) / 255.0
    luma -= luma.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(luma)) ** 2
    freq = np.fft.fftfreq(images.shape[1])
    radius = np.hypot(freq[:, None], freq[None, :])
    return np.array([power[:, (radius >= low) & (radius < high)].mean() for low, high in BANDS])


def compare(power: np.ndarray, reference: np.ndarray) -> dict:
    """Per-band ratio of `power` to `reference` (both from `band_power`) and their distance."""
    ratio = np.asarray(power) / np.asarray(reference)
    return {"bands": [list(b) for b in BANDS], "ratio": [round(float(r), 4) for r in ratio],
            "distance": float(np.abs(np.log2(ratio)).mean())}
