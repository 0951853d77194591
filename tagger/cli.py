"""Commands of the tagger package: `kyara tagger train` and `kyara tag`."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tagger", help="train the CNN tagger")
    tsub = p.add_subparsers(dest="tagger_command", required=True, metavar="SUBCOMMAND")
    t = tsub.add_parser("train", help="train a tagger on a packed set (train split; report on val split)")
    t.add_argument("--data", required=True, help="packed set made by `kyara pack`")
    t.add_argument("--out", required=True, help="output folder (re-run to continue an interrupted run)")
    t.add_argument("--backbone", help="timm model name (default: mobilenetv4_conv_small_050)")
    t.add_argument("--backbone-weights", help="local weights file for the backbone (nothing is downloaded)")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--device", default="cpu")
    t.set_defaults(func=_train)

    p = sub.add_parser("tag", help="tag a folder of face crops -> tag CSV with probabilities")
    p.add_argument("folder", help="folder of crops (e.g. from `kyara crop`)")
    p.add_argument("-o", "--out", help="tag file to write (default: FOLDER/tags.csv)")
    p.add_argument("--tagger", help="tagger folder (default: the shipped tagger)")
    p.add_argument("--batch-size", type=int, default=128)
    p.set_defaults(func=_tag)


def _train(args: argparse.Namespace) -> int:
    import torch

    from tagger.model import DEFAULT_BACKBONE
    from tagger.train import train_tagger
    if args.threads:
        torch.set_num_threads(args.threads)
    tagger = train_tagger(args.data, args.out, backbone=args.backbone or DEFAULT_BACKBONE, epochs=args.epochs,
                          batch_size=args.batch_size, lr=args.lr, backbone_weights=args.backbone_weights,
                          device=args.device)
    accuracy = ", ".join(f"{k} {v:.1%}" for k, v in tagger.config.training["val_accuracy"].items())
    print(f"kyara tagger train: validation accuracy {accuracy} -> {args.out}")
    return 0


def _tag(args: argparse.Namespace) -> int:
    from tagger.tag import tag_folder
    out = tag_folder(args.folder, args.out, tagger_path=args.tagger, batch_size=args.batch_size)
    print(out)
    return 0
