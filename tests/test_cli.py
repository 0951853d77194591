"""The `kyara` command line itself: help that shows defaults, and bad option values refused in one line that
names the option, before any work starts."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kyara.cli import build_parser, main
from dataset.tagfile import write_tag_file
from training.models import ModelConfig
from dataset.pack import RESOLUTIONS, pack


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """Exit code and stderr of `kyara ARGV`, whether argparse exits or the command returns."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every (nested) subcommand's parser by its prog, e.g. 'kyara tagger train'."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found[sub.prog] = sub
                found.update(subparsers(sub))
    return found


def test_every_subcommand_help_shows_its_defaults():
    commands = subparsers(build_parser())
    assert {"kyara data crop", "kyara data pack", "kyara sample", "kyara sample", "kyara tagger train"} <= set(commands)
    for prog, parser in commands.items():
        text = " ".join(parser.format_help().split())          # unwrapped, so a default is on one "line"
        for action in parser._actions:
            default = action.default
            if not action.option_strings or default is None or isinstance(default, bool) or default in (
                    "", [], argparse.SUPPRESS):
                continue
            assert f"default: {default}" in text or "(default:" in (action.help or ""), (
                f"`{prog} --help` does not show the default of {action.option_strings[-1]} ({default!r})")
    pack_help = " ".join(commands["kyara data pack"].format_help().split())
    assert "held out for validation (default: 0.1)" in pack_help
    assert "--workers WORKERS (default: 2)" in pack_help         # an option without help text
    assert "--seed SEED (default: 0)" in " ".join(commands["kyara sample"].format_help().split())   # 0 too


@pytest.mark.parametrize("argv, option", [
    (["sample", "run", "--seed", "-1"], "--seed"),
    (["sample", "run", "-n", "0"], "-n"),
    (["sample", "model", "--seed", "-3"], "--seed"),
    (["sample", "model", "-n", "two"], "-n"),
    (["data", "pack", "crops", "-o", "packed", "--val-fraction", "1.5"], "--val-fraction"),
    (["data", "pack", "crops", "-o", "packed", "--val-fraction", "-0.1"], "--val-fraction"),
    (["data", "pack", "crops", "-o", "packed", "--workers", "0"], "--workers"),
    (["data", "crop", "in", "out", "--workers", "-2"], "--workers"),
])
def test_bad_option_values_name_the_option_in_one_line(tmp_path, monkeypatch, capsys, argv, option):
    monkeypatch.chdir(tmp_path)                      # the paths do not exist: the option must be refused first
    code, err = run(argv, capsys)
    assert code == 2
    command = " ".join(argv[:2] if argv[0] in ("data", "judge") else argv[:1])
    assert err.startswith(f"kyara {command}: argument {option}") and err.count("\n") == 1, err


def tagged_crops(folder: Path, tags: dict[str, list[str]], missing: tuple[str, ...] = ()) -> Path:
    """A crop folder with tags.csv; the names in `missing` are tagged but have no file."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in tags:
        if name not in missing:
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / name)
    write_tag_file(folder / "tags.csv", list(tags.items()))
    return folder


def test_pack_refuses_a_resolution_no_generator_trains_at(tmp_path, capsys):
    crops = tagged_crops(tmp_path / "crops", {"a.png": ["blue hair"], "b.png": ["red hair"]})
    code, err = run(["data", "pack", str(crops), "-o", str(tmp_path / "packed"), "--resolution", "100",
                     "--workers", "1"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("kyara data pack: --resolution must be one of 32, 64, 128, 256") and "got 100" in err
    assert not (tmp_path / "packed").exists()
    assert run(["data", "pack", str(crops), "-o", str(tmp_path / "packed"), "--resolution", "32",
                "--workers", "1"], capsys)[0] == 0                # the tiny preset's size is accepted
    for resolution in RESOLUTIONS:                               # each one builds a generator
        ModelConfig(resolution=resolution)


def test_pack_checks_the_validation_fraction_before_decoding(tmp_path):
    # Every image is missing: a check that came after decoding would report that instead.
    crops = tagged_crops(tmp_path / "crops", {"a.png": ["blue hair"]}, missing=("a.png",))
    for fraction in (1.0, 1.5, -0.5):
        with pytest.raises(ValueError, match=rf"--val-fraction must be at least 0 and below 1, got {fraction}"):
            pack(crops, tmp_path / "packed", val_fraction=fraction, workers=1)
    assert not (tmp_path / "packed").exists()


def test_os_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code, err = run(["data", "crop", str(tmp_path), str(tmp_path / "file" / "out"), "--workers", "1"], capsys)
    assert code == 2 and err == f"kyara data crop: {tmp_path / 'file' / 'out'}: Not a directory\n"
