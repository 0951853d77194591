"""Face rate: how often lbpcascade_animeface finds a face; 1 - face rate is the nightmare rate.

The nightmare rate stands in for the share of faces a person would call broken, but only for gross failures:
the detector also accepts blurred and half-formed faces. Faces are upscaled to 256 px first, since the cascade
was made for faces in full-size pictures. The real figure is the detector on the reference faces.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from metrics.base import Generated, Metric, RealSide, fmt

NAME = "face_rate"
FACE_DETECTION_SIZE = 256   # faces are upscaled to this first: the cascade was made for full-size pictures


def face_rate(images: np.ndarray) -> float:
    """Share of images in which the anime face detector finds a face."""
    from dataset.crop import detect_faces
    found = [bool(detect_faces(np.asarray(Image.fromarray(im).resize(
        (FACE_DETECTION_SIZE, FACE_DETECTION_SIZE), Image.BICUBIC)))) for im in images]
    return float(np.mean(found))


def _real(side: RealSide) -> float:
    return face_rate(side.images)


def _generated(gen: Generated) -> dict:
    rate, real = face_rate(gen.images), gen.ref.real[NAME]
    return {NAME: {"generated": rate, "real": real}, "nightmare_rate": {"generated": 1 - rate, "real": 1 - real}}


def _headline(figures: dict) -> dict[str, float | None]:
    rate, nightmare = figures.get(NAME), figures.get("nightmare_rate")
    return {"face_rate": rate["generated"] if rate else None,
            "nightmare_rate": nightmare["generated"] if nightmare else None}


def _summary(figures: dict) -> list[str]:
    rate, nightmare = figures[NAME], figures["nightmare_rate"]
    return [f"face rate     {fmt(rate['generated'], 2)} (real {fmt(rate['real'], 2)}); "
            f"nightmare rate {fmt(nightmare['generated'], 2)}"]


def _markdown(figures: dict) -> list[str]:
    rate, nightmare = figures[NAME], figures["nightmare_rate"]
    return [
        f"lbpcascade_animeface on faces upscaled to {FACE_DETECTION_SIZE} px.", "",
        "| | generated | real |", "| --- | --- | --- |",
        f"| face rate | {fmt(rate['generated'])} | {fmt(rate['real'])} |",
        f"| nightmare rate | {fmt(nightmare['generated'])} | {fmt(nightmare['real'])} |",
    ]


METRIC = Metric(NAME, "Face rate", _real, _generated, _headline, _summary, _markdown)
