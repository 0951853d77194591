"""The page in headless Chromium against the real server and the bundled model: one long file because every
test shares one server and one browser, which take longer to start than most tests take to run.

The pixels the page computes with onnxruntime-web are checked against onnxruntime in Python for the
same noise and labels, so a wrong input order, label encoding or pixel layout in the page shows up here;
and its noise and labels against export.runtime's for the same seeds.
A screenshot of the page goes to the run's artefacts folder (see conftest); the README's picture is
re-taken by hand with `./dev screenshot`, so a test run leaves the checkout as it was.
"""
from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from webapp.headless import CHROMIUM

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "models" / "default"
SCREENSHOT = REPO / "docs" / "screenshot.png"           # the README's; only `./dev screenshot` writes it

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
    pytest.mark.skipif(not (MODEL_DIR / "manifest.json").is_file(), reason=f"no bundled model at {MODEL_DIR}"),
]

pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((MODEL_DIR / "manifest.json").read_text())


@pytest.fixture(scope="module")
def fp32_file(manifest) -> str:
    return next(v["file"] for v in manifest["variants"] if v["precision"] == "fp32")


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
def int8_file(manifest, fp32_file) -> str:
    return next(v["file"] for v in manifest["variants"] if v["file"] != fp32_file)


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


def idle(page) -> None:
    """Wait until the page has no job queued or running."""
    page.evaluate("window.kyara.idle()")


def results_of_link(browser, link: str) -> list[dict]:
    """The faces a fresh visitor sees when opening `link`."""
    other = browser.new_context().new_page()
    try:
        open_page(other, link)
        return results(other)
    finally:
        other.context.close()


def control_states(page) -> dict:
    return page.evaluate("""() => Object.fromEntries(['generate', 'variant', 'interpolate']
        .map((id) => [id, document.getElementById(id).disabled]))""")


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
    `avoid`, else the second) and force the first tag of an on/off group on (hair length, at most one, is a
    single choice: its own tests click it)."""
    off = {tag for tag, value in zip(manifest["tags"], avoid or []) if value == 0}
    picked = []
    for group in manifest["groups"]:
        if group["exclusive"] and len(group["tags"]) > 1:
            tag = next((t for t in group["tags"][1:] if t in off), group["tags"][1])
            page.locator("label").filter(has_text=tag).first.click()
            picked.append(tag)
    other = next((g for g in manifest["groups"] if not g["exclusive"] and not g.get("at_most_one")), None)
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

    # Random noise: one seed for noise and tags, and the batch is export.runtime's for that seed.
    from export.runtime import Generator
    link = parse_qs(urlsplit(page.url).fragment)
    assert link["s"] == link["t"]
    python_noise, python_labels = Generator(MODEL_DIR).inputs(picked + ([forced] if forced else []), 4,
                                                              int(link["s"][0]))
    assert np.array_equal(noise, python_noise) and np.array_equal(labels, python_labels)

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
    again = results_of_link(browser, link)
    assert [f["pixels"] for f in again] == [f["pixels"] for f in faces]
    assert [f["labels"] for f in again] == [f["labels"] for f in faces]


def test_share_link_keeps_the_batch_on_screen_after_locking_a_face(page, browser, server, manifest, fast):
    """Locking a face and changing tags only affect the next batch: the link still redraws the screen."""
    open_page(page, server, fast)
    page.get_by_label("Batch size").fill("3")
    generate_by_click(page)
    on_screen = results(page)
    assert len({tuple(f["noise"]) for f in on_screen}) == 3         # three different faces
    choose_tags(page, manifest, avoid=on_screen[2]["labels"])       # tags changed after Generate
    page.get_by_role("button", name="Face 3:").click()              # lock face 3 for the next batch
    assert page.locator("#lock-note").is_visible()
    link = page.locator("#share-link").input_value()
    assert link == page.url and "lock=" not in link and "on=" not in link

    again = results_of_link(browser, link)
    assert [f["pixels"] for f in again] == [f["pixels"] for f in on_screen]
    assert [f["labels"] for f in again] == [f["labels"] for f in on_screen]

    # The lock and the tags do apply to the next batch, and its link redraws that one.
    generate_by_click(page)
    locked = results(page)
    assert all(f["noise"] == on_screen[2]["noise"] for f in locked)
    assert "lock=" in page.url
    assert [f["pixels"] for f in results_of_link(browser, page.url)] == [f["pixels"] for f in locked]


def test_fixed_noise_keeps_the_face_while_tags_change(page, server, manifest, fp32_file):
    """On seeds drawn at random this failed for about one seed in fifteen on the bundled model (a colour
    change can move a face as far as other noise does), so it opens a link with fixed seeds."""
    open_page(page, server, f"#s=2&t=2&n=4&m={fp32_file}")
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


def test_isolated_with_threads_interpolates_downloads_and_screenshot(page, server, manifest, fp32_file, artifacts):
    from PIL import Image

    readme_picture = SCREENSHOT.read_bytes() if SCREENSHOT.exists() else None
    info = open_page(page, server, f"#n=8&m={fp32_file}")
    assert info["crossOriginIsolated"] is True
    assert info["backend"] == "WebGPU" or info["threads"] > 1
    assert page.evaluate("self.crossOriginIsolated") is True
    faces = results(page)
    R = manifest["resolution"]

    page.get_by_role("button", name="Face 1:").click()
    page.get_by_role("button", name="Use as A").click()
    page.get_by_role("button", name="Face 2:").click()
    page.get_by_role("button", name="Use as B").click()
    page.get_by_label("Steps").fill("8")
    page.get_by_role("button", name="Interpolate").click()
    page.locator("#strip .tile").nth(7).wait_for()
    idle(page)
    frames = page.evaluate("""() => [...document.querySelectorAll('#strip canvas')].map((canvas) =>
        Array.from(canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data))""")
    assert len(frames) == 8
    assert frames[0] == faces[0]["pixels"] and frames[-1] == faces[1]["pixels"]   # the ends are A and B
    assert frames[3] != faces[0]["pixels"] and frames[3] != faces[1]["pixels"]

    with page.expect_download() as download:
        page.get_by_role("button", name="Download PNG").click()
    png = Path(download.value.path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    # HD off: the face (face B, selected last) at the model's own size, pixel for pixel.
    assert np.array_equal(image, np.array(faces[1]["pixels"], np.uint8).reshape(R, R, 4))

    shot = artifacts / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert Image.open(shot).size[0] == 1280
    # `./dev test` used to rewrite the tracked docs/screenshot.png, leaving every checkout dirty.
    assert (SCREENSHOT.read_bytes() if SCREENSHOT.exists() else None) == readme_picture

    other = next(v["file"] for v in manifest["variants"] if v["file"] != fp32_file)
    page.locator("#variant").select_option(other)            # switch variant from the UI
    page.wait_for_function("(file) => location.hash.includes(`m=${file}`)", arg=other)
    assert page.evaluate("window.kyara.info.model") == other


# ---------------------------------------------------------------- variations of the selected face

def press_variations(page) -> None:
    """Press Variations by keyboard (focus, Enter) and wait until the new batch is drawn and recorded."""
    before = page.evaluate("location.hash")
    button = page.get_by_role("button", name="Variations", exact=True)
    button.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("(before) => location.hash !== before && location.hash.includes('v=')", arg=before)
    idle(page)


def select_by_keyboard(page, name: str) -> None:
    page.get_by_role("button", name=name).focus()
    page.keyboard.press("Enter")
    assert page.locator("#selected").is_visible()


def cosines(rows: list[list[float]], to: list[float]) -> np.ndarray:
    rows, to = np.array(rows, float), np.array(to, float)
    return rows @ to / (np.linalg.norm(rows, axis=1) * np.linalg.norm(to))


def mean_distance(faces: list[list[int]], face: list[int]) -> float:
    """Mean absolute difference of RGBA bytes (alpha is 255 everywhere) between `faces` and `face`."""
    return float(np.abs(np.array(faces, float) - np.array(face, float)).mean())


# Cosine between a face's noise and a variation's. Unrelated noise (128 standard normals) has a cosine of
# about N(0, 1/128) with it, |cos| < 0.35 at four sigma; at 0.98 (0.2 rad) the faces of the bundled model
# look the same (mean pixel distance 7.7 against 47 for unrelated noise). Inside the band: the step chosen.
NEAR = (0.7, 0.95)


def test_variations_keep_the_selected_face_first_with_its_labels(page, server, manifest, fp32_file, artifacts):
    """By keyboard: select face 3, press Variations. The batch becomes face 3 itself, then faces of its
    labels whose noise is near (not equal to) its own and of its length; the module's Generator.variations
    gives the same faces for the link's seed."""
    from PIL import Image

    open_page(page, server, f"#s=2&t=2&n=8&m={fp32_file}")
    before = results(page)
    select_by_keyboard(page, "Face 3:")
    press_variations(page)
    faces, chosen = results(page), before[2]
    assert len(faces) == 8
    assert faces[0]["pixels"] == chosen["pixels"] and faces[0]["ref"] == "2.2"
    assert all(f["labels"] == chosen["labels"] for f in faces)
    near = cosines([f["noise"] for f in faces[1:]], chosen["noise"])
    assert np.all((near > NEAR[0]) & (near < NEAR[1])), near
    assert len({tuple(f["noise"]) for f in faces}) == 8
    norms = np.linalg.norm(np.array([f["noise"] for f in faces], float), axis=1)
    assert np.allclose(norms, norms[0], rtol=1e-5)               # a turn on the sphere: the length is kept
    assert all(f["pixels"] != chosen["pixels"] for f in faces[1:])
    assert page.locator("#variations-note").is_visible()

    link = parse_qs(urlsplit(page.url).fragment)
    assert link["of"] == ["2.2"] and link["n"] == ["8"]
    module = page.evaluate("""([noise, labels, seed]) => window.kyara.generator.variations({ noise, labels },
        { n: 8, seed }).then((faces) => faces.map((f) => Array.from(f.pixels)))""",
                           [chosen["noise"], chosen["labels"], int(link["v"][0])])
    assert module == [f["pixels"] for f in faces]

    shot = artifacts / "variations-desktop.png"
    page.screenshot(path=str(shot), full_page=True)
    assert Image.open(shot).size[0] == 1280


def test_variations_look_closer_than_faces_of_other_noise(page, server, manifest):
    """On the bundled model (its default file, as a visitor gets it): the variations' mean pixel distance
    from the selected face is a fraction of that of faces of unrelated noise with the same labels. The
    band is the step's: measured 0.35 to 0.58 over 60 faces at 0.6 rad; below 0.2 they look the same."""
    link = "#s=11&t=11&n=8"
    for index in (1, 5):
        open_page(page, server, link)
        chosen = results(page)[index]
        page.get_by_role("button", name=f"Face {index + 1}:").click()
        press_variations(page)
        variations = [f["pixels"] for f in results(page)[1:]]
        unrelated = page.evaluate("""(labels) => window.kyara.generate(
            Array.from({ length: 7 }, (_, i) => window.kyara.noise(99, i)), Array(7).fill(labels))
            .then((pixels) => Array.from(pixels))""", chosen["labels"])
        unrelated = np.array(unrelated).reshape(7, -1).tolist()
        ratio = mean_distance(variations, chosen["pixels"]) / mean_distance(unrelated, chosen["pixels"])
        assert 0.2 < ratio < 0.75, (index, ratio)


def test_variations_refine_and_their_link_redraws_them(page, browser, hair_server):
    """On a model with smile and hair length: variations of a variation start from that variation (its
    pixels, its noise, the labels of the face first chosen), and the link of a batch of variations draws the
    same faces for a fresh visitor, though the face varied has no seed of its own (its noise is in the link)."""
    open_page(page, hair_server, "#s=1&t=2&n=6")
    first = results(page)[1]
    page.get_by_role("button", name="Face 2:").click()
    press_variations(page)
    once = results(page)
    page.get_by_role("button", name="Face 4:").click()               # a variation, then its variations
    assert page.locator("#lock-ref").text_content() == "the selected face"
    press_variations(page)
    twice = results(page)
    assert twice[0]["pixels"] == once[3]["pixels"] and twice[0]["noise"] == once[3]["noise"]
    assert all(f["labels"] == first["labels"] for f in once + twice)
    near = cosines([f["noise"] for f in twice[1:]], once[3]["noise"])
    assert np.all((near > NEAR[0]) & (near < NEAR[1])), near

    link = page.url
    shared = parse_qs(urlsplit(link).fragment)
    assert "s" not in shared                                      # the face varied has no seed: its noise
    of = base64.urlsafe_b64decode(shared["of"][0] + "=" * (-len(shared["of"][0]) % 4))
    assert np.frombuffer(of, "<f4").tolist() == once[3]["noise"]
    again = results_of_link(browser, link)
    assert [f["pixels"] for f in again] == [f["pixels"] for f in twice]
    assert [f["labels"] for f in again] == [f["labels"] for f in twice]


def test_phone_variations_button_and_screenshot(browser, server, fp32_file, artifacts):
    """At 390 px the Variations button fits the screen's width, and after pressing it the new faces are
    scrolled into view with the button still on screen (the grid is above it), so picking a face and
    pressing Variations again needs no scrolling."""
    from PIL import Image

    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        open_page(page, server, f"#s=3&t=3&n=8&m={fp32_file}")
        select_by_keyboard(page, "Face 2:")
        box = page.get_by_role("button", name="Variations", exact=True).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        press_variations(page)
        grid = page.evaluate("document.getElementById('results').getBoundingClientRect().toJSON()")
        button = page.get_by_role("button", name="Variations", exact=True).bounding_box()
        assert 0 <= grid["top"] and button["y"] + button["height"] <= 844   # the new faces and the button
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert results(page)[0]["ref"] == "3.1"
        page.screenshot(path=str(artifacts / "variations-phone.png"))
        page.screenshot(path=str(artifacts / "variations-phone-full.png"), full_page=True)
        assert Image.open(artifacts / "variations-phone.png").size[0] == 390
    finally:
        context.close()


def test_failed_model_download_shows_an_error(page, server, manifest):
    """The model's URL answers 404 (kyara serve refuses to start without the file, but another server of
    the same folder may not): the page says so, and nothing else breaks."""
    page.route(f"**/model/{manifest['file']}*", lambda route: route.fulfill(status=404, body="not here"))
    page.goto(server)
    # The load attempt is over: ready rejected with the message the page shows.
    message = page.evaluate("window.kyara.ready.then(() => null, (err) => err.message)")
    assert message and manifest["file"] in message and "404" in message
    error = page.get_by_role("alert")
    assert error.is_visible() and error.text_content() == message
    assert page.locator("#loading").is_hidden()
    idle(page)
    assert control_states(page) == {"generate": True, "variant": True, "interpolate": True}
    # Noise mode and Generate (Enter in the seed box) without a model: nothing breaks (the page fixture
    # fails the test on any page error).
    noise = page.locator("fieldset.noise")
    noise.locator("label").filter(has_text="Fixed").click()
    noise.locator("label").filter(has_text="Random").click()
    page.get_by_label("Seed").press("Enter")
    page.wait_for_timeout(200)
    assert page.get_by_role("button", name="Generate").is_disabled()
    assert page.evaluate("window.kyara.results().length") == 0


def test_failed_model_switch_can_be_retried(page, server, fp32_file, int8_file, fast):
    """Offline, switching model fails with a message and keeps the old model; online again, a retry
    loads it and the message goes away."""
    open_page(page, server, fast)
    page.context.set_offline(True)
    page.locator("#variant").select_option(int8_file)
    error = page.get_by_role("alert")
    error.wait_for()
    assert int8_file in error.text_content()
    idle(page)
    assert page.evaluate("window.kyara.info.model") == fp32_file
    assert page.locator("#variant").input_value() == fp32_file
    assert control_states(page)["generate"] is False           # the old model still works
    generate_by_click(page)
    assert error.is_hidden()                                    # a successful batch clears the message

    page.locator("#variant").select_option(int8_file)            # still offline: fails again
    error.wait_for()
    page.context.set_offline(False)
    page.locator("#variant").select_option(int8_file)            # the retry
    page.wait_for_function("(file) => location.hash.includes(`m=${file}`)", arg=int8_file)
    idle(page)
    assert page.evaluate("window.kyara.info.model") == int8_file
    assert error.is_hidden()


def test_one_job_at_a_time(page, server, manifest, fp32_file, int8_file, fast, python_pixels):
    """While a job runs the controls are off; a model switch waits for the runs queued on the old model."""
    open_page(page, server, fast)
    R = manifest["resolution"]
    out = page.evaluate("""async ([other, size]) => {
        const $ = (id) => document.getElementById(id);
        const z = Array.from({ length: 64 }, (_, i) => window.kyara.noise(7, i));
        const y = z.map(() => window.kyara.info.tags.map(() => 0));
        // Runs queued on the fp32 session, then a model switch from the menu while they are pending.
        const runs = Array.from({ length: 4 }, () => window.kyara.generate(z, y));
        await new Promise((resolve) => setTimeout(resolve, 0));
        $('variant').value = other;
        $('variant').dispatchEvent(new Event('change'));
        const during = Object.fromEntries(['generate', 'variant', 'interpolate'].map((id) => [id, $(id).disabled]));
        const hashBefore = location.hash;
        $('generate').click();                     // ignored: a job is running
        const firsts = (await Promise.all(runs)).map((pixels) => Array.from(pixels.slice(0, size)));
        await window.kyara.idle();
        return { during, firsts, model: window.kyara.info.model, hashBefore, hash: location.hash };
    }""", [int8_file, R * R * 4])
    assert out["during"] == {"generate": True, "variant": True, "interpolate": True}
    expected = python_pixels(np.array([page.evaluate("window.kyara.noise(7, 0)")], np.float32),
                             np.zeros((1, len(manifest["tags"])), np.float32))
    for pixels in out["firsts"]:                                 # all ran, on the fp32 model
        assert np.abs(np.array(pixels).reshape(expected.shape) - expected.astype(int)).max() <= 2
    assert out["model"] == int8_file and f"m={int8_file}" in out["hash"]
    # Only the switch's batch was drawn (same seeds, new model), not a second batch from the click.
    assert out["hash"].replace(int8_file, fp32_file) == out["hashBefore"]
    assert control_states(page)["generate"] is False and control_states(page)["variant"] is False


def test_pasted_link_switches_model_after_the_running_job(page, browser, server, fp32_file, int8_file, fast):
    """A link pasted in the same tab (hashchange) while a batch runs is drawn next, on the link's model."""
    open_page(page, server, fast)
    link_hash = f"#s=123&t=456&n=3&m={int8_file}"
    during = page.evaluate("""async (hash) => {
        document.getElementById('generate').click();   // a batch is running when the link arrives
        const changed = new Promise((resolve) => addEventListener('hashchange', resolve, { once: true }));
        location.hash = hash;
        await changed;
        const disabled = document.getElementById('variant').disabled;
        await window.kyara.idle();
        return disabled;
    }""", link_hash)
    assert during is True
    assert page.evaluate("window.kyara.info.model") == int8_file
    faces = results(page)
    assert [f["ref"] for f in faces] == ["123.0", "123.1", "123.2"]
    assert page.evaluate("location.hash") == link_hash
    assert [f["pixels"] for f in results_of_link(browser, server + link_hash)] == [f["pixels"] for f in faces]


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
    from webapp.server import serve_in_background

    app = create_app(MODEL_DIR)
    default = manifest["file"]
    model = onnx.load(str(MODEL_DIR / default))
    model.doc_string += " (re-exported)"                          # same weights, new bytes, new sha256
    onnx.save(model, str(tmp_path / default))
    for variant in manifest["variants"]:                          # the other variants as they were
        if variant["file"] != default:
            shutil.copy(MODEL_DIR / variant["file"], tmp_path)
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

            def cached_manifest_sha() -> str:
                return page.evaluate("(url) => caches.match(url).then((r) => r.json()).then((m) => m.sha256)",
                                     f"{url}model/manifest.json")

            def remember(urls: list[str]) -> dict:
                """Ask the service worker to cache `urls`, as the page does; its answer when done."""
                return page.evaluate("""(urls) => new Promise((resolve) => {
                    const channel = new MessageChannel();
                    channel.port1.onmessage = (event) => resolve(event.data);
                    navigator.serviceWorker.controller.postMessage({ type: 'cache', urls }, [channel.port2]);
                    setTimeout(() => resolve({ ok: null, error: 'no answer in 30 s' }), 30000);
                })""", urls)

            open_page(page, url)
            wait_until(page, lambda: cached(sha))
            app.extensions["kyara"]["model"] = ServedModel.load(tmp_path)   # the server now has the new export

            # Online, the page reads the new manifest; the connection drops before the new model is cached.
            fresh = page.evaluate("fetch('model/manifest.json').then((r) => r.json()).then((m) => m.sha256)")
            assert fresh == new_sha
            context.set_offline(True)
            new_files = [f"{url}model/manifest.json", f"{url}model/{default}?v={new_sha}"]
            assert remember(new_files)["ok"] is False                 # cannot download: the old set stays
            assert cached(sha) and not cached(new_sha) and cached_manifest_sha() == sha
            page.reload()                                             # offline: the old model still works
            assert page.evaluate("window.kyara.ready")["model"] == default and len(results(page)) > 0

            context.set_offline(False)
            open_page(page, url)
            wait_until(page, lambda: not cached(sha))                 # the old version goes last
            assert cached(new_sha) and cached_manifest_sha() == new_sha
        finally:
            context.close()


def test_phone_generate_box_hides_what_scrolls_behind_it(browser, server, fast):
    """At 390 px the Generate box sticks to the bottom of the screen over the tag pickers. Its header (down
    to the legend's bottom) was half transparent: the legend sat on the border line, above the box's
    background, and the pickers showed through. Now the header's pixels are the same whatever is behind."""
    from PIL import Image

    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        open_page(page, server, fast)
        header = page.evaluate("""() => {
            const box = document.querySelector('.run').getBoundingClientRect();
            const legend = document.querySelector('.run > legend').getBoundingClientRect();
            // inside the rounded corners, from the box's top edge to the legend's bottom
            return { x: box.left + 10, y: box.top, width: box.width - 20, height: legend.bottom - box.top };
        }""")
        assert header["y"] + 100 < 844 and header["height"] > 10

        def pixels(scroll: int, panel: bool) -> np.ndarray:
            page.evaluate("([y, shown]) => { window.scrollTo(0, y); "
                          "document.querySelector('.run').style.visibility = shown ? '' : 'hidden'; }",
                          [scroll, panel])
            top = page.evaluate("document.querySelector('.run').getBoundingClientRect().top")
            assert abs(top - header["y"]) < 1                        # stuck at the bottom of the screen
            return np.asarray(Image.open(io.BytesIO(page.screenshot(clip=header))).convert("RGB"))

        behind = [pixels(scroll, panel=False) for scroll in (0, 150)]
        assert not np.array_equal(*behind)                           # different pickers behind the header
        shown = [pixels(scroll, panel=True) for scroll in (0, 150)]
        assert np.array_equal(*shown)
    finally:
        context.close()


@pytest.mark.parametrize("link, left_out", [
    ("#s=1&t=2&n=4&lock=!!!not*base64", "locked noise"),
    ("#v=5&of=1.0&y=AAAA&n=4", "variations"),                      # labels: one float, not one per tag
    ("#lock=%%%", "locked noise"),
    ("#s=1&t=2&n=4&lock=AAAA", "locked noise"),                     # base64, but not 128 floats
    ("#s=1&t=2&n=4&on=no%20such%20tag&m=other.onnx", "tags, model"),
    ("#s=x&t=2&n=4", "noise seed"),
])
def test_bad_part_of_a_link_is_left_out_with_a_notice(page, server, link, left_out):
    """A malformed lock made atob throw before the model loaded: the page never drew, and reloading kept
    the hash. Now the part is left out, the notice names it, the rest of the link is drawn and the hash
    becomes the batch on screen."""
    open_page(page, server, link)                                   # ready resolves: the page runs
    notice = page.locator("#link-notice")
    assert notice.is_visible() and left_out in notice.text_content()
    faces = results(page)
    if link.startswith("#s=1&t=2&n=4"):
        assert [f["ref"] for f in faces] == ["1.0", "1.1", "1.2", "1.3"]   # seeds and size as linked
    assert "lock=" not in page.evaluate("location.hash") and "s=x" not in page.evaluate("location.hash")
    page.reload()
    page.evaluate("window.kyara.ready")
    assert notice.is_hidden()
    if link.startswith("#s=1&t=2&n=4"):
        assert [f["pixels"] for f in results(page)] == [f["pixels"] for f in faces]


def test_bad_lock_in_a_pasted_link_is_left_out(page, server, fast):
    open_page(page, server, fast)
    page.evaluate("location.hash = '#s=5&t=6&n=2&lock=%%%'")
    page.wait_for_function("() => location.hash.includes('s=5') && !location.hash.includes('lock')")
    idle(page)
    assert [f["ref"] for f in results(page)] == ["5.0", "5.1"]
    notice = page.locator("#link-notice")
    assert notice.is_visible() and "locked noise" in notice.text_content()
    generate_by_click(page)                                         # the notice was about the link
    assert notice.is_hidden()


def test_model_without_sha256_is_not_kept_stale_by_the_service_worker(browser, manifest, tmp_path):
    """A manifest without sha256 gives the page `model/<file>?v=` URLs. The service worker took the empty
    `v` for a version and kept answering with the first download after the model changed."""
    from webapp import create_app
    from webapp.assets import ServedModel
    from webapp.server import serve_in_background

    default = manifest["file"]
    fp32 = next(v["file"] for v in manifest["variants"] if v["precision"] == "fp32")
    unversioned = json.loads(json.dumps(manifest))
    unversioned.pop("sha256")
    for variant in unversioned["variants"]:
        variant.pop("sha256")
        variant.pop("bytes")
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, content in ((first, MODEL_DIR / default), (second, MODEL_DIR / fp32)):
        folder.mkdir()
        (folder / "manifest.json").write_text(json.dumps(unversioned))
        for variant in manifest["variants"]:
            shutil.copy(MODEL_DIR / variant["file"], folder / variant["file"])
        shutil.copy(content, folder / default)                     # `second`: other bytes, same name

    app = create_app(first)
    with serve_in_background(app) as url:
        context = browser.new_context()
        page = context.new_page()
        try:
            info = open_page(page, url)
            assert info["model"] == default and info["modelBytes"] == (MODEL_DIR / default).stat().st_size
            wait_until(page, lambda: page.evaluate("(url) => caches.match(url).then(Boolean)",
                                                   f"{url}model/{default}?v="))
            assert page.evaluate("navigator.serviceWorker.controller !== null")
            app.extensions["kyara"]["model"] = ServedModel.load(second)   # the server restarted on a new export
            page.reload()
            assert page.evaluate("window.kyara.ready")["modelBytes"] == (MODEL_DIR / fp32).stat().st_size
        finally:
            context.close()


# ---------------------------------------------------------------- an at-most-one group (hair length)

@pytest.fixture(scope="module")
def hair_length_model(tmp_path_factory) -> Path:
    """A tiny random model exported by `kyara export` whose tags include long hair and short hair."""
    from tiny_model import HAIR_LENGTH_PRIORS, HAIR_LENGTH_TAGS, export_tiny, tiny_checkpoint
    ckpt = tiny_checkpoint(tmp_path_factory.mktemp("run"), HAIR_LENGTH_TAGS, HAIR_LENGTH_PRIORS)
    return export_tiny(ckpt, tmp_path_factory.mktemp("model"), default="fp32")


@pytest.fixture(scope="module")
def hair_server(hair_length_model):
    from webapp import create_app
    from webapp.server import serve_in_background
    with serve_in_background(create_app(hair_length_model)) as url:
        yield url


def hair_length(manifest: dict, labels: list[float]) -> str:
    """ "long hair", "short hair", "none", or "long hair and short hair" for one label vector."""
    on = [tag for tag, value in zip(manifest["tags"], labels) if value == 1 and tag in ("long hair", "short hair")]
    return " and ".join(on) or "none"


def picker_labels(page, group: str) -> list[str]:
    return page.get_by_role("radiogroup", name=group).locator("label").all_text_contents()


def test_hair_length_is_one_choice_drawn_like_python(page, browser, hair_server, hair_length_model):
    """Long and short hair were two independent On/Off toggles (both On asked for a contradiction, and
    "random" drew them independently, so both came up together). Now the group is one choice, its random
    draw is export.runtime's for the same seed, and the choice travels in the share link."""
    import onnxruntime as ort

    from export.runtime import Generator

    manifest = json.loads((hair_length_model / "manifest.json").read_text())
    python = Generator(hair_length_model)
    open_page(page, hair_server, "#s=1&t=2&n=16")
    assert [t.strip() for t in picker_labels(page, "hair length")] == ["Random", "None", "long hair", "short hair"]
    assert page.get_by_role("radiogroup", name="long hair").count() == 0
    faces = results(page)
    assert all(hair_length(manifest, f["labels"]) != "long hair and short hair" for f in faces)
    # The noise of the noise seed (1) and the labels of the tag seed (2), each as export.runtime draws them.
    assert np.array_equal(np.array([f["noise"] for f in faces], np.float32), python.inputs((), 16, 1)[0])
    assert [f["labels"] for f in faces] == python.inputs((), 16, 2)[1].tolist()

    # Over many faces, random and with short hair fixed: the same labels as Python, all three lengths drawn.
    for chosen in ([], ["short hair"]):
        drawn = page.evaluate("""(tags) => Array.from(window.kyara.generator.inputs({ tags, n: 300, seed: 5 }).labels)""",
                              chosen)
        assert drawn == python.inputs(chosen, 300, 5)[1].ravel().tolist(), chosen
    lengths = [hair_length(manifest, row) for row in python.inputs((), 300, 5)[1].tolist()]
    assert all(lengths.count(kind) > 20 for kind in ("long hair", "short hair", "none")), lengths
    # None clears the group and leaves every other draw as it was.
    cleared = results_of_link(browser, f"{hair_server}#s=1&t=2&n=16&off=long+hair%2Cshort+hair")
    long_col, short_col = manifest["tags"].index("long hair"), manifest["tags"].index("short hair")
    for face, none in zip(faces, cleared):
        expected = list(face["labels"])
        expected[long_col] = expected[short_col] = 0
        assert none["labels"] == expected

    session = ort.InferenceSession(str(hair_length_model / manifest["file"]), providers=["CPUExecutionProvider"])
    for choice, encoded in (("short hair", "on=short+hair"), ("None", "off=long+hair%2Cshort+hair")):
        page.get_by_role("radiogroup", name="hair length").get_by_text(choice, exact=True).click()
        generate_by_click(page)
        faces = results(page)
        assert {hair_length(manifest, f["labels"]) for f in faces} == {choice.lower()}
        assert encoded in page.url
        expected = session.run(["rgba"], {"noise": np.array([f["noise"] for f in faces], np.float32),
                                          "labels": np.array([f["labels"] for f in faces], np.float32)})[0]
        got = np.array([f["pixels"] for f in faces], np.uint8).reshape(expected.shape)
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2

        other = browser.new_context().new_page()          # the link: same faces, and the choice shown
        try:
            open_page(other, page.url)
            assert [f["labels"] for f in results(other)] == [f["labels"] for f in faces]
            assert [f["pixels"] for f in results(other)] == [f["pixels"] for f in faces]
            checked = other.get_by_role("radiogroup", name="hair length").locator("label:has(input:checked)")
            assert checked.text_content().strip() == choice
            assert other.locator("#link-notice").is_hidden()
        finally:
            other.context.close()


@pytest.mark.parametrize("tags", ["on=smile,long%20hair,short%20hair", "on=smile,long%20hair&off=long%20hair",
                                  "on=smile&off=short%20hair"])
def test_link_asking_for_two_hair_lengths_is_left_out(page, browser, hair_server, hair_length_model, tags):
    """A hand-made link asking for long and short hair at once (or only "not short hair", a choice the page
    does not offer) gets the notice; the hair length stays random and the rest of the link is drawn."""
    manifest = json.loads((hair_length_model / "manifest.json").read_text())
    plain = results_of_link(browser, f"{hair_server}#s=1&t=2&n=8&on=smile")
    open_page(page, hair_server, f"#s=1&t=2&n=8&{tags}")
    notice = page.locator("#link-notice")
    assert notice.is_visible() and "tags" in notice.text_content()
    faces = results(page)
    assert [f["ref"] for f in faces] == [f"1.{i}" for i in range(8)]
    assert [f["labels"] for f in faces] == [f["labels"] for f in plain]     # smile on, hair length random
    assert all(f["labels"][manifest["tags"].index("smile")] == 1 for f in faces)
    checked = page.get_by_role("radiogroup", name="hair length").locator("label:has(input:checked)")
    assert checked.text_content().strip() == "Random"
