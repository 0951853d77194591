"""Speed of the page in headless Chromium: time to the first image, and ms per image at batch 1 and 16,
for each model variant in the manifest (fp32, int8).

    .venv/bin/python benchmarks/browser.py [--model models/default] [--threads N] [--runs 5]

Prints `name: value unit` lines. Targets for the default 64 px model: <= 15 ms/image, first image
<= 1.5 s after the page's load event. Numbers are only meaningful on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from webapp import DEFAULT_MODEL_DIR, create_app
from webapp.headless import CHROMIUM, launch
from webapp.server import serve_in_background

# Runs inside the page: warm up, then time `runs` calls of the hook on one batch of fixed inputs.
TIME_BATCH = """async ([n, runs]) => {
  const { noiseDim, tags } = window.kyara.info;
  const noise = Array.from({ length: n }, (_, i) => window.kyara.noise(7, i));
  const labels = Array.from({ length: n }, () => tags.map((_, j) => Number(j % 5 === 0)));
  await window.kyara.generate(noise, labels);
  const start = performance.now();
  for (let r = 0; r < runs; r++) await window.kyara.generate(noise, labels);
  return (performance.now() - start) / runs / n;
}"""


def measure(browser, url: str, variant: dict, threads: int | None, runs: int) -> dict[str, float]:
    context = browser.new_context()
    page = context.new_page()
    query = f"?threads={threads}" if threads else ""
    # A share link with batch size 1, so the first batch the page draws is one image.
    page.goto(f"{url}{query}#s=1&t=2&n=1&m={variant['file']}")
    info = page.evaluate("window.kyara.ready")
    load_end = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    figures = {
        "first_image": info["firstImageMs"],
        "first_image_after_load": info["firstImageMs"] - load_end,
        "batch1": page.evaluate(TIME_BATCH, [1, runs]),
        "batch16": page.evaluate(TIME_BATCH, [16, max(1, runs // 2)]),
        "threads": info["threads"] or 0,
        "backend": info["backend"],
    }
    context.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder with manifest.json")
    parser.add_argument("--threads", type=int, help="wasm threads (default: the page's choice)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per batch size")
    parser.add_argument("--chromium", default=str(CHROMIUM))
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright
    manifest = json.loads((Path(args.model) / "manifest.json").read_text())
    with serve_in_background(create_app(args.model)) as url, sync_playwright() as playwright:
        browser = launch(playwright, args.chromium)
        for variant in manifest["variants"]:
            name = variant["precision"]
            f = measure(browser, url, variant, args.threads, args.runs)
            print(f"{name}.backend: {f['backend']} x{f['threads']} threads")
            print(f"{name}.model_size: {variant['bytes'] / 1e6:.2f} MB")
            print(f"{name}.first_image: {f['first_image']:.0f} ms")
            print(f"{name}.first_image_after_load: {f['first_image_after_load']:.0f} ms")
            print(f"{name}.batch1: {f['batch1']:.1f} ms/image")
            print(f"{name}.batch16: {f['batch16']:.1f} ms/image")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
