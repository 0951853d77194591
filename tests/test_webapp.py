"""The Flask app's routes without a browser: headers, MIME types, caching, and what it refuses; and
`kyara serve` itself: its checks at start, its socket timeout, relative paths. Long because each route is
checked for what it must refuse too, and they share one app and model."""
from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from webapp import DEFAULT_ORT_DIR, create_app
from webapp.assets import StaticFiles
from webapp.server import serve_in_background

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "models" / "default"

pytestmark = [
    pytest.mark.skipif(not (MODEL_DIR / "manifest.json").is_file(), reason=f"no bundled model at {MODEL_DIR}"),
    pytest.mark.skipif(not DEFAULT_ORT_DIR.is_dir(), reason="onnxruntime-web is not installed (run `npm ci`)"),
]


@pytest.fixture(scope="module")
def app():
    return create_app(MODEL_DIR)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((MODEL_DIR / "manifest.json").read_text())


def copy_model(to: Path) -> Path:
    """The bundled model's manifest and ONNX files in `to`, to change without touching the real one."""
    to.mkdir(parents=True, exist_ok=True)
    for path in MODEL_DIR.iterdir():
        if path.name == "manifest.json" or path.suffix == ".onnx":
            shutil.copy(path, to)
    return to


def write_manifest(directory: Path, change) -> None:
    """Rewrite directory/manifest.json with `change(manifest)` applied."""
    manifest = json.loads((directory / "manifest.json").read_text())
    change(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of `kyara ARGV`, whether argparse exits or the command returns."""
    from kyara.cli import main
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def static_url(app, name: str) -> str:
    return f"/static/{app.extensions['kyara']['static'].version}/{name}"


def ort_url(app, name: str) -> str:
    return f"/ort/{app.extensions['kyara']['ort'].version}/{name}"


def is_immutable(response) -> bool:
    """Cached for a year and never revalidated: `no-cache` beside `immutable` would overrule it."""
    cc = response.cache_control
    return cc.immutable and cc.max_age == 365 * 24 * 3600 and not cc.no_cache


def test_page_has_isolation_csp_and_revalidates(client, app):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp and "unsafe-inline" not in csp
    assert "no-cache" in response.headers["Cache-Control"]
    assert static_url(app, "app.js") in response.text
    again = client.get("/", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("name, mimetype", [
    ("ort.wasm.min.mjs", "text/javascript"),
    ("ort-wasm-simd-threaded.mjs", "text/javascript"),
    ("ort-wasm-simd-threaded.wasm", "application/wasm"),
])
def test_ort_files_are_immutable_with_exact_types(client, app, name, mimetype):
    response = client.get(ort_url(app, name))
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert is_immutable(response)
    assert response.headers["ETag"]
    assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"


def test_static_files_versioned_by_content(client, app):
    current = client.get(static_url(app, "app.js"))
    assert current.status_code == 200 and current.mimetype == "text/javascript"
    assert is_immutable(current)
    stale = client.get("/static/0000000000000000/app.js")
    assert stale.status_code == 200 and stale.cache_control.no_cache and not is_immutable(stale)
    worker = client.get("/sw.js")
    assert worker.mimetype == "text/javascript" and "no-cache" in worker.headers["Cache-Control"]


def test_model_files(client, manifest):
    listed = client.get("/model/manifest.json")
    assert listed.mimetype == "application/json" and "no-cache" in listed.headers["Cache-Control"]
    assert listed.json == manifest
    for variant in manifest["variants"]:
        versioned = client.get(f"/model/{variant['file']}?v={variant['sha256']}")
        assert versioned.status_code == 200
        assert versioned.mimetype == "application/octet-stream"
        assert is_immutable(versioned)
        assert len(versioned.data) == variant["bytes"]
        unversioned = client.head(f"/model/{variant['file']}")
        assert unversioned.status_code == 200 and "no-cache" in unversioned.headers["Cache-Control"]


def test_gzip_copies_go_to_clients_that_accept_them(client, app, manifest):
    """A first visit downloaded 15 MB uncompressed (the wasm alone 14 MB). The copies are made once at
    start: the same bytes once unpacked, a tag of their own, never for a byte range."""
    import gzip

    first_visit = ["/model/manifest.json", f"/model/{manifest['file']}?v={manifest['sha256']}",
                   *(ort_url(app, name) for name in ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs",
                                                     "ort-wasm-simd-threaded.wasm")),
                   *(static_url(app, name) for name in app.extensions["kyara"]["static"].files)]
    on_the_wire = 0
    for url in first_visit:
        plain = client.get(url)
        packed = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
        assert plain.status_code == packed.status_code == 200
        assert "Content-Encoding" not in plain.headers and packed.headers["Content-Encoding"] == "gzip", url
        assert gzip.decompress(packed.data) == plain.data
        assert packed.mimetype == plain.mimetype and packed.headers["ETag"] != plain.headers["ETag"]
        assert "Accept-Encoding" in plain.headers["Vary"] and "Accept-Encoding" in packed.headers["Vary"]
        assert is_immutable(packed) == is_immutable(plain)
        again = client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]})
        assert again.status_code == 304
        ranged = client.get(url, headers={"Accept-Encoding": "gzip", "Range": "bytes=0-99"})
        assert ranged.status_code == 206 and ranged.data == plain.data[:100]
        assert "Content-Encoding" not in client.get(url, headers={"Accept-Encoding": "gzip;q=0, br"}).headers
        on_the_wire += len(packed.data)
    on_the_wire += len(client.get("/").data)
    assert on_the_wire < 5e6                       # the target for a first visit (15.5 MB before)


@pytest.mark.parametrize("path", [
    "/static/x/../__init__.py",
    "/static/x/%2e%2e/__init__.py",
    "/static/x/..%2f..%2fpyproject.toml",
    "/model/..%2fmanifest.json",
    "/model/%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/ort/1.30.0/..%2fpackage.json",
    "/ort/1.30.0/ort.all.min.mjs",
    "/model/other.onnx",
    "/nothing-here",
    "/favicon.ico",
])
def test_refuses_paths_outside_the_lists(client, path):
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get(client, method):
    for path in ("/", "/model/manifest.json", "/sw.js"):
        assert client.open(path, method=method).status_code == 405


def test_missing_model_or_runtime_is_one_clear_error(tmp_path, manifest):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        create_app(tmp_path)
    shutil.copy(MODEL_DIR / "manifest.json", tmp_path)          # the manifest without its ONNX files
    with pytest.raises(FileNotFoundError, match=r"\.onnx does not exist \(named in .*manifest.json\)"):
        create_app(tmp_path)
    copy_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="npm ci"):
        create_app(tmp_path, ort_dir=tmp_path / "node_modules" / "onnxruntime-web")


def test_serve_does_not_import_torch():
    code = ("import sys; from webapp import create_app; create_app(sys.argv[1]); "
            "heavy = [m for m in ('torch', 'training', 'export', 'onnxruntime') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code, str(MODEL_DIR)], check=True, cwd=REPO)



def test_config_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KYARA_MODEL_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        create_app()


def test_serve_without_node_modules_says_npm_ci(tmp_path, monkeypatch, capsys):
    from kyara.cli import main
    monkeypatch.setenv("KYARA_ORT_DIR", str(tmp_path))
    assert main(["serve", "--model", str(MODEL_DIR)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kyara serve: onnxruntime-web is not installed") and "npm ci" in err
    assert "\n" not in err


def test_relative_model_folder_is_read_from_the_current_directory(monkeypatch, manifest):
    """`kyara serve --model models/default` from the checkout: the files were looked up under webapp/."""
    for cwd, model_dir in ((REPO, "models/default"), (MODEL_DIR.parent, "default"), (MODEL_DIR, ".")):
        monkeypatch.chdir(cwd)
        client = create_app(model_dir, ort_dir=os.path.relpath(DEFAULT_ORT_DIR, cwd)).test_client()
        assert client.get("/model/manifest.json").json == manifest
        response = client.get(f"/model/{manifest['file']}?v={manifest['sha256']}")
        assert response.status_code == 200 and is_immutable(response)
        assert hashlib.sha256(response.data).hexdigest() == manifest["sha256"]


def start_kyara_serve(*argv: str) -> tuple[subprocess.Popen, int]:
    """`python -m kyara serve ARGV --port P` from the checkout, once it accepts connections."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "kyara", "serve", *argv, "--port", str(port)],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while server.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise AssertionError(f"kyara serve did not start: {server.communicate()}")


def test_kyara_serve_command_serves_a_relative_model_folder(manifest):
    """The real command, as a newcomer runs it from the checkout (the files were looked up under
    webapp/: 500); every answer has one Date header (make_conditional added a second one to Werkzeug's)."""
    server, port = start_kyara_serve("--model", "models/default")
    model_url = f"/model/{manifest['file']}?v={manifest['sha256']}"
    etag = f'"{hashlib.sha256((MODEL_DIR / "manifest.json").read_bytes()).hexdigest()}"'
    answers = {}
    try:
        for name, path, headers in (("page", "/", {}), ("manifest", "/model/manifest.json", {}),
                                    ("model", model_url, {}), ("missing", "/nothing", {}),
                                    ("unchanged", "/model/manifest.json", {"If-None-Match": etag})):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            answers[name] = (response.status, len(response.read()), response.msg.get_all("Date"))
            conn.close()
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=10)
    default = next(v for v in manifest["variants"] if v["file"] == manifest["file"])
    assert answers["model"][:2] == (200, default["bytes"])
    assert [answers[name][0] for name in ("page", "manifest", "missing", "unchanged")] == [200, 200, 404, 304]
    assert all(len(dates) == 1 for _, _, dates in answers.values()), answers
    assert f"from {MODEL_DIR} on http://127.0.0.1:{port}/" in out         # the folder, resolved


@pytest.mark.parametrize("port", ["99999", "0", "http"])
def test_bad_port_is_one_line(port):
    """99999 was taken modulo 65536: the server listened on 34463 without a word."""
    try:
        done = subprocess.run([sys.executable, "-m", "kyara", "serve", "--port", port], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"kyara serve --port {port} started serving") from None
    err = done.stderr.strip()
    assert done.returncode == 2 and "\n" not in err
    assert f"argument --port: must be a TCP port, 1-65535, got '{port}'" in err


def test_port_in_use_is_one_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = run_cli(["serve", "--model", str(MODEL_DIR), "--port", str(port)], capsys)
    assert code == 2 and "\n" not in err
    assert err.startswith(f"kyara serve: cannot listen on 127.0.0.1:{port}: ") and "in use" in err


def test_model_file_that_does_not_match_the_manifest_is_refused_at_start(tmp_path, manifest, capsys):
    """A truncated copy was served with 200 and failed in the browser."""
    model = copy_model(tmp_path / "model")
    data = (model / manifest["file"]).read_bytes()
    (model / manifest["file"]).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{manifest['file']}: its sha256 is .*manifest.json says {manifest['sha256'][:16]}"):
        create_app(model)
    code, err = run_cli(["serve", "--model", str(model)], capsys)
    assert code == 2 and manifest["file"] in err and "sha256" in err and "\n" not in err


def test_serves_what_was_checked_at_start_while_the_folder_changes(tmp_path, manifest):
    """The files are read once: a model folder changed under a running server (a re-export, a copy in
    progress) does not change what its URLs answer, so an immutable `?v=<sha256>` URL keeps its bytes and
    the manifest and the files it names stay in step. A new export is served after a restart."""
    model = copy_model(tmp_path / "model")
    original = (model / manifest["file"]).read_bytes()
    client = create_app(model).test_client()
    (model / manifest["file"]).write_bytes(original[:1000] + b"new bytes")
    (model / "added.onnx").write_bytes(original)
    write_manifest(model, lambda m: m["variants"].append({"file": "added.onnx", "precision": "new"}))

    response = client.get(f"/model/{manifest['file']}?v={manifest['sha256']}")
    assert response.status_code == 200 and is_immutable(response) and response.data == original
    assert client.get(f"/model/{manifest['file']}").data == original
    assert client.get("/model/manifest.json").json == manifest         # the manifest checked at start...
    assert client.get("/model/added.onnx").status_code == 404          # ...which does not list added.onnx
    with pytest.raises(ValueError, match="sha256"):                    # a restart checks the new state
        create_app(model)
    (model / manifest["file"]).write_bytes(original)
    assert create_app(model).test_client().get("/model/added.onnx").data == original


def test_symlinked_model_file_is_refused(tmp_path, manifest, capsys):
    """A manifest naming `evil.onnx -> pyproject.toml` served pyproject.toml."""
    model = copy_model(tmp_path / "model")
    (model / "evil.onnx").symlink_to(REPO / "pyproject.toml")
    write_manifest(model, lambda m: m["variants"].append({"file": "evil.onnx", "precision": "evil"}))
    with pytest.raises(ValueError, match="evil.onnx is a symbolic link"):
        create_app(model)
    code, err = run_cli(["serve", "--model", str(model)], capsys)
    assert code == 2 and "evil.onnx is a symbolic link" in err and "\n" not in err
    # The default file itself a link (to a byte-identical copy elsewhere): refused as well.
    elsewhere = copy_model(tmp_path / "elsewhere")
    (model / "evil.onnx").unlink()
    (model / manifest["file"]).unlink()
    (model / manifest["file"]).symlink_to(elsewhere / manifest["file"])
    write_manifest(model, lambda m: m.__setitem__("variants", [v for v in m["variants"] if v["file"] != "evil.onnx"]))
    with pytest.raises(ValueError, match=f"{manifest['file']} is a symbolic link"):
        create_app(model)


def test_symlink_in_static_is_not_served(tmp_path, app):
    """A link in static/ was served, and as immutable."""
    (tmp_path / "app.js").write_text("export {};\n")
    (tmp_path / "evil.js").symlink_to(REPO / "pyproject.toml")
    (tmp_path / "linked").symlink_to(REPO / "webapp", target_is_directory=True)
    app = create_app(MODEL_DIR)
    app.extensions["kyara"]["static"] = static = StaticFiles.scan(tmp_path)
    client = app.test_client()
    assert client.get(f"/static/{static.version}/app.js").status_code == 200
    assert client.get(f"/static/{static.version}/evil.js").status_code == 404
    assert client.get(f"/static/{static.version}/linked/__init__.py").status_code == 404


@pytest.mark.parametrize("path", [
    "/static/x/" + "a" * 300 + ".js",
    "/static/x/" + "a" * 300 + "/app.js",
    "/model/" + "a" * 300 + ".onnx",
    "/ort/1.30.0/" + "a" * 300,
    "/" + "a" * 300,
])
def test_overlong_path_segment_is_404(client, path, caplog):
    """A segment over 255 characters gave a 500 (OSError: File name too long) and a traceback."""
    with caplog.at_level(logging.ERROR):
        assert client.get(path).status_code == 404
    assert not caplog.records


@pytest.mark.parametrize("bad", [
    "../pyproject.toml", "sub/model.onnx", "/etc/passwd", "..\\x.onnx", ".hidden.onnx", "",
    "a\x00b.onnx", "line\nbreak.onnx", "a" * 256 + ".onnx", 5, None,
])
def test_file_names_from_the_manifest_must_be_plain(tmp_path, bad, capsys):
    """Both `file` and each variant's `file`: anything else is one line naming the manifest, at start."""
    for where in ("file", "variant"):
        model = copy_model(tmp_path / where)
        if where == "file":
            write_manifest(model, lambda m: m.__setitem__("file", bad))
        else:
            write_manifest(model, lambda m: m["variants"].append({"file": bad, "precision": "bad"}))
        with pytest.raises(ValueError, match="manifest.json: model file names must be plain file names"):
            create_app(model)
        code, err = run_cli(["serve", "--model", str(model)], capsys)
        assert code == 2 and "plain file names" in err and "\n" not in err


@pytest.mark.parametrize("variants", [["model.onnx"], "model.onnx", {"file": "model.onnx"}, [None]])
def test_variants_must_be_a_list_of_objects(tmp_path, variants, capsys):
    model = copy_model(tmp_path / "model")
    write_manifest(model, lambda m: m.__setitem__("variants", variants))
    code, err = run_cli(["serve", "--model", str(model)], capsys)
    assert code == 2 and "'variants' must be a list of objects" in err and "\n" not in err


def test_half_sent_requests_are_closed_after_the_timeout(app):
    """300 half-sent requests held 301 threads for good; now each is closed after the timeout, and a
    request that arrives whole is still answered."""
    with serve_in_background(app, timeout=1) as url:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        sockets = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(20)]
        for sock in sockets:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")      # no blank line: never finished
        start = time.monotonic()
        closed = [sock.recv(1024) for sock in sockets]                    # b"": the server hung up
        waited = time.monotonic() - start
        for sock in sockets:
            sock.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
    assert closed == [b""] * len(sockets) and waited < 10


def test_serve_uses_a_finite_timeout():
    from webapp.server import REQUEST_TIMEOUT, serve
    server = serve(create_app(MODEL_DIR), "127.0.0.1", 0)
    try:
        assert 0 < server.RequestHandlerClass.timeout == REQUEST_TIMEOUT <= 60
    finally:
        server.server_close()


# ---------------------------------------------------------------- manifests checked by type

UPSCALER_DIR = REPO / "models" / "upscaler"


def copy_upscaler(to: Path) -> Path:
    to.mkdir(parents=True, exist_ok=True)
    for path in UPSCALER_DIR.iterdir():
        if path.name == "manifest.json" or path.suffix == ".onnx":
            shutil.copy(path, to)
    return to


def without_checksums(manifest: dict) -> None:
    """No sha256 and no bytes anywhere: the checks that remain are the types and the ONNX bytes."""
    for entry in (manifest, *manifest.get("variants", [])):
        entry.pop("sha256", None)
        entry.pop("bytes", None)


def set_key(key, value):
    return lambda m: (without_checksums(m), m.__setitem__(key, value))


def set_group(key, value):
    return lambda m: (without_checksums(m), m["groups"][0].__setitem__(key, value))


# (folder kind, change to its manifest, what the one line says); every case without a sha256 in the manifest
BAD_MANIFESTS = {
    "tags a string": ("model", set_key("tags", "blonde hair"), "'tags' must be a non-empty list of tag names"),
    "tags with a number": ("model", set_key("tags", ["blonde hair", 5]), "'tags' must be a non-empty list"),
    "groups 5": ("model", set_key("groups", 5), "'groups' must be a list of objects"),
    "noise_dim 'x'": ("model", set_key("noise_dim", "x"), "'noise_dim' must be a whole number above 0"),
    "noise_dim true": ("model", set_key("noise_dim", True), "'noise_dim' must be a whole number above 0"),
    "resolution 0": ("model", set_key("resolution", 0), "'resolution' must be a whole number above 0"),
    "resolution 64.0": ("model", set_key("resolution", 64.0), "'resolution' must be a whole number above 0"),
    "name 5": ("model", set_key("name", 5), "'name' must be a string"),
    "group tag unknown": ("model", set_group("tags", ["no such tag"]),
                          "'tags' must be a non-empty list of tags from 'tags'"),
    "priors short": ("model", set_group("priors", [0.5]), "'priors' must be one number per tag"),
    "priors text": ("model", lambda m: (without_checksums(m), m["groups"][0].__setitem__(
        "priors", ["0.1"] * len(m["groups"][0]["tags"]))), "'priors' must be one number per tag"),
    "exclusive 'yes'": ("model", set_group("exclusive", "yes"), "'exclusive' must be true or false"),
    "sha256 garbage": ("model", set_key("sha256", "abc"), "'sha256' must be 64 hex digits"),
    "variant bytes text": ("model", lambda m: m["variants"][0].__setitem__("bytes", "many"),
                           "'bytes' must be a whole number"),
    "scale '2'": ("upscaler", set_key("scale", "2"), "'scale' must be 2"),
    "scale 4": ("upscaler", set_key("scale", 4), "'scale' must be 2"),
}


def bad_folder(tmp_path: Path, kind: str, change) -> tuple[Path, list[str]]:
    """A copy of the bundled model or upscaler with `change` applied to its manifest, and the options that
    name it."""
    folder = (copy_model if kind == "model" else copy_upscaler)(tmp_path / kind)
    write_manifest(folder, change)
    return folder, [f"--{kind}", str(folder)]


def assert_refused_in_one_line(argv: list[str], capsys, *says: str) -> str:
    code, err = run_cli(argv, capsys)
    assert code == 2 and "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"kyara {argv[0]}: ")
    for text in says:
        assert text in err, err
    return err


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_manifest_fields_are_checked_by_type(tmp_path, case, capsys):
    """Without a sha256, `serve` and `build-site` took `tags` as a string, `groups` 5, `noise_dim` "x"."""
    kind, change, says = BAD_MANIFESTS[case]
    folder, options = bad_folder(tmp_path, kind, change)
    with pytest.raises(ValueError, match="manifest.json: "):
        create_app(**{"model_dir" if kind == "model" else "upscaler_dir": folder})
    assert_refused_in_one_line(["serve", *options], capsys, str(folder / "manifest.json"), says)
    out = tmp_path / "site"
    assert_refused_in_one_line(["build-site", str(out), *options], capsys, str(folder / "manifest.json"), says)
    assert not out.exists() and not list(tmp_path.glob(".site*"))


@pytest.mark.parametrize("kind", ["model", "upscaler"])
@pytest.mark.parametrize("content, says", [
    (b"", "an empty file"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n", "not an ONNX file"),
    (b"<!DOCTYPE html><html>Not found</html>", "not an ONNX file"),
    (bytes(range(256)) * 4, "not an ONNX file"),
])
def test_onnx_file_that_is_empty_or_not_onnx_is_refused(tmp_path, kind, content, says, capsys):
    """With no sha256 in the manifest, an empty or garbage model file was served."""
    folder, options = bad_folder(tmp_path, kind, without_checksums)
    default = json.loads((folder / "manifest.json").read_text())["file"]
    (folder / default).write_bytes(content)
    for argv in (["serve", *options], ["build-site", str(tmp_path / "site"), *options]):
        assert_refused_in_one_line(argv, capsys, f"{folder / default}: {says}")
    assert not (tmp_path / "site").exists()


def test_size_in_the_manifest_is_checked(tmp_path, capsys):
    """A manifest with `bytes` but no sha256: a truncated copy is refused by its size."""
    model = copy_model(tmp_path / "model")
    manifest = json.loads((model / "manifest.json").read_text())
    write_manifest(model, lambda m: [entry.pop("sha256", None) for entry in (m, *m["variants"])])
    data = (model / manifest["file"]).read_bytes()
    (model / manifest["file"]).write_bytes(data[:-10])
    assert_refused_in_one_line(["serve", "--model", str(model)], capsys,
                               f"{model / manifest['file']}: {len(data) - 10} bytes")


def test_typed_checks_accept_the_bundled_folders_without_checksums(tmp_path):
    """The checks refuse wrong types, not manifests that simply lack a sha256."""
    model, _ = bad_folder(tmp_path, "model", without_checksums)
    upscaler, _ = bad_folder(tmp_path, "upscaler", without_checksums)
    client = create_app(model, upscaler_dir=upscaler).test_client()
    assert client.get("/model/manifest.json").status_code == 200
