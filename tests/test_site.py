"""`kyara build-site`: the page as plain files. What it writes (versioned folders, gzip copies), what it
refuses, and the build in headless Chromium from Python's http.server: faces, cross-origin isolation once
the service worker has taken over, and the same pixels as `kyara serve`."""
from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from static_host import serve_folder
from webapp import DEFAULT_ORT_DIR

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "models" / "default"

pytestmark = [
    pytest.mark.skipif(not (MODEL_DIR / "manifest.json").is_file(), reason=f"no bundled model at {MODEL_DIR}"),
    pytest.mark.skipif(not DEFAULT_ORT_DIR.is_dir(), reason="onnxruntime-web is not installed (run `npm ci`)"),
]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    from kyara.cli import main
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err.strip()


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def linked_folders(html: str) -> dict[str, str]:
    """The versioned folders the page names: {'static': 'static/<v>/', 'ort': ..., 'model': ...}."""
    bases = dict(re.findall(r'<meta name="kyara-(static|ort|model)-base" content="([^"]*)">', html))
    return bases


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    from webapp.site import build_site
    out = tmp_path_factory.mktemp("deploy") / "kyara"
    build_site(out, MODEL_DIR)
    return out


def test_site_is_the_served_files_in_versioned_folders_with_gzip_copies(site):
    files = tree(site)
    html = files["index.html"].decode()
    bases = linked_folders(html)
    assert set(bases) == {"static", "ort", "model"}
    for kind, base in bases.items():
        assert re.fullmatch(rf"{kind}/[0-9a-f]{{16}}/", base), base         # relative: works from a sub-folder
    model = bases["model"]
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    assert files[model + "manifest.json"] == (MODEL_DIR / "manifest.json").read_bytes()
    for variant in manifest["variants"]:
        assert files[model + variant["file"]] == (MODEL_DIR / variant["file"]).read_bytes()
    assert files[bases["ort"] + "ort-wasm-simd-threaded.wasm"] == (
        DEFAULT_ORT_DIR / "dist" / "ort-wasm-simd-threaded.wasm").read_bytes()
    for name in ("app.js", "kyara.js", "sw.js", "style.css"):
        assert files[bases["static"] + name] == (REPO / "webapp" / "static" / name).read_bytes()
    assert files["sw.js"] == (REPO / "webapp" / "static" / "sw.js").read_bytes()   # at the top: its scope
    # Nothing else but the page, the worker and the build's record outside the versioned folders.
    loose = {name for name in files if not name.startswith(tuple(bases.values())) and not name.endswith(".gz")}
    assert loose == {"index.html", "sw.js", "kyara-site.json"}
    assert f'src="{bases["static"]}app.js"' in html and 'href="/' not in html and 'src="/' not in html

    # A gzip copy beside each file that compresses: the same bytes, and the first visit well under 5 MB.
    copies = {name[:-3]: gzip.decompress(data) for name, data in files.items() if name.endswith(".gz")}
    assert all(copies[name] == files[name] for name in copies)
    for name in ("index.html", bases["ort"] + "ort-wasm-simd-threaded.wasm", model + manifest["file"],
                 bases["static"] + "kyara.js"):
        assert name in copies
    first_visit = [name for name in files if not name.endswith(".gz") and (
        name in ("index.html", "sw.js") or name.startswith((bases["static"], model + "manifest.json"))
        or name == model + manifest["file"] or name.split("/")[-1] in (
            "ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"))]
    assert sum(len(files[f"{name}.gz"]) if f"{name}.gz" in files else len(files[name]) for name in first_visit) < 5e6


def test_new_model_gets_a_new_folder_and_the_rest_stays(site, tmp_path, capsys):
    """Versioned by content: a re-export (another manifest) moves the model to a new folder, the page
    names it, and the unchanged modules and onnxruntime-web keep their folders."""
    out = tmp_path / "site"
    shutil.copytree(site, out)
    model = tmp_path / "model"
    shutil.copytree(MODEL_DIR, model, ignore=shutil.ignore_patterns("eval", "README.md"))
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["version"] = "re-exported"
    (model / "manifest.json").write_text(json.dumps(manifest))
    before = linked_folders((out / "index.html").read_text())
    code, said, _ = run_cli(["build-site", str(out), "--model", str(model)], capsys)
    assert code == 0 and str(out) in said
    after = linked_folders((out / "index.html").read_text())
    assert after["static"] == before["static"] and after["ort"] == before["ort"]
    assert after["model"] != before["model"]
    assert not (out / before["model"]).exists()
    assert json.loads((out / after["model"] / "manifest.json").read_text())["version"] == "re-exported"


def test_refuses_a_folder_it_did_not_make_and_a_broken_model(site, tmp_path, capsys):
    """`kyara build-site ~` must not replace a home folder; a model that does not match its manifest
    stops the build and leaves the last build as it was. Each in one line."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, _, err = run_cli(["build-site", str(mine)], capsys)
    assert code == 2 and "\n" not in err and "is not a folder made by `kyara build-site`" in err
    assert tree(mine) == {"notes.txt": b"keep me"}

    out = tmp_path / "site"
    shutil.copytree(site, out)
    before = tree(out)
    broken = tmp_path / "broken"
    shutil.copytree(MODEL_DIR, broken, ignore=shutil.ignore_patterns("eval", "README.md"))
    default = json.loads((broken / "manifest.json").read_text())["file"]
    (broken / default).write_bytes((broken / default).read_bytes()[:1000])
    code, _, err = run_cli(["build-site", str(out), "--model", str(broken)], capsys)
    assert code == 2 and "\n" not in err and "sha256" in err and default in err
    assert tree(out) == before
    assert not list(tmp_path.glob(".site*"))                      # no half-built folder left beside it


# ---------------------------------------------------------------- in the browser

def open_page(page, url: str) -> dict:
    page.goto(url)
    return page.evaluate("window.kyara.ready")


@pytest.mark.browser
def test_static_build_from_a_plain_server_isolates_itself_and_draws_what_serve_draws(browser, site):
    """Python's http.server sends no COOP/COEP: the first visit runs on one thread and says so; once the
    service worker has taken over, it adds the headers and the page is cross-origin isolated with several
    threads. Served from a sub-folder (/kyara/), as on a project's GitHub Pages. The faces are those of
    `kyara serve` for the same link."""
    from webapp import create_app
    from webapp.server import serve_in_background

    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    fp32 = next(v["file"] for v in manifest["variants"] if v["precision"] == "fp32")
    link = f"#s=7&t=7&n=4&m={fp32}"
    errors: list[str] = []
    with serve_folder(site.parent) as root:
        context = browser.new_context()
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            response = page.goto(f"{root}kyara/{link}")
            assert "cross-origin-embedder-policy" not in response.headers           # a plain host
            first = page.evaluate("window.kyara.ready")
            assert first["crossOriginIsolated"] is False and first["threads"] == 1
            status = page.locator("#status-backend").text_content()
            assert "1 thread" in status and "not cross-origin isolated" in status
            drawn_first = page.evaluate("window.kyara.results()")
            assert len(drawn_first) == 4

            page.wait_for_function("navigator.serviceWorker.controller !== null")
            page.reload()
            again = page.evaluate("window.kyara.ready")
            assert again["crossOriginIsolated"] is True and page.evaluate("self.crossOriginIsolated") is True
            assert again["backend"] == "WebGPU" or again["threads"] > 1
            assert "not cross-origin isolated" not in page.locator("#status-backend").text_content()
            drawn = page.evaluate("window.kyara.results()")
        finally:
            context.close()
    assert not errors, errors

    with serve_in_background(create_app(MODEL_DIR)) as url:
        context = browser.new_context()
        try:
            page = context.new_page()
            open_page(page, url + link)
            served = page.evaluate("window.kyara.results()")
        finally:
            context.close()
    assert [f["labels"] for f in drawn] == [f["labels"] for f in served] == [f["labels"] for f in drawn_first]
    assert [f["noise"] for f in drawn] == [f["noise"] for f in served]
    for faces in (drawn_first, drawn):
        got = np.array([f["pixels"] for f in faces], int)
        assert np.abs(got - np.array([f["pixels"] for f in served], int)).max() <= 1   # 1/255 per channel
