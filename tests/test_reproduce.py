"""The README's "Reproduce the bundled model" commands, run as a newcomer would type them, on the tiny preset.

The data step, tagging, packing, training in legs with portable checkpoints, evaluation and export run from a
temporary folder on a made-up tar laid out like the Getchu one; only what cannot run in seconds is changed
(the config becomes the `tiny` preset, 32 px instead of 64, two steps a leg, two faces a colour to evaluate),
and each change is listed in SHORTER below, so a README command that no longer runs fails here. The export of
the committed portable checkpoint runs as written: its model must draw the bundled model's faces.
"""
from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Reproduce the bundled model"
# What changes between the README's commands and this test's, and why: each must still occur in them.
SHORTER = [
    (r"configs/v5\.json", "tiny"),                 # the tiny preset: seconds, not hours
    (r"--steps \d+", "--steps 2"),
    (r"--resolution 64", "--resolution 32"),       # the tiny preset's size
    (r"--min-faces 100", "--min-faces 0"),         # a made-up tar of a few faces
    (r"--out eval/", "-n 2 --out eval/"),          # two faces a colour
    (r"data/labels/", f"{ROOT}/data/labels/"),     # run from a temporary folder
]


def readme_blocks() -> list[list[str]]:
    """The README section's sh blocks as command lines (continuations joined, comments dropped)."""
    section = (ROOT / "README.md").read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        joined = block.replace("\\\n", " ")
        blocks.append([re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines() if line.strip()])
    return blocks


def getchu_like_tar(path: Path) -> None:
    """A tar laid out like getchu_extra_data_64px.tar, whose faces include ids that each hand-checked label
    file of data/labels names (packing refuses a label file that names none of its images)."""
    ids = set(range(40))
    for labels in (ROOT / "data/labels").glob("getchu_review_*.csv"):
        with open(labels) as f:
            ids |= {int(row["id"]) for _, row in zip(range(3), csv.DictReader(f))}
    rng = np.random.default_rng(0)
    colours = ["blonde hair", "red hair"], ["blue eyes", "red eyes"]
    with tarfile.open(path, "w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("extra_data/tags.csv", "".join(f"{i},{colours[0][i % 2]} {colours[1][i // 2 % 2]}\n"
                                           for i in sorted(ids)).encode())
        for i in sorted(ids):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, format="JPEG")
            add(f"extra_data/images/{i}.jpg", buffer.getvalue())


def run(line: str, cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GIT_DIR": str(ROOT / ".git"), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    if line.startswith("kyara "):
        line = f"{sys.executable} -m {line}"
    done = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"


def test_the_readme_gives_one_config_and_it_loads():
    from training.config import load_config
    configs = set(re.findall(r"configs/[\w.-]+\.json", (ROOT / "README.md").read_text().split(SECTION, 1)[1]))
    assert configs == {"configs/v5.json"}
    assert load_config(str(ROOT / "configs/v5.json")).model.resolution == 64


@pytest.mark.skipif(not (ROOT / ".git").is_dir(), reason="needs the git history (the README takes tagger-v5 from it)")
def test_the_readme_reproduce_commands_run_on_the_tiny_preset(tmp_path):
    getchu_like_tar(tmp_path / "getchu_extra_data_64px.tar")
    (tmp_path / "getchu_attributes.csv").write_text("id,smile,long hair\n0,1,1\n1,0,1\n2,1,0\n3,0,0\n")
    blocks = readme_blocks()
    lines = [line for block in blocks for line in block]
    text = "\n".join(lines)
    for pattern, _ in SHORTER:
        assert re.search(pattern, text), f"the README's commands no longer contain {pattern!r}: update SHORTER"
    for line in lines:
        for pattern, replacement in SHORTER:
            line = re.sub(pattern, replacement, line)
        run(line, tmp_path)
    manifest = (tmp_path / "models/mine/manifest.json").read_text()
    assert '"kyara-default64"' in manifest
    for leg in ("leg1", "leg2", "leg3", "leg4"):
        assert (tmp_path / "runs" / leg / "checkpoints").is_dir()


def test_the_committed_portable_checkpoint_exports_the_bundled_model(tmp_path):
    """README: `kyara export portable/v5 -o models/mine --name kyara-default64 --truncation 0.7` exports the
    bundled model again without training: its fp32 file's faces within 1/255 of the bundled fp32 file's (the
    quantised files are calibrated again, so they round a little differently)."""
    from export.runtime import Generator
    section = " ".join((ROOT / "README.md").read_text().split(SECTION, 1)[1].split("\n## ", 1)[0].split())
    line = re.search(r"`(kyara export portable/[^`]+)`", section).group(1).replace("portable/", f"{ROOT}/portable/")
    run(line, tmp_path)
    ours, bundled = Generator(tmp_path / "models/mine/model.onnx"), Generator(ROOT / "models/default/model.onnx")
    assert ours.manifest["file"] == bundled.manifest["file"] and ours.manifest["tags"] == bundled.manifest["tags"]
    a = np.stack([np.asarray(f) for f in ours.generate(n=8, seed=3)]).astype(int)
    b = np.stack([np.asarray(f) for f in bundled.generate(n=8, seed=3)]).astype(int)
    assert np.abs(a - b).max() <= 1
