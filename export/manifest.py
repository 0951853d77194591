"""The model manifest: what a caller in any language needs to feed the model and read its output.

It is stored twice: as `manifest.json` beside the ONNX files, and inside every ONNX file under the
`metadata_props` key `kyara.manifest`, so a model file that travels alone still describes itself.
A file cannot hold its own hash, so the embedded copy leaves out the hash fields: the top-level `sha256`
and each variant's `sha256` and `bytes`. Everything else is identical.

Torch-free: the runtime and the web app read manifests too.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

from common.files import read_json
from common.vocab import Vocabulary

FORMAT = "kyara-model/1"
MANIFEST_KEY = "kyara.manifest"
MANIFEST_FILE = "manifest.json"


def build_manifest(*, name: str, version: str, vocab: Vocabulary, priors: list[float], resolution: int,
                   noise_dim: int, default_file: str, variants: list[dict], training: dict,
                   truncation: float = 1.0) -> dict:
    """The manifest without hash fields (the embedded copy); `with_hashes` completes it.

    `truncation` is already inside the model (`export.fold.fold_truncation`): callers still feed standard
    normal noise, and the manifest says how far the model draws it in, so a figure can be read for what it is.
    Like `at_most_one`, it is written only where it is not the default, so older manifests stay as they were.
    """
    prior_of = dict(zip(vocab.tags, priors))
    n, t, r = "N", len(vocab), resolution
    # `at_most_one` is written only where true, so a colour-only model's manifest stays as it always was.
    rule = "exactly one tag on in each exclusive group; "
    if any(g.at_most_one for g in vocab.groups):
        rule += "at most one tag on in each at_most_one group; "
    return {
        "format": FORMAT,
        "name": name,
        "version": version,
        "file": default_file,
        "resolution": resolution,
        "noise_dim": noise_dim,
        "tags": list(vocab.tags),
        "groups": [{"name": g.name, "exclusive": g.exclusive, **({"at_most_one": True} if g.at_most_one else {}),
                    "tags": list(g.tags), "priors": [round(float(prior_of[tag]), 6) for tag in g.tags]}
                   for g in vocab.groups],
        "label_encoding": {
            "dtype": "float32", "on": 1.0, "off": 0.0, "order": "tags",
            "rule": rule + "tags of other groups on or off independently",
        },
        "inputs": [
            {"name": "noise", "dtype": "float32", "shape": [n, noise_dim], "distribution": "standard normal",
             **({"truncation": truncation} if truncation != 1 else {})},
            {"name": "labels", "dtype": "float32", "shape": [n, t], "encoding": "label_encoding"},
        ],
        "outputs": [
            {"name": "rgba", "dtype": "uint8", "shape": [n, r, r, 4], "layout": "NHWC, RGBA, alpha 255",
             "use": "ImageData for a canvas, one image per row"},
            {"name": "image", "dtype": "float32", "shape": [n, 3, r, r], "layout": "NCHW, RGB",
             "range": [-1.0, 1.0], "use": "the generator's raw output, before the conversion to bytes"},
        ],
        "variants": variants,
        "training": training,
    }


def embed_manifest(model, manifest: dict) -> None:
    """Store the manifest in an onnx.ModelProto's metadata_props under MANIFEST_KEY (replacing an older one)."""
    props = [p for p in model.metadata_props if p.key != MANIFEST_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    model.metadata_props.add(key=MANIFEST_KEY, value=json.dumps(manifest, sort_keys=True))


def plain_name(name: object, manifest_path: str | Path) -> str:
    """A model file name from a manifest, refused unless it is a plain name of a file beside the manifest.

    Manifests travel with downloaded models: an absolute path or `..` in one would open any file on the disk.
    """
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"{manifest_path}: model files must be named by plain file names, got {name!r}")
    return name


def with_hashes(manifest: dict, folder: str | Path) -> dict:
    """The full manifest: the embedded copy plus the size and sha256 of each file in `folder`."""
    full = copy.deepcopy(manifest)
    for variant in full["variants"]:
        path = Path(folder) / plain_name(variant["file"], Path(folder) / MANIFEST_FILE)
        variant["bytes"] = path.stat().st_size
        variant["sha256"] = sha256_of(path)
    full["sha256"] = next(v["sha256"] for v in full["variants"] if v["file"] == full["file"])
    return full


def without_hashes(manifest: dict) -> dict:
    """The embedded copy of a full manifest: without the hash fields (see the module docstring)."""
    stripped = {k: v for k, v in manifest.items() if k != "sha256"}
    stripped["variants"] = [{k: v for k, v in variant.items() if k not in ("sha256", "bytes")}
                            for variant in manifest["variants"]]
    return stripped


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_file(path: str | Path) -> Path:
    """The ONNX file a user means: the file itself, or a model folder's default file (its manifest's `file`)."""
    path = Path(path)
    if path.is_dir():
        manifest_path = path / MANIFEST_FILE
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{path}: a folder without {MANIFEST_FILE}; pass the .onnx file or a model "
                                    "folder made by `kyara export`")
        try:
            name = json.loads(manifest_path.read_text())["file"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{manifest_path}: not a Kyara manifest ({type(exc).__name__}: {exc})") from None
        path = path / plain_name(name, manifest_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    return path


def check_listed_file(path: str | Path) -> None:
    """Where a model file sits beside a manifest.json that lists it with a size or sha256 (`with_hashes`), the
    file must be the one listed: a one-line ValueError naming the file otherwise (cut short in a copy, edited,
    or from another export), as `kyara serve` and `build-site` refuse it. A file no manifest lists passes."""
    path = Path(path)
    manifest_path = path.parent / MANIFEST_FILE
    if not manifest_path.is_file():
        return
    manifest = read_json(manifest_path)
    variants = manifest.get("variants", [])
    listed = [v for v in variants if isinstance(v, dict) and v.get("file") == path.name] \
        if isinstance(variants, list) else []
    if not listed and manifest.get("file") == path.name:
        listed = [{"sha256": manifest.get("sha256")}]
    for entry in listed:
        size, sha256 = entry.get("bytes"), entry.get("sha256")
        if isinstance(size, int) and not isinstance(size, bool) and path.stat().st_size != size:
            raise ValueError(f"{path}: {path.stat().st_size} bytes, {manifest_path} says {size}: the file is "
                             "incomplete or from another export; copy or export it again")
        if isinstance(sha256, str) and sha256:
            actual = sha256_of(path)
            if actual != sha256:
                raise ValueError(f"{path}: its sha256 is {actual[:16]}..., {manifest_path} says {sha256[:16]}...: "
                                 "the file was changed or is from another export; copy or export it again")
