"""Where results go: video files, a folder of mask images, a CSV of statistics.

Every output is a :class:`Sink`: ``write(result)`` takes one
:class:`~bgsub.model.step.FrameResult`, ``close()`` finishes the file.  A new
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

Files are written as :mod:`bgsub.files` says: under a partial name, then
renamed once complete.  A video is read back before it is renamed (OpenCV's
writer does not report a full disk), so an output under its own name is
always complete and playable; a sink that cannot finish says so with a
:class:`SinkError` naming its option and file.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from .display import DrawFn, annotated
from ..files import (CODECS, SinkError, check_output_dir, check_output_file,
                      check_writable_file, disk_full, is_regular, partial_path,
                      write_atomically)
from .priority import lower_this_thread
from ..model.step import FrameResult

__all__ = ["SinkError", "Sink", "VideoSink", "AnnotatedVideoSink", "MaskVideoSink",
           "BackgroundVideoSink", "ProbabilityVideoSink", "MaskDirSink", "StatsSink",
           "SinkWriter", "CODECS", "check_output_file", "check_writable_file",
           "check_output_dir"]

logger = logging.getLogger("bgsub")

_DISK_CHECK = 64  # frames between two looks at the free space of a video's disk


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
        """Finish the output; errors raise (a :class:`SinkError` naming the output)."""


class VideoSink(Sink):
    """A video file, opened on the first frame with that frame's size.

    Subclasses say which image of a result goes in (:meth:`image`).  Written
    under a partial name; :meth:`close` reads the file back (it opens, holds
    every frame, and its last frame decodes) and only then gives it its name.
    """

    def __init__(self, path: Path, fps: float, option: str, tell_size: bool = True) -> None:
        self.path = path
        self.fps = fps
        self.option = option
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        #: the frame size of the file as read back, once closed
        self.written_size: tuple[int, int] | None = None
        self._tell_size = tell_size  # warn when the written size is not the frames'?
        self._target = partial_path(path) if is_regular(path) else path

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
            self._writer = cv2.VideoWriter(str(self._target), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                raise SinkError(f"{self.option} {self.path}: OpenCV cannot open a "
                                f"{CODECS[self.path.suffix.lower()]} writer for it")
            self._size = (w, h)
        elif (w, h) != self._size:
            # a file keeps one size: later frames of another size are scaled to it
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self.frames += 1
        if self.frames % _DISK_CHECK == 0 and disk_full(self._target):
            raise SinkError(f"{self.option} {self.path}: the disk is full "
                            f"({self.frames} frames written)")

    def close(self) -> None:
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if self._target == self.path:
            return  # not a regular file (/dev/null, a pipe): nothing to read back
        problem = self._read_back()
        if problem is not None:
            _remove(self._target)
            raise SinkError(f"{self.option} {self.path}: {problem}; the video was not "
                            "written (is the disk full?)")
        os.replace(self._target, self.path)
        if self._tell_size and self.written_size is not None and self.written_size != self._size:
            # the encoders take even sizes only: OpenCV drops an odd last row or column
            logger.warning("%s %s: written %dx%d, the frames are %dx%d (the video encoder "
                           "takes even sizes only: the last row or column is left out)",
                           self.option, self.path, *self.written_size, *self._size)

    def _read_back(self) -> str | None:
        """What is wrong with the written file, or None when it holds every frame."""
        cap = cv2.VideoCapture(str(self._target), cv2.CAP_FFMPEG)
        try:
            if not cap.isOpened():
                return f"the file of {self.frames} frames cannot be read back"
            self.written_size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                                 int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            if count < self.frames - 1:  # an estimated count may be short by one
                return f"only {count:.0f} of its {self.frames} frames can be read back"
            cap.set(cv2.CAP_PROP_POS_FRAMES, max(0, self.frames - 2))
            if not any(cap.read()[0] for _ in range(2)):
                return f"its last frames (of {self.frames}) cannot be read back"
        finally:
            cap.release()
        return None

    def abandon(self) -> None:
        """Drop the output: nothing is written under its name."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._target != self.path:
            _remove(self._target)


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class AnnotatedVideoSink(VideoSink):
    """The frame with its foreground tinted and boxed (``--output``).

    Drawn with *draw* (:func:`bgsub.io.display.annotate` with the display's
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
    """A CSV file, one row per processed frame (renamed into place on close)."""

    HEADER = "frame,foreground_fraction,log_likelihood,recovering\n"

    def __init__(self, path: Path, option: str = "--stats") -> None:
        self.path = path
        self.option = option
        self.frames = 0
        self._target = partial_path(path) if is_regular(path) else path
        try:
            self._file = open(self._target, "w", encoding="utf-8", newline="")
            self._file.write(self.HEADER)
        except OSError as exc:
            raise SinkError(f"{option} {path}: cannot be written ({exc.strerror})") from None

    def write(self, result: FrameResult) -> None:
        self._file.write(f"{result.index},{result.foreground_fraction:.6f},"
                         f"{result.log_likelihood:.6f},{int(result.recovering)}\n")
        self.frames += 1

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._file.close()
            if self._target != self.path:
                os.replace(self._target, self.path)
        except OSError as exc:
            if self._target != self.path:
                _remove(self._target)
            raise SinkError(f"{self.option} {self.path}: cannot be written "
                            f"({exc.strerror})") from None


class MaskDirSink(Sink):
    """One image per frame, named by the frame's position in the source.

    The name is ``template.format(result.index + first)``: ``000000.png`` ...
    by default; CDnet's ``bin000001.png`` ... with ``template="bin{:06d}.png",
    first=1``.  Each file is written whole or not at all.
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
        ok, data = cv2.imencode(target.suffix, result.mask)
        if not ok:
            raise SinkError(f"{self.option} {self.path}: cannot encode {target.name}")
        try:
            write_atomically(target, data.tobytes())
        except OSError as exc:  # a full disk, a vanished folder
            raise SinkError(f"{self.option} {self.path}: writing {target.name} failed "
                            f"({exc.strerror or exc})") from None
        self.frames += 1


_STOP = object()


class SinkWriter:
    """Write results to *sinks* in a thread with a bounded queue; close every sink at the end.

    A consumer of the pipeline: ``write(result)`` queues a result (a full
    queue makes it wait: nothing is dropped).  An error in the thread is
    raised by the next ``write`` or by ``close``.  The thread runs *nice*
    steps below the priority it starts with (Linux; see
    :mod:`bgsub.io.priority`).
    """

    def __init__(self, sinks: Iterable[Sink] = (), queue_size: int = 32, nice: int = 0) -> None:
        self.sinks = [s for s in sinks if s is not None]
        self.nice = nice
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._failed: Sink | None = None
        self._hurry = threading.Event()
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
            if self._error is not None or self._hurry.is_set():
                continue  # drain: an error is reported by the main thread
            for sink in self.sinks:
                try:
                    sink.write(result)
                except OSError as exc:  # a full disk, a vanished folder: tell the user plainly
                    name = " ".join(str(part) for part in (sink.option, getattr(sink, "path", ""))
                                    if part)
                    self._fail(sink, SinkError(f"{name}: writing frame {result.index} failed "
                                               f"({exc.strerror or exc})"))
                    break
                except BaseException as exc:
                    self._fail(sink, exc)
                    break

    def _fail(self, sink: Sink, error: BaseException) -> None:
        """The first error stops the writing; the failed sink writes nothing more."""
        self._error = error
        self._failed = sink

    def write(self, result: FrameResult) -> None:
        if self._error is not None:
            raise self._error
        if self.sinks:
            self._queue.put(result)

    def hurry(self) -> int:
        """Drop the results still queued (a second Ctrl-C); return how many.

        The sinks keep what they have written and are closed as usual.
        """
        self._hurry.set()
        return self._queue.qsize()

    def close(self) -> None:
        """Write what is queued, then close every sink (also after an error).

        Every sink is closed even when one fails; the first error is raised.
        """
        self._queue.put(_STOP)
        self._thread.join()
        for sink in self.sinks:
            try:
                if sink is self._failed:
                    getattr(sink, "abandon", sink.close)()
                else:
                    sink.close()
            except BaseException as exc:
                self._error = self._error or exc
        if self._error is not None:
            raise self._error
