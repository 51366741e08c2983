"""Progress of a run: a live bar on a terminal, a log line now and then elsewhere.

tqdm draws the bar (its rate and ETA, kept above other output by
:func:`bgsub.cli.common.logging_to_stderr`, which writes log lines through
``tqdm.write``).  The clock starts after the first item: the first frame
also loads or compiles the kernels, and a rate that counted it would promise
an ETA of an hour.  In a log file a bar makes no sense: a line goes to the
``bgsub`` logger every ``interval`` seconds instead.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

from tqdm import tqdm

__all__ = ["Progress"]

logger = logging.getLogger("bgsub")


class Progress:
    """Report ``update(done)`` calls against an optional *total*.

    Parameters
    ----------
    total : int, optional
        Items expected (frames); None where unknown (cameras, streams).
    unit : str
        What is counted.
    quiet : bool
        Report nothing.
    stream : file, optional
        Where the bar goes (default: ``sys.stderr`` as it is when the
        progress starts).  A bar only on a terminal; elsewhere log lines.
    interval : float, optional
        Seconds between log lines (default 10).
    desc : str, optional
        What is being done, in front of the bar or line.
    """

    def __init__(self, total: int | None = None, *, unit: str = "frames", quiet: bool = False,
                 stream: TextIO | None = None, interval: float = 10.0,
                 desc: str | None = None) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        try:
            self.live = bool(isatty()) if isatty is not None else False
        except (OSError, ValueError):  # a closed stream
            self.live = False
        self.interval = interval
        self._bar: tqdm | None = None
        self._first: tuple[int, float] | None = None  # the count and time of the first update
        self._last_line = 0.0
        self._note = ""

    def note(self, text: str) -> None:
        """Show *text* after the count (events found so far, say) from the next update on."""
        self._note = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def update(self, done: int) -> None:
        """*done* items so far."""
        if self.quiet or done <= 0:
            return
        now = time.perf_counter()
        if self._first is None:
            self._first = (done, now)
            self._last_line = now
            if self.live:
                self._bar = tqdm(total=self.total, initial=done, unit=f" {self.unit}",
                                 desc=self.desc,
                                 file=self.stream, dynamic_ncols=True, mininterval=0.25,
                                 smoothing=0.1, leave=True)
                if self._note:
                    self._bar.set_postfix_str(self._note, refresh=False)
            return
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
        elif now - self._last_line >= self.interval:
            self._last_line = now
            logger.info("%s", self.text(done, now))

    def text(self, done: int, now: float | None = None) -> str:
        """A one-line report: done of total, the rate since the first item, the ETA."""
        now = time.perf_counter() if now is None else now
        first, start = self._first if self._first is not None else (done, now)
        elapsed = now - start
        rate = (done - first) / elapsed if elapsed > 0 and done > first else None
        text = f"{done}/{self.total} {self.unit}" if self.total else f"{done} {self.unit}"
        if self.desc:
            text = f"{self.desc}: {text}"
        if self._note:
            text += f" ({self._note})"
        if rate is None:
            return text
        text += f", {rate:.1f} {self.unit}/s"
        if self.total and done < self.total:
            eta = int((self.total - done) / rate)
            text += f", ETA {eta // 60}:{eta % 60:02d}"
        return text

    def close(self) -> None:
        """End the bar (it stays on screen, finished)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
