"""`python -m webapp.screenshot [PATH]` (or `./dev screenshot`): the README's picture of the page.

Taken by hand when the page changes, never by the tests, so that a test run leaves the checkout as it
was. The page is put in a fixed state (one share link's eight faces, a face selected, an interpolation
between two of them), so two runs on the same model and page show the same faces. Needs playwright
and Debian's chromium, which `./dev test` installs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.files import atomic_path
from webapp import DEFAULT_MODEL_DIR, REPO_ROOT, create_app
from webapp.headless import launch
from webapp.server import serve_in_background

DEFAULT_OUT = REPO_ROOT / "docs" / "screenshot.png"
LINK = "#s=20251&t=7&n=8&hd=4"             # the seeds of the faces shown; HD at 256 px


def take(browser, url: str, out: Path) -> None:
    """Open the page at `url` in `browser`, pose it and write a full-page PNG to `out` (atomically)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(url + LINK)
        page.evaluate("window.kyara.ready")
        page.get_by_role("button", name="Face 1:").click()
        page.get_by_role("button", name="Use as A").click()
        page.get_by_role("button", name="Face 4:").click()
        page.get_by_role("button", name="Use as B").click()
        page.get_by_role("button", name="Interpolate").click()
        page.locator("#strip .tile").last.wait_for()
        page.evaluate("window.kyara.idle()")
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as partial:
            page.screenshot(path=str(partial), full_page=True)
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help=f"PNG to write (default: {DEFAULT_OUT})")
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder (default: the bundled one)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright
    with serve_in_background(create_app(args.model)) as url, sync_playwright() as playwright:
        browser = launch(playwright)
        take(browser, url, args.out)
        browser.close()
    print(f"screenshot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
