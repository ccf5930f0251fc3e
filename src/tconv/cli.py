"""The ``tconv`` command line: one subcommand per module in :mod:`tconv.commands`.

Each ``tconv/commands/<name>.py`` defines ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Errors the user can fix (:class:`TconvError`) print one line
on stderr and exit 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tconv.errors import TconvError

COMMANDS = ("explain", "shape", "draw", "translate", "unet", "bench", "serve")


def _available():
    for name in COMMANDS:
        try:
            yield name, importlib.import_module(f"tconv.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"tconv.commands.{name}":
                raise


class _Parser(argparse.ArgumentParser):
    """argparse, whose errors are one line on stderr (``tconv draw: error: ...``), exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tconv", description="Transposed convolution, exact and explained, in every framework's dialect.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in _available():
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
                           epilog=getattr(module, "EPILOG", None),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except TconvError as exc:
        if args.debug:
            raise
        print(f"tconv {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the user named: missing, unwritable, a directory...
        if args.debug:
            raise
        print(f"tconv {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _one_line(exc: BaseException | str) -> str:
    # every whitespace run (newlines, form feeds a user typed...) as one space: one line
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
