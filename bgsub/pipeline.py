"""The processing loop: source -> masker -> post-processing -> sinks and display.

The reader and the writer run in their own threads with bounded queues, so
decoding, masking and encoding overlap; this loop only masks, cleans the
mask up, draws and dispatches.  Everything downstream of the post-processing
(files, window, statistics) sees the post-processed mask.  It stops at the end
of the source, on q/Esc in the window, or when ``stop`` is set (the CLI sets
it from SIGINT and SIGTERM); every way out goes through the same shutdown,
which closes every output file.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO

import cv2
import numba
import numpy as np

from .config import Config
from .display import KEY_PAUSE, KEY_QUIT, KEY_RESET, KEY_SNAPSHOT, Display, annotate, compose
from .masker import FrameSizeError, MixtureMasker
from .postprocess import Postprocessor
from .sinks import SinkWriter
from .sources import CorruptFrame, FrameReader

__all__ = ["Summary", "Progress", "run_pipeline", "masker_threads"]


@dataclass
class Summary:
    """What a run did."""

    processed: int = 0
    skipped: int = 0
    resets: int = 0
    seconds: float = 0.0
    foreground_sum: float = 0.0
    snapshots: list[str] = field(default_factory=list)
    quit_by_key: bool = False
    log_likelihood_sum: float = 0.0
    log_likelihood_frames: int = 0
    recoveries: int = 0

    @property
    def fps(self) -> float:
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
                f"{self.fps:.1f} fps mean, {100 * self.mean_foreground:.2f}% foreground mean, "
                f"log-likelihood {self.mean_log_likelihood:.2f} nats/pixel mean, "
                f"{self.recoveries} recoveries")


class Progress:
    """A one-line progress report on stderr: a bar with ETA when the total is known."""

    def __init__(self, total: int | None, stream: TextIO | None = None, quiet: bool = False,
                 interval: float | None = None) -> None:
        self.total = total
        # looked up now, not at import: sys.stderr may have been replaced since
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        # a terminal gets a live line; a log file a plain line now and then
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.25 if self.live else 10.0)
        self._start = time.perf_counter()
        # a log's first line waits one interval: frame 1 alone says nothing of the rate
        self._last = 0.0 if self.live else self._start
        self._shown = False

    def update(self, frames: int, force: bool = False) -> None:
        if self.quiet:
            return
        now = time.perf_counter()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        elapsed = now - self._start
        fps = frames / elapsed if elapsed > 0 else 0.0
        if self.total:
            done = min(frames / self.total, 1.0)
            bar = "#" * int(24 * done) + "-" * (24 - int(24 * done))
            eta = (self.total - frames) / fps if fps > 0 else 0.0
            text = (f"[{bar}] {frames}/{self.total} frames {fps:6.1f} fps "
                    f"ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        else:
            text = f"{frames} frames {fps:6.1f} fps"
        if self.live:
            self.stream.write("\r" + text + "\033[K")
            self._shown = True
        else:
            self.stream.write(f"bgsub: {text}\n")
        self.stream.flush()

    def clear(self) -> None:
        """End the progress line so that other messages start on their own."""
        if self._shown and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


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


def run_pipeline(reader: FrameReader, masker: MixtureMasker, config: Config, writer: SinkWriter,
                 display: Display | None = None, progress: Progress | None = None,
                 stop: threading.Event | None = None, warn=None,
                 postprocessor: Postprocessor | None = None) -> Summary:
    """Mask every frame of *reader* until its end, a quit key or *stop*.

    Each mask goes through *postprocessor* (default: one built from
    ``config.postprocess``) before it is written, shown or counted.  Returns
    the :class:`Summary`; the caller closes the reader and the writer.
    """
    postprocessor = postprocessor or Postprocessor(config.postprocess)
    stop = stop or threading.Event()
    progress = progress or Progress(None, quiet=True)
    warn = warn or (lambda message: print(f"bgsub: warning: {message}", file=sys.stderr))
    show_background = display is not None and config.display.show_background
    show_probability = display is not None and config.display.show_probability
    was_recovering = False

    def draw(frame, mask):
        return annotate(frame, mask, config.display.tint, config.display.min_blob_area)

    if writer.draw is None:
        writer.draw = draw
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
            progress.clear()
            warn(f"{frame}; skipped")
            summary.skipped += 1
            continue
        try:
            mask = masker.apply(frame)
        except FrameSizeError as changed:  # a camera changing mode, a mixed folder
            progress.clear()
            warn(f"frame {index}: {str(changed).split('; ')[0]}: resetting the model")
            masker.reset()
            summary.resets += 1
            mask = masker.apply(frame)
        # in place: the masker hands out a new array per frame, which the writer
        # thread may still hold later, so it is never reused
        mask = postprocessor.apply(mask, out=mask)
        summary.processed += 1
        fraction = cv2.countNonZero(cv2.compare(mask, 254, cv2.CMP_GT)) / mask.size
        summary.foreground_sum += fraction
        log_likelihood = masker.log_likelihood
        if np.isfinite(log_likelihood):
            summary.log_likelihood_sum += log_likelihood
            summary.log_likelihood_frames += 1
        summary.recoveries += masker.recovering and not was_recovering
        was_recovering = masker.recovering
        background = (masker.background_image()
                      if writer.wants_background or show_background else None)
        # the soft probability costs an exp per pixel and component: only on request
        probability = (masker.foreground_probability()
                       if writer.wants_probability or show_probability else None)
        # with a window the annotated frame is drawn here and shared; without
        # one the writer thread draws it, off the masking thread
        annotated = draw(frame, mask) if display is not None else None
        writer.put(index, frame, mask, background, annotated, probability,
                   (fraction, log_likelihood, masker.recovering))
        progress.update(summary.processed + summary.skipped)
        if display is not None:
            elapsed = time.perf_counter() - start
            text = (f"frame {index}  {summary.processed / elapsed if elapsed else 0:.1f} fps  "
                    f"log-lik {log_likelihood:.2f}" + ("  recovering" if masker.recovering else ""))
            panes = [annotated, mask] + ([background] if show_background else [])
            if show_probability:
                panes.append(np.rint(probability * 255.0).astype(np.uint8))
            key = display.show(compose(panes, config.display.max_width, text))
            paused = False
            while True:  # while paused, keys keep working; the reader's queue fills and waits
                if key in KEY_QUIT:
                    summary.quit_by_key = True
                    stop.set()
                elif key == KEY_RESET:
                    masker.reset()
                    summary.resets += 1
                elif key == KEY_SNAPSHOT and display.last_image is not None:
                    name = f"bgsub-snapshot-{index:06d}.png"
                    if not cv2.imwrite(name, display.last_image):
                        warn(f"cannot write the snapshot {name} in the current folder")
                    elif name not in summary.snapshots:
                        summary.snapshots.append(name)
                elif key == KEY_PAUSE:
                    paused = not paused
                if not paused or stop.is_set():
                    break
                key = display.poll(50)
    summary.seconds = time.perf_counter() - start
    if progress.live:
        progress.update(summary.processed + summary.skipped, force=True)
    progress.clear()
    return summary
