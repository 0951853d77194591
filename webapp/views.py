"""Routes: the page, its static modules, onnxruntime-web's files, the model and the photo reader. GET (and HEAD)
only.

Cache policy: a URL that carries the content's version (the static, ort or photo hash in the path,
the ONNX file's sha256 in ?v=) is immutable for a year; the page, the manifest and the service worker
are `no-cache` (always revalidated with their ETag), so a new model or page shows up on the next visit.
Every answer comes from the lists read at start-up (webapp.assets): no request touches the disk. A file
with a gzip copy is sent gzipped to a client that accepts it (and asks for no byte range).
"""
from __future__ import annotations

import io
import mimetypes
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, Response, abort, current_app, render_template, request
from werkzeug.wsgi import wrap_file

from webapp.assets import Blob

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
    ".bin": "application/octet-stream",
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

# On every answer, errors included: cross-origin isolation for wasm threads, the CSP, no MIME sniffing. The
# app adds them to what Flask answers; webapp.server adds them to what its server writes itself (a
# malformed request, a request that took too long, 503 for too many connections).
SECURITY_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _kyara(key: str):
    return current_app.extensions["kyara"][key]


def _send(name: str, blob: Blob | None, immutable: bool) -> Response:
    """Send one file read at start-up (404 if None) with its exact MIME type, its sha256 as ETag, and the
    cache policy its URL allows; its gzip copy where the client accepts gzip. Written out in 8 KiB blocks,
    so the server's socket timeout bounds each block, not the whole download."""
    if blob is None:
        abort(404)
    gzipped = (blob.gzipped is not None and request.accept_encodings["gzip"] > 0
               and "Range" not in request.headers)   # a byte range is one of the file, not of its copy
    data = blob.gzipped if gzipped else blob.data
    suffix = Path(name).suffix
    mimetype = (MIME_TYPES.get(suffix) or mimetypes.guess_type(name)[0]
                or ("application/octet-stream" if suffix else "text/plain"))   # no suffix: a LICENSE
    body = wrap_file(request.environ, io.BytesIO(data))
    response = Response(body, mimetype=mimetype, direct_passthrough=True)
    response.content_length = len(data)
    response.set_etag(f"{blob.sha256}.gz" if gzipped else blob.sha256)   # one tag per representation
    if blob.gzipped is not None:
        response.vary.add("Accept-Encoding")
    if gzipped:
        response.content_encoding = "gzip"
        _cache(response, immutable)
        return response.make_conditional(request)
    _cache(response, immutable)
    return response.make_conditional(request, accept_ranges=True, complete_length=len(data))


def _cache(response: Response, immutable: bool) -> None:
    if immutable:
        response.cache_control.public = True
        response.cache_control.max_age = YEAR
        response.cache_control.immutable = True
    else:
        response.cache_control.no_cache = True


def _route(rule: str, **options):
    """A GET route without Flask's automatic OPTIONS answer: every other method gets 405. No redirects:
    Werkzeug answers `//` in a path, or a missing trailing slash, with an absolute Location built from the
    request's Host header (`Host: evil.example` came back as `Location: http://evil.example/...`); such
    paths are 404 instead."""
    return bp.route(rule, methods=["GET"], provide_automatic_options=False, merge_slashes=False,
                    strict_slashes=False, **options)


def page_html(static_base: str, ort_base: str, model_base: str, upscaler_base: str, photo_base: str) -> str:
    """The page, linking its modules, onnxruntime-web, the model, the upscaler and the photo reader under these
    URL folders (absolute for `kyara serve`, relative in a static build, whose model folders carry their
    version)."""
    modules = [name for name in _kyara("static").files if name.endswith(".js") and name != "sw.js"]
    return render_template("index.html", static_base=static_base, ort_base=ort_base, model_base=model_base,
                           upscaler_base=upscaler_base, photo_base=photo_base, modules=modules,
                           model_name=_kyara("model").manifest.get("name", "model"))


@_route("/")
def index() -> Response:
    static, ort, photo = _kyara("static"), _kyara("ort"), _kyara("photo")
    html = page_html(f"/static/{static.version}/", f"/ort/{ort.version}/", "/model/", "/upscaler/",
                     f"/photo/{photo.version}/")
    response = Response(html, mimetype="text/html")
    response.add_etag()
    _cache(response, immutable=False)
    return response.make_conditional(request)


@_route("/sw.js")
def service_worker() -> Response:
    """At the root, because a service worker only controls pages under its own path."""
    return _send("sw.js", _kyara("static").files.get("sw.js"), immutable=False)


@_route("/static/<version>/<path:filename>")
def static_file(version: str, filename: str) -> Response:
    static = _kyara("static")
    return _send(filename, static.files.get(filename), immutable=version == static.version)


@_route("/ort/<version>/<name>")
def ort_file(version: str, name: str) -> Response:
    ort = _kyara("ort")
    return _send(name, ort.files.get(name), immutable=version == ort.version)


@_route("/photo/<version>/<path:name>")
def photo_file(version: str, name: str) -> Response:
    """A file of the photo reader, by its path under node_modules/ (@vladmandic/face-api/dist/face-api.esm.js)."""
    photo = _kyara("photo")
    return _send(name, photo.files.get(name), immutable=version == photo.version)


# The generator's folder and the upscaler's, each checked and read at start-up (webapp.assets.ServedModel).
SERVED_FOLDERS = "any(model, upscaler)"


@_route(f"/<{SERVED_FOLDERS}:folder>/manifest.json")
def folder_manifest(folder: str) -> Response:
    return _send("manifest.json", _kyara(folder).manifest_file, immutable=False)


@_route(f"/<{SERVED_FOLDERS}:folder>/<name>")
def folder_file(folder: str, name: str) -> Response:
    """A model or upscaler file; immutable when its URL carries the manifest's sha256 as ?v=."""
    served = _kyara(folder)
    sha256 = served.versions.get(name)
    return _send(name, served.files.get(name), immutable=bool(sha256) and request.args.get("v") == sha256)


@bp.after_app_request
def security_headers(response: Response) -> Response:
    """On every answer, errors included: SECURITY_HEADERS. A Location never names a host: Kyara never sends
    a visitor to another site, and Werkzeug builds absolute ones from the request's Host header, so any
    absolute Location is cut to its path (the routes make no redirects; this keeps a future one safe)."""
    response.headers.update(SECURITY_HEADERS)
    location = response.headers.get("Location")
    if location:
        parts = urlsplit(location)
        if parts.scheme or parts.netloc:
            response.headers["Location"] = urlunsplit(("", "", "/" + parts.path.lstrip("/"), parts.query,
                                                       parts.fragment))
    # make_conditional() adds a Date header, and so does every HTTP server (Werkzeug's included): the
    # server's is the one that stays.
    response.headers.remove("Date")
    return response
