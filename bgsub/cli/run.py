"""``bgsub [run]``: mask a camera, a video file, an image folder or a stream.

The outputs are sinks (:mod:`bgsub.io.sinks`) written by one writer thread, the
window is one more consumer (:class:`bgsub.io.display.Window`), and the frames
go through the shared :class:`~bgsub.model.step.FrameStep` in
:func:`bgsub.io.pipeline.run_pipeline`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

import cv2

from ..live.checkpointer import Checkpointer
from ..model.checkpoint import CheckpointError
from ..io.display import Display, Window, drawer
from ..live.events import LiveEvents
from ..live.server import LiveServer, ServeError, needs_token, new_token, parse_address
from ..model.masker import MixtureMasker
from ..files import (SinkError, check_not_inputs, check_output_dir, check_output_file,
                       check_writable_file)
from ..io.pipeline import masker_threads, needs_of, run_pipeline
from ..io.progress import Progress
from ..io.sinks import (AnnotatedVideoSink, BackgroundVideoSink, MaskDirSink, MaskVideoSink,
                     ProbabilityVideoSink, SinkWriter, StatsSink)
from ..io.sources import (IMAGE_EXTENSIONS, FrameReader, OpenCancelled, SourceError,
                          open_source)
from ..model.step import FrameStep
from .common import UsageError, config_of, run_command, stop_on_signals

__all__ = ["add_parser", "main"]

logger = logging.getLogger("bgsub")

DESCRIPTION = ("Real-time background subtraction with a per-pixel Gaussian mixture. Shows the "
               "frame (foreground tinted, boxes around blobs), the mask and the background "
               "model in a window, a row per source; q or Esc quit, space pause, r reset the "
               "models, s save a snapshot. With several sources, each output name holds {n}, "
               "the source's number from 0 (--output out-{n}.mp4).")
EPILOG = ("Video outputs take their codec from the extension: .mp4 .m4v .mov .mkv (mp4v), "
          ".avi (MJPG).  Ctrl-C or SIGTERM stops after the frames already read and closes "
          "every output; a second one drops the frames not yet written.  Exit status: 0 "
          "done, 1 internal error, 2 bad input or an output that failed, 130 SIGINT, "
          "143 SIGTERM.")

# the video outputs: option, sink class
_VIDEOS = (("--output", AnnotatedVideoSink), ("--mask-output", MaskVideoSink),
           ("--background-output", BackgroundVideoSink),
           ("--probability-output", ProbabilityVideoSink))


def add_parser(commands, parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = commands.add_parser("run", parents=[parent], help="mask a camera, file, folder or "
                            "stream (the default: bgsub SOURCE means bgsub run SOURCE)",
                            description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("source", nargs="*",
                   help="video file, image folder (jpg/png/bmp/tif, sorted by name) or "
                        "stream URL (rtsp://, http://); several run side by side")
    p.add_argument("--camera", type=int, action="append", default=[], metavar="N",
                   help="read OpenCV camera N (repeatable; cameras come before the other "
                        "sources)")
    p.add_argument("--width", type=int, help="camera frame width to request")
    p.add_argument("--height", type=int, help="camera frame height to request")
    p.add_argument("--fps", type=float, help="camera frame rate to request")
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
    p.add_argument("--load-model", metavar="FILE",
                   help="start from a model saved by --save-model (its [model] settings "
                        "apply) instead of learning the scene afresh")
    p.add_argument("--save-model", metavar="FILE",
                   help="save the model at the end, and every output.checkpoint_every "
                        "seconds of a camera or stream, for --load-model")
    p.add_argument("--events", metavar="FILE.jsonl",
                   help="append a JSON line as each motion event starts and as it ends "
                        "(the rules of [scan]), flushed at once")
    p.add_argument("--clips", metavar="DIR",
                   help="write a clip per event into DIR, from pre_roll before its motion")
    p.add_argument("--on-event", metavar="CMD",
                   help="run the shell command CMD at each event's start and end, with the "
                        "event's JSON on its stdin (in the background)")
    p.add_argument("--serve", metavar="HOST:PORT",
                   help="serve a page of the run in a browser at http://HOST:PORT/ (the "
                        "optional extra web): each source's view, mask, status and events, "
                        "with pause and reset; an address other than loopback needs a token")
    p.add_argument("--serve-token", metavar="TOKEN",
                   help="the token the page asks for (default: none on loopback, a fresh one "
                        "printed once elsewhere)")
    p.add_argument("--serve-linger", type=float, default=0.0, metavar="SECONDS",
                   help="keep serving the page this long after the sources end (default 0)")
    p.set_defaults(run=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Run the parsed ``bgsub run`` arguments; return the exit status."""
    return run_command(args, lambda: _run(args))


def _inputs(source: str | None) -> list[Path]:
    """The files a source reads: the file, or a folder and its images."""
    if not source or not Path(source).exists():
        return []
    path = Path(source)
    if path.is_dir():
        return [path, *(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)]
    return [path]


def _run(args: argparse.Namespace) -> int:
    with stop_on_signals() as stop:
        try:
            code = _process(args, stop)
        except OpenCancelled:
            code = 0  # the signal decides the exit status
    if stop.signum is not None:
        logger.info("stopped by %s; outputs are complete up to the last processed frame",
                    signal.Signals(stop.signum).name)
        return 128 + stop.signum
    return code


def _sources(args: argparse.Namespace) -> list[tuple[str | None, int | None]]:
    """(spec, camera) of each source: the cameras first, then the others, as given."""
    for index in args.camera:
        if index < 0:
            raise UsageError(f"--camera must be a camera index >= 0, got {index}")
    specs = [(None, index) for index in args.camera] + [(spec, None) for spec in args.source]
    if not specs:
        raise UsageError("no source given: expected a video file, an image folder, a stream "
                         "URL or --camera N (see bgsub --help)")
    return specs


def _named(value: str | None, n: int, many: bool, option: str) -> str | None:
    """An output's name for source *n*: ``{n}`` replaced; needed when there are several."""
    if value is None:
        return None
    if many and "{n}" not in value:
        path = Path(value)
        example = path.with_name(f"{path.stem}-{{n}}{path.suffix}")
        raise UsageError(f"{option} {value}: with several sources each output name needs {{n}}"
                         f", the source's number (e.g. {option} {example})")
    return value.replace("{n}", str(n))


def _folder(name: str, option: str) -> Path:
    """A folder output: an empty name is refused now; the folder is made once no input is
    among the outputs (see :func:`_outputs`)."""
    if not name.strip():
        check_output_dir(name, option)  # says what is wrong
    return Path(name)


def _model_input(name: str, option: str) -> Path:
    """--load-model: an input, kept apart from the outputs."""
    if not name.strip():  # Path("") is ".", which would be named instead
        raise UsageError(f"{option}: the name is empty (expected a model file written by "
                         "--save-model)")
    return Path(name)


# every output option of a source, in the order they are checked, with its check
_OUTPUTS = (*((option, check_output_file) for option, _ in _VIDEOS),
            ("--stats", check_writable_file), ("--mask-dir", _folder),
            ("--save-model", check_writable_file), ("--load-model", _model_input),
            ("--events", check_writable_file), ("--clips", _folder))


def _outputs(args: argparse.Namespace, specs) -> list[dict[str, Path]]:
    """Every output option of every source, checked before the first frame is read.

    An empty name is an error, and no output may be an input (a source file,
    folder or one of its images, a loaded model) or another output, under any
    name.  Saving over the model a source loads is allowed.
    """
    many = len(specs) > 1
    per_source = []
    for n, _ in enumerate(specs):
        names = {option: _named(getattr(args, option[2:].replace("-", "_")), n, many, option)
                 for option, _ in _OUTPUTS}
        per_source.append({option: check(names[option], option) for option, check in _OUTPUTS
                           if names[option] is not None})
    sources = [path for spec, _ in specs for path in _inputs(spec)]
    models = [o["--load-model"] for o in per_source if "--load-model" in o]
    written = {f"{opt} (source {n})" if many else opt: path
               for n, outputs in enumerate(per_source) for opt, path in outputs.items()
               if opt not in ("--load-model", "--save-model")}
    check_not_inputs(written, [*sources, *models])
    saved = {f"--save-model (source {n})" if many else "--save-model": o["--save-model"]
             for n, o in enumerate(per_source) if "--save-model" in o}
    check_not_inputs({**written, **saved}, sources)
    for outputs in per_source:
        for option in ("--mask-dir", "--clips"):
            if option in outputs:
                check_output_dir(outputs[option], option)
    return per_source


class _Channel:
    """One source's pipeline: its reader, frame step, writer and the rest (see :func:`_build`).

    The run (:meth:`run`) and the closing (:meth:`finish`) keep their outcome
    here: ``summary``, or ``error``.
    """

    def __init__(self, name: str, source, outputs: dict[str, Path], *, reader: FrameReader,
                 step: FrameStep, writer: SinkWriter, consumers: list,
                 events: LiveEvents | None = None,
                 checkpointer: Checkpointer | None = None) -> None:
        self.name = name
        self.source = source
        self.outputs = outputs
        self.reader = reader
        self.step = step
        self.writer = writer
        self.consumers = consumers
        self.events = events
        self.checkpointer = checkpointer
        self.summary = None
        self.error: BaseException | None = None

    def run(self, stop, progress) -> None:
        try:
            self.summary = run_pipeline(self.reader, self.step, self.consumers,
                                        progress=progress, stop=stop)
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def close(self, quiet: bool) -> None:
        """Stop the reader and close every output; errors raise unless *quiet*."""
        self.reader.close()
        for consumer in (self.writer, self.checkpointer, self.events):
            if consumer is not None:
                try:
                    consumer.close()
                except Exception:
                    if not quiet:
                        raise

    def finish(self) -> None:
        """Close every output, then save the model if the run went well; a failure becomes
        the channel's ``error`` (the first one is kept)."""
        try:
            self.close(quiet=False)
            if self.error is None:
                self.save_model()
        except Exception as exc:
            self.error = self.error or exc

    def save_model(self) -> None:
        path = self.outputs.get("--save-model")
        if path is not None and self.step.masker.frame_shape:
            try:
                self.step.masker.save(path)
            except OSError as exc:
                raise SinkError(f"--save-model {path}: cannot be written ({exc.strerror})"
                                ) from None


def _process(args: argparse.Namespace, stop) -> int:
    specs = _sources(args)
    config = config_of(args, ("width", "height", "fps"))
    outputs = _outputs(args, specs)
    server = _server(args, config, stop)  # listening before any source is opened
    opened: list = []  # (source, its outputs)
    try:
        try:
            for (spec, camera), out in zip(specs, outputs):
                source = open_source(spec, camera, config.source, stop)
                opened.append((source, out))
                if server is not None:
                    server.add_source(source.info.name, out.get("--clips"))
                if stop.is_set():
                    break
        except BaseException:
            for source, _ in opened:
                source.close()
            raise
        if stop.is_set():
            for source, _ in opened:
                source.close()
            return 0
        return _run_channels(args, config, opened, stop, server)
    finally:
        if server is not None:
            server.close(args.serve_linger)


def _server(args: argparse.Namespace, config, stop) -> LiveServer | None:
    """The started ``--serve`` server, or None; bad values are usage errors."""
    if args.serve is None:
        if args.serve_token is not None or args.serve_linger:
            raise UsageError("--serve-token and --serve-linger need --serve HOST:PORT")
        return None
    if not args.serve_linger >= 0:
        raise UsageError(f"--serve-linger must be seconds >= 0, got {args.serve_linger:g}")
    if args.serve_token is not None and not args.serve_token.strip():
        raise UsageError("--serve-token must not be empty")
    try:
        host, port = parse_address(args.serve)
        token = args.serve_token
        generated = token is None and needs_token(host)
        token = new_token() if generated else token
        server = LiveServer(host, port, token, drawer(config.display), stop)
        server.start()
    except ServeError as exc:
        raise UsageError(str(exc)) from None
    # the one line that shows a generated token (the command line's own is never shown)
    print(f"bgsub: serving {server.url}" + (f"?token={token}" if generated else ""),
          file=sys.stderr, flush=True)
    return server


def _run_channels(args, config, opened: list, stop, server=None) -> int:
    """Build a channel per opened source and run them; every source is closed on the way out."""
    draw = drawer(config.display)
    many = len(opened) > 1
    channels: list[_Channel] = []
    window = None
    # The reader, masker and writer threads are the run's parallelism.
    # OpenCV's own pool would add none (its calls here are short) and its
    # idle workers spin, taking CPU from those threads: on 2 cores the
    # pipeline ran 10% faster at 640x480 without it.  It stays off until the
    # writers have drained their queues: a pool made by a niced writer thread
    # would keep that thread's priority for the rest of the process.
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        try:
            if not args.no_display:
                display = Display()
                reason = display.open()
                if reason is not None:
                    logger.warning("%s; running headless", reason)
                else:
                    window = Window(display, config.display, draw, stop,
                                    lambda: [c.step.reset() for c in channels],
                                    [s.info.name for s, _ in opened] if many else None)
            writes = any(len(out) for _, out in opened)
            # the machine's cores, shared out between the sources' maskers
            threads = max(1, masker_threads(config.pipeline.masker_threads, writes)
                          // len(opened))
            for n, (source, out) in enumerate(opened):
                channels.append(_build(source, out, n, args, config, draw, threads, window,
                                       stop, server))
            if len(channels) == 1 and window is None:
                channel = channels[0]
                channel.run(stop, Progress(channel.source.info.frame_count, quiet=args.quiet))
            else:
                _run_in_threads(channels, window, stop, args.quiet)
            errors = [c.error for c in channels if c.error is not None]
            if errors and len(channels) == 1:
                raise errors[0]
        except BaseException:
            # the first error is the one to report: close quietly, then re-raise it
            for channel in channels:
                channel.close(quiet=True)
            for source, _ in opened[len(channels):]:  # opened, never started
                source.close()
            if window is not None:
                window.close()
            raise
        # the same way out for the end, q, Ctrl-C and SIGTERM: close everything
        for channel in channels:
            channel.finish()
        if window is not None:
            window.close()
    finally:
        cv2.setNumThreads(opencv_threads)
    for channel in channels:
        summary = channel.summary
        if (channel.error is None and summary is not None and not summary.processed
                and not stop.is_set()):
            # not one frame read: the video outputs were never opened, so nothing says
            # they are missing unless this does
            channel.error = SourceError(
                f"{channel.name}: no frame of it could be read ({summary.skipped} skipped: "
                "damaged, truncated or empty); the video outputs were not written")
    if not many and channels[0].error is not None:  # one source: its error is the run's
        raise channels[0].error
    failed = 0
    for channel in channels:
        if channel.error is not None:  # several sources: each failure named, the rest ran on
            failed += 1
            logger.error("%s: %s", channel.name,
                         str(channel.error).removeprefix(f"{channel.name}: "))
            continue
        line = channel.summary.line()
        if channel.events is not None:
            line += f", {channel.events.count} events"
        if channel.source.drops:
            line += f", {channel.source.drops} drops, {channel.source.reconnects} reconnects"
        logger.info("%s%s", f"{channel.name}: " if many else "", line)
    for name in (window.snapshots if window is not None else ()):
        logger.info("saved snapshot %s", name)
    return 2 if failed else 0


def _build(source, outputs: dict[str, Path], n: int, args, config, draw, threads: int,
           window, stop, server=None) -> _Channel:
    """One source's channel: its outputs, consumers, frame step and reader, complete.

    What the results must carry (the background, the raw mask, ...) is known
    from the consumers, so the step is made after them.  A failure closes
    what was opened here (not the source).
    """
    fps = source.info.fps
    sinks = [cls(outputs[opt], fps, opt, draw) if cls is AnnotatedVideoSink
             else cls(outputs[opt], fps, opt) for opt, cls in _VIDEOS if opt in outputs]
    if "--mask-dir" in outputs:
        sinks.append(MaskDirSink(outputs["--mask-dir"]))
    if "--stats" in outputs:
        sinks.append(StatsSink(outputs["--stats"]))
    writer = SinkWriter(sinks, config.output.queue_size, nice=config.pipeline.io_nice)
    events = checkpointer = None
    try:
        stop.on_repeat.append(lambda count: _hurry(writer, count))
        load = outputs.get("--load-model")
        masker = _loaded(load, config, threads)
        if masker is None:  # a new model, counting its absorption time in the source's rate
            masker = MixtureMasker(config.model, threads=threads, fps=fps)
        consumers: list = []
        if window is not None:
            consumers.append(window.feed(n))  # first: the frame it draws is shared
        consumers.append(writer)
        if "--events" in outputs or "--clips" in outputs or args.on_event or server is not None:
            events = LiveEvents(source.info.name, config, fps, outputs.get("--events"),
                                outputs.get("--clips"), args.on_event, stop=stop,
                                probe=masker.foreground_probability_at)
            consumers.append(events)
        if server is not None:
            events.subscribers.append(lambda record: server.event(n, record))
            # the step is made below, once the consumers say what results must carry
            consumers.append(server.feed(n, lambda: step.reset(), lambda: source.drops))
        if "--save-model" in outputs and source.info.kind in ("camera", "stream"):
            checkpointer = Checkpointer(lambda: masker, outputs["--save-model"],
                                        config.output.checkpoint_every)
            consumers.append(checkpointer)
        needs = needs_of(consumers)
        saved = masker.frame_shape  # a loaded model's: the source must give such frames
        step = FrameStep.from_config(
            config, masker=masker, keep_raw="raw_mask" in needs,
            background="background" in needs, probability="probability" in needs,
            blinking="blinking" in needs,
            other_shape=lambda shape: CheckpointError(
                f"--load-model {load}: the model was saved for {_describe(saved)} frames; "
                f"{source.info.name} gives {_describe(shape)} frames"))
        reader = FrameReader(source, config.source.queue_size, nice=config.pipeline.io_nice)
    except BaseException:
        for consumer in (writer, events, checkpointer):
            if consumer is not None:
                try:
                    consumer.close()
                except Exception:  # the first error is the one to report
                    pass
        raise
    return _Channel(source.info.name, source, outputs, reader=reader, step=step, writer=writer,
                    consumers=consumers, events=events, checkpointer=checkpointer)


def _run_in_threads(channels: list[_Channel], window, stop, quiet: bool) -> None:
    """Each source's pipeline in a thread; the window (or a wait) in this one."""
    many = len(channels) > 1
    threads = []
    for channel in channels:
        progress = Progress(channel.source.info.frame_count, quiet=quiet or window is not None,
                            desc=channel.name if many else None)
        thread = threading.Thread(target=channel.run, args=(stop, progress),
                                  name="bgsub-pipeline", daemon=True)
        thread.start()
        threads.append(thread)

    def running() -> bool:
        return any(t.is_alive() for t in threads)

    if window is not None:
        window.run(running)
    while running():  # joins with a timeout: signals are handled meanwhile
        for thread in threads:
            thread.join(0.1)


def _hurry(writer: SinkWriter, count: int) -> None:
    """A second (third, ...) signal: drop what is not written yet, never the outputs."""
    if count == 2:
        dropped = writer.hurry()
        logger.warning("signal again: dropping %d frames not yet written and closing the "
                       "outputs (they stay complete up to the last written frame)", dropped)
    else:
        logger.warning("still closing the outputs; they stay complete (SIGKILL would cost "
                       "them)")


def _describe(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]} " + ("grey" if len(shape) == 2 else "colour")


def _loaded(path: Path | None, config, threads: int) -> MixtureMasker | None:
    """The model of --load-model, or None; it brings its own [model] settings."""
    if path is None:
        return None
    masker = MixtureMasker.load(path, threads=threads)
    if masker.config != config.model:
        logger.warning("%s holds a model with other [model] settings than the configuration's;"
                       " the model's apply", path)
    return masker



