"""Events of a live run: a JSON line as each event starts and ends, clips with their
pre-roll, a command per event.

:class:`LiveEvents` is a pipeline consumer.  It scores each result with the
scan's :class:`~bgsub.scan.scanner.MotionScorer` and its :class:`~bgsub.scan.detector.EventDetector`
(the rules of ``[scan]``: a camera and its recordings are judged alike) and:

* appends to ``--events FILE.jsonl`` one JSON object per line as an event
  starts (``"type": "start"``) and once it is complete (``"type": "end"``),
  flushed at once, so that other programs can follow the file (``tail -f``);
  times are wall-clock ISO 8601 of the frames concerned.  With ``--clips``
  the lines go out from the clip writer's thread, in order: an end line
  names its clip once the clip is closed, or gives ``"clip": null`` and
  ``"clip_error"`` when it could not be written (a full disk);
* writes a clip per event into ``--clips DIR`` (``.mp4``), from its first
  frame, ``pre_roll`` before its motion: recent frames wait in a ring
  buffer, JPEG-compressed (``events.clip_quality``), because motion is only
  recognised ``min_event_length`` after it began.  The buffer holds
  ``pre_roll + min_event_length`` frames and no more: at 1080p and quality
  90, 150-400 KB a frame, about 60 MB for 5 s at 30 fps.  Compressing and
  writing happen in a thread of their own;
* runs ``--on-event CMD`` (a shell command) with the event's JSON on its
  stdin, at its start and at its end, in the background: at most
  ``events.max_commands`` at once, each stopped after
  ``events.command_timeout`` seconds; masking never waits for them.  Once
  the run is asked to stop (a signal), the end waits :data:`STOP_GRACE`
  seconds for them at most, then stops them with their children;
* hands each record, as a dict, to its :attr:`LiveEvents.subscribers`
  (``--serve`` shows them on its page).

With ``scan.scene`` on, scene events (:mod:`bgsub.scan.scene`: the camera
covered, moved, defocused, a change of light, weather) get lines of their
own, ``"type": "scene"`` with their ``"kind"`` and ``"state"`` (``"start"``,
``"end"``), and go to ``--on-event`` too; a motion event's end line lists,
in ``"scene"``, the kinds of the scene events it overlaps (not with
``events.during_scene = "keep"``; ``"drop"`` marks too: a start line cannot be
taken back).
"""

from __future__ import annotations

import collections
import datetime
import errno
import json
import logging
import math
import os
import queue
import re
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from ..config import Config
from ..scan.detector import Event
from ..files import SinkError
from ..scan.scanner import MotionEvent, MotionScorer, rules_for, scorer_for, weather_gate
from ..scan.scene import SceneDetector, SceneEvent, SceneRules, overlapping
from ..io.sinks import VideoSink
from ..io.sources import redact
from ..model.step import FrameResult

__all__ = ["LiveEvents", "STOP_GRACE"]

logger = logging.getLogger("bgsub")

#: seconds the commands still running get once the run is asked to stop
STOP_GRACE = 2.0


def _rounded(value: float) -> float | None:
    """A confidence for a JSON line: 4 decimals, None (null) when not measured."""
    return round(value, 4) if math.isfinite(value) else None


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds")


class LiveEvents:
    """A consumer that turns a live source's results into events, lines, clips, commands.

    Parameters
    ----------
    name : str
        The source, named in every line (a URL's password is already out).
    config : Config
        ``[scan]`` gives the rules, ``[events]`` the rest.
    fps : float
        The source's frame rate (durations in seconds become frames).
    events : Path, optional
        The JSON Lines file to append to.
    clips : Path, optional
        The folder for the clips.
    on_event : str, optional
        The shell command to run per event.
    stop : threading.Event, optional
        Set when the run is asked to stop (a signal): closing then waits
        :data:`STOP_GRACE` seconds at most for the commands still running,
        and stops them.
    probe : callable, optional
        The masker's :meth:`~bgsub.model.masker.MixtureMasker.foreground_probability_at`:
        the lines then carry each event's ``"confidence"`` (see
        :func:`bgsub.scan.detector.confidence`), so far on a start line.
    """

    def __init__(self, name: str, config: Config, fps: float, events: Path | None = None,
                 clips: Path | None = None, on_event: str | None = None,
                 stop: threading.Event | None = None, probe=None) -> None:
        name = redact(name)  # a URL's password in no line and no clip's name, whoever calls
        self.name = name
        self.fps = fps
        self.rules = rules_for(config.scan, fps)
        self._config = config
        self.scorer: MotionScorer | None = None  # made on the first frame: its size
        self._times: collections.deque = collections.deque(
            maxlen=self.rules.pre_roll + self.rules.min_length + 2)
        self._started = 0
        self._open: dict[str, Any] | None = None  # the start line of the event under way
        self.count = 0
        self._lines = _open_lines(events) if events is not None else None
        self.events_path = events
        self._emitting = threading.Lock()
        self._clips = _ClipWriter(clips, fps, config.events.clip_quality,
                                  self.rules.pre_roll + self.rules.min_length + 2, name,
                                  self._emit) if clips is not None else None
        self._commands = _Commands(on_event, config.events.max_commands,
                                   config.events.command_timeout, stop) if on_event else None
        #: called with each event record (a dict, as its JSON line), from the pipeline's thread
        #: or, with --clips, the clip writer's (the lines keep their order)
        self.subscribers: list[Callable[[dict[str, Any]], None]] = []
        self.scene = SceneDetector(SceneRules(fps=fps), on_start=self._scene_start,
                                   on_end=self._scene_end) if config.scan.scene else None
        self.scene_count = 0
        self._probe = probe
        self._scene_open: dict[str, tuple[int, str]] = {}  # kind: its number, start time

    @property
    def needs(self) -> frozenset[str]:
        """The raw mask, where flicker is judged, and where the blink gate applied, which
        counts as specks (as the scan does)."""
        scan = self._config.scan
        return frozenset(({"raw_mask"} if scan.flicker > 0 else set())
                         | ({"blinking"} if scan.speck > 0 else set()))

    def write(self, result: FrameResult) -> None:
        now = time.time()
        if self.scorer is None:  # the frames' size is known now
            h, w = result.mask.shape
            self.scorer = scorer_for(self.name, self._config.scan, self.fps, (w, h),
                                     first=result.index, on_event=self._ended,
                                     keep_events=False, probe=self._probe)
            if self.scene is not None:
                weather_gate(self.scorer, self.scene, self._config.scan.weather_blob, (w, h))
        self._times.append((result.index, now))
        if self._clips is not None:
            self._clips.frame(result.index, result.frame)
        if self.scene is not None:
            self.scene.write(result)
        self.scorer.write(result)
        detector = self.scorer.detector
        if detector.started > self._started:
            self._started = detector.started
            self._begin(detector.current())
        current = detector.current()
        if self._clips is not None and current is not None:
            # the clip holds the event's frames so far: to this one, or to its end
            self._clips.upto(current.start, result.index if current.end < 0 else
                             min(current.end, result.index))

    def _time_of(self, index: int) -> float:
        for i, t in self._times:
            if i == index:
                return t
        first_index, first_time = self._times[0]  # before the buffer: back by the rate
        return first_time - (first_index - index) / self.fps

    def _begin(self, event: Event) -> None:
        self.count += 1
        line = {"type": "start", "source": self.name, "event": self.count,
                "start": _iso(self._time_of(event.start)), "start_frame": event.start,
                "motion_start": _iso(self._time_of(event.motion_start))}
        if self._probe is not None:  # so far: its first frames of motion
            line["confidence"] = _rounded(event.confidence(self.rules.min_length))
        self._open = line
        if self._clips is not None:
            # through the clip writer's thread, as the end lines: the lines keep their order
            self._clips.begin(self.count, event.start, self._time_of(event.start), line)
            return
        self._emit(line)

    def _ended(self, event: MotionEvent, frame: np.ndarray, moving: np.ndarray) -> None:
        start = self._open or {}
        self._open = None
        line = {"type": "end", "source": self.name, "event": start.get("event", self.count),
                "start": start.get("start", _iso(self._time_of(event.start_frame))),
                "end": _iso(self._time_of(event.end_frame) + 1.0 / self.fps),
                "start_frame": event.start_frame, "end_frame": event.end_frame,
                "duration": round(event.duration, 3), "peak_score": round(event.peak_score, 6),
                "peak_frame": event.peak_frame, "largest": event.largest,
                "box": list(event.box) if event.box is not None else None}
        if self._probe is not None:
            line["confidence"] = _rounded(event.confidence)
        if self.scene is not None and self._config.events.during_scene != "keep":
            line["scene"] = sorted({e.kind for e in overlapping(
                self.scene.events, event.start_frame, event.end_frame)})
        if self._clips is not None:
            # the line goes out once the clip is closed: it names it only if it was written
            self._clips.end(event.end_frame, line)
            return
        self._emit(line)

    def _scene_start(self, event: SceneEvent) -> None:
        self.scene_count += 1
        start = _iso(self._time_of(event.start_frame))
        self._scene_open[event.kind] = (self.scene_count, start)
        self._emit({"type": "scene", "state": "start", "kind": event.kind,
                    "source": self.name, "scene_event": self.scene_count, "start": start,
                    "start_frame": event.start_frame, "score": round(event.score, 4),
                    "evidence": event.evidence})

    def _scene_end(self, event: SceneEvent) -> None:
        number, start = self._scene_open.pop(
            event.kind, (self.scene_count, _iso(self._time_of(event.start_frame))))
        self._emit({"type": "scene", "state": "end", "kind": event.kind,
                    "source": self.name, "scene_event": number, "start": start,
                    "end": _iso(self._time_of(event.end_frame) + 1.0 / self.fps),
                    "start_frame": event.start_frame, "end_frame": event.end_frame,
                    "score": round(event.score, 4), "evidence": event.evidence})

    def _emit(self, line: dict[str, Any]) -> None:
        with self._emitting:  # the clip writer's thread sends the end lines
            self._emit_now(line)

    def _emit_now(self, line: dict[str, Any]) -> None:
        text = json.dumps(line)
        if self._lines is not None:
            try:
                self._lines.write(text + "\n")
                self._lines.flush()  # at once: other programs follow the file
            except OSError as exc:
                raise SinkError(f"--events {self.events_path}: cannot be written "
                                f"({exc.strerror})") from None
        if self._commands is not None:
            self._commands.run(text)
        for subscriber in self.subscribers:
            subscriber(dict(line))

    def close(self) -> None:
        """The events under way end with the last frame; every file is finished."""
        if self.scene is not None:
            self.scene.finish()
        if self.scorer is not None:
            self.scorer.finish(self.scorer.last_index)
        errors = []
        for part in (self._clips, self._commands):
            if part is not None:
                try:
                    part.close()
                except Exception as exc:
                    errors.append(exc)
        if self._lines is not None:
            self._lines.close()
        if errors:
            raise errors[0]


def _open_lines(path: Path):
    """The events file, opened to append, without ever blocking (a FIFO is refused)."""
    try:
        # O_NONBLOCK: a FIFO without a reader would block open() for good, deaf to signals
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666)
    except OSError as exc:
        reason = "a FIFO (named pipe) with no reader" if exc.errno == errno.ENXIO \
            else exc.strerror
        raise SinkError(f"--events {path}: cannot be written ({reason}; expected a regular "
                        "file name)") from None
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        os.close(fd)
        raise SinkError(f"--events {path}: is a FIFO or socket (expected a regular file name)")
    os.set_blocking(fd, True)
    return open(fd, "a", encoding="utf-8")


_STOP = object()


class _ClipWriter:
    """The clips, in a thread: a ring of recent frames (JPEG), and the clip being written."""

    def __init__(self, folder: Path, fps: float, quality: int, keep: int, name: str,
                 emit=None) -> None:
        self.folder = folder
        self._emit = emit  # sends an event's end line once its clip is closed
        self.fps = fps
        self.quality = quality
        # never a hidden name: no leading dot (a source named "..mp4")
        self._size_told = False
        self.prefix = (re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[-40:].lstrip("._")
                       or "source")
        self._queue: queue.Queue = queue.Queue(maxsize=256)
        self._ring: collections.deque = collections.deque(maxlen=keep)
        self._sink: VideoSink | None = None
        self._written = -1  # the last frame in the clip
        self._error: BaseException | None = None
        self._failed: str | None = None  # why the clip under way was abandoned
        self._thread = threading.Thread(target=self._run, name="bgsub-clips", daemon=True)
        self._thread.start()

    def frame(self, index: int, image: np.ndarray) -> None:
        self._put(("frame", index, image))

    def begin(self, number: int, start: int, when: float,
              line: dict[str, Any] | None = None) -> Path:
        """A clip from frame *start* on; *line* (the event's start) goes out naming it."""
        stamp = datetime.datetime.fromtimestamp(when).strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"{self.prefix}-{stamp}-event{number:04d}.mp4"
        if line is not None:
            line["clip"] = str(path)
        self._put(("begin", path, start, line))
        return path

    def upto(self, start: int, last: int) -> None:
        self._put(("upto", start, last))

    def end(self, last: int, line: dict[str, Any] | None = None) -> None:
        """The event's clip ends with frame *last*; then *line* goes out, naming the clip.

        ``"clip"`` is the clip's path once it is complete, None (with
        ``"clip_error"``) when it could not be written.
        """
        self._put(("end", last, line))

    def _put(self, item) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if item[0] == "begin":
            self._path = item[1]
        self._queue.put(item)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._handle(item)
            except BaseException as exc:  # raised by the next call in the pipeline
                self._error = exc
                self._failed = str(exc)  # the clip's end line says so
                self._abandon()

    def _handle(self, item) -> None:
        kind = item[0]
        if kind == "frame":
            _, index, image = item
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            self._ring.append((index, data))
        elif kind == "begin":
            _, path, start, line = item
            self._failed = None
            self._finish()
            if line is not None:
                self._send(line)
            # an odd-sized source's clips are all a row and column smaller: said once
            self._sink = VideoSink(path, self.fps, "--clips", tell_size=not self._size_told)
            self._size_told = True
            self._written = start - 1
        elif kind == "upto" and self._sink is not None:
            _, start, last = item
            for index, data in self._ring:
                if self._written < index <= last:
                    self._sink.write_image(cv2.imdecode(data, cv2.IMREAD_COLOR))
                    self._written = index
        elif kind == "end":
            line = item[2] if len(item) > 2 else None
            path = self._sink.path if self._sink is not None else None
            try:
                self._finish()
            except BaseException as exc:
                if line is not None:
                    self._send({**line, "clip": None, "clip_error": str(exc)})
                raise
            if line is not None:
                if path is None:
                    self._send({**line, "clip": None,
                                "clip_error": self._failed or "no clip was begun"})
                else:
                    self._send({**line, "clip": str(path)})

    def _send(self, line: dict[str, Any]) -> None:
        if self._emit is not None:
            self._emit(line)

    def _finish(self) -> None:
        if self._sink is not None:
            sink, self._sink = self._sink, None
            sink.close()

    def _abandon(self) -> None:
        if self._sink is not None:
            self._sink.abandon()
            self._sink = None

    def close(self) -> None:
        self._queue.put(("end", -1))
        self._queue.put(_STOP)
        self._thread.join()
        if self._error is not None:
            raise self._error


class _Commands:
    """``--on-event``: a shell command per event line, in the background, a few at once.

    Each runs in a session (process group) of its own, stopped with its
    children after *timeout* seconds.  Once *stop* is set (a signal), the
    close waits :data:`STOP_GRACE` seconds at most, then stops every group
    still running (SIGTERM, then SIGKILL).
    """

    def __init__(self, command: str, most: int, timeout: float,
                 stop: threading.Event | None = None) -> None:
        self.command = command
        self.timeout = timeout
        self.stop = stop
        self._slots = threading.BoundedSemaphore(most)
        self._threads: list[threading.Thread] = []
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopping = False
        self.skipped = 0

    def run(self, text: str) -> None:
        if not self._slots.acquire(blocking=False):
            self.skipped += 1
            logger.warning("--on-event: %s commands still run; this event is not passed on",
                           self._slots._initial_value)  # noqa: SLF001
            return
        thread = threading.Thread(target=self._one, args=(text,), name="bgsub-on-event",
                                  daemon=True)
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _one(self, text: str) -> None:
        try:
            with self._lock:
                if self._stopping:
                    return
                # a session of its own: the shell's children go with it when it is stopped
                proc = subprocess.Popen(self.command, shell=True, stdin=subprocess.PIPE,
                                        start_new_session=True)
                self._procs.add(proc)
            try:
                proc.communicate(text.encode() + b"\n", timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc, signal.SIGKILL)
                proc.wait()
                logger.warning("--on-event: the command ran over %g s and was stopped",
                               self.timeout)
            else:
                if self._stopping and proc.returncode:
                    logger.warning("--on-event: a command still running at the stop was "
                                   "stopped")
                elif proc.returncode:
                    logger.warning("--on-event: the command exited with status %d",
                                   proc.returncode)
            finally:
                with self._lock:
                    self._procs.discard(proc)
        except OSError as exc:
            logger.warning("--on-event: the command cannot run (%s)", exc.strerror)
        finally:
            self._slots.release()

    def close(self) -> None:
        """Wait for the commands (their timeout at most; after a stop, a short grace)."""
        deadline = time.monotonic() + self.timeout + 5
        stopped_at = None
        for thread in self._threads:
            while thread.is_alive():
                now = time.monotonic()
                if stopped_at is None and self.stop is not None and self.stop.is_set():
                    stopped_at = now
                if now >= deadline:
                    break
                if stopped_at is not None and now >= stopped_at + STOP_GRACE:
                    # SIGTERM at the end of the grace, SIGKILL a second later
                    late = now >= stopped_at + STOP_GRACE + 1.0
                    self._stop_all(signal.SIGKILL if late else signal.SIGTERM)
                    deadline = min(deadline, stopped_at + STOP_GRACE + 3.0)
                thread.join(0.05)

    def _stop_all(self, sig: int) -> None:
        """Send *sig* to every command still running, and its children."""
        with self._lock:
            already = self._stopping and sig == signal.SIGTERM
            self._stopping = True
            procs = list(self._procs)
        if not already:
            for proc in procs:
                _kill_group(proc, sig)


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except OSError:
        try:
            proc.send_signal(sig)
        except OSError:
            pass
