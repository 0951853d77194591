"""Blind sheets: generated faces shuffled with real ones, numbered, the key in a separate file.

The figures of `kyara eval` are only as good as their agreement with a person. These sheets let anyone
repeat the judgement that matters: shown at 168 px (the size of the annotators' contact sheets), is a
face good, flawed or broken, and can it be told from a real one? Look at the sheets first, write down
your counts, and only then open the key.
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


def blind_sheets(generated: np.ndarray, real: np.ndarray, out_dir: str | Path, seed: int) -> dict:
    """Shuffle uint8 N x H x W x 3 faces of both kinds, draw them on numbered sheets in `out_dir`
    (sheet_01.png, ...), and write the key (number -> kind) to key.json. Returns the key."""
    if len(generated) == 0 or len(real) == 0:
        raise ValueError(f"blind sheets need faces of both kinds, got {len(generated)} generated, {len(real)} real")
    faces = np.concatenate([generated, real])
    kinds = ["generated"] * len(generated) + ["real"] * len(real)
    order = np.random.default_rng(seed).permutation(len(faces))
    out = Path(out_dir)
    per_sheet = COLS * ROWS
    sheets = []
    for start in range(0, len(order), per_sheet):
        chunk = order[start:start + per_sheet]
        name = f"sheet_{start // per_sheet + 1:02d}.png"
        save_png(_sheet(faces[chunk], first_number=start + 1), out / name)
        sheets.append(name)
    key = {
        "how": "number -> kind; count good / flawed / broken on the sheets before reading this",
        "sheets": sheets,
        "faces": [{"number": n + 1, "sheet": sheets[n // per_sheet], "kind": kinds[i]} for n, i in enumerate(order)],
        "counts": {"generated": len(generated), "real": len(real)},
    }
    write_text_atomic(out / KEY_FILE, json.dumps(key, indent=1))
    return key


def _sheet(faces: np.ndarray, first_number: int) -> Image.Image:
    rows = -(-len(faces) // COLS)
    sheet = Image.new("RGB", (COLS * FACE, rows * (FACE + LABEL)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=LABEL - 6)
    for i, face in enumerate(faces):
        r, c = divmod(i, COLS)
        x, y = c * FACE, r * (FACE + LABEL)
        draw.text((x + 4, y + 2), str(first_number + i), fill="black", font=font)
        sheet.paste(enlarged(face), (x, y + LABEL))
    return sheet


def enlarged(face: np.ndarray) -> Image.Image:
    """A uint8 H x W x 3 face at the sheets' size. Bicubic, as a browser scales a picture up; real and
    generated faces alike, so neither is favoured."""
    return Image.fromarray(face).resize((FACE, FACE), Image.BICUBIC)
