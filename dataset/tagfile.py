"""Reading and writing tag files (the CSV contract of DESIGN.md).

Our format has a header, a `path` column (relative to the crop folder), a `tags` column of names separated
by `;`, optionally one `p:<tag>` probability column per tag so thresholds can be changed later, and optionally
a last `unknown` column: the tags a tagger could not decide for that image (see `tagger.report.confident_bounds`),
which `kyara data pack --labels` stores as unknown instead of off. Readers also accept the MLDS format of
`../shared/data`: no header, `id,aqua hair aqua eyes`.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import IO, Iterable, Mapping, Sequence

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
                   prob_tags: Sequence[str] = (), unknown: Mapping[str, Sequence[str]] | None = None) -> None:
    """Write rows of (relative path, tag names), plus `p:<tag>` columns when probabilities are given and an
    `unknown` column when `unknown` (image -> undecided tags) is given.

    Written to a temporary file and renamed, so an interrupted run never leaves half a file.
    """
    path = Path(path)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "tags", *(f"p:{t}" for t in prob_tags), *(["unknown"] if unknown is not None else [])])
    for i, (name, tags) in enumerate(rows):
        probs = [f"{p:.4f}" for p in probabilities[i]] if probabilities is not None else []
        undecided = [";".join(unknown.get(name, ()))] if unknown is not None else []
        writer.writerow([name, ";".join(tags), *probs, *undecided])
    write_text_atomic(path, buf.getvalue())


def read_tag_columns(path: str | Path) -> tuple[list[str], list[list[float]] | None, dict[str, list[str]] | None]:
    """Our format's extra columns, in row order: the `p:<tag>` tags and probabilities (none: [], None) and the
    `unknown` tags per image (None when the file has no such column)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        table = [(reader.line_num, row) for row in reader if row and row[0].strip()]
    header = [c.strip() for c in table[0][1]] if table else []
    if header[:2] != ["path", "tags"]:
        return [], None, None
    prob_tags = [c[2:] for c in header if c.startswith("p:")]
    probs = [[_probability(row, 2 + i, path, lineno, tag) for i, tag in enumerate(prob_tags)]
             for lineno, row in table[1:]] if prob_tags else None
    unknown = None
    if header[-1] == "unknown":
        unknown = {row[0].strip(): [canonical(t) or t.strip().lower() for t in split_tag_text(row[-1])]
                   for _, row in table[1:]}
    return prob_tags, probs, unknown


def _probability(row: Sequence[str], column: int, path: str | Path, lineno: int, tag: str) -> float:
    """One `p:<tag>` cell as a number, or an error naming the file, line and column (an edited file may hold an
    empty or mistyped cell)."""
    cell = row[column].strip() if column < len(row) else ""
    try:
        value = float(cell)
    except ValueError:
        value = None
    if value is None or not 0.0 <= value <= 1.0:
        between = "" if value is None else " between 0 and 1"
        raise ValueError(f"{path}:{lineno}: p:{tag}: expected a probability{between}, got {cell!r}")
    return value


def read_tag_columns_by_row(path: str | Path, rows: Mapping[str, Sequence[str]]) \
        -> tuple[list[str], list[list[float]] | None, dict[str, list[str]] | None]:
    """`read_tag_columns` of a tag file whose `read_tag_file` rows are `rows`, checked to pair with them: the
    columns come one per CSV row and the rows one per image, so a file naming an image twice is refused rather
    than paired wrongly."""
    prob_tags, probs, undecided = read_tag_columns(path)
    if probs is not None and len(probs) != len(rows):
        raise ValueError(f"{path}: {len(probs) - len(rows)} images appear in more than one row; keep one row "
                         "per image")
    return prob_tags, probs, undecided


def open_text(stream: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(stream, encoding="utf-8", newline="")
