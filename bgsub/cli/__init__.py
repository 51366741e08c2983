"""The ``bgsub`` command: one module per subcommand, argparse subcommands.

``bgsub SOURCE`` (and every option without a command) means ``bgsub run
SOURCE``; ``bgsub eval SEQ_DIR...`` scores on CDnet ground truth; ``bgsub
scan INPUT...`` finds the motion events in recorded video.  See
:mod:`bgsub.cli.common` for what the commands share.

The commands are imported when one runs, not with this package: a Ctrl-C
while NumPy, Numba and OpenCV load (the first half second) exits quietly
with 130 instead of printing a traceback of the imports.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

from .signals import (Signalled, keep_swallowed_signals, raised_signal, signalled,
                      take_swallowed)

__all__ = ["main", "entry", "build_parser", "COMMANDS"]

#: the subcommands: name -> module of this package
COMMANDS = {"run": "run", "eval": "evaluate", "scan": "scan"}


def build_parser():
    """The top-level parser, with a subparser per command."""
    from .common import Parser, common_options

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
        importlib.import_module(f".{module}", __name__).add_parser(commands, parent)
    return parser


def _standard_streams() -> None:
    """Give closed standard descriptors /dev/null (``2>&-``, a service).

    Otherwise the next file opened takes descriptor 2 and whatever a library
    writes to stderr lands in that file: an output video, say.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def main(argv: list[str] | None = None) -> int:
    """Run the command line *argv* (default ``sys.argv[1:]``); return the exit status."""
    _standard_streams()
    try:
        from .common import UsageError
        from ..text import one_line

        argv = sys.argv[1:] if argv is None else list(argv)
        if not argv or argv[0] not in (*COMMANDS, "-h", "--help", "--version"):
            argv.insert(0, "run")  # bgsub SOURCE ... is bgsub run SOURCE ...
        try:
            args = build_parser().parse_args(argv)
        except UsageError as exc:
            if sys.stderr is not None:
                print(f"bgsub: error: {one_line(exc)}", file=sys.stderr)
            return exc.exit_status
    except KeyboardInterrupt as exc:  # Ctrl-C while the libraries load
        return 128 + getattr(exc, "signum", signal.SIGINT)
    except ImportError:
        # NumPy turns a Ctrl-C that lands while its C extensions load into "Importing
        # the numpy C-extensions failed", an ImportError that no longer carries it
        signum = raised_signal()
        if signum is None:
            raise
        return 128 + signum
    swallowed = take_swallowed()  # a Ctrl-C that landed in the imports
    if swallowed is not None:
        return 128 + swallowed
    return args.run(args)


def entry() -> None:
    """The ``bgsub`` program: :func:`main`, then exit with its status.

    Outside a run's own handling (while the libraries load, and after the
    outputs are closed), SIGINT and SIGTERM end the program with 130 or 143
    and no traceback; during the run they stop it cleanly (see
    :func:`bgsub.cli.common.stop_on_signals`).  A signal that lands where
    Python cannot raise (a callback of the import machinery) stops the command
    at its next chance, with no "Exception ignored" traceback.  A signal that
    arrives just after the run never kills the process or changes its exit
    status.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signalled)
    sys.unraisablehook = keep_swallowed_signals(sys.unraisablehook)
    try:
        code = main()
    except Signalled as exc:
        code = 128 + exc.signum
    # Every output is closed by now.  Python's own shutdown would put the default
    # handlers back and take a while (threads, modules): a signal then would kill
    # the process and lose the exit status.  So flush and leave at once.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed or missing stream
            pass
    os._exit(code)
