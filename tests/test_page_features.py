"""The page's advanced mode (a slider per tag), favourites library and languages, in headless Chromium against
the real server and the bundled model; plus a plain check that every language file has every text. One file,
long because the three features share one served page and browser (starting them is the slow part).

Advanced mode: a slider at 0 and 1 gives exactly the labels and pixels of simple mode's Off and On; a mix of an
exclusive group is normalised to sum to 1, travels in the share link and is redrawn by a fresh visitor; a
value beyond what the model saw in training is allowed, marked and carried. Favourites: the star keeps a face
in localStorage, the panel redraws it from its noise, rates it, exports and imports it; a malformed or hostile
file is refused with one line and changes nothing. Languages: the switch is remembered across reloads, the
browser's language is followed, and share links keep the model's tag names. A 390 px wide page has no
overlapping controls; the static build loads the new modules.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from conftest import watch
from webapp.headless import CHROMIUM

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / "models" / "default"
I18N_DIR = REPO / "webapp" / "static" / "i18n"
LANGUAGES = ("en", "ja", "zh", "ru")
# Intl.PluralRules' categories for whole numbers in each language: a counted text must have each of them.
PLURALS = {"en": {"one", "other"}, "ja": {"other"}, "zh": {"other"}, "ru": {"one", "few", "many", "other"}}

BROWSER_MARKS = (
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
    pytest.mark.skipif(not (MODEL_DIR / "manifest.json").is_file(), reason=f"no bundled model at {MODEL_DIR}"),
)


def browser_test(test):
    """A test that drives the page in headless Chromium (the `browser` fixture skips it without Playwright)."""
    for mark in BROWSER_MARKS:
        test = mark(test)
    return test


# ---------------------------------------------------------------- the language files (no browser)

def read_language(code: str) -> dict:
    """An i18n/<code>.js module: comment lines, then `export default {strict JSON};`."""
    text = (I18N_DIR / f"{code}.js").read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
    match = re.fullmatch(r"\s*export default (\{.*\});\s*", body, flags=re.S)
    assert match, f"{code}.js is not `export default {{...}};`"
    return json.loads(match.group(1))


def placeholders(message) -> set[str]:
    texts = message.values() if isinstance(message, dict) else [message]
    return {name for text in texts for name in re.findall(r"\{(\w+)\}", text)}


def test_every_language_has_every_key():
    from common.vocab import GROUPS, TAGS

    english = read_language("en")["messages"]
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text()) if (MODEL_DIR / "manifest.json").is_file() else None
    for code in LANGUAGES:
        language = read_language(code)
        messages = language["messages"]
        assert language["name"] and set(messages) == set(english), (code, set(english) ^ set(messages))
        for key, message in messages.items():
            assert placeholders(message) == placeholders(english[key]), (code, key)
            if isinstance(message, dict):
                assert PLURALS[code] <= set(message) and "other" in message, (code, key)
                assert all(isinstance(text, str) and text.strip() for text in message.values()), (code, key)
            else:
                assert isinstance(message, str) and (message.strip() or key == "list.separator"), (code, key)
        if code == "en":
            continue                        # the model's names are English
        assert set(TAGS) <= set(language["tags"]), (code, set(TAGS) - set(language["tags"]))
        assert set(language["groups"]) == {group.name for group in GROUPS}
        names = list(language["tags"].values())
        assert len(set(names)) == len(names) and all(name.strip() for name in names), code
        if manifest:
            assert set(manifest["tags"]) <= set(language["tags"])
    # Spot checks of the translations the issue names.
    assert read_language("ja")["tags"]["blonde hair"] == "金髪"
    assert read_language("zh")["tags"]["blonde hair"] == "金发"
    assert read_language("ru")["tags"]["blonde hair"] == "светлые волосы"


# ---------------------------------------------------------------- browser fixtures

@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((MODEL_DIR / "manifest.json").read_text())


@pytest.fixture(scope="module")
def fp32(manifest) -> str:
    return next(v["file"] for v in manifest["variants"] if v["precision"] == "fp32")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB", accept_downloads=True)
    page = context.new_page()
    errors = watch(page)
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def python_pixels(fp32):
    import onnxruntime as ort
    session = ort.InferenceSession(str(MODEL_DIR / fp32), providers=["CPUExecutionProvider"])

    def run(noise, labels) -> np.ndarray:
        return session.run(["rgba"], {"noise": np.asarray(noise, np.float32), "labels": np.asarray(labels, np.float32)})[0]
    return run


def open_page(page, url: str, hash: str = "") -> dict:
    page.goto(url + hash)
    info = page.evaluate("window.kyara.ready")
    idle(page)
    return info


def idle(page) -> None:
    page.evaluate("window.kyara.idle()")


def results(page) -> list[dict]:
    return page.evaluate("window.kyara.results()")


def generate_by_click(page) -> None:
    before = page.evaluate("location.hash")
    page.locator("#generate").click()
    page.wait_for_function("(before) => location.hash !== before", arg=before)
    idle(page)


def fresh_visit(browser, link: str, **options) -> tuple:
    """A new visitor (own storage) opening `link`: (page, context); close the context when done."""
    context = browser.new_context(**{"locale": "en-GB", **options})
    other = context.new_page()
    other.errors = watch(other)
    open_page(other, link)
    return other, context


def fragment(page) -> dict:
    return parse_qs(urlsplit(page.url).fragment)


def column(manifest, tag: str) -> int:
    return manifest["tags"].index(tag)


def set_slider(page, name: str, value: float) -> None:
    page.get_by_role("slider", name=name, exact=True).fill(str(value))


# ---------------------------------------------------------------- advanced mode

@browser_test
def test_slider_at_0_and_1_is_exactly_off_and_on(page, browser, server, manifest, fp32):
    """Sliders at 1 (blonde hair's weight alone, blush) and 0 (smile) draw export.runtime's labels for blonde
    hair and blush on and smile cleared, and the link is simple mode's (on / off). A link with those numbers
    (w=...:1 and :0) draws exactly the labels and pixels of simple mode's On and Off for the same seeds."""
    open_page(page, server, f"#s=5&t=6&n=4&m={fp32}")
    page.locator("#advanced").check()
    set_slider(page, "blonde hair", 1)
    set_slider(page, "blush", 1)
    set_slider(page, "smile", 0)
    assert page.get_by_role("spinbutton", name="Value of blush").input_value() == "1"
    generate_by_click(page)                     # noise seed 5 (fixed by the link), a new tag seed
    faces = results(page)
    link = fragment(page)
    assert link["on"] == ["blonde hair,blush"] and link["off"] == ["smile"] and "w" not in link

    from export.runtime import Generator
    noise, labels = Generator(MODEL_DIR).inputs(["blonde hair", "blush"], 4, int(link["t"][0]))
    labels[:, column(manifest, "smile")] = 0
    assert [f["labels"] for f in faces] == labels.tolist()

    seeds = f"#s={link['s'][0]}&t={link['t'][0]}&n=4&m={fp32}"
    for shared in (f"{seeds}&w=blonde+hair:1,blush:1,smile:0", f"{seeds}&on=blonde+hair,blush&off=smile"):
        other, context = fresh_visit(browser, server + shared)
        try:
            assert [f["labels"] for f in results(other)] == [f["labels"] for f in faces], shared
            assert [f["pixels"] for f in results(other)] == [f["pixels"] for f in faces], shared
            assert other.locator("#advanced").is_checked() is False        # nothing simple mode cannot show
            checked = other.get_by_role("radiogroup", name="blush").locator("label:has(input:checked)")
            assert checked.text_content().strip() == "On"
            assert other.locator("#link-notice").is_hidden() and not other.errors
        finally:
            context.close()


@browser_test
def test_slider_values_between_and_module_labels_as_numbers(page, server, manifest, fp32):
    """kyara.js takes labels as numbers: { tag: 1 } and { tag: 0 } are exactly tags on and a tag cleared, a
    mix sets the group's other tags to 0, rows replace the draw; a value that is not a finite number is a
    RangeError and an unknown tag a TagError. A slider at 0.5 gives 0.5, and faces other than at 0 or 1."""
    open_page(page, server, f"#s=9&t=9&n=2&m={fp32}")
    out = page.evaluate("""() => {
        const g = window.kyara.generator;
        const labels = (options) => Array.from(g.inputs({ seed: 3, n: 4, ...options }).labels);
        const T = g.tags.length, blush = g.tags.indexOf('blush');
        const cleared = labels({}).map((v, i) => (i % T === blush ? 0 : v));
        const errors = [];
        for (const bad of [{ blush: NaN }, { blush: 'x' }, [1, 2], { 'cat ears': 1 }]) {
            try { g.inputs({ seed: 1, labels: bad }); errors.push(null); } catch (err) { errors.push(err.name); }
        }
        const mix = labels({ labels: { 'blonde hair': 0.7, 'pink hair': 0.3 } });
        const row = Array.from({ length: T }, (_, i) => i / T);
        return {
            on: labels({ labels: { blush: 1 } }), tagged: labels({ tags: ['blush'] }),
            off: labels({ labels: { blush: 0 } }), cleared, mix, errors,
            rows: labels({ labels: row }), row, T,
        };
    }""")
    assert out["on"] == out["tagged"] and out["off"] == out["cleared"]
    T, hair = out["T"], [column(manifest, tag) for tag in manifest["groups"][0]["tags"]]
    for i in range(4):
        values = {manifest["tags"][c]: out["mix"][i * T + c] for c in hair if out["mix"][i * T + c]}
        assert values == {"blonde hair": pytest.approx(0.7), "pink hair": pytest.approx(0.3)}
    assert out["rows"] == list(np.float32(out["row"] * 4).tolist())
    assert out["errors"] == ["RangeError", "RangeError", "RangeError", "TagError"]

    page.locator("#advanced").check()
    set_slider(page, "smile", 0.5)
    assert page.get_by_role("checkbox", name="smile: Random").is_checked() is False
    generate_by_click(page)
    faces = results(page)
    assert all(f["labels"][column(manifest, "smile")] == 0.5 for f in faces)
    pixels = {}
    for value in (0, 0.5, 1):       # the same noise and other labels through the page's hook
        labels = [[value if i == column(manifest, "smile") else v for i, v in enumerate(f["labels"])] for f in faces]
        pixels[value] = page.evaluate("([z, y]) => window.kyara.generate(z, y).then(Array.from)",
                                      [[f["noise"] for f in faces], labels])
    assert pixels[0.5] == [x for f in faces for x in f["pixels"]]
    assert pixels[0.5] != pixels[0] and pixels[0.5] != pixels[1]
    page.get_by_role("checkbox", name="smile: Random").check()           # back to the draw
    generate_by_click(page)
    assert "w" not in fragment(page) and "smile" not in page.url


@browser_test
def test_mix_is_normalised_carried_in_the_link_and_redrawn(page, browser, server, manifest, fp32, python_pixels,
                                                           artifacts):
    """Hair colour 0.6 blonde and 0.2 pink is drawn as 0.75 and 0.25; long hair 0.5 with none 0.25 as 2/3;
    blush typed as 0.4. The link carries the weights as set (w, wn); a fresh visitor opening it sees advanced
    mode with the same sliders and draws the same labels and pixels, which are onnxruntime's in Python. A value
    beyond training (1.5) is marked and carried; variations keep the mixed labels; advanced off rounds."""
    open_page(page, server, f"#s=7&t=8&n=3&m={fp32}")
    page.locator("#advanced").check()
    set_slider(page, "blonde hair", 0.6)
    set_slider(page, "pink hair", 0.2)
    set_slider(page, "long hair", 0.5)
    set_slider(page, "hair length: None", 0.25)
    page.get_by_role("spinbutton", name="Value of blush").fill("0.4")
    hair = page.locator("fieldset[data-group='hair colour']")
    shares = dict(zip(hair.locator(".slider-name").all_text_contents(), hair.locator("output").all_text_contents()))
    assert shares["blonde hair"] == "75%" and shares["pink hair"] == "25%" and shares["red hair"] == "0%"
    assert not hair.locator(".random-box").is_checked()
    generate_by_click(page)
    faces = results(page)
    expected = {"blonde hair": 0.75, "pink hair": 0.25, "long hair": float(np.float32(0.5 / 0.75)),
                "short hair": 0.0, "blush": float(np.float32(0.4))}
    for face in faces:
        for tag, value in expected.items():
            assert face["labels"][column(manifest, tag)] == value, tag
        assert sum(face["labels"][c] for c in (column(manifest, t) for t in manifest["groups"][0]["tags"])) == 1
    link = fragment(page)
    assert sorted(link["w"][0].split(",")) == ["blonde hair:0.6", "blush:0.4", "long hair:0.5", "pink hair:0.2"]
    assert link["wn"] == ["hair length:0.25"]
    want = python_pixels([f["noise"] for f in faces], [f["labels"] for f in faces])
    got = np.array([f["pixels"] for f in faces], np.uint8).reshape(want.shape)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 2
    assert "blonde hair 0.75" in page.get_by_role("button", name="Face 1:").get_attribute("title")

    other, context = fresh_visit(browser, page.url)
    try:
        assert [f["pixels"] for f in results(other)] == [f["pixels"] for f in faces]
        assert [f["labels"] for f in results(other)] == [f["labels"] for f in faces]
        assert other.locator("#advanced").is_checked()
        assert other.get_by_role("slider", name="blonde hair", exact=True).input_value() == "0.6"
        assert other.get_by_role("slider", name="pink hair", exact=True).input_value() == "0.2"
        assert other.get_by_role("spinbutton", name="Value of blush").input_value() == "0.4"
        assert other.locator("#link-notice").is_hidden() and not other.errors
    finally:
        context.close()

    # Beyond training: typed, marked, drawn and carried.
    page.get_by_role("spinbutton", name="Value of blush").fill("1.5")
    row = page.locator(".value-row").filter(has=page.get_by_role("spinbutton", name="Value of blush"))
    assert row.locator(".beyond").is_visible() and "beyond training" in row.locator(".beyond").text_content()
    page.get_by_role("spinbutton", name="Value of blush").fill("5")          # outside what the page allows
    assert page.get_by_role("spinbutton", name="Value of blush").get_attribute("aria-invalid") == "true"
    page.get_by_role("spinbutton", name="Value of blush").fill("1.5")
    generate_by_click(page)
    assert all(f["labels"][column(manifest, "blush")] == 1.5 for f in results(page))
    assert "blush:1.5" in fragment(page)["w"][0]
    beyond = results(page)
    other, context = fresh_visit(browser, page.url)
    try:
        assert [f["pixels"] for f in results(other)] == [f["pixels"] for f in beyond]
        assert other.locator(".value-row .beyond").first.is_visible()
    finally:
        context.close()

    # Variations and history carry the values; the variations' link too.
    page.get_by_role("button", name="Face 2:").click()
    before = page.evaluate("location.hash")
    page.get_by_role("button", name="Variations", exact=True).click()
    page.wait_for_function("(before) => location.hash !== before && location.hash.includes('v=')", arg=before)
    idle(page)
    varied = results(page)
    assert all(f["labels"] == beyond[1]["labels"] for f in varied)
    other, context = fresh_visit(browser, page.url)
    try:
        assert [f["pixels"] for f in results(other)] == [f["pixels"] for f in varied]
    finally:
        context.close()
    assert page.locator("#history .tile").count() >= 9
    page.screenshot(path=str(artifacts / "advanced-desktop.png"), full_page=True)

    # Turning advanced mode off rounds to the simple choices: blonde (the heaviest), long hair, blush On.
    page.locator("#advanced").uncheck()
    checked = page.locator("#tag-groups label:has(input:checked)").all_text_contents()
    assert [text.strip() for text in checked] == ["blonde hair", "long hair", "On", "Random", "Random"]


# ---------------------------------------------------------------- favourites

def stored(page) -> list[dict]:
    return page.evaluate("JSON.parse(localStorage.getItem('kyara.favourites') ?? 'null')?.favourites ?? []")


def canvas_pixels(page, selector: str) -> list[list[int]]:
    return page.evaluate("""(selector) => [...document.querySelectorAll(selector)].map((canvas) =>
        Array.from(canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data))""", selector)


def open_panel(page) -> None:
    """Open the favourites panel and wait until it has drawn the favourites this model can draw."""
    if not page.locator("#favourites-panel").evaluate("(panel) => panel.open"):
        page.locator("#favourites-panel summary").click()
    page.wait_for_function("""() => [...document.querySelectorAll('#favourites .fav:not(.unusable) canvas')]
        .every((canvas) => canvas.width === canvas.height)""")      # drawn (a blank canvas is 300 x 150)
    idle(page)


def import_file(page, path) -> str:
    """Choose `path` in the import box; the one-line message the page answers with, once it is done."""
    page.evaluate("document.getElementById('favourites-message').hidden = true")
    page.locator("#import-file").set_input_files(str(path))
    page.wait_for_function("() => !document.getElementById('favourites-message').hidden")
    idle(page)
    return page.locator("#favourites-message").text_content()


def download(page, click) -> dict:
    with page.expect_download() as info:
        click()
    return json.loads(Path(info.value.path()).read_text())


@browser_test
def test_favourites_star_rate_redraw_export_and_import(page, server, manifest, fp32, tmp_path):
    open_page(page, server, f"#s=3&t=3&n=4&m={fp32}")
    faces = results(page)
    star = page.locator("#results .tile-box").nth(1).locator(".star")
    assert star.get_attribute("aria-pressed") == "false"
    star.click()
    assert star.get_attribute("aria-pressed") == "true"
    page.get_by_role("button", name="Face 3:").click()
    page.locator("#favourite").click()                              # the selected face's star
    assert page.locator("#favourite").get_attribute("aria-pressed") == "true"
    kept = stored(page)
    assert [f["ref"] for f in kept] == ["3.2", "3.1"]
    assert kept[1]["noise"] == faces[1]["noise"] and kept[1]["model"]["name"] == manifest["name"]
    assert kept[1]["model"]["version"] == manifest["version"] and kept[1]["rating"] == 0
    assert kept[1]["labels"] == {tag: 1 for tag, v in zip(manifest["tags"], faces[1]["labels"]) if v == 1}
    assert page.locator("#favourites-count").text_content() == "(2)"
    assert page.locator("#history .star[aria-pressed='true']").count() == 2     # the same faces in history

    # A reload: the library is still there, and the panel redraws the faces from their noise.
    page.reload()
    page.evaluate("window.kyara.ready")
    open_panel(page)
    entries = page.locator("#favourites .fav")
    assert entries.count() == 2
    drawn = canvas_pixels(page, "#favourites canvas")
    assert sorted(drawn) == sorted([faces[1]["pixels"], faces[2]["pixels"]])

    # Newest first while unrated; +1 twice on face 2's entry and -1 on face 3's put face 2 first.
    assert canvas_pixels(page, "#favourites canvas") == [faces[2]["pixels"], faces[1]["pixels"]]
    entries.nth(1).get_by_role("button", name="Rate up (+1)").click()
    assert {f["ref"]: f["rating"] for f in stored(page)} == {"3.1": 1, "3.2": 0}
    entries.nth(0).get_by_role("button", name="Rate up (+1)").click()
    assert {f["ref"]: f["rating"] for f in stored(page)} == {"3.1": 2, "3.2": 0}
    entries.nth(1).get_by_role("button", name="Rate down (−1)").click()
    assert {f["ref"]: f["rating"] for f in stored(page)} == {"3.1": 2, "3.2": -1}
    assert page.locator("#favourites .fav .rating").all_text_contents() == ["+2", "-1"]
    assert canvas_pixels(page, "#favourites canvas")[0] == faces[1]["pixels"]

    # Opening a favourite selects it (drawn again, from its noise).
    page.get_by_role("button", name="Favourite 1:").click()
    idle(page)
    assert canvas_pixels(page, "#selected-canvas") == [faces[1]["pixels"]]
    assert page.locator("#lock-note").is_visible()

    # Export the library and one character; remove everything; import them back.
    library = download(page, lambda: page.get_by_role("button", name="Export the library").click())
    assert library["format"] == "kyara-favourites" and library["version"] == 1 and len(library["favourites"]) == 2
    character = download(page, lambda: page.locator("#favourites .fav").nth(1).get_by_role("button", name="Save as a file").click())
    assert character["format"] == "kyara-character" and character["ref"] == "3.2" and len(character["noise"]) == 128
    assert "rating" not in character and "id" not in character
    selected = download(page, lambda: page.get_by_role("button", name="Save this face as a file").click())
    assert selected["noise"] == faces[1]["noise"] and selected["format"] == "kyara-character"
    (tmp_path / "library.json").write_text(json.dumps(library))
    (tmp_path / "character.json").write_text(json.dumps(character))
    while page.locator("#favourites .fav").count():
        page.locator("#favourites .fav").first.get_by_role("button", name="Remove").click()
    assert stored(page) == [] and page.locator("#favourites-empty").is_visible()
    assert page.locator("#results .star[aria-pressed='true']").count() == 0

    assert import_file(page, tmp_path / "character.json") == "Imported 1 favourite."
    assert canvas_pixels(page, "#selected-canvas") == [faces[2]["pixels"]]      # a character file opens it
    assert import_file(page, tmp_path / "library.json") == "Imported 1 favourite. 1 was there already."
    assert {f["ref"]: f["rating"] for f in stored(page)} == {"3.1": 2, "3.2": 0}
    assert page.locator("#results .star[aria-pressed='true']").count() == 2

    # The star again lets a face go.
    page.locator("#results .tile-box").nth(1).locator(".star").click()
    assert [f["ref"] for f in stored(page)] == ["3.2"]


HOSTILE = {
    "not JSON": ("{not json", "the file is not JSON."),
    "another format": (json.dumps({"format": "something", "version": 1}), "this is not a Kyara favourites or character file."),
    "a newer version": (json.dumps({"format": "kyara-favourites", "version": 2, "favourites": []}), "version 2"),
    "noise too short": ({"noise": [0.1] * 10}, "favourite 1: the noise must be 128 finite numbers."),
    "noise infinite": ('{"format": "kyara-favourites", "version": 1, "favourites": [{"noise": [1e999'
                       + ', 0' * 127 + '], "labels": {}}]}', "favourite 1: the noise must be 128 finite numbers."),
    "noise as text": ({"noise": ["0.5"] * 128}, "the noise must be 128 finite numbers"),
    "unknown tag": ({"labels": {"cat ears": 1}}, "favourite 1: this model has no tag “cat ears”."),
    "prototype key": ('{"format": "kyara-favourites", "version": 1, "favourites": [{"noise": ['
                      + ', '.join(['0'] * 128) + '], "labels": {"__proto__": {"polluted": 1}}}]}', "no tag “__proto__”"),
    "huge value": ({"labels": {"blush": 1e300}}, "numbers from -2 to 3"),
    "rating not whole": ({"rating": 1.5}, "the rating must be a whole number."),
    "long model name": ({"model": {"name": "x" * 5000}}, "the model must be given by short texts."),
    "script in ref": ({"ref": "<script>alert(1)</script>"}, "“ref” is not valid."),
    "favourites not a list": (json.dumps({"format": "kyara-favourites", "version": 1, "favourites": {"0": {}}}),
                              "not a Kyara favourites"),
    "too many": ("many", "the file holds more than 500 favourites."),
    "too large": ("large", "the file is larger than 2048 KB."),
}


def hostile_file(kind, body, manifest) -> str:
    if body == "many":
        item = {"noise": [0.0] * 128, "labels": {}}
        return json.dumps({"format": "kyara-favourites", "version": 1, "favourites": [item] * 501})
    if body == "large":
        return json.dumps({"format": "kyara-favourites", "version": 1, "padding": "x" * (3 * 1024 * 1024)})
    if isinstance(body, str):
        return body
    item = {"noise": [0.25] * 128, "labels": {"blonde hair": 1, "blue eyes": 1}, **body}
    return json.dumps({"format": "kyara-favourites", "version": 1, "favourites": [item]})


@browser_test
def test_malformed_or_hostile_files_are_refused_with_one_line(page, server, manifest, fp32, tmp_path):
    open_page(page, server, f"#s=4&t=4&n=2&m={fp32}")
    page.locator("#results .tile-box").first.locator(".star").click()
    before, listed = stored(page), page.locator("#favourites").inner_html()
    for kind, (body, expected) in HOSTILE.items():
        path = tmp_path / f"{kind.replace(' ', '-')}.json"
        path.write_text(hostile_file(kind, body, manifest))
        text = import_file(page, path)
        assert text.startswith("Not imported: ") and expected in text and "\n" not in text, (kind, text)
        assert len(text) < 200, (kind, text)
        assert stored(page) == before, kind                          # nothing changed
        assert page.locator("#favourites").inner_html() == listed, kind
        assert page.evaluate("({}).polluted") is None


@browser_test
def test_favourite_of_another_model_says_so_and_opens_when_it_can(page, server, manifest, fp32):
    open_page(page, server, f"#s=4&t=4&n=1&m={fp32}")
    noise = page.evaluate("window.kyara.noise(77, 0)")
    other = {"name": "kyara-other", "version": "step1", "file": "model.onnx"}
    library = {"format": "kyara-favourites", "version": 1, "favourites": [
        {"id": "a", "noise": noise, "labels": {"pink hair": 1, "green eyes": 1, "smile": 0.5}, "model": other,
         "rating": 3, "created": "2026-01-03T00:00:00Z"},
        {"id": "b", "noise": noise, "labels": {"pink hair": 1, "cat ears": 1}, "model": other, "rating": 2,
         "created": "2026-01-02T00:00:00Z"},
        {"id": "c", "noise": noise[:64], "labels": {"pink hair": 1}, "model": other, "rating": 1,
         "created": "2026-01-01T00:00:00Z"},
    ]}
    page.evaluate("(text) => localStorage.setItem('kyara.favourites', text)", json.dumps(library))
    page.reload()
    page.evaluate("window.kyara.ready")
    open_panel(page)
    entries = page.locator("#favourites .fav")
    notes = [entries.nth(i).locator(".fav-note").all_text_contents() for i in range(3)]
    assert notes[0] == ["Made with another model: kyara-other step1."]
    assert notes[1][1] == "This model cannot draw it: it has no tag “cat ears”."
    assert notes[2][1] == "This model cannot draw it: its noise has 64 numbers, this model takes 128."
    assert [entries.nth(i).locator(".fav-face").is_enabled() for i in range(3)] == [True, False, False]
    assert "smile 0.5" in entries.nth(0).locator(".fav-tags").text_content()
    page.get_by_role("button", name="Favourite 1:").click()
    idle(page)
    labels = [0.0] * len(manifest["tags"])
    for tag, value in library["favourites"][0]["labels"].items():
        labels[column(manifest, tag)] = value
    expected = page.evaluate("([z, y]) => window.kyara.generate([z], [y]).then(Array.from)", [noise, labels])
    assert canvas_pixels(page, "#selected-canvas") == [expected]
    assert len(stored(page)) == 3                                  # kept, though two cannot be drawn here


# ---------------------------------------------------------------- languages

@browser_test
def test_language_switch_is_remembered_and_links_keep_tag_names(page, browser, server, fp32):
    open_page(page, server, f"#s=4&t=4&n=2&m={fp32}")
    hash_before = page.evaluate("location.hash")
    assert page.locator("#generate").text_content() == "Generate" and page.evaluate("document.documentElement.lang") == "en"
    page.locator("#language").select_option("ja")
    assert page.locator("#generate").text_content() == "生成"
    assert page.evaluate("document.documentElement.lang") == "ja"
    assert page.locator("#tag-groups legend").first.text_content() == "髪の色"
    assert page.locator(".swatch-text").filter(has_text="金髪").count() == 1
    assert page.evaluate("location.hash") == hash_before           # the link is the same in every language
    assert page.get_by_role("button", name="顔 1:").count() == 1

    page.reload()
    page.evaluate("window.kyara.ready")
    assert page.locator("#language").input_value() == "ja" and page.locator("#generate").text_content() == "生成"
    page.locator("label").filter(has_text="金髪").first.click()
    page.locator("label").filter(has_text="赤い目").first.click()
    generate_by_click(page)
    link = fragment(page)
    assert link["on"] == ["blonde hair,red eyes"]                  # the model's names, not the display names
    page.locator("#advanced").check()
    assert page.get_by_role("slider", name="金髪", exact=True).input_value() == "1"

    # A link that cannot be used is explained in the visitor's language.
    page.goto(f"{server}#s=1&t=1&n=1&on=no%20such%20tag")
    page.evaluate("window.kyara.ready")
    notice = page.locator("#link-notice").text_content()
    assert notice.startswith("このリンクの一部を省きました") and "タグ" in notice

    # A first visit follows the browser's language; Russian counts in its own plural forms.
    for locale, generate, lang in (("zh-CN", "生成", "zh-Hans"), ("ru-RU", "Создать", "ru"), ("fr-FR", "Generate", "en")):
        other, context = fresh_visit(browser, f"{server}#s=4&t=4&n=2&m={fp32}", locale=locale)
        try:
            assert other.locator("#generate").text_content() == generate, locale
            assert other.evaluate("document.documentElement.lang") == lang
            assert other.evaluate("location.hash") == hash_before
            if locale == "ru-RU":
                assert other.locator("#tag-groups legend").first.text_content() == "Цвет волос"
            assert not other.errors
        finally:
            context.close()


# ---------------------------------------------------------------- a phone

CONTROLS = """() => {
    const selector = 'button, select, input:not([type="radio"]):not([type="file"]), output, summary, legend, h1, h2, '
        + '.tagline, .status > div, .segmented label, .swatches label, label.check, .slider-name, .field > span, .notice';
    const shown = [...document.querySelectorAll(selector)].filter((node) => node.getClientRects().length
        && !node.closest('.tile-box') && !node.closest('[hidden]') && getComputedStyle(node).visibility !== 'hidden');
    const boxes = shown.map((node) => ({ node, box: node.getBoundingClientRect() }));
    const overlaps = [];
    for (let i = 0; i < boxes.length; i++) {
        for (let j = i + 1; j < boxes.length; j++) {
            const [a, b] = [boxes[i], boxes[j]];
            if (a.node.contains(b.node) || b.node.contains(a.node)) continue;
            const x = Math.min(a.box.right, b.box.right) - Math.max(a.box.left, b.box.left);
            const y = Math.min(a.box.bottom, b.box.bottom) - Math.max(a.box.top, b.box.top);
            if (x > 1 && y > 1) overlaps.push(`${a.node.outerHTML.slice(0, 80)} / ${b.node.outerHTML.slice(0, 80)}`);
        }
    }
    const wide = boxes.filter(({ box }) => box.left < -1 || box.right > innerWidth + 1)
        .map(({ node }) => node.outerHTML.slice(0, 80));
    return { count: boxes.length, overlaps, wide, scrollWidth: document.documentElement.scrollWidth };
}"""


@browser_test
@pytest.mark.parametrize("locale, advanced", [("en-GB", False), ("en-GB", True), ("ru-RU", True), ("ja-JP", True)])
def test_phone_screen_has_no_overlapping_controls(browser, server, fp32, artifacts, locale, advanced):
    """At 390 px, with a face selected, a favourite in the open panel and (or not) advanced mode: no two of
    the main controls' boxes intersect and nothing is wider than the screen. The sticky Generate box is
    measured where it stands in the page (scrolled to the bottom, it is not stuck over the pickers)."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale=locale)
    page = context.new_page()
    errors = watch(page)
    try:
        open_page(page, server, f"#s=6&t=6&n=4&m={fp32}")
        if advanced:
            page.locator("#advanced").check()
            page.get_by_role("slider").nth(0).fill("0.7")             # a group mixed: its shares shown
            page.locator("input.value").first.fill("1.4")            # a value beyond training: marked
        page.locator("#results .tile").nth(1).click()
        page.locator("#favourite").click()
        open_panel(page)
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        page.wait_for_timeout(100)
        found = page.evaluate(CONTROLS)
        name = f"phone-{locale}-{'advanced' if advanced else 'simple'}"
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
        assert found["count"] > 40 and found["overlaps"] == [] and found["wide"] == [], found
        assert found["scrollWidth"] <= 390
        assert not errors, errors
    finally:
        context.close()


# ---------------------------------------------------------------- the static build

@browser_test
def test_static_build_loads_the_new_modules(browser, tmp_path):
    """`kyara build-site` carries favourites.js, pickers.js, library.js, i18n.js and i18n/*.js, preloaded by
    the page (and so cached for offline use); from a plain file server a link with values opens in advanced
    mode, the language switch works and a favourite is kept and redrawn."""
    from static_host import serve_folder
    from webapp.site import build_site

    build_site(tmp_path / "site", MODEL_DIR)
    html = (tmp_path / "site" / "index.html").read_text()
    for name in ("favourites.js", "library.js", "pickers.js", "i18n.js", "i18n/en.js", "i18n/ja.js", "i18n/zh.js", "i18n/ru.js"):
        assert re.search(rf'<link rel="modulepreload" href="static/[0-9a-f]+/{re.escape(name)}">', html), name
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    errors = watch(page)
    try:
        with serve_folder(tmp_path / "site") as url:
            open_page(page, url, "#s=2&t=2&n=2&w=blush:0.4")
            assert page.locator("#advanced").is_checked()
            assert all(f["labels"][page.evaluate("window.kyara.info.tags.indexOf('blush')")] == np.float32(0.4)
                       for f in results(page))
            page.locator("#language").select_option("zh")
            assert page.locator("#generate").text_content() == "生成"
            page.locator("#results .tile-box").first.locator(".star").click()
            page.reload()
            page.evaluate("window.kyara.ready")
            open_panel(page)
            assert canvas_pixels(page, "#favourites canvas") == [results(page)[0]["pixels"]]
            assert page.locator("#generate").text_content() == "生成"
        assert not errors, errors
    finally:
        context.close()
