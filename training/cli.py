"""Commands of the training package: `kyara crop`, `kyara pack`, `kyara train`, `kyara sample`,
`kyara compare`, `kyara blind`, `kyara blind-count`, `kyara slim`, `kyara curves`, `kyara eval`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.argtypes import (count_at_most, fraction, non_negative_int, output_file, positive_int, truncation,
                             truncations, upscale_methods)

MAX_GRID = 10_000     # `kyara sample -n`: one PNG of 100 x 100 faces; the grid is made whole in memory


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("crop", help="pictures -> square anime-face crops + crops.jsonl (re-run to continue)")
    p.add_argument("in_dir", help="folder of pictures (searched recursively)")
    p.add_argument("out_dir", help="folder for the crops, crops.jsonl and done.jsonl")
    p.add_argument("--resolution", type=int, default=64, choices=(64, 128, 256))
    p.add_argument("--min-size", type=non_negative_int, default=32,
                   help="drop faces whose detected box is smaller (px)")
    p.add_argument("--enlarge", type=float, default=1.5,
                   help="crop side / face box side (1.0 frames faces like the Getchu set's crops)")
    p.add_argument("--format", default="png", choices=("png", "jpg"), help="crop file format (jpg: quality 95)")
    p.add_argument("--workers", type=positive_int, default=2)
    p.set_defaults(func=_crop)

    p = sub.add_parser("pack", help="tagged faces (a crop folder + tag file, or an MLDS tar) -> packed set")
    p.add_argument("source", help="folder of crops (with tags.csv) or an uncompressed tar of tagged faces")
    p.add_argument("-o", "--out", required=True, help="output folder of the packed set")
    p.add_argument("--tags", help="tag file (default: SOURCE/tags.csv for a folder)")
    p.add_argument("--resolution", type=positive_int, default=64,
                   help="side of the packed images (px): 32, 64, 128 or 256, the sizes the generator trains at")
    p.add_argument("--val-fraction", type=fraction, default=0.1, help="share of face groups held out for validation")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the train / validation split")
    p.add_argument("--labels", action="append", default=[], metavar="FILE",
                   help="extra labels for the tags the source does not give: a `kyara tag` file (its undecided tags "
                        "stay unknown) or a table of 1/0/-1 such as getchu_attributes.csv; repeat for several, a "
                        "later file wins")
    p.add_argument("--min-faces", type=non_negative_int, default=0,
                   help="leave out tags (other than colours) that fewer than this many distinct faces have")
    p.add_argument("--workers", type=positive_int, default=2)
    p.set_defaults(func=_pack)

    p = sub.add_parser("train", help="train the GAN (torchrun for several GPUs or nodes)")
    p.add_argument("config", help="preset (paper, cpu64, tiny) or a JSON config file")
    p.add_argument("--data", required=True, help="packed set made by `kyara pack`")
    p.add_argument("--run-dir", required=True, help="where checkpoints, samples and metrics.jsonl go")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --run-dir")
    p.add_argument("--init", metavar="CHECKPOINT",
                   help="start a new run from another run's weights (a checkpoint folder or run directory), tags "
                        "matched by name: how a model goes on to a larger vocabulary")
    p.add_argument("--steps", type=int, help="train up to this step (default: the config's)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when present)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set batch_size=32 --set model.g_blocks=8")
    p.set_defaults(func=_train)

    p = sub.add_parser("sample", help="a grid of faces from a checkpoint")
    p.add_argument("checkpoint", help="checkpoint folder or run directory")
    p.add_argument("--tags", default="", help='e.g. "silver hair,red eyes" (others drawn from the priors)')
    p.add_argument("-n", type=count_at_most(MAX_GRID), default=16, help=f"faces in the grid, at most {MAX_GRID:,}")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("-o", "--out", type=output_file("samples.png"), default="samples.png",
                   help="PNG to write (replaced if it exists); a folder or a path ending in / means "
                        "samples.png inside it")
    p.set_defaults(func=_sample)

    p = sub.add_parser("compare", help="several models' faces from the same noise, one row each, above real faces")
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="checkpoint folder, run directory, or exported model folder / .onnx file")
    p.add_argument("--data", required=True, help="packed set whose real faces make the last row")
    p.add_argument("--split", default="val", help="which faces of --data the real row shows (default: val)")
    p.add_argument("--tags", default="", help='e.g. "silver hair,red eyes" (others drawn from the priors)')
    p.add_argument("-n", type=positive_int, default=8, help="faces a row")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--truncation", type=truncations, default=[1.0], metavar="PSI[,PSI...]",
                   help="one row per model and truncation, e.g. 1,0.7,0.5 (default: 1, the noise as drawn)")
    p.add_argument("-o", "--out", type=output_file("compare.png"), default="compare.png",
                   help="PNG to write (replaced if it exists); a folder or a path ending in / means "
                        "compare.png inside it")
    p.set_defaults(func=_compare)

    p = sub.add_parser("blind", help="numbered sheets of one model's faces shuffled with real ones, or of two "
                                     "models' (or truncations') with each other; the key apart")
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="checkpoint folder, run directory, or exported model folder / .onnx file")
    p.add_argument("--truncation", type=truncations, default=[1.0], metavar="PSI[,PSI]",
                   help="one model at two truncations makes an A/B too, e.g. 1,0.7 (default: 1)")
    p.add_argument("--data", help="packed set of the real faces (needed for one model)")
    p.add_argument("--split", default="val", help="which faces of --data (default: val)")
    p.add_argument("-n", type=positive_int, default=60, help="faces of each kind (default: 60)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--paired", action="store_true",
                   help="an A/B's two entries draw the same noise and tags, and blind-count compares each face "
                        "with its twin (default: each draws its own)")
    p.add_argument("--scale", type=int, choices=(1, 2, 4), default=1,
                   help="every face (real ones too) at 2x or 4x its size, shown at that size: the page's HD")
    p.add_argument("--upscale", type=upscale_methods, default=["upscaler"], metavar="METHOD[,METHOD]",
                   help="how --scale enlarges: upscaler (the bundled one, the page's HD), bicubic, or an upscaler "
                        "folder; two make an A/B of one model")
    p.add_argument("-o", "--out", required=True, help="folder for sheet_NN.png and key.json")
    p.set_defaults(func=_blind)

    p = sub.add_parser("blind-count", help="a person's calls on blind sheets -> good / flawed / broken per kind")
    p.add_argument("folder", help="folder of `kyara blind` or an eval's blind/ folder (its key.json)")
    p.add_argument("calls", help='text file of calls made before reading the key: "1f 2b 3g ..." (good, '
                                 'flawed, broken; # starts a comment)')
    p.set_defaults(func=_blind_count)

    p = sub.add_parser("slim", help="a checkpoint's G_ema and D in half precision: small enough to commit, and "
                                    "`kyara train --init` goes on from it on another machine")
    p.add_argument("checkpoint", help="checkpoint folder or run directory (its best, else newest, checkpoint)")
    p.add_argument("-o", "--out", required=True, help="folder to write (a slim checkpoint there is replaced)")
    p.set_defaults(func=_slim)

    p = sub.add_parser("curves", help="a run's loss (and evaluation) curves as one PNG")
    p.add_argument("run_dir", help="run directory with metrics.jsonl")
    p.add_argument("-o", "--out", default="curves.png", help="PNG to write (default: curves.png)")
    p.add_argument("--until", type=int, default=None,
                   help="leave out the log after this step, e.g. a shipped checkpoint's (default: the whole log)")
    p.set_defaults(func=_curves)

    p = sub.add_parser("eval", help="tag fidelity, face rate, KID/FID and diversity of a model -> eval.json, report.md")
    p.add_argument("model", help="checkpoint folder, run directory, or exported model folder / .onnx file")
    p.add_argument("--data", required=True, help="packed set with the real faces to compare against")
    p.add_argument("--split", default="val", help="which faces of --data are the reference (default: val)")
    p.add_argument("-n", type=int, default=50,
                   help="faces per colour for tag fidelity; the distribution figures use n x colours faces")
    p.add_argument("--out", default="eval", help="folder for eval.json, report.md and the sheets")
    p.add_argument("--tagger", help="tagger folder (default: the shipped one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=truncation, default=1.0,
                   help="draw the noise in towards 0 by this factor (0 < psi <= 1), on top of any the model was "
                        "exported with: what `kyara export --truncation` would ship (default: 1)")
    p.set_defaults(func=_eval)


def _crop(args: argparse.Namespace) -> int:
    from training.crop import crop_folder
    crop_folder(args.in_dir, args.out_dir, resolution=args.resolution, min_size=args.min_size,
                workers=args.workers, fmt=args.format, enlarge=args.enlarge)
    return 0


def _pack(args: argparse.Namespace) -> int:
    from training.pack import pack
    pack(args.source, args.out, resolution=args.resolution, tag_file=args.tags,
         val_fraction=args.val_fraction, seed=args.seed, workers=args.workers, labels=args.labels,
         min_faces=args.min_faces)
    return 0


def _train(args: argparse.Namespace) -> int:
    from training.checkpoint import check_checkpoint, list_checkpoints
    from training.config import load_config
    from training.trainer import TrainingDiverged, train
    cfg = load_config(args.config, args.set)
    # The weights a run starts or goes on from, checked whole (each file against its config) before it starts.
    if args.init is not None:
        check_checkpoint(args.init)
    if args.resume and list_checkpoints(args.run_dir):
        check_checkpoint(list_checkpoints(args.run_dir)[-1], ("G", "G_ema", "D"))
    try:
        train(cfg, args.data, args.run_dir, resume=args.resume, device=args.device, steps=args.steps,
              init=args.init)
    except TrainingDiverged as exc:
        print(f"kyara train: {exc}", file=sys.stderr)
        return 1
    return 0


def _sample(args: argparse.Namespace) -> int:
    from training.sample import sample_to_file
    path = sample_to_file(args.checkpoint, args.tags, args.n, args.seed, args.out)
    print(path)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from training.compare import compare_to_file
    print(compare_to_file(args.models, args.data, args.out, n=args.n, seed=args.seed, tags=args.tags,
                          split=args.split, truncations=args.truncation))
    return 0


def _blind(args: argparse.Namespace) -> int:
    from training.compare import blind_to_folder
    key = blind_to_folder(args.models, args.out, n=args.n, seed=args.seed, truncations=args.truncation,
                          data=args.data, split=args.split, paired=args.paired, scale=args.scale,
                          methods=args.upscale)
    kinds = " and ".join(f"{count} {kind}" for kind, count in key["counts"].items())
    print(f"{Path(args.out)}: {len(key['sheets'])} sheets of {kinds}; write your calls down "
          f"before opening key.json, then: kyara blind-count {args.out} CALLS")
    return 0


def _blind_count(args: argparse.Namespace) -> int:
    from common.files import read_json
    from training.blind import KEY_FILE, paired_tally, read_calls, read_guesses, sources_told, tally
    key_path = Path(args.folder) / KEY_FILE
    if not key_path.is_file():
        raise FileNotFoundError(f"{key_path}: no key here; pass the folder `kyara blind` wrote")
    key = read_json(key_path)
    calls = read_calls(args.calls, len(key["faces"]))
    for kind, counts in tally(key, calls).items():
        total = sum(counts.values())
        print(f"{kind}: " + ", ".join(f"{counts[name]} {name}" for name in counts if counts[name] or name != "not judged")
              + f" (of {total}; broken {counts['broken'] / total:.0%})")
    pairs = paired_tally(key, calls)
    if pairs is not None:
        first, second = key["counts"]      # the key lists the kinds in the command line's order
        print(f"twin against twin: {first} better in {pairs['first better']}, {second} better in "
              f"{pairs['second better']}, the same in {pairs['same']}"
              + (f", {pairs['not judged']} not judged" if pairs["not judged"] else "")
              + f" (sign test p = {pairs['p']:.2g})")
    told = sources_told(key, read_guesses(args.calls, len(key["faces"])))
    if told is not None:
        print(f"source told right: {told['right']} of {told['guessed']} faces ({told['share']:.0%}; 50 % is chance)")
    return 0


def _slim(args: argparse.Namespace) -> int:
    from training.checkpoint import slim_checkpoint
    print(slim_checkpoint(args.checkpoint, args.out))
    return 0


def _curves(args: argparse.Namespace) -> int:
    from training.curves import plot_curves
    print(plot_curves(args.run_dir, args.out, until=args.until))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate, summary
    if args.n < 2:
        raise ValueError(f"-n must be at least 2, got {args.n}")
    result = evaluate(args.model, args.data, args.out, split=args.split, n_per_tag=args.n,
                      tagger_path=args.tagger, seed=args.seed, truncation=args.truncation)
    print(summary(result))
    print(f"{Path(args.out) / 'report.md'} ({result['seconds']} s)")
    return 0
