"""Atomic writes: the one place a file or folder is written under a temporary name and renamed into place.

A reader (a resumed run, the web page, a second `kyara` command) then sees the old file or the new one,
never half of one. The temporary name sits next to the target (same file system, so the rename is atomic)
and starts with a dot. Bytes and text go to `.name.tmp`, which no reader mistakes for a picture or a tag
file; `atomic_path` keeps the suffix (`.name.tmp.png`) because PIL, onnx and torch pick the format from it.
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def _renamed(tmp: Path, path: Path) -> Iterator[Path]:
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path (`.name.tmp.suffix`) to write to; it is renamed to `path` on success and
    removed on an error.

    For writers that want a file name (PIL's save, onnx.save, torch.save, safetensors' save_file).
    """
    path = Path(path)
    with _renamed(path.with_name(f".{path.stem}.tmp{path.suffix}"), path) as tmp:
        yield tmp


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (through `.name.tmp`)."""
    path = Path(path)
    with _renamed(path.with_name(f".{path.name}.tmp"), path) as tmp:
        tmp.write_bytes(data)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder `.name.tmp` beside `path`; on success it replaces `path` (a folder
    already there is removed first), on an error it is removed.

    A stale temporary folder that a killed process left behind is cleared before the new one is made.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
