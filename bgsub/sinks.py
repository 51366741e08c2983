"""Where results go: video files, a folder of mask images, a CSV of statistics.

Every output is a :class:`Sink`: ``write(result)`` takes one
:class:`~bgsub.step.FrameResult`, ``close()`` finishes the file.  A new
output is one new class.  :class:`SinkWriter` runs a list of sinks in a
thread of its own, so encoding overlaps masking.

The codec of a video follows the file extension:

========================  ========  ==========================================
extension                 codec     note
========================  ========  ==========================================
``.mp4``, ``.m4v``,       mp4v      MPEG-4 part 2, plays everywhere
``.mov``, ``.mkv``
``.avi``                  MJPG      Motion JPEG: larger, every frame a key frame
========================  ========  ==========================================

Every output's path is checked before processing starts (known extension,
writable folder), and :class:`SinkWriter` closes every file on the way out,
so a run that is interrupted leaves complete, playable files.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from .display import DrawFn, annotated
from .priority import lower_this_thread
from .step import FrameResult

__all__ = ["SinkError", "Sink", "VideoSink", "AnnotatedVideoSink", "MaskVideoSink",
           "BackgroundVideoSink", "ProbabilityVideoSink", "MaskDirSink", "StatsSink",
           "SinkWriter", "CODECS", "check_output_file", "check_writable_file",
           "check_output_dir"]

CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


class SinkError(Exception):
    """An output that cannot be written (a user error)."""


def check_output_file(path: str | Path, option: str) -> Path:
    """Fail early, before any frame is processed, if *path* cannot be a video output."""
    path = Path(path)
    if path.suffix.lower() not in CODECS:
        raise SinkError(f"{option} {path}: unknown video extension {path.suffix or '(none)'!r} "
                        f"(expected one of {', '.join(CODECS)})")
    return check_writable_file(path, option)


def check_writable_file(path: str | Path, option: str) -> Path:
    """Fail early if *path* cannot be created or overwritten."""
    path = Path(path)
    if path.is_dir():
        raise SinkError(f"{option} {path}: is a folder (expected a file name)")
    if path.is_symlink() and not path.exists():
        raise SinkError(f"{option} {path}: is a link to {os.readlink(path)}, which does not "
                        "exist (expected a file name)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise SinkError(f"{option} {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or path.exists() and not os.access(path, os.W_OK):
        raise SinkError(f"{option} {path}: cannot be written (permission denied)")
    return path


def check_output_dir(path: str | Path, option: str) -> Path:
    """Create *path* if needed and fail early if it cannot hold the masks."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SinkError(f"{option} {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"{option} {path}: cannot create the folder ({exc.strerror})") from None
    if not os.access(path, os.W_OK):
        raise SinkError(f"{option} {path}: cannot be written (permission denied)")
    return path


class Sink:
    """An output: ``write(result)`` for each frame, then ``close()``.

    ``needs`` names what the results must carry beyond the mask
    (``"background"``, ``"probability"``): the frame step computes them only
    when some sink needs them.  ``option`` names the output in messages.
    """

    needs: frozenset[str] = frozenset()
    option = "output"

    def write(self, result: FrameResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output; errors raise."""


class VideoSink(Sink):
    """A video file, opened on the first frame with that frame's size.

    Subclasses say which image of a result goes in (:meth:`image`).
    """

    def __init__(self, path: Path, fps: float, option: str) -> None:
        self.path = path
        self.fps = fps
        self.option = option
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def image(self, result: FrameResult) -> np.ndarray:
        raise NotImplementedError

    def write(self, result: FrameResult) -> None:
        self.write_image(self.image(result))

    def write_image(self, image: np.ndarray) -> None:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        h, w = image.shape[:2]
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*CODECS[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise SinkError(f"{self.option} {self.path}: OpenCV cannot open a "
                                f"{CODECS[self.path.suffix.lower()]} writer for it")
            self._size = (w, h)
        elif (w, h) != self._size:
            # a file keeps one size: later frames of another size are scaled to it
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class AnnotatedVideoSink(VideoSink):
    """The frame with its foreground tinted and boxed (``--output``).

    Drawn with *draw* (:func:`bgsub.display.annotate` with the display's
    settings) in the writer's thread, unless a window drew it already.
    """

    def __init__(self, path: Path, fps: float, option: str, draw: DrawFn) -> None:
        super().__init__(path, fps, option)
        self.draw = draw

    def image(self, result: FrameResult) -> np.ndarray:
        return annotated(result, self.draw)


class MaskVideoSink(VideoSink):
    """The mask (``--mask-output``)."""

    def image(self, result: FrameResult) -> np.ndarray:
        return result.mask


class BackgroundVideoSink(VideoSink):
    """The background model's image (``--background-output``)."""

    needs = frozenset({"background"})

    def image(self, result: FrameResult) -> np.ndarray:
        return result.background


class ProbabilityVideoSink(VideoSink):
    """The soft foreground probability, 255 = surely foreground (``--probability-output``)."""

    needs = frozenset({"probability"})

    def image(self, result: FrameResult) -> np.ndarray:
        return np.rint(result.probability * 255.0).astype(np.uint8)


class StatsSink(Sink):
    """A CSV file, one row per processed frame (written as frames come, flushed on close)."""

    HEADER = "frame,foreground_fraction,log_likelihood,recovering\n"

    def __init__(self, path: Path, option: str = "--stats") -> None:
        self.path = path
        self.option = option
        self.frames = 0
        try:
            self._file = open(path, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise SinkError(f"{option} {path}: cannot be written ({exc.strerror})") from None
        self._file.write(self.HEADER)

    def write(self, result: FrameResult) -> None:
        self._file.write(f"{result.index},{result.foreground_fraction:.6f},"
                         f"{result.log_likelihood:.6f},{int(result.recovering)}\n")
        self.frames += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class MaskDirSink(Sink):
    """One image per frame, named by the frame's position in the source.

    The name is ``template.format(result.index + first)``: ``000000.png`` ...
    by default; CDnet's ``bin000001.png`` ... with ``template="bin{:06d}.png",
    first=1``.
    """

    def __init__(self, path: Path, option: str = "--mask-dir", template: str = "{:06d}.png",
                 first: int = 0) -> None:
        self.path = path
        self.option = option
        self.template = template
        self.first = first
        self.frames = 0

    def write(self, result: FrameResult) -> None:
        target = self.path / self.template.format(result.index + self.first)
        if not cv2.imwrite(str(target), result.mask):
            raise SinkError(f"{self.option} {self.path}: cannot write {target.name}")
        self.frames += 1


_STOP = object()


class SinkWriter:
    """Write results to *sinks* in a thread with a bounded queue; close every sink at the end.

    A consumer of the pipeline: ``write(result)`` queues a result (a full
    queue makes it wait: nothing is dropped).  An error in the thread is
    raised by the next ``write`` or by ``close``.  The thread runs *nice*
    steps below the priority it starts with (Linux; see
    :mod:`bgsub.priority`).
    """

    def __init__(self, sinks: Iterable[Sink] = (), queue_size: int = 32, nice: int = 0) -> None:
        self.sinks = [s for s in sinks if s is not None]
        self.nice = nice
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bgsub-writer", daemon=True)
        self._thread.start()

    @property
    def needs(self) -> frozenset[str]:
        return frozenset().union(*(s.needs for s in self.sinks))

    @property
    def active(self) -> bool:
        return bool(self.sinks)

    def _run(self) -> None:
        lower_this_thread(self.nice)
        while True:
            result = self._queue.get()
            if result is _STOP:
                return
            if self._error is not None:
                continue  # drain: the error is reported by the main thread
            try:
                for sink in self.sinks:
                    sink.write(result)
            except OSError as exc:  # a full disk, a vanished folder: tell the user plainly
                self._error = SinkError(f"writing frame {result.index} failed: {exc}")
            except BaseException as exc:
                self._error = exc

    def write(self, result: FrameResult) -> None:
        if self._error is not None:
            raise self._error
        if self.sinks:
            self._queue.put(result)

    def close(self) -> None:
        """Write what is queued, then close every sink (also after an error)."""
        self._queue.put(_STOP)
        self._thread.join()
        for sink in self.sinks:
            sink.close()
        if self._error is not None:
            raise self._error
