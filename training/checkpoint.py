"""Checkpoints: one directory per saved step, written under a temporary name and renamed when complete.

    step_0001000/
        G.safetensors  G_ema.safetensors  D.safetensors   weights; their metadata keeps steps_before (`--init`)
        state.pt                                          optimizers, step, RNG states of every rank
        config.json  vocab.json                           resolved config; vocabulary with tag priors

An error while saving removes the `.step_*.tmp` folder; a process killed while saving leaves one, which is never
read and is cleared on the next save.

A portable checkpoint (`portable_checkpoint`, `kyara portable`) keeps only G_ema and D, in half precision, with
config.json and vocab.json: a third of the size, small enough to commit, so that a run can go on (`kyara train --init`) on
another machine, where the run directory is not.

Everything a checkpoint holds is read here, and checked before it is used: config.json and vocab.json (valid
JSON of the right types), and each weights file against the networks config.json and vocab.json describe (its
size and header, then its tensors' names and shapes), without loading a tensor (`check_checkpoint`). A
problem is one ValueError line naming the file and what is wrong with it, never safetensors' or torch's
error.
"""
from __future__ import annotations

import json
import math
import pickle
import shutil
import struct
from pathlib import Path
from typing import Mapping, Sequence

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from common.files import atomic_dir, read_json
from common.vocab import Vocabulary
from training.config import TrainConfig
from training.networks import create_discriminator, create_generator

PREFIX = "step_"


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = checkpoint_dir(Path(run_dir))
    return sorted(p for p in root.glob(f"{PREFIX}*") if p.is_dir() and (p / "state.pt").is_file())


def _recorded(path: Path, key: str) -> str:
    """A value a checkpoint's weights file keeps in its metadata ("" if there is none): `kyara portable` writes the
    step there, and every save the steps before the run (`steps_before`)."""
    weights = Path(path) / "G_ema.safetensors"
    if not weights.is_file():
        return ""
    value = weights_header(weights).get("__metadata__", {}).get(key, "")
    return value if isinstance(value, str) else ""


# --- reading and checking what a checkpoint holds ----------------------------------------------------------

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}
_MAX_HEADER = 100 << 20     # safetensors' own limit on the header's size


def weights_header(path: str | Path) -> dict:
    """The header of a safetensors file (tensor name -> dtype, shape, offsets; `__metadata__`), checked against
    the file: a one-line ValueError naming it when it is empty, cut short, or not safetensors at all."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{path}: an empty file (0 bytes), not safetensors weights; copy it again or use "
                         "another checkpoint")
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: {size} bytes, too short for a safetensors file")
        (length,) = struct.unpack("<Q", head)
        if length > _MAX_HEADER:
            raise ValueError(f"{path}: not a safetensors file (its first 8 bytes announce a {length}-byte header)")
        if 8 + length > size:
            raise ValueError(f"{path}: truncated: its header needs {8 + length} bytes, the file has {size}; copy it "
                             "again or use another checkpoint")
        raw = f.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path}: not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: not a safetensors file (its header is not a JSON object)")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: not a safetensors file ('__metadata__' is not an object)")
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        ok = (isinstance(entry, dict) and entry.get("dtype") in _DTYPE_BYTES and isinstance(entry.get("shape"), list)
              and all(isinstance(d, int) and d >= 0 for d in entry["shape"])
              and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
              and all(isinstance(o, int) and o >= 0 for o in entry["data_offsets"]))
        if not ok:
            raise ValueError(f"{path}: not a safetensors file (tensor {name!r} has no valid dtype, shape and offsets)")
        begin, stop = entry["data_offsets"]
        if stop - begin != math.prod(entry["shape"]) * _DTYPE_BYTES[entry["dtype"]]:
            raise ValueError(f"{path}: damaged: tensor {name!r} takes {stop - begin} bytes, its shape and dtype "
                             "need another number")
        end = max(end, stop)
    held = size - 8 - length
    if held < end:
        raise ValueError(f"{path}: truncated: its tensors need {end} bytes, the file holds {held}; copy it again or "
                         "use another checkpoint")
    if held > end:
        raise ValueError(f"{path}: damaged: {held - end} bytes after its last tensor")
    return header


def _dims(shape: Sequence[int]) -> str:
    return " x ".join(map(str, shape)) or "a scalar"


def check_weights(path: str | Path, expected: Mapping[str, Sequence[int]], what: str,
                  others: Mapping[str, Mapping[str, Sequence[int]]] = {}) -> dict:
    """Check a safetensors file (`weights_header`) against the tensor names and shapes a network has
    (`expected`, e.g. a state_dict's shapes); `what` names that network in the message, and `others` (name ->
    shapes) are networks whose weights the file may hold by mistake (D's in G_ema's file). Returns the header."""
    path = Path(path)
    header = weights_header(path)
    shapes = {name: entry["shape"] for name, entry in header.items() if name != "__metadata__"}
    if set(shapes) != set(expected):
        mistaken = next((name for name, theirs in others.items() if set(theirs) == set(shapes)), None)
        extra, missing = sorted(set(shapes) - set(expected)), sorted(set(expected) - set(shapes))
        parts = ([f"{len(extra)} of its tensors are not in that network (e.g. {extra[0]!r})"] if extra else []) + \
                ([f"{len(missing)} of the network's are not in it (e.g. {missing[0]!r})"] if missing else [])
        raise ValueError(f"{path}: not the weights of {what}: " + ", and ".join(parts)
                         + (f"; these are the {mistaken}'s weights" if mistaken else ""))
    for name, shape in expected.items():
        if list(shapes[name]) != list(shape):
            raise ValueError(f"{path}: tensor {name!r} is {_dims(shapes[name])}, but {what} has {_dims(shape)}; "
                             "these weights belong to another model size or vocabulary")
    return header


def load_weights(path: str | Path, expected: Mapping[str, Sequence[int]], what: str, device: str = "cpu",
                 others: Mapping[str, Mapping[str, Sequence[int]]] = {}) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, checked first (`check_weights`): the one loader of a checkpoint's weights."""
    check_weights(path, expected, what, others)
    try:
        return load_file(str(path), device=device)
    except Exception as exc:        # safetensors' own error type: whatever it found, the file is the problem
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not readable safetensors weights ({reason})") from None


def read_config(ckpt: str | Path) -> TrainConfig:
    """A checkpoint's config.json, or a one-line ValueError naming it."""
    path = Path(ckpt) / "config.json"
    data = read_json(path)
    try:
        return TrainConfig.from_json(data)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{path}: not a training config ({exc})") from None


def read_vocab(ckpt: str | Path) -> tuple[Vocabulary, list[float]]:
    """A checkpoint's vocab.json: its vocabulary and one prior (0 to 1) per tag, or a one-line ValueError."""
    path = Path(ckpt) / "vocab.json"
    data = read_json(path)
    try:
        vocab = Vocabulary.from_json(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    priors = data.get("priors")
    if (not isinstance(priors, list) or len(priors) != len(vocab)
            or not all(isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 1 for p in priors)):
        raise ValueError(f"{path}: 'priors' must be {len(vocab)} numbers from 0 to 1, one per tag, got "
                         f"{json.dumps(priors)[:60]}")
    return vocab, [float(p) for p in priors]


def network_shapes(cfg: TrainConfig, n_tags: int, config_path: Path) -> dict[str, dict[str, list[int]]]:
    """The tensor shapes of the generator and the discriminator a config builds for `n_tags` tags, built on
    torch's meta device (no memory, no time); a config that builds no network is a ValueError naming it."""
    try:
        with torch.device("meta"):
            nets = {"generator": create_generator(cfg.model, n_tags),
                    "discriminator": create_discriminator(cfg.model, n_tags)}
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{config_path}: its model cannot be built ({exc})") from None
    return {name: {k: list(v.shape) for k, v in net.state_dict().items()} for name, net in nets.items()}


_NETWORK = {"G": "generator", "G_ema": "generator", "D": "discriminator"}


def check_checkpoint(path: str | Path, weights: Sequence[str] = ("G_ema", "D")
                     ) -> tuple[Path, TrainConfig, Vocabulary, list[float]]:
    """Resolve a checkpoint (`resolve_checkpoint`) and check it whole before any long work: config.json,
    vocab.json, the `weights` files (a missing one named) and G.safetensors where there is one, each against
    the networks those describe. Returns the checkpoint folder, config, vocabulary and priors."""
    ckpt = resolve_checkpoint(path)
    cfg, (vocab, priors) = read_config(ckpt), read_vocab(ckpt)
    shapes = network_shapes(cfg, len(vocab), ckpt / "config.json")
    names = list(dict.fromkeys([*weights, *(["G"] if (ckpt / "G.safetensors").is_file() else [])]))
    for name in names:
        file = ckpt / f"{name}.safetensors"
        if not file.is_file():
            raise FileNotFoundError(f"{file}: missing from the checkpoint")
        network = _NETWORK[name]
        check_weights(file, shapes[network], _what(network, ckpt),
                      {k: v for k, v in shapes.items() if k != network})
    return ckpt, cfg, vocab, priors


def _what(network: str, ckpt: Path) -> str:
    return f"the {network} that {ckpt / 'config.json'} and vocab.json describe"


def step_of(path: Path) -> int:
    """A checkpoint's step: from its folder name (step_0001000), or, for a portable checkpoint (any name), from the
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


def portable_checkpoint(path: str | Path, out: str | Path) -> Path:
    """Write `path`'s checkpoint (or a run directory's best / newest) as a portable one into the folder `out`."""
    ckpt, cfg, vocab, _ = check_checkpoint(path)       # every file checked before anything is written
    shapes = network_shapes(cfg, len(vocab), ckpt / "config.json")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "G_ema.safetensors").is_file():
        # atomic_dir replaces the folder: never a folder of something else
        raise ValueError(f"{out}: exists and is not a checkpoint; give a new folder (or a portable checkpoint to "
                         "replace)")
    # `step_of` and `steps_before` read these back: a portable checkpoint folder may have any name
    metadata = {"from": str(ckpt), "step": str(step_of(ckpt)), "steps_before": str(steps_before(ckpt))}
    with atomic_dir(out) as tmp:
        for name in ("G_ema", "D"):
            state = load_weights(ckpt / f"{name}.safetensors", shapes[_NETWORK[name]], _what(_NETWORK[name], ckpt))
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
    except (RuntimeError, EOFError) as exc:       # torch's error for a file cut short or not a torch file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a readable state file, truncated or damaged ({first})") from None


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
                   ) -> tuple[nn.Module, Vocabulary, list[float], TrainConfig]:
    """The (EMA) generator of a checkpoint in eval mode, with its vocabulary, tag priors and config."""
    ckpt = resolve_checkpoint(path)
    cfg, (vocab, priors) = read_config(ckpt), read_vocab(ckpt)
    shapes = network_shapes(cfg, len(vocab), ckpt / "config.json")
    name = "G_ema" if ema else "G"
    state = load_weights(ckpt / f"{name}.safetensors", shapes["generator"], _what("generator", ckpt),
                         others={"discriminator": shapes["discriminator"]})
    generator = create_generator(cfg.model, len(vocab))
    generator.load_state_dict(state)
    return generator.to(device).eval(), vocab, priors, cfg
