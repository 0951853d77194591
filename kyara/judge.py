"""`kyara judge`: what a person sees, made countable. `compare` (several models' faces from the same noise, above
real faces), `blind` (numbered sheets of faces shuffled with real ones, or two models' with each other, the key
apart) and `count` (a person's calls, written before the key is read, counted against it)."""
from __future__ import annotations

import argparse
from pathlib import Path

from common.argtypes import non_negative_int, output_file, positive_int, truncations, upscale_methods


def register(sub: argparse._SubParsersAction) -> None:
    judge = sub.add_parser("judge", help="judge faces by eye: side-by-side rows, blind sheets, counts of calls")
    steps = judge.add_subparsers(dest="step", required=True, metavar="STEP")
    p = steps.add_parser("compare", help="several models' faces from the same noise, one row each, above real faces")
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

    p = steps.add_parser("blind", help="numbered sheets of one model's faces shuffled with real ones, or of two "
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
                   help="an A/B's two entries draw the same noise and tags, and `kyara judge count` compares each face "
                        "with its twin (default: each draws its own)")
    p.add_argument("--scale", type=int, choices=(1, 2, 4), default=1,
                   help="every face (real ones too) at 2x or 4x its size, shown at that size: the page's HD")
    p.add_argument("--upscale", type=upscale_methods, default=["upscaler"], metavar="METHOD[,METHOD]",
                   help="how --scale enlarges: upscaler (the bundled one, the page's HD), bicubic, or an upscaler "
                        "folder; two make an A/B of one model")
    p.add_argument("-o", "--out", required=True, help="folder for sheet_NN.png and key.json")
    p.set_defaults(func=_blind)

    p = steps.add_parser("count", help="a person's calls on blind sheets -> good / flawed / broken per kind")
    p.add_argument("folder", help="folder of `kyara judge blind` or an eval's blind/ folder (its key.json)")
    p.add_argument("calls", help='text file of calls made before reading the key: "1f 2b 3g ..." (good, '
                                 'flawed, broken; # starts a comment)')
    p.set_defaults(func=_count)


def _compare(args: argparse.Namespace) -> int:
    from judge.compare import compare_to_file
    print(compare_to_file(args.models, args.data, args.out, n=args.n, seed=args.seed, tags=args.tags,
                          split=args.split, truncations=args.truncation))
    return 0


def _blind(args: argparse.Namespace) -> int:
    from judge.compare import blind_to_folder
    key = blind_to_folder(args.models, args.out, n=args.n, seed=args.seed, truncations=args.truncation,
                          data=args.data, split=args.split, paired=args.paired, scale=args.scale,
                          methods=args.upscale)
    kinds = " and ".join(f"{count} {kind}" for kind, count in key["counts"].items())
    print(f"{Path(args.out)}: {len(key['sheets'])} sheets of {kinds}; write your calls down "
          f"before opening key.json, then: kyara judge count {args.out} CALLS")
    return 0


def _count(args: argparse.Namespace) -> int:
    from common.files import read_json
    from judge.blind import KEY_FILE
    from judge.counts import paired_tally, read_calls, read_guesses, sources_told, tally
    key_path = Path(args.folder) / KEY_FILE
    if not key_path.is_file():
        raise FileNotFoundError(f"{key_path}: no key here; pass the folder `kyara judge blind` wrote")
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
