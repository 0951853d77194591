"""The Kyara web page: a Flask app that serves the page, onnxruntime-web and the exported model.

Nothing is computed on the server. The browser downloads the ONNX file once and generates faces itself
with onnxruntime-web, so the server only has to serve files with the right headers: cross-origin
isolation (COOP/COEP) so WebAssembly can use threads, a strict CSP, exact MIME types and cache
headers that let the browser keep the large files for good.

This package must not import torch or the training/export/tagger packages: `kyara serve` has to start
on a machine that only has Flask.
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from webapp.assets import OrtFiles, ServedModel, StaticFiles

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "default"
DEFAULT_ORT_DIR = REPO_ROOT / "node_modules" / "onnxruntime-web"


def create_app(model_dir: str | os.PathLike | None = None, ort_dir: str | os.PathLike | None = None) -> Flask:
    """Build the app. Directories come from the arguments, else KYARA_MODEL_DIR / KYARA_ORT_DIR, else the
    repository's models/default and node_modules/onnxruntime-web.

    Relative directories are taken from the current directory. Raises FileNotFoundError or ValueError
    (one clear line, printed by the CLI) when the manifest, a model file or the npm package is missing, or
    a model file does not match the manifest's sha256, so a broken set-up fails at start rather than as
    a blank page.
    """
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(MODEL_DIR=str(DEFAULT_MODEL_DIR), ORT_DIR=str(DEFAULT_ORT_DIR))
    app.config.from_prefixed_env("KYARA")
    if model_dir is not None:
        app.config["MODEL_DIR"] = str(model_dir)
    if ort_dir is not None:
        app.config["ORT_DIR"] = str(ort_dir)

    app.extensions["kyara"] = {
        "model": ServedModel.load(app.config["MODEL_DIR"]),
        "ort": OrtFiles.find(app.config["ORT_DIR"], REPO_ROOT),
        "static": StaticFiles.scan(Path(__file__).parent / "static"),
    }

    from webapp import views
    app.register_blueprint(views.bp)
    return app
