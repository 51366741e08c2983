"""Frame sources: cameras, video files, image folders and stream URLs.

One interface (:class:`Source`): ``read()`` returns the next frame, ``None`` at
the end, or raises :class:`CorruptFrame` for a stretch of frames that could
not be decoded (the caller skips them and carries on).  :class:`FrameReader`
runs a source in a thread with a bounded queue so decoding overlaps masking.

A file is read to the end of its readable data: a damaged stretch in the
middle is skipped and reported, and so are frames its header announces that
are missing at the end (a truncated file).  A camera or a stream that stops
delivering frames (for ``source.open_timeout`` seconds) is reopened with a
growing delay (``source.reconnect``), or else is an error, never an end.  Opening
waits in a helper thread, so a signal can interrupt it; a stream URL's
password never appears in a message (:func:`redact`).
"""

from __future__ import annotations

import collections
import datetime
import errno
import functools
import logging
import os
import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..config import SourceConfig
from ..errors import BgsubError
from ..files import local_url, not_a_file
from .priority import lower_this_thread

__all__ = ["SourceError", "CorruptFrame", "OpenCancelled", "Source", "open_source",
           "FrameReader", "IMAGE_EXTENSIONS", "redact", "invalid_header"]

logger = logging.getLogger("bgsub")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
_URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
# a file is read this many frames past the count its header announces before it
# counts as ended (a count estimated from the duration may be a little short); a
# file whose header gives no count ends after this many failures in a row
_GRACE = 25
_NO_COUNT_FAILURES = 250
# a camera whose reads fail this many times in a row has dropped out (a single
# failed read is a dropped frame, not news)
_CAMERA_FAILURES = 25
# a URL's scheme and authority: the authority ends at the first "/", "?" or "#"
# (as FFmpeg reads it), and its userinfo at the authority's *last* "@", so a
# password may hold "@" (``http://user:top@secret@host``)
_AUTHORITY = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<authority>[^/?#\s]*)")


def _credentials(authority: str) -> tuple[str, str | None, str]:
    """(user, password or None, host) of a URL's authority."""
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return "", None, authority
    user, colon, password = userinfo.partition(":")
    return (user, password, host) if colon else (userinfo, None, host)


def _hide(match: re.Match) -> str:
    user, password, host = _credentials(match["authority"])
    if password is None:
        return match[0]
    return f"{match['scheme']}{user}:***@{host}"


def redact(text: str, *urls: str) -> str:
    """*text* with every URL's password replaced by ``***`` (``rtsp://admin:***@host``).

    The password is all of the userinfo after its first ``:``, up to the
    authority's last ``@``.  The passwords of *urls* are also taken out where
    they appear without their scheme (a library's message that quotes
    ``user:password@host``).
    """
    text = _AUTHORITY.sub(_hide, text)
    for url in urls:
        match = _AUTHORITY.match(url.strip())
        if match is None:
            continue
        user, password, _ = _credentials(match["authority"])
        if password:
            text = text.replace(f"{user}:{password}@", f"{user}:***@")
            if len(password) >= 3:  # (shorter, it would take letters out of every word)
                text = text.replace(password, "***")
    return text


class SourceError(BgsubError):
    """A source that cannot be opened or read (a user error)."""


class OpenCancelled(Exception):
    """Opening a source was interrupted (a signal set the stop event)."""


class CorruptFrame(Exception):
    """A stretch of ``count`` frames could not be decoded; the source goes on after it."""

    def __init__(self, message: str, count: int = 1) -> None:
        super().__init__(message)
        self.count = count


@dataclass
class SourceInfo:
    """What is known about a source once it is open."""

    kind: str  # "camera", "file", "folder" or "stream"
    name: str
    fps: float  # frames per second (a default where the source does not say)
    frame_count: int | None  # None where unknown (cameras, streams)


class Source:
    """Base class: a sequence of uint8 frames."""

    info: SourceInfo
    drops = 0  # times a live source stopped delivering frames
    reconnects = 0  # times it came back

    def read(self) -> np.ndarray | None:
        """The next frame, or None at the end; raises CorruptFrame for a bad one."""
        raise NotImplementedError

    def interrupt(self) -> None:
        """Stop waiting (for a reconnection): the next read ends the source."""

    def close(self) -> None:
        """Release the device or file."""


def _fps_or(value: float, default: float) -> float:
    return value if np.isfinite(value) and 0.5 <= value <= 1000 else default


class _CaptureSource(Source):
    """Anything cv2.VideoCapture opens: files, cameras, streams."""

    def __init__(self, cap: cv2.VideoCapture, info: SourceInfo, config: SourceConfig | None = None,
                 reopen: Callable[[threading.Event | None], cv2.VideoCapture] | None = None,
                 stop: threading.Event | None = None) -> None:
        self._cap = cap
        self.info = info
        self._config = config or SourceConfig()
        self._reopen = reopen  # cameras and streams: open the device or URL again
        self._stop = stop
        self._interrupted = threading.Event()
        self._position = 0  # frames consumed so far, good or bad
        self._good = 0
        self._ready: collections.deque = collections.deque()
        self._ended = False
        self.drops = 0
        self.reconnects = 0

    def read(self) -> np.ndarray | None:
        if not self._ready and not self._ended:
            self._fill()
        if not self._ready:
            return None
        item = self._ready.popleft()
        if isinstance(item, CorruptFrame):
            raise item
        return item

    def _fill(self) -> None:
        """Read up to the next good frame; failed reads before it were a corrupt stretch.

        A file goes on past a damaged stretch of any length, to the count its
        header announces (and a little beyond); frames announced but missing
        at the end are reported too.  A camera's dropped frames are not news.
        """
        failed = 0
        count = self.info.frame_count
        while True:
            ok, frame = self._cap.read()
            index = self._position
            self._position += 1
            if ok and frame is not None and frame.size:
                if failed and self.info.kind == "file":
                    self._ready.append(self._corrupt(index - failed, failed,
                                                     "could not be decoded"))
                self._ready.append(frame)
                self._good += 1
                return
            failed += 1
            if self.info.kind == "stream" or (self.info.kind == "camera"
                                              and failed >= _CAMERA_FAILURES):
                if not self._reconnect():
                    self._ended = True
                    return
                failed = 0
                continue
            if self.info.kind == "camera":
                continue
            if count is not None and index + 1 >= count + _GRACE or (
                    count is None and failed >= _NO_COUNT_FAILURES):
                break
        self._ended = True
        if self.info.kind == "file" and count is not None:
            # containers estimating their count may claim a frame or two more than they
            # hold: that is not damage
            missing = count - (self._position - failed)
            if missing > max(1, count // 100):
                self._ready.append(self._corrupt(
                    count - missing, missing, "could not be read: the file ends early "
                    "(truncated or damaged), or its header overstates its length"))

    def _reconnect(self) -> bool:
        """Reopen a camera or stream that stopped delivering; False when stopped meanwhile.

        Waits ``reconnect_delay`` seconds, doubled after each failed attempt
        up to ``reconnect_max_delay``; raises :class:`SourceError` where
        reconnection is off or ``reconnect_limit`` attempts failed.
        """
        config = self._config
        what = "the stream" if self.info.kind == "stream" else "the camera"
        stopped = (f"{self.info.name}: {what} stopped delivering frames (none for "
                   f"{config.open_timeout:g} s, source.open_timeout) after {self._good} "
                   "frames")
        if self._reopen is None or not config.reconnect:
            raise SourceError(stopped)
        self.drops += 1
        dropped = time.monotonic()
        logger.warning("%s: %s dropped at %s after %d frames; reconnecting", self.info.name,
                       what[4:], _now(), self._good)
        self._cap.release()
        delay = config.reconnect_delay
        attempt = 0
        while True:
            attempt += 1
            if config.reconnect_limit and attempt > config.reconnect_limit:
                raise SourceError(f"{stopped}, and {config.reconnect_limit} attempts to "
                                  "reconnect failed")
            if self._wait(delay):
                return False
            try:
                self._cap = self._reopen(self._stop)
            except OpenCancelled:
                return False
            except SourceError as exc:
                logger.info("%s: attempt %d failed (%s); next in %g s", self.info.name,
                            attempt, str(exc).split(": ", 1)[-1], min(2 * delay,
                                                                      config.reconnect_max_delay))
                delay = min(2 * delay, config.reconnect_max_delay)
                continue
            self.reconnects += 1
            logger.warning("%s: reconnected at %s, %.1f s after the drop (attempt %d)",
                           self.info.name, _now(), time.monotonic() - dropped, attempt)
            return True

    def _wait(self, seconds: float) -> bool:
        """Sleep *seconds*; True when interrupted or stopped meanwhile."""
        end = time.monotonic() + seconds
        while True:
            if self._interrupted.is_set() or self._stop is not None and self._stop.is_set():
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            self._interrupted.wait(min(left, 0.1))

    def interrupt(self) -> None:
        self._interrupted.set()

    def _corrupt(self, first: int, count: int, why: str) -> CorruptFrame:
        frames = f"frame {first}" if count == 1 else f"frames {first}-{first + count - 1}"
        return CorruptFrame(f"{frames} of {self.info.name} {why}", count)

    def close(self) -> None:
        self._cap.release()


class _FolderSource(Source):
    """An image sequence: the images of a folder, sorted by name."""

    def __init__(self, paths: list[Path], name: str, fps: float) -> None:
        self._paths = paths
        self._next = 0
        self.info = SourceInfo("folder", name, fps, len(paths))

    def read(self) -> np.ndarray | None:
        if self._next >= len(self._paths):
            return None
        path = self._paths[self._next]
        self._next += 1
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise CorruptFrame(f"{path} is not a readable image")
        return frame


def open_source(spec: str | None = None, camera: int | None = None,
                config: SourceConfig | None = None,
                stop: threading.Event | None = None) -> Source:
    """Open a camera index, a video file, an image folder or a stream URL.

    The wait for a device or a stream happens in a helper thread: when *stop*
    is set meanwhile (a signal), :class:`OpenCancelled` is raised at once.

    Raises
    ------
    SourceError
        With a one-line message naming the problem and what was expected.
    OpenCancelled
        When *stop* was set before the source opened.
    """
    config = config or SourceConfig()
    if camera is not None:
        return _open_camera(camera, config, stop)
    if spec is None:
        raise SourceError("no source given: expected a video file, an image folder, "
                          "a stream URL or --camera N")
    if not spec.strip():
        raise SourceError("the source is an empty name (expected a video file, an image "
                          "folder or a stream URL)")
    if spec.lower().startswith(_URL_SCHEMES):
        return _open_stream(spec, config, stop)
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder (expected a video file, an image "
                          "folder or a stream URL)")
    if path.is_dir():
        return _open_folder(path, config)
    kind = not_a_file(path)
    if kind is not None:  # opening a FIFO would wait for a writer, deaf to signals
        raise SourceError(f"{spec}: is {kind} (expected a video file, an image folder or "
                          "a stream URL)")
    if not os.access(path, os.R_OK):
        raise SourceError(f"{spec}: permission denied (cannot read the file)")
    if path.stat().st_size == 0:
        raise SourceError(f"{spec}: the file is empty (expected a video file)")
    return _open_file(path, stop)


def _capture(stop: threading.Event | None, *args) -> cv2.VideoCapture:
    """``cv2.VideoCapture(*args)``, waited for in a helper thread that *stop* can abandon.

    OpenCV's open blocks in C (a stream may take up to its timeout), where
    Python's signal handlers cannot run; the helper's capture, if it ever
    opens, is released when it is dropped.
    """
    box: dict = {}

    def target() -> None:
        try:
            box["cap"] = cv2.VideoCapture(*args)
        except BaseException as exc:  # re-raised below
            box["error"] = exc

    helper = threading.Thread(target=target, name="bgsub-open", daemon=True)
    helper.start()
    while helper.is_alive():
        helper.join(0.05)
        if stop is not None and stop.is_set():
            raise OpenCancelled()
    if "error" in box:
        raise box["error"]
    return box["cap"]


def _open_file(path: Path, stop: threading.Event | None = None) -> Source:
    cap = _capture(stop, local_url(path), cv2.CAP_FFMPEG)  # never a protocol
    if not cap.isOpened():
        cap.release()
        if _header_is_invalid(path):
            raise SourceError(f"{path}: not a video file that can be read (its header is "
                              "invalid)")
        raise SourceError(f"{path}: not a video OpenCV can read (expected a video file such "
                          "as .mp4 or .avi, an image folder, or a stream URL)")
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    info = SourceInfo("file", str(path), _fps_or(cap.get(cv2.CAP_PROP_FPS), 25.0),
                      count if count > 0 else None)
    return _CaptureSource(cap, info)


def invalid_header(exc: BaseException) -> bool:
    """Whether FFmpeg's error opening a local file says that its header is impossible.

    FFmpeg's Y4M reader adds the frame marker's 6 bytes to the frame size
    check's ``AVERROR(EINVAL)`` (-22): a header whose frame size cannot be
    (``W0 H0``, ``W100000 H100000``) fails with -16, "Device or resource
    busy", which no regular file is.
    """
    return getattr(exc, "errno", None) == errno.EBUSY


def _header_is_invalid(path: Path) -> bool:
    """Whether FFmpeg (through PyAV) fails to open *path* for an impossible header."""
    import av  # only when OpenCV could not open the file: to say why

    try:
        av.open(local_url(path), metadata_errors="ignore").close()
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        return invalid_header(exc)
    return False


def _open_folder(path: Path, config: SourceConfig) -> Source:
    images = sorted(p for p in path.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise SourceError(f"{path}: the folder holds no images (expected "
                          f"{', '.join(IMAGE_EXTENSIONS)} files)")
    return _FolderSource(images, str(path), config.fps or 25.0)


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _camera_capture(index: int, config: SourceConfig,
                    stop: threading.Event | None) -> cv2.VideoCapture:
    cap = _capture(stop, index)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"camera {index} does not open (is it connected, and free? "
                          "expected a working camera index such as 0)")
    if config.width:
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, config.width)
    if config.height:
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, config.height)
    if config.fps:
        cap.set(cv2.CAP_PROP_FPS, config.fps)
    return cap


def _open_camera(index: int, config: SourceConfig, stop: threading.Event | None) -> Source:
    cap = _camera_capture(index, config, stop)
    fps = _fps_or(cap.get(cv2.CAP_PROP_FPS), config.fps or 30.0)
    return _CaptureSource(cap, SourceInfo("camera", f"camera {index}", fps, None), config,
                          functools.partial(_camera_capture, index, config), stop)


def _stream_capture(url: str, config: SourceConfig,
                    stop: threading.Event | None) -> cv2.VideoCapture:
    ms = int(config.open_timeout * 1000)
    started = time.monotonic()
    cap = _capture(stop, url, cv2.CAP_FFMPEG,
                   [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    if not cap.isOpened():
        cap.release()
        # OpenCV gives no reason: one that failed before the time allowed was
        # refused, closed or answered with something that is not video
        what = (f"does not connect within {config.open_timeout:g} s"
                if time.monotonic() - started >= 0.9 * config.open_timeout else
                "refuses the connection, closes it or sends no video")
        raise SourceError(f"{redact(url)}: the stream {what} (expected a reachable rtsp:// "
                          "or http:// video stream)")
    return cap


def _open_stream(url: str, config: SourceConfig, stop: threading.Event | None) -> Source:
    cap = _stream_capture(url, config, stop)
    fps = _fps_or(cap.get(cv2.CAP_PROP_FPS), 25.0)
    return _CaptureSource(cap, SourceInfo("stream", redact(url), fps, None), config,
                          functools.partial(_stream_capture, url, config), stop)


_END = object()


class FrameReader:
    """Read a source in a thread, a bounded number of frames ahead.

    ``get()`` gives ``(index, frame)`` with index the frame's zero-based
    position in the source, or ``(index, CorruptFrame)`` for a stretch of
    ``CorruptFrame.count`` frames from *index* that could not be decoded.  An error in the source is raised again in the
    consumer.  The thread runs *nice* steps below the priority it
    starts with (Linux; see :mod:`bgsub.io.priority`).
    """

    def __init__(self, source: Source, queue_size: int = 8, nice: int = 0) -> None:
        self.source = source
        self.nice = nice
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bgsub-reader", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        lower_this_thread(self.nice)
        try:
            self._read_all()
        finally:
            # released by this thread, so never while a read is still under way
            self.source.close()

    def _read_all(self) -> None:
        index = 0
        try:
            while not self._stop.is_set():
                try:
                    frame = self.source.read()
                except CorruptFrame as bad:
                    frame = bad
                if frame is None:
                    break
                if not self._put((index, frame)):
                    return
                index += frame.count if isinstance(frame, CorruptFrame) else 1
        except Exception as exc:  # surfaced in the consumer
            self._put(exc)
            return
        self._put(_END)

    def get(self, timeout: float = 0.1):
        """The next item, ``None`` at the end; raises queue.Empty after *timeout*."""
        item = self._queue.get(timeout=timeout)
        if item is _END:
            self._queue.put(_END)  # stay at the end for later calls
            return None
        if isinstance(item, Exception) and not isinstance(item, CorruptFrame):
            raise item
        return item

    def close(self) -> None:
        """Stop the thread; it releases the source once its current read returns."""
        self._stop.set()
        self.source.interrupt()  # a wait to reconnect ends now
        self._thread.join(timeout=5)
