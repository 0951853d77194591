"""The files served from npm packages, as `npm ci` installs them from the repository's package-lock.json:
onnxruntime-web (the generator's runtime) and the photo reader (face-api and TensorFlow.js's WebAssembly
backend). Each is a closed list of files read into memory at start-up, like every file the server sends
(`webapp.assets`).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from webapp.assets import Blob, content_version, read_all

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
# The photo reader (tagsFromPhoto), as npm lays it out under node_modules/: face-api's browser bundle (TensorFlow.js
# inside), the four networks the page may use (the expression network only for models with `smile`, the age
# and sex one only for `male`), TensorFlow.js's WebAssembly backend (the SIMD build, and the plain one for
# browsers without SIMD) and each package's licence. A page fetches them only when a visitor reads a photo.
FACE_API = "@vladmandic/face-api"
TFJS_WASM = "@tensorflow/tfjs-backend-wasm"
PHOTO_NETWORKS = ("tiny_face_detector_model", "face_landmark_68_model", "face_expression_model", "age_gender_model")
PHOTO_FILES = (
    f"{FACE_API}/dist/face-api.esm.js",
    *(f"{FACE_API}/model/{net}{suffix}" for net in PHOTO_NETWORKS for suffix in ("-weights_manifest.json", ".bin")),
    f"{FACE_API}/LICENSE",
    f"{FACE_API}/package.json",
    f"{TFJS_WASM}/dist/tfjs-backend-wasm-simd.wasm",
    f"{TFJS_WASM}/dist/tfjs-backend-wasm.wasm",
    f"{TFJS_WASM}/package.json",             # names its licence, Apache-2.0 (the package has no LICENSE file)
)


@dataclass(frozen=True)
class OrtFiles:
    """onnxruntime-web's dist folder, as installed by `npm ci` from the repository's package-lock.json.

    `version` is a hash of the files served (not the npm version, which a patched copy would keep)."""

    dist: Path
    npm_version: str
    version: str
    files: dict[str, Blob]         # the ORT_FILES

    @classmethod
    def find(cls, package_dir: str | os.PathLike, repo_root: Path) -> OrtFiles:
        package_dir = Path(package_dir).resolve()
        package_json = package_dir / "package.json"
        missing = [name for name in ORT_FILES if not (package_dir / "dist" / name).is_file()]
        if not package_json.is_file() or missing:
            raise FileNotFoundError(
                f"onnxruntime-web is not installed at {package_dir}: run `npm ci` in {repo_root} "
                "(needs Node.js; it installs the version pinned in package-lock.json)"
            )
        npm_version = json.loads(package_json.read_text(encoding="utf-8"))["version"]
        dist = package_dir / "dist"
        files = dict(zip(ORT_FILES, read_all([dist / name for name in ORT_FILES])))
        return cls(dist, npm_version, content_version(files), files)


def _bundled_tfjs_wasm(version_file: Path) -> str | None:
    """The tfjs-backend-wasm version face-api's bundle was built with, from its dist/tfjs.version.js
    (`var i="4.22.0";...{..."tfjs-backend-wasm":i}`); None where the file does not say."""
    try:
        text = version_file.read_text(encoding="utf-8")
    except OSError:
        return None
    variables = dict(re.findall(r'var (\w+)="([\d.]+)"', text))
    name = re.search(r'"tfjs-backend-wasm":(\w+)', text)
    return variables.get(name.group(1)) if name else None


@dataclass(frozen=True)
class PhotoFiles:
    """The photo reader's files (PHOTO_FILES) from a node_modules folder, as installed by `npm ci`.

    face-api's bundle carries TensorFlow.js's WebAssembly backend as JavaScript, which only runs the wasm
    file of its own version: a tfjs-backend-wasm of another version is refused here rather than failing in a
    visitor's browser. `version` is a hash of the files served."""

    node_modules: Path
    versions: dict[str, str]       # package -> its npm version
    version: str
    files: dict[str, Blob]         # path under node_modules/ -> its bytes

    @classmethod
    def find(cls, node_modules: str | os.PathLike, repo_root: Path) -> PhotoFiles:
        node_modules = Path(node_modules).resolve()
        missing = [name for name in PHOTO_FILES if not (node_modules / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"the photo reader ({FACE_API}, {TFJS_WASM}) is not installed in {node_modules} ({missing[0]} is "
                f"missing): run `npm ci` in {repo_root} (needs Node.js; it installs the versions pinned in "
                "package-lock.json)"
            )
        files = dict(zip(PHOTO_FILES, read_all([node_modules / name for name in PHOTO_FILES])))
        versions = {package: json.loads(files[f"{package}/package.json"].data)["version"]
                    for package in (FACE_API, TFJS_WASM)}
        bundled = _bundled_tfjs_wasm(node_modules / FACE_API / "dist" / "tfjs.version.js")
        if bundled is not None and bundled != versions[TFJS_WASM]:
            raise ValueError(f"{FACE_API} {versions[FACE_API]} runs TensorFlow.js {bundled}, but {TFJS_WASM} "
                             f"{versions[TFJS_WASM]} is installed: pin {TFJS_WASM} to {bundled} in package.json and "
                             "run `npm install`")
        return cls(node_modules, versions, content_version(files), files)
