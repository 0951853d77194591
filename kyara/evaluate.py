"""`kyara eval`: every figure of a model beside the same figure for real faces (metrics/), into eval.json and
report.md."""
from __future__ import annotations

import argparse
from pathlib import Path

from common.argtypes import truncation


def register(sub: argparse._SubParsersAction) -> None:
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


def _eval(args: argparse.Namespace) -> int:
    from metrics.evaluate import evaluate
    from metrics.report import summary
    if args.n < 2:
        raise ValueError(f"-n must be at least 2, got {args.n}")
    result = evaluate(args.model, args.data, args.out, split=args.split, n_per_tag=args.n,
                      tagger_path=args.tagger, seed=args.seed, truncation=args.truncation)
    print(summary(result))
    print(f"{Path(args.out) / 'report.md'} ({result['seconds']} s)")
    return 0
