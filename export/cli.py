"""Commands of the export package: `kyara export` (needs torch) and `kyara generate` (does not)."""
from __future__ import annotations

import argparse
from pathlib import Path

from common.argtypes import non_negative_int, output_folder, positive_int, truncation
from common.files import atomic_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="checkpoint -> model folder (model.onnx, model.int8.onnx, model.compact.onnx, "
                                      "manifest.json)")
    p.add_argument("checkpoint", help="checkpoint folder or run directory (its best, else newest, checkpoint)")
    p.add_argument("-o", "--out", type=output_folder, required=True, help="model folder to write")
    p.add_argument("--default", choices=("fp32", "int8", "compact"), default="compact",
                   help="the variant the page loads (manifest `file`): compact stores int8/int4 weights (about a "
                        "fifth of fp32's download) and computes in fp32, which onnxruntime-web runs faster than "
                        "int8's integer kernels (benchmarks/browser.py)")
    p.add_argument("--name", help="model name (default: kyara-<config name>)")
    p.add_argument("--version", help="model version (default: step<N>)")
    p.add_argument("--data", help="the training data: a packed set folder or a description")
    p.add_argument("--eval", dest="eval_path", help="eval.json to copy figures from (default: the one beside "
                                                    "the checkpoint or in its run directory, if any)")
    p.add_argument("--calibration-samples", type=positive_int, default=128, help="int8 calibration inputs")
    p.add_argument("--truncation", type=truncation, default=1.0,
                   help="draw the noise in towards 0 by this factor, inside the model (0 < psi <= 1; default: 1, "
                        "not at all): fewer broken faces for a little less variety; `kyara eval --truncation` "
                        "measures both")
    p.set_defaults(func=_export)

    p = sub.add_parser("generate", help="faces from an exported model, without torch")
    p.add_argument("model", help="model.onnx (or model.int8.onnx) or a model folder with manifest.json")
    p.add_argument("--tags", default="", help='e.g. "blonde hair, red eyes" (groups left open follow the priors)')
    p.add_argument("-n", type=positive_int, default=16, help="faces to generate")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("-o", "--out", type=output_folder, default="generated",
                   help="folder for the PNGs, seed<SEED>_<i>.png (made if missing; PNGs of the same names are "
                        "replaced, other files left alone)")
    p.set_defaults(func=_generate)


def _export(args: argparse.Namespace) -> int:
    from export.exporter import export_checkpoint
    manifest = export_checkpoint(args.checkpoint, args.out, default=args.default, name=args.name,
                                 version=args.version, data=args.data, eval_path=args.eval_path,
                                 calibration_samples=args.calibration_samples, truncation=args.truncation)
    for variant in manifest["variants"]:
        extra = f", PSNR {variant['psnr_db_vs_fp32']} dB vs fp32" if "psnr_db_vs_fp32" in variant else ""
        print(f"{Path(args.out) / variant['file']}: {variant['precision']}, {variant['bytes'] / 1e6:.2f} MB{extra}")
    print(f"{Path(args.out) / 'manifest.json'}: default {manifest['file']}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from export.runtime import Generator
    generator = Generator(args.model)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)      # before generating: a folder that cannot be made fails at once
    faces = generator.generate(tags=args.tags, n=args.n, seed=args.seed)
    for i, face in enumerate(faces):
        path = out / f"seed{args.seed}_{i:03d}.png"
        with atomic_path(path) as tmp:
            face.save(tmp)
    print(f"{out}: {len(faces)} faces")
    return 0
