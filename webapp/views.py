"""Routes: the page, its static modules, onnxruntime-web's files and the model. GET (and HEAD) only.

Cache policy: a URL that carries the content's version (the static hash or ort version in the path,
the ONNX file's sha256 in ?v=) is immutable for a year; the page, the manifest and the service worker
are `no-cache` (always revalidated with their ETag), so a new model or page shows up on the next visit.
"""
from __future__ import annotations

import mimetypes
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, render_template, request, send_file
from werkzeug.security import safe_join

from webapp.assets import ORT_FILES

bp = Blueprint("web", __name__)

# Python's mimetypes table has no .onnx and, depending on the system, may lack .wasm or call .mjs
# something else; browsers refuse to compile wasm or import modules with the wrong type.
MIME_TYPES = {
    ".wasm": "application/wasm",
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".onnx": "application/octet-stream",
    ".json": "application/json",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
}
YEAR = 365 * 24 * 3600

# 'wasm-unsafe-eval' lets WebAssembly compile without allowing eval(); onnxruntime-web starts its
# threads as module workers from our own origin, so no blob: or data: scripts are needed.
CSP = "; ".join((
    "default-src 'none'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self'",
    "connect-src 'self'",
    "img-src 'self'",
    "style-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))


def _kyara(key: str):
    return current_app.extensions["kyara"][key]


def _send(path: Path, immutable: bool) -> Response:
    """Send one file with its exact MIME type, an ETag, and the cache policy its URL allows."""
    if not path.is_file():
        abort(404)
    mimetype = MIME_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = send_file(path, mimetype=mimetype, conditional=True, etag=True, max_age=None)
    _cache(response, immutable)
    return response


def _cache(response: Response, immutable: bool) -> None:
    if immutable:
        response.cache_control.no_cache = None   # send_file's default; it would overrule max-age
        response.cache_control.public = True
        response.cache_control.max_age = YEAR
        response.cache_control.immutable = True
    else:
        response.cache_control.no_cache = True


def _route(rule: str, **options):
    """A GET route without Flask's automatic OPTIONS answer: every other method gets 405."""
    return bp.route(rule, methods=["GET"], provide_automatic_options=False, **options)


@_route("/")
def index() -> Response:
    static, ort, model = _kyara("static"), _kyara("ort"), _kyara("model")
    html = render_template(
        "index.html",
        static_base=f"/static/{static.version}/",
        ort_base=f"/ort/{ort.version}/",
        model_name=model.manifest.get("name", "model"),
    )
    response = Response(html, mimetype="text/html")
    response.add_etag()
    _cache(response, immutable=False)
    return response.make_conditional(request)


@_route("/sw.js")
def service_worker() -> Response:
    """At the root, because a service worker only controls pages under its own path."""
    return _send(_kyara("static").directory / "sw.js", immutable=False)


@_route("/static/<version>/<path:filename>")
def static_file(version: str, filename: str) -> Response:
    static = _kyara("static")
    path = safe_join(str(static.directory), filename)
    if path is None:
        abort(404)
    return _send(Path(path), immutable=version == static.version)


@_route("/ort/<version>/<name>")
def ort_file(version: str, name: str) -> Response:
    ort = _kyara("ort")
    if name not in ORT_FILES:
        abort(404)
    return _send(ort.dist / name, immutable=version == ort.version)


@_route("/model/manifest.json")
def manifest() -> Response:
    return _send(_kyara("model").directory / "manifest.json", immutable=False)


@_route("/model/<name>")
def model_file(name: str) -> Response:
    model = _kyara("model")
    if name not in model.files:
        abort(404)
    sha = model.files[name]
    return _send(model.directory / name, immutable=bool(sha) and request.args.get("v") == sha)


@bp.after_app_request
def security_headers(response: Response) -> Response:
    """On every answer, errors included: cross-origin isolation for wasm threads, and the CSP."""
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Cross-Origin-Embedder-Policy"] = "require-corp"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
