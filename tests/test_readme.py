"""The README promises only what the bundled model does: every tag it tells a reader to ask for exists there."""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_example_tags_exist_in_the_bundled_model():
    readme = (ROOT / "README.md").read_text()
    tags = set(json.loads((ROOT / "models/default/manifest.json").read_text())["tags"])
    intro = readme.split("\n## ", 1)[0]
    first_example = re.search(r'"([^"]+)"', intro)      # the headline's example: the first quoted phrase
    assert first_example, "the README's first paragraph gives no example tags"
    asked = [first_example.group(1)] + re.findall(r'--tags "([^"]+)"', readme) + re.findall(r'tags=\[([^\]]+)\]', readme)
    for example in asked:
        for tag in re.split(r"[,;]", example.replace('"', "")):
            assert tag.strip() in tags, f"README asks for {tag.strip()!r}, which models/default does not know"


def test_the_readme_reads_in_five_minutes():
    """A product page: 150 lines at most; the detail lives in docs/."""
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150
