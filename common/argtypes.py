"""Argument types shared by every command's parser (`type=` of `add_argument`).

A value is refused while the command line is parsed, before a model loads or a picture is decoded, and
argparse puts the option's name in front of the message: `kyara sample: argument --seed: must be a whole
number >= 0, got '-1'`. Imports only the standard library, so every `cli` module may import it at the top.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < least:
        raise argparse.ArgumentTypeError(f"must be a whole number >= {least}, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """0, 1, 2, ...: seeds, sizes that may be zero."""
    return _whole_number(text, 0)


def positive_int(text: str) -> int:
    """1, 2, ...: counts of faces, workers, samples."""
    return _whole_number(text, 1)


def count_at_most(most: int) -> Callable[[str], int]:
    """1, 2, ... up to `most`: a count of faces that is refused up front where a bigger one would only fill
    the memory or the disk (the command's --help says the bound)."""
    def parse(text: str) -> int:
        value = _whole_number(text, 1)
        if value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most:,}, got {text!r}; run the command several "
                                             "times with other seeds for more")
        return value
    return parse


def fraction(text: str) -> float:
    """A share of something that must leave some over: 0 <= f < 1 (e.g. the validation split)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number at least 0 and below 1, got {text!r}")
    return value


def truncation(text: str) -> float:
    """How far the noise is drawn in towards 0: 0 < psi <= 1, 1 = not at all (`export.fold.fold_truncation`)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number above 0 and at most 1, got {text!r}")
    return value


def truncations(text: str) -> list[float]:
    """One or more truncations, comma-separated: "1,0.7,0.5"."""
    return [truncation(part.strip()) for part in text.split(",")]


def upscale_methods(text: str) -> list[str]:
    """One or two ways to enlarge a face, comma-separated: "upscaler" (the bundled one), "bicubic" or an
    upscaler folder's path (checked when the command runs)."""
    methods = [part.strip() for part in text.split(",")]
    if "" in methods or len(set(methods)) != len(methods):
        raise argparse.ArgumentTypeError(f"must be one or two of upscaler, bicubic or an upscaler folder, "
                                         f"comma-separated, got {text!r}")
    return methods


def _check_folder_can_exist(folder: Path) -> None:
    """Refuse a folder that cannot be made because something on its way is a file (`/dev/null/x`)."""
    for place in (folder, *folder.parents):
        if place.exists():
            if not place.is_dir():
                raise argparse.ArgumentTypeError(f"{place} is not a folder")
            return


def output_folder(text: str) -> Path:
    """A folder to write into: it may exist (files of the same names are replaced) or be made, but it must
    not be a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} exists and is not a folder")
    _check_folder_can_exist(path.parent)
    return path


def output_file(default_name: str) -> Callable[[str], Path]:
    """A file to write (an existing one is replaced). A folder, or a path ending in '/', means
    `default_name` inside that folder, as `cp` and `mv` read it."""
    def parse(text: str) -> Path:
        path = Path(text)
        if text.endswith(("/", os.sep)) or path.is_dir():
            path = path / default_name
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{path} is a folder")
        _check_folder_can_exist(path.parent)
        return path
    return parse
