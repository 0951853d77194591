"""Atomic writes: the one place a file or folder is written under a temporary name and renamed into place.

A reader (a resumed run, the web page, a second `kyara` command) then sees the old file or the new one,
never half of one. The temporary name sits next to the target (same file system, so the rename is atomic)
and starts with a dot. Bytes and text go to `.name.tmp`, which no reader mistakes for a picture or a tag
file; `atomic_path` keeps the suffix (`.name.tmp.png`) because PIL, onnx and torch pick the format from it.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


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


# Inside every temporary folder atomic_dir makes, until the folder is renamed into place: what tells a stale
# temporary folder of a killed run from a folder of someone else's that happens to have its name.
_TMP_MARK = ".atomic_dir"
_TMP_MARK_TEXT = "a temporary folder of common.files.atomic_dir, removed when found stale\n"


def _made_by_atomic_dir(tmp: Path) -> bool:
    mark = tmp / _TMP_MARK
    try:
        return (not tmp.is_symlink() and tmp.is_dir() and not mark.is_symlink() and mark.is_file()
                and mark.read_text(encoding="utf-8") == _TMP_MARK_TEXT)
    except (OSError, UnicodeDecodeError):
        return False


@contextmanager
def atomic_dir(path: str | Path, *, own_tmp_only: bool = False,
               replace_old: Callable[[Path, Path], None] | None = None) -> Iterator[Path]:
    """Yield a fresh temporary folder `.name.tmp` beside `path`; on success it replaces `path`, on an error it
    is removed (and `path` is left as it was).

    A stale temporary folder that a killed process left behind is cleared before the new one is made. With
    `own_tmp_only`, only one that atomic_dir made is (it holds a mark file until it is renamed into place): a
    `.name.tmp` of anything else is a FileExistsError, left untouched.

    A folder already at `path` is moved aside (into a new hidden folder `.name.old-*` beside it) once the new
    one is complete, and the new one takes its place; then `replace_old(old, path)` disposes of the old one
    (default: removed whole). `replace_old` must leave nothing at `old` (delete what is its own, move the
    rest into `path`); whatever it leaves stays in the hidden folder, which is then removed only if empty.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    if tmp.exists() or tmp.is_symlink():
        if own_tmp_only and not _made_by_atomic_dir(tmp):
            raise FileExistsError(f"{tmp} is in the way and was not left by an earlier run of this command: "
                                  "move it elsewhere or remove it, then try again")
        if tmp.is_symlink() or not tmp.is_dir():
            tmp.unlink()
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / _TMP_MARK).write_text(_TMP_MARK_TEXT, encoding="utf-8")
    holder = None
    try:
        yield tmp
        (tmp / _TMP_MARK).unlink()
        if path.exists() or path.is_symlink():
            holder = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.rename(path, holder / path.name)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.rename(holder / path.name, path)
                holder.rmdir()
                holder = None
                raise
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if holder is None:
        return
    if replace_old is None:
        shutil.rmtree(holder)
        return
    replace_old(holder / path.name, path)
    try:
        holder.rmdir()
    except OSError:
        pass        # replace_old left something there (and said so): never removed unseen
