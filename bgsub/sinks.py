"""Where results go: video files and a folder of mask PNGs, written by a thread.

The codec follows the file extension:

========================  ========  ==========================================
extension                 codec     note
========================  ========  ==========================================
``.mp4``, ``.m4v``,       mp4v      MPEG-4 part 2, plays everywhere
``.mov``, ``.mkv``
``.avi``                  MJPG      Motion JPEG: larger, every frame a key frame
========================  ========  ==========================================

Every writer checks its path before processing starts (known extension,
writable folder), and :class:`SinkWriter` closes every file on the way out,
so a run that is interrupted leaves complete, playable files.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import cv2
import numpy as np

from .priority import lower_this_thread

__all__ = ["SinkError", "VideoSink", "MaskDirSink", "StatsSink", "SinkWriter", "CODECS",
           "check_output_file", "check_writable_file",
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


class VideoSink:
    """A video file, opened on the first frame with that frame's size."""

    def __init__(self, path: Path, fps: float, option: str) -> None:
        self.path = path
        self.fps = fps
        self.option = option
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def write(self, image: np.ndarray) -> None:
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


class StatsSink:
    """A CSV file, one row per processed frame (written as frames come, flushed on close)."""

    HEADER = "frame,foreground_fraction,log_likelihood,recovering\n"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames = 0
        try:
            self._file = open(path, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise SinkError(f"--stats {path}: cannot be written ({exc.strerror})") from None
        self._file.write(self.HEADER)

    def write_row(self, index: int, stats: tuple[float, float, bool]) -> None:
        fraction, log_likelihood, recovering = stats
        self._file.write(f"{index},{fraction:.6f},{log_likelihood:.6f},{int(recovering)}\n")
        self.frames += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class MaskDirSink:
    """One PNG per frame, named by the frame's zero-based index in the source."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames = 0

    def write_indexed(self, index: int, mask: np.ndarray) -> None:
        target = self.path / f"{index:06d}.png"
        if not cv2.imwrite(str(target), mask):
            raise SinkError(f"--mask-dir {self.path}: cannot write {target.name}")
        self.frames += 1

    def close(self) -> None:
        pass


_STOP = object()


class SinkWriter:
    """Write results in a thread with a bounded queue; close every file at the end.

    ``put(index, frame, mask, background, annotated)`` hands one frame's
    results over; each sink gets the image it asked for.  When the annotated
    frame is wanted but not given, the thread draws it with ``draw(frame,
    mask)``, off the masking thread.  A full queue makes ``put`` wait (nothing
    is dropped).  An error in the thread is raised by the next ``put`` or by
    ``close``.  The thread runs *nice* steps below the priority it
    starts with (Linux; see :mod:`bgsub.priority`).
    """

    def __init__(self, output: VideoSink | None = None, mask_output: VideoSink | None = None,
                 background_output: VideoSink | None = None, mask_dir: MaskDirSink | None = None,
                 queue_size: int = 32, draw=None, probability_output: VideoSink | None = None,
                 stats: StatsSink | None = None, nice: int = 0) -> None:
        self.draw = draw
        self.nice = nice
        self.probability_output = probability_output
        self.stats = stats
        self.output = output
        self.mask_output = mask_output
        self.background_output = background_output
        self.mask_dir = mask_dir
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bgsub-writer", daemon=True)
        self._thread.start()

    @property
    def wants_background(self) -> bool:
        return self.background_output is not None

    @property
    def wants_probability(self) -> bool:
        return self.probability_output is not None

    def _sinks(self):
        return (self.output, self.mask_output, self.background_output, self.mask_dir,
                self.probability_output, self.stats)

    @property
    def active(self) -> bool:
        return any(s is not None for s in self._sinks())

    def _run(self) -> None:
        lower_this_thread(self.nice)
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None:
                continue  # drain: the error is reported by the main thread
            index, frame, mask, background, annotated, probability, stats = item
            try:
                if self.output is not None:
                    self.output.write(annotated if annotated is not None
                                      else self.draw(frame, mask))
                if self.mask_output is not None:
                    self.mask_output.write(mask)
                if self.background_output is not None:
                    self.background_output.write(background)
                if self.mask_dir is not None:
                    self.mask_dir.write_indexed(index, mask)
                if self.probability_output is not None:
                    self.probability_output.write(
                        np.rint(probability * 255.0).astype(np.uint8))
                if self.stats is not None:
                    self.stats.write_row(index, stats)
            except OSError as exc:  # a full disk, a vanished folder: tell the user plainly
                self._error = SinkError(f"writing frame {index} failed: {exc}")
            except BaseException as exc:
                self._error = exc

    def put(self, index: int, frame, mask, background=None, annotated=None, probability=None,
            stats=None) -> None:
        if self._error is not None:
            raise self._error
        if self.active:
            self._queue.put((index, frame, mask, background, annotated, probability, stats))

    def close(self) -> None:
        """Write what is queued, then close every file (also after an error)."""
        self._queue.put(_STOP)
        self._thread.join()
        for sink in self._sinks():
            if sink is not None:
                sink.close()
        if self._error is not None:
            raise self._error
