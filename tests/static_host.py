"""Python's http.server on a folder, in a thread: the "plain static host" of the static-build and embedding
tests (no COOP/COEP, no compression, no server code of ours)."""
from __future__ import annotations

import functools
import http.server
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from webapp.server import in_background


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve `folder` on 127.0.0.1 (a port the OS picks) until the block ends; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    with in_background(server, "static-host") as url:
        yield url
