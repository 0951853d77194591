"""Werkzeug's threaded HTTP server with limits: for `kyara serve`, the browser tests and the benchmarks.

`kyara serve` is meant for one's own machine (or a trusted LAN): one thread per connection, within limits
that keep a few clients from holding the server:
- REQUEST_TIMEOUT: a connection that waits that long on its client (half a request, a download nobody
  reads, a browser's unused pre-connection) is closed;
- REQUEST_DEADLINE: a request must arrive whole (request line, headers, body) within that many seconds of
  its first byte, or it is answered 408 and closed: a client that drips one byte every few seconds never
  trips the timeout, which is per read (200 of them held 200 threads for as long as they kept sending);
- MAX_CONNECTIONS: connections served at once; the next ones are answered 503 (Retry-After: 1) at once.

Every answer the server writes carries Kyara's security headers (webapp.views.SECURITY_HEADERS: COOP,
COEP, CORP, CSP, nosniff, no referrer): those of the app, and those Werkzeug and http.server write
themselves below Flask (400 for a malformed request line or a TLS hello, 414, 431, 505 for HTTP/2.0, and
the 408 and 503 above). A public host should run `webapp:create_app()` under a production WSGI server
behind a reverse proxy (see docs/deploy.md); the app adds the headers to everything it answers, but the
proxy answers some requests itself (its own 4xx and 5xx, a failed TLS handshake, a timeout, its error
pages), so it should add the same headers to those too (nginx: `add_header ... always`), and
Strict-Transport-Security on https.
"""
from __future__ import annotations

import io
import ipaddress
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from webapp.views import SECURITY_HEADERS

REQUEST_TIMEOUT = 10.0     # seconds the server waits on a client: for the rest of a request, or to take data
REQUEST_DEADLINE = 20.0    # seconds from a request's first byte to its last
MAX_CONNECTIONS = 64       # connections served at once (a browser opens about 6); more are answered 503
REFUSE_WAIT = 1.0          # seconds a refused connection may take to send its request before the 503


def _raw_response(status: str, text: str, *headers: tuple[str, str]) -> bytes:
    """A whole HTTP/1.1 answer with a plain-text body and the security headers, for a connection that no
    request handler serves."""
    body = text.encode()
    lines = [f"HTTP/1.1 {status}", "Content-Type: text/plain; charset=utf-8", f"Content-Length: {len(body)}",
             "Connection: close", *(f"{name}: {value}" for name, value in (*headers, *SECURITY_HEADERS.items()))]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


class _RequestReader(io.RawIOBase):
    """The connection's reads, for the request handler's rfile: each waits at most `timeout` seconds, and
    from a request's first byte on, none goes past `deadline` seconds after it (`expired` then says so).

    The socket's own timeout stays `timeout` between reads, so the answer's writes keep theirs."""

    def __init__(self, sock: socket.socket, timeout: float, deadline: float):
        super().__init__()
        self.sock, self.timeout, self.deadline = sock, timeout, deadline
        self.ends_at: float | None = None
        self.expired = False

    def next_request(self) -> None:
        self.ends_at, self.expired = None, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        wait = self.timeout
        if self.ends_at is not None:
            wait = min(wait, self.ends_at - time.monotonic())
            if wait <= 0:
                self.expired = True
                raise TimeoutError(f"the request did not arrive whole within {self.deadline:g} s")
        self.sock.settimeout(wait)
        try:
            received = self.sock.recv_into(buffer)
        except TimeoutError:
            if self.ends_at is not None and time.monotonic() >= self.ends_at:
                self.expired = True
            raise
        finally:
            self.sock.settimeout(self.timeout)
        if received and self.ends_at is None:
            self.ends_at = time.monotonic() + self.deadline
        return received


class _Handler(WSGIRequestHandler):
    """Werkzeug's handler with a timeout on its socket (StreamRequestHandler.setup applies `timeout`), a
    deadline for each request, and the security headers on every answer, its own included."""

    timeout = REQUEST_TIMEOUT
    deadline = REQUEST_DEADLINE
    # http.server's default, HTTP/0.9, answers a request whose first line it cannot read (garbage, a TLS
    # hello, HTTP/2.0) with a bare body: no status line, no headers at all. Nothing speaks 0.9 any more.
    default_request_version = "HTTP/1.0"

    def setup(self) -> None:
        self._header_names: set[str] = set()
        super().setup()
        self.rfile.close()
        self._reader = _RequestReader(self.connection, self.timeout, self.deadline)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        self._reader.next_request()
        self._answered = False
        super().handle_one_request()           # a timeout is caught there: logged, the connection closed
        if self._reader.expired and not self._answered:
            self._too_slow()

    def _too_slow(self) -> None:
        """408 for a request that did not arrive whole within the deadline; the connection is closed."""
        for name in ("command", "requestline", "request_version"):
            if not hasattr(self, name):
                setattr(self, name, "")
        self.close_connection = True
        try:
            self.send_error(408, "Request Timeout",
                            f"The request did not arrive whole within {self.deadline:g} seconds.")
        except OSError:
            pass

    def send_response_only(self, code: int, message: str | None = None) -> None:
        self._answered = True
        self._header_names = set()
        super().send_response_only(code, message)

    def send_header(self, keyword: str, value: str) -> None:
        self._header_names.add(keyword.lower())
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        """Before the blank line: the security headers the answer does not carry yet (the app's answers
        have them all; http.server's errors and Werkzeug's own 500 have none)."""
        for name, value in SECURITY_HEADERS.items():
            if name.lower() not in self._header_names:
                self.send_header(name, value)
        super().end_headers()

    def log_error(self, format: str, *args) -> None:
        if not format.startswith("Request timed out"):   # browsers pre-connect and send nothing: routine
            super().log_error(format, *args)


class _Server(ThreadedWSGIServer):
    """Werkzeug's threaded server serving at most `max_connections` connections at once. The next ones are
    answered 503 by a short-lived thread each (at most as many again, each done within REFUSE_WAIT
    seconds, so the client is sent its answer rather than a reset); past those, closed at once."""

    max_connections = MAX_CONNECTIONS

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._count_lock = threading.Lock()
        self._serving = 0
        self._refusing = 0

    def process_request(self, request, client_address) -> None:
        with self._count_lock:
            if self._serving < self.max_connections:
                self._serving += 1
                serve = True
            elif self._refusing < self.max_connections:
                self._refusing += 1
                serve = False
            else:
                serve = None
        if serve is None:
            self.shutdown_request(request)
        elif serve:
            try:
                super().process_request(request, client_address)      # a thread: process_request_thread
            except BaseException:
                self._release("_serving")
                raise
        else:
            try:
                threading.Thread(target=self._refuse, args=(request,), name="kyara-refuse", daemon=True).start()
            except BaseException:
                self._release("_refusing")
                raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release("_serving")

    def _release(self, counter: str) -> None:
        with self._count_lock:
            setattr(self, counter, getattr(self, counter) - 1)

    def _refuse(self, request: socket.socket) -> None:
        """Take the request's head (so closing does not reset the connection under the answer), answer 503."""
        try:
            ends_at = time.monotonic() + REFUSE_WAIT
            received = b""
            while b"\r\n\r\n" not in received and len(received) < 65536:
                left = ends_at - time.monotonic()
                if left <= 0:
                    break
                request.settimeout(left)
                try:
                    chunk = request.recv(65536)
                except TimeoutError:
                    break
                if not chunk:
                    break
                received += chunk
            request.settimeout(REFUSE_WAIT)
            request.sendall(_raw_response(
                "503 Service Unavailable",
                f"kyara serve: too many connections at once (the limit is {self.max_connections}); "
                "try again in a moment\n", ("Retry-After", "1")))
        except OSError:
            pass
        finally:
            self.shutdown_request(request)
            self._release("_refusing")


def listen_address(host: str) -> str:
    """The address `--host` names, as the socket takes it: brackets dropped (`[::1]`), and '' (all
    interfaces, to Python's socket module) written as 0.0.0.0."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0"


def page_url(server: ThreadedWSGIServer) -> tuple[str, str | None]:
    """The URL to open for a listening server, and, unless it listens on loopback only, a line saying that
    the page is reachable from other machines."""
    host, port = server.server_address[:2]
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:                                  # not an IP address: a Unix socket, say
        return f"http://{host}:{port}/", None
    if address.is_unspecified:
        shown = "127.0.0.1" if address.version == 4 else "[::1]"
        where = f"on every {'IPv4' if address.version == 4 else 'IPv6'} interface ({host})"
    else:
        shown = host if address.version == 4 else f"[{host.replace('%', '%25')}]"
        where = f"on {host}"
    if address.is_loopback:
        return f"http://{shown}:{port}/", None
    return f"http://{shown}:{port}/", (
        f"listening {where}: the page is reachable from other machines that can reach this one, not only "
        "from this one; `kyara serve` is meant for a trusted network (docs/deploy.md: a public host)")


def serve(app, host: str, port: int, timeout: float = REQUEST_TIMEOUT, deadline: float = REQUEST_DEADLINE,
          max_connections: int = MAX_CONNECTIONS) -> ThreadedWSGIServer:
    """A server for the WSGI app `app` listening on host:port (port 0: one the OS picks), not yet serving.
    `host` as listen_address takes it ('' is every interface).

    Raises OSError when the address cannot be used (port taken, host not local). The socket is opened
    here, not by Werkzeug, which prints two lines and exits the process instead."""
    host = listen_address(host)
    handler = type("Handler", (_Handler,), {"timeout": timeout, "deadline": deadline})
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family, backlog=128) as listening:
        # Werkzeug serves on a duplicate of the descriptor; this one is closed on leaving the block.
        server = _Server(host, port, app, handler, fd=listening.fileno())
    server.max_connections = max_connections
    return server


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
def serve_in_background(app, quiet: bool = True, timeout: float = REQUEST_TIMEOUT,
                        deadline: float = REQUEST_DEADLINE, max_connections: int = MAX_CONNECTIONS) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (port chosen by the OS) in a thread until the block ends; yields the base
    URL."""
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with in_background(serve(app, "127.0.0.1", 0, timeout, deadline, max_connections), "kyara-serve") as url:
        yield url
