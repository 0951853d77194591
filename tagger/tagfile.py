"""Reading and writing tag files (the CSV contract of DESIGN.md).

Our format has a header, a `path` column (relative to the crop folder), a `tags` column of names separated
by `;`, and optionally one `p:<tag>` probability column per tag so thresholds can be changed later. Readers
also accept the MLDS format of `../shared/data`: no header, `id,aqua hair aqua eyes`.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import IO, Iterable, Sequence

from common.files import write_text_atomic
from common.vocab import canonical, split_tag_text


def read_tag_rows(lines: Iterable[str], source: str = "tags") -> dict[str, list[str]]:
    """Map each image (a relative path or a bare id) to its tag names, as written.

    Names are canonicalised where they are paper tags and kept as written otherwise, so the caller
    decides what to do with tags outside the vocabulary (e.g. Konachan's `gray eyes`).
    """
    rows = list(csv.reader(lines))
    if not rows:
        raise ValueError(f"{source}: the tag file is empty")
    header = [c.strip().lower() for c in rows[0]]
    has_header = header[:2] == ["path", "tags"]
    result: dict[str, list[str]] = {}
    for lineno, row in enumerate(rows[1:] if has_header else rows, start=2 if has_header else 1):
        if not row or not row[0].strip():
            continue
        if len(row) < 2:
            raise ValueError(f"{source}:{lineno}: expected `path,tags`, got {','.join(row)!r}")
        result[row[0].strip()] = [canonical(t) or t.strip().lower() for t in split_tag_text(row[1])]
    return result


def read_tag_file(path: str | Path) -> dict[str, list[str]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: tag file not found")
    with open(path, newline="", encoding="utf-8") as f:
        return read_tag_rows(f, str(path))


def write_tag_file(path: str | Path, rows: Sequence[tuple[str, Sequence[str]]],
                   probabilities: Sequence[Sequence[float]] | None = None,
                   prob_tags: Sequence[str] = ()) -> None:
    """Write rows of (relative path, tag names), plus `p:<tag>` columns when probabilities are given.

    Written to a temporary file and renamed, so an interrupted run never leaves half a file.
    """
    path = Path(path)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "tags", *(f"p:{t}" for t in prob_tags)])
    for i, (name, tags) in enumerate(rows):
        probs = [f"{p:.4f}" for p in probabilities[i]] if probabilities is not None else []
        writer.writerow([name, ";".join(tags), *probs])
    write_text_atomic(path, buf.getvalue())


def open_text(stream: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(stream, encoding="utf-8", newline="")
