"""The three sets of files the server may send, each a closed list read once at start-up.

Serving only names found here (rather than any path under a folder) is what keeps path traversal out:
a request names a file, and the file is either on the list or the answer is 404.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

# onnxruntime-web 1.30 files the page loads: the CPU build and its threaded wasm, and the WebGPU build
# with its asyncify wasm (fetched only when the browser offers a WebGPU adapter).
ORT_FILES = (
    "ort.wasm.min.mjs",
    "ort-wasm-simd-threaded.mjs",
    "ort-wasm-simd-threaded.wasm",
    "ort.webgpu.min.mjs",
    "ort-wasm-simd-threaded.asyncify.mjs",
    "ort-wasm-simd-threaded.asyncify.wasm",
)


def _plain_name(name: object, where: Path) -> str:
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"{where}: model file names must be plain file names, got {name!r}")
    return name


@dataclass(frozen=True)
class ServedModel:
    """A model directory: manifest.json plus the ONNX files its `file` and `variants` name."""

    directory: Path
    manifest: dict
    files: dict[str, str]          # file name -> sha256 (the version a URL's ?v= must match)

    @classmethod
    def load(cls, directory: Path) -> ServedModel:
        path = directory / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"no model at {directory} (missing manifest.json); export one with `kyara export` "
                "or pass --model DIR"
            )
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        for key in ("tags", "groups", "noise_dim", "resolution", "file"):
            if key not in manifest:
                raise ValueError(f"{path}: the manifest has no {key!r}")
        files = {
            _plain_name(v.get("file"), path): str(v.get("sha256", ""))
            for v in manifest.get("variants", [])
        }
        default = _plain_name(manifest["file"], path)
        files.setdefault(default, str(manifest.get("sha256", "")))
        return cls(directory, manifest, files)


@dataclass(frozen=True)
class OrtFiles:
    """onnxruntime-web's dist folder, as installed by `npm ci` from the repository's package-lock.json."""

    dist: Path
    version: str

    @classmethod
    def find(cls, package_dir: Path, repo_root: Path) -> OrtFiles:
        package_json = package_dir / "package.json"
        missing = [name for name in ORT_FILES if not (package_dir / "dist" / name).is_file()]
        if not package_json.is_file() or missing:
            raise FileNotFoundError(
                f"onnxruntime-web is not installed at {package_dir}: run `npm ci` in {repo_root} "
                "(needs Node.js; it installs the version pinned in package-lock.json)"
            )
        version = json.loads(package_json.read_text(encoding="utf-8"))["version"]
        return cls(package_dir / "dist", version)


@dataclass(frozen=True)
class StaticFiles:
    """The page's own modules and styles, versioned by a hash of their contents.

    The version goes in the URL path (/static/<version>/app.js), so the modules' relative imports keep
    it and every file can be cached as immutable; an edit changes the version and the page's links.
    """

    directory: Path
    version: str

    @classmethod
    def scan(cls, directory: Path) -> StaticFiles:
        digest = hashlib.sha256()
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            digest.update(path.relative_to(directory).as_posix().encode())
            digest.update(path.read_bytes())
        return cls(directory, digest.hexdigest()[:16])
