"""Run the app on a free loopback port in a thread: for the browser tests and the benchmarks."""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import make_server


@contextmanager
def serve_in_background(app: Flask, quiet: bool = True) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (port chosen by the OS) until the block ends; yields the base URL."""
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="kyara-serve", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}/"
    finally:
        server.shutdown()
        thread.join()
