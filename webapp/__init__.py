"""The Kyara web page: a Flask app that serves the page, onnxruntime-web, the exported model and the photo reader.

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

from webapp.assets import ServedModel, StaticFiles
from webapp.npm import OrtFiles, PhotoFiles

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "default"
DEFAULT_ORT_DIR = REPO_ROOT / "node_modules" / "onnxruntime-web"
DEFAULT_UPSCALER_DIR = REPO_ROOT / "models" / "upscaler"
DEFAULT_PHOTO_DIR = REPO_ROOT / "node_modules"


def create_app(model_dir: str | os.PathLike | None = None, ort_dir: str | os.PathLike | None = None,
               upscaler_dir: str | os.PathLike | None = None, photo_dir: str | os.PathLike | None = None) -> Flask:
    """Build the app. Directories come from the arguments, else KYARA_MODEL_DIR / KYARA_ORT_DIR /
    KYARA_UPSCALER_DIR / KYARA_PHOTO_DIR, else the repository's models/default, node_modules/onnxruntime-web,
    models/upscaler (the page's HD faces; the browser downloads it only when a visitor asks for HD) and
    node_modules (the photo reader's npm packages, downloaded only when a visitor reads a photo).

    Relative directories are taken from the current directory. Raises FileNotFoundError or ValueError
    (one clear line, printed by the CLI) when the manifest, a model file or an npm package is missing, or
    a model file does not match the manifest's sha256, so a broken set-up fails at start rather than as
    a blank page.
    """
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(MODEL_DIR=str(DEFAULT_MODEL_DIR), ORT_DIR=str(DEFAULT_ORT_DIR),
                            UPSCALER_DIR=str(DEFAULT_UPSCALER_DIR), PHOTO_DIR=str(DEFAULT_PHOTO_DIR))
    app.config.from_prefixed_env("KYARA")
    for key, value in (("MODEL_DIR", model_dir), ("ORT_DIR", ort_dir), ("UPSCALER_DIR", upscaler_dir),
                       ("PHOTO_DIR", photo_dir)):
        if value is not None:
            app.config[key] = str(value)

    app.extensions["kyara"] = {
        "model": ServedModel.load(app.config["MODEL_DIR"]),
        "upscaler": ServedModel.load(app.config["UPSCALER_DIR"], kind="upscaler"),
        "ort": OrtFiles.find(app.config["ORT_DIR"], REPO_ROOT),
        "photo": PhotoFiles.find(app.config["PHOTO_DIR"], REPO_ROOT),
        "static": StaticFiles.scan(Path(__file__).parent / "static"),
    }

    from webapp import views
    app.register_blueprint(views.bp)
    return app
