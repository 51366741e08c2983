"""Motion events from per-frame scores: a small, pure state machine.

Each frame that is looked at gets a :class:`FrameScore` (the share of the
watched region that is foreground, the area of the largest blob, the box
around the motion).  A frame *has motion* when its share reaches
``threshold`` or its largest blob reaches ``min_area`` (a small, distant
person moves few pixels but in one piece).  :class:`EventDetector` turns
the scores, in order, into :class:`Event` s:

* an event starts once motion has lasted ``min_length`` frames without a
  break; its motion starts with the first of them;
* it ends once there has been no motion for ``post_roll`` frames, which it
  includes; it also includes ``pre_roll`` frames before its motion (never
  before the first frame looked at);
* two events that would overlap or touch once their rolls are added are one
  event.

No I/O and no clock: the same scores give the same events, a file scanned
now or a live camera (it knows frame numbers only).  With
``step > 1`` (a frame looked at, then ``step - 1`` skipped), each score
stands for the frames up to the next one looked at.

Memory is constant: an event in the making keeps a few numbers; the frames
behind its peak are the caller's to keep (:meth:`EventDetector.peak_frames`
says which).

Examples
--------
>>> rules = EventRules(threshold=0.01, min_length=2, pre_roll=1, post_roll=2)
>>> detector = EventDetector(rules)
>>> shares = [0, 0, 0, 0.05, 0.08, 0.06, 0, 0, 0, 0, 0]
>>> events = [e for i, s in enumerate(shares) for e in detector.update(i, FrameScore(s))]
>>> events += detector.finish(len(shares) - 1)
>>> [(e.start, e.motion_start, e.motion_end, e.end, e.peak_frame) for e in events]
[(2, 3, 5, 7, 4)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

__all__ = ["FrameScore", "EventRules", "Event", "EventDetector", "union_box", "join_events",
           "confidence"]

Box = tuple[int, int, int, int]  # x0, y0, x1, y1, inclusive


@dataclass(frozen=True, slots=True)
class FrameScore:
    """How much a frame moved.

    Attributes
    ----------
    fraction : float
        Share, in [0, 1], of the watched pixels that are foreground.
    largest : int
        Area of the largest foreground blob, in the unit of ``min_area``.
    box : tuple of int, optional
        ``(x0, y0, x1, y1)`` (inclusive) around the foreground, or None.
    probability : float
        The mean soft foreground probability of the foreground's pixels (see
        :func:`confidence`), NaN when not measured.
    """

    fraction: float
    largest: int = 0
    box: Box | None = None
    probability: float = math.nan


@dataclass(frozen=True)
class EventRules:
    """When frames have motion and how motion becomes events (durations in frames).

    Attributes
    ----------
    threshold : float
        A frame has motion when its ``fraction`` reaches this, in (0, 1].
    min_area : int
        ... or when its largest blob reaches this many pixels (0: never).
    min_length : int
        Frames of motion, without a break, that start an event (>= 1).
    pre_roll, post_roll : int
        Frames an event includes before its motion and after it (>= 0); an
        event ends after ``post_roll`` frames without motion.
    """

    threshold: float
    min_area: int = 0
    min_length: int = 1
    pre_roll: int = 0
    post_roll: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.min_area < 0 or self.min_length < 1 or self.pre_roll < 0 or self.post_roll < 0:
            raise ValueError("min_area, pre_roll and post_roll must be >= 0 and min_length "
                             f">= 1, got {self}")

    def has_motion(self, score: FrameScore) -> bool:
        """Whether a frame of this *score* has motion."""
        return (score.fraction >= self.threshold
                or self.min_area > 0 and score.largest >= self.min_area)


@dataclass(frozen=True)
class Event:
    """A stretch of video with motion (frame numbers zero-based, inclusive).

    Attributes
    ----------
    start, end : int
        The event's first and last frame, rolls included.
    motion_start, motion_end : int
        The first and last frame with motion.
    peak_score : float
        The largest ``fraction`` of its frames; ``peak_frame`` is the first
        frame that had it.
    peak_frame : int
    largest : int
        The largest blob area seen in the event.
    box : tuple of int, optional
        The union of the frames' boxes, ``(x0, y0, x1, y1)`` inclusive.
    motion_frames : int
        Frames with motion (a scored frame counts for the frames it stands for).
    probability : float
        The mean, over the frames with motion that measured it, of the
        frames' :attr:`FrameScore.probability` (NaN when none did).
    """

    start: int
    end: int
    motion_start: int
    motion_end: int
    peak_score: float
    peak_frame: int
    largest: int = 0
    box: Box | None = None
    motion_frames: int = 0
    probability: float = math.nan

    @property
    def frames(self) -> int:
        """Frames in the event, rolls included."""
        return self.end - self.start + 1

    def confidence(self, min_length: int) -> float:
        """:func:`confidence` of this event, under rules of ``min_length`` frames."""
        return confidence(self.probability, self.motion_frames,
                          self.motion_end - self.motion_start + 1, min_length)


#: the persistence scale, in multiples of ``min_length`` (see :func:`confidence`): the
#: value of the least Brier score on ``benchmarks/confidence_table.py``'s events
PERSISTENCE_SCALE = 3.0


def confidence(probability: float, motion_frames: int, motion_span: int,
               min_length: int) -> float:
    """How sure an event is, in [0, 1]: its pixels' soft probability times its persistence.

    ``probability * (1 - exp(-motion_frames / (S * min_length))) * steadiness``,
    with ``S`` = :data:`PERSISTENCE_SCALE` and ``steadiness = motion_frames /
    motion_span``, the share of the frames from its first to its last frame
    of motion that had motion.  *probability* is the mean soft foreground
    probability of the event's moving pixels (how far they are from
    everything the background model knows), so a solid object that moves
    steadily for a while scores near 1 and a speck that blinks for a few
    frames near 0.  NaN when *probability* is (not measured).

    >>> round(confidence(0.95, 50, 50, 3), 2), round(confidence(0.6, 3, 8, 3), 2)
    (0.95, 0.06)
    """
    if not math.isfinite(probability) or motion_span <= 0:
        return math.nan
    persistence = 1.0 - math.exp(-motion_frames / (PERSISTENCE_SCALE * max(1, min_length)))
    steadiness = min(1.0, motion_frames / motion_span)
    return min(1.0, max(0.0, probability)) * persistence * steadiness


def union_box(a: Box | None, b: Box | None) -> Box | None:
    """The smallest box around both (either may be None)."""
    if a is None:
        return b
    if b is None:
        return a
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


@dataclass
class _Motion:
    """Motion gathered so far: of a run not yet an event, or of an event."""

    start: int  # first frame of motion
    last: int  # last frame of motion
    peak_score: float = -1.0
    peak_frame: int = -1
    largest: int = 0
    box: Box | None = None
    event_start: int = field(default=-1)  # with the pre-roll, once it is an event
    end: int = field(default=-1)  # with the post-roll, once it is closed
    motion_frames: int = 0
    probability_sum: float = 0.0  # over the frames that measured it
    probability_frames: int = 0

    @property
    def probability(self) -> float:
        return (self.probability_sum / self.probability_frames if self.probability_frames
                else math.nan)

    def add(self, index: int, last: int, score: FrameScore) -> None:
        self.last = last
        self.motion_frames += last - index + 1
        if math.isfinite(score.probability):
            self.probability_sum += score.probability
            self.probability_frames += 1
        if score.fraction > self.peak_score:
            self.peak_score, self.peak_frame = score.fraction, index
        self.largest = max(self.largest, score.largest)
        self.box = union_box(self.box, score.box)

    def absorb(self, later: _Motion) -> None:
        """Take in the motion of a later run (merging two events)."""
        self.last = later.last
        self.motion_frames += later.motion_frames
        self.probability_sum += later.probability_sum
        self.probability_frames += later.probability_frames
        if later.peak_score > self.peak_score:
            self.peak_score, self.peak_frame = later.peak_score, later.peak_frame
        self.largest = max(self.largest, later.largest)
        self.box = union_box(self.box, later.box)

    def event(self) -> Event:
        return Event(self.event_start, self.end, self.start, self.last, self.peak_score,
                     self.peak_frame, self.largest, self.box, self.motion_frames,
                     self.probability)


class EventDetector:
    """Turn per-frame scores, in frame order, into events.

    Parameters
    ----------
    rules : EventRules
        Threshold and durations, in frames.
    step : int
        Frames each score stands for: 1 when every frame is scored,
        ``frame_skip + 1`` when frames are skipped.
    first : int
        The first frame looked at: no pre-roll reaches before it.

    Notes
    -----
    Call :meth:`update` for each scored frame and :meth:`finish` at the end;
    both return the events that are complete, in order.  An event is
    returned once no later motion can join it, that is ``pre_roll`` frames
    (at least) after its end.
    """

    def __init__(self, rules: EventRules, step: int = 1, first: int = 0) -> None:
        if step < 1:
            raise ValueError(f"step must be >= 1, got {step}")
        self.rules = rules
        self.step = step
        self.first = first
        self._run: _Motion | None = None  # motion not yet long enough to be an event
        self._open: _Motion | None = None  # the event under way
        self._closed: _Motion | None = None  # ended, but a close event may still join it
        self._last_seen = first - 1
        #: events begun so far (a run that joins the event before it begins none)
        self.started = 0

    @property
    def in_event(self) -> bool:
        """Whether an event is under way (its motion has not ended for ``post_roll``)."""
        return self._open is not None

    def current(self) -> Event | None:
        """The event in the making, as it stands: under way, or ended but not yet complete.

        Its ``end`` is the last frame of motion plus ``post_roll`` once the
        motion has ended for that long, else -1 (not known yet).
        """
        motion = self._open if self._open is not None else self._closed
        if motion is None:
            return None
        return Event(motion.event_start, motion.end if motion is self._closed else -1,
                     motion.start, motion.last, motion.peak_score, motion.peak_frame,
                     motion.largest, motion.box, motion.motion_frames, motion.probability)

    def peak_frames(self) -> set[int]:
        """The frames that may yet be an event's peak: keep their images, and only them."""
        return {m.peak_frame for m in (self._run, self._open, self._closed) if m is not None}

    def update(self, index: int, score: FrameScore) -> list[Event]:
        """Take the score of frame *index* (after every earlier one); return complete events."""
        if index <= self._last_seen:
            raise ValueError(f"frame {index} comes after frame {self._last_seen}: scores "
                             "must come in frame order")
        rules = self.rules
        last = index + self.step - 1  # the last frame this score stands for
        self._last_seen = last
        done: list[Event] = []
        motion = rules.has_motion(score)
        if self._open is not None:
            if motion:
                self._open.add(index, last, score)
            elif last - self._open.last >= max(rules.post_roll, 1):
                self._open.end = self._open.last + rules.post_roll
                self._closed, self._open = self._open, None
        elif motion:
            if self._run is None:
                self._run = _Motion(index, last)
            self._run.add(index, last, score)
            if last - self._run.start + 1 >= rules.min_length:
                self._begin(self._run, done)
                self._run = None
        else:
            self._run = None
        if self._closed is not None:
            # the earliest frame an event still to come could start at
            earliest = (self._run.start if self._run is not None else last + 1) - rules.pre_roll
            if earliest > self._closed.end + 1:
                done.append(self._closed.event())
                self._closed = None
        return done

    def _begin(self, run: _Motion, done: list[Event]) -> None:
        start = max(self.first, run.start - self.rules.pre_roll)
        if self._closed is not None and start <= self._closed.end + 1:
            self._closed.absorb(run)  # close enough to the last event: one event
            self._open, self._closed = self._closed, None
            return
        if self._closed is not None:
            done.append(self._closed.event())
            self._closed = None
        run.event_start = start
        self._open = run
        self.started += 1

    def finish(self, last_frame: int | None = None) -> list[Event]:
        """End of the frames: the events still in the making, with their ends clipped.

        *last_frame* is the last frame of the video (default: the last frame
        the scores stood for).  Motion shorter than ``min_length`` at the very
        end is no event.  The detector starts afresh afterwards.
        """
        last_frame = self._last_seen if last_frame is None else last_frame
        done = []
        if self._closed is not None:
            done.append(self._closed.event())
        if self._open is not None:
            self._open.end = min(self._open.last + self.rules.post_roll,
                                 max(last_frame, self._open.last))
            done.append(self._open.event())
        self._run = self._open = self._closed = None
        self._last_seen = self.first - 1
        return done


def join_events(events: Iterable[Event], rules: EventRules, first: int, last: int
                ) -> list[Event]:
    """Events found in pieces (stretches of one video scanned apart), as one pass finds them.

    A stretch scanned on its own clips its events' rolls at its ends, and
    an event that crosses from one stretch into the next comes out as two.
    Here each event's span is made again from its motion (``pre_roll``
    before it, ``post_roll`` after it, within *first* .. *last*, the frames
    of the whole) and the events that then overlap or touch become one, as
    :class:`EventDetector` would have made them in a single pass.  (A run of
    motion split between two stretches, shorter than ``min_length`` on each
    side, stays unseen.)  Events from one pass come out unchanged.

    >>> rules = EventRules(0.01, pre_roll=2, post_roll=2)
    >>> parts = [Event(0, 9, 5, 9, 0.1, 6), Event(10, 14, 11, 12, 0.3, 11)]
    >>> [(e.start, e.end, e.motion_start, e.motion_end, e.peak_frame)
    ...  for e in join_events(parts, rules, 0, 20)]
    [(3, 14, 5, 12, 11)]
    """
    joined: list[Event] = []
    for event in sorted(events, key=lambda e: e.motion_start):
        start = max(first, event.motion_start - rules.pre_roll)
        end = min(last, event.motion_end + rules.post_roll)
        if joined and start <= joined[-1].end + 1:
            before = joined[-1]
            peak = before if before.peak_score >= event.peak_score else event
            joined[-1] = Event(before.start, max(before.end, end), before.motion_start,
                               max(before.motion_end, event.motion_end), peak.peak_score,
                               peak.peak_frame, max(before.largest, event.largest),
                               union_box(before.box, event.box),
                               before.motion_frames + event.motion_frames,
                               _mean_probability(before, event))
        else:
            joined.append(Event(start, end, event.motion_start, event.motion_end,
                                event.peak_score, event.peak_frame, event.largest, event.box,
                                event.motion_frames, event.probability))
    return joined


def _mean_probability(a: Event, b: Event) -> float:
    """The probability of two events joined: their means weighted by their motion frames."""
    parts = [(e.probability, max(1, e.motion_frames)) for e in (a, b)
             if math.isfinite(e.probability)]
    if not parts:
        return math.nan
    return sum(p * n for p, n in parts) / sum(n for _, n in parts)
