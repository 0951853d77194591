"""Bad input to the CLI: every case is refused before long work, in one line that names the file and what is
wrong with it, with a non-zero exit, no traceback, and no output half made.

Every fixture is made here: a tiny checkpoint (tests/tiny_model.py) and its export, a tiny packed set, and
broken copies of each (truncated or empty weights, another network's weights, bad JSON, truncated .npy and
tar files, a model file whose bytes differ from its manifest's sha256). A full disk is a write that raises
OSError(28), patched in for one command at a time.
"""
from __future__ import annotations

import errno
import io
import json
import re
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kyara.cli import main
from conftest import make_tiny_packed
from tiny_model import tiny_checkpoint

TAGS = ["red hair", "blue hair", "green eyes", "brown eyes"]
PRIORS = [0.5, 0.5, 0.5, 0.5]
PROGRESS = re.compile(r"\d+/\d+ \[[^\]]*\]\s*$")     # a tqdm bar's line (pack, eval, generate, train draw one)


# --- fixtures: made once for the module, copied where a case breaks them ---------------------------------

@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_input")
    ckpt = tiny_checkpoint(root / "run", TAGS, PRIORS)
    ckpt64 = tiny_checkpoint(root / "run64", TAGS, PRIORS, resolution=64)
    packed = make_tiny_packed(root / "packed", n=24)
    model = root / "model"
    assert main(["export", str(ckpt), "-o", str(model), "--default", "fp32", "--calibration-samples", "8",
                 "--data", "test fixture"]) == 0
    return {"root": root, "ckpt": ckpt, "ckpt64": ckpt64, "packed": packed, "model": model}


def copy_of(source: Path, where: Path) -> Path:
    target = where / source.name
    shutil.copytree(source, target)
    return target


def snapshot(folder: Path) -> set[Path]:
    return set(folder.rglob("*")) if folder.exists() else set()


def fails(argv: list[str], capsys: pytest.CaptureFixture, names: str | Path, out: Path,
          progress_allowed: bool = False) -> str:
    """Run `kyara argv`: it must exit non-zero with one line on stderr naming `names`, no traceback, and leave
    `out` (where the command writes) as it was. Returns the line."""
    before = snapshot(out)
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:            # argparse's refusal of an option
        code = exc.code
    err = capsys.readouterr().err
    assert code not in (0, None), err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and not (progress_allowed and PROGRESS.search(line))]
    assert len(lines) == 1, err
    assert str(names) in lines[0], lines[0]
    assert snapshot(out) == before, sorted(map(str, snapshot(out) - before))
    return lines[0]


# --- weights files --------------------------------------------------------------------------------------

def broken_checkpoint(base: dict[str, Path], where: Path, how: str) -> Path:
    ckpt = copy_of(base["ckpt"], where)
    weights = ckpt / "G_ema.safetensors"
    if how == "truncated":
        data = weights.read_bytes()
        weights.write_bytes(data[:len(data) // 2])
    elif how == "empty":
        weights.write_bytes(b"")
    elif how == "D's weights":
        shutil.copyfile(ckpt / "D.safetensors", weights)
    elif how == "vocab tags 5":
        (ckpt / "vocab.json").write_text(json.dumps({"tags": 5, "priors": []}))
    elif how == "broken config.json":
        (ckpt / "config.json").write_text("{name: 'tiny'}")
    return ckpt


def command(name: str, ckpt: Path, base: dict[str, Path], out: Path) -> list:
    return {
        "sample": ["sample", ckpt, "-o", out / "grid.png"],
        "export": ["export", ckpt, "-o", out / "model"],
        "slim": ["portable", ckpt, "-o", out / "slim"],
        "eval": ["eval", ckpt, "--data", base["packed"], "--out", out / "eval"],
        "compare": ["judge", "compare", ckpt, "--data", base["packed"], "-o", out / "compare.png"],
        "blind": ["judge", "blind", ckpt, "--data", base["packed"], "-o", out / "blind"],
        "train --init": ["train", "tiny", "--data", base["packed"], "--run-dir", out / "run", "--init", ckpt,
                         "--device", "cpu"],
    }[name]


@pytest.mark.parametrize("how", ["truncated", "empty"])
@pytest.mark.parametrize("name", ["sample", "export", "slim", "eval", "compare", "blind", "train --init"])
def test_broken_weights_are_named(base, tmp_path, capsys, name, how):
    ckpt = broken_checkpoint(base, tmp_path / "in", how)
    out = tmp_path / "out"
    out.mkdir()
    line = fails(command(name, ckpt, base, out), capsys, ckpt / "G_ema.safetensors", out)
    assert ("truncated" if how == "truncated" else "empty file") in line


@pytest.mark.parametrize("name", ["sample", "export"])
@pytest.mark.parametrize("how, file, said", [
    ("D's weights", "G_ema.safetensors", "these are the discriminator's weights"),
    ("vocab tags 5", "vocab.json", "'tags' must be a list of tag names, got 5"),
    ("broken config.json", "config.json", "not valid JSON (Expecting property name"),
])
def test_a_checkpoint_that_does_not_hold_what_it_says(base, tmp_path, capsys, name, how, file, said):
    ckpt = broken_checkpoint(base, tmp_path / "in", how)
    out = tmp_path / "out"
    out.mkdir()
    assert said in fails(command(name, ckpt, base, out), capsys, ckpt / file, out)


def test_weights_of_another_vocabulary_are_named_with_the_tensor(base, tmp_path, capsys):
    ckpt = copy_of(base["ckpt"], tmp_path)
    (ckpt / "vocab.json").write_text(json.dumps({"tags": TAGS[:3], "priors": PRIORS[:3]}))
    line = fails(["sample", ckpt, "-o", tmp_path / "grid.png"], capsys, ckpt / "G_ema.safetensors", tmp_path)
    assert "tensor 'fc.weight'" in line and "another model size or vocabulary" in line


# --- packed sets and tars -------------------------------------------------------------------------------

def broken_packed(base: dict[str, Path], where: Path, how: str) -> tuple[Path, str]:
    packed = copy_of(base["packed"], where)
    if how == "broken meta.json":
        (packed / "meta.json").write_text("{vocabulary: 1}")
        return packed / "meta.json", "not valid JSON (Expecting property name enclosed in double quotes"
    if how == "truncated images.npy":
        data = (packed / "images.npy").read_bytes()
        (packed / "images.npy").write_bytes(data[:len(data) // 2])
        return packed / "images.npy", "truncated"
    if how == "object labels.npy":
        np.save(packed / "labels.npy", np.array([[1, "x"]] * 24, dtype=object), allow_pickle=True)
        return packed / "labels.npy", "an array of Python objects"
    if how == "labels of another length":
        np.save(packed / "labels.npy", np.zeros((23, 4), np.int8))
        return packed / "labels.npy", "expected int8 labels, 24 x 4"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["broken meta.json", "truncated images.npy", "object labels.npy",
                                 "labels of another length"])
@pytest.mark.parametrize("name", ["compare", "train", "eval"])
def test_broken_packed_sets_are_named(base, tmp_path, capsys, how, name):
    packed, said = broken_packed(base, tmp_path / "in", how)
    out = tmp_path / "out"
    out.mkdir()
    argv = {"compare": ["judge", "compare", base["ckpt"], "--data", packed.parent, "-o", out / "compare.png"],
            "train": ["train", "tiny", "--data", packed.parent, "--run-dir", out / "run", "--device", "cpu"],
            "eval": ["eval", base["ckpt"], "--data", packed.parent, "--out", out / "eval"]}[name]
    assert said in fails(argv, capsys, packed, out)


def mlds_tar(path: Path, n: int = 6) -> Path:
    """An MLDS-style tar: the tag CSV first, then `<id>.png` faces."""
    with tarfile.open(path, "w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("tags.csv", "".join(f"{i},red hair blue eyes\n" for i in range(n)).encode())
        rng = np.random.default_rng(0)
        for i in range(n):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, format="PNG")
            add(f"faces/{i}.png", buffer.getvalue())
    return path


def test_pack_refuses_a_tar_that_ends_early(tmp_path, capsys):
    whole = mlds_tar(tmp_path / "whole.tar")
    with tarfile.open(whole) as tar:
        members = tar.getmembers()
    data = whole.read_bytes()
    out = tmp_path / "out"
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:members[3].offset_data + 100])              # inside a member's data
    assert "ends early or is damaged" in fails(["data", "pack", cut, "-o", out / "packed", "--workers", "1"], capsys, cut,
                                               tmp_path)
    cut.write_bytes(data[:members[3].offset])                          # exactly between two members
    assert "no end-of-archive marker" in fails(["data", "pack", cut, "-o", out / "packed", "--workers", "1"], capsys, cut,
                                               tmp_path)


def test_pack_refuses_a_tag_file_for_a_tar(tmp_path, capsys):
    tar = mlds_tar(tmp_path / "faces.tar")
    line = fails(["data", "pack", tar, "--tags", "nonexistent tag", "-o", tmp_path / "out"], capsys, tar, tmp_path)
    assert "--tags nonexistent tag: a tag file is for a folder of crops" in line


# --- models and data of different sizes -----------------------------------------------------------------

def test_eval_refuses_a_model_of_another_resolution(base, tmp_path, capsys):
    line = fails(["eval", base["ckpt64"], "--data", base["packed"], "--out", tmp_path / "eval"], capsys,
                 base["packed"], tmp_path)
    assert "makes 64 px faces" in line and "holds 32 px faces" in line


def test_blind_refuses_a_model_and_data_of_different_sizes(base, tmp_path, capsys):
    line = fails(["judge", "blind", base["ckpt64"], "--data", base["packed"], "-n", "4", "-o", tmp_path / "blind"], capsys,
                 base["packed"], tmp_path)
    assert "makes 64 px faces" in line
    line = fails(["judge", "blind", base["ckpt64"], base["ckpt"], "-n", "4", "-o", tmp_path / "blind"], capsys,
                 base["ckpt"], tmp_path)
    assert "blind sheets compare faces of one size" in line


# --- exported models: the file used must be the one the manifest lists ------------------------------------

def edited_model(base: dict[str, Path], where: Path, edit: str) -> Path:
    """A copy of the model folder whose default file still loads but is not the file its manifest hashed:
    its embedded version changed in place (same size), or a doc string added (another size)."""
    import onnx
    model = copy_of(base["model"], where)
    file = model / json.loads((model / "manifest.json").read_text())["file"]
    if edit == "same size":
        data = file.read_bytes()
        assert data.count(b'"version": "step10"') == 1
        file.write_bytes(data.replace(b'"version": "step10"', b'"version": "step99"'))
    else:
        proto = onnx.load(str(file))
        proto.doc_string = "edited after export"
        onnx.save(proto, str(file))
    return file


@pytest.mark.parametrize("edit, said", [("same size", "its sha256 is"), ("another size", "bytes, ")])
@pytest.mark.parametrize("name", ["generate", "compare", "eval"])
def test_a_model_file_that_is_not_the_manifests_is_refused(base, tmp_path, capsys, name, edit, said):
    file = edited_model(base, tmp_path / "in", edit)
    out = tmp_path / "out"
    out.mkdir()
    argv = {"generate": ["sample", file.parent, "-n", "2", "-o", out / "faces"],
            "compare": ["judge", "compare", file, "--data", base["packed"], "-o", out / "compare.png"],
            "eval": ["eval", file.parent, "--data", base["packed"], "--out", out / "eval"]}[name]
    line = fails(argv, capsys, file, out)
    assert said in line and f"{file.parent / 'manifest.json'} says" in line


# --- tags -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tags, said", [
    ("red hair, blue hair", "are both in the exclusive group"),
    (",,,", "an empty tag"),
    ("red hair,", "an empty tag"),
    ("red hair, red hair", "'red hair' is named twice"),
    ("red hair, purple hair", "unknown tag 'purple hair'"),
])
@pytest.mark.parametrize("name", ["generate", "sample", "compare"])
def test_bad_tags_are_refused_everywhere_and_leave_no_output(base, tmp_path, capsys, tags, said, name):
    argv = {"generate": ["sample", base["model"], "-o", tmp_path / "faces"],
            "sample": ["sample", base["ckpt"], "-o", tmp_path / "grid.png"],
            "compare": ["judge", "compare", base["model"], "--data", base["packed"], "-o", tmp_path / "compare.png"]}[name]
    assert said in fails([*argv, "--tags", tags], capsys, tags.split(",")[0], tmp_path)


def test_no_tags_is_the_default_and_allowed(base, tmp_path, capsys):
    assert main(["sample", str(base["ckpt"]), "--tags", "", "-n", "2", "-o", str(tmp_path / "grid.png")]) == 0
    assert main(["sample", str(base["model"]), "--tags", "", "-n", "2", "-o", str(tmp_path / "faces")]) == 0
    assert sorted(p.name for p in (tmp_path / "faces").iterdir()) == ["seed0_000.png", "seed0_001.png"]


# --- big requests ---------------------------------------------------------------------------------------

def test_generate_refuses_an_absurd_count_up_front(base, tmp_path, capsys):
    line = fails(["sample", base["model"], "-n", "10000000", "-o", tmp_path / "faces"], capsys, "-n", tmp_path)
    assert "must be at most 100,000" in line


def test_generate_writes_as_it_goes(base, tmp_path, monkeypatch):
    """Faces are made a batch at a time and each written as it comes, not all held first."""
    from export.runtime import BATCH, Generator
    seen = []
    run = Generator.run
    monkeypatch.setattr(Generator, "run", lambda self, noise, labels: seen.append(len(noise)) or run(self, noise, labels))
    saved = []
    save = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", lambda self, fp, *a, **k: saved.append(len(seen)) or save(self, fp, *a, **k))
    n = 2 * BATCH + 3
    assert main(["sample", str(base["model"]), "-n", str(n), "-o", str(tmp_path / "faces")]) == 0
    assert seen == [BATCH, BATCH, 3]
    assert saved[0] == 1 and saved[-1] == 3      # the first face is written before the second batch is made
    assert len(list((tmp_path / "faces").iterdir())) == n


# --- a full disk ----------------------------------------------------------------------------------------

def disk_full(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_in_generate_leaves_nothing(base, tmp_path, capsys, monkeypatch):
    save = Image.Image.save
    calls = []

    def save_then_fill(self, fp, *args, **kwargs):      # the first face is written, the disk fills on the second
        calls.append(fp)
        if len(calls) > 1:
            disk_full()
        return save(self, fp, *args, **kwargs)
    monkeypatch.setattr(Image.Image, "save", save_then_fill)
    out = tmp_path / "new" / "faces"
    line = fails(["sample", base["model"], "-n", "3", "-o", out], capsys, out, tmp_path, progress_allowed=True)
    assert line.endswith("No space left on device") and not (tmp_path / "new").exists()
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "keep.txt").write_text("kept")
    calls.clear()
    fails(["sample", base["model"], "-n", "3", "-o", existing], capsys, existing, tmp_path, progress_allowed=True)
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]


def test_full_disk_in_export_leaves_nothing(base, tmp_path, capsys, monkeypatch):
    import onnx
    monkeypatch.setattr(onnx, "save", disk_full)
    out = tmp_path / "model"
    assert "No space left on device" in fails(["export", base["ckpt"], "-o", out], capsys, out, tmp_path)


def test_full_disk_in_pack_leaves_nothing(tmp_path, capsys, monkeypatch):
    tar = mlds_tar(tmp_path / "faces.tar")
    monkeypatch.setattr(np, "save", disk_full)
    out = tmp_path / "sets" / "packed"
    line = fails(["data", "pack", tar, "-o", out, "--workers", "1"], capsys, out, tmp_path, progress_allowed=True)
    assert line == f"kyara data pack: {out}: No space left on device" and not (tmp_path / "sets").exists()


def test_full_disk_in_slim_leaves_nothing(base, tmp_path, capsys, monkeypatch):
    import training.checkpoint
    monkeypatch.setattr(training.checkpoint, "save_file", disk_full)
    out = tmp_path / "slim"
    fails(["portable", base["ckpt"], "-o", out], capsys, out, tmp_path)


def test_full_disk_in_train_says_how_to_go_on(base, tmp_path, capsys, monkeypatch):
    import training.checkpoint
    monkeypatch.setattr(training.checkpoint, "save_file", disk_full)
    run = tmp_path / "run"
    code = main(["train", "tiny", "--data", str(base["packed"]), "--run-dir", str(run), "--steps", "10",
                 "--device", "cpu"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not PROGRESS.search(line)]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"kyara train: {run / 'checkpoints' / 'step_0000010'}: No space left on device; ")
    assert "--resume" in lines[0]
    assert not list((run / "checkpoints").iterdir())         # no half checkpoint


def test_full_disk_in_crop_says_how_to_go_on(tmp_path, capsys, monkeypatch):
    import os
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    Image.new("RGB", (80, 80), "white").save(pictures / "blank.png")
    monkeypatch.setattr(os, "fsync", disk_full)
    out = tmp_path / "crops"
    code = main(["data", "crop", str(pictures), str(out), "--workers", "1"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not PROGRESS.search(line)]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"kyara data crop: {out / 'done.jsonl'}: No space left on device; ")
    assert "run the same command again" in lines[0]
