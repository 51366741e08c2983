"""What every bgsub command shares: exit statuses, errors, options, signals, logging.

A command is a module of this package with ``add_parser(commands, parent)``
and a function that runs the parsed arguments; :func:`bgsub.cli.main`
dispatches.  The command decides what a person sees: library code logs to
the ``bgsub`` logger, and :func:`logging_to_stderr` shows those records as
``bgsub: ...`` lines, above a progress bar when one is live.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Callable, Iterator

import cv2
from tqdm import tqdm

from .._version import __version__
from ..config import apply_overrides, resolve_config
from ..errors import BgsubError
from ..io.sources import redact
from ..text import one_line
from .signals import take_swallowed

__all__ = ["EXIT_OK", "EXIT_INTERNAL", "EXIT_USAGE", "UsageError", "Parser", "StopRequest",
           "common_options", "config_of", "guarded", "stop_on_signals", "logging_to_stderr",
           "quiet_opencv", "run_command"]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2

logger = logging.getLogger("bgsub")


class UsageError(BgsubError):
    """A command-line mistake (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as bgsub's one-line errors (exit status 2)."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def _config_file(text: str) -> Path:
    """--config's file; an empty name is an error (``Path("")`` would be the folder ".")."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the name is empty (expected a TOML file such as "
                                          "config.toml)")
    return Path(text)


def common_options(example: str) -> Parser:
    """The options every command takes (a parent parser): --config, --set, --quiet, ..."""
    p = Parser(add_help=False)
    p.add_argument("--config", type=_config_file, metavar="FILE",
                   help="configuration file (default: ./config.toml if present, else built-in "
                        "defaults)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help=f"override one setting, e.g. --set {example} (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    p.add_argument("--version", action="version", version=f"bgsub {__version__}")
    return p


def config_of(args: argparse.Namespace, options: tuple[str, ...] = ()):
    """The configuration of a command: --config, --set, then *options* given as flags.

    Each name in *options* is a ``source`` setting with a flag of its own
    (``--width``), applied last and named by its flag in errors.
    """
    config = resolve_config(args.config, args.set)
    for name in options:
        value = getattr(args, name, None)
        if value is not None:
            config = apply_overrides(config, [f"source.{name}={value}"], f"--{name}")
    return config


def guarded(run: Callable[[], int], debug: bool) -> int:
    """Call *run* and turn its errors into one line on stderr and an exit status.

    The one place where a command's errors end: a :class:`~bgsub.errors.BgsubError`
    (bad input, whichever wing raised it) exits with its ``exit_status`` (2),
    anything else is a bug and exits with 1; ``--debug`` (*debug*) shows the
    traceback.  A Ctrl-C before the command has its own handlers (while it
    starts) exits with 130, quietly.
    """
    try:
        with quiet_opencv(not debug):
            return run()
    except BgsubError as exc:
        if debug:
            traceback.print_exc()
        logger.error("%s", exc)
        return exc.exit_status
    except KeyboardInterrupt as exc:  # before the command handles signals itself
        logger.error("interrupted", extra={"plain": True})
        return 128 + getattr(exc, "signum", signal.SIGINT)
    except Exception as exc:  # a bug, not a user error: still one line unless --debug
        if debug:
            raise
        logger.error("internal error: %s: %s (run with --debug for the traceback)",
                     type(exc).__name__, exc)
        return EXIT_INTERNAL


def run_command(args: argparse.Namespace, run: Callable[[], int]) -> int:
    """A command's body as every command runs it: messages as ``bgsub:`` lines, errors guarded."""
    with logging_to_stderr(args.quiet, args.debug):
        return guarded(run, args.debug)


_OPENCV_QUIET = {"OPENCV_FFMPEG_LOGLEVEL": "-8", "OPENCV_LOG_LEVEL": "SILENT"}  # AV_LOG_QUIET


@contextlib.contextmanager
def quiet_opencv(on: bool = True) -> Iterator[None]:
    """Keep OpenCV's and FFmpeg's own log lines out of bgsub's one-line messages.

    The environment and OpenCV's log level come back as they were on exit, so
    that calling a command in-process changes nothing for the caller.
    """
    if not on:
        yield
        return
    saved_env = {name: os.environ.get(name) for name in _OPENCV_QUIET}
    for name, value in _OPENCV_QUIET.items():
        os.environ.setdefault(name, value)
    cv_logging = getattr(getattr(cv2, "utils", None), "logging", None)
    saved_level = cv_logging.getLogLevel() if cv_logging is not None else None
    if cv_logging is not None:
        cv_logging.setLogLevel(cv_logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if cv_logging is not None:
            cv_logging.setLogLevel(saved_level)


class StopRequest(threading.Event):
    """Set by the first SIGINT or SIGTERM; ``signum`` says which.

    Later signals call ``on_repeat`` (each callable, with the count of
    signals so far), never raise: a second Ctrl-C must not cost the outputs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.signum: int | None = None
        self.count = 0
        self.on_repeat: list[Callable[[int], None]] = []


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """SIGINT and SIGTERM set the yielded event instead of raising, so that every way
    out goes through the same shutdown and files are closed complete.

    The first signal asks the run to stop: it finishes the frames already
    read and closes every output.  Later ones call the event's ``on_repeat``
    callbacks (the run command drops the frames not yet written and says that
    it is closing the files); none aborts the shutdown.  The previous handlers
    come back on exit.
    """
    stop = StopRequest()

    def on_signal(signum, _frame):
        stop.count += 1
        if stop.is_set():
            for callback in list(stop.on_repeat):
                callback(stop.count)
            return
        stop.signum = signum
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    swallowed = take_swallowed()  # a signal while the command loaded: stop at once
    if swallowed is not None:
        on_signal(swallowed, None)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # no stream password in any message, and one record one line whatever
        # the names in it hold
        message = one_line(redact(record.getMessage()))
        if getattr(record, "plain", False):  # a message that is its own kind
            return f"bgsub: {message}"
        if record.levelno >= logging.ERROR:
            return f"bgsub: error: {message}"
        if record.levelno >= logging.WARNING:
            return f"bgsub: warning: {message}"
        return f"bgsub: {message}"


class _TqdmHandler(logging.Handler):
    """One line per record on stderr, written above a live progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        if sys.stderr is None:  # no stderr at all (pythonw, a service): nothing to show
            return
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # a closed stderr must not stop the run
            pass


@contextlib.contextmanager
def logging_to_stderr(quiet: bool = False, debug: bool = False) -> Iterator[None]:
    """Show the ``bgsub`` logger's records on stderr as ``bgsub: ...`` lines.

    Info lines (progress in a log file, the summary) only without *quiet*;
    warnings and errors always.  The logger's former state comes back on exit.
    """
    handler = _TqdmHandler()
    handler.setFormatter(_Formatter())
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
