"""`kyara build-site OUT`: the page as a folder of plain files, for any static file server (no server code).

What `kyara serve` would send, written out: the page (index.html), the service worker (sw.js), the
page's modules, onnxruntime-web, the model and the upscaler (for HD faces), with the same checks at the start (a model file that does
not match its manifest stops the build). Every file but the page and the worker sits in a folder named
after a hash of its contents (static/<v>/, ort/<v>/, model/<v>/, upscaler/<v>/), and the page names those folders, so a
browser that kept an old page still loads the old model with it, and a new build is never mixed with an
old one in a cache. The model's folder is versioned by its manifest, which holds each file's sha256.

A static host cannot send the COOP/COEP headers that multi-threaded WebAssembly needs; the page's service
worker adds them to its own answers, so the page is isolated from its second load on (the first installs
the worker), and single-threaded, saying so in its status line, where no service worker runs.

Beside every file that compresses lies its gzip copy (NAME.gz) for hosts that serve those to clients that
accept them (nginx `gzip_static on`, Caddy `file_server { precompressed gzip }`); other hosts ignore them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from common.files import atomic_dir
from webapp.assets import Blob

SITE_FILE = "kyara-site.json"        # what the build holds; marks the folder as one a rebuild may replace
SITE_FORMAT = "kyara-site/1"


def check_out(out: Path) -> None:
    """OUT must be new, or an earlier build (which is replaced): refusing anything else keeps a typo
    (`kyara build-site ~`) from deleting a folder."""
    if out.exists() and not (out.is_dir() and (out / SITE_FILE).is_file()):
        raise ValueError(f"{out} exists and is not a folder made by `kyara build-site` (no {SITE_FILE} in it); "
                         "name a new folder, or remove it first")


def site_files(app) -> dict[str, Blob]:
    """Every file of the static build of `app` (create_app's), by its path in the folder."""
    from webapp.views import page_html

    kyara = app.extensions["kyara"]
    model, ort, static, upscaler = kyara["model"], kyara["ort"], kyara["static"], kyara["upscaler"]
    static_base, ort_base, model_base = f"static/{static.version}/", f"ort/{ort.version}/", f"model/{model.version}/"
    upscaler_base = f"upscaler/{upscaler.version}/"
    with app.app_context():
        page = page_html(static_base, ort_base, model_base, upscaler_base)
    files = {"index.html": Blob.of(page.encode("utf-8"), "index.html"), "sw.js": static.files["sw.js"]}
    files.update({static_base + name: blob for name, blob in static.files.items()})
    files.update({ort_base + name: blob for name, blob in ort.files.items()})
    files[model_base + "manifest.json"] = model.manifest_file
    files.update({model_base + name: blob for name, blob in model.files.items()})
    files[upscaler_base + "manifest.json"] = upscaler.manifest_file
    files.update({upscaler_base + name: blob for name, blob in upscaler.files.items()})
    return files


def build_site(out: str | os.PathLike, model_dir: str | os.PathLike | None = None,
               upscaler_dir: str | os.PathLike | None = None) -> dict:
    """Write the static build of the model in `model_dir` and the upscaler in `upscaler_dir` (default: the
    bundled ones) to `out`, atomically (a failed build leaves `out` as it was). Returns what was written:
    files, bytes, gzip bytes."""
    from webapp import create_app

    out = Path(out).resolve()
    check_out(out)
    app = create_app(model_dir, upscaler_dir=upscaler_dir)
    files = site_files(app)
    model = app.extensions["kyara"]["model"]
    summary = {
        "format": SITE_FORMAT,
        "model": {"name": model.manifest.get("name"), "version": model.manifest.get("version"),
                  "folder": f"model/{model.version}/", "sha256": model.manifest.get("sha256")},
        "onnxruntime-web": app.extensions["kyara"]["ort"].npm_version,
        "files": len(files),
        "bytes": sum(len(blob.data) for blob in files.values()),
        "gzip_copies": sum(blob.gzipped is not None for blob in files.values()),
    }
    with atomic_dir(out) as tmp:
        for name, blob in files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob.data)
            if blob.gzipped is not None:
                path.with_name(path.name + ".gz").write_bytes(blob.gzipped)
        (tmp / SITE_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
