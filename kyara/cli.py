"""`kyara <command>`: the command line, one module of commands per stage of the pipeline (kyara/data.py,
train.py, sample.py, judge.py, evaluate.py, export.py; webapp/cli.py for the page).

The command modules import only argparse and `common.argtypes` at the top; heavy imports (torch, timm, onnx)
happen inside the command that needs them, so `kyara serve` starts without torch. They sit above every
package, so a command may wire any of them together (`kyara train` hands the trainer the metrics' evaluator).
"""
from __future__ import annotations

import argparse
import copy
import errno
import importlib
import sys

COMMAND_MODULES = ("kyara.data", "kyara.train", "kyara.sample", "kyara.judge", "kyara.evaluate", "kyara.export",
                   "webapp.cli")
DESCRIPTION = """Kyara: anime faces with the attributes you pick, drawn by a GAN that runs in the browser.

  see faces now         kyara serve                  (the page, on the bundled model)
  faces as files        kyara sample MODEL -o faces/
  make your own model   kyara data crop|tag|review|pack -> kyara train -> kyara export -> kyara serve --model
  judge a model         kyara eval (figures beside real faces), kyara judge (blind sheets for a person)"""
# Spellings of earlier versions, still accepted: old command -> the words that replace it.
RENAMED = {"crop": ("data", "crop"), "tag": ("data", "tag"), "review": ("data", "review"), "pack": ("data", "pack"),
           "compare": ("judge", "compare"), "blind": ("judge", "blind"), "blind-count": ("judge", "count"),
           "slim": ("portable",), "generate": ("sample",)}


class HelpFormatter(argparse.HelpFormatter):
    """Adds `(default: X)` to every option that has a default worth showing and does not say it already.

    argparse's ArgumentDefaultsHelpFormatter skips options without help text (most `--seed`s here) and
    prints `(default: None)` for options whose help explains what happens when they are left out.
    """

    def _format_action(self, action: argparse.Action) -> str:
        default = action.default
        silent = default is None or default is False or default is argparse.SUPPRESS or default in ("", [])
        if action.option_strings and not silent and "(default" not in (action.help or ""):
            action = copy.copy(action)
            action.help = f"{action.help or ''} (default: %(default)s)".lstrip()
        return super()._format_action(action)


class Parser(argparse.ArgumentParser):
    """The parser of `kyara` and of every subcommand (argparse makes subparsers of the parent's class):
    help shows defaults, and a bad command line is refused in one line."""

    def __init__(self, *args: object, **kwargs: object):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:
        """One line naming the command and the option, instead of argparse's usage block and then the error."""
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        self.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="kyara", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                    epilog="Run `kyara COMMAND --help` for a command's options. Earlier spellings still work: "
                           + ", ".join(f"kyara {old} (now kyara {' '.join(new)})" for old, new in RENAMED.items())
                           + ".")
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


# Commands that keep what they finished and go on from it when run again: a full disk says so.
RESUMABLE = {"data crop": "free some space, then run the same command again to go on where it stopped",
             "train": "free some space, then run it again with --resume to go on from its last checkpoint"}
_OUTPUT_OPTIONS = ("out", "out_dir", "run_dir")   # where a command writes, named when a failed write names nothing


def command_name(args: argparse.Namespace) -> str:
    """The command as typed in today's words, e.g. "data crop" or "train": the start of its messages."""
    return " ".join(filter(None, (args.command, getattr(args, "step", None))))


def _message(exc: Exception, args: argparse.Namespace | None = None) -> str:
    """An OSError as `path: reason` (not `[Errno 20] Not a directory: 'path'`); anything else as it says.

    A full disk names the file being written, or else the command's output, and for a command that goes on
    where it stopped (`RESUMABLE`) how to go on."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        place = exc.filename or next((getattr(args, k) for k in _OUTPUT_OPTIONS if getattr(args, k, None)), None)
        text = f"{place}: {exc.strerror or 'No space left on device'}" if place else str(exc)
        hint = RESUMABLE.get(command_name(args)) if args else None
        return f"{text}; {hint}" if hint else text
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def renamed(argv: list[str]) -> list[str]:
    """An earlier version's command line in today's words; `kyara sample` wrote a folder of faces by default."""
    if not argv or argv[0] not in RENAMED:
        return argv
    new = [*RENAMED[argv[0]], *argv[1:]]
    if argv[0] == "generate" and not {"-o", "--out"} & set(argv) and not any(a.startswith("--out=") for a in argv):
        new += ["--out", "generated"]
    return new


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(renamed(sys.argv[1:] if argv is None else list(argv)))
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"kyara {command_name(args)}: interrupted", file=sys.stderr)
        return 130
    # The user's input or machine (a bad path, a full disk), not a bug: one line, not a traceback.
    except (ValueError, OSError) as exc:
        message = " ".join(_message(exc, args).splitlines())   # one line, whatever the message held
        print(f"kyara {command_name(args)}: {message}", file=sys.stderr)
        return 2
