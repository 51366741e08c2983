"""Finding the motion events of a video file: scores, events, and what a scan returns.

:func:`scan_file` decodes a file (:class:`~bgsub.io.avsource.VideoFile`), puts
its frames through the shared :class:`~bgsub.model.step.FrameStep` in
:func:`~bgsub.io.pipeline.run_pipeline`, and hands each result to a
:class:`MotionScorer`: the frame's :class:`~bgsub.scan.detector.FrameScore` over
the watched region (:mod:`bgsub.regions`), then the
:class:`~bgsub.scan.detector.EventDetector`.  It returns a :class:`ScanResult`: the
file's :class:`MotionEvent` s with their times, its frame count and rate,
an activity timeline and, on request, every frame's score.

A scan is a pure function of the file, the configuration and the
:class:`ScanOptions`, and its result pickles: files (or stretches of one
file, with a warm-up) can be scanned in other threads or processes and
their results put together in any order.  ``bgsub scan`` (the command,
:mod:`bgsub.cli.scan`) adds the outputs: tables, clips, thumbnails and the
report.
"""

from __future__ import annotations

import array
import logging
import math
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from ..io.avsource import NumberedReader, VideoFile
from ..config import Config, ScanConfig, resolve_config
from .detector import Event, EventDetector, EventRules, FrameScore, join_events
from .scene import SceneDetector, SceneEvent, SceneRules
from ..labels import blob_area, foreground
from ..io.pipeline import run_pipeline
from ..regions import Region, region_mask
from ..io.sources import FrameReader
from ..model.step import FrameResult, FrameStep
from ..timecode import Duration, DurationError, parse_duration, timecode

__all__ = ["ScanOptions", "ScanResult", "MotionEvent", "MotionScorer", "Activity",
           "scan_file", "iter_events", "merge_results", "region_of", "rules_for", "scorer_for",
           "find_videos", "decode_threads", "weather_gate",
           "VIDEO_EXTENSIONS"]

logger = logging.getLogger("bgsub")

#: what a folder is searched for (lower case)
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".ts", ".mts", ".m2ts", ".webm",
                    ".flv", ".wmv", ".mpg", ".mpeg", ".3gp", ".h264", ".264", ".dav")


@dataclass(frozen=True)
class ScanOptions:
    """What to scan of a file, beyond the configuration.

    Attributes
    ----------
    start, end : Duration, optional
        The first moment scanned and the first one not scanned; None: the
        file's start, its end.  Given as a :class:`~bgsub.timecode.Duration`
        or as a setting writes one (frames, seconds or a timecode, see
        :mod:`bgsub.timecode`), read once, here
        (:class:`~bgsub.timecode.DurationError` when it is none of them).
    warmup : Duration
        Video before ``start`` that the model learns from without scoring it
        (a stretch of a long file then starts with a settled model); given
        as ``start`` is.
    scores : bool
        Keep every scored frame's score in :attr:`ScanResult.scores`.
    threads : int, optional
        The masker's threads (default: every CPU).
    decode_threads : int
        FFmpeg's decoding threads (0: its choice).
    """

    start: Duration | None = None
    end: Duration | None = None
    warmup: Duration = Duration(count=0)
    scores: bool = False
    threads: int | None = None
    decode_threads: int = 0

    def __post_init__(self) -> None:
        for name in ("start", "end", "warmup"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, parse_duration(value, name))


@dataclass(frozen=True)
class MotionEvent:
    """An event of a file, in frames and seconds; boxes in the source's pixels.

    Attributes
    ----------
    file : str
        The file's path as given.
    number : int
        1, 2, ... in the file.
    start_frame, end_frame : int
        First and last frame, pre- and post-roll included (zero-based, inclusive).
    motion_start_frame, motion_end_frame : int
        First and last frame with motion.
    peak_frame : int
        The frame with the largest share of moving pixels, ``peak_score``.
    peak_score : float
    largest : int
        The largest blob seen, in source pixels.
    box : tuple of int, optional
        ``(x, y, width, height)`` around all the event's motion, source pixels.
    fps : float
        The file's frame rate, which turns frames into seconds.
    motion_frames : int
        Frames with motion.
    probability : float
        The mean soft foreground probability of its moving pixels, over its
        frames with motion (NaN: not measured).
    confidence : float
        In [0, 1], from ``probability`` and the motion's persistence
        (:func:`bgsub.scan.detector.confidence`; NaN: not measured).
    """

    file: str
    number: int
    start_frame: int
    end_frame: int
    motion_start_frame: int
    motion_end_frame: int
    peak_frame: int
    peak_score: float
    largest: int
    box: tuple[int, int, int, int] | None
    fps: float
    motion_frames: int = 0
    probability: float = math.nan
    confidence: float = math.nan

    @property
    def start_time(self) -> float:
        """Seconds from the file's start to the event's first frame."""
        return self.start_frame / self.fps

    @property
    def end_time(self) -> float:
        """Seconds from the file's start to the end of the event's last frame."""
        return (self.end_frame + 1) / self.fps

    @property
    def duration(self) -> float:
        """The event's length in seconds."""
        return self.end_time - self.start_time

    def line(self) -> str:
        """One line for a person: file, number, start and end timecodes, duration."""
        return (f"{self.file}\t{self.number}\t{timecode(self.start_time)}\t"
                f"{timecode(self.end_time)}\t{self.duration:.2f}s")


@dataclass
class Activity:
    """A file's score over time in a bounded number of bins: each bin's highest score.

    Bins start one frame wide and double (neighbours merged) whenever there
    would be more than ``2 * bins``: memory stays constant however long the
    file, and the timeline keeps every peak.
    """

    bins: int = 500
    width: int = 1  # frames per bin
    first: int = 0  # the frame the first bin starts at
    values: list[float] = field(default_factory=list)

    def add(self, index: int, score: float) -> None:
        slot = (index - self.first) // self.width
        while slot >= 2 * self.bins:
            merged = self.values + [0.0] * (len(self.values) % 2)
            self.values = [max(a, b) for a, b in zip(merged[0::2], merged[1::2])]
            self.width *= 2
            slot = (index - self.first) // self.width
        if slot >= len(self.values):
            self.values.extend([0.0] * (slot + 1 - len(self.values)))
        self.values[slot] = max(self.values[slot], score)


@dataclass
class ScanResult:
    """What scanning a file found (picklable).

    Attributes
    ----------
    path : str
        The file, as given.
    events : list of MotionEvent
    fps : float
    width, height : int
        The source's frame size.
    downscale : int
        The factor frames were scored smaller by.
    first_frame, last_frame : int
        The frames scanned (``last_frame`` is ``first_frame - 1`` when none was).
    frames : int
        Frames scored.
    seconds : float
        Length of video scanned.
    scan_seconds : float
        Wall-clock time the scan took.
    decode_errors : int
        Packets the decoder rejected.
    damaged : list of (int, int)
        The damaged stretches scanned, ``(first frame, frames)``: frames that
        could not be decoded, or that the header announces and the file
        lacks (truncated).
    activity : Activity
        The timeline of scores.
    scores : ndarray, optional
        float32, one per frame from ``first_frame`` to ``last_frame``: its
        score, NaN for frames skipped; only with ``ScanOptions(scores=True)``.
    scene : list of SceneEvent
        The file's scene events (:mod:`bgsub.scan.scene`), with ``scan.scene``.
    during_scene : str
        ``events.during_scene``: whether its motion events are marked with them.
    dropped : int
        Motion events dropped as a scene change's own (``during_scene = "drop"``).
    unconfident : int
        Motion events dropped for a confidence under ``scan.min_confidence``.
    """

    path: str
    events: list[MotionEvent]
    fps: float
    width: int
    height: int
    downscale: int
    first_frame: int
    last_frame: int
    frames: int
    seconds: float
    scan_seconds: float
    decode_errors: int = 0
    activity: Activity = field(default_factory=Activity)
    scores: np.ndarray | None = None
    damaged: list[tuple[int, int]] = field(default_factory=list)
    scene: list[SceneEvent] = field(default_factory=list)
    during_scene: str = "mark"
    dropped: int = 0
    unconfident: int = 0

    @property
    def damaged_frames(self) -> int:
        """Frames of the damaged stretches."""
        return sum(count for _, count in self.damaged)

    @property
    def speed(self) -> float:
        """Seconds of video scanned per second of scanning."""
        return self.seconds / self.scan_seconds if self.scan_seconds > 0 else 0.0

    @property
    def frame_count(self) -> int:
        """Frames from ``first_frame`` to ``last_frame``, scored or skipped."""
        return self.last_frame - self.first_frame + 1


def merge_results(results: Iterable[ScanResult], config: Config | str | Path | None = None
                  ) -> ScanResult:
    """Stretches of one file scanned apart (in other processes, in any order), as one result.

    Each stretch is a :func:`scan_file` of the same file with its own
    ``ScanOptions(start=..., end=...)`` (and a ``warmup``, so that its
    model has settled when its stretch starts); together they cover the
    file without overlap.  Events are joined as one pass would have found
    them (:func:`bgsub.scan.detector.join_events`, with *config*'s rolls) and
    numbered again; counts add up; timelines and scores are put end to end.
    """
    config = _config(config)
    parts = sorted(results, key=lambda r: r.first_frame)
    if not parts:
        raise ValueError("no results to merge")
    head = parts[0]
    first, last, fps = head.first_frame, max(r.last_frame for r in parts), head.fps
    rules = rules_for(config.scan, fps)
    pieces = [Event(e.start_frame, e.end_frame, e.motion_start_frame, e.motion_end_frame,
                    e.peak_score, e.peak_frame, e.largest, None if e.box is None else
                    (e.box[0], e.box[1], e.box[0] + e.box[2] - 1, e.box[1] + e.box[3] - 1),
                    e.motion_frames, e.probability)
              for r in parts for e in r.events]
    events = [MotionEvent(head.path, n, e.start, e.end, e.motion_start, e.motion_end,
                          e.peak_frame, e.peak_score, e.largest, None if e.box is None else
                          (e.box[0], e.box[1], e.box[2] - e.box[0] + 1, e.box[3] - e.box[1] + 1),
                          fps, e.motion_frames, e.probability,
                          e.confidence(rules.min_length))
              for n, e in enumerate(join_events(pieces, rules, first, last), 1)]
    activity = Activity(head.activity.bins, max(r.activity.width for r in parts), first)
    for r in parts:
        for k, value in enumerate(r.activity.values):
            activity.add(r.activity.first + k * r.activity.width, value)
    scores = None
    if all(r.scores is not None for r in parts):
        scores = np.full(last - first + 1, np.nan, np.float32)
        for r in parts:
            scores[r.first_frame - first:r.first_frame - first + len(r.scores)] = r.scores
    return ScanResult(head.path, events, fps, head.width, head.height, head.downscale, first,
                      last, sum(r.frames for r in parts), (last - first + 1) / fps,
                      sum(r.scan_seconds for r in parts), sum(r.decode_errors for r in parts),
                      activity, scores, sorted({d for r in parts for d in r.damaged}),
                      scene=sorted((e for r in parts for e in r.scene),
                                   key=lambda e: e.start_frame),
                      during_scene=head.during_scene, dropped=sum(r.dropped for r in parts),
                      unconfident=sum(r.unconfident for r in parts))


def region_of(config: ScanConfig) -> Region:
    """The watched region a scan configuration describes."""
    return Region(config.regions, config.exclude, config.region_mask)


def rules_for(config: ScanConfig, fps: float, scale: tuple[float, float] = (1.0, 1.0)
              ) -> EventRules:
    """The event rules of *config* in frames of a *fps* video, ``min_area`` in scored pixels."""
    area = config.min_area / (scale[0] * scale[1])
    return EventRules(threshold=config.threshold,
                      min_area=max(1, round(area)) if config.min_area else 0,
                      min_length=max(1, config.min_event_length.frames(fps)),
                      pre_roll=config.pre_roll.frames(fps),
                      post_roll=config.post_roll.frames(fps))


def scorer_for(name: str, scan: ScanConfig, fps: float, size: tuple[int, int], *,
               scale: tuple[float, float] = (1.0, 1.0), first: int = 0, step: int = 1,
               on_event: EventCallback | None = None, scores: bool = False,
               keep_events: bool = True, probe: Probe | None = None,
               min_confidence: float = 0.0) -> MotionScorer:
    """The :class:`MotionScorer` of a ``[scan]`` configuration, for frames scored at *size*.

    The scan and a live run's events make theirs here, so that both judge
    alike.  *probe* (the masker's
    :meth:`~bgsub.model.masker.MixtureMasker.foreground_probability_at`) gives
    the events their confidence; events under *min_confidence* are dropped.
    """
    width, height = size
    watched = region_mask(region_of(scan), width, height, scale)
    window = scan.flicker_window.frames(fps)
    return MotionScorer(name, rules_for(scan, fps, scale), fps=fps, scale=scale,
                        watched=watched, first=first, step=step, on_event=on_event,
                        keep_scores=scores, flicker=scan.flicker, flicker_frames=window / step,
                        keep_events=keep_events, probe=probe, min_confidence=min_confidence,
                        speck=scan.speck, speck_share=scan.speck_share,
                        speck_frames=scan.speck_window.frames(fps) / step)


#: what an event's callback receives: the event, its peak frame (BGR, as scored)
#: and that frame's watched foreground (uint8, 255 = moving)
EventCallback = Callable[[MotionEvent, np.ndarray, np.ndarray], None]

#: the soft foreground probability of the last frame's pixels at flat indices (float32 each)
Probe = Callable[[np.ndarray], np.ndarray]

#: a frame's probability is the mean over at most this many of its moving pixels
PROBE_PIXELS = 256

#: pixels within this many of a place with specks are not scored either (a speck's
#: neighbours blink as well, less often)
SPECK_MARGIN = 2
#: places where the post-processing's blink gate applied in more than this share of
#: the recent frames (the speck map's running average) are not scored either
BLINK_SHARE = 0.2
_SPECK_SQUARE = np.ones((2 * SPECK_MARGIN + 1, 2 * SPECK_MARGIN + 1), np.uint8)


class MotionScorer:
    """A pipeline consumer: each result's score, the events, the timeline.

    Parameters
    ----------
    path : str
        The file, named in the events.
    rules : EventRules
        In frames; ``min_area`` in scored pixels.

    The other parameters are keyword-only:

    fps : float
    scale : tuple of float
        Source pixels per scored pixel, across and down.
    watched : ndarray, optional
        uint8 255 where watched, the scored frames' size; None: everything.
    flicker : float
        Pixels whose raw mask changed in more than this share of the
        recent frames are not scored (0: off; see :meth:`steady`).
    flicker_frames : float
        The time constant, in scored frames, of that share's running average.
    speck : float
        Foreground blobs under this share of the watched pixels are specks;
        pixels where specks were seen in more than ``speck_share`` of the
        recent frames (and those within :data:`SPECK_MARGIN` pixels) are not
        scored (0: off; see :meth:`speckless`).
    speck_share, speck_frames : float
        That share, and the time constant, in scored frames, of its running
        average.
    first, step : int
        The first frame scored and the frames each scored frame stands for.
    on_event : callable, optional
        ``on_event(event, peak_frame, peak_foreground)`` as each event is
        complete.
    keep_scores : bool
        Keep every frame's score (:meth:`score_array`).
    keep_events : bool
        Keep the events in :attr:`events` (a live run that goes on for weeks
        only counts them: :attr:`count`).
    probe : callable, optional
        ``probe(pixels)``: the soft foreground probability of the frame just
        masked at those flat pixel indices
        (:meth:`~bgsub.model.masker.MixtureMasker.foreground_probability_at`).
        Asked on frames with motion only, for at most :data:`PROBE_PIXELS` of
        their moving pixels, spread evenly; it makes the events'
        confidence.  None: no confidence (NaN).
    min_confidence : float
        Events of a lower confidence are dropped as they complete (counted
        in :attr:`unconfident`).
    """

    def __init__(self, path: str, rules: EventRules, *, fps: float,
                 scale: tuple[float, float] = (1.0, 1.0), watched: np.ndarray | None = None, first: int = 0, step: int = 1,
                 on_event: EventCallback | None = None, keep_scores: bool = False,
                 flicker: float = 0.0, flicker_frames: float = 45.0,
                 keep_events: bool = True, probe: Probe | None = None,
                 min_confidence: float = 0.0, speck: float = 0.0, speck_share: float = 0.005,
                 speck_frames: float = 300.0) -> None:
        self.path = path
        self.speck = speck
        self.speck_share = speck_share
        self.speck_rate = min(1.0, 1.0 / max(1.0, speck_frames))
        self._specks: np.ndarray | None = None  # float32 running share of specks, x 255
        self._blinks: np.ndarray | None = None  # the same of the blink gate's places
        self.probe = probe
        self.min_confidence = min_confidence
        self.unconfident = 0
        self.flicker = flicker
        self.flicker_rate = min(1.0, 1.0 / max(1.0, flicker_frames))
        self._changes: np.ndarray | None = None  # float32 running share of changes, x 255
        self._last_raw: np.ndarray | None = None
        self.fps = fps
        self.scale = scale
        self.watched = watched
        self.watched_pixels = int(cv2.countNonZero(watched)) if watched is not None else None
        self.first = first
        self.detector = EventDetector(rules, step, first)
        self.on_event = on_event
        self.events: list[MotionEvent] = []
        self.keep_events = keep_events
        self.count = 0
        self.activity = Activity(first=first)
        self.scores = array.array("f") if keep_scores else None
        self.frames = 0
        self.last_index = first - 1
        self._peaks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        #: ``veto(event)``, when set, drops an event as it completes (not numbered,
        #: kept or passed on); :attr:`dropped` counts them
        self.veto: Callable[[Event], bool] | None = None
        self.dropped = 0
        #: ``gate(score, moving)``, when set, gives the score a frame is judged by
        #: (*moving*: the frame's scored foreground, uint8 255 = moving)
        self.gate: Callable[[FrameScore, np.ndarray], FrameScore] | None = None
        #: ``hold_flicker()``, when set and true, keeps the flicker check as it is (it
        #: does not learn from the frame): rain or snow would make every pixel blink
        self.hold_flicker: Callable[[], bool] | None = None

    def steady(self, raw: np.ndarray) -> np.ndarray | None:
        """Learn from a raw mask where the picture flickers; 255 where it is steady.

        Leaves in the wind, rippling water and rain make the model's raw
        mask blink on and off at the same pixels, frame after frame, where
        a passing object turns a pixel on once and off once.  A running
        average of how often each pixel's raw foreground changed marks the
        pixels above ``flicker`` as unsteady; the post-processed foreground
        there is not scored.  (The post-processing alone cannot tell: in a
        gust it joins the blinking specks into blobs as large as a person.)
        None when off.
        """
        if self.flicker <= 0:
            return None
        now = foreground(raw)
        if self._changes is not None and self.hold_flicker is not None \
                and self.hold_flicker():
            self._last_raw = now
            return cv2.compare(self._changes, self.flicker * 255.0, cv2.CMP_LE)
        if self._changes is None:
            self._changes = np.zeros(now.shape, np.float32)
            self._last_raw = now
        changed = cv2.bitwise_xor(now, self._last_raw)
        self._last_raw = now
        cv2.accumulateWeighted(changed, self._changes, self.flicker_rate)
        return cv2.compare(self._changes, self.flicker * 255.0, cv2.CMP_LE)

    def speckless(self, mask: np.ndarray, blinking: np.ndarray | None = None
                  ) -> np.ndarray | None:
        """Learn where a (post-processed) mask has specks; 255 where there are few.

        A tree's crown in the wind, water and the model's noise leave small
        blobs of foreground that come and go, here one frame, there the next;
        the flicker check lets them through in a lull, and a gust then puts
        many of them on the screen at once, as much foreground as a person.
        Where specks keep appearing (in more than ``speck_share`` of the
        recent frames, a running average over ``speck_frames``), the pixels,
        and those within :data:`SPECK_MARGIN` pixels, are not scored, still or
        not.  A person, a car, a bag left behind is one large blob: the
        places they pass or stay are not specks.  *blinking* (uint8, 255) is
        where the post-processing's blink gate took its larger window: the gate
        removes most of the specks a waving background leaves, so where it
        applied in more than :data:`BLINK_SHARE` of the recent frames (the same
        running average) is not scored either (a share of its own: counted as
        specks, at ``speck_share``, the gate's places scored events lower on four
        of the five shared CDnet sequences and the same on the fifth).  None when
        off.
        """
        if self.speck <= 0:
            return None
        if self._specks is not None and self.hold_flicker is not None \
                and self.hold_flicker():  # rain or snow: specks everywhere, for a while
            return self._speckless()
        specks = foreground(mask)  # 255 where foreground: the large blobs are cleared below
        try:  # 16-bit labels: three to four times faster than 32-bit ones
            count, labels, stats, _ = cv2.connectedComponentsWithStats(
                specks, connectivity=8, ltype=cv2.CV_16U)
        except cv2.error:  # more blobs than they can number (OpenCV checks)
            count, labels, stats, _ = cv2.connectedComponentsWithStats(
                specks, connectivity=8, ltype=cv2.CV_32S)
        area = self.speck * (self.watched_pixels or mask.size)
        for blob in np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= area) + 1:
            x, y, w, h = stats[blob, :4]
            box = specks[y:y + h, x:x + w]
            box[labels[y:y + h, x:x + w] == blob] = 0
        if self._specks is None:
            self._specks = np.zeros(mask.shape, np.float32)  # the share of specks, x 255
        cv2.accumulateWeighted(specks, self._specks, self.speck_rate)
        if blinking is not None:
            if self._blinks is None:
                self._blinks = np.zeros(mask.shape, np.float32)
            cv2.accumulateWeighted(blinking, self._blinks, self.speck_rate)
        return self._speckless()

    def _speckless(self) -> np.ndarray:
        # 255 where the shares are low and low all round (an erosion of those: the
        # margin around the places with specks)
        free = cv2.compare(self._specks, self.speck_share * 255.0, cv2.CMP_LE)
        if self._blinks is not None:
            calm = cv2.compare(self._blinks, BLINK_SHARE * 255.0, cv2.CMP_LE)
            cv2.bitwise_and(free, calm, dst=free)
        return cv2.erode(free, _SPECK_SQUARE, dst=free)

    def score(self, mask: np.ndarray, steady: np.ndarray | None = None
              ) -> tuple[FrameScore, np.ndarray]:
        """A mask's score over the watched, *steady* pixels, and that foreground itself."""
        moving = foreground(mask)
        if self.watched is not None:
            cv2.bitwise_and(moving, self.watched, dst=moving)
        if steady is not None:
            cv2.bitwise_and(moving, steady, dst=moving)
        count = cv2.countNonZero(moving)
        if count == 0:
            return FrameScore(0.0), moving
        contours, _ = cv2.findContours(moving, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        largest = max(blob_area(c) for c in contours)
        x, y, w, h = cv2.boundingRect(moving)
        return FrameScore(count / (self.watched_pixels or moving.size), round(largest),
                          (x, y, x + w - 1, y + h - 1)), moving

    def write(self, result: FrameResult) -> None:
        steady = self.steady(result.raw_mask if result.raw_mask is not None else result.mask)
        speckless = self.speckless(result.mask, result.blinking)
        if steady is None:
            steady = speckless
        elif speckless is not None:
            cv2.bitwise_and(steady, speckless, dst=steady)
        if result.index < self.first:  # the warm-up: the models learn, nothing is scored
            return
        score, moving = self.score(result.mask, steady)
        if self.gate is not None:
            score = self.gate(score, moving)
        if self.probe is not None and self.detector.rules.has_motion(score):
            score = FrameScore(score.fraction, score.largest, score.box,
                               self.probability(moving))
        self.frames += 1
        self.last_index = result.index
        self.activity.add(result.index, score.fraction)
        if self.scores is not None:  # NaN for the frames skipped
            gap = result.index - self.first - len(self.scores)
            self.scores.extend([math.nan] * gap)
            self.scores.append(score.fraction)
        done = self.detector.update(result.index, score)
        keep = self.detector.peak_frames() | {e.peak_frame for e in done}
        if result.index in keep:
            self._peaks[result.index] = (result.frame, moving)
        self._emit(done)
        for index in list(self._peaks):
            if index not in keep or any(e.peak_frame == index for e in done):
                del self._peaks[index]

    def probability(self, moving: np.ndarray) -> float:
        """The mean soft probability of at most :data:`PROBE_PIXELS` of *moving*'s pixels
        (uint8, 255 = moving), spread evenly over them; NaN when none moves."""
        points = cv2.findNonZero(moving)  # (x, y) in row-major order; 50x flatnonzero's speed
        if points is None:
            return math.nan
        points = points.reshape(-1, 2)
        if len(points) > PROBE_PIXELS:
            points = points[(np.arange(PROBE_PIXELS) * len(points)) // PROBE_PIXELS]
        pixels = points[:, 1].astype(np.int64) * moving.shape[1] + points[:, 0]
        return float(np.mean(self.probe(pixels), dtype=np.float64))

    def finish(self, last_frame: int) -> None:
        """The end of the frames: the events still open are complete."""
        self._emit(self.detector.finish(last_frame))
        self._peaks.clear()

    @property
    def in_event(self) -> bool:
        return self.detector.in_event

    def score_array(self, frames: int) -> np.ndarray | None:
        """The scores kept (None without ``keep_scores``) for *frames* frames from ``first``."""
        if self.scores is None:
            return None
        out = np.full(frames, np.nan, np.float32)
        kept = np.frombuffer(self.scores, np.float32)[:frames]
        out[:len(kept)] = kept
        return out

    def _emit(self, done: list[Event]) -> None:
        sx, sy = self.scale
        for event in done:
            if self.veto is not None and self.veto(event):
                self.dropped += 1
                continue
            confidence = event.confidence(self.detector.rules.min_length)
            if confidence < self.min_confidence:  # NaN (not measured) is kept
                self.unconfident += 1
                continue
            box = None
            if event.box is not None:
                x0, y0, x1, y1 = event.box
                box = (int(x0 * sx), int(y0 * sy), round((x1 + 1) * sx) - int(x0 * sx),
                       round((y1 + 1) * sy) - int(y0 * sy))
            self.count += 1
            found = MotionEvent(self.path, self.count, event.start, event.end,
                                event.motion_start, event.motion_end, event.peak_frame,
                                event.peak_score, round(event.largest * sx * sy), box, self.fps,
                                event.motion_frames, event.probability, confidence)
            if self.keep_events:
                self.events.append(found)
            if self.on_event is not None and event.peak_frame in self._peaks:
                self.on_event(found, *self._peaks[event.peak_frame])

    def close(self) -> None:
        pass


def decode_threads() -> int:
    """FFmpeg's decoding threads for a scan: the same for every file on this machine.

    Not shared out with the scans running at once: how a damaged frame is
    repaired (error concealment) depends on the decoder's threads, and a
    file's results must not depend on the files scanned beside it.
    """
    return min(os.cpu_count() or 1, 4)


def _config(config: Config | str | Path | None) -> Config:
    if isinstance(config, Config):
        return config
    return resolve_config(config)


def _frame_of(value: Duration | None, fps: float) -> int | None:
    return None if value is None else value.frames(fps)


def scan_file(path: str | Path, config: Config | str | Path | None = None,
              options: ScanOptions | None = None, *, on_event: EventCallback | None = None,
              progress=None, stop: threading.Event | None = None,
              step: FrameStep | None = None) -> ScanResult:
    """Scan a video file for motion events.

    Parameters
    ----------
    path : str or Path
        The video file.
    config : Config, str or Path, optional
        The configuration, or a TOML file to read it from (default:
        ``./config.toml`` when present, else the built-in defaults).  Its
        ``[model]`` and ``[postprocess]`` make the masks, its ``[scan]``
        scores them and finds the events.
    options : ScanOptions, optional
        Start, end, warm-up, per-frame scores, threads.
    on_event : callable, optional
        ``on_event(event, peak_frame, peak_foreground)`` as each event is
        complete (thumbnails, alerts).
    progress : optional
        A :class:`~bgsub.io.progress.Progress` (or anything with
        ``update(done)`` and ``close()``), told the frames done.
    stop : threading.Event, optional
        Set it to stop early; the result then covers the frames scanned.
    step : FrameStep, optional
        The frame step to use, model included (default: a new one from
        *config*).  Pass the previous file's to carry its model on to a
        camera's next recording.  (The flicker check's memory, 1.5 s by
        default, starts afresh with each file.)

    Returns
    -------
    ScanResult

    Raises
    ------
    bgsub.io.sources.SourceError
        When the file cannot be read as a video.
    bgsub.regions.RegionError
        When the region covers none of the frame or its image cannot be read.
    bgsub.timecode.DurationError
        When the options' end is not after their start (in this file's frames).

    Examples
    --------
    >>> from bgsub import scan_file                                  # doctest: +SKIP
    >>> result = scan_file("garden.mp4")                             # doctest: +SKIP
    >>> [(e.start_time, e.end_time) for e in result.events]          # doctest: +SKIP
    """
    config = _config(config)
    options = options or ScanOptions()
    scan = config.scan
    began = time.perf_counter()
    source = VideoFile(path, downscale=scan.downscale, frame_skip=scan.frame_skip,
                       threads=options.decode_threads)
    try:
        fps = source.info.fps
        first = _frame_of(options.start, fps) or 0
        end = _frame_of(options.end, fps)
        if end is not None and end <= first:
            raise DurationError(f"the end ({options.end}) is not after the start "
                                f"({options.start or '0 frames'})")
        warmup = min(first, options.warmup.frames(fps))
        source.limit(first - warmup, None if end is None else end - 1)
        width, height = source.work_size
        scorer = scorer_for(str(path), scan, fps, (width, height), scale=source.scale,
                            first=first, step=source.step, on_event=on_event,
                            scores=options.scores, min_confidence=scan.min_confidence)
        # the model counts its absorption time in the frames it sees
        flicker = scan.flicker > 0  # judged on the raw masks
        speck = scan.speck > 0  # also where the blink gate applied
        if step is None:
            step = FrameStep.from_config(config, threads=options.threads,
                                         fps=fps / source.step, keep_raw=flicker,
                                         blinking=speck)
        elif (flicker and not step.keep_raw) or (speck and not step.blinking):
            # the same model and post-processing, carried on
            step = step.with_outputs(keep_raw=step.keep_raw or flicker,
                                     blinking=step.blinking or speck)
        scorer.probe = step.masker.foreground_probability_at  # the events' confidence
        reader = NumberedReader(FrameReader(source, config.source.queue_size), source)
    except BaseException:
        source.close()
        raise
    scene = SceneDetector(SceneRules(fps=fps / source.step)) if scan.scene else None
    if scene is not None and config.events.during_scene == "drop":
        scorer.veto = lambda event: scene.explains(event.motion_start)
    if scene is not None:
        weather_gate(scorer, scene, scan.weather_blob, (width, height))
    try:  # the scene detector first: it has seen a frame when the scorer ends an event
        run_pipeline(reader, step, ([scene] if scene is not None else []) + [scorer],
                     progress=progress, stop=stop)
    finally:
        reader.close()
    last_frame = max(source.last_number, first - 1)
    if stop is not None and stop.is_set():  # the reader may have read ahead of the scores
        last_frame = min(last_frame, scorer.last_index + source.step - 1)
    scorer.finish(last_frame)
    frames = max(0, last_frame - first + 1)
    # the stretches in the frames scanned (a stretch of a file reports its own only)
    end = source.last if source.last is not None else math.inf
    damaged = [(max(start, first), min(start + count - 1, end) - max(start, first) + 1)
               for start, count in source.damaged
               if start <= end and start + count - 1 >= first]
    if stop is not None and stop.is_set():
        damaged = [d for d in damaged if d[0] <= last_frame]
    return ScanResult(str(path), scorer.events, fps, source.width, source.height,
                      source.factor, first, last_frame, scorer.frames, frames / fps,
                      time.perf_counter() - began, source.decode_errors, scorer.activity,
                      scorer.score_array(frames), damaged,
                      scene=_scene_events(scene, first, last_frame),
                      during_scene=config.events.during_scene, dropped=scorer.dropped,
                      unconfident=scorer.unconfident)


#: seconds a blob must last, overlapping itself from frame to frame, to be motion in
#: rain or snow (streaks and flakes last a frame; a person, a car, far longer)
WEATHER_PERSISTENCE = 0.2


def weather_gate(scorer: MotionScorer, scene: SceneDetector, share: float,
                 size: tuple[int, int]) -> None:
    """While *scene* sees rain or snow, *scorer*'s frames (of *size*, width and height)
    have motion only with a blob of *share* of the watched pixels (``scan.weather_blob``;
    0: no gate) that has lasted :data:`WEATHER_PERSISTENCE` seconds: in each of the
    frames scored in that time a blob that large overlapped the previous frame's.

    Whatever *share*, the scorer's flicker check and speck map hold what they have
    learned while *scene* sees weather: rain makes every pixel blink and leave specks,
    and learning that would leave nothing scored."""
    scorer.hold_flicker = lambda: scene.seeing("weather")
    if share <= 0:
        return
    area = share * (scorer.watched_pixels or size[0] * size[1])
    step = scorer.detector.step
    need = max(1, round(WEATHER_PERSISTENCE * scorer.fps / step))
    state: dict = {"large": None, "run": 0}  # the last frame's large blobs; frames they lasted

    def gate(score: FrameScore, moving: np.ndarray) -> FrameScore:
        if not scene.seeing("weather"):
            state["large"], state["run"] = None, 0
            return score
        large = None
        if score.largest >= area:
            count, labels, stats, _ = cv2.connectedComponentsWithStats(moving, connectivity=8)
            keep = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= area)
            keep = keep[keep > 0]  # not the background
            if keep.size:
                large = np.isin(labels, keep)
        before = state["large"]
        if large is None:
            state["run"] = 0
        elif before is not None and np.logical_and(large, before).any():
            state["run"] += 1
        else:
            state["run"] = 1
        state["large"] = large
        return score if state["run"] >= need else FrameScore(0.0)

    scorer.gate = gate


def _scene_events(detector: SceneDetector | None, first: int, last: int) -> list[SceneEvent]:
    """The detector's events within frames ``first .. last`` (not the warm-up's), ended."""
    if detector is None:
        return []
    detector.finish()
    events = []
    for e in detector.events:
        if e.end_frame >= first and e.start_frame <= last:
            e.start_frame, e.end_frame = max(e.start_frame, first), min(e.end_frame, last)
            events.append(e)
    return events


def iter_events(path: str | Path, config: Config | str | Path | None = None,
                options: ScanOptions | None = None) -> Iterator[MotionEvent]:
    """The motion events of a video file, each as soon as it is complete.

    The scan runs in a thread; stopping the iteration early (``break``)
    stops it.  Errors of the scan are raised here.

    Examples
    --------
    >>> from bgsub import iter_events                                # doctest: +SKIP
    >>> for event in iter_events("driveway.mp4"):                    # doctest: +SKIP
    ...     print(event.line())
    """
    found: queue.Queue = queue.Queue()
    stop = threading.Event()
    end = object()

    def scan() -> None:
        try:
            scan_file(path, config, options, stop=stop,
                      on_event=lambda event, frame, moving: found.put(event))
            found.put(end)
        except BaseException as exc:  # raised again in the caller's thread
            found.put(exc)

    thread = threading.Thread(target=scan, name="bgsub-scan", daemon=True)
    thread.start()
    try:
        while True:
            item = found.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


_CLIP_NAME = re.compile(r"\.event\d{3,}$")


def _is_video(name: str) -> bool:
    """Whether a file found in a folder is an input: a video, not a scan's clip or partial."""
    path = Path(name)
    return (path.suffix.lower() in VIDEO_EXTENSIONS and not name.startswith(".")
            and not _CLIP_NAME.search(path.stem))


def find_videos(inputs: Iterable[str]) -> tuple[list[Path], list[str]]:
    """The video files that *inputs* name, in order, each once; and the inputs that named none.

    An input is a file (taken whatever its extension), a folder (searched
    recursively for :data:`VIDEO_EXTENSIONS`, sorted by path) or a glob
    pattern (``cam1/*.mp4``, ``**/*.mkv``).  In folders and patterns, the
    clips an earlier scan cut (``NAME.event001.mp4``) and hidden files
    (a scan's partial outputs among them) are no inputs.
    """
    import glob

    files: list[Path] = []
    seen: set[Path] = set()
    empty: list[str] = []

    def named(text: str) -> list[Path]:
        path = Path(text)
        if path.is_dir():
            found = []
            for root, dirs, names in os.walk(path):
                dirs.sort()
                found += [Path(root) / name for name in sorted(names) if _is_video(name)]
            return found
        if path.exists():
            return [path]
        if glob.has_magic(text):
            found = []
            for match in sorted(glob.glob(text, recursive=True)):
                if Path(match).is_dir():
                    found += named(match)
                elif Path(match).is_file() and _is_video(Path(match).name):
                    found.append(Path(match))
            return found
        return []

    for text in inputs:
        found = named(text)
        if not found:
            empty.append(text)
        for path in found:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files, empty
