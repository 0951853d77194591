"""HD faces in headless Chromium, against the real server, model and upscaler: kyara.js's `scale` option gives
what the Python runtime gives, the page's HD control redraws the selected face, the grid and the download at
128 / 256 px, the share link carries the choice, a visit that never asks for HD never downloads the
upscaler, and the static build does the same from a plain file server."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from static_host import serve_folder
from webapp import DEFAULT_ORT_DIR, DEFAULT_UPSCALER_DIR
from webapp.headless import CHROMIUM

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "models" / "default"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
    pytest.mark.skipif(not (MODEL_DIR / "manifest.json").is_file(), reason=f"no bundled model at {MODEL_DIR}"),
    pytest.mark.skipif(not (DEFAULT_UPSCALER_DIR / "manifest.json").is_file(), reason="no bundled upscaler"),
    pytest.mark.skipif(not DEFAULT_ORT_DIR.is_dir(), reason="onnxruntime-web is not installed (run `npm ci`)"),
]

pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server():
    from webapp import create_app
    from webapp.server import serve_in_background
    with serve_in_background(create_app(MODEL_DIR)) as url:
        yield url


@pytest.fixture(scope="module")
def fp32() -> str:
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    return next(v["file"] for v in manifest["variants"] if v["precision"] == "fp32")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    yield page
    context.close()
    assert not errors, errors


def canvas_pixels(page, selector: str) -> list[np.ndarray]:
    shapes_and_data = page.evaluate("""(selector) => [...document.querySelectorAll(selector)].map((canvas) =>
        [canvas.width, canvas.height, Array.from(canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data)])""",
                                    selector)
    return [np.array(data, np.uint8).reshape(h, w, 4) for w, h, data in shapes_and_data]


def test_module_scale_gives_the_python_runtime_faces(page, server, fp32):
    """generate({ scale: 4 }) and scale 2: faces 256 and 128 px wide, within 1/255 per channel of
    `export.runtime.Generator(...).generate(scale=...)` for the same seed and tags; scale 3 is refused before
    anything runs, and drawFace draws the HD face at its size."""
    from export.runtime import Generator

    page.goto(server + "#n=1")
    page.evaluate("window.kyara.ready")
    got = page.evaluate("""async (fp32) => {
        const base = new URL(document.querySelector('meta[name="kyara-static-base"]').content, location.href);
        const mod = await import(new URL('kyara.js', base).href);
        const ortBase = document.querySelector('meta[name="kyara-ort-base"]').content;
        const g = await mod.loadGenerator('/model/', { variant: fp32, ortBase, upscaler: '/upscaler/' });
        const out = {};
        for (const scale of [2, 4]) {
            const faces = await g.generate({ tags: ['blonde hair', 'red eyes'], n: 2, seed: 7, scale });
            out[scale] = faces.map((f) => [f.width, f.height, Array.from(f.pixels)]);
        }
        const drawn = mod.drawFace(document.createElement('canvas'), (await g.generate({ n: 1, seed: 1, scale: 4 }))[0]);
        out.canvas = [drawn.width, drawn.height];
        try { await g.generate({ n: 1, scale: 3 }); } catch (err) { out.refused = `${err.name}: ${err.message}`; }
        return out;
    }""", fp32)
    generator = Generator(MODEL_DIR / fp32)
    for scale in (2, 4):
        python = generator.generate(tags=["blonde hair", "red eyes"], n=2, seed=7, scale=scale)
        for (width, height, pixels), face in zip(got[str(scale)], python):
            assert width == height == 64 * scale
            browser = np.array(pixels, int).reshape(height, width, 4)
            assert np.abs(browser[..., :3] - np.asarray(face, int)).max() <= 1
    assert got["canvas"] == [256, 256]
    assert got["refused"] == "RangeError: scale must be 1, 2 or 4, got 3"


def test_page_hd_control_redraws_selected_face_grid_and_download(page, server, fp32, browser):
    """A first visit downloads nothing of the upscaler. HD 256: the selected face is drawn at 256 px (what
    kyara.upscale gives for it), the PNG is 256 px, the link says hd=4; "Results in HD too" draws the grid at
    256 px and the link says hg=1; a fresh visitor of that link sees the grid in HD."""
    from PIL import Image

    page.goto(server + f"#s=3&t=3&n=2&m={fp32}")
    page.evaluate("window.kyara.ready")
    assert not [url for url in page.requests if "/upscaler/" in url]
    faces = page.evaluate("window.kyara.results()")

    page.locator("#hd").select_option("4")
    page.get_by_role("button", name="Face 2:").click()
    page.evaluate("window.kyara.idle()")
    assert [url for url in page.requests if "/upscaler/" in url]          # downloaded now, on first use
    (selected,) = canvas_pixels(page, "#selected-canvas")
    assert selected.shape == (256, 256, 4)
    expected = np.array(page.evaluate("(pixels) => window.kyara.upscale(pixels, 4).then(Array.from)",
                                      faces[1]["pixels"]), np.uint8).reshape(256, 256, 4)
    assert np.array_equal(selected, expected)
    assert "hd=4" in page.evaluate("location.hash")
    assert page.locator("#download-size").text_content() == "256 × 256 px"

    with page.expect_download() as download:
        page.get_by_role("button", name="Download PNG").click()
    png = np.asarray(Image.open(io.BytesIO(Path(download.value.path()).read_bytes())).convert("RGBA"))
    assert np.array_equal(png, expected)

    assert [c.shape for c in canvas_pixels(page, "#results canvas")] == [(64, 64, 4)] * 2
    page.get_by_label("Results in HD too").check()
    page.evaluate("window.kyara.idle()")
    grid = canvas_pixels(page, "#results canvas")
    assert [c.shape for c in grid] == [(256, 256, 4)] * 2 and np.array_equal(grid[1], expected)
    link = page.evaluate("location.href")
    assert "hd=4" in link and "hg=1" in link
    assert page.evaluate("window.kyara.info.hdMsPerImage") > 0

    other = browser.new_context().new_page()
    try:
        other.goto(link)
        other.evaluate("window.kyara.ready")
        other.evaluate("window.kyara.idle()")
        assert [c.shape for c in canvas_pixels(other, "#results canvas")] == [(256, 256, 4)] * 2
        assert other.locator("#hd").input_value() == "4"
    finally:
        other.context.close()


def test_interpolation_strip_in_hd(page, server, fp32):
    """With HD on, the interpolation strip's frames are drawn upscaled (x2: 128 px)."""
    page.goto(server + f"#s=5&t=5&n=2&m={fp32}&hd=2")
    page.evaluate("window.kyara.ready")
    page.get_by_role("button", name="Face 1:").click()
    page.get_by_role("button", name="Use as A").click()
    page.get_by_role("button", name="Face 2:").click()
    page.get_by_role("button", name="Use as B").click()
    page.get_by_label("Steps").fill("3")
    page.get_by_role("button", name="Interpolate").click()
    page.locator("#strip .tile").nth(2).wait_for()
    page.evaluate("window.kyara.idle()")
    assert [c.shape for c in canvas_pixels(page, "#strip canvas")] == [(128, 128, 4)] * 3


def test_static_build_draws_hd_from_a_plain_server(page, tmp_path):
    """`kyara build-site` carries the upscaler (in its own versioned folder): a link with hd=2&hg=1 opened
    from Python's http.server shows the grid at 128 px, and only after the page asks for it."""
    from webapp.site import build_site

    summary = build_site(tmp_path / "site", MODEL_DIR)
    assert any(p.name == "manifest.json" and p.parent.parent.name == "upscaler" for p in (tmp_path / "site").rglob("*"))
    with serve_folder(tmp_path / "site") as url:
        page.goto(url + "#s=2&t=2&n=2&hd=2&hg=1")
        page.evaluate("window.kyara.ready")
        page.evaluate("window.kyara.idle()")
        assert [c.shape for c in canvas_pixels(page, "#results canvas")] == [(128, 128, 4)] * 2
    assert summary["files"] > 0
