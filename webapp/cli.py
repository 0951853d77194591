"""`kyara serve`: the page that generates faces in the browser, and `kyara build-site`: the same page as
plain files for a static host (both import Flask only inside the command)."""
from __future__ import annotations

import argparse


def _port(text: str) -> int:
    """A TCP port, checked here: getaddrinfo, which Werkzeug binds through, would take 99999 modulo 65536
    and listen on 34463 without a word."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port, 1-65535, got {text!r}")
    return port


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the page that generates faces in the browser (for local use)")
    p.add_argument("--model", help="exported model folder with manifest.json (default: the repo's models/default)")
    p.add_argument("--upscaler", help="upscaler folder for HD faces, made by `kyara upscaler` (default: the repo's "
                                      "models/upscaler)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port to listen on")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: loopback only; 0.0.0.0, :: or '' listen on every "
                        "interface, and the page is then reachable from other machines)")
    p.set_defaults(func=_serve)

    p = sub.add_parser("build-site", help="write the page, onnxruntime-web and the model as plain files for "
                                          "any static file server")
    p.add_argument("out", help="folder to write (new, or an earlier build: the files it wrote are replaced, "
                               "any other file in it is kept)")
    p.add_argument("--model", help="exported model folder with manifest.json (default: the repo's models/default)")
    p.add_argument("--upscaler", help="upscaler folder for HD faces, made by `kyara upscaler` (default: the repo's "
                                      "models/upscaler)")
    p.set_defaults(func=_build_site)


def _serve(args: argparse.Namespace) -> int:
    import sys

    from webapp import create_app
    from webapp.server import listen_address, page_url, serve
    app = create_app(args.model, upscaler_dir=args.upscaler)
    try:
        server = serve(app, args.host, args.port)
    except OSError as exc:
        raise ValueError(f"cannot listen on {listen_address(args.host)}:{args.port}: {exc.strerror or exc}") from None
    model = app.extensions["kyara"]["model"]
    url, reachable = page_url(server)
    print(f"kyara serve: {model.manifest.get('name', 'model')} from {model.directory} on {url}"
          + ("" if reachable else " (for local use; see docs/deploy.md for a public host)"), flush=True)
    if reachable:
        print(f"kyara serve: {reachable}", file=sys.stderr, flush=True)
    # Werkzeug's threaded server is enough here: every request is a file sent from memory, the browser
    # does the work.
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _build_site(args: argparse.Namespace) -> int:
    from webapp.site import build_site
    built = build_site(args.out, args.model, args.upscaler)
    print(f"kyara build-site: {built['model']['name']} in {args.out}: {built['files']} files, "
          f"{built['bytes'] / 1e6:.1f} MB (+ {built['gzip_copies']} gzip copies); serve the folder with any "
          "static file server", flush=True)
    return 0
