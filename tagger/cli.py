"""Commands of the tagger package: `kyara tagger train`, `kyara tag` and `kyara review`."""
from __future__ import annotations

import argparse

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
    p = sub.add_parser("tagger", help="train the CNN tagger")
    tsub = p.add_subparsers(dest="tagger_command", required=True, metavar="SUBCOMMAND")
    t = tsub.add_parser("train", help="train a tagger on packed sets and extra label files; thresholds are "
                                      "calibrated on one held-out split and reported on another")
    t.add_argument("--data", required=True, action=_SourceAction,
                   help="packed set made by `kyara pack` (repeat for several)")
    t.add_argument("--labels", action=_SourceAction, metavar="FILE",
                   help="labels checked by eye for the images of the --data before it (a table `id,<tag>,...` "
                        "of 1/0/-1, or `id,<tags>` rows): they train, calibrate and measure the tagger")
    t.add_argument("--weak-labels", action=_SourceAction, metavar="FILE",
                   help="labels that only train (e.g. taken from a whole post's tags), same layouts")
    t.add_argument("--oversample", type=positive_int, default=1,
                   help="each epoch shows the images labelled by eye this many times")
    t.add_argument("--min-positives", type=non_negative_int, default=0,
                   help="leave out tags with fewer positive training images than this")
    t.add_argument("--init", help="start from this tagger folder (its backbone and the head rows of the tags it "
                                  "knows), e.g. tagger/weights")
    t.add_argument("--out", required=True, help="output folder (re-run to continue an interrupted run)")
    t.add_argument("--backbone", help="kyara_plain_32 (the default; with --init, the init "
                                      "tagger's) or kyara_plain_16: the plain full-resolution CNN; "
                                      "or a timm model name")
    t.add_argument("--attribute-backbone", default="",
                   help="a second trunk (e.g. kyara_plain_32) for the tags outside the colour groups; with --init the "
                        "init tagger's trunk and head stay frozen and only images with such labels train")
    t.add_argument("--mouth-backbone", default="",
                   help="a trunk (e.g. kyara_plain_32) that reads --mouth-tags from a box around the mouth, enlarged; "
                        "with --init every other trunk and head stays frozen and only images with such labels train")
    t.add_argument("--mouth-tags", default="smile", help="the tags the mouth trunk reads (default: smile)")
    t.add_argument("--backbone-weights", help="local weights file for the backbone (nothing is downloaded)")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--device", default="cpu")
    t.set_defaults(func=_train, sources=None)

    p = sub.add_parser("tag", help="tag a folder of face crops -> tag CSV with probabilities")
    p.add_argument("folder", help="folder of crops (e.g. from `kyara crop`)")
    p.add_argument("-o", "--out", help="tag file to write (default: FOLDER/tags.csv)")
    p.add_argument("--tagger", help="a folder of `kyara tagger train`, or a WD v3 Danbooru tagger as a hub download "
                                    "leaves it (config.json, model.safetensors, selected_tags.csv); default: the "
                                    "shipped tagger")
    p.add_argument("--threshold", type=float,
                   help="threshold of every tag outside the colour groups (default: the tagger's own: calibrated "
                        "for a trained tagger, 0.35 for a WD tagger)")
    p.add_argument("--tag-threshold", action="append", default=[], metavar="TAG=T", type=_tag_threshold,
                   help='threshold of one tag, e.g. "smile=0.5" (repeat for several)')
    p.add_argument("--batch-size", type=int, default=128)
    p.set_defaults(func=_tag)
    _register_review(sub)


def _register_review(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="numbered contact sheets for checking tags by eye; corrections back in")
    rsub = p.add_subparsers(dest="review_command", required=True, metavar="SUBCOMMAND")
    s = rsub.add_parser("sheets", help="sheets of the faces with a tag, or of all faces ranked by its probability")
    s.add_argument("data", help="a folder of crops with its tag file, or a packed set")
    s.add_argument("--tag", required=True, help='the tag to check, e.g. "glasses"')
    s.add_argument("--ranked", action="store_true",
                   help="all faces, most likely first (a crop folder's p:<tag> column, or --tagger on a packed set)")
    s.add_argument("--tagger", help="tagger that ranks a packed set's faces (default: the shipped tagger)")
    s.add_argument("--tags", help="the crop folder's tag file (default: DATA/tags.csv)")
    s.add_argument("--limit", type=positive_int, help="at most this many faces (e.g. the top 300)")
    s.add_argument("-o", "--out", required=True, help="folder for sheet_NNN.png and corrections.csv")
    s.set_defaults(func=_review_sheets)
    a = rsub.add_parser("apply", help="write an edited corrections.csv (id,<tag> of 1/0/-1) into a tag file")
    a.add_argument("corrections", help="corrections table (1 on, 0 off, -1 leave as it is)")
    a.add_argument("tag_file", help="tag file to correct in place (e.g. crops/tags.csv)")
    a.set_defaults(func=_review_apply)


def _review_sheets(args: argparse.Namespace) -> int:
    from tagger.review import review_sheets
    written = review_sheets(args.data, args.tag, args.out, ranked=args.ranked, tagger_path=args.tagger,
                            tag_file=args.tags, limit=args.limit)
    print(f"kyara review: {len(written) - 1} sheets and {written[-1]}")
    return 0


def _review_apply(args: argparse.Namespace) -> int:
    from tagger.review import apply_corrections
    changed = apply_corrections(args.corrections, args.tag_file)
    print(f"kyara review: changed {', '.join(f'{t} on {n} images' for t, n in changed.items())} in {args.tag_file}")
    return 0


def _tag_threshold(text: str) -> tuple[str, float]:
    """`TAG=T` -> (tag, threshold); the tag name is checked once the tagger is open."""
    tag, sep, value = text.rpartition("=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if not sep or not tag.strip() or number is None:
        raise argparse.ArgumentTypeError(f"expected TAG=THRESHOLD such as smile=0.5, got {text!r}")
    return tag.strip(), number


def _train(args: argparse.Namespace) -> int:
    import torch

    from tagger.sources import Source
    from tagger.train import train_tagger
    if args.threads:
        torch.set_num_threads(args.threads)
    tagger = train_tagger([Source(**s) for s in args.sources], args.out, backbone=args.backbone,
                          epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          backbone_weights=args.backbone_weights, device=args.device, oversample=args.oversample,
                          min_positives=args.min_positives, init=args.init,
                          attribute_backbone=args.attribute_backbone, mouth_backbone=args.mouth_backbone,
                          mouth_tags=[t.strip() for t in args.mouth_tags.split(",") if t.strip()])
    accuracy = ", ".join(f"{k} {v:.1%}" for k, v in tagger.config.training["val_accuracy"].items())
    print(f"kyara tagger train: validation accuracy {accuracy} -> {args.out}")
    return 0


def _tag(args: argparse.Namespace) -> int:
    from tagger.tag import tag_folder
    out = tag_folder(args.folder, args.out, tagger_path=args.tagger, batch_size=args.batch_size,
                     threshold=args.threshold, tag_thresholds=dict(args.tag_threshold))
    print(out)
    return 0
