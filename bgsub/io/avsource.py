"""Video files decoded by PyAV (FFmpeg's libraries), for scanning recordings fast.

OpenCV's reader (:mod:`bgsub.io.sources`) converts every frame to full-size
BGR; when a scan looks at a 1080p recording 640 pixels wide, or at one
frame in three, most of that work is thrown away.  :class:`VideoFile`
converts only the frames it returns, straight from the decoder's YUV to
BGR at the size they are scored at (one pass of FFmpeg's scaler, area
averaging), lets FFmpeg decode with its own threads, and seeks to a start
position instead of decoding up to it.

Frames are numbered by their position in the file, counted from the first
(as OpenCV and DVR-Scan number them); after a seek, the first frame's
number comes from its timestamp.  :class:`NumberedReader` hands each
result's number on through the pipeline, so skipped frames leave gaps in
the numbering rather than shift it.
"""

from __future__ import annotations

import collections
import logging
import math
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..files import local_url, not_a_file
from .sources import CorruptFrame, Source, SourceError, SourceInfo, invalid_header

__all__ = ["VideoFile", "NumberedReader", "auto_downscale", "AUTO_WIDTH"]

logger = logging.getLogger("bgsub")

#: ``scan.downscale = 0`` scores frames at most this wide: the post-processing's
#: sizes suit frames of 160 to 640 pixels (config.toml, [postprocess])
AUTO_WIDTH = 640


def auto_downscale(width: int) -> int:
    """The smallest integer factor that makes *width* at most :data:`AUTO_WIDTH`."""
    return max(1, math.ceil(width / AUTO_WIDTH))


class VideoFile(Source):
    """A video file's frames, as uint8 BGR, scaled down and skipped as asked.

    Parameters
    ----------
    path : str or Path
        The file.
    downscale : int
        Frames come ``downscale`` times smaller each way (``width //
        downscale`` by ``height // downscale``); 0 picks
        :func:`auto_downscale`.
    frame_skip : int
        Frames skipped after each frame returned; skipped frames are decoded
        (later frames depend on them) but never converted.
    first, last : int, optional
        The first and last frame to return (zero-based, inclusive; ``last``
        None: to the end).
    threads : int
        FFmpeg's decoding threads (0: as many as it likes).

    Raises
    ------
    SourceError
        When the file cannot be opened or holds no video.
    """

    def __init__(self, path: str | Path, *, downscale: int = 1, frame_skip: int = 0,
                 first: int = 0, last: int | None = None, threads: int = 0) -> None:
        # the frames are decoded lazily: limit() may still move first and last
        self.path = Path(path)
        kind = not_a_file(path)
        if kind is not None:  # opening a FIFO would wait for a writer, deaf to signals
            raise SourceError(f"{path}: is {kind} (expected a video file)")
        if _is_empty(path):  # as run says it (FFmpeg would say "Invalid data found ...")
            raise SourceError(f"{path}: the file is empty (expected a video file)")
        try:
            self._container = av.open(local_url(path), metadata_errors="ignore")
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
            reason = "its header is invalid" if invalid_header(exc) else _reason(exc)
            raise SourceError(f"{path}: not a video file that can be read ({reason})") \
                from None
        try:
            if not self._container.streams.video:
                raise SourceError(f"{path}: holds no video stream")
            stream = self._stream = self._container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = threads
            self.width, self.height = stream.codec_context.width, stream.codec_context.height
            if self.width <= 0 or self.height <= 0:
                raise SourceError(f"{path}: the video stream has no frame size")
        except BaseException:
            self._container.close()
            raise
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        fps = fps if math.isfinite(fps) and 0.5 <= fps <= 1000 else 25.0
        count = stream.frames
        if count <= 0 and stream.duration and stream.time_base:
            count = math.floor(float(stream.duration * stream.time_base) * fps + 0.5)
        if count <= 0 and self._container.duration and self._container.duration > 0:
            # the container's duration (WebM and Matroska give no stream's): the count
            # OpenCV announces for the same file, so a scan notices the same early end
            count = math.floor(self._container.duration / av.time_base * fps + 0.5)
        self.info = SourceInfo("file", str(path), fps, count if count > 0 else None)
        self.factor = downscale or auto_downscale(self.width)
        self.work_size = (max(1, self.width // self.factor), max(1, self.height // self.factor))
        #: source pixels per returned pixel, across and down
        self.scale = (self.width / self.work_size[0], self.height / self.work_size[1])
        self.first = max(0, first)
        self.last = last
        self.step = frame_skip + 1
        #: the number of the last frame decoded in the range, skipped or not
        self.last_number = self.first - 1
        #: packets the decoder rejected (each loses a frame or damages a few)
        self.decode_errors = 0
        #: damaged stretches, ``(first frame, frames)``: frames that could not be
        #: decoded, and those the header announces but the file lacks at its end
        self.damaged: list[tuple[int, int]] = []
        #: the numbers of frames returned and not yet claimed by a NumberedReader
        self.numbers: collections.deque[int] = collections.deque()
        self._frames = self._decode()

    def limit(self, first: int = 0, last: int | None = None) -> None:
        """Return frames *first* to *last* only (before the first ``read``)."""
        self.first = max(0, first)
        self.last = last
        self.last_number = self.first - 1

    @property
    def frames_in_range(self) -> int | None:
        """Frames from ``first`` to ``last`` (or the end), where known."""
        end = self.info.frame_count
        if self.last is not None:
            end = self.last + 1 if end is None else min(end, self.last + 1)
        return None if end is None else max(0, end - self.first)

    def _seek(self) -> bool:
        """Seek to the key frame at or before ``first``; whether the numbers come from timestamps."""
        stream = self._stream
        if self.first == 0 or not stream.time_base:
            return False
        target = (stream.start_time or 0) + math.floor(
            Fraction(self.first) / Fraction(self.info.fps) / stream.time_base)
        try:
            self._container.seek(target, stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError as exc:
            logger.debug("%s: seeking failed (%s); decoding from the start", self.path, exc)
            return False
        return True

    def _number(self, frame) -> int | None:
        stream = self._stream
        if frame.pts is None:
            return None
        seconds = float((frame.pts - (stream.start_time or 0)) * stream.time_base)
        return max(0, math.floor(seconds * self.info.fps + 0.5))

    def _decode(self):
        """Every decoded frame, with its number."""
        stream = self._stream
        number = None if self._seek() else -1
        failed = 0  # packets lost since the last frame: each a frame's position
        try:
            for packet in self._container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:
                    self.decode_errors += 1
                    failed += 1
                    logger.debug("%s: a packet could not be decoded: %s", self.path, exc)
                    continue
                for frame in frames:
                    if number is None:
                        number = self._number(frame)
                        if number is None:  # no timestamps to go by: start again, counting
                            self._container.seek(0, stream=stream)
                            number = -1
                            continue
                        failed = 0  # numbered by its timestamp: no position lost
                    else:
                        if failed:  # the lost frames keep their positions
                            self.damaged.append((number + 1, failed))
                            number += failed
                            failed = 0
                        number += 1
                    yield number, frame
        except av.error.FFmpegError as exc:
            # a damaged container: what came before stands
            self.decode_errors += 1
            logger.debug("%s: reading stopped early (%s)", self.path, _reason(exc))
        end = -1 if number is None else number + failed
        count = self.info.frame_count
        # containers estimating their count may claim a frame or two more than they hold
        if count is not None and count - (end + 1) > max(1, count // 100):
            self.damaged.append((end + 1, count - end - 1))
        elif failed:
            self.damaged.append((end - failed + 1, failed))

    def read(self) -> np.ndarray | None:
        width, height = self.work_size
        for number, frame in self._frames:
            if self.last is not None and number > self.last:
                break
            if number < self.first:
                continue
            self.last_number = number
            if (number - self.first) % self.step:
                continue
            if self.factor == 1:
                image = frame.to_ndarray(format="bgr24")
            else:
                image = frame.to_ndarray(format="bgr24", width=width, height=height,
                                         interpolation="AREA")
            self.numbers.append(number)
            return image
        return None

    def close(self) -> None:
        self._frames.close()
        self._container.close()


def _is_empty(path: str | Path) -> bool:
    """Whether *path* is a file of 0 bytes (a missing one is for the open to report)."""
    try:
        return os.stat(path).st_size == 0
    except (OSError, ValueError):
        return False


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '")[0].strip() or type(exc).__name__


class NumberedReader:
    """A :class:`~bgsub.io.sources.FrameReader` of a :class:`VideoFile`, numbering by the file.

    The reader numbers what it reads 0, 1, 2, ...; this gives each frame
    its number in the file instead (``first``, ``first + step``, ...), for
    :func:`~bgsub.io.pipeline.run_pipeline`.
    """

    def __init__(self, reader, source: VideoFile) -> None:
        self.reader = reader
        self.source = source

    def get(self, timeout: float = 0.1):
        item = self.reader.get(timeout)
        if item is None or isinstance(item[1], CorruptFrame):
            return item
        return self.source.numbers.popleft(), item[1]

    def close(self) -> None:
        self.reader.close()
