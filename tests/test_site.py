"""`kyara build-site`: the page as plain files. What it writes (versioned folders, gzip copies), what it
refuses, and the build in headless Chromium from Python's http.server: faces, cross-origin isolation once
the service worker has taken over, and the same pixels as `kyara serve`."""
from __future__ import annotations

import gzip
import hashlib
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
    """The versioned folders the page names: {'static': 'static/<v>/', 'ort': ..., 'model': ..., 'upscaler': ...,
    'photo': ...}."""
    bases = dict(re.findall(r'<meta name="kyara-(static|ort|model|upscaler|photo)-base" content="([^"]*)">', html))
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
    assert set(bases) == {"static", "ort", "model", "upscaler", "photo"}
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


def user_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "precious.txt").write_text("precious")
    return folder


def assert_refused(argv: list[str], capsys, *says: str) -> None:
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "\n" not in err and "Traceback" not in err, err
    for text in says:
        assert text in err, err


@pytest.mark.parametrize("record", [
    "{}",
    '{"format": "kyara-site/2"}',
    '{"format": "kyara-site/2", "written": {}}',
    '{"format": "kyara-site/2", "written": {"precious.txt": "not a sha256"}}',
    '{"format": "kyara-site/2", "written": {"../elsewhere/x": "' + "0" * 64 + '"}}',
    '{"format": "kyara-site/2", "written": {"/etc/passwd": "' + "0" * 64 + '"}}',
    '{"format": "kyara-site/2", "written": ["precious.txt"]}',
    '{"format": "kyara-site/9", "written": {"index.html": "' + "0" * 64 + '"}}',
    "not json",
    "[]",
])
def test_a_forged_record_is_refused_and_nothing_deleted(tmp_path, record, capsys):
    """`echo '{}' > forged/kyara-site.json; kyara build-site forged` exited 0 and precious.txt was gone: the
    record's contents were never checked."""
    forged = user_folder(tmp_path, "forged")
    (forged / "kyara-site.json").write_text(record)
    before = tree(forged)
    assert_refused(["build-site", str(forged)], capsys, "is not a folder made by `kyara build-site`")
    assert tree(forged) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forged"]


def test_a_record_that_lists_a_file_it_did_not_write_does_not_delete_it(site, tmp_path, capsys):
    """A valid record naming a file with another sha256 (what a build did not write): the file is kept."""
    out = tmp_path / "site"
    shutil.copytree(site, out)
    record = json.loads((out / "kyara-site.json").read_text())
    record["written"]["precious.txt"] = "0" * 64
    (out / "kyara-site.json").write_text(json.dumps(record))
    (out / "precious.txt").write_text("precious")
    code, _, err = run_cli(["build-site", str(out)], capsys)
    assert code == 0, err
    assert (out / "precious.txt").read_text() == "precious"


def test_a_build_of_the_older_format_is_refused_with_what_to_do(site, tmp_path, capsys):
    """kyara-site/1 records list no files: the build cannot tell its files from the user's."""
    old = tmp_path / "old"
    shutil.copytree(site, old)
    record = json.loads((old / "kyara-site.json").read_text())
    del record["written"]
    record["format"] = "kyara-site/1"
    (old / "kyara-site.json").write_text(json.dumps(record))
    before = tree(old)
    assert_refused(["build-site", str(old)], capsys, "made by an older `kyara build-site`", "remove the folder by hand")
    assert tree(old) == before


def test_a_temporary_folder_it_did_not_make_is_refused_and_kept(tmp_path, capsys):
    """A stray .newsite.tmp/ holding a user's file was removed without a check."""
    stray = user_folder(tmp_path, ".newsite.tmp")
    assert_refused(["build-site", str(tmp_path / "newsite")], capsys, str(stray), "was not left by an earlier run")
    assert tree(stray) == {"precious.txt": b"precious"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".newsite.tmp"]


def test_a_rebuild_replaces_only_the_earlier_builds_files_and_keeps_yours(site, tmp_path, capsys):
    """Over a genuine earlier build, with a new model: the files the earlier build wrote go, the new build's
    come, and what the user put in the folder (a file, a folder, a file in a versioned folder, a build
    file changed since the build and not written again) stays at its path."""
    out = tmp_path / "site"
    shutil.copytree(site, out)
    old = linked_folders((out / "index.html").read_text())
    (out / "notes.txt").write_text("mine")
    (out / "drafts").mkdir()
    (out / (old["static"] + "extra.css")).write_text("/* mine */")
    (out / (old["model"] + "manifest.json")).write_text('{"edited": true}')
    (out / "link").symlink_to(tmp_path)
    model = tmp_path / "model"
    shutil.copytree(MODEL_DIR, model, ignore=shutil.ignore_patterns("eval", "README.md"))
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["version"] = "re-exported"
    (model / "manifest.json").write_text(json.dumps(manifest))

    code, said, err = run_cli(["build-site", str(out), "--model", str(model)], capsys)
    assert code == 0 and str(out) in said, err
    new = linked_folders((out / "index.html").read_text())
    assert new["model"] != old["model"] and new["static"] == old["static"]
    record = json.loads((out / "kyara-site.json").read_text())
    assert record["format"] == "kyara-site/2"
    yours = {"notes.txt": b"mine", old["static"] + "extra.css": b"/* mine */",
             old["model"] + "manifest.json": b'{"edited": true}'}
    files = tree(out)
    assert {name: files[name] for name in yours} == yours
    assert (out / "drafts").is_dir() and (out / "link").is_symlink() and (out / "link").resolve() == tmp_path
    assert set(files) == set(record["written"]) | set(yours) | {"kyara-site.json"}
    for name, sha256 in record["written"].items():
        assert hashlib.sha256(files[name]).hexdigest() == sha256
    assert sorted(p.name for p in (out / old["model"]).iterdir()) == ["manifest.json"]   # the rest was the build's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "site"]               # nothing left beside it

    # Your file where the new build writes one is refused, untouched: the edited manifest, back to the
    # bundled model (whose folder it is in), or index.html changed by hand.
    before = tree(out)
    assert_refused(["build-site", str(out)], capsys, f"{out / old['model'] / 'manifest.json'} was not written")
    assert tree(out) == before
    (out / "index.html").write_text("my own page")
    before = tree(out)
    assert_refused(["build-site", str(out), "--model", str(model)], capsys,
                   f"{out / 'index.html'} was not written by the earlier build")
    assert tree(out) == before


def test_a_failed_write_leaves_the_earlier_build_and_nothing_beside_it(site, tmp_path, monkeypatch, capsys):
    out = tmp_path / "site"
    shutil.copytree(site, out)
    before = tree(out)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("webapp.site.json.dumps", disk_full)          # the record, written last
    assert_refused(["build-site", str(out)], capsys, "No space left on device")
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


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
