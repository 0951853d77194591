"""`kyara serve`'s server below Flask (webapp.server): the whole-request deadline, the cap on connections,
the security headers on the answers Werkzeug and http.server write themselves, redirects that never carry
the request's Host, and what `--host` prints. Raw sockets, so the tests send what a browser would not."""
from __future__ import annotations

import http.client
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from webapp import DEFAULT_ORT_DIR, create_app
from webapp.server import MAX_CONNECTIONS, REQUEST_DEADLINE, page_url, serve, serve_in_background
from webapp.views import SECURITY_HEADERS

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "models" / "default"

pytestmark = [
    pytest.mark.skipif(not (MODEL_DIR / "manifest.json").is_file(), reason=f"no bundled model at {MODEL_DIR}"),
    pytest.mark.skipif(not DEFAULT_ORT_DIR.is_dir(), reason="onnxruntime-web is not installed (run `npm ci`)"),
]

DEADLINE = 1.5          # seconds: the test servers' deadline, so a test of it takes seconds, not 20


@pytest.fixture(scope="module")
def app():
    return create_app(MODEL_DIR)


@pytest.fixture(scope="module")
def port(app):
    """A server with a short deadline, for the tests that send it malformed requests."""
    with serve_in_background(app, timeout=5, deadline=DEADLINE) as url:
        yield int(url.rstrip("/").rsplit(":", 1)[1])


def exchange(port: int, data: bytes, wait: float = 20) -> bytes:
    """Send `data` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def head_of(answer: bytes) -> tuple[int, dict[str, str]]:
    """The status and the headers (lower-case names) of a raw HTTP answer."""
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(head[0].split()[1]), headers


def assert_security_headers(headers: dict[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name.lower()) == value, (name, headers)


def get(port: int, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_defaults_are_finite():
    server = serve(create_app(MODEL_DIR), "127.0.0.1", 0)
    try:
        assert 0 < server.RequestHandlerClass.deadline == REQUEST_DEADLINE <= 120
        assert 0 < server.max_connections == MAX_CONNECTIONS <= 1000
    finally:
        server.server_close()


def test_a_dripping_client_is_cut_off_at_the_deadline(port):
    """200 clients sending a header byte every 5 s held 200 threads for as long as they kept sending: the
    timeout is per read. Now a request has DEADLINE seconds from its first byte, then gets 408."""
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " + b"x" * 100 + b"\r\n\r\n"
    answer = b""
    closed = False
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        for byte in request[:40]:                       # 20 s at one byte every 0.5 s, if never cut off
            try:
                sock.sendall(bytes([byte]))
            except OSError:                             # reset: the server closed the connection
                closed = True
                break
            sock.settimeout(0.5)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
            answer += chunk
            if not chunk or answer:
                sock.settimeout(5)
                while chunk := sock.recv(65536):
                    answer += chunk
                closed = True
                break
    waited = time.monotonic() - start
    assert closed and waited < DEADLINE + 8, waited            # 40 bytes would have taken 20 s
    status, headers = head_of(answer)
    assert status == 408
    assert_security_headers(headers)


def test_connections_beyond_the_cap_get_503(app):
    with serve_in_background(app, timeout=10, deadline=10, max_connections=2) as url:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        held = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(2)]
        try:
            for sock in held:
                sock.sendall(b"GET / HTTP/1.1\r\n")     # half a request: each holds a thread
            time.sleep(0.5)                             # accepted (in order) before the next one
            answer = exchange(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, headers = head_of(answer)
            assert status == 503 and headers["retry-after"] == "1"
            assert b"too many connections" in answer.split(b"\r\n\r\n", 1)[1]
            assert_security_headers(headers)
        finally:
            for sock in held:
                sock.close()
        for _ in range(100):                            # the held threads end once their clients leave
            if get(port, "/").status == 200:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("still refused after the held connections closed")


@pytest.mark.parametrize("name, request_bytes, expected", [
    ("malformed request line", b"GARBAGE\r\n\r\n", 400),
    ("bad version", b"GET / HTTP/x.y\r\n\r\n", 400),
    ("too long URL", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("too many headers", b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431),
    ("too long header", b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    ("HTTP/2.0 request line", b"GET / HTTP/2.0\r\n\r\n", 505),
    ("TLS hello", bytes.fromhex("16030102000100" "01fc0303") + bytes(range(32)) + b"\x00\x02\x13\x01\x01\x00\n",
     None),
    ("unknown method", b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", None),
])
def test_errors_below_flask_carry_the_security_headers(port, name, request_bytes, expected):
    """http.server answers these itself (Flask never sees them); they went out without COOP/COEP/CSP/nosniff."""
    status, headers = head_of(exchange(port, request_bytes))
    if expected is not None:
        assert status == expected, name
    else:
        assert 400 <= status < 600, name
    assert_security_headers(headers)


def test_app_answers_carry_each_header_once(port):
    """The app's answers have the headers already: the server does not add a second copy."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode().lower()
    assert head.startswith("http/1.1 404")
    for name in SECURITY_HEADERS:
        assert head.count(f"\r\n{name.lower()}:") == 1, name


def test_a_redirect_never_carries_the_requests_host(port, app):
    """`Host: evil.example` on /static/x//app.js came back as `Location: http://evil.example/static/x/app.js`."""
    for path in ("/static/x//app.js", "/model//manifest.json", "/ort//x", "//model/manifest.json"):
        response = get(port, path, {"Host": "evil.example"})
        assert response.getheader("Location") is None, (path, response.getheader("Location"))
        assert response.status in (200, 404) and response.getheader("Content-Security-Policy")

    from flask import redirect, request
    fresh = create_app(MODEL_DIR)                       # a redirect a future route might make
    fresh.add_url_rule("/go", "go", lambda: redirect(f"http://{request.host}/model/manifest.json?x=1"))
    response = fresh.test_client().get("/go", headers={"Host": "evil.example"})
    assert response.status_code == 302 and response.headers["Location"] == "/model/manifest.json?x=1"


@pytest.mark.parametrize("address, url, reachable", [
    (("127.0.0.1", 8000), "http://127.0.0.1:8000/", False),
    (("127.0.0.2", 8000), "http://127.0.0.2:8000/", False),
    (("::1", 8000, 0, 0), "http://[::1]:8000/", False),
    (("0.0.0.0", 8000), "http://127.0.0.1:8000/", True),
    (("::", 8000, 0, 0), "http://[::1]:8000/", True),
    (("192.168.1.5", 8000), "http://192.168.1.5:8000/", True),
    (("fe80::1%eth0", 8000, 0, 2), "http://[fe80::1%25eth0]:8000/", True),
])
def test_page_url(address, url, reachable):
    got, note = page_url(SimpleNamespace(server_address=address))
    assert got == url
    assert (note is not None) == reachable
    if note:
        assert "reachable from other machines" in note and "\n" not in note


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host, url_host, reachable", [
    ("127.0.0.1", "127.0.0.1", False),
    ("", "127.0.0.1", True),                 # printed `http://:8203/`
    ("0.0.0.0", "127.0.0.1", True),          # printed only "(for local use ...)"
    ("::", "[::1]", True),                   # printed `http://:::8204/`
    ("::1", "[::1]", False),
    ("[::1]", "[::1]", False),
])
def test_host_messages(host, url_host, reachable, monkeypatch, capsys):
    """What `kyara serve --host HOST` prints before it serves (serve_forever stubbed out): a URL that opens
    the page, and, off loopback, one line saying that other machines can reach it."""
    from kyara.cli import main
    if ":" in host and not has_ipv6_loopback():
        pytest.skip("no IPv6 on this machine")
    ports = []
    monkeypatch.setattr("webapp.server._Server.serve_forever",
                        lambda self, poll_interval=0.5: ports.append(self.server_address[1]))
    assert main(["serve", "--model", str(MODEL_DIR), "--host", host, "--port", str(free_port())]) == 0
    out, err = capsys.readouterr()
    assert f" on http://{url_host}:{ports[0]}/" in out and len(out.strip().splitlines()) == 1
    if reachable:
        assert "reachable from other machines" in err and len(err.strip().splitlines()) == 1
    else:
        assert err.strip() == "" and "for local use" in out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
