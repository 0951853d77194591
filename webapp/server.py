"""Werkzeug's threaded HTTP server with a socket timeout: for `kyara serve`, the browser tests and the
benchmarks.

`kyara serve` is meant for one's own machine (or a trusted LAN): one thread per connection, no limits
beyond the timeout. Without the timeout a client that sends half a request held its thread for good
(300 such connections made 301 threads); with it, a connection that stalls for REQUEST_TIMEOUT seconds
(half a request, a download nobody reads, a browser's unused pre-connection) is closed. A public host should run `webapp:create_app()` under a
production WSGI server behind a reverse proxy (see the README).
"""
from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

REQUEST_TIMEOUT = 10.0     # seconds the server waits on a client: for the rest of a request, or to take data


class _Handler(WSGIRequestHandler):
    """Werkzeug's handler with a timeout on its socket (StreamRequestHandler.setup applies `timeout`)."""

    timeout = REQUEST_TIMEOUT

    def log_error(self, format: str, *args) -> None:
        if not format.startswith("Request timed out"):   # browsers pre-connect and send nothing: routine
            super().log_error(format, *args)


def serve(app: Flask, host: str, port: int, timeout: float = REQUEST_TIMEOUT) -> BaseWSGIServer:
    """A server for `app` listening on host:port (port 0: one the OS picks), not yet serving.

    Raises OSError when the address cannot be used (port taken, host not local). The socket is opened
    here, not by Werkzeug, which prints two lines and exits the process instead."""
    handler = type("Handler", (_Handler,), {"timeout": timeout})
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family, backlog=128) as listening:
        # Werkzeug serves on a duplicate of the descriptor; this one is closed on leaving the block.
        return make_server(host, port, app, threaded=True, request_handler=handler, fd=listening.fileno())


@contextmanager
def in_background(server: socketserver.BaseServer, name: str) -> Iterator[str]:
    """Run a listening server (ours, or the standard library's) in a thread until the block ends; yields the
    base URL on 127.0.0.1."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@contextmanager
def serve_in_background(app: Flask, quiet: bool = True, timeout: float = REQUEST_TIMEOUT) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (port chosen by the OS) in a thread until the block ends; yields the base
    URL."""
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with in_background(serve(app, "127.0.0.1", 0, timeout), "kyara-serve") as url:
        yield url
