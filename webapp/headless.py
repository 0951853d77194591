"""Headless Chromium for the browser tests, the browser benchmark and the screenshot: Debian's build (a
test tool's own browser download cannot work here), started with the flags a machine without internet
needs (no background connections, component updates or sync, each of which is refused and retried)."""
from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def launch(playwright, executable: str | Path = CHROMIUM):
    """A playwright Browser: `playwright` is what `sync_playwright()` gives."""
    return playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
