"""Load on `kyara serve`: N client threads on loopback fetch the page, manifest, wasm and model.

    .venv/bin/python benchmarks/serve_load.py [--model models/default] [--clients 8] [--requests 400]

The server runs as a subprocess (so the clients do not share its interpreter lock) on 127.0.0.1 only.
Prints `name: value unit` lines: requests/s, MB/s, latency percentiles and errors.
"""
from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "models" / "default"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(port: int, server: subprocess.Popen, log, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"kyara serve exited with status {server.returncode}: {log.read().decode().strip()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("kyara serve did not start")


def page_urls(port: int, model_dir: Path) -> list[str]:
    """The page and the files it loads, as the page names them (versioned URLs from the HTML)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/")
    html = conn.getresponse().read().decode()
    conn.close()
    ort_base = html.split('name="kyara-ort-base" content="')[1].split('"')[0]
    manifest = json.loads((model_dir / "manifest.json").read_text())
    variant = next(v for v in manifest["variants"] if v["file"] == manifest["file"])
    return ["/", "/model/manifest.json", f"{ort_base}ort-wasm-simd-threaded.wasm",
            f"/model/{variant['file']}?v={variant['sha256']}"]


def client(port: int, urls: list[str], jobs: list[int], lock: threading.Lock, out: list) -> None:
    """Take request numbers off the shared counter until it runs out, one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while True:
        with lock:
            if not jobs:
                break
            job = jobs.pop()
        url = urls[job % len(urls)]
        start = time.perf_counter()
        try:
            conn.request("GET", url)
            response = conn.getresponse()
            size = len(response.read())
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            size, ok = 0, False
        out.append((time.perf_counter() - start, size, ok, urlsplit(url).path))
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400, help="total requests over all clients")
    args = parser.parse_args()

    port = free_port()
    model = Path(args.model).resolve()          # read here and by the server, which runs in the checkout
    # The server's log (one line per request) goes to a file: a pipe nobody reads would fill and stall it.
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [sys.executable, "-m", "kyara", "serve", "--model", str(model), "--port", str(port), "--host", "127.0.0.1"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=log,
    )
    try:
        wait_until_up(port, server, log)
        urls = page_urls(port, model)
        jobs, lock, out = list(range(args.requests)), threading.Lock(), []
        threads = [threading.Thread(target=client, args=(port, urls, jobs, lock, out)) for _ in range(args.clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()

    latencies = sorted(t for t, _, _, _ in out)
    errors = sum(not ok for _, _, ok, _ in out)
    print(f"clients: {args.clients} threads")
    print(f"requests: {len(out)} requests")
    print(f"errors: {errors} requests")
    print(f"throughput: {len(out) / elapsed:.1f} requests/s")
    print(f"bandwidth: {sum(size for _, size, _, _ in out) / elapsed / 1e6:.1f} MB/s")
    print(f"latency_p50: {latencies[len(latencies) // 2] * 1000:.1f} ms")
    print(f"latency_p95: {latencies[int(len(latencies) * 0.95)] * 1000:.1f} ms")
    for path in sorted({p for _, _, _, p in out}):
        times = sorted(t for t, _, _, p in out if p == path)
        print(f"latency_p50[{path}]: {times[len(times) // 2] * 1000:.1f} ms")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
