"""`kyara sample`: faces from any model, a checkpoint, a run folder or an exported model, as one grid PNG or as a
folder of PNGs, one per face.

The same seed asks every kind of model for the same noise and tags (`export.adapters.draw` and the runtime's
`inputs` draw alike), so a checkpoint's faces and its export's can be set side by side. An exported model into
a folder needs no torch: that is how a user without the training stack draws faces in bulk.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from common.argtypes import count_at_most, non_negative_int, output_file, output_folder

if TYPE_CHECKING:
    from PIL import Image

MAX_FACES = 100_000     # into a folder: about 1 GB of 64 px PNGs; more is several commands with other seeds
MAX_GRID = 10_000       # into one PNG: 100 x 100 faces, made whole in memory


def _output(text: str) -> Path:
    """A path ending in .png is one grid (replaced if it exists); anything else is a folder of PNGs."""
    return output_file("samples.png")(text) if text.lower().endswith(".png") else output_folder(text)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="faces from a checkpoint, run folder or exported model: one grid PNG, or a "
                                      "folder of PNGs")
    p.add_argument("model", help="checkpoint folder, run directory (its best, else newest, checkpoint), or exported "
                                 "model folder / .onnx file (needs no torch)")
    p.add_argument("--tags", default="", help='e.g. "silver hair,red eyes" (groups left open follow the priors)')
    p.add_argument("-n", type=count_at_most(MAX_FACES), default=16,
                   help=f"faces: at most {MAX_GRID:,} in a grid, {MAX_FACES:,} into a folder (written as they "
                        "are made)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("-o", "--out", type=_output, default=Path("samples.png"),
                   help="a .png file: one grid of all the faces (replaced if it exists); a folder: one PNG per face, "
                        "seed<SEED>_<i>.png (made if missing; PNGs of the same names are replaced, other files "
                        "left alone)")
    p.add_argument("--scale", type=int, choices=(1, 2, 4), default=1,
                   help="the same faces at 2x or 4x their size (128 or 256 px for a 64 px model), through the "
                        "upscaler")
    p.add_argument("--upscaler", help="upscaler folder made by `kyara upscaler` (default: the repo's models/upscaler)")
    p.set_defaults(func=_sample)


def _is_exported(model: Path) -> bool:
    return model.suffix == ".onnx" or (model / "manifest.json").is_file()


def _exported_faces(args: argparse.Namespace) -> Iterator[Image.Image]:
    """The torch-free runtime's faces; the model, upscaler and tags are checked before the first one."""
    from export.runtime import DEFAULT_UPSCALER, Generator
    generator = Generator(args.model, upscaler=args.upscaler or DEFAULT_UPSCALER)
    if args.scale > 1:
        generator.upscaler                      # opened (and checked) before anything is written
    noise, labels = generator.inputs(args.tags, args.n, args.seed)
    return generator.faces(noise, labels, scale=args.scale)


def _checkpoint_faces(args: argparse.Namespace, batch: int = 256) -> Iterator[Image.Image]:
    """A checkpoint's EMA generator, `batch` faces at a time; the checkpoint and tags are checked now."""
    from PIL import Image

    from export.adapters import BUNDLED_UPSCALER, draw, open_source, upscaled
    source = open_source(args.model)
    noise, labels = draw(source, args.n, args.seed, source.vocab.parse(args.tags))

    def faces() -> Iterator[Image.Image]:
        for i in range(0, args.n, batch):
            made = upscaled(source.generate(noise[i:i + batch], labels[i:i + batch]), args.scale,
                            args.upscaler or BUNDLED_UPSCALER)
            yield from (Image.fromarray(face) for face in made)
    return faces()


def _sample(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    model, out = Path(args.model), args.out
    grid = out.suffix.lower() == ".png"
    if grid and args.n > MAX_GRID:
        raise ValueError(f"-n: at most {MAX_GRID:,} faces fit one grid, got {args.n:,}; write them into a folder "
                         "instead (-o FOLDER)")
    if not _is_exported(model) and not model.exists():
        raise FileNotFoundError(f"{model}: no such checkpoint, run directory or exported model")
    faces = _exported_faces(args) if _is_exported(model) else _checkpoint_faces(args)
    bar = tqdm(total=args.n, desc="sample", unit="face", dynamic_ncols=True)
    if grid:
        import numpy as np

        from training.grid import save_grid
        pixels = []
        with bar:
            for face in faces:
                pixels.append(np.asarray(face))
                bar.update()
        print(save_grid(np.stack(pixels), out, rows=max(1, round(math.sqrt(args.n)))))
        return 0
    from common.files import staged_files
    # Each face is written as it is made (memory stays flat), into a staging folder whose files join `out`
    # once all are there: a run that fails (a full disk) leaves `out` as it was, and no folder it made.
    with staged_files(out) as stage, bar:
        for i, face in enumerate(faces):
            face.save(stage / f"seed{args.seed}_{i:03d}.png", format="PNG")
            bar.update()
    print(f"{out}: {args.n} faces")
    return 0
