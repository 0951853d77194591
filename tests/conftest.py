"""Shared fixtures: a tiny packed set whose tags are visible in the pixels, so a few steps can learn them."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_tiny_packed(path: Path, n: int = 96, resolution: int = 32, seed: int = 0) -> Path:
    """Two hair colours (a red or a blue image) x two eye colours (a bright or dark centre square)."""
    from common.vocab import Vocabulary
    from common.packed import write_packed

    vocab = Vocabulary(["red hair", "blue hair", "green eyes", "brown eyes"])
    rng = np.random.default_rng(seed)
    hair, eyes = rng.integers(0, 2, n), rng.integers(0, 2, n)
    images = rng.integers(0, 60, (n, resolution, resolution, 3), dtype=np.uint8)
    images[hair == 0, :, :, 0] += 180
    images[hair == 1, :, :, 2] += 180
    c = resolution // 4
    images[eyes == 0, c:-c, c:-c, 1] = 250
    labels = np.zeros((n, len(vocab)), dtype=np.int8)
    labels[np.arange(n), [vocab.index(t) for t in np.where(hair == 0, "red hair", "blue hair")]] = 1
    labels[np.arange(n), [vocab.index(t) for t in np.where(eyes == 0, "green eyes", "brown eyes")]] = 1
    groups = np.arange(n)
    return write_packed(path, images, labels, vocab, groups, groups % 8 == 0, source="tests")


@pytest.fixture
def tiny_packed(tmp_path: Path) -> Path:
    return make_tiny_packed(tmp_path / "packed")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where tests leave files worth looking at after a run (screenshots): pytest's temporary folder
    (/tmp/pytest-of-USER/pytest-N/artifacts0, the last three runs kept), never the checkout, so a test run
    leaves `git status` clean. The README's screenshot is re-taken by `./dev screenshot`."""
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def server():
    """The real Flask app on the bundled model, serving in the background for one test module: its URL."""
    from webapp import create_app
    from webapp.server import serve_in_background
    with serve_in_background(create_app(Path(__file__).resolve().parents[1] / "models" / "default")) as url:
        yield url


def watch(page) -> list[str]:
    """Page errors and CSP violations of a Playwright `page`, collected as they happen."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: "Content Security Policy" in msg.text and errors.append(msg.text))
    return errors


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Playwright, one per test module; skips the tests that use it where either
    is missing."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from webapp.headless import CHROMIUM, launch
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def needs_shared_data() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} is absent")
