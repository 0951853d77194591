"""From a photo: tagsFromPhoto (photo.js), its colour names (photo-colours.js) and the page's panel, in headless
Chromium against the real server, the static build and the bundled model. One file, long because every test
shares the served page, the browser and the photo reader's start, which take longer than most tests.

The photos are two public-domain portraits shipped by PyPI packages (tests/fixtures/photos/README.md): NASA's
portrait of Eileen Collins (brown hair, smiling) and the U.S. Navy's of Grace Hopper (a cap over white hair,
glasses, not smiling); the other cases are made here: a photo with no face, one with two, a 1 x 1 image and a
text file named .jpg. The privacy tests record every request while a photo is read and faces are drawn: only
the page's own files are fetched, nothing is sent.
"""
from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from conftest import watch
from webapp.headless import CHROMIUM

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "models" / "default"
PHOTOS = Path(__file__).resolve().parent / "fixtures" / "photos"
HAIR_COLOURS = ("blonde hair", "brown hair", "black hair", "blue hair", "pink hair", "purple hair", "green hair",
                "red hair", "silver hair", "white hair", "orange hair", "aqua hair", "grey hair")

BROWSER_MARKS = (
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
    pytest.mark.skipif(not (MODEL_DIR / "manifest.json").is_file(), reason=f"no bundled model at {MODEL_DIR}"),
)


def browser_test(test):
    for mark in BROWSER_MARKS:
        test = mark(test)
    return test


# ---------------------------------------------------------------- photos

def photo(name: str) -> bytes:
    return (PHOTOS / name).read_bytes()


def png(array: np.ndarray) -> bytes:
    from PIL import Image
    out = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


def no_face() -> bytes:
    """A 240 x 160 gradient: nothing like a face."""
    y, x = np.mgrid[0:160, 0:240]
    return png(np.stack([x, y, 255 - x // 2], -1))


def two_faces() -> bytes:
    """Both portraits side by side on white: Hopper's face (the larger) on the right."""
    from PIL import Image
    left, right = (Image.open(PHOTOS / name).convert("RGB") for name in ("astronaut.jpg", "grace_hopper.jpg"))
    both = Image.new("RGB", (left.width + right.width, max(left.height, right.height)), "white")
    both.paste(left, (0, 0))
    both.paste(right, (left.width, 0))
    return png(np.asarray(both))


def big_astronaut() -> bytes:
    """The astronaut fixture enlarged ten times (2560 x 2560), as a phone's photo is large."""
    from PIL import Image
    out = io.BytesIO()
    Image.open(PHOTOS / "astronaut.jpg").resize((2560, 2560), Image.BICUBIC).save(out, format="JPEG", quality=85)
    return out.getvalue()


def one_pixel() -> bytes:
    return png(np.full((1, 1, 3), 128))


NOT_AN_IMAGE = b"These are words, not a photo.\n"


# ---------------------------------------------------------------- the server side (no browser)

def test_serves_the_photo_reader_immutable_with_its_licences():
    from webapp import create_app
    from webapp.npm import PHOTO_FILES

    app = create_app(MODEL_DIR)
    photo_files = app.extensions["kyara"]["photo"]
    client = app.test_client()
    page = client.get("/").text
    base = re.search(r'<meta name="kyara-photo-base" content="([^"]+)">', page).group(1)
    assert base == f"/photo/{photo_files.version}/"
    for name, mimetype in (("@vladmandic/face-api/dist/face-api.esm.js", "text/javascript"),
                           ("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm", "application/wasm"),
                           ("@vladmandic/face-api/model/tiny_face_detector_model.bin", "application/octet-stream"),
                           ("@vladmandic/face-api/LICENSE", "text/plain")):
        response = client.get(base + name)
        assert response.status_code == 200 and response.mimetype == mimetype, name
        assert response.cache_control.immutable and response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "MIT" in client.get(base + "@vladmandic/face-api/LICENSE").text
    assert json.loads(client.get(base + "@tensorflow/tfjs-backend-wasm/package.json").data)["license"] == "Apache-2.0"
    assert client.get(base + "@vladmandic/face-api/package.json").status_code == 200
    # Only the listed files: not the rest of node_modules, nor the networks the page never uses.
    for name in ("@vladmandic/face-api/model/ssd_mobilenetv1_model.bin", "onnxruntime-web/package.json",
                 "@vladmandic/face-api/../../onnxruntime-web/package.json"):
        assert client.get(base + name).status_code == 404, name
    assert set(photo_files.files) == set(PHOTO_FILES)


def test_a_missing_or_mismatched_photo_reader_is_one_clear_line(tmp_path):
    import shutil

    from webapp import DEFAULT_PHOTO_DIR, create_app
    from webapp.npm import PHOTO_FILES, TFJS_WASM

    with pytest.raises(FileNotFoundError, match=r"the photo reader .* is not installed .* run `npm ci`"):
        create_app(MODEL_DIR, photo_dir=tmp_path)
    for name in [*PHOTO_FILES, "@vladmandic/face-api/dist/tfjs.version.js"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEFAULT_PHOTO_DIR / name, tmp_path / name)
    assert create_app(MODEL_DIR, photo_dir=tmp_path).extensions["kyara"]["photo"].versions[TFJS_WASM] == "4.22.0"
    package = tmp_path / TFJS_WASM / "package.json"
    package.write_text(package.read_text().replace('"version": "4.22.0"', '"version": "4.21.0"'))
    with pytest.raises(ValueError, match=r"runs TensorFlow.js 4.22.0, but @tensorflow/tfjs-backend-wasm 4.21.0"):
        create_app(MODEL_DIR, photo_dir=tmp_path)


def test_the_page_shows_a_photo_error_as_the_module_words_it():
    """photo.js's English messages (PhotoError.message) are en.js's texts for the same keys, word for word."""
    source = (REPO / "webapp" / "static" / "photo.js").read_text()
    table = re.search(r"const MESSAGES = \{(.*?)\n\};", source, re.S).group(1)
    messages = dict(re.findall(r"'(photo\.\w+)': '([^']*)'", table))
    english = (REPO / "webapp" / "static" / "i18n" / "en.js").read_text()
    english = json.loads(re.search(r"export default (\{.*\});", english, re.S).group(1))["messages"]
    assert len(messages) == 5
    for key, text in messages.items():
        assert english[key] == text, key


# ---------------------------------------------------------------- browser fixtures

@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((MODEL_DIR / "manifest.json").read_text())


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    errors = watch(page)
    yield page
    context.close()
    assert not errors, errors


def open_page(page, url: str, hash: str = "#n=2") -> dict:
    page.goto(url + hash)
    info = page.evaluate("window.kyara.ready")
    page.evaluate("window.kyara.idle()")
    return info


def with_modules(page) -> None:
    """photo.js as window.photo and photo-colours.js as window.colours, from the page's own static folder."""
    page.evaluate("""async () => {
        const base = new URL(document.querySelector('meta[name="kyara-static-base"]').content, location.href);
        window.photo = await import(new URL('photo.js', base).href);
        window.colours = await import(new URL('photo-colours.js', base).href);
        window.photoBase = document.querySelector('meta[name="kyara-photo-base"]').content;
    }""")


READ = """async ([data, name, manifest, options]) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const file = new File([bytes], name);
    try {
        return await window.photo.tagsFromPhoto(file, manifest, { photoBase: window.photoBase, ...options });
    } catch (err) {
        return { error: err.name, key: err.key, message: err.message };
    }
}"""


def read(page, data: bytes, name: str, manifest: dict, **options) -> dict:
    return page.evaluate(READ, [base64.b64encode(data).decode(), name, manifest, options])


def wide_manifest(manifest: dict) -> dict:
    """The bundled manifest with the paper's other readable tags added (open mouth, glasses, male)."""
    wide = json.loads(json.dumps(manifest))
    wide["tags"] += ["open mouth", "glasses", "male"]
    next(g for g in wide["groups"] if "smile" in g["tags"])["tags"] += ["open mouth", "glasses"]
    wide["groups"].append({"name": "character", "exclusive": False, "tags": ["male"], "priors": [0.1]})
    return wide


def choose(page, data: bytes, name: str, mime: str = "image/jpeg") -> str:
    """Choose a photo in the panel's file picker; wait until its batch is drawn or a line refuses it. The
    panel's status line."""
    before = page.evaluate("""() => {
        document.getElementById('photo-status').classList.remove('refused');
        return window.kyara.info.photoToFaceMs;
    }""")
    page.set_input_files("#photo-file", {"name": name, "mimeType": mime, "buffer": data})
    page.wait_for_function("""(before) => document.getElementById('photo-status').classList.contains('refused')
        || window.kyara.info.photoToFaceMs !== before""", arg=before, timeout=120_000)
    page.evaluate("window.kyara.idle()")
    return page.locator("#photo-status").text_content()


def tags_on(manifest: dict, face: dict) -> set[str]:
    return {tag for tag, value in zip(manifest["tags"], face["labels"]) if value == 1}


class Requests:
    """Every request a browser context makes (its service worker's included), as (method, url, body)."""

    def __init__(self, context):
        self.seen: list[tuple[str, str, bytes | None]] = []
        context.on("request", lambda request: self.seen.append((request.method, request.url, request.post_data_buffer)))

    def check_only_own_files(self, origin: str) -> list[str]:
        """Assert every request was a GET of the origin's files with no body; returns their paths."""
        assert self.seen
        for method, url, body in self.seen:
            parts = urlsplit(url)
            assert f"{parts.scheme}://{parts.netloc}" == origin, url
            assert method == "GET" and not body, (method, url)
            assert parts.query in ("",) or re.fullmatch(r"v=[0-9a-f]{64}", parts.query), url
        return [urlsplit(url).path for _, url, _ in self.seen]


# ---------------------------------------------------------------- the colour names (no photo reader)

@browser_test
def test_colours_are_named_by_cielab_distance_with_a_confidence(page, server, manifest):
    open_page(page, server)
    with_modules(page)
    hair = [t for t in manifest["tags"] if t.endswith(" hair") and t not in ("long hair", "short hair")]
    eyes = [t for t in manifest["tags"] if t.endswith(" eyes")]
    named = page.evaluate("""([hair, eyes]) => {
        const { HAIR_COLOURS, EYE_COLOURS, nearestColourTag, hexToRgb, srgbToLab, deltaE2000 } = window.colours;
        const name = (hex, refs, known) => {
            const found = nearestColourTag(hexToRgb(hex), refs, known);
            return found && [found.tag, found.confidence];
        };
        return {
            white: srgbToLab([255, 255, 255]), red: srgbToLab([255, 0, 0]),
            // Sharma, Wu and Dalal (2005), pairs 1, 7 and 17 of their table of CIEDE2000 test data.
            sharma: [deltaE2000([50, 2.6772, -79.7751], [50, 0, -82.7485]),
                     deltaE2000([50, 0, 0], [50, -1, 2]), deltaE2000([50, 2.5, 0], [73, 25, -18])],
            own: [[HAIR_COLOURS, hair], [EYE_COLOURS, eyes]].flatMap(([refs, known]) => known.flatMap(
                (tag) => refs[tag].map((hex) => [tag, hex, name(hex, refs, known)]))),
            swatches: Object.fromEntries(['#161314', '#4b3621', '#a07850', '#e6cf9b', '#b1622c', '#8a8a8a', '#f3f1ee',
                '#3b4fa0', '#e07fa8'].map((hex) => [hex, name(hex, HAIR_COLOURS, hair)])),
            // Halfway (in Lab) between the lightest brown and the darker blonde.
            between: name(window.colours.rgbToHex(window.colours.labToSrgb(srgbToLab(hexToRgb(HAIR_COLOURS['brown hair'][2]))
                .map((value, i) => (value + srgbToLab(hexToRgb(HAIR_COLOURS['blonde hair'][0]))[i]) / 2))), HAIR_COLOURS, hair),
            silverWithout: name(HAIR_COLOURS['silver hair'][0], HAIR_COLOURS, hair),
            silverWith: name(HAIR_COLOURS['silver hair'][0], HAIR_COLOURS, [...hair, 'silver hair']),
            unknown: nearestColourTag([0, 0, 0], HAIR_COLOURS, ['smile']),
            blueEyes: name('#6b8fb8', EYE_COLOURS, eyes), greenEyes: name('#71834e', EYE_COLOURS, eyes),
            quality: nearestColourTag(hexToRgb(HAIR_COLOURS['black hair'][0]), HAIR_COLOURS, hair, { quality: 0.3 }).confidence,
        };
    }""", [hair, eyes])
    assert named["white"] == pytest.approx([100, 0, 0], abs=0.01)
    assert named["red"] == pytest.approx([53.24, 80.09, 67.20], abs=0.02)
    assert named["sharma"] == pytest.approx([2.0425, 2.3669, 27.1492], abs=1e-4)
    for tag, hex_colour, (found, confidence) in named["own"]:           # each reference names its own tag
        assert found == tag and confidence > 0.9, (tag, hex_colour, found, confidence)
    expected = {"#161314": "black hair", "#4b3621": "brown hair", "#a07850": "brown hair", "#e6cf9b": "blonde hair",
                "#b1622c": "orange hair", "#8a8a8a": "grey hair", "#f3f1ee": "white hair", "#3b4fa0": "blue hair",
                "#e07fa8": "pink hair"}
    for hex_colour, tag in expected.items():
        found, confidence = named["swatches"][hex_colour]
        assert found == tag and confidence >= 0.6, (hex_colour, found, confidence)
    assert named["between"][1] < 0.6                       # between brown and blonde: not sure
    assert named["silverWithout"][0] in ("white hair", "grey hair") and named["silverWith"][0] == "silver hair"
    assert named["unknown"] is None                        # no hair colour in the model: no reading
    assert named["blueEyes"][0] == "blue eyes" and named["greenEyes"][0] == "green eyes"
    assert named["quality"] == pytest.approx(0.3, abs=0.01)


@browser_test
def test_readings_become_only_the_models_tags_and_dark_irises_stay_unsaid(page, server, manifest):
    open_page(page, server)
    with_modules(page)
    run = """([measured, manifest]) => window.photo.readTags(measured, manifest)"""
    hair = {"rgb": [115, 90, 60], "lab": [40, 6, 21], "quality": 1, "sides": 0.6, "top": 0.8, "below": 0.0}
    measured = {"hair": hair, "iris": {"rgb": [90, 128, 170], "lab": [52, -3, -27], "pixels": 40}, "mouth": 0.3,
                "bridge": 2, "happy": 0.9, "male": 0.1}
    bundled = {r["tag"]: r for r in page.evaluate(run, [measured, manifest])}
    assert set(bundled) == {"brown hair", "blue eyes", "short hair", "smile"}   # no male, glasses, open mouth
    assert bundled["brown hair"]["key"] == "hair colour" and bundled["short hair"]["key"] == "hair length"
    assert all(r["sure"] for r in bundled.values()) and bundled["smile"]["on"] is True
    wide = {r["tag"]: r for r in page.evaluate(run, [measured, wide_manifest(manifest)])}
    assert wide["male"]["on"] is False and wide["male"]["confidence"] == pytest.approx(0.9)
    assert wide["glasses"]["on"] is False and wide["open mouth"]["on"] is True and wide["male"]["key"] == "male"
    # A dark iris, or one seen through glasses, is not told: low confidence, not a guess presented as fact.
    dark = {**measured, "iris": {"rgb": [40, 28, 22], "lab": [13, 5, 7], "pixels": 40}}
    eye = next(r for r in page.evaluate(run, [dark, manifest]) if r["key"] == "eye colour")
    assert eye["confidence"] < 0.2 and not eye["sure"]
    glasses = {r["tag"]: r for r in page.evaluate(run, [{**measured, "bridge": 30}, wide_manifest(manifest)])}
    assert glasses["glasses"]["on"] is True and glasses["glasses"]["sure"]
    assert glasses["blue eyes"]["confidence"] == pytest.approx(bundled["blue eyes"]["confidence"] / 2)
    # Long hair: as much hair beside the neck as beside the face.
    long = {**measured, "hair": {**hair, "below": 0.6}}
    assert any(r["tag"] == "long hair" and r["sure"] for r in page.evaluate(run, [long, manifest]))


# ---------------------------------------------------------------- the real photos

@browser_test
def test_real_portraits_read_as_a_person_would_say(page, server, manifest):
    """Eileen Collins: brown hair, smiling; Grace Hopper: not smiling, her glasses seen; her hair, mostly under
    her cap, is never read as a colour she does not have."""
    open_page(page, server)
    with_modules(page)
    collins = read(page, photo("astronaut.jpg"), "astronaut.jpg", manifest)
    assert len(collins["faces"]) == 1
    face = collins["face"]
    assert 50 < face["x"] + face["width"] / 2 < 200 and 60 < face["y"] + face["height"] / 2 < 180    # her face
    assert {"brown hair", "smile", "short hair"} <= set(collins["tags"])
    assert collins["confidence"]["brown hair"] >= 0.6 and collins["confidence"]["smile"] > 0.9
    assert collins["width"] == collins["height"] == 256

    hopper = read(page, photo("grace_hopper.jpg"), "grace_hopper.jpg", wide_manifest(manifest))
    assert len(hopper["faces"]) == 1 and hopper["face"]["width"] > 120
    assert "smile" in hopper["off"] and "glasses" in hopper["tags"]
    said = set(hopper["tags"]) & set(HAIR_COLOURS)
    assert said <= {"white hair", "grey hair", "silver hair"}, hopper["readings"]
    eye = next(r for r in hopper["readings"] if r["key"] == "eye colour")
    assert not eye["sure"]                                   # behind glasses: not told
    assert all(0 <= value <= 1 for value in hopper["confidence"].values())


@browser_test
def test_no_face_several_faces_tiny_and_broken_files(page, server, manifest):
    open_page(page, server)
    with_modules(page)
    refused = {
        "gradient.png": (no_face(), "photo.noFace", "No face was found in gradient.png: try a photo where the face "
                                                     "is larger, lit from the front and not covered."),
        "dot.png": (one_pixel(), "photo.tooSmall", "dot.png is too small to find a face in (1 × 1 px)."),
        "photo.jpg": (NOT_AN_IMAGE, "photo.notImage", "photo.jpg is not an image this browser can read."),
    }
    for name, (data, key, message) in refused.items():
        assert read(page, data, name, manifest) == {"error": "PhotoError", "key": key, "message": message}
    huge = page.evaluate("""async (manifest) => window.photo.tagsFromPhoto(new File([new Uint8Array(51 * 2 ** 20)], 'huge.jpg'),
        manifest, { photoBase: window.photoBase }).catch((err) => err.message)""", manifest)
    assert huge == "huge.jpg is too large to read (51 MB; at most 50 MB)."
    # A large photo is scaled down to be read; the face comes back in its own pixels.
    small = read(page, photo("astronaut.jpg"), "astronaut.jpg", manifest)
    large = read(page, big_astronaut(), "large.jpg", manifest)
    assert (large["width"], large["height"]) == (2560, 2560) and set(small["tags"]) == set(large["tags"])
    for key in ("x", "y", "width", "height"):
        assert large["face"][key] == pytest.approx(10 * small["face"][key], rel=0.08, abs=20), key
    both = read(page, two_faces(), "both.png", manifest)
    assert len(both["faces"]) == 2
    assert both["face"] == both["faces"][0] and both["face"]["x"] > 256           # the larger: Hopper's
    assert both["faces"][0]["width"] * both["faces"][0]["height"] > both["faces"][1]["width"] * both["faces"][1]["height"]
    other = read(page, two_faces(), "both.png", manifest, face=1)
    assert other["face"] == both["faces"][1] and other["face"]["x"] < 256
    assert {"brown hair", "smile"} <= set(other["tags"])
    # A canvas and an ImageBitmap read as the file does, an <img> is read (the page's icon: no face in it);
    # anything else is refused with the same line as a broken file.
    kinds = page.evaluate("""async ([data, manifest]) => {
        const blob = new Blob([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], { type: 'image/jpeg' });
        const bitmap = await createImageBitmap(blob);
        const canvas = Object.assign(document.createElement('canvas'), { width: bitmap.width, height: bitmap.height });
        canvas.getContext('2d').drawImage(bitmap, 0, 0);
        const img = Object.assign(new Image(), { src: document.querySelector('link[rel="icon"]').href, width: 200 });
        const options = { photoBase: window.photoBase };
        const tags = async (source) => (await window.photo.tagsFromPhoto(source, manifest, options)).tags;
        const refusal = (source) => window.photo.tagsFromPhoto(source, manifest, options).then(() => null, (err) => err.key);
        return { bitmap: await tags(bitmap), canvas: await tags(canvas), img: await refusal(img),
                 other: await refusal({ width: 10 }) };
    }""", [base64.b64encode(photo("astronaut.jpg")).decode(), manifest])
    assert kinds["bitmap"] == kinds["canvas"] and {"brown hair", "smile"} <= set(kinds["canvas"])
    assert kinds["img"] in ("photo.noFace", "photo.tooSmall") and kinds["other"] == "photo.notImage"


# ---------------------------------------------------------------- the page

@browser_test
def test_a_photo_becomes_editable_choices_and_a_batch_and_nothing_leaves_the_page(browser, server, manifest):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    requests = Requests(context)
    page = context.new_page()
    errors = watch(page)
    try:
        open_page(page, server)
        first_visit = requests.check_only_own_files(server.rstrip("/"))
        assert not [path for path in first_visit if path.startswith("/photo/")]     # the reader: not before a photo
        assert page.locator("#photo-result").is_hidden()

        status = choose(page, photo("astronaut.jpg"), "astronaut.jpg")
        assert status == "Read from astronaut.jpg: change any choice, then draw again."
        reading = page.evaluate("window.kyara.photo()")
        assert {"brown hair", "smile"} <= set(reading["tags"])
        # The photo with its face framed, and each reading as an ordinary choice with how sure it was.
        assert page.locator("#photo-canvas").evaluate("(c) => c.width > 100 && c.height > 100")
        hair_menu = page.get_by_label("Hair colour", exact=True)
        assert hair_menu.input_value() == "brown hair"
        assert page.get_by_label("Smile", exact=True).input_value() == "on"
        rows = page.locator("#photo-tags").inner_text()
        assert re.search(r"\d+\s?% sure", rows)
        # ... the same choices as the pickers, and the batch drawn with them.
        assert page.locator("#tag-groups input[type=radio][value='brown hair']").is_checked()
        faces = page.evaluate("window.kyara.results()")
        assert len(faces) == 2 and all({"brown hair", "smile"} <= tags_on(manifest, face) for face in faces)
        assert page.evaluate("window.kyara.info.photoToFaceMs") > 0

        # Changed before drawing again: the next batch has the visitor's choice.
        hair_menu.select_option("blonde hair")
        assert page.locator("#tag-groups input[type=radio][value='blonde hair']").is_checked()
        before = page.evaluate("location.hash")
        page.get_by_role("button", name="Draw characters with these").click()
        page.wait_for_function("(before) => location.hash !== before", arg=before)
        page.evaluate("window.kyara.idle()")
        assert all("blonde hair" in tags_on(manifest, face) for face in page.evaluate("window.kyara.results()"))

        # Nothing was sent: every request a GET of the page's own files, the reader's among them.
        paths = requests.check_only_own_files(server.rstrip("/"))
        fetched = {path.split("/", 3)[-1] for path in paths if path.startswith("/photo/")}
        assert {"@vladmandic/face-api/dist/face-api.esm.js", "@vladmandic/face-api/model/tiny_face_detector_model.bin",
                "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm"} <= fetched
        assert not any("age_gender" in name for name in fetched)            # the bundled model has no `male`
        # ... and the photo is kept nowhere: not in the link, the storage or the offline cache.
        stored = page.evaluate("""async () => {
            const cached = [];
            for (const name of await caches.keys()) {
                for (const request of await (await caches.open(name)).keys()) cached.push(request.url);
            }
            return { hash: location.hash, local: JSON.stringify(localStorage), session: sessionStorage.length, cached };
        }""")
        assert set(dict(part.split("=", 1) for part in stored["hash"][1:].split("&"))) <= {
            "s", "t", "n", "on", "off", "w", "wn", "lock", "m", "v", "of", "y", "hd"}
        assert len(stored["local"]) < 2000 and stored["session"] == 0
        assert all(url.startswith(server) and "blob:" not in url and "data:" not in url for url in stored["cached"])

        page.get_by_role("button", name="Forget the photo").click()
        assert page.locator("#photo-result").is_hidden() and page.evaluate("window.kyara.photo()") is None
        assert page.locator("#photo-canvas").evaluate("(c) => c.width === 0")
    finally:
        context.close()
    assert not errors, errors


@browser_test
def test_refused_photos_are_one_line_and_the_page_keeps_working(page, server, manifest):
    open_page(page, server)
    cases = [(NOT_AN_IMAGE, "photo.jpg", "photo.jpg is not an image this browser can read."),
             (one_pixel(), "dot.png", "dot.png is too small to find a face in (1 × 1 px)."),
             (no_face(), "gradient.png", "No face was found in gradient.png: try a photo where the face is larger, "
                                         "lit from the front and not covered.")]
    for data, name, line in cases:
        assert choose(page, data, name) == line
        assert page.locator("#photo-status").evaluate("(p) => p.classList.contains('refused')")
        assert page.locator("#error").is_hidden()
    assert page.locator("#photo-result").is_visible()          # the photo without a face is shown
    # Several faces: the largest read, the other a click away.
    status = choose(page, two_faces(), "both.png", "image/png")
    assert status == "2 faces in both.png: the largest was read; click another to read it instead."
    assert page.get_by_role("button", name="Face 1 in the photo (read)").get_attribute("aria-pressed") == "true"
    largest = page.evaluate("window.kyara.photo()")["face"]
    before = page.evaluate("window.kyara.info.photoToFaceMs")
    page.get_by_role("button", name="Face 2 in the photo", exact=True).click()
    page.wait_for_function("(before) => window.kyara.info.photoToFaceMs !== before", arg=before)
    page.evaluate("window.kyara.idle()")
    assert page.evaluate("window.kyara.photo()")["face"]["x"] < largest["x"]
    assert page.get_by_role("button", name="Face 2 in the photo (read)").get_attribute("aria-pressed") == "true"
    # A click on the photo reads the face under it.
    box = page.locator("#photo-canvas").bounding_box()
    scale = box["width"] / page.evaluate("window.kyara.photo()").get("width")
    before = page.evaluate("window.kyara.info.photoToFaceMs")
    page.mouse.click(box["x"] + (largest["x"] + largest["width"] / 2) * scale,
                     box["y"] + (largest["y"] + largest["height"] / 2) * scale)
    page.wait_for_function("(before) => window.kyara.info.photoToFaceMs !== before", arg=before)
    assert page.evaluate("window.kyara.photo()")["face"] == largest
    # After all that, the Generate button still draws.
    before = page.evaluate("location.hash")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_function("(before) => location.hash !== before", arg=before)


@browser_test
def test_a_dropped_or_pasted_photo_is_read(page, server):
    open_page(page, server)
    data = base64.b64encode(photo("astronaut.jpg")).decode()
    for event in ("drop", "paste"):
        page.evaluate("() => window.kyara.idle()")
        before = page.evaluate("window.kyara.info.photoToFaceMs")
        page.evaluate("""([data, event]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], `${event}.jpg`, { type: 'image/jpeg' }));
            const target = event === 'drop' ? document.querySelector('.tagline') : document.body;
            if (event === 'drop') {
                target.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
                target.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
            } else {
                target.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfer, bubbles: true }));
            }
        }""", [data, event])
        page.wait_for_function("(before) => window.kyara.info.photoToFaceMs !== before", arg=before, timeout=120_000)
        assert page.locator("#photo-status").text_content() == f"Read from {event}.jpg: change any choice, then draw again."
    assert page.url.startswith(server)                          # a drop does not leave the page for the file


@browser_test
def test_the_camera_takes_a_photo_where_the_browser_has_one(browser, server):
    """Chromium's fake camera (a test pattern, no face): the preview, the snapshot, one clear line."""
    camera = browser.browser_type.launch(executable_path=str(CHROMIUM), args=[
        "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
    try:
        context = camera.new_context(locale="en-GB")
        context.grant_permissions(["camera"])
        page = context.new_page()
        errors = watch(page)
        open_page(page, server)
        page.get_by_role("button", name="Use the camera").click()
        page.wait_for_function("() => document.getElementById('photo-video').videoWidth > 0")
        page.get_by_role("button", name="Take the photo").click()
        page.wait_for_function("() => document.getElementById('photo-status').classList.contains('refused')",
                               timeout=120_000)
        assert page.locator("#photo-status").text_content().startswith("No face was found in the camera's picture")
        assert page.locator("#photo-live").is_hidden()
        assert page.evaluate("document.getElementById('photo-video').srcObject") is None     # the camera is off
        assert not errors, errors
    finally:
        camera.close()


@browser_test
def test_the_page_works_when_the_photo_reader_cannot_load(browser, server, manifest):
    context = browser.new_context(locale="en-GB", service_workers="block")     # so that the route sees every fetch
    page = context.new_page()
    errors = watch(page)
    open_page(page, server)
    page.route("**/photo/**", lambda route: route.abort())
    status = choose(page, photo("astronaut.jpg"), "astronaut.jpg")
    assert status.startswith("The photo reader could not be loaded (")
    assert status.endswith("); the rest of the page works as before.")
    before = page.evaluate("location.hash")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_function("(before) => location.hash !== before", arg=before)
    page.unroute("**/photo/**")
    assert choose(page, photo("astronaut.jpg"), "astronaut.jpg").startswith("Read from astronaut.jpg")   # tried again
    context.close()
    assert not errors, errors


@browser_test
def test_static_build_reads_a_photo_from_a_plain_host(browser, tmp_path, manifest):
    """`kyara build-site` carries the reader (and the licences) in photo/<v>/; from Python's http.server a photo
    turns into tags and characters, and every request stays on the host."""
    from static_host import serve_folder
    from webapp.site import build_site

    build_site(tmp_path / "site", MODEL_DIR)
    html = (tmp_path / "site" / "index.html").read_text()
    base = re.search(r'<meta name="kyara-photo-base" content="(photo/[0-9a-f]{16}/)">', html).group(1)
    assert (tmp_path / "site" / base / "@vladmandic/face-api/LICENSE").is_file()
    assert (tmp_path / "site" / base / "@vladmandic/face-api/dist/face-api.esm.js.gz").is_file()
    context = browser.new_context(locale="en-GB")
    requests = Requests(context)
    page = context.new_page()
    errors = watch(page)
    try:
        with serve_folder(tmp_path / "site") as url:
            open_page(page, url)
            assert choose(page, photo("astronaut.jpg"), "astronaut.jpg").startswith("Read from astronaut.jpg")
            faces = page.evaluate("window.kyara.results()")
            assert faces and all({"brown hair", "smile"} <= tags_on(manifest, face) for face in faces)
            paths = requests.check_only_own_files(url.rstrip("/"))
            assert any(path.startswith(f"/{base}") for path in paths)
    finally:
        context.close()
    assert not errors, errors


@browser_test
def test_the_example_page_turns_a_photo_into_characters(browser, tmp_path):
    """examples/photo.html beside node_modules/ as npm lays out the kyara package and its dependencies (linked
    here to the checkout's files), from Python's http.server: a photo, its tags, eight faces."""
    from static_host import serve_folder

    modules = tmp_path / "node_modules"
    (modules / "kyara" / "webapp").mkdir(parents=True)
    (modules / "kyara" / "webapp" / "static").symlink_to(REPO / "webapp" / "static")
    (modules / "kyara" / "models").symlink_to(REPO / "models")
    for package in ("onnxruntime-web", "@vladmandic/face-api", "@tensorflow/tfjs-backend-wasm"):
        (modules / package).parent.mkdir(parents=True, exist_ok=True)
        (modules / package).symlink_to(REPO / "node_modules" / package)
    (tmp_path / "index.html").write_bytes((REPO / "examples" / "photo.html").read_bytes())
    context = browser.new_context()
    page = context.new_page()
    errors = watch(page)
    try:
        with serve_folder(tmp_path) as url:
            page.goto(url)
            page.set_input_files("#photo", str(PHOTOS / "astronaut.jpg"))
            page.wait_for_function("() => document.querySelectorAll('#faces canvas').length === 8", timeout=120_000)
            said = page.locator("#read").text_content()
            assert "brown hair" in said and "smile" in said
            page.set_input_files("#photo", {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": NOT_AN_IMAGE})
            page.wait_for_function("() => document.getElementById('read').textContent.startsWith('notes.jpg')")
            assert page.locator("#read").text_content() == "notes.jpg is not an image this browser can read."
    finally:
        context.close()
    assert not errors, errors
