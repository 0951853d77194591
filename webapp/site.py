"""`kyara build-site OUT`: the page as a folder of plain files, for any static file server (no server code).

What `kyara serve` would send, written out: the page (index.html), the service worker (sw.js), the
page's modules, onnxruntime-web, the model, the upscaler (for HD faces) and the photo reader, with the same
checks at the start (a model file that does not match its manifest stops the build). Every file but the page
and the worker sits in a folder named after a hash of its contents (static/<v>/, ort/<v>/, model/<v>/,
upscaler/<v>/, photo/<v>/), and the page names those folders, so a browser that kept an old page still loads
the old model with it, and a new build is never mixed with an old one in a cache. The model's folder is
versioned by its manifest, which holds each file's sha256.

A static host cannot send the COOP/COEP headers that multi-threaded WebAssembly needs; the page's service
worker adds them to its own answers, so the page is isolated from its second load on (the first installs
the worker), and single-threaded, saying so in its status line, where no service worker runs.

Beside every file that compresses lies its gzip copy (NAME.gz) for hosts that serve those to clients that
accept them (nginx `gzip_static on`, Caddy `file_server { precompressed gzip }`); other hosts ignore them.

The build removes only what it wrote. Its record, kyara-site.json, lists every file it wrote with its
sha256, and a rebuild replaces OUT only when that record is there and valid: then the files it lists, still
as written, are deleted, and anything else in OUT (a file someone added, or one of the build's files changed
since) is kept, moved into the new build at the same path; a rebuild that would have to overwrite such a
file is refused instead. A folder without a valid record (a typo such as `kyara build-site ~`, a record
someone wrote by hand) is refused, and so is a build of the older format (`kyara-site/1`), whose record
does not list its files: remove that one by hand. The new build is written beside OUT first
(`.OUT.tmp`, through common.files.atomic_dir), so a failed build leaves OUT as it was; a `.OUT.tmp` that an
earlier build did not leave is refused, never removed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path, PurePosixPath

from common.files import atomic_dir, move
from webapp.assets import Blob

SITE_FILE = "kyara-site.json"        # what the build wrote; marks the folder as one a rebuild may replace
SITE_FORMAT = "kyara-site/2"         # /2: the record lists each file written, with its sha256
OLD_FORMATS = ("kyara-site/1",)      # records that list no files: such a build is never replaced
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _not_ours(out: Path, why: str) -> ValueError:
    return ValueError(f"{out} exists and is not a folder made by `kyara build-site` ({why}); "
                      "name a new folder, or remove it first")


def _is_build_path(name: object) -> bool:
    """A path the build may have written: relative, "/"-separated, no empty, "." or ".." part."""
    if not isinstance(name, str) or not name or name == SITE_FILE or not name.isprintable() or "\\" in name:
        return False
    parts = name.split("/")
    return not name.startswith("/") and all(part not in ("", ".", "..") for part in parts)


def check_out(out: Path) -> dict[str, str] | None:
    """OUT must be new (None), or an earlier build of this format, whose record's list of written files
    (path -> sha256) is returned: refusing anything else keeps a typo (`kyara build-site ~`) or a forged
    record from deleting a folder. Every refusal is one line (ValueError)."""
    if not out.exists() and not out.is_symlink():
        return None
    record_path = out / SITE_FILE
    if not out.is_dir() or record_path.is_symlink() or not record_path.is_file():
        raise _not_ours(out, f"no {SITE_FILE} in it")
    try:
        record = json.loads(record_path.read_bytes())
    except (ValueError, OSError):
        record = None
    form = record.get("format") if isinstance(record, dict) else None
    if form in OLD_FORMATS:
        raise ValueError(f"{out} was made by an older `kyara build-site`, whose {SITE_FILE} does not list the "
                         "files it wrote, so a rebuild cannot tell them from yours: remove the folder by hand "
                         "(keeping any file of yours), then build again")
    written = record.get("written") if form == SITE_FORMAT else None
    if (not isinstance(written, dict) or not written
            or not all(_is_build_path(name) and isinstance(sha, str) and _SHA256.fullmatch(sha)
                       for name, sha in written.items())):
        raise _not_ours(out, f"its {SITE_FILE} is not the record of a build")
    return written


def _sha256_of(path: Path) -> str | None:
    """The sha256 of a regular file (not through a link), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return None
        digest = hashlib.sha256()
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _as_written(path: Path, rel: str, written: dict[str, str]) -> bool:
    """Whether the file at `path` is one the build wrote (its record lists `rel`) and still as written: a
    regular file with the sha256 the record gives."""
    return rel in written and _sha256_of(path) == written[rel]


def _entries(folder: Path) -> list[tuple[str, Path, bool]]:
    """Every file, link and folder under `folder`, deepest first: (path relative to it, path, is a folder
    that is not a link). Links are not followed."""
    found = []
    for here, dirs, files in os.walk(folder, topdown=False):
        here = Path(here)
        for name in files + dirs:
            path = here / name
            found.append((path.relative_to(folder).as_posix(), path, name in dirs and not path.is_symlink()))
    return found


def _yours(out: Path, written: dict[str, str]) -> list[tuple[str, bool]]:
    """What in the earlier build `out` it did not write, as (path, is a folder): files it does not list or
    that changed since it wrote them, links, and folders that hold none of its files."""
    build_dirs = {str(parent) for name in written for parent in PurePosixPath(name).parents}
    yours = []
    for rel, path, is_dir in _entries(out):
        if is_dir:
            if rel not in build_dirs:
                yours.append((rel, True))
        elif rel != SITE_FILE and not _as_written(path, rel, written):
            yours.append((rel, False))
    return yours


def _in_the_way(yours: list[tuple[str, bool]], new: set[str]) -> str | None:
    """The first path of `yours` where the new build writes a file, or (for a file) needs a folder."""
    new_dirs = {str(parent) for name in new for parent in PurePosixPath(name).parents}
    for rel, is_dir in yours:
        if (rel in new or (not is_dir and rel in new_dirs)
                or any(str(parent) in new for parent in PurePosixPath(rel).parents)):
            return rel
    return None


def _carry_over(written: dict[str, str]):
    """atomic_dir's replace_old for a rebuild: in the earlier build (`old`, moved aside), delete the files
    its record lists that are still as written, and move everything else into the new build (`new`) at the
    same path; folders of its own are removed once empty, other folders are kept (made in `new`)."""
    build_dirs = {str(parent) for name in written for parent in PurePosixPath(name).parents}

    def replace_old(old: Path, new: Path) -> None:
        left = []
        for rel, path, is_dir in _entries(old):          # deepest first: a folder after what it holds
            if is_dir:
                try:
                    if rel not in build_dirs:
                        (new / rel).mkdir(parents=True, exist_ok=True)
                    path.rmdir()
                except OSError:
                    left.append(rel)
            elif rel == SITE_FILE or _as_written(path, rel, written):
                path.unlink()
            elif (new / rel).exists() or (new / rel).is_symlink():
                left.append(rel)                          # only if someone wrote there meanwhile
            else:
                try:
                    (new / rel).parent.mkdir(parents=True, exist_ok=True)
                    move(path, new / rel)
                except OSError:
                    left.append(rel)
        try:
            old.rmdir()
        except OSError:
            raise ValueError(f"the new build is in {new}, but some of what the earlier one held could not be "
                             f"moved into it ({left[0] if left else 'see there'}): it is in {old}") from None

    return replace_old


def site_files(app) -> dict[str, Blob]:
    """Every file of the static build of `app` (create_app's), by its path in the folder."""
    from webapp.views import page_html

    kyara = app.extensions["kyara"]
    model, ort, static, upscaler, photo = (kyara[key] for key in ("model", "ort", "static", "upscaler", "photo"))
    static_base, ort_base, model_base = f"static/{static.version}/", f"ort/{ort.version}/", f"model/{model.version}/"
    upscaler_base, photo_base = f"upscaler/{upscaler.version}/", f"photo/{photo.version}/"
    with app.app_context():
        page = page_html(static_base, ort_base, model_base, upscaler_base, photo_base)
    files = {"index.html": Blob.of(page.encode("utf-8"), "index.html"), "sw.js": static.files["sw.js"]}
    files.update({static_base + name: blob for name, blob in static.files.items()})
    files.update({ort_base + name: blob for name, blob in ort.files.items()})
    files[model_base + "manifest.json"] = model.manifest_file
    files.update({model_base + name: blob for name, blob in model.files.items()})
    files[upscaler_base + "manifest.json"] = upscaler.manifest_file
    files.update({upscaler_base + name: blob for name, blob in upscaler.files.items()})
    files.update({photo_base + name: blob for name, blob in photo.files.items()})
    return files


def build_site(out: str | os.PathLike, model_dir: str | os.PathLike | None = None,
               upscaler_dir: str | os.PathLike | None = None) -> dict:
    """Write the static build of the model in `model_dir` and the upscaler in `upscaler_dir` (default: the
    bundled ones) to `out`, atomically (a failed build leaves `out` as it was), keeping any file in an
    earlier build at `out` that the build did not write. Returns the build's record (kyara-site.json):
    files, bytes, gzip bytes, and each file written with its sha256."""
    from webapp import create_app

    out = Path(out).resolve()
    earlier = check_out(out)
    app = create_app(model_dir, upscaler_dir=upscaler_dir)
    files = site_files(app)
    written = {}
    for name, blob in files.items():
        written[name] = blob.sha256
        if blob.gzipped is not None:
            written[name + ".gz"] = hashlib.sha256(blob.gzipped).hexdigest()
    if earlier is not None:
        in_the_way = _in_the_way(_yours(out, earlier), set(written) | {SITE_FILE})
        if in_the_way is not None:
            raise ValueError(f"{out / in_the_way} was not written by the earlier build (or was changed since) and "
                             "the new build needs its place: move it out of the folder, then build again")
    model = app.extensions["kyara"]["model"]
    summary = {
        "format": SITE_FORMAT,
        "model": {"name": model.manifest.get("name"), "version": model.manifest.get("version"),
                  "folder": f"model/{model.version}/", "sha256": model.manifest.get("sha256")},
        "onnxruntime-web": app.extensions["kyara"]["ort"].npm_version,
        "files": len(files),
        "bytes": sum(len(blob.data) for blob in files.values()),
        "gzip_copies": sum(blob.gzipped is not None for blob in files.values()),
        "written": written,
    }
    replace_old = _carry_over(earlier) if earlier is not None else None
    with atomic_dir(out, own_tmp_only=True, replace_old=replace_old) as tmp:
        for name, blob in files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob.data)
            if blob.gzipped is not None:
                path.with_name(path.name + ".gz").write_bytes(blob.gzipped)
        (tmp / SITE_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
