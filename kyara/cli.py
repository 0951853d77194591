"""`kyara <command>`: each package registers its own subcommands in its `cli` module.

The `cli` modules import only argparse at the top; heavy imports (torch, timm, onnx) happen inside the
command that needs them, so `kyara serve` starts without torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = ("training.cli", "tagger.cli", "export.cli", "webapp.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kyara", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"kyara {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FileExistsError) as exc:     # the user's input, not a bug
        print(f"kyara {args.command}: {exc}", file=sys.stderr)
        return 2
