"""Tampered footage with known ground truth: scene changes injected into real frames.

The scene detectors (:mod:`bgsub.scan.scene`) are measured on real sequences
into which a span of one kind of scene change is injected, at a chosen
strength, so that the ground truth is known exactly:

``covered``
    the lens is blocked: black, a uniform grey, or a dark noisy blur (a hand);
``moved``
    the camera points elsewhere: the picture shifted by a number of pixels,
    or a crop of another scene (``"view"``);
``defocused``
    a Gaussian blur of a given sigma (pixels);
``lighting``
    the brightness multiplied by a gain, or the colour dropped (``"grey"``:
    a colour/infrared switch);
``weather``
    synthetic rain (thin bright slanted streaks) or snow (small bright
    flakes) over the whole frame, new every frame, at a density;
    ``"downpour"`` is the rain with, for 0.6 s in every 6 s (at 25 frames a
    second), a few large blurred drops close to the lens as well: blobs big
    enough to pass any blob filter, each in one frame only (what floods a
    motion detector with events in real rain).

Everything is drawn from a generator seeded by the seed and the frame's
position, so the same call gives the same frames.

Examples
--------
>>> import numpy as np
>>> from bgsub.eval.tamper import Span, tamper
>>> frames = [np.full((48, 64, 3), 100, np.uint8) for _ in range(10)]
>>> out, spans = tamper(frames, [Span("covered", "black", 3, 6)], seed=1)
>>> int(out[4].max()), int(out[2].min()), spans[0].start
(0, 100, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import cv2
import numpy as np

__all__ = ["KINDS", "STRENGTHS", "Span", "tamper", "tampered_frame"]

#: the kinds of scene change, as :class:`bgsub.scan.scene.SceneEvent` names them
KINDS = ("covered", "moved", "defocused", "lighting", "weather")

#: the strengths each kind is measured at, weakest first
STRENGTHS: dict[str, tuple[str, ...]] = {
    "covered": ("hand", "grey", "black"),
    "moved": ("5", "15", "40", "view"),
    "defocused": ("1.5", "2.5", "4"),
    "lighting": ("1.5", "0.6", "grey"),
    "weather": ("rain-light", "rain", "snow", "downpour"),
}

_WEATHER = {  # streaks (or flakes) per 10,000 pixels, length, brightness added
    "rain-light": (6.0, 9, 50), "rain": (14.0, 12, 70), "snow": (10.0, 0, 90),
    "downpour": (14.0, 12, 70)}
# the downpour's drops near the lens: frames of a burst and between bursts' starts
# (0.6 s in 6 s at 25 fps), drops per burst frame, their length and width as shares
# of the frame's height, brightness added
_BURST, _BURST_EVERY, _DROPS, _DROP_LENGTH, _DROP_WIDTH, _DROP_BRIGHT = 15, 150, 4, 0.2, 0.02, 80


@dataclass(frozen=True)
class Span:
    """One injected change: *kind* at *strength* over frames ``start .. end - 1``."""

    kind: str
    strength: str
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        if self.strength not in STRENGTHS[self.kind]:
            raise ValueError(f"{self.kind} strength {self.strength!r}: expected one of "
                             f"{', '.join(STRENGTHS[self.kind])}")
        if not 0 <= self.start < self.end:
            raise ValueError(f"span {self.start}..{self.end}: expected 0 <= start < end")


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def _shift(frame: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The picture moved by (dx, dy), the uncovered border replicated (a panned camera)."""
    h, w = frame.shape[:2]
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _weather(frame: np.ndarray, strength: str, rng: np.random.Generator,
             index: int = 0) -> np.ndarray:
    density, length, bright = _WEATHER[strength]
    h, w = frame.shape[:2]
    n = int(round(density * h * w / 10_000))
    layer = np.zeros((h, w), np.uint8)
    xs = rng.integers(0, w, n)
    ys = rng.integers(0, h, n)
    if length:  # rain: thin streaks slanting a little, all the same way
        dx = int(round(0.25 * length))
        for x, y in zip(xs.tolist(), ys.tolist()):
            cv2.line(layer, (x, y), (x + dx, y + length), bright, 1, cv2.LINE_AA)
    else:  # snow: small round flakes
        for x, y in zip(xs.tolist(), ys.tolist()):
            cv2.circle(layer, (x, y), int(rng.integers(1, 3)), bright, -1, cv2.LINE_AA)
    if strength == "downpour" and index % _BURST_EVERY < _BURST:
        length = max(4, int(round(_DROP_LENGTH * h)))
        width = max(2, int(round(_DROP_WIDTH * h)))
        drops = np.zeros((h, w), np.uint8)
        for x, y in zip(rng.integers(0, w, _DROPS).tolist(), rng.integers(0, h, _DROPS).tolist()):
            cv2.line(drops, (x, y), (x + length // 4, y + length), _DROP_BRIGHT, width,
                     cv2.LINE_AA)
        layer = cv2.add(layer, cv2.GaussianBlur(drops, (0, 0), width / 2))
    if frame.ndim == 3:
        layer = layer[:, :, None]
    return cv2.add(frame, np.broadcast_to(layer, frame.shape).copy())


def tampered_frame(frame: np.ndarray, span: Span, index: int, seed: int,
                   other: np.ndarray | None = None) -> np.ndarray:
    """Frame *index* changed as *span* says (a new array).

    *other* is a frame of another scene, for ``moved`` ``"view"``: its crop,
    resized to the frame's size, replaces the picture.
    """
    rng = _rng(seed, index)
    kind, s = span.kind, span.strength
    h, w = frame.shape[:2]
    if kind == "covered":
        if s == "black":
            return np.zeros_like(frame)
        if s == "grey":
            return np.full_like(frame, 128)
        # a hand over the lens: dark, a little light leaking, sensor noise
        base = cv2.GaussianBlur(frame, (0, 0), 25) // 6 + 12
        noise = rng.normal(0, 2.0, frame.shape)
        return np.clip(base + noise, 0, 255).astype(np.uint8)
    if kind == "moved":
        if s == "view":
            if other is None:
                raise ValueError("moved 'view' needs a frame of another scene")
            oh, ow = other.shape[:2]
            crop = other[oh // 8: oh - oh // 8, ow // 8: ow - ow // 8]
            out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
            if out.ndim < frame.ndim:
                out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
            elif out.ndim > frame.ndim:
                out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
            return out
        d = int(s)  # the direction is drawn once per span
        angle = _rng(seed, span.start).uniform(0, 2 * np.pi)
        return _shift(frame, int(round(d * np.cos(angle))), int(round(d * np.sin(angle))))
    if kind == "defocused":
        return cv2.GaussianBlur(frame, (0, 0), float(s))
    if kind == "lighting":
        if s == "grey":
            if frame.ndim == 2:
                return frame.copy()
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        return np.clip(frame.astype(np.float32) * float(s), 0, 255).astype(np.uint8)
    return _weather(frame, s, rng, index)


def tamper(frames: Sequence[np.ndarray], spans: Iterable[Span], seed: int = 0,
           other: Sequence[np.ndarray] | None = None) -> tuple[list[np.ndarray], list[Span]]:
    """*frames* with every span of *spans* injected, and the spans (the ground truth).

    Parameters
    ----------
    frames : sequence of ndarray
        The sequence's frames (uint8 grey or BGR); not changed.
    spans : iterable of Span
        What to inject where; spans must not overlap, and end within the frames.
    seed : int
        Everything random (rain, noise, a shift's direction) is drawn from it.
    other : sequence of ndarray, optional
        Frames of another scene, for ``moved`` ``"view"`` (frame ``i`` of the
        span takes ``other[i % len(other)]``).

    Returns
    -------
    frames : list of ndarray
        The tampered sequence (unchanged frames are the same objects).
    spans : list of Span
        The spans, sorted by start.
    """
    out = list(frames)
    spans = sorted(spans, key=lambda s: s.start)
    for a, b in zip(spans, spans[1:]):
        if b.start < a.end:
            raise ValueError(f"spans {a.start}..{a.end} and {b.start}..{b.end} overlap")
    for span in spans:
        if span.end > len(out):
            raise ValueError(f"span {span.start}..{span.end} ends after the "
                             f"{len(out)} frames")
        for i in range(span.start, span.end):
            o = other[(i - span.start) % len(other)] if other else None
            out[i] = tampered_frame(frames[i], span, i, seed, o)
    return out, spans
