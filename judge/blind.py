"""Blind sheets: generated faces shuffled with real ones, numbered, the key in a separate file.

The figures of `kyara eval` are only as good as their agreement with a person. These sheets let anyone
repeat the judgement that matters: shown at 168 px (the size of the annotators' contact sheets), is a
face good, flawed or broken, and can it be told from a real one? Look at the sheets first, write down
your counts, and only then open the key.

The same sheets compare two models (or one model at two truncations) with no real faces: the key then
names each face's model. Drawn paired, an A/B's two models get the same noise and tags, so that each face can
be compared with its twin. `judge.counts` reads a person's calls against the key.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from common.files import write_text_atomic
from training.grid import save_png

FACE = 168          # px per face on the sheet
COLS, ROWS = 6, 5   # 30 faces a sheet
LABEL = 22          # px of the strip above each face that holds its number
KEY_FILE = "key.json"


def blind_sheets(generated: np.ndarray, real: np.ndarray, out_dir: str | Path, seed: int,
                 kinds: tuple[str, str] = ("generated", "real"), twins: bool = False, face: int = FACE) -> dict:
    """Shuffle uint8 N x H x W x 3 faces of both kinds, draw them on numbered sheets in `out_dir`
    (sheet_01.png, ...), and write the key (number -> kind) to key.json. Returns the key.

    `kinds` names the two sets in the key: generated and real faces, or two models for an A/B. `twins`:
    face i of each kind was drawn from the same inputs, and the key gives each face its twin's number.
    `face`: px per face on the sheet (168, the annotators' contact sheets; HD faces are shown at their size)."""
    first, second = kinds
    if first == second:
        raise ValueError(f"blind sheets need two differently named kinds, got {first!r} twice")
    if len(generated) == 0 or len(real) == 0:
        raise ValueError(f"blind sheets need faces of both kinds, got {len(generated)} {first}, {len(real)} {second}")
    if twins and len(generated) != len(real):
        raise ValueError(f"twins need as many faces of each kind, got {len(generated)} {first}, {len(real)} {second}")
    faces = np.concatenate([generated, real])
    kinds = [first] * len(generated) + [second] * len(real)
    order = np.random.default_rng(seed).permutation(len(faces))
    out = Path(out_dir)
    per_sheet = COLS * ROWS
    sheets = []
    for start in range(0, len(order), per_sheet):
        chunk = order[start:start + per_sheet]
        name = f"sheet_{start // per_sheet + 1:02d}.png"
        save_png(_sheet(faces[chunk], first_number=start + 1, face_px=face), out / name)
        sheets.append(name)
    key = {
        "how": "number -> kind; count good / flawed / broken on the sheets before reading this",
        "sheets": sheets,
        "faces": [{"number": n + 1, "sheet": sheets[n // per_sheet], "kind": kinds[i]} for n, i in enumerate(order)],
        "counts": {first: len(generated), second: len(real)},
    }
    if twins:
        number = {int(i): n + 1 for n, i in enumerate(order)}     # face index -> its number on the sheets
        half = len(generated)
        for face, i in zip(key["faces"], order):
            face["twin"] = number[int(i + half if i < half else i - half)]
    write_text_atomic(out / KEY_FILE, json.dumps(key, indent=1))
    return key


def _sheet(faces: np.ndarray, first_number: int, face_px: int = FACE) -> Image.Image:
    rows = -(-len(faces) // COLS)
    sheet = Image.new("RGB", (COLS * face_px, rows * (face_px + LABEL)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=LABEL - 6)
    for i, face in enumerate(faces):
        r, c = divmod(i, COLS)
        x, y = c * face_px, r * (face_px + LABEL)
        draw.text((x + 4, y + 2), str(first_number + i), fill="black", font=font)
        sheet.paste(enlarged(face, face_px), (x, y + LABEL))
    return sheet


def enlarged(face: np.ndarray, size: int = FACE) -> Image.Image:
    """A uint8 H x W x 3 face at the sheets' size. Bicubic, as a browser scales a picture up; real and
    generated faces alike, so neither is favoured. A face already that size is left as it is."""
    image = Image.fromarray(face)
    return image if image.size == (size, size) else image.resize((size, size), Image.BICUBIC)
