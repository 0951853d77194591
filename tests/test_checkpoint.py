"""`resolve_checkpoint`: which checkpoint a path means, and one-line errors for what it cannot mean.

The folders here are laid out by hand (a checkpoint is whatever has the files resolve_checkpoint looks
for), so no training is needed.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.checkpoint import resolve_checkpoint


def fake_checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "G_ema.safetensors").write_bytes(b"")
    (folder / "state.pt").write_bytes(b"")
    return folder


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    for step in (1, 2):
        fake_checkpoint(run / "checkpoints" / f"step_{step:07d}")
    return run


def test_best_json_names_the_checkpoint_else_the_newest(run_dir: Path) -> None:
    assert resolve_checkpoint(run_dir).name == "step_0000002"
    (run_dir / "best.json").write_text(json.dumps({"checkpoint": "step_0000001"}))
    assert resolve_checkpoint(run_dir).name == "step_0000001"
    (run_dir / "best.json").write_text(json.dumps({"checkpoint": "step_0000009"}))   # since deleted
    assert resolve_checkpoint(run_dir).name == "step_0000002"


@pytest.mark.parametrize("name", ["../../elsewhere", "ABSOLUTE", "step_0000001/../../../elsewhere", "..", ""])
def test_best_json_may_only_name_a_checkpoint_folder(run_dir: Path, tmp_path: Path, name: str) -> None:
    elsewhere = fake_checkpoint(tmp_path / "elsewhere")         # what a path out of the run would open
    name = str(elsewhere) if name == "ABSOLUTE" else name
    (run_dir / "best.json").write_text(json.dumps({"checkpoint": name}))
    with pytest.raises(ValueError) as info:
        resolve_checkpoint(run_dir)
    message = str(info.value)
    assert message.startswith(f"{run_dir / 'best.json'}: ") and repr(name) in message and "\n" not in message


@pytest.mark.parametrize("text", ["not json", json.dumps({"step": 1}), json.dumps(["step_0000001"]),
                                  json.dumps({"checkpoint": 7})])
def test_a_broken_best_json_is_named_in_one_line(run_dir: Path, text: str) -> None:
    (run_dir / "best.json").write_text(text)
    with pytest.raises(ValueError) as info:
        resolve_checkpoint(run_dir)
    assert str(info.value).startswith(f"{run_dir / 'best.json'}: ") and "\n" not in str(info.value)


def test_no_checkpoint_says_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        resolve_checkpoint(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path}: no checkpoint here") and "\n" not in message
    for accepted in ("checkpoint folder", "run directory", "manifest.json", ".onnx file"):
        assert accepted in message
