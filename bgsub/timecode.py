"""Durations and positions in a video: frames, seconds or timecodes.

People say "45 frames", "1.5 s" or "00:01:30" depending on what they look
at; a setting that takes a duration (``scan.pre_roll``, ``--start``) takes
any of them:

=================  ==================  ======================================
written            means               note
=================  ==================  ======================================
``45``, ``"45"``   45 frames           an integer count of frames
``"1.5s"``         1.5 seconds         a number followed by ``s``
``"00:00:01.5"``   1.5 seconds         ``HH:MM:SS[.fff]`` or ``MM:SS[.fff]``
=================  ==================  ======================================

Seconds become frames at the video's own frame rate (:meth:`Duration.frames`),
so one setting suits files of different rates.
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass

from .errors import BgsubError

__all__ = ["Duration", "DurationError", "parse_duration", "timecode", "DURATION_FORMS"]

#: what a duration may look like, for error messages
DURATION_FORMS = 'frames (45), seconds ("1.5s") or a timecode ("00:00:01.5")'

_SECONDS = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*s\s*$")
_TIMECODE = re.compile(r"^\s*(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)\s*$")


class DurationError(BgsubError, ValueError):
    """A duration or position that is none of the forms of the module's table (a user error)."""


@dataclass(frozen=True)
class Duration:
    """A length of video, as a frame count or in seconds (exactly one of them).

    Examples
    --------
    >>> parse_duration("1.5s").frames(30.0)
    45
    >>> parse_duration(45).frames(25.0), parse_duration("00:01:00").seconds
    (45, 60.0)
    """

    count: int | None = None
    seconds: float | None = None

    def frames(self, fps: float) -> int:
        """The duration in frames of a video at *fps* (seconds rounded to the nearest frame)."""
        if self.count is not None:
            return self.count
        return math.floor(self.seconds * fps + 0.5)

    def __post_init__(self) -> None:
        if (self.count is None) == (self.seconds is None):
            raise ValueError("a Duration is a frame count or seconds, exactly one of them")

    def setting(self) -> int | str:
        """The duration as a setting writes it: frames as an int (``45``), seconds as ``"1.5s"``.

        :func:`parse_duration` of it gives the same duration back.

        >>> Duration(count=45).setting(), Duration(seconds=1.5).setting()
        (45, '1.5s')
        """
        if self.count is not None:
            return self.count
        text = f"{self.seconds:g}"
        if "e" in text or float(text) != self.seconds:  # exactly, in the grammar's digits
            text = repr(self.seconds)
            if "e" in text:
                text = f"{self.seconds:.17f}".rstrip("0").rstrip(".")
        return f"{text}s"

    def __str__(self) -> str:
        return f"{self.count} frames" if self.count is not None else f"{self.seconds:g} s"


def parse_duration(value: object, name: str = "duration") -> Duration:
    """Read a duration written as frames, seconds or a timecode (see the module's table).

    A ``datetime.time`` (what TOML makes of an unquoted ``00:00:01.5``) is a
    timecode too; a :class:`Duration` is taken as it is.

    Raises
    ------
    DurationError
        Naming *name*, what was given and what is expected (a ``ValueError``).
    """
    if isinstance(value, Duration):
        return value
    if isinstance(value, datetime.time):
        return Duration(seconds=value.hour * 3600 + value.minute * 60 + value.second
                        + value.microsecond / 1e6)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Duration(count=value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return Duration(count=int(text))
        match = _SECONDS.match(text)
        if match:
            return Duration(seconds=float(match.group(1)))
        match = _TIMECODE.match(text)
        if match and float(match.group(3)) < 60 and (
                match.group(1) is None or int(match.group(2)) < 60):
            hours = int(match.group(1) or 0)
            return Duration(seconds=hours * 3600 + int(match.group(2)) * 60
                            + float(match.group(3)))
    raise DurationError(f"{name} must be {DURATION_FORMS}, got {value!r}")


def timecode(seconds: float) -> str:
    """``HH:MM:SS.mmm`` for a position or length in seconds.

    >>> timecode(3723.5)
    '01:02:03.500'
    """
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    return f"{hours:02d}:{minutes:02d}:{millis // 1000:02d}.{millis % 1000:03d}"
