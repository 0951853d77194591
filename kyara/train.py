"""Training: `kyara train` (the GAN), `kyara tagger train` (the CNN tagger), `kyara curves` (a run's losses as
a picture) and `kyara portable` (a checkpoint small enough to commit, to go on with on another machine)."""
from __future__ import annotations

import argparse
import sys

from common.argtypes import non_negative_int, positive_int


class _SourceAction(argparse.Action):
    """`--data` starts a source; `--labels` and `--weak-labels` add a file to the `--data` before them."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, value: str,
                 option_string: str | None = None) -> None:
        sources = list(getattr(namespace, "sources", None) or [])
        if self.dest == "data":
            sources.append({"data": value, "labels": [], "weak_labels": []})
        elif not sources:
            parser.error(f"argument {option_string}: must follow the --data whose images it labels")
        else:
            sources[-1][self.dest].append(value)
        namespace.sources = sources


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the GAN (torchrun for several GPUs or nodes)")
    p.add_argument("config", help="preset (paper, cpu64, dcgan: the DCGAN baseline, tiny) or a JSON config file")
    p.add_argument("--data", required=True, help="packed set made by `kyara data pack`")
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

    p = sub.add_parser("tagger", help="train the CNN tagger")
    tsub = p.add_subparsers(dest="step", required=True, metavar="SUBCOMMAND")
    t = tsub.add_parser("train", help="train a tagger on packed sets and extra label files; thresholds are "
                                      "calibrated on one held-out split and reported on another")
    t.add_argument("--data", required=True, action=_SourceAction,
                   help="packed set made by `kyara data pack` (repeat for several)")
    t.add_argument("--labels", action=_SourceAction, metavar="FILE",
                   help="labels checked by eye for the images of the --data before it (a table `id,<tag>,...` "
                        "of 1/0/-1, or `id,<tags>` rows): they train, calibrate and measure the tagger")
    t.add_argument("--weak-labels", action=_SourceAction, metavar="FILE",
                   help="labels that only train (e.g. taken from a whole post's tags), same layouts")
    t.add_argument("--config", default="default",
                   help="the recipe: a preset, default or tiny, or a JSON file (optionally {\"base\": PRESET, ...})")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set epochs=20 --set 'mouth_tags=smile,open mouth'")
    t.add_argument("--out", required=True, help="output folder (re-run to continue an interrupted run)")
    t.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--device", default="cpu")
    shortcuts = t.add_argument_group("recipe shortcuts", "each sets the recipe value of its name, over --config")
    shortcuts.add_argument("--init", help="start from this tagger folder (its backbone and the head rows of the "
                                          "tags it knows), e.g. tagger/weights")
    shortcuts.add_argument("--backbone", help="kyara_plain_32 (the default; with --init, the init tagger's) or "
                                              "kyara_plain_16: the plain full-resolution CNN; or a timm model name")
    shortcuts.add_argument("--attribute-backbone",
                           help="a second trunk (e.g. kyara_plain_32) for the tags outside the colour groups; with "
                                "--init the init tagger's trunk and head stay frozen and only images with such "
                                "labels train")
    shortcuts.add_argument("--mouth-backbone",
                           help="a trunk (e.g. kyara_plain_32) that reads --mouth-tags from a box around the "
                                "mouth, enlarged; with --init every other trunk and head stays frozen and only "
                                "images with such labels train")
    shortcuts.add_argument("--mouth-tags", help="the tags the mouth trunk reads, e.g. smile")
    shortcuts.add_argument("--backbone-weights", help="local weights file for the backbone (nothing is downloaded)")
    shortcuts.add_argument("--oversample", type=positive_int,
                           help="each epoch shows the images labelled by eye this many times")
    shortcuts.add_argument("--min-positives", type=non_negative_int,
                           help="leave out tags with fewer positive training images than this")
    shortcuts.add_argument("--epochs", type=non_negative_int)
    shortcuts.add_argument("--batch-size", type=positive_int)
    shortcuts.add_argument("--lr", type=float)
    t.set_defaults(func=_train_tagger, sources=None)

    p = sub.add_parser("portable", help="a portable checkpoint: a checkpoint's G_ema and D in half precision, small "
                                        "enough to commit, that `kyara train --init` goes on from on another machine")
    p.add_argument("checkpoint", help="checkpoint folder or run directory (its best, else newest, checkpoint)")
    p.add_argument("-o", "--out", required=True, help="folder to write (a portable checkpoint there is replaced)")
    p.set_defaults(func=_portable)

    p = sub.add_parser("curves", help="a run's loss (and evaluation) curves as one PNG")
    p.add_argument("run_dir", help="run directory with metrics.jsonl")
    p.add_argument("-o", "--out", default="curves.png", help="PNG to write (default: curves.png)")
    p.add_argument("--until", type=int, default=None,
                   help="leave out the log after this step, e.g. a shipped checkpoint's (default: the whole log)")
    p.set_defaults(func=_curves)


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
    evaluate = None
    if cfg.eval_every > 0:
        from metrics.evaluate import training_evaluator
        evaluate = training_evaluator(cfg, args.data)
    try:
        train(cfg, args.data, args.run_dir, resume=args.resume, device=args.device, steps=args.steps,
              init=args.init, evaluate=evaluate)
    except TrainingDiverged as exc:
        print(f"kyara train: {exc}", file=sys.stderr)
        return 1
    return 0


# The `kyara tagger train` options that set the recipe value of their name (as `--set NAME=VALUE` would).
TAGGER_SHORTCUTS = ("init", "backbone", "attribute_backbone", "mouth_backbone", "mouth_tags", "backbone_weights",
                    "oversample", "min_positives", "epochs", "batch_size", "lr")


def _train_tagger(args: argparse.Namespace) -> int:
    import torch

    from tagger.config import load_tagger_config
    from tagger.data import LabelledSet
    from tagger.train import train_tagger
    if args.threads:
        torch.set_num_threads(args.threads)
    given = [f"{name}={value}" for name in TAGGER_SHORTCUTS if (value := getattr(args, name)) is not None]
    cfg = load_tagger_config(args.config, [*given, *args.set])
    tagger = train_tagger([LabelledSet(**s) for s in args.sources], args.out, cfg, device=args.device)
    accuracy = ", ".join(f"{k} {v:.1%}" for k, v in tagger.config.training["val_accuracy"].items())
    print(f"kyara tagger train: validation accuracy {accuracy} -> {args.out}")
    return 0


def _portable(args: argparse.Namespace) -> int:
    from training.checkpoint import portable_checkpoint
    print(portable_checkpoint(args.checkpoint, args.out))
    return 0


def _curves(args: argparse.Namespace) -> int:
    from metrics.curves import plot_curves
    print(plot_curves(args.run_dir, args.out, until=args.until))
    return 0
