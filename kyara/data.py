"""`kyara data`: from pictures to a packed training set, in the order they are run: `crop` (faces out of
pictures), `tag` (the tagger labels them), `review` (a person checks a tag on contact sheets), `pack` (one
array file the trainer reads)."""
from __future__ import annotations

import argparse

from common.argtypes import non_negative_int, positive_int, fraction


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="prepare training data: crop faces, tag them, review tags, pack")
    steps = data.add_subparsers(dest="step", required=True, metavar="STEP")
    p = steps.add_parser("crop", help="pictures -> square anime-face crops + crops.jsonl (re-run to continue)")
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

    p = steps.add_parser("tag", help="tag a folder of face crops -> tag CSV with probabilities")
    p.add_argument("folder", help="folder of crops (e.g. from `kyara data crop`)")
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
    p = steps.add_parser("review", help="numbered contact sheets for checking tags by eye; corrections back in")
    rsub = p.add_subparsers(dest="review_command", required=True, metavar="SUBCOMMAND")
    s = rsub.add_parser("sheets", help="sheets of the faces with a tag, or of all faces ranked by its probability")
    s.add_argument("data", help="a folder of crops with its tag file, or a packed set")
    s.add_argument("--tag", required=True, help='the tag to check, e.g. "glasses"')
    s.add_argument("--ranked", action="store_true",
                   help="all faces, most likely first (a crop folder's p:<tag> column, or --tagger on a packed set)")
    s.add_argument("--tagger", help="tagger that ranks a packed set's faces (default: the shipped tagger)")
    s.add_argument("--tags", help="the crop folder's tag file (default: DATA/tags.csv)")
    s.add_argument("--limit", type=positive_int, help="at most this many faces (e.g. the top 300)")
    s.add_argument("--skip", action="append", default=[], metavar="FILE",
                   help="a label file of faces already reviewed (e.g. data/labels/getchu_review_male.csv): they and "
                        "their face groups are left off the sheets, so a search goes on past them; repeat for several")
    s.add_argument("-o", "--out", required=True, help="folder for sheet_NNN.png and corrections.csv")
    s.set_defaults(func=_review_sheets)
    a = rsub.add_parser("apply", help="write an edited corrections.csv (id,<tag> of 1/0/-1) into a tag file")
    a.add_argument("corrections", help="corrections table (1 on, 0 off, -1 leave as it is)")
    a.add_argument("tag_file", help="tag file to correct in place (e.g. crops/tags.csv)")
    a.set_defaults(func=_review_apply)


    p = steps.add_parser("pack", help="tagged faces (a crop folder + tag file, or an MLDS tar) -> packed set")
    p.add_argument("source", help="folder of crops (with tags.csv) or an uncompressed tar of tagged faces")
    p.add_argument("-o", "--out", required=True, help="output folder of the packed set")
    p.add_argument("--tags", help="tag file (default: SOURCE/tags.csv for a folder)")
    p.add_argument("--resolution", type=positive_int, default=64,
                   help="side of the packed images (px): 32, 64, 128 or 256, the sizes the generator trains at")
    p.add_argument("--val-fraction", type=fraction, default=0.1, help="share of face groups held out for validation")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the train / validation split")
    p.add_argument("--labels", action="append", default=[], metavar="FILE",
                   help="extra labels for the tags the source does not give: a `kyara data tag` file (its undecided "
                        "tags stay unknown) or a table of 1/0/-1 such as getchu_attributes.csv; repeat for several, a "
                        "later file wins")
    p.add_argument("--min-faces", type=non_negative_int, default=0,
                   help="leave out tags (other than colours) that fewer than this many distinct faces have")
    p.add_argument("--workers", type=positive_int, default=2)
    p.set_defaults(func=_pack)


def _crop(args: argparse.Namespace) -> int:
    from dataset.crop import crop_folder
    crop_folder(args.in_dir, args.out_dir, resolution=args.resolution, min_size=args.min_size,
                workers=args.workers, fmt=args.format, enlarge=args.enlarge)
    return 0


def _tag(args: argparse.Namespace) -> int:
    from tagger.tag import tag_folder
    out = tag_folder(args.folder, args.out, tagger_path=args.tagger, batch_size=args.batch_size,
                     threshold=args.threshold, tag_thresholds=dict(args.tag_threshold))
    print(out)
    return 0


def _review_sheets(args: argparse.Namespace) -> int:
    from tagger.review import review_sheets
    written = review_sheets(args.data, args.tag, args.out, ranked=args.ranked, tagger_path=args.tagger,
                            tag_file=args.tags, limit=args.limit, skip=args.skip)
    print(f"kyara data review: {len(written) - 1} sheets and {written[-1]}")
    return 0


def _review_apply(args: argparse.Namespace) -> int:
    from tagger.review import apply_corrections
    changed = apply_corrections(args.corrections, args.tag_file)
    changes = ", ".join(f"{t} on {n} images" for t, n in changed.items())
    print(f"kyara data review: changed {changes} in {args.tag_file}")
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


def _pack(args: argparse.Namespace) -> int:
    from dataset.pack import pack
    pack(args.source, args.out, resolution=args.resolution, tag_file=args.tags,
         val_fraction=args.val_fraction, seed=args.seed, workers=args.workers, labels=args.labels,
         min_faces=args.min_faces)
    return 0
