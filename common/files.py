"""Atomic writes: the one place a file or folder is written under a temporary name and renamed into place.

A reader (a resumed run, the web page, a second `kyara` command) then sees the old file or the new one,
never half of one. The temporary name sits next to the target (same file system, so the rename is atomic)
and starts with a dot. Bytes and text go to `.name.tmp`, which no reader mistakes for a picture or a tag
file; `atomic_path` keeps the suffix (`.name.tmp.png`) because PIL, onnx and torch pick the format from it.

A write that fails for the machine's reasons (a full disk: errno 28) leaves nothing behind and is raised
naming the file or folder that was being written, not the temporary name (or no name at all, as a failed
`write()` says it). `read_json` is the one reader of the project's JSON files: a broken one is one line
naming it.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import takewhile
from pathlib import Path
from typing import Any


def _named(exc: BaseException, path: Path, tmp: Path) -> BaseException:
    """`exc` naming `path` where it names no file or the temporary `tmp` (or something inside it): an OSError
    with an errno (a full disk) raised while writing says which output could not be written."""
    if not isinstance(exc, OSError) or exc.errno is None:
        return exc
    if exc.filename is not None:
        name = Path(os.fsdecode(exc.filename))
        if name != tmp and tmp not in name.parents:
            return exc
        if name != tmp:
            path = path / name.relative_to(tmp)
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first: what a mkdir would make."""
    return list(takewhile(lambda p: not p.exists() and not p.is_symlink(), (folder, *folder.parents)))


def _remove_made(made: Sequence[Path]) -> None:
    """Remove the folders a failed write made (deepest first), as long as they are empty."""
    for folder in made:
        try:
            folder.rmdir()
        except OSError:
            return


def _undo(exc: BaseException, tmp: Path, made: Sequence[Path], path: Path) -> None:
    """After a failed write into `tmp` (a temporary folder for `path`): remove it and the folders this write
    made, and raise `exc`, naming `path` rather than the temporary name when it is an OSError."""
    shutil.rmtree(tmp, ignore_errors=True)
    _remove_made(made)
    named = _named(exc, path, tmp)
    if named is exc:
        raise exc
    raise named from None


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Name `path` in an OSError raised without a file name inside the block: what a failed `write()` or
    `fsync()` on a full disk raises (for writes that cannot go through a temporary name, such as appends)."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None or exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None


@contextmanager
def _renamed(tmp: Path, path: Path) -> Iterator[Path]:
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        named = _named(exc, path, tmp)
        if named is exc:
            raise
        raise named from None


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


def move(path: str | Path, target: str | Path) -> None:
    """Move a file or folder to `target` on the same file system (one rename: it is there whole or not at
    all). Renames live here alone (tests/test_layers.py): `kyara build-site` carries a user's files into a new
    build with it."""
    os.rename(path, target)


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
    made = _missing_folders(path.parent)      # removed again if the folder is never completed
    if tmp.exists() or tmp.is_symlink():
        if own_tmp_only and not _made_by_atomic_dir(tmp):
            raise FileExistsError(f"{tmp} is in the way and was not left by an earlier run of this command: "
                                  "move it elsewhere or remove it, then try again")
        if tmp.is_symlink() or not tmp.is_dir():
            tmp.unlink()
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    holder = None
    try:
        tmp.mkdir(parents=True)
        (tmp / _TMP_MARK).write_text(_TMP_MARK_TEXT, encoding="utf-8")
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
    except BaseException as exc:
        _undo(exc, tmp, made, path)
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


@contextmanager
def staged_files(folder: str | Path, last: Sequence[str] = ()) -> Iterator[Path]:
    """Yield an empty hidden folder inside `folder` (made if missing) to write files into. On success each
    file written there is moved into `folder`, replacing a file of the same name and leaving other files
    alone (the names in `last` after the others: a manifest after the files it lists). On an error the
    staged files are removed, and so is `folder` with the parents this call made: a failed command leaves
    the folder as it found it.

    For outputs of many files beside files of the user's (`kyara sample`, `kyara export`); files only, no
    sub-folders. A killed process leaves its hidden `.staged-*` folder, which no reader lists.
    """
    folder = Path(folder)
    made = _missing_folders(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".staged-", dir=folder))
    except BaseException:
        _remove_made(made)
        raise
    try:
        yield stage
        files = sorted(stage.iterdir(), key=lambda p: (p.name in last, last.index(p.name) if p.name in last else 0,
                                                       p.name))
        for file in files:
            os.replace(file, folder / file.name)
        stage.rmdir()
    except BaseException as exc:
        _undo(exc, stage, made, folder)


def _kind(value: object) -> str:
    return {dict: "a JSON object", list: "a JSON list", str: "a string", bool: "true or false",
            type(None): "null"}.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def read_json(path: str | Path, kind: type | None = dict) -> Any:
    """The JSON in the file `path`, or a one-line ValueError naming the file: not UTF-8, not valid JSON (with
    the line and column), or (with `kind`, default dict) not a JSON object / list at the top."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}), not a JSON file") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if kind is not None and not isinstance(data, kind):
        raise ValueError(f"{path}: expected {_kind(kind())} at the top, got {_kind(data)}")
    return data
