"""The page in headless Chromium against the real server and the bundled model.

The pixels the page computes with onnxruntime-web are checked against onnxruntime in Python for the
same noise and labels, so a wrong input order, label encoding or pixel layout in the page shows up here.
The tests also write docs/screenshot.png.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "models" / "default"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT = REPO / "docs" / "screenshot.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
    pytest.mark.skipif(not (MODEL_DIR / "manifest.json").is_file(), reason=f"no bundled model at {MODEL_DIR}"),
]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((MODEL_DIR / "manifest.json").read_text())


@pytest.fixture(scope="module")
def fp32_file(manifest) -> str:
    return next(v["file"] for v in manifest["variants"] if v["precision"] == "fp32")


@pytest.fixture(scope="module")
def server():
    from webapp import create_app
    from webapp.background import serve_in_background
    with serve_in_background(create_app(MODEL_DIR)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: "Content Security Policy" in msg.text and errors.append(msg.text))
    yield page
    context.close()
    assert not errors, errors


def open_page(page, url: str, hash: str = "") -> dict:
    page.goto(url + hash)
    return page.evaluate("window.kyara.ready")


@pytest.fixture(scope="module")
def fast(fp32_file) -> str:
    """A hash for a small first batch on the fp32 model (in WebAssembly it loads and runs faster than int8)."""
    return f"#n=2&m={fp32_file}"


def wait_until(page, condition, seconds: float = 60) -> None:
    """Poll a Python-side condition (page.wait_for_function does not await a promise's value)."""
    for _ in range(int(seconds * 2)):
        if condition():
            return
        page.wait_for_timeout(500)
    raise AssertionError("timed out")


def generate_by_click(page) -> None:
    """Click Generate and wait until the new batch is drawn (the share hash changes after drawing)."""
    before = page.evaluate("location.hash")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function("(before) => location.hash !== before", arg=before)


def results(page) -> list[dict]:
    return page.evaluate("window.kyara.results()")


@pytest.fixture(scope="module")
def python_pixels(fp32_file):
    """The reference: onnxruntime in Python on the fp32 model."""
    import onnxruntime as ort
    session = ort.InferenceSession(str(MODEL_DIR / fp32_file), providers=["CPUExecutionProvider"])

    def run(noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return session.run(["rgba"], {"noise": noise.astype(np.float32), "labels": labels.astype(np.float32)})[0]
    return run


def choose_tags(page, manifest, avoid: list[float] | None = None) -> tuple[list[str], str | None]:
    """By clicking the UI: pick a tag in each exclusive group (one that is off in the label vector
    `avoid`, else the second) and force the first tag of a non-exclusive group on."""
    off = {tag for tag, value in zip(manifest["tags"], avoid or []) if value == 0}
    picked = []
    for group in manifest["groups"]:
        if group["exclusive"] and len(group["tags"]) > 1:
            tag = next((t for t in group["tags"][1:] if t in off), group["tags"][1])
            page.locator("label").filter(has_text=tag).first.click()
            picked.append(tag)
    other = next((g for g in manifest["groups"] if not g["exclusive"]), None)
    forced = other["tags"][0] if other else None
    if forced:
        page.get_by_role("radiogroup", name=forced).get_by_text("On", exact=True).click()
    return picked, forced


def test_generates_chosen_tags_like_python(page, server, manifest, fp32_file, fast, python_pixels):
    info = open_page(page, server, fast)
    assert info["model"] == fp32_file and info["tags"] == manifest["tags"]
    picked, forced = choose_tags(page, manifest)
    page.get_by_label("Batch size").fill("4")
    generate_by_click(page)
    faces = results(page)
    assert len(faces) == 4
    for face in faces:
        on = {tag for tag, value in zip(manifest["tags"], face["labels"]) if value == 1}
        assert set(picked) <= on and (forced is None or forced in on)

    noise = np.array([f["noise"] for f in faces], np.float32)
    labels = np.array([f["labels"] for f in faces], np.float32)
    expected = python_pixels(noise, labels)
    got = np.array([f["pixels"] for f in faces], np.uint8).reshape(expected.shape)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2
    assert np.abs(noise.mean()) < 0.2 and 0.8 < noise.std() < 1.2   # the page's Box-Muller noise

    # The hook runs the same session on noise chosen here.
    rng = np.random.default_rng(0)
    own_noise = rng.standard_normal((2, manifest["noise_dim"])).astype(np.float32)
    hooked = page.evaluate("([z, y]) => window.kyara.generate(z, y).then((p) => Array.from(p))",
                           [own_noise.tolist(), labels[:2].tolist()])
    expected = python_pixels(own_noise, labels[:2])
    assert np.abs(np.array(hooked).reshape(expected.shape) - expected.astype(int)).max() <= 2


def test_share_link_reproduces_the_images(page, browser, server, manifest, fast):
    open_page(page, server, fast)
    choose_tags(page, manifest)
    generate_by_click(page)
    link, faces = page.url, results(page)

    other = browser.new_context().new_page()
    try:
        open_page(other, link)
        again = results(other)
    finally:
        other.context.close()
    assert [f["pixels"] for f in again] == [f["pixels"] for f in faces]
    assert [f["labels"] for f in again] == [f["labels"] for f in faces]


def test_fixed_noise_keeps_the_face_while_tags_change(page, server, manifest, fast):
    open_page(page, server, fast)
    page.get_by_label("Batch size").fill("4")
    generate_by_click(page)
    first = results(page)
    page.get_by_role("button", name="Face 1:").click()          # lock face 1's noise
    assert page.locator("#lock-note").is_visible()
    choose_tags(page, manifest, avoid=first[0]["labels"])
    generate_by_click(page)
    locked = results(page)
    assert all(f["noise"] == first[0]["noise"] for f in locked)
    assert locked[0]["labels"] != first[0]["labels"]

    def distance(a: dict, b: dict) -> float:
        return float(np.abs(np.array(a["pixels"], float) - np.array(b["pixels"], float)).mean())
    tag_change = distance(locked[0], first[0])
    noise_change = np.mean([distance(face, first[0]) for face in first[1:]])
    assert 0 < tag_change < noise_change


def test_isolated_with_threads_interpolates_downloads_and_screenshot(page, server, manifest, fp32_file):
    info = open_page(page, server, f"#n=8&m={fp32_file}")
    assert info["crossOriginIsolated"] is True
    assert info["backend"] == "WebGPU" or info["threads"] > 1
    assert page.evaluate("self.crossOriginIsolated") is True

    page.get_by_role("button", name="Face 1:").click()
    page.get_by_role("button", name="Use as A").click()
    page.get_by_role("button", name="Face 2:").click()
    page.get_by_role("button", name="Use as B").click()
    page.get_by_role("button", name="Interpolate").click()
    page.locator("#strip .tile").nth(7).wait_for()

    with page.expect_download() as download:
        page.get_by_role("button", name="Download PNG").click()
    png = Path(download.value.path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    other = next(v["file"] for v in manifest["variants"] if v["file"] != fp32_file)
    page.locator("#variant").select_option(other)            # switch variant from the UI
    page.wait_for_function("(file) => location.hash.includes(`m=${file}`)", arg=other)
    assert page.evaluate("window.kyara.info.model") == other


def test_missing_model_file_shows_an_error(browser, tmp_path):
    from webapp import create_app
    from webapp.background import serve_in_background
    shutil.copy(MODEL_DIR / "manifest.json", tmp_path)          # the manifest, but no ONNX file
    with serve_in_background(create_app(tmp_path)) as url:
        page = browser.new_page()
        try:
            page.goto(url)
            error = page.get_by_role("alert")
            error.wait_for()
            assert "model" in error.text_content() and "404" in error.text_content()
            assert page.get_by_role("button", name="Generate").is_disabled()
        finally:
            page.close()


def test_works_offline_after_the_first_visit(page, server, manifest):
    open_page(page, server)
    default = next(v for v in manifest["variants"] if v["file"] == manifest["file"])
    model_url = f"{server}model/{default['file']}?v={default['sha256']}"
    wait_until(page, lambda: page.evaluate("(url) => caches.match(url).then(Boolean)", model_url))
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    page.context.set_offline(True)
    page.reload()
    info = page.evaluate("window.kyara.ready")
    assert info["model"] == default["file"] and len(results(page)) > 0


def test_new_model_version_replaces_the_cached_one(browser, manifest, tmp_path):
    """A re-exported model (new sha256 in the manifest) is fetched and the old one leaves the cache."""
    import hashlib

    import onnx

    from webapp import create_app
    from webapp.assets import ServedModel
    from webapp.background import serve_in_background

    app = create_app(MODEL_DIR)
    default = manifest["file"]
    model = onnx.load(str(MODEL_DIR / default))
    model.doc_string += " (re-exported)"                          # same weights, new bytes, new sha256
    onnx.save(model, str(tmp_path / default))
    sha = manifest["sha256"]
    new_manifest = json.loads(json.dumps(manifest))
    new_sha = hashlib.sha256((tmp_path / default).read_bytes()).hexdigest()
    for variant in new_manifest["variants"]:
        if variant["file"] == default:
            variant["sha256"], variant["bytes"] = new_sha, (tmp_path / default).stat().st_size
    new_manifest["sha256"] = new_sha
    (tmp_path / "manifest.json").write_text(json.dumps(new_manifest))

    with serve_in_background(app) as url:
        context = browser.new_context()
        page = context.new_page()
        try:
            def cached(version: str) -> bool:
                return page.evaluate("(url) => caches.match(url).then(Boolean)", f"{url}model/{default}?v={version}")
            open_page(page, url)
            wait_until(page, lambda: cached(sha))
            app.extensions["kyara"]["model"] = ServedModel.load(tmp_path)   # the server now has the new export
            open_page(page, url)
            wait_until(page, lambda: cached(new_sha))
            assert not cached(sha)
        finally:
            context.close()
