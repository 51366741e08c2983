"""The processing loop: a source's frames through the frame step to the consumers.

Data flows one way: a :class:`~bgsub.io.sources.FrameReader` decodes frames
in its own thread; each frame goes through the :class:`~bgsub.model.step.FrameStep`
(masker, then post-processing); each :class:`~bgsub.model.step.FrameResult` goes
to every consumer in turn (a :class:`~bgsub.io.sinks.SinkWriter` that writes
files in its own thread, a :class:`~bgsub.io.display.Window`, a scorer, an event
detector), and to the run's :class:`Summary`.  The loop stops at the end of
the source or when ``stop`` is set (a signal, q in the window); the caller
closes the reader and the consumers, so every way out goes through the same
shutdown.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Protocol

import numba

from .progress import Progress
from .sources import CorruptFrame
from ..model.step import FrameResult, FrameStep

__all__ = ["Consumer", "Summary", "run_pipeline", "masker_threads", "needs_of"]

logger = logging.getLogger("bgsub")


class Consumer(Protocol):
    """What the loop hands results to: ``write(result)`` per frame; ``close()`` at the end.

    ``needs``, where present, names what the results must carry beyond the
    mask (``"background"``, ``"probability"``).
    """

    def write(self, result: FrameResult) -> None: ...

    def close(self) -> None: ...


def needs_of(consumers: Iterable[object]) -> frozenset[str]:
    """Everything some consumer needs the results to carry."""
    return frozenset().union(*(getattr(c, "needs", frozenset()) for c in consumers))


@dataclass
class Summary:
    """What a run did: counts over the results, and the frames skipped.

    ``seconds`` is the loop's time; ``first_seconds`` the part of it until the
    first frame's result was handed on, which on a first run includes
    compiling the kernels: :attr:`fps` counts the frames after it.
    """

    processed: int = 0
    skipped: int = 0
    resets: int = 0
    seconds: float = 0.0
    first_seconds: float = 0.0
    foreground_sum: float = 0.0
    log_likelihood_sum: float = 0.0
    log_likelihood_frames: int = 0
    recoveries: int = 0
    _recovering: bool = False

    def add(self, result: FrameResult) -> None:
        self.processed += 1
        self.resets += result.reset
        self.foreground_sum += result.foreground_fraction
        if math.isfinite(result.log_likelihood):
            self.log_likelihood_sum += result.log_likelihood
            self.log_likelihood_frames += 1
        self.recoveries += result.recovering and not self._recovering
        self._recovering = result.recovering

    @property
    def fps(self) -> float:
        """Frames per second after the first frame (over all frames for a run of one)."""
        if self.processed > 1 and self.seconds > self.first_seconds:
            return (self.processed - 1) / (self.seconds - self.first_seconds)
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def mean_foreground(self) -> float:
        return self.foreground_sum / self.processed if self.processed else 0.0

    @property
    def mean_log_likelihood(self) -> float:
        return (self.log_likelihood_sum / self.log_likelihood_frames
                if self.log_likelihood_frames else float("nan"))

    def line(self) -> str:
        return (f"{self.processed} frames processed, {self.skipped} skipped, "
                f"{self.fps:.1f} fps mean after the first frame, "
                f"{100 * self.mean_foreground:.2f}% foreground mean, "
                f"log-likelihood {self.mean_log_likelihood:.2f} nats/pixel mean, "
                f"{self.recoveries} recoveries")


def masker_threads(setting: int, writes: bool, cpus: int | None = None) -> int:
    """The masker's thread count for ``pipeline.masker_threads`` = *setting*.

    0 is auto: every CPU but one when the run *writes* outputs (the writer's
    annotation and encoding and the reader's decoding take about a core
    between them), every CPU otherwise; never fewer than one.  *cpus*
    defaults to the threads a masker uses by default (``NUMBA_NUM_THREADS``,
    by default the number of CPUs).
    """
    if setting > 0:
        return setting
    cpus = cpus if cpus is not None else numba.config.NUMBA_NUM_THREADS
    return max(1, cpus - (1 if writes else 0))


def run_pipeline(reader, step: FrameStep, consumers: Iterable[Consumer] = (), *,
                 progress: Progress | None = None,
                 stop: threading.Event | None = None) -> Summary:
    """Put every frame of *reader* through *step* and hand each result to *consumers*.

    *reader* offers ``get(timeout)``: ``(index, frame)``, ``(index,
    CorruptFrame)`` for a stretch of frames that could not be decoded (skipped,
    counted and logged), or None at the end (a :class:`~bgsub.io.sources.FrameReader`).
    Stops at the end or when *stop* is set.  The consumers are written to in
    order and not closed here.  Returns the run's :class:`Summary`.
    """
    consumers = list(consumers)
    stop = stop or threading.Event()
    summary = Summary()
    start = time.perf_counter()
    while not stop.is_set():
        try:
            item = reader.get(timeout=0.1)
        except queue.Empty:
            continue
        if item is None:
            break
        index, frame = item
        if isinstance(frame, CorruptFrame):
            logger.warning("%s; skipped", frame)
            summary.skipped += frame.count
            continue
        result = step(index, frame)
        summary.add(result)
        for consumer in consumers:
            consumer.write(result)
        if summary.processed == 1:
            summary.first_seconds = time.perf_counter() - start
        if progress is not None:
            progress.update(summary.processed + summary.skipped)
    summary.seconds = time.perf_counter() - start
    if progress is not None:
        progress.close()
    return summary
