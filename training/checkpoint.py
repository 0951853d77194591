"""Checkpoints: one directory per saved step, written under a temporary name and renamed when complete.

    step_0001000/
        G.safetensors  G_ema.safetensors  D.safetensors   weights; their metadata keeps steps_before (`--init`)
        state.pt                                          optimizers, step, RNG states of every rank
        config.json  vocab.json                           resolved config; vocabulary with tag priors

An error while saving removes the `.step_*.tmp` folder; a process killed while saving leaves one, which is never
read and is cleared on the next save.

A slim checkpoint (`slim_checkpoint`, `kyara slim`) keeps only G_ema and D, in half precision, with config.json
and vocab.json: a third of the size, small enough to commit, so that a run can go on (`kyara train --init`) on
another machine, where the run directory is not.
"""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from common.files import atomic_dir
from common.vocab import Vocabulary
from training.config import TrainConfig
from training.models import Generator

PREFIX = "step_"


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = checkpoint_dir(Path(run_dir))
    return sorted(p for p in root.glob(f"{PREFIX}*") if p.is_dir() and (p / "state.pt").is_file())


def _recorded(path: Path, key: str) -> str:
    """A value a checkpoint's weights file keeps in its metadata ("" if there is none): `kyara slim` writes the
    step there, and every save the steps before the run (`steps_before`)."""
    weights = Path(path) / "G_ema.safetensors"
    if not weights.is_file():
        return ""
    with safe_open(str(weights), "pt") as f:
        return (f.metadata() or {}).get(key, "")


def step_of(path: Path) -> int:
    """A checkpoint's step: from its folder name (step_0001000), or, for a slim checkpoint (any name), from the
    step its weights file records."""
    path = Path(path)
    digits = path.name[len(PREFIX):]
    if path.name.startswith(PREFIX) and digits.isdigit():
        return int(digits)
    step = _recorded(path, "step")
    if step.isdigit():
        return int(step)
    raise ValueError(f"{path}: not a checkpoint folder named {PREFIX}N, and no step recorded in it")


def steps_before(path: Path) -> int:
    """How many steps the weights had been trained for before the run that saved them. A run started with
    `kyara train --init` counts its own steps from 0, so the rest of the count travels here, in the weights'
    metadata (0 for a run from scratch, and for checkpoints saved before it was recorded)."""
    value = _recorded(path, "steps_before")
    return int(value) if value.isdigit() else 0


def total_steps(path: Path) -> int:
    """Every step behind a checkpoint's weights, the runs it went on from with `--init` included."""
    return step_of(path) + steps_before(path)


def _contiguous(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}


def save_checkpoint(run_dir: str | Path, step: int, modules: dict[str, torch.nn.Module], state: dict,
                    cfg: TrainConfig, vocab: Vocabulary, priors: list[float], keep_last: int,
                    keep: set[str] = frozenset(), steps_before: int = 0) -> Path:
    """Write a checkpoint atomically, then delete all but the newest `keep_last` (and those in `keep`).
    `steps_before`: the steps its weights had before this run (`--init`), kept in the weights' metadata."""
    root = checkpoint_dir(Path(run_dir))
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:07d}"
    for leftover in root.glob(f".{PREFIX}*.tmp"):     # from a save that a crash cut short
        shutil.rmtree(leftover, ignore_errors=True)
    with atomic_dir(final) as tmp:
        for name, module in modules.items():
            save_file(_contiguous(module), str(tmp / f"{name}.safetensors"),
                      metadata={"steps_before": str(steps_before)})
        (tmp / "config.json").write_text(json.dumps(cfg.to_json(), indent=2))
        (tmp / "vocab.json").write_text(json.dumps({**vocab.to_json(), "priors": list(map(float, priors))},
                                                   indent=2))
        torch.save({**state, "step": step}, tmp / "state.pt")
    for old in list_checkpoints(run_dir)[:-keep_last] if keep_last > 0 else []:
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
    return final


def slim_checkpoint(path: str | Path, out: str | Path) -> Path:
    """Write `path`'s checkpoint (or a run directory's best / newest) as a slim one into the folder `out`."""
    ckpt = resolve_checkpoint(path)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "G_ema.safetensors").is_file():
        # atomic_dir replaces the folder: never a folder of something else
        raise ValueError(f"{out}: exists and is not a checkpoint; give a new folder (or a slim checkpoint to replace)")
    # `step_of` and `steps_before` read these back: a slim folder may have any name
    metadata = {"from": str(ckpt), "step": str(step_of(ckpt)), "steps_before": str(steps_before(ckpt))}
    with atomic_dir(out) as tmp:
        for name in ("G_ema", "D"):
            state = load_file(str(ckpt / f"{name}.safetensors"))
            save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()},
                      str(tmp / f"{name}.safetensors"), metadata=metadata)
        for name in ("config.json", "vocab.json"):
            shutil.copyfile(ckpt / name, tmp / name)
    return out


def load_state(path: Path) -> dict:
    """A checkpoint's state.pt (optimizers, step, RNG states), unpickled safely: tensors and plain Python
    values only, so that a checkpoint from a stranger cannot run code when it is loaded."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: refusing to load, it holds more than tensors and plain values ({first})") from None


def _best_name(best_file: Path) -> str:
    """The checkpoint folder name that a run's best.json marks.

    Only a plain folder name is taken: the file is JSON anyone can edit or ship, and an absolute path or
    `..` in it would load weights from anywhere on the disk.
    """
    try:
        name = json.loads(best_file.read_text())["checkpoint"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{best_file}: not a best-checkpoint file ({type(exc).__name__}: {exc})") from None
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"{best_file}: 'checkpoint' must be the name of a folder in checkpoints/, got {name!r}")
    return name


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory, or a run directory (its best checkpoint if one is marked, else the newest)."""
    path = Path(path)
    if (path / "G_ema.safetensors").is_file():
        return path
    if (path / "best.json").is_file():
        best = checkpoint_dir(path) / _best_name(path / "best.json")
        if best.is_dir():
            return best
    found = list_checkpoints(path)
    if not found:
        # Also said for the commands that take exported models (`kyara eval`): they come here for
        # anything that is not one.
        raise FileNotFoundError(
            f"{path}: no checkpoint here; expected a checkpoint folder (step_*, with G_ema.safetensors) or a run "
            "directory (with checkpoints/step_*); `kyara eval` also takes an exported model folder with "
            "manifest.json or an .onnx file")
    return found[-1]


def load_generator(path: str | Path, ema: bool = True, device: str = "cpu"
                   ) -> tuple[Generator, Vocabulary, list[float], TrainConfig]:
    """The (EMA) generator of a checkpoint in eval mode, with its vocabulary, tag priors and config."""
    ckpt = resolve_checkpoint(path)
    cfg = TrainConfig.from_json(json.loads((ckpt / "config.json").read_text()))
    vocab_json = json.loads((ckpt / "vocab.json").read_text())
    vocab = Vocabulary.from_json(vocab_json)
    generator = Generator(cfg.model, len(vocab))
    generator.load_state_dict(load_file(str(ckpt / ("G_ema" if ema else "G")) + ".safetensors"))
    return generator.to(device).eval(), vocab, vocab_json["priors"], cfg
