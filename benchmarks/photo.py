"""From a photo, in headless Chromium against `kyara serve`: the time from choosing a photo to the first face
drawn, cold (the first photo of a first visit: the reader's files downloaded and started) and warm (the next
photo), the bytes the photo feature adds, and what the reader makes of each photo given.

    .venv/bin/python benchmarks/photo.py [--runs 3] [--wide] [PHOTO ...]

Without photos it reads the test fixtures (tests/fixtures/photos/). "to first face" is the page's own figure
(window.kyara.info.photoToFaceMs): from the file picker's change event to the batch of faces drawn, with the
page's default batch of 8. Bytes on the wire are Chromium's (the responses' headers and encoded bodies, gzip
as `kyara serve` sends it); "files" are the reader's files as stored, "gzip" their gzip copies as a static
build writes them. `--wide` reads with the bundled model's manifest plus open mouth, glasses and male (the
age and sex network then loads too). Numbers are only meaningful on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import base64
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from webapp import DEFAULT_MODEL_DIR, create_app
from webapp.headless import launch
from webapp.server import serve_in_background

FIXTURES = REPO / "tests" / "fixtures" / "photos"
NEW_MODULES = ("photo.js", "photo-colours.js", "photo-measure.js", "photo-page.js")

# The bundled manifest with the readable tags it lacks (tests/test_photo.py's wide_manifest).
WIDEN = """(manifest) => {
    const wide = JSON.parse(JSON.stringify(manifest));
    wide.tags.push('open mouth', 'glasses', 'male');
    wide.groups.find((g) => g.tags.includes('smile')).tags.push('open mouth', 'glasses');
    wide.groups.push({ name: 'character', exclusive: false, tags: ['male'], priors: [0.1] });
    return wide;
}"""

READ = """async ([data, name, wide]) => {
    const base = new URL(document.querySelector('meta[name="kyara-static-base"]').content, location.href);
    const photo = await import(new URL('photo.js', base).href);
    let manifest = await (await fetch(document.querySelector('meta[name="kyara-model-base"]').content + 'manifest.json')).json();
    if (wide) manifest = (%s)(manifest);
    const file = new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], name);
    try {
        const found = await photo.tagsFromPhoto(file, manifest,
            { photoBase: document.querySelector('meta[name="kyara-photo-base"]').content });
        return { faces: found.faces.length, readings: found.readings };
    } catch (err) {
        return { error: err.message };
    }
}""" % WIDEN


def choose(page, path: Path) -> float:
    """Choose `path` in the page's file picker; the ms from that to its batch drawn (the page's figure)."""
    before = page.evaluate("window.kyara.info.photoToFaceMs")
    page.set_input_files("#photo-file", str(path))
    page.wait_for_function("""(before) => window.kyara.info.photoToFaceMs !== before
        || document.getElementById('photo-status').classList.contains('refused')""", arg=before, timeout=300_000)
    page.evaluate("window.kyara.idle()")
    ms = page.evaluate("window.kyara.info.photoToFaceMs")
    if ms == before:
        raise SystemExit(f"{path}: {page.locator('#photo-status').text_content()}")
    return ms


def timings(browser, url: str, photos: list[Path], runs: int) -> None:
    """Cold and warm time to first face, and the bytes of the reader's files on the wire (cold)."""
    cold, warm, wire = [], [], []
    for _ in range(runs):
        context = browser.new_context()
        sizes: list[int] = []
        context.on("requestfinished", lambda request: "/photo/" in request.url and sizes.append(
            request.sizes()["responseBodySize"] + request.sizes()["responseHeadersSize"]))
        page = context.new_page()
        page.goto(url)
        page.evaluate("window.kyara.ready")
        page.evaluate("window.kyara.idle()")
        cold.append(choose(page, photos[0]))
        wire.append(sum(sizes))
        warm.extend(choose(page, photo) for photo in (photos[1:] or photos) * 2)
        context.close()
    for name, values in (("cold", cold), ("warm", warm)):
        print(f"photo.to_first_face.{name}: {statistics.median(values):.0f} ms "
              f"(min {min(values):.0f}, max {max(values):.0f}, {len(values)} photos)")
    print(f"photo.reader_on_the_wire: {statistics.median(wire) / 1e6:.2f} MB (kyara serve, gzip)")


def sizes(app) -> None:
    """The reader's files as stored and gzipped, and what the panel's modules add to every first visit."""
    photo = app.extensions["kyara"]["photo"]
    static = app.extensions["kyara"]["static"]
    used = [name for name in photo.files if "age_gender" not in name and not name.endswith(("LICENSE", "package.json"))
            and not name.endswith("tfjs-backend-wasm.wasm")]         # the plain wasm: browsers without SIMD only
    raw = sum(len(photo.files[name].data) for name in used)
    packed = sum(len(photo.files[name].gzipped or photo.files[name].data) for name in used)
    print(f"photo.reader_files: {raw / 1e6:.2f} MB, gzip {packed / 1e6:.2f} MB ({len(used)} files; "
          f"+ {len(photo.files['@vladmandic/face-api/model/age_gender_model.bin'].data) / 1e6:.2f} MB for `male`)")
    first = sum(len(static.files[name].gzipped or static.files[name].data) for name in NEW_MODULES)
    print(f"photo.first_visit_modules: {first / 1e3:.1f} kB gzip ({', '.join(NEW_MODULES)})")


def readings(browser, url: str, photos: list[Path], wide: bool) -> None:
    """What the reader makes of each photo: every reading, with its confidence."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(url + "#n=1")
    page.evaluate("window.kyara.ready")
    for path in photos:
        found = page.evaluate(READ, [base64.b64encode(path.read_bytes()).decode(), path.name, wide])
        if "error" in found:
            print(f"photo.read.{path.name}: {found['error']}")
            continue
        said = ", ".join(f"{r['tag'] if r['on'] is not False else 'no ' + r['tag']} {r['confidence']:.2f}"
                         f"{'' if r['sure'] else ' (not sure)'}{' ' + r['colour'] if r.get('colour') else ''}"
                         for r in found["readings"])
        print(f"photo.read.{path.name}: {found['faces']} face(s): {said}")
    context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="*", type=Path, help="photos to read (default: the test fixtures)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--runs", type=int, default=3, help="first visits to time (each reads every photo)")
    parser.add_argument("--wide", action="store_true", help="read with open mouth, glasses and male added")
    args = parser.parse_args()
    photos = args.photos or sorted(FIXTURES.glob("*.jpg"))

    from playwright.sync_api import sync_playwright
    app = create_app(args.model)
    sizes(app)
    with serve_in_background(app) as url, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            readings(browser, url, photos, args.wide)
            timings(browser, url, photos, args.runs)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
