"""The ``bgsub`` command: mask a camera, a video file, an image folder or a stream."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

import cv2

from . import __version__
from .config import Config, ConfigError, apply_overrides, load_config
from .display import Display
from .masker import MixtureMasker
from .pipeline import Progress, masker_threads, run_pipeline
from .sinks import (MaskDirSink, SinkError, SinkWriter, StatsSink, VideoSink,
                    check_output_dir, check_output_file, check_writable_file)
from .sources import FrameReader, SourceError, open_source

EXIT_USAGE = 2
EXIT_INTERNAL = 1


class UsageError(Exception):
    """A command-line mistake."""


class Interrupted(KeyboardInterrupt):
    """A second SIGINT or SIGTERM: stop waiting for the shutdown."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def add_config_arguments(p: argparse.ArgumentParser, example: str) -> None:
    """--config and --set, the same for every bgsub command."""
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="configuration file (default: ./config.toml if present, else built-in "
                        "defaults)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help=f"override one setting, e.g. --set {example} (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bgsub",
        description="Real-time background subtraction with a per-pixel Gaussian mixture. "
                    "Shows the frame (foreground tinted, boxes around blobs), the mask and "
                    "the background model in a window; q or Esc quit, space pause, r reset "
                    "the model, s save a snapshot.",
        epilog="Video outputs take their codec from the extension: .mp4 .m4v .mov .mkv "
               "(mp4v), .avi (MJPG).  Exit status: 0 done, 2 bad input, 130 SIGINT, "
               "143 SIGTERM.  'bgsub eval SEQ_DIR ...' scores against CDnet ground truth "
               "(bgsub eval --help).")
    p.add_argument("source", nargs="?",
                   help="video file, image folder (jpg/png/bmp/tif, sorted by name) or "
                        "stream URL (rtsp://, http://)")
    p.add_argument("--camera", type=int, metavar="N", help="read OpenCV camera N instead")
    p.add_argument("--width", type=int, help="camera frame width to request")
    p.add_argument("--height", type=int, help="camera frame height to request")
    p.add_argument("--fps", type=float, help="camera frame rate to request")
    add_config_arguments(p, "model.k=5")
    p.add_argument("--no-display", action="store_true", help="run without a window")
    p.add_argument("--output", metavar="FILE", help="write the annotated video")
    p.add_argument("--mask-output", metavar="FILE", help="write the mask video")
    p.add_argument("--background-output", metavar="FILE", help="write the background video")
    p.add_argument("--probability-output", metavar="FILE",
                   help="write the soft foreground probability as a grey video (255 = surely "
                        "foreground; costs time per frame)")
    p.add_argument("--stats", metavar="FILE",
                   help="write a CSV row per frame: frame, foreground_fraction, "
                        "log_likelihood, recovering")
    p.add_argument("--mask-dir", metavar="DIR",
                   help="write one PNG mask per frame read, named by the frame's zero-based "
                        "index (000000.png, ...)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    p.add_argument("--version", action="version", version=f"bgsub {__version__}")
    return p


def resolve_config(args: argparse.Namespace) -> Config:
    """--config FILE, else ./config.toml when present, else defaults; then overrides."""
    if args.config is not None:
        config = load_config(args.config)
    elif Path("config.toml").is_file():
        config = load_config("config.toml")
    else:
        config = Config()
    if args.set:
        config = apply_overrides(config, list(args.set))
    for name in ("width", "height", "fps"):  # the camera's options, where the command has them
        value = getattr(args, name, None)
        if value is not None:
            config = apply_overrides(config, [f"source.{name}={value}"], f"--{name}")
    return config


def main(argv: list[str] | None = None) -> int:
    """Run the command; return its exit status.

    ``bgsub eval ...`` is the evaluation command (:mod:`bgsub.evaluate_cli`)
    unless a file or folder named ``eval`` exists in the current folder: a
    path that exists is a source, as it always was.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "eval" and not Path("eval").exists():
        from .evaluate_cli import main as evaluate_main

        return evaluate_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    return guarded(lambda: _run(args), args.debug)


def guarded(run, debug: bool, user_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Call *run* and turn its errors into one line on stderr and an exit status.

    User errors (bad input: these, and *user_errors*) exit with 2, anything
    else is a bug and exits with 1; ``--debug`` (*debug*) shows the traceback.
    """
    if not debug:
        _quiet_opencv()
    try:
        return run()
    except (ConfigError, SourceError, SinkError, UsageError, *user_errors) as exc:
        if debug:
            traceback.print_exc()
        print(f"bgsub: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # a second Ctrl-C or SIGTERM during shutdown
        print("bgsub: interrupted", file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)
    except Exception as exc:  # a bug, not a user error: still one line unless --debug
        if debug:
            raise
        print(f"bgsub: internal error: {type(exc).__name__}: {exc} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


def _quiet_opencv() -> None:
    """Keep OpenCV's and FFmpeg's own log lines out of bgsub's one-line messages."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)


def _check_distinct(source: str | None, outputs: dict[str, Path]) -> None:
    """Refuse an output that would overwrite the source (file or image folder) or another output."""
    src = Path(source).resolve() if source and Path(source).exists() else None
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        resolved = path.resolve()
        if resolved == src:
            raise UsageError(f"{option} {path} is the source itself: refusing to overwrite it")
        if resolved in seen:
            raise UsageError(f"{option} {path} is also given to {seen[resolved]}: each output "
                             "needs its own file")
        seen[resolved] = option


def _run(args: argparse.Namespace) -> int:
    # Ctrl-C and SIGTERM only set a flag from here on, so that every way out goes
    # through the same shutdown and files are closed complete
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum, _frame):
        if received:  # a second signal while shutting down: give up waiting
            raise Interrupted(signum)
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = _process(args, stop, received)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        if not args.quiet:
            print(f"bgsub: stopped by {signal.Signals(received[0]).name}; outputs are complete "
                  "up to the last processed frame", file=sys.stderr)
        return 128 + received[0]
    return code


def _process(args: argparse.Namespace, stop: threading.Event, received: list[int]) -> int:
    if args.source is None and args.camera is None:
        raise UsageError("no source given: expected a video file, an image folder, a stream "
                         "URL or --camera N (see bgsub --help)")
    if args.source is not None and args.camera is not None:
        raise UsageError("give either a source or --camera N, not both")
    if args.camera is not None and args.camera < 0:
        raise UsageError(f"--camera must be a camera index >= 0, got {args.camera}")
    config = resolve_config(args)
    # every output is checked before the first frame is read
    outputs = {opt: check_output_file(path, opt) for opt, path in
               (("--output", args.output), ("--mask-output", args.mask_output),
                ("--background-output", args.background_output),
                ("--probability-output", args.probability_output)) if path}
    if args.stats:
        outputs["--stats"] = check_writable_file(args.stats, "--stats")
    if args.mask_dir:
        outputs["--mask-dir"] = Path(args.mask_dir)
    _check_distinct(args.source, outputs)
    mask_dir = check_output_dir(args.mask_dir, "--mask-dir") if args.mask_dir else None

    source = open_source(args.source, args.camera, config.source)
    if stop.is_set():
        source.close()
        return 0
    fps = source.info.fps

    def video(option):
        return VideoSink(outputs[option], fps, option) if option in outputs else None

    reader = writer = display = None
    summary = None
    # The reader, masker and writer threads are the run's parallelism.
    # OpenCV's own pool would add none (its calls here are short) and its
    # idle workers spin, taking CPU from those threads: on 2 cores the
    # pipeline ran 10% faster at 640x480 without it.  It stays off until the
    # writer has drained its queue: a pool made by the niced writer thread
    # would keep that thread's priority for the rest of the process.
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        try:
            writer = SinkWriter(output=video("--output"), mask_output=video("--mask-output"),
                                background_output=video("--background-output"),
                                mask_dir=MaskDirSink(mask_dir) if mask_dir else None,
                                probability_output=video("--probability-output"),
                                stats=StatsSink(outputs["--stats"]) if "--stats" in outputs
                                else None,
                                queue_size=config.output.queue_size,
                                nice=config.pipeline.io_nice)
            reader = FrameReader(source, config.source.queue_size,
                                 nice=config.pipeline.io_nice)
            if not args.no_display:
                display = Display()
                reason = display.open()
                if reason is not None:
                    print(f"bgsub: {reason}; running headless", file=sys.stderr)
                    display = None
            progress = Progress(source.info.frame_count, quiet=args.quiet)
            masker = MixtureMasker(config.model, threads=masker_threads(
                config.pipeline.masker_threads, writes=writer.active))
            summary = run_pipeline(reader, masker, config, writer, display, progress, stop)
        except BaseException:
            # the first error is the one to report: close quietly, then re-raise it
            _close(reader, source, writer, display, quiet=True)
            raise
        # the same way out for the end, q, Ctrl-C and SIGTERM: close everything
        _close(reader, source, writer, display, quiet=False)
    finally:
        cv2.setNumThreads(opencv_threads)
    if not args.quiet:
        print(f"bgsub: {summary.line()}", file=sys.stderr)
        for name in summary.snapshots:
            print(f"bgsub: saved snapshot {name}", file=sys.stderr)
    return 0


def _close(reader, source, writer, display, quiet: bool) -> None:
    """Stop the threads and close every file; errors raise unless *quiet*."""
    if reader is not None:
        reader.close()
    else:
        source.close()
    try:
        if writer is not None:
            try:
                writer.close()
            except Exception:
                if not quiet:
                    raise
    finally:
        if display is not None:
            display.close()


if __name__ == "__main__":
    sys.exit(main())
