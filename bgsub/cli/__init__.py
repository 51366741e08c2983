"""The ``bgsub`` command: one module per subcommand, argparse subcommands.

``bgsub SOURCE`` (and every option without a command) means ``bgsub run
SOURCE``; ``bgsub eval SEQ_DIR...`` scores on CDnet ground truth; ``bgsub
scan INPUT...`` finds the motion events in recorded video.  See
:mod:`bgsub.cli.common` for what the commands share.
"""

from __future__ import annotations

import sys

from . import evaluate, run, scan
from .common import EXIT_USAGE, Parser, UsageError, common_options

__all__ = ["main", "build_parser", "COMMANDS"]

#: the subcommands, by name
COMMANDS = {"run": run, "eval": evaluate, "scan": scan}


def build_parser() -> Parser:
    """The top-level parser, with a subparser per command."""
    parser = Parser(prog="bgsub", description="Real-time background subtraction with a "
                    "per-pixel Gaussian mixture.",
                    epilog="bgsub SOURCE [options] is short for bgsub run SOURCE [options]; "
                           "bgsub COMMAND --help describes a command.")
    parent = common_options("model.k=5")
    parser.add_argument("--version", action="version",
                        version=parent._option_string_actions["--version"].version)
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND",
                                     parser_class=Parser)
    for module in COMMANDS.values():
        module.add_parser(commands, parent)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line *argv* (default ``sys.argv[1:]``); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help", "--version"):
        argv.insert(0, "run")  # bgsub SOURCE ... is bgsub run SOURCE ...
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"bgsub: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return args.run(args)
