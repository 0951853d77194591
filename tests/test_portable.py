"""`kyara portable`: a checkpoint's G_ema and D in half precision, from which `--init` goes on elsewhere."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from kyara.cli import main
from training.checkpoint import list_checkpoints, step_of, steps_before, total_steps
from training.config import load_config
from export.adapters import draw, open_source
from training.trainer import Trainer, train


def sample(checkpoint: Path, tags: str, n: int, seed: int) -> np.ndarray:
    """The faces `kyara sample` draws from a checkpoint."""
    source = open_source(checkpoint)
    return source.generate(*draw(source, n, seed, source.vocab.parse(tags)))


def test_a_portable_checkpoint_is_small_samples_alike_and_starts_a_run(tiny_packed: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    train(load_config("tiny"), tiny_packed, run, device="cpu", steps=10)
    full = list_checkpoints(run)[-1]
    slim = tmp_path / "slim"
    capsys.readouterr()
    assert main(["portable", str(run), "-o", str(slim)]) == 0
    assert capsys.readouterr().out.strip() == str(slim)
    assert sorted(p.name for p in slim.iterdir()) == ["D.safetensors", "G_ema.safetensors", "config.json",
                                                      "vocab.json"]
    size = sum(p.stat().st_size for p in slim.iterdir())
    assert size < 0.25 * sum(p.stat().st_size for p in full.iterdir())
    # the same faces, to half precision's rounding
    a, b = sample(full, "red hair", 4, seed=1), sample(slim, "red hair", 4, seed=1)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 1.0

    # it exports like the checkpoint it came from (the step is in its weights: the folder may have any name)
    assert main(["export", str(slim), "-o", str(tmp_path / "exported")]) == 0
    assert json.loads((tmp_path / "exported" / "manifest.json").read_text())["version"] == "step10"

    started = Trainer(load_config("tiny"), tiny_packed, tmp_path / "elsewhere", device="cpu", init=slim)
    started.close()
    weights = {name: load_file(str(slim / f"{name}.safetensors")) for name in ("G_ema", "D")}
    for module, name in ((started.G, "G_ema"), (started.G_ema, "G_ema"), (started.D, "D")):
        state = module.state_dict()
        assert all(torch.equal(state[k], v.to(state[k].dtype)) for k, v in weights[name].items())


def test_slim_refuses_to_replace_a_folder_of_something_else(tiny_packed: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    train(load_config("tiny"), tiny_packed, run, device="cpu", steps=10)
    other = tmp_path / "models"
    other.mkdir()
    (other / "manifest.json").write_text("{}")
    capsys.readouterr()
    assert main(["portable", str(run), "-o", str(other)]) != 0
    err = capsys.readouterr().err
    assert err.startswith("kyara portable: ") and "is not a checkpoint" in err and err.count("\n") == 1
    assert (other / "manifest.json").read_text() == "{}"


def test_a_run_from_init_counts_the_steps_behind_its_weights(tiny_packed: Path, tmp_path: Path) -> None:
    # A run started with --init counts its own steps from 0; the checkpoints, a slim copy and the exported
    # manifest still say how many steps the weights have had in all.
    train(load_config("tiny"), tiny_packed, tmp_path / "first", device="cpu", steps=10)
    slim = tmp_path / "slim"
    assert main(["portable", str(tmp_path / "first"), "-o", str(slim)]) == 0
    assert (step_of(slim), steps_before(slim), total_steps(slim)) == (10, 0, 10)

    on = tmp_path / "on"
    train(load_config("tiny"), tiny_packed, on, device="cpu", steps=4, init=slim)
    newest = list_checkpoints(on)[-1]
    assert (step_of(newest), total_steps(newest)) == (4, 14)
    train(load_config("tiny"), tiny_packed, on, device="cpu", steps=6, resume=True)   # a resume keeps the count
    newest = list_checkpoints(on)[-1]
    assert (step_of(newest), total_steps(newest)) == (6, 16)

    again = tmp_path / "slim-again"                     # and a second leg from its slim copy adds up
    assert main(["portable", str(on), "-o", str(again)]) == 0
    assert total_steps(again) == 16
    assert main(["export", str(again), "-o", str(tmp_path / "exported")]) == 0
    manifest = json.loads((tmp_path / "exported" / "manifest.json").read_text())
    assert manifest["training"]["steps"] == 16 and manifest["version"] == "step16"
