"""The Flask app's routes without a browser: headers, MIME types, caching, and what it refuses."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from webapp import DEFAULT_ORT_DIR, create_app

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


def test_missing_model_or_runtime_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        create_app(tmp_path)
    shutil.copy(MODEL_DIR / "manifest.json", tmp_path)
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
