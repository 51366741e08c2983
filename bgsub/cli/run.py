"""``bgsub [run]``: mask a camera, a video file, an image folder or a stream.

The outputs are sinks (:mod:`bgsub.sinks`) written by one writer thread, the
window is one more consumer (:class:`bgsub.display.Window`), and the frames
go through the shared :class:`~bgsub.step.FrameStep` in
:func:`bgsub.pipeline.run_pipeline`.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

import cv2

from ..checkpoint import CheckpointError, Checkpointer
from ..display import Display, Window, drawer
from ..masker import MixtureMasker
from ..outputs import (SinkError, check_not_inputs, check_output_dir, check_output_file,
                       check_writable_file)
from ..pipeline import masker_threads, needs_of, run_pipeline
from ..progress import Progress
from ..sinks import (AnnotatedVideoSink, BackgroundVideoSink, MaskDirSink, MaskVideoSink,
                     ProbabilityVideoSink, SinkWriter, StatsSink)
from ..sources import IMAGE_EXTENSIONS, FrameReader, OpenCancelled, open_source
from ..step import FrameStep
from .common import UsageError, config_of, guarded, logging_to_stderr, stop_on_signals

__all__ = ["add_parser", "main"]

logger = logging.getLogger("bgsub")

DESCRIPTION = ("Real-time background subtraction with a per-pixel Gaussian mixture. Shows the "
               "frame (foreground tinted, boxes around blobs), the mask and the background "
               "model in a window; q or Esc quit, space pause, r reset the model, s save a "
               "snapshot.")
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
    p.add_argument("source", nargs="?",
                   help="video file, image folder (jpg/png/bmp/tif, sorted by name) or "
                        "stream URL (rtsp://, http://)")
    p.add_argument("--camera", type=int, metavar="N", help="read OpenCV camera N instead")
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
    p.set_defaults(run=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Run the parsed ``bgsub run`` arguments; return the exit status."""
    with logging_to_stderr(args.quiet, args.debug):
        return guarded(lambda: _run(args), args.debug, (CheckpointError,))


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


def _outputs(args: argparse.Namespace) -> dict[str, Path]:
    """Every output option given, checked before the first frame is read.

    An empty name is an error, and no output may be an input (the source
    file, folder or one of its images) or another output, under any name.
    """
    outputs = {}
    for opt, _ in _VIDEOS:
        value = getattr(args, opt[2:].replace("-", "_"))
        if value is not None:
            outputs[opt] = check_output_file(value, opt)
    if args.stats is not None:
        outputs["--stats"] = check_writable_file(args.stats, "--stats")
    if args.mask_dir is not None:
        outputs["--mask-dir"] = Path(args.mask_dir)
        if not args.mask_dir.strip():
            check_output_dir(args.mask_dir, "--mask-dir")  # says what is wrong
    if args.save_model is not None:
        outputs["--save-model"] = check_writable_file(args.save_model, "--save-model")
    inputs = _inputs(args.source)
    if args.load_model is not None:
        inputs.append(Path(args.load_model))  # saving over the loaded model is fine
        outputs_checked = {k: v for k, v in outputs.items() if k != "--save-model"}
        check_not_inputs(outputs_checked, inputs)
        check_not_inputs({k: v for k, v in outputs.items() if k == "--save-model"},
                         _inputs(args.source))
    else:
        check_not_inputs(outputs, inputs)
    if args.mask_dir is not None:
        check_output_dir(args.mask_dir, "--mask-dir")
    return outputs


def _process(args: argparse.Namespace, stop) -> int:
    if args.source is None and args.camera is None:
        raise UsageError("no source given: expected a video file, an image folder, a stream "
                         "URL or --camera N (see bgsub --help)")
    if args.source is not None and args.camera is not None:
        raise UsageError("give either a source or --camera N, not both")
    if args.camera is not None and args.camera < 0:
        raise UsageError(f"--camera must be a camera index >= 0, got {args.camera}")
    config = config_of(args, ("width", "height", "fps"))
    outputs = _outputs(args)

    source = open_source(args.source, args.camera, config.source, stop)
    if stop.is_set():
        source.close()
        return 0
    fps = source.info.fps
    draw = drawer(config.display)
    reader = writer = window = checkpointer = None
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
            sinks = [cls(outputs[opt], fps, opt, draw) if cls is AnnotatedVideoSink
                     else cls(outputs[opt], fps, opt) for opt, cls in _VIDEOS if opt in outputs]
            if "--mask-dir" in outputs:
                sinks.append(MaskDirSink(outputs["--mask-dir"]))
            if "--stats" in outputs:
                sinks.append(StatsSink(outputs["--stats"]))
            writer = SinkWriter(sinks, config.output.queue_size, nice=config.pipeline.io_nice)
            stop.on_repeat.append(lambda count, writer=writer: _hurry(writer, count))
            reader = FrameReader(source, config.source.queue_size, nice=config.pipeline.io_nice)
            threads = masker_threads(config.pipeline.masker_threads, writes=writer.active)
            step = FrameStep.from_config(config, threads=threads,
                                         masker=_loaded(args.load_model, config, threads))
            if step.masker.frame_shape is not None:
                step.expect(step.masker.frame_shape, lambda shape: CheckpointError(
                    f"--load-model {args.load_model}: the model was saved for "
                    f"{_describe(step.masker.frame_shape)} frames; the source gives "
                    f"{_describe(shape)} frames"))
            consumers = []
            if not args.no_display:
                display = Display()
                reason = display.open()
                if reason is not None:
                    logger.warning("%s; running headless", reason)
                else:
                    # first: the frame it draws is shared with the writer
                    window = Window(display, config.display, draw, stop, step.reset)
                    consumers.append(window)
            consumers.append(writer)
            if args.save_model is not None and source.info.kind in ("camera", "stream"):
                checkpointer = Checkpointer(lambda: step.masker, outputs["--save-model"],
                                            config.output.checkpoint_every)
                consumers.append(checkpointer)
            needs = needs_of(consumers)
            step.background = "background" in needs
            step.probability = "probability" in needs
            progress = Progress(source.info.frame_count, quiet=args.quiet)
            summary = run_pipeline(reader, step, consumers, progress=progress, stop=stop)
        except BaseException:
            # the first error is the one to report: close quietly, then re-raise it
            _close(reader, source, writer, window, checkpointer, quiet=True)
            raise
        # the same way out for the end, q, Ctrl-C and SIGTERM: close everything
        _close(reader, source, writer, window, checkpointer, quiet=False)
    finally:
        cv2.setNumThreads(opencv_threads)
    if args.save_model is not None and step.masker.frame_shape is not None:
        try:
            step.masker.save(outputs["--save-model"])
        except OSError as exc:
            raise SinkError(f"--save-model {args.save_model}: cannot be written "
                            f"({exc.strerror})") from None
    line = summary.line()
    if source.drops:
        line += f", {source.drops} drops, {source.reconnects} reconnects"
    logger.info("%s", line)
    for name in (window.snapshots if window is not None else ()):
        logger.info("saved snapshot %s", name)
    return 0


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


def _loaded(path: str | None, config, threads: int) -> MixtureMasker | None:
    """The model of --load-model, or None; it brings its own [model] settings."""
    if path is None:
        return None
    masker = MixtureMasker.load(path, threads=threads)
    if masker.config != config.model:
        logger.warning("%s holds a model with other [model] settings than the configuration's;"
                       " the model's apply", path)
    return masker


def _close(reader, source, writer, window, checkpointer, quiet: bool) -> None:
    """Stop the threads and close every file; errors raise unless *quiet*."""
    if reader is not None:
        reader.close()
    else:
        source.close()
    try:
        for consumer in (writer, checkpointer):
            if consumer is not None:
                try:
                    consumer.close()
                except Exception:
                    if not quiet:
                        raise
    finally:
        if window is not None:
            window.close()
