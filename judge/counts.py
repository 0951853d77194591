"""A person's calls on blind sheets, counted against the key: good / flawed / broken per kind, twin against
twin with the sign test, and how often the source was told.

Calls are a text file written before the key is read ("12b 13f 14g": broken, flawed, good; "12gr": good, and
the person thinks it real), so a judgement is on record before anyone knows the answer, and anyone can repeat
it on the same sheets.
"""
from __future__ import annotations

import math
from pathlib import Path

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
