"""What is cut out of a recording for an event: a clip and a thumbnail.

A clip is cut by *stream copy* where the container allows it: the
compressed packets are copied as they are, from the key frame at or before
the event's start (a decoder can only start on a key frame) to its end.
No re-encoding: it takes milliseconds, loses nothing and the clip has the
recording's quality and codec.  The clip then starts up to one key-frame
interval early; :attr:`Clip.start` says where.  Where copying is not
possible (a container FFmpeg cannot write, a stream it refuses to copy),
the event's frames are decoded and encoded again (H.264 in an ``.mp4``),
starting at the event's first frame.  Clips hold the video only.

A thumbnail is the event's peak frame, with the moving blobs boxed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import BgsubError
from ..files import atomic_path, disk_full, local_url

__all__ = ["Clip", "ClipError", "cut_clip", "clip_extension", "thumbnail", "COPY_FORMATS"]

logger = logging.getLogger("bgsub")

#: containers that clips are stream-copied into, by the source's extension
COPY_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska",
                ".webm": "webm", ".avi": "avi", ".ts": "mpegts", ".mts": "mpegts",
                ".m2ts": "mpegts", ".flv": "flv"}
#: where a clip goes when it cannot be copied
ENCODED_EXTENSION = ".mp4"


class ClipError(BgsubError):
    """A clip that could not be made.

    ``missing`` when the source holds no frame of the event's (a damaged or
    truncated file): that event has no clip, while an output that cannot be
    written is an error of the whole file.
    """

    missing = False


@dataclass(frozen=True)
class Clip:
    """A clip written.

    Attributes
    ----------
    path : Path
    start : float
        Seconds into the source at which the clip starts (its first frame).
    copied : bool
        Whether it is a stream copy (else it was re-encoded).
    """

    path: Path
    start: float
    copied: bool


def clip_extension(source: str | Path) -> str:
    """The extension of a clip of *source*: its own where it can be copied, else ``.mp4``."""
    suffix = Path(source).suffix.lower()
    return suffix if suffix in COPY_FORMATS else ENCODED_EXTENSION


def cut_clip(source: str | Path, target: str | Path, start: float, end: float,
             fps: float, frames: tuple[int, int] | None = None) -> Clip:
    """Cut seconds *start* to *end* of *source* into *target*, atomically.

    Stream copy when *target*'s extension is in :data:`COPY_FORMATS`,
    falling back to re-encoding when copying fails; *fps* (the source's
    rate) times the re-encoded frames.  *frames*, the event's first and last
    frame by position in the file (as a scan numbers them), are the last
    resort when the timestamps find no frame in the event's time (a
    recording whose timestamps restart or jump, a truncated file): those
    frames are decoded from the start and encoded.  Raises :class:`ClipError`.
    """
    target = Path(target)
    if target.is_dir():  # as the outputs of run are named (neither copy nor encoding can)
        raise ClipError(f"{target}: is a folder (expected a file name)")
    if target.suffix.lower() in COPY_FORMATS:
        try:
            with atomic_path(target) as temporary, _disk_full_told(target, temporary):
                clip_start = _copy(Path(source), temporary, start, end,
                                   COPY_FORMATS[target.suffix.lower()])
            return Clip(target, clip_start, True)
        except _DiskFull:
            raise
        except (av.error.FFmpegError, ValueError, ClipError, OSError) as exc:
            logger.info("%s: cannot copy the stream into %s (%s); re-encoding",
                        source, target.name, exc)
    try:
        try:
            with atomic_path(target) as temporary, _disk_full_told(target, temporary):
                sizes = _encode(Path(source), temporary, start, end, fps)
        except _NoFrame:
            if frames is None:
                raise
            logger.info("%s: no frame has the event's timestamps; cutting frames %d to %d "
                        "by their position", source, *frames)
            with atomic_path(target) as temporary, _disk_full_told(target, temporary):
                sizes = _encode(Path(source), temporary, start, end, fps, frames)
    except (av.error.FFmpegError, OSError) as exc:
        raise ClipError(f"{target}: the clip could not be written ({exc})") from None
    if sizes[0] != sizes[1]:  # 4:2:0 needs even sizes: an odd last row or column is left out
        logger.warning("%s: re-encoded at %dx%d, the source is %dx%d (the encoder takes even "
                       "sizes only: the last row or column is left out)", target,
                       *sizes[0], *sizes[1])
    return Clip(target, start, False)


class _NoFrame(ClipError):
    """No frame of the source in the event's time."""

    missing = True


class _DiskFull(ClipError):
    """A clip not written for want of room: re-encoding it would fail too."""


@contextlib.contextmanager
def _disk_full_told(target: Path, partial: Path):
    """ClipError "the disk is full" for a failure while the disk is full.

    FFmpeg reports a full disk as EINVAL ("Invalid argument"), or not at
    all; the disk is looked at before the partial file goes (and frees it).
    """
    try:
        yield
    except ClipError:
        raise
    except (av.error.FFmpegError, OSError) as exc:
        if getattr(exc, "errno", None) == errno.ENOSPC or disk_full(partial):
            raise _DiskFull(f"{target}: the clip could not be written (the disk is full)") \
                from None
        raise


def _seek(container, stream, seconds: float) -> int:
    """Seek to the key frame at or before *seconds*; the timestamp of *seconds*."""
    first = stream.start_time or 0
    position = first + math.floor(seconds / stream.time_base)
    container.seek(position, stream=stream, backward=True, any_frame=False)
    return position


def _from_key_frame(container, stream, start_pts: int):
    """The packets from the last key frame at or before *start_pts* on (a generator).

    Demuxers without an index, or with a coarse one, may seek past it: then
    seek again from further back, each time twice as far (the file's start
    at the latest, sought as the container's time 0).
    """
    first = stream.start_time or 0
    back = 0
    while True:
        position = max(first, start_pts - back)
        if position == first:
            # the file's start: MPEG-TS seeks by decoding time, which runs behind the
            # first frame's time, so a seek to that lands past the first key frame
            container.seek(0)
        else:
            container.seek(position, stream=stream, backward=True, any_frame=False)
        packets = container.demux(stream)
        for packet in packets:
            if packet.pts is not None and packet.is_keyframe:
                break
        else:
            return
        if packet.pts <= start_pts or position == first:
            yield packet
            yield from packets
            return
        back = max(2 * back, math.ceil(1 / stream.time_base))  # one second, then doubling


def _copy(source: Path, target: Path, start: float, end: float, format_name: str) -> float:
    with av.open(local_url(source), metadata_errors="ignore") as inp:
        stream = inp.streams.video[0]
        if not stream.time_base:
            raise ClipError("the stream has no time base")
        first = stream.start_time or 0
        # a value: PyAV (18.1.1 on) reads nothing of a stream once its file is closed
        time_base = stream.time_base
        start_pts = first + math.floor(start / stream.time_base)
        end_pts = first + math.floor(end / stream.time_base)
        # frames come in decoding order: a frame shown before the end may be
        # decoded up to this many frames after one shown after it
        reorder = stream.codec_context.has_b_frames + 1
        offset = shown = None
        late = 0  # frames decoded since the first one shown after the end
        with av.open(local_url(target), "w", format=format_name) as out:
            copy = out.add_stream_from_template(stream)
            for packet in _from_key_frame(inp, stream, start_pts):
                if packet.pts is None:
                    continue  # the demuxer's empty packet at the end
                if offset is None:
                    offset = packet.pts
                if packet.dts is not None:
                    # every frame decoded before the end: one shown before
                    # it may depend on one shown after it, never on one
                    # decoded after it
                    if packet.dts > end_pts:
                        break
                elif packet.pts > end_pts or late:
                    # no decoding times (Matroska): past the end, a key frame
                    # or the decoder's reordering depth ends the clip
                    late += 1
                    if packet.is_keyframe or late > reorder:
                        break
                shown = packet.pts if shown is None else max(shown, packet.pts)
                packet.pts -= offset
                if packet.dts is not None:
                    packet.dts -= offset
                packet.stream = copy
                out.mux(packet)
            if shown is None or shown < start_pts:  # the stretch lies past the end
                raise _NoFrame("no frame in the event's time")
    return float((offset - first) * time_base)


def _encode(source: Path, target: Path, start: float, end: float, fps: float,
            frames: tuple[int, int] | None = None
            ) -> tuple[tuple[int, int], tuple[int, int]]:
    """Re-encode the frames of seconds *start* to *end*, or (*frames*) of those positions.

    Returns the clip's frame size and the source's (the clip's is even).
    """
    with av.open(local_url(source), metadata_errors="ignore") as inp:
        stream = inp.streams.video[0]
        stream.thread_type = "AUTO"
        first = stream.start_time or 0
        if frames is None:
            _seek(inp, stream, start)
        with av.open(local_url(target), "w") as out:  # the format follows the extension
            rate = round(fps) if abs(fps - round(fps)) < 1e-3 else av.utils.Fraction(
                round(fps * 1001), 1001)
            encoded = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4",
                                     rate=rate)
            encoded.width = stream.codec_context.width // 2 * 2  # 4:2:0 needs even sizes
            encoded.height = stream.codec_context.height // 2 * 2
            encoded.pix_fmt = "yuv420p"
            written = 0
            for position, frame in enumerate(_decoded(inp, stream)):
                if frames is not None:  # by position from the file's start
                    if position < frames[0]:
                        continue
                    if position > frames[1]:
                        break
                else:
                    seconds = (float((frame.pts - first) * stream.time_base)
                               if frame.pts is not None else start + written / fps)
                    if seconds < start - 0.5 / fps:
                        continue
                    if seconds >= end - 0.5 / fps:
                        break
                image = frame.reformat(encoded.width, encoded.height, "yuv420p")
                image.pts = written
                for packet in encoded.encode(image):
                    out.mux(packet)
                written += 1
            for packet in encoded.encode():
                out.mux(packet)
            if not written:
                raise _NoFrame("no frame in the event's time")
    return (encoded.width, encoded.height), (stream.codec_context.width,
                                             stream.codec_context.height)


def _decoded(container, stream):
    """The stream's frames; a packet the decoder rejects is skipped, a damaged end ends it."""
    try:
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.error.FFmpegError:
                continue
    except av.error.FFmpegError:
        return


def thumbnail(frame: np.ndarray, moving: np.ndarray, outlines=()) -> np.ndarray:
    """The peak frame (BGR) with a box around each moving blob, and the region outlined.

    *moving* is the frame's watched foreground (255 = moving); *outlines*
    are ``(points, include)`` pairs (:func:`bgsub.regions.outlines`): include
    polygons drawn yellow, excluded ones grey.
    """
    out = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    for points, include in outlines:
        cv2.polylines(out, [points], True, (0, 220, 255) if include else (128, 128, 128), 1,
                      cv2.LINE_AA)
    contours, _ = cv2.findContours(moving, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        cv2.rectangle(out, (x - 1, y - 1), (x + w, y + h), (0, 255, 0), 2)
    return out
