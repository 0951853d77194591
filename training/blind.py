"""Blind sheets: generated faces shuffled with real ones, numbered, the key in a separate file.

The figures of `kyara eval` are only as good as their agreement with a person. These sheets let anyone
repeat the judgement that matters: shown at 168 px (the size of the annotators' contact sheets), is a
face good, flawed or broken, and can it be told from a real one? Look at the sheets first, write down
your counts, and only then open the key.

The same sheets compare two models (or one model at two truncations) with no real faces: the key then
names each face's model, and `tally` turns a file of calls ("12b 13f 14g": broken, flawed, good) into
counts per kind, so a judgement can be written down before the key is read and repeated by anyone.
Drawn paired, an A/B's two models get the same noise and tags, and `paired_tally` compares each face with
its twin: a sharper test than two counts of faces drawn apart.
"""
from __future__ import annotations

import json
import math
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


CALLS = {"g": "good", "f": "flawed", "b": "broken"}
GUESSES = {"r": "real", "m": "made"}    # the optional second letter: drawn by a person, or made by a model


def _tokens(path: str | Path, faces: int) -> dict[int, str]:
    """`<number><g|f|b>[r|m]` tokens of a calls file: face number -> its one or two letters."""
    marks: dict[int, str] = {}
    for line in Path(path).read_text().splitlines():
        for token in line.split("#")[0].split():
            split = len(token) - (2 if token[-1:].lower() in GUESSES else 1)
            number, mark = token[:split], token[split:].lower()
            if not number.isdigit() or mark[0] not in CALLS or not 1 <= int(number) <= faces:
                raise ValueError(f"{path}: {token!r} is not a face number 1-{faces} followed by g, f or b "
                                 "(good, flawed, broken) and optionally r or m (real, made)")
            if int(number) in marks:
                raise ValueError(f"{path}: face {number} is called twice")
            marks[int(number)] = mark
    return marks


def read_calls(path: str | Path, faces: int) -> dict[int, str]:
    """A person's calls, written before the key was read: whitespace-separated `<number><g|f|b>` (e.g.
    `12b 13f 14g`); lines from `#` on are comments. Faces left out are counted as not judged. A second
    letter, r or m (`12br`), is the person's guess of the face's source (read_guesses)."""
    return {number: CALLS[mark[0]] for number, mark in _tokens(path, faces).items()}


def read_guesses(path: str | Path, faces: int) -> dict[int, str]:
    """The source guesses of a calls file (`12gr`: real, `13fm`: made by a model) by face number."""
    return {number: GUESSES[mark[1]] for number, mark in _tokens(path, faces).items() if len(mark) == 2}


def sources_told(key: dict, guesses: dict[int, str]) -> dict[str, int | float] | None:
    """How often a person's guesses named a face's source right, on sheets of generated faces beside real
    ones (the second kind of the key); None for an A/B of two models or calls without guesses. 0.5 is
    chance: a model whose faces pass for drawn ones."""
    real_kind = list(key["counts"])[1]
    if not guesses or not real_kind.startswith("real"):
        return None
    right = sum((guesses[f["number"]] == "real") == (f["kind"] == real_kind)
                for f in key["faces"] if f["number"] in guesses)
    return {"right": right, "guessed": len(guesses), "share": right / len(guesses)}


def tally(key: dict, calls: dict[int, str]) -> dict[str, dict[str, int]]:
    """Counts of good / flawed / broken / not judged for each kind of the key."""
    counts = {kind: {**{name: 0 for name in CALLS.values()}, "not judged": 0} for kind in key["counts"]}
    for face in key["faces"]:
        counts[face["kind"]][calls.get(face["number"], "not judged")] += 1
    return counts


def paired_tally(key: dict, calls: dict[int, str]) -> dict[str, int | float] | None:
    """Twin against twin: in how many pairs a person called the first kind's face (the first entry of the
    command line) better than the second's (good over flawed over broken), the second's better, or both the
    same; and the two-sided sign test's p over the pairs called differently, the chance of a split at least
    this uneven if the two models were equally good. None for sheets drawn without --paired (no twins)."""
    if not all("twin" in face for face in key["faces"]):
        return None
    rank = {"good": 2, "flawed": 1, "broken": 0}
    first = next(iter(key["counts"]))
    counts: dict[str, int | float] = {"first better": 0, "second better": 0, "same": 0, "not judged": 0}
    for face in key["faces"]:
        if face["kind"] != first:
            continue
        mine, twin = calls.get(face["number"]), calls.get(face["twin"])
        if mine is None or twin is None:
            counts["not judged"] += 1
        elif rank[mine] == rank[twin]:
            counts["same"] += 1
        else:
            counts["first better" if rank[mine] > rank[twin] else "second better"] += 1
    wins, losses = int(counts["first better"]), int(counts["second better"])
    tail = sum(math.comb(wins + losses, k) for k in range(min(wins, losses) + 1)) / 2 ** (wins + losses)
    counts["p"] = min(1.0, 2 * tail)
    return counts


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
