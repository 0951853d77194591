"""The three sets of files the server may send, each a closed list read into memory once at start-up.

Serving only names found here (rather than any path under a folder) is what keeps path traversal out:
a request names a file, and the file is either on the list or the answer is 404, without touching the
disk. Reading the bytes at start-up, rather than on each request, means what is served is what was
checked: a model file is compared with the manifest's sha256 once, and a `?v=<sha256>` URL sent as
immutable can never carry other bytes, whatever happens to the folder while the server runs (a new
export is served after a restart). Only regular files are read: a symbolic link is refused, so a link
in a model folder or in static/ cannot expose a file from elsewhere.

Each file that compresses is also kept gzipped, made once here, so a first visit downloads about a third
of the bytes (the 14 MB wasm is 3.7 MB gzipped) without compressing anything per request: `kyara serve`
sends the copy to clients that accept gzip, `kyara build-site` writes it beside the file as `NAME.gz` for
hosts that serve such copies (nginx's gzip_static, Caddy's precompressed).
"""
from __future__ import annotations

import errno
import gzip
import hashlib
import json
import math
import os
import re
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

NAME_MAX = 255     # bytes in one file name on Linux, macOS and Windows file systems
_SHA256 = re.compile(r"[0-9a-f]{64}")

# What is worth compressing: text, WebAssembly, ONNX (the int8 model shrinks by a fifth, the fp32 one by
# a tenth) and the photo reader's weights (.bin). A copy that saves less than GZIP_MIN_SAVING of the bytes is not kept.
GZIP_SUFFIXES = frozenset({".wasm", ".mjs", ".js", ".onnx", ".json", ".css", ".svg", ".html", ".bin"})
GZIP_LEVEL = 6          # gzip's default: -9 makes the wasm 0.4 % smaller and doubles the start-up time
GZIP_MIN_SAVING = 0.05
_gzipped: dict[str, bytes | None] = {}       # sha256 -> its gzip copy: each content is compressed once a process
_gzipped_lock = threading.Lock()


def gzip_copy(data: bytes, sha256: str | None = None) -> bytes | None:
    """`data` gzipped (GZIP_LEVEL) with no timestamp or name in the header (the same input always gives the
    same bytes), or None when that saves less than 5 %. Remembered by content for the process: tests and
    benchmarks start many apps on the same files."""
    key = sha256 or hashlib.sha256(data).hexdigest()
    with _gzipped_lock:
        if key in _gzipped:
            return _gzipped[key]
    packed = gzip.compress(data, GZIP_LEVEL, mtime=0)
    result = packed if len(packed) <= (1 - GZIP_MIN_SAVING) * len(data) else None
    with _gzipped_lock:
        _gzipped[key] = result
    return result


@dataclass(frozen=True)
class Blob:
    """One file's bytes as read at start-up; `sha256` is its ETag (and, for a model file, its version);
    `gzipped` its gzip copy, or None where compressing does not pay (or the type is not compressed)."""

    data: bytes
    sha256: str
    gzipped: bytes | None = None

    @classmethod
    def of(cls, data: bytes, name: str) -> Blob:
        """Bytes made in memory (the static build's page), compressed by the rule for `name`'s suffix."""
        sha256 = hashlib.sha256(data).hexdigest()
        return cls(data, sha256, gzip_copy(data, sha256) if Path(name).suffix in GZIP_SUFFIXES else None)

    @classmethod
    def read(cls, path: Path) -> Blob:
        """Read `path` if it is a regular file. A symbolic link (even one pointing at a regular file) or
        anything else is a ValueError naming the path; a missing file is a FileNotFoundError."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} does not exist") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ValueError(f"{path} is a symbolic link: only regular files are served") from None
            raise
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise ValueError(f"{path} is not a regular file")
            data = file.read()
        return cls.of(data, path.name)


def read_all(paths: list[Path]) -> list[Blob]:
    """Blob.read of each path, side by side: zlib lets go of the GIL, so the large files compress on
    every core at once (the two wasm files are most of the start-up time)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(Blob.read, paths))


def _plain_name(name: object, where: Path) -> str:
    """A file name read from JSON, accepted only as a plain name in the model folder (no path, no
    hidden file, no control characters, not longer than a file system allows)."""
    if (not isinstance(name, str) or not name or name.startswith(".") or "/" in name or "\\" in name
            or not name.isprintable() or len(name.encode()) > NAME_MAX):
        raise ValueError(f"{where}: model file names must be plain file names, got {name!r}")
    return name


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: object, least: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value) and value.isprintable()


def _check_common(manifest: dict, path: Path) -> None:
    """The fields of both kinds of manifest that the page or the server read, where present."""
    for key in ("name", "version", "format"):
        if key in manifest and not isinstance(manifest[key], str):
            raise ValueError(f"{path}: {key!r} must be a string, got {_show(manifest[key])}")
    entries = [("the manifest", manifest), *((f"variant {i}", v) for i, v in enumerate(manifest.get("variants", [])))]
    for where, entry in entries:
        sha256 = entry.get("sha256")
        if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
            raise ValueError(f"{path}: {where}'s 'sha256' must be 64 hex digits, got {_show(sha256)}")
        if "bytes" in entry and entry["bytes"] is not None and not _is_int(entry["bytes"], 0):
            raise ValueError(f"{path}: {where}'s 'bytes' must be a whole number, got {_show(entry['bytes'])}")
        if "precision" in entry and not isinstance(entry["precision"], str):
            raise ValueError(f"{path}: {where}'s 'precision' must be a string, got {_show(entry['precision'])}")
        config = entry.get("session_config", {})
        if not isinstance(config, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in config.items()):
            raise ValueError(f"{path}: {where}'s 'session_config' must map strings to strings, "
                             f"got {_show(config)}")


def _check_model(manifest: dict, path: Path) -> None:
    """A generator's fields, as the page, kyara.js and export.runtime use them (docs/model-contract.md)."""
    tags = manifest["tags"]
    if not isinstance(tags, list) or not tags or not all(_is_text(tag) for tag in tags):
        raise ValueError(f"{path}: 'tags' must be a non-empty list of tag names, got {_show(tags)}")
    if len(set(tags)) != len(tags):
        raise ValueError(f"{path}: 'tags' names a tag twice")
    for key in ("noise_dim", "resolution"):
        if not _is_int(manifest[key]):
            raise ValueError(f"{path}: {key!r} must be a whole number above 0, got {_show(manifest[key])}")
    groups = manifest["groups"]
    if not isinstance(groups, list) or not all(isinstance(group, dict) for group in groups):
        raise ValueError(f"{path}: 'groups' must be a list of objects, got {_show(groups)}")
    known = set(tags)
    for i, group in enumerate(groups):
        where = f"group {i}"
        if not _is_text(group.get("name")):
            raise ValueError(f"{path}: {where}'s 'name' must be a non-empty string, got {_show(group.get('name'))}")
        where = f"group {group['name']!r}"
        for key in ("exclusive", "at_most_one"):
            if (key in group or key == "exclusive") and not isinstance(group.get(key), bool):
                raise ValueError(f"{path}: {where}'s {key!r} must be true or false, got {_show(group.get(key))}")
        members = group.get("tags")
        if (not isinstance(members, list) or not members
                or not all(isinstance(tag, str) and tag in known for tag in members)):
            raise ValueError(f"{path}: {where}'s 'tags' must be a non-empty list of tags from 'tags', "
                             f"got {_show(members)}")
        priors = group.get("priors")
        if (not isinstance(priors, list) or len(priors) != len(members)
                or not all(_is_number(prior) for prior in priors)):
            raise ValueError(f"{path}: {where}'s 'priors' must be one number per tag, got {_show(priors)}")


def _check_upscaler(manifest: dict, path: Path) -> None:
    """The upscaler's scale: kyara.js runs x2 networks (x4 is x2 twice)."""
    if manifest["scale"] != 2 or isinstance(manifest["scale"], bool):
        raise ValueError(f"{path}: 'scale' must be 2 (an x2 upscaler made by `kyara upscaler`), "
                         f"got {_show(manifest['scale'])}")


def looks_like_onnx(data: bytes) -> bool:
    """Whether `data` starts as an ONNX file does: a ModelProto, whose first field is ir_version (field 1, a
    varint: bytes 08 NN), followed by the key of another of its fields (producer_name, graph, opset_import,
    ...). A cheap check without the onnx package, which catches an empty file, a text or HTML file saved
    under the name, an LFS pointer or random bytes; the browser checks the rest."""
    return (len(data) > 2 and data[0] == 0x08 and 0 < data[1] < 0x80
            and data[2] < 0x80 and data[2] & 7 in (0, 2) and 2 <= data[2] >> 3 <= 15)


# The keys a served manifest must have, the command that makes such a folder and the check of the fields'
# types, for each kind of folder.
MANIFEST_KINDS = {
    "model": (("tags", "groups", "noise_dim", "resolution", "file"), "kyara export", _check_model),
    "upscaler": (("scale", "file"), "kyara upscaler", _check_upscaler),
}


@dataclass(frozen=True)
class ServedModel:
    """A model directory (a generator, or the upscaler): manifest.json plus the ONNX files its `file` and
    `variants` name, all checked and read at start-up."""

    directory: Path
    manifest: dict
    manifest_file: Blob
    files: dict[str, Blob]         # file name -> its bytes
    versions: dict[str, str]       # file name -> the manifest's sha256 ("" if it gives none): the ?v= that
                                   # makes a URL immutable

    @classmethod
    def load(cls, directory: str | os.PathLike, kind: str = "model") -> ServedModel:
        """Read and check the model (`kind` "model", a generator) or upscaler (`kind` "upscaler") in
        `directory`. Every problem is one line naming the file: a missing manifest or model file
        (FileNotFoundError), invalid JSON, a file name that is not a plain name, a field of the wrong type
        (`tags` a string, `noise_dim` "x", a group without a prior per tag, an upscaler's `scale` not 2), a
        symbolic link, a file whose sha256 or size is not the manifest's, or a file that is empty or does
        not start like an ONNX file (ValueError): the types and the ONNX check hold without a sha256 too."""
        required, made_by, check_fields = MANIFEST_KINDS[kind]
        directory = Path(directory).resolve()
        path = directory / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"no {kind} at {directory} (missing manifest.json); make one with `{made_by}` "
                f"or pass --{kind} DIR"
            )
        manifest_file = Blob.read(path)
        try:
            manifest = json.loads(manifest_file.data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(manifest, dict):
            raise ValueError(f"{path}: the manifest is not a JSON object")
        for key in required:
            if key not in manifest:
                raise ValueError(f"{path}: the manifest has no {key!r}")
        variants = manifest.get("variants", [])
        if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
            raise ValueError(f"{path}: 'variants' must be a list of objects")

        versions = {_plain_name(v.get("file"), path): str(v.get("sha256") or "") for v in variants}
        versions.setdefault(_plain_name(manifest["file"], path), str(manifest.get("sha256") or ""))
        _check_common(manifest, path)
        check_fields(manifest, path)
        sizes = {v["file"]: v["bytes"] for v in variants if v.get("bytes") is not None}
        for name in versions:
            if not (directory / name).exists() and not (directory / name).is_symlink():
                raise FileNotFoundError(f"{directory / name} does not exist (named in {path})")
        files = dict(zip(versions, read_all([directory / name for name in versions])))
        for name, sha256 in versions.items():
            blob = files[name]
            if sha256 and blob.sha256 != sha256:
                raise ValueError(
                    f"{directory / name}: its sha256 is {blob.sha256[:16]}..., {path} says {sha256[:16]}...: "
                    "the file is incomplete or from another export; copy or export it again"
                )
            if name in sizes and len(blob.data) != sizes[name]:
                raise ValueError(f"{directory / name}: {len(blob.data)} bytes, {path} says {sizes[name]}: the file is "
                                 "incomplete or from another export; copy or export it again")
            if not looks_like_onnx(blob.data):
                raise ValueError(f"{directory / name}: " + ("an empty file" if not blob.data else "not an ONNX file")
                                 + f" (named in {path}); copy or export it again")
        return cls(directory, manifest, manifest_file, files, versions)

    @property
    def version(self) -> str:
        """A hash of the manifest, which holds the sha256 of every model file: the static build's folder
        name for this model (model/<version>/), so a page only ever loads the manifest it was built with."""
        return self.manifest_file.sha256[:16]


def content_version(files: dict[str, Blob]) -> str:
    """A short hash of a set of files' names and contents: the version in their URLs."""
    digest = hashlib.sha256()
    for name, blob in files.items():
        digest.update(name.encode())
        digest.update(blob.data)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class StaticFiles:
    """The page's own modules and styles, versioned by a hash of their contents.

    The version goes in the URL path (/static/<version>/app.js), so the modules' relative imports keep
    it and every file can be cached as immutable; an edit changes the version and the page's links
    (after a restart: the files are read once). Symbolic links are left out.
    """

    directory: Path
    version: str
    files: dict[str, Blob]         # path relative to the folder, with "/" -> its bytes

    @classmethod
    def scan(cls, directory: str | os.PathLike) -> StaticFiles:
        directory = Path(directory).resolve()
        files = {}
        for folder, _, names in sorted(os.walk(directory)):      # os.walk does not enter linked folders
            for name in sorted(names):
                path = Path(folder) / name
                if path.is_symlink() or not path.is_file():
                    continue
                files[path.relative_to(directory).as_posix()] = Blob.read(path)
        return cls(directory, content_version(files), files)
