"""Scene events: the camera covered, moved, defocused, a change of light, weather.

Motion detection answers "did something move in the picture?"; a scene
event answers "is the picture itself still the one the model knows?".
:class:`SceneDetector` looks at each frame on a small scale
and keeps a slowly learned *reference* of the view (a 160 x 120 grey image
and a few numbers: brightness, colour, detail), which it stops learning while
something is wrong.  Per frame it asks:

``covered``
    the picture is uniform (black, grey, a hand): its contrast (the standard
    deviation of the small grey image) is below ``covered_contrast`` grey
    levels and below a quarter of the reference's;
``moved``
    the picture no longer aligns with the reference: phase correlation (Hann
    window) finds
    a global shift of at least ``moved_shift`` pixels (of the frame), or the
    normalised correlation with the reference falls below
    ``moved_correlation`` (another view);
``lighting``
    the mean brightness (over the pixels the reference has neither dark
    nor saturated) is off the reference's by more than a factor
    ``lighting_gain``, or a quarter more of the picture is saturated (a
    bright scene made brighter), or the colour has gone (a colour/infrared switch: the
    mean chroma below ``lighting_chroma`` of the reference's);
``defocused``
    the picture has lost its detail: the mean absolute gradient of the grey
    picture (on every fourth row and column; at half size from 640 x 480 up),
    relative to the brightness, is below ``defocus_ratio`` of the reference's;
``weather``
    rain or snow: many small, short-lived changes spread over the whole
    frame.  The small grey image is compared with the one of the frame
    just before it (kept for the purpose: streaks and flakes are new in
    every frame, while leaves, people and cars move little in one), in a
    40 x 30 grid of cells: a cell has changed when one of its pixels changed
    by more than 12 grey levels; it is *isolated* when at most two of its
    eight neighbours changed too.  Weather is seen when the share of
    isolated changed cells exceeds its usual share (learned like the
    reference) by ``weather_isolated`` (a person, a car, waving trees change
    cells in clumps); or when rain or snow falls where the picture is
    usually still: the share of the *quiet* cells (those that changed in
    less than a fifth of the recent looks, and whose neighbours did too)
    that changed *thinly* (fewer than half of their pixels: streaks and
    flakes, not a person's body) exceeds its usual share by
    ``weather_quiet``.  That second measure holds where the first fails:
    heavy rain, whose streaks run together so that few cells are isolated,
    and scenes whose trees already change many cells in every look (they
    change the same cells, look after look; rain falls anywhere).

Covered takes precedence over everything (a black picture is also
"defocused" and "darker"); moved over defocused and weather; lighting over
weather.

The detector looks at one frame every ``interval`` seconds (0.4 s: ten
frames at 25 fps), which keeps its cost to a few percent of the masking's
at any size; the rest pass by.  A kind's event starts once it has been seen
``start_looks`` looks in a row (from the first frame it was seen in) and
ends after ``end_looks`` looks without it (at the frame before the first of
them).  A view that stays changed for
``adopt_seconds`` (the camera now points elsewhere, the lights stay on)
becomes the new reference, which ends its event.

No I/O and no clock: the same frames give the same events.  A look costs
a few small resizes and one 160 x 120 phase correlation.

Examples
--------
>>> import numpy as np
>>> from bgsub.scan.scene import SceneDetector, SceneRules
>>> rng = np.random.default_rng(0)
>>> view = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
>>> detector = SceneDetector(SceneRules(fps=25, interval=0))  # every frame
>>> for i in range(60):
...     frame = view if not 30 <= i < 45 else np.zeros_like(view)
...     _ = detector.update(i, frame)
>>> _ = detector.finish(59)
>>> [(e.kind, e.start_frame, e.end_frame) for e in detector.events]
[('covered', 30, 44)]
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np
from numba import njit

from ..model.kernels import build  # noqa: F401 (first: the kernels below in the package's cache)

__all__ = ["SCENE_KINDS", "SceneEvent", "SceneRules", "SceneDetector", "overlapping"]

#: the kinds whose events explain motion away (``events.during_scene = "drop"``)
EXPLAINING = ("covered", "moved", "lighting", "defocused")

logger = logging.getLogger("bgsub")

#: the kinds of scene event, in order of precedence
SCENE_KINDS = ("covered", "moved", "lighting", "defocused", "weather")

_SMALL = (160, 120)  # the reference's size (w, h)
_CELLS = (40, 30)  # the weather grid (w, h)
_BLOCKS = (8, 6)  # the evidence grid (w, h)
_BUSY = 0.2  # a cell that changed in this share of the looks is not quiet (nor its neighbours)
_THIN = 0.5  # a changed cell with fewer changed pixels than this share is changed thinly
_NO_USUAL = np.zeros((0, 0), np.float32)  # no usual changes learned yet


@dataclass
class SceneEvent:
    """A span of frames in which the scene was not the one the model knows.

    Attributes
    ----------
    kind : str
        One of :data:`SCENE_KINDS`.
    start_frame, end_frame : int
        The first and last frames (inclusive) it was seen; ``end_frame`` is
        -1 while it is under way.
    score : float
        Its peak strength, in [0, 1] (1: certain, e.g. a black picture).
    evidence : dict
        What was measured at its peak: ``value`` and ``reference`` (the
        kind's measure and the reference's), ``cells`` (the share of the
        picture's cells that show it).
    """

    kind: str
    start_frame: int
    end_frame: int
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)

    def overlaps(self, start: int, end: int) -> bool:
        """Whether frames ``start .. end`` (inclusive) overlap it (an open one runs on)."""
        return start <= (self.end_frame if self.end_frame >= 0 else math.inf) \
            and end >= self.start_frame

    def as_dict(self) -> dict[str, Any]:
        """Its fields as plain JSON values."""
        return {"kind": self.kind, "start_frame": self.start_frame,
                "end_frame": self.end_frame, "score": round(self.score, 4),
                "evidence": self.evidence}


def overlapping(events, start: int, end: int) -> list[SceneEvent]:
    """The scene events of *events* that overlap frames ``start .. end``."""
    return [e for e in events if e.overlaps(start, end)]


@dataclass(frozen=True)
class SceneRules:
    """Thresholds of the scene detectors (see the module's description)."""

    fps: float = 25.0
    covered_contrast: float = 10.0
    moved_shift: float = 3.0
    moved_correlation: float = 0.45
    lighting_gain: float = 1.2
    lighting_chroma: float = 0.3
    defocus_ratio: float = 0.6
    weather_isolated: float = 0.025
    weather_quiet: float = 0.09
    interval: float = 0.4
    start_looks: int = 2
    end_looks: int = 3
    warm_up: int = 5
    learn_rate: float = 0.05
    adopt_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"fps {self.fps}: expected > 0")
        if not 0 <= self.interval <= 60:
            raise ValueError(f"interval {self.interval}: expected in [0, 60] seconds")
        for name in ("start_looks", "end_looks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} {getattr(self, name)}: expected >= 1")
        if not 0 < self.learn_rate <= 1:
            raise ValueError(f"learn_rate {self.learn_rate}: expected in (0, 1]")
        if not self.lighting_gain > 1:
            raise ValueError(f"lighting_gain {self.lighting_gain}: expected > 1")


def _gradient(frame: np.ndarray) -> float:
    """Mean absolute difference of neighbours, on every 4th row and column (of the
    green channel of a colour picture: most of the luminance)."""
    g = np.ascontiguousarray(frame[:, :, 1]) if frame.ndim == 3 else frame
    rows = g[::4]  # whole rows: OpenCV reads them in place
    cols = np.ascontiguousarray(g[:, ::4])
    return float(cv2.mean(cv2.absdiff(rows[:, 1:], rows[:, :-1]))[0]
                 + cv2.mean(cv2.absdiff(cols[1:], cols[:-1]))[0])


_WINDOW: list[np.ndarray] = []


def _window() -> np.ndarray:
    """The Hann window of the phase correlation (without it, the picture's borders pull
    the shift it finds towards 0)."""
    if not _WINDOW:
        _WINDOW.append(cv2.createHanningWindow(_SMALL, cv2.CV_32F))
    return _WINDOW[0]


def _spectrum(grey: np.ndarray) -> np.ndarray:
    """The DFT of *grey* (160 x 120, float32) under the Hann window, in OpenCV's packed
    form for real pictures (CCS, float32, the picture's shape)."""
    return cv2.dft(cv2.multiply(grey, _window()))


def _phase_shift(reference: np.ndarray, spectrum: np.ndarray) -> tuple[float, float]:
    """``cv2.phaseCorrelate(ref, grey, window)`` from the two pictures' spectra
    (:func:`_spectrum`): the shift (x, y) that takes the reference to the picture.

    OpenCV's steps: the cross-power spectrum divided by its magnitude, its inverse
    DFT, the peak and the centroid of the 5 x 5 around it (in the quadrant-swapped
    map, clipped at its borders).  The reference's spectrum is kept from look to
    look instead of transformed each time, which saves a DFT.  The magnitude of a
    packed spectrum is the square root of its product with itself, conjugated:
    ``(|z|^2, 0)`` for a complex entry, ``x^2`` for a real one.
    """
    cross = cv2.mulSpectrums(reference, spectrum, 0, conjB=True)
    magnitude = cv2.sqrt(cv2.mulSpectrums(cross, cross, 0, conjB=True))
    surface = cv2.idft(cv2.divSpectrums(cross, magnitude, 0), flags=cv2.DFT_REAL_OUTPUT)
    cx, cy = _peak_centroid(surface)
    h, w = surface.shape
    return w / 2.0 - cx, h / 2.0 - cy


@njit(cache=True, nogil=True, error_model="numpy")
def _peak_centroid(surface):
    """The peak of *surface* (its first maximum, row by row, as ``cv2.minMaxLoc``
    finds it) and the centroid (x, y) of the 5 x 5 around it, in the
    quadrant-swapped map (the peak of no shift at the centre), clipped at its
    borders."""
    h, w = surface.shape
    best = surface[0, 0]
    px = py = 0
    for y in range(h):
        for x in range(w):
            if surface[y, x] > best:
                best = surface[y, x]
                px = x
                py = y
    sx = (px + w // 2) % w
    sy = (py + h // 2) % h
    total = cx = cy = 0.0
    for y in range(max(sy - 2, 0), min(sy + 2, h - 1) + 1):
        for x in range(max(sx - 2, 0), min(sx + 2, w - 1) + 1):
            v = np.float64(surface[(y - h // 2) % h, (x - w // 2) % w])
            total += v
            cx += v * x
            cy += v * y
    total += np.finfo(np.float64).eps
    return cx / total, cy / total


@njit(cache=True, nogil=True, error_model="numpy")
def _weather_cells(grey, before, usual, counts, touched):
    """The weather grid's measures of a look, from its small picture *grey* and the
    one of the frame before it, *before* (both 120 x 160 float32).

    Per cell (4 x 4 pixels; *counts*, 30 x 40 int32, overwritten) the pixels
    that changed by more than 12 grey levels.  Returned: the share of cells
    changed, the share changed and isolated (at most two of the eight
    neighbours changed), and the share of the quiet cells changed thinly
    (fewer than ``_THIN`` of their pixels; quiet: no cell of the 3 x 3 around
    it, itself included, changed in more than ``_BUSY`` of the looks, by
    *usual*; 0 while fewer than a tenth of the cells are quiet, or when *usual*
    is empty).  *touched* (float32, the grid's shape) is set to 1 where a cell
    changed, 0 elsewhere.  Cells beyond the grid's border count as unchanged
    and not busy.
    """
    ch, cw = counts.shape
    h, w = grey.shape
    bh = h // ch
    bw = w // cw
    column = np.empty(w, np.int32)  # per pixel column, the changed pixels in the cell row
    for ci in range(ch):
        column[:] = 0
        for y in range(ci * bh, ci * bh + bh):
            for x in range(w):
                column[x] += abs(grey[y, x] - before[y, x]) > np.float32(12.0)
        for cj in range(cw):
            n = 0
            for x in range(cj * bw, cj * bw + bw):
                n += column[x]
            counts[ci, cj] = n
    hit = np.zeros((ch + 2, cw + 2), np.int32)  # with a border of one cell
    over = np.zeros((ch + 2, cw + 2), np.int32)
    learned = usual.size > 0
    level = np.float32(_BUSY)
    for i in range(ch):
        for j in range(cw):
            on = counts[i, j] > 0
            hit[i + 1, j + 1] = on
            touched[i, j] = np.float32(1.0) if on else np.float32(0.0)
            if learned:
                over[i + 1, j + 1] = usual[i, j] > level
    changed = isolated = quiet = thin = 0
    for i in range(1, ch + 1):
        for j in range(1, cw + 1):
            around = 0
            busy = 0
            for a in range(i - 1, i + 2):
                for b in range(j - 1, j + 2):
                    around += hit[a, b]
                    busy += over[a, b]
            on = hit[i, j]
            around -= on
            changed += on
            isolated += on & (around <= 2)
            if learned and busy == 0:
                quiet += 1
                thin += on & (counts[i - 1, j - 1] < _THIN * bh * bw)
    n = ch * cw
    share = thin / quiet if learned and quiet >= 0.1 * n else 0.0
    return changed / n, isolated / n, share


@njit(cache=True, nogil=True, error_model="numpy", fastmath=True)
def _reference_sums(grey, ref):
    """Sums over two 120 x 160 float32 pictures for the correlation and the gain:
    ``(sum(g * r), sum(r), sum(r * r), n_lit, sum(g) and sum(r) over the lit)``,
    *lit* the pixels where 16 < r < 170 (the reference neither dark nor
    saturated).  Float64 sums, in any order."""
    gr = r1 = rr = 0.0
    lit = 0
    g_lit = r_lit = 0.0
    for y in range(grey.shape[0]):
        for x in range(grey.shape[1]):
            g = np.float64(grey[y, x])
            r = np.float64(ref[y, x])
            gr += g * r
            r1 += r
            rr += r * r
            on = (r > 16.0) & (r < 170.0)
            lit += on
            g_lit += g if on else 0.0
            r_lit += r if on else 0.0
    return gr, r1, rr, lit, g_lit, r_lit


def _chroma(frame: np.ndarray) -> float:
    """The mean of |B - G| + |R - G| over about 60 whole rows picked evenly from *frame*
    (whole rows: OpenCV reads them in place, and a row is read at memory's pace)."""
    if frame.ndim < 3:
        return 0.0
    step = max(1, frame.shape[0] // 60)
    b, g, r = cv2.split(frame[step // 2::step])
    return float(cv2.mean(cv2.absdiff(b, g))[0] + cv2.mean(cv2.absdiff(r, g))[0])


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame


def _blocks(values: np.ndarray) -> np.ndarray:
    """Per block of the evidence grid, the mean of *values* (120 x 160)."""
    bw, bh = _BLOCKS
    h, w = values.shape
    return values.reshape(bh, h // bh, bw, w // bw).mean(axis=(1, 3))


def _shrink(frame: np.ndarray) -> np.ndarray:
    """*frame* at 160 x 120, each pixel the mean of the area it covers.

    Halved while it is at least twice that size, then resized: OpenCV's area
    resize by exactly 2 takes a fast path, and by 4 or more does not (0.65 ms
    for 640x480 BGR in one step, 0.19 ms in three), for the same means to
    within one grey level (each halving rounds).
    """
    tw, th = _SMALL
    h, w = frame.shape[:2]
    while w >= 2 * tw and h >= 2 * th:
        frame = cv2.resize(frame, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        h, w = frame.shape[:2]
    if (w, h) != _SMALL:
        frame = cv2.resize(frame, _SMALL, interpolation=cv2.INTER_AREA)
    return frame


def _small_grey(frame: np.ndarray) -> np.ndarray:
    """The frame as the reference holds it: 160 x 120, grey, float32.  Made grey
    first: the conversion reads the frame once, fast, and the rest is on one channel."""
    return _shrink(_grey(frame)).astype(np.float32)


class _Features:
    """One frame's measures."""

    __slots__ = ("grey", "mean", "contrast", "chroma", "detail", "changes", "isolated",
                 "saturated", "touched", "quiet", "spectrum")

    def __init__(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        grey = _grey(frame)
        if w >= 4 * _SMALL[0] and h >= 4 * _SMALL[1]:  # the detail at half size: enough
            grey = cv2.resize(grey, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        detailed = grey
        grey = _shrink(grey)
        self.grey = grey.astype(np.float32)
        mean, std = cv2.meanStdDev(grey)
        self.mean = float(mean[0, 0])
        self.contrast = float(std[0, 0])
        self.chroma = _chroma(frame)
        self.detail = _gradient(detailed) / max(self.mean, 8.0)
        # the share of pixels at 250 or above (> 249: the grey levels are whole)
        _, saturated = cv2.threshold(grey, 249, 1, cv2.THRESH_BINARY)
        self.saturated = cv2.countNonZero(saturated) / grey.size
        self.changes = 0.0  # the share of cells changed since the previous frame
        self.isolated = 0.0  # ... of those with at most two changed neighbours
        self.touched: np.ndarray | None = None  # the cells changed (1.0), 30 x 40
        self.quiet = 0.0  # the share of the quiet cells changed thinly
        # for the phase correlation, when it runs (the reference's is kept, blended as
        # its picture is)
        self.spectrum: np.ndarray | None = None


class SceneDetector:
    """Scene events from frames in order.

    Parameters
    ----------
    rules : SceneRules, optional
        The thresholds.
    on_start, on_end : callable, optional
        Called with each :class:`SceneEvent` as it starts and as it ends.

    Notes
    -----
    Usable as a pipeline consumer (``write(result)``, ``close()``); a model
    reset (a new frame size) starts a new reference.
    """

    needs: frozenset[str] = frozenset()

    def __init__(self, rules: SceneRules | None = None, *,
                 on_start: Callable[[SceneEvent], None] | None = None,
                 on_end: Callable[[SceneEvent], None] | None = None) -> None:
        self.rules = rules or SceneRules()
        self.on_start = on_start
        self.on_end = on_end
        #: every event so far, the open ones included
        self.events: list[SceneEvent] = []
        self._open: dict[str, SceneEvent] = {}
        self._hot: dict[str, int] = {}  # kind: consecutive frames seen
        self._cold: dict[str, int] = {}  # kind (open): consecutive frames not seen
        self._first: dict[str, int] = {}  # kind: the first of the frames seen in a row
        self._last_seen: dict[str, int] = {}
        self._peak: dict[str, tuple[float, dict]] = {}
        self._ref: _Features | None = None
        self._usual: np.ndarray | None = None  # per cell, the share of looks it changed in
        self._previous: np.ndarray | None = None
        self._counts = np.zeros(_CELLS[::-1], np.int32)  # changed pixels per weather cell
        self._before: np.ndarray | None = None  # the frame before a look, small and grey
        self._learned = 0
        self._shape: tuple[int, ...] | None = None
        #: frames from one look to the next
        self.every = max(1, int(round(self.rules.interval * self.rules.fps)))
        self._adopt = max(1, int(round(self.rules.adopt_seconds * self.rules.fps / self.every)))
        self._seen_frames = 0
        self._first_cold: dict[str, int] = {}
        self.last_index = -1

    # -- the measures ----------------------------------------------------------

    def _learn(self, f: _Features) -> None:
        self._learned += 1
        if self._ref is None:
            self._ref = f
            return
        a = max(self.rules.learn_rate, 1.0 / self._learned)
        r = self._ref
        cv2.accumulateWeighted(f.grey, r.grey, a)
        if r.spectrum is not None and f.spectrum is not None:
            # the DFT is linear: the spectrum of the blend is the blend of the spectra
            cv2.accumulateWeighted(f.spectrum, r.spectrum, a)
        else:
            r.spectrum = None  # made afresh from the picture when next needed
        r.mean += a * (f.mean - r.mean)
        r.contrast += a * (f.contrast - r.contrast)
        r.chroma += a * (f.chroma - r.chroma)
        r.detail += a * (f.detail - r.detail)
        r.changes += a * (f.changes - r.changes)
        r.isolated += a * (f.isolated - r.isolated)
        r.saturated += a * (f.saturated - r.saturated)
        r.quiet += a * (f.quiet - r.quiet)
        if f.touched is not None:
            if self._usual is None:
                self._usual = f.touched.copy()
            else:
                cv2.accumulateWeighted(f.touched, self._usual, a)

    def measure(self, frame: np.ndarray) -> dict[str, tuple[float, dict[str, Any]]]:
        """The kinds seen in *frame*, each with its score and evidence; learns the
        frame into the reference when nothing is seen."""
        rules = self.rules
        f = _Features(frame)
        before = self._before if self._before is not None else self._previous
        self._before = None
        if before is not None:
            # the weather grid: the cells changed, isolated, quiet and changed thinly
            f.touched = np.empty(_CELLS[::-1], np.float32)
            usual = self._usual if self._usual is not None else _NO_USUAL
            f.changes, f.isolated, f.quiet = _weather_cells(f.grey, before, usual, self._counts,
                                                            f.touched)
        self._previous = f.grey
        if self._ref is None or self._learned < rules.warm_up:
            self._learn(f)
            return {}
        r = self._ref
        seen: dict[str, tuple[float, dict[str, Any]]] = {}
        if f.contrast < rules.covered_contrast and f.contrast < 0.25 * r.contrast:
            flat = _blocks(np.abs(f.grey - f.mean)) < rules.covered_contrast
            seen["covered"] = (1.0 - f.contrast / max(r.contrast, 1e-6),
                               {"value": round(f.contrast, 2), "reference": round(r.contrast, 2),
                                "cells": round(float(flat.mean()), 3)})
            return seen
        n = f.grey.size
        fr, r_sum, rr, lit, f_lit, r_lit = _reference_sums(f.grey, r.grey)
        r_mean = r_sum / n
        r_std = math.sqrt(max(rr / n - r_mean * r_mean, 0.0))
        ncc = (fr / n - f.mean * r_mean) / max(f.contrast * r_std, 1e-6)
        f.spectrum = _spectrum(f.grey)
        if r.spectrum is None:
            r.spectrum = _spectrum(r.grey)
        dx, dy = _phase_shift(r.spectrum, f.spectrum)
        scale = frame.shape[1] / _SMALL[0]
        shift = math.hypot(dx, dy) * scale
        if shift >= rules.moved_shift or ncc < rules.moved_correlation:
            a = f.grey - f.mean
            b = r.grey - r_mean
            blocks = _blocks(a * b) / np.maximum(np.sqrt(_blocks(a * a) * _blocks(b * b)), 1e-6)
            seen["moved"] = (min(1.0, max(1.0 - ncc, shift / (4 * rules.moved_shift))),
                             {"value": round(ncc, 3), "reference": 1.0,
                              "shift": [round(dx * scale, 1), round(dy * scale, 1)],
                              "cells": round(float((blocks < 0.5).mean()), 3)})
        # over the reference's pixels neither dark nor saturated (16 < grey < 170)
        gain = (f_lit / max(r_lit, lit) if lit > 0.1 * n else f.mean / max(r.mean, 1.0))
        chroma = f.chroma / r.chroma if r.chroma > 3.0 else 1.0
        if abs(math.log(max(gain, 1e-3))) > math.log(rules.lighting_gain) \
                or chroma < rules.lighting_chroma or f.saturated - r.saturated > 0.25:
            ratio = _blocks(f.grey) / np.maximum(_blocks(r.grey), 1.0)
            changed = np.abs(np.log(np.maximum(ratio, 1e-3))) > math.log(rules.lighting_gain)
            seen["lighting"] = (min(1.0, max(abs(math.log(max(gain, 1e-3))), 1.0 - chroma)),
                                {"value": round(gain, 3), "reference": 1.0,
                                 "chroma": round(chroma, 3),
                                 "cells": round(float(changed.mean()), 3)})
        detail = f.detail / max(r.detail, 1e-6)
        if detail < rules.defocus_ratio and "moved" not in seen:
            seen["defocused"] = (1.0 - detail, {"value": round(f.detail, 4),
                                                "reference": round(r.detail, 4),
                                                "cells": 1.0})
        if f.touched is not None and "moved" not in seen and "lighting" not in seen:
            isolated = f.isolated - r.isolated
            quiet = f.quiet - r.quiet
            if isolated >= rules.weather_isolated or quiet >= rules.weather_quiet:
                seen["weather"] = (min(1.0, max(isolated / (4 * rules.weather_isolated),
                                                quiet / (4 * rules.weather_quiet))),
                                   {"value": round(f.isolated, 3),
                                    "reference": round(r.isolated, 3),
                                    "quiet": round(f.quiet, 3),
                                    "quiet_reference": round(r.quiet, 3),
                                    "changed": round(f.changes, 3),
                                    "cells": round(f.changes, 3)})
        if not seen:
            self._learn(f)
        self._current = f
        return seen

    # -- the state machine -----------------------------------------------------

    def update(self, index: int, frame: np.ndarray) -> list[SceneEvent]:
        """Look at frame *index*; the events that started or ended with it."""
        if self._shape is not None and frame.shape != self._shape:
            self.restart()
        self._shape = frame.shape
        self.last_index = index
        self._seen_frames += 1
        if (self._seen_frames - 1) % self.every:
            if self._seen_frames % self.every == 0:  # the next frame is a look
                self._before = _small_grey(frame)
            return []
        seen = self.measure(frame)
        changed: list[SceneEvent] = []
        for kind in SCENE_KINDS:
            if kind in seen:
                score, evidence = seen[kind]
                if self._hot.get(kind, 0) == 0:
                    self._first[kind] = index
                    self._peak[kind] = (score, evidence)
                elif score > self._peak[kind][0]:
                    self._peak[kind] = (score, evidence)
                self._hot[kind] = self._hot.get(kind, 0) + 1
                self._cold[kind] = 0
                self._last_seen[kind] = index
                event = self._open.get(kind)
                if event is None and self._hot[kind] >= self.rules.start_looks:
                    score, evidence = self._peak[kind]
                    event = SceneEvent(kind, self._first[kind], -1, score, evidence)
                    self._open[kind] = event
                    self.events.append(event)
                    changed.append(event)
                    if self.on_start is not None:
                        self.on_start(event)
                elif event is not None and score > event.score:
                    event.score, event.evidence = score, evidence
                if event is not None and self._hot[kind] >= self._adopt \
                        and kind in ("moved", "lighting", "defocused"):
                    self._ref = self._current  # the new view, with its spectrum
                    self._learned = max(self._learned, self.rules.warm_up)
            else:
                self._hot[kind] = 0
                if kind in self._open:
                    self._cold[kind] = self._cold.get(kind, 0) + 1
                    if self._cold[kind] == 1:
                        self._first_cold[kind] = index
                    if self._cold[kind] >= self.rules.end_looks:
                        changed.append(self._close(kind, self._first_cold[kind] - 1))
        return changed

    def _close(self, kind: str, last: int) -> SceneEvent:
        event = self._open.pop(kind)
        event.end_frame = last
        self._cold[kind] = 0
        if self.on_end is not None:
            self.on_end(event)
        return event

    def under_way(self, kind: str) -> bool:
        """Whether an event of *kind* is under way."""
        return kind in self._open

    def seeing(self, kind: str) -> bool:
        """Whether an event of *kind* is under way or the last look saw *kind* (an event
        about to start: the look after next confirms it)."""
        return kind in self._open or self._hot.get(kind, 0) > 0

    def explains(self, start: int) -> bool:
        """Whether motion that started at frame *start* is a scene change's own: it
        starts within a covered, moved, lighting or defocused event (give or take a look,
        as the change may come a look before the event was seen, or go a look after)."""
        for e in self.events:
            end = e.end_frame if e.end_frame >= 0 else math.inf
            if e.kind in EXPLAINING and e.start_frame - self.every <= start <= end + self.every:
                return True
        return False

    def finish(self, last_index: int | None = None) -> list[SceneEvent]:
        """End the events under way: at the frame before the first look without them,
        else at the last frame (*last_index*, default the last one given)."""
        last = self.last_index if last_index is None else last_index
        return [self._close(kind, self._first_cold[kind] - 1 if self._cold.get(kind) else last)
                for kind in list(self._open)]

    def restart(self) -> None:
        """A new view (a new frame size): the events under way end, the reference starts afresh."""
        self.finish()
        self._ref = None
        self._usual = None
        self._previous = None
        self._before = None
        self._learned = 0
        self._seen_frames = 0
        self._hot.clear()

    # -- as a pipeline consumer -----------------------------------------------

    def write(self, result) -> None:
        """Look at a pipeline result's frame (a model reset starts a new reference)."""
        if result.reset:
            self.restart()
        self.update(result.index, result.frame)

    def close(self) -> None:
        """End the events under way."""
        self.finish()
