"""kyara.js, the module for other pages, in headless Chromium: it draws what export.runtime draws (the same
labels and noise for the same seed and tags, the same tag spellings and errors), and it installs from
`npm pack`'s tarball and runs the example page from a plain static server."""
from __future__ import annotations

import json
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from static_host import serve_folder
from webapp import DEFAULT_ORT_DIR
from webapp.headless import CHROMIUM

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "models" / "default"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
    pytest.mark.skipif(not (MODEL_DIR / "manifest.json").is_file(), reason=f"no bundled model at {MODEL_DIR}"),
    pytest.mark.skipif(not DEFAULT_ORT_DIR.is_dir(), reason="onnxruntime-web is not installed (run `npm ci`)"),
]

pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def hair_length_model(tmp_path_factory) -> Path:
    """A tiny exported model with every kind of group: exclusive (colours), at-most-one (hair length), free."""
    from tiny_model import HAIR_LENGTH_PRIORS, HAIR_LENGTH_TAGS, export_tiny, tiny_checkpoint
    ckpt = tiny_checkpoint(tmp_path_factory.mktemp("run"), HAIR_LENGTH_TAGS, HAIR_LENGTH_PRIORS)
    return export_tiny(ckpt, tmp_path_factory.mktemp("model"), default="fp32")


@contextmanager
def module_page(browser, model_dir: Path):
    """A page of `kyara serve` on `model_dir` whose `window.mod` is kyara.js and `window.vocab` vocab.js."""
    from webapp import create_app
    from webapp.server import serve_in_background

    with serve_in_background(create_app(model_dir)) as url:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(url + "#n=1")
            page.evaluate("window.kyara.ready")
            page.evaluate("""async () => {
                const base = new URL(document.querySelector('meta[name="kyara-static-base"]').content, location.href);
                window.mod = await import(new URL('kyara.js', base).href);
                window.vocab = await import(new URL('vocab.js', base).href);
            }""")
            yield page
        finally:
            context.close()


# Runs in the page: the module's inputs (or its error) for each case, on the page's loaded generator.
INPUTS = """(cases) => cases.map(([tags, n, seed]) => {
    try {
        const { noise, labels } = window.kyara.generator.inputs({ tags, n, seed });
        return { noise: Array.from(noise), labels: Array.from(labels) };
    } catch (err) {
        return { error: err.name, message: err.message };
    }
})"""


def python_inputs(model_dir: Path, cases: list) -> list[dict]:
    from common.vocab import TagError
    from export.runtime import Generator
    generator = Generator(model_dir)
    out = []
    for tags, n, seed in cases:
        try:
            noise, labels = generator.inputs(tags, n, seed)
            out.append({"noise": noise.ravel().tolist(), "labels": labels.ravel().tolist()})
        except TagError as exc:
            out.append({"error": "TagError", "message": str(exc)})
        except ValueError as exc:
            out.append({"error": "RangeError", "message": str(exc)})
    return out


def compare(js: list[dict], python: list[dict], cases: list) -> None:
    for got, want, case in zip(js, python, cases):
        if "error" in want:
            assert got == want, case
        else:
            assert got["labels"] == want["labels"], case
            np.testing.assert_allclose(got["noise"], want["noise"], rtol=0, atol=1e-6, err_msg=str(case))


@pytest.mark.parametrize("model", ["default", "hair length"])
def test_module_draws_what_the_python_runtime_draws(browser, hair_length_model, model):
    model_dir = MODEL_DIR if model == "default" else hair_length_model
    cases = [
        ([], 8, 7), (["blonde hair", "red eyes"], 8, 7), ([], 1, 0), ([], 64, 4294967295), ([], 3, 2**40 + 5),
        ("red eyes", 5, 123),                                     # a text, as `kyara sample --tags`
        ("Blond_Hair ; RED  eyes", 2, 9),                        # alias, case, underscores, spaces
        ("red hair red eyes", 2, 9),                             # the MLDS format: no separator
        (["blonde hair", "red hair"], 2, 1),                     # two of one exclusive group
        (["purple hair"] if model == "hair length" else ["no such tag"], 2, 1),
        (["twintails"], 2, 1),                                   # a paper tag this model lacks
        ([" 'quoted' tag"], 1, 1), (["it's\u00a0odd\u200b"], 1, 1),  # Python's repr in the message
        ("\u3000red eyes\u3000", 1, 3),                          # Python's whitespace, not JavaScript's
        ([], 0, 1),
    ]
    if model == "hair length":
        cases += [(["long hair", "short hair"], 2, 1), (["short hair", "smile"], 300, 11), ([], 300, 12)]
    with module_page(browser, model_dir) as page:
        js = page.evaluate(INPUTS, cases)
        aliases = page.evaluate("window.vocab.ALIASES")
    python = python_inputs(model_dir, cases)
    assert sum("error" in p for p in python) >= 4                # the refusals are compared too
    compare(js, python, cases)
    from common.vocab import ALIASES
    assert aliases == ALIASES


def test_generate_gives_python_pixels_and_draws_to_a_canvas(browser):
    """loadGenerator on the model folder's URL, generate() with tags and a seed, drawFace: the canvas holds
    what onnxruntime in Python computes on the Python runtime's inputs for the same tags and seed."""
    import onnxruntime as ort

    from export.runtime import Generator

    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    fp32 = next(v["file"] for v in manifest["variants"] if v["precision"] == "fp32")
    with module_page(browser, MODEL_DIR) as page:
        faces = page.evaluate("""async () => {
            const ortBase = document.querySelector('meta[name="kyara-ort-base"]').content;
            const g = await window.mod.loadGenerator('/model/', { variant: 'fp32', ortBase });
            const faces = await g.generate({ tags: ['blonde hair', 'red eyes'], n: 4, seed: 7 });
            const drawn = faces.map((face) => {
                const canvas = window.mod.drawFace(document.createElement('canvas'), face);
                return Array.from(canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data);
            });
            let refused = null;
            try { await g.generate({ tags: 'blonde hair, brown hair' }); } catch (err) { refused = err.name; }
            return { file: g.variant.file, drawn, refused,
                     faces: faces.map((f) => ({ ...f, pixels: Array.from(f.pixels), noise: Array.from(f.noise),
                                                labels: Array.from(f.labels) })) };
        }""")
    assert faces["file"] == fp32 and faces["refused"] == "TagError"
    noise, labels = Generator(MODEL_DIR).inputs(["blonde hair", "red eyes"], 4, 7)
    session = ort.InferenceSession(str(MODEL_DIR / fp32), providers=["CPUExecutionProvider"])
    expected = session.run(["rgba"], {"noise": noise, "labels": labels})[0].reshape(4, -1).astype(int)
    for i, face in enumerate(faces["faces"]):
        on = [tag for tag, value in zip(manifest["tags"], labels[i]) if value == 1]   # asked, and drawn from priors
        assert {"blonde hair", "red eyes"} <= set(face["tags"]) and face["tags"] == on
        assert face["seed"] == 7 and face["index"] == i
        assert face["width"] == face["height"] == manifest["resolution"]
        assert face["labels"] == labels[i].tolist()
        assert np.abs(np.array(face["pixels"]) - expected[i]).max() <= 2
        assert faces["drawn"][i] == face["pixels"]


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is missing (Node.js 20 comes with it)")
def test_npm_package_installs_from_its_tarball_and_runs_the_example(browser, tmp_path):
    """`npm pack` of the repository, `npm install` of the tarball in a fresh folder (onnxruntime-web comes as
    its dependency), the package's example page beside node_modules/ as its comment says, served by
    Python's http.server: eight faces, those the module in the repository draws for the same call."""
    def npm(*args: str, cwd: Path) -> None:
        done = subprocess.run(["npm", *args, "--no-audit", "--no-fund", "--loglevel=error"], cwd=cwd,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr

    npm("pack", str(REPO), "--pack-destination", str(tmp_path), cwd=tmp_path)
    (tarball,) = tmp_path.glob("kyara-*.tgz")
    site = tmp_path / "site"
    site.mkdir()
    npm("install", "--prefer-offline", str(tarball), cwd=site)
    package = site / "node_modules" / "kyara"
    exports = json.loads((package / "package.json").read_text())["exports"]
    assert (package / exports["."]).is_file()
    assert (site / "node_modules" / "onnxruntime-web" / "dist" / "ort.wasm.min.mjs").is_file()
    shutil.copy(package / "examples" / "embed.html", site / "index.html")

    errors: list[str] = []
    with serve_folder(site) as url:
        context = browser.new_context()
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            page.goto(url)
            page.wait_for_function("document.querySelectorAll('#faces canvas').length === 8", timeout=120_000)
            shown = page.evaluate("""() => [...document.querySelectorAll('#faces canvas')].map((canvas) =>
                Array.from(canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data))""")
        finally:
            context.close()
    assert not errors, errors

    with module_page(browser, MODEL_DIR) as page:        # the same call on the repository's module
        expected = page.evaluate("""async () => {
            const faces = await window.kyara.generator.generate({ tags: ['blonde hair', 'red eyes'], n: 8, seed: 7 });
            return faces.map((face) => Array.from(face.pixels));
        }""")
    assert np.abs(np.array(shown, int) - np.array(expected, int)).max() <= 1
