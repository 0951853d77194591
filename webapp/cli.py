"""`kyara serve`: the page that generates faces in the browser (imports Flask only inside the command)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the page that generates faces in the browser")
    p.add_argument("--model", help="exported model folder with manifest.json (default: the repo's models/default)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from webapp import create_app
    app = create_app(args.model)
    model = app.extensions["kyara"]["model"]
    print(f"kyara serve: {model.manifest.get('name', 'model')} from {model.directory} "
          f"on http://{args.host}:{args.port}/")
    # Werkzeug's threaded server is enough: every request is a file read, the browser does the work.
    app.run(host=args.host, port=args.port, threaded=True)
    return 0
