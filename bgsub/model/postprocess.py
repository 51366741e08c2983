"""Mask post-processing: median filter, opening, closing, small blobs, holes.

The steps run in a fixed order, each one optional (``[postprocess]`` in
``config.toml``):

1. **median filter** (``median_size``): each pixel takes the majority of its
   square window; removes salt-and-pepper noise and smooths outlines.  The
   frame's edge is extended by replication, as by OpenCV's ``medianBlur``.
   Where the raw mask *blinks* (``blink_size``, ``blink_level``), the window
   is larger: see below.
2. **opening** (``open_size``): erosion then dilation; removes specks and
   threads thinner than the structuring element.
3. **closing** (``close_size``): dilation then erosion; bridges gaps and
   cracks narrower than the element.

   Both see the world beyond the frame's edge as background, except the
   opening's erosion, which ignores it: an object cut by the edge is not
   eaten there, and the closing does not glue an object to a nearby edge (it
   is computed with its dilation kept beyond the edge, then cropped).  The
   elements are OpenCV's (``getStructuringElement``).
4. **small-blob removal** (``min_blob_area``): 8-connected foreground blobs
   of fewer pixels are removed.
5. **hole filling** (``fill_holes``, ``max_hole_area``): 4-connected
   background regions that do not touch the frame's edge (so are enclosed by
   foreground) become foreground, optionally only those of at most
   ``max_hole_area`` pixels.  4-connectivity is the dual of the blobs'
   8-connectivity: a ring closed only diagonally still encloses its hole.

Noise goes before the shape steps so that the opening does not have to eat
it and the closing does not glue it to objects; blobs are counted after the
morphology, which may split or merge them; holes are filled last, in the
blobs that survived.

**Shadows.**  Masks hold 0 (background), 127 (shadow) and 255 (foreground).
The steps see only the foreground set (255); shadows count as background for
them.  The output is 255 where the processed foreground is, else 127 where
the input was a shadow, else 0.  So a shadow pixel stays a shadow unless a
step makes it foreground (a closing or a filled hole that covers it), and a
foreground pixel a step removes becomes background, never shadow.

**The blink gate.**  A waving tree or rippling water leaves speckle in the
raw mask that comes and goes from frame to frame in the same places; a car or
a person is one blob that the post-processed mask holds.  So each pixel keeps
a blink level B in 0..32767 (32767 meaning 1), updated on every mask by
``B += (32767 b - B) >> 6`` (a running mean over about 64 frames), where
b = 1 when the pixel's raw foreground differs from the last mask's and no
foreground of the last *output* lies within ``BLINK_GUARD`` pixels (a square
window): the edges of the objects the post-processing kept do not count.  A
pixel within ``BLINK_SPREAD`` pixels of one whose level exceeds
``blink_level`` takes the majority of the ``blink_size`` window instead of
the ``median_size`` one, unless more than ``BLINK_MOST`` of the frame would:
a moving background is a place, where rain, snow or a shaking camera blink
everywhere (and the larger window would erode every small object).  Masks are
taken as the frames of one video, in order: a :class:`Postprocessor` with the
gate on remembers the last one (:meth:`Postprocessor.reset` forgets it).

The class keeps its buffers between frames (reallocated only when the frame
size changes) and builds its structuring elements once.

Every step is a Numba kernel of this module, not OpenCV's: a mask is mostly
empty rows, which decide their output rows without any pixel work, and the
rest runs in vectorised loops along rows.  On one core the shipped steps
take 1.0 ms at 640x480 and 6.8-7.2 ms at 1920x1080 where nothing blinks,
0.5-0.7 and 3.5-3.7 ms without the blink gate (``python
benchmarks/bench_postprocess.py``), where OpenCV's filters took 0.87 and 4.9
ms on two for the steps without it; and
they leave OpenCV's thread pool alone, whose idle workers spin on the core
that the pipeline's reader and writer threads need.
"""

from __future__ import annotations


import cv2
import numpy as np
from numba import njit, types

from ..config import PostprocessConfig, replace_section
from ..labels import FOREGROUND, is_foreground
from .kernels import build

# (build, imported first, puts the kernels below in the package's cache folder)

__all__ = ["Postprocessor"]

#: blinks within this many pixels (a square) of the last output's foreground do not count
BLINK_GUARD = 4
#: the larger window applies within this many pixels (a square) of a blinking pixel
BLINK_SPREAD = 2
#: the blink level's running mean has a gain of 1 / 2**BLINK_SHIFT
BLINK_SHIFT = 6
#: the blink level meaning 1
BLINK_ONE = 32767
#: when more than this share of the frame would take the larger window, none does:
#: a moving background is a place (trees, water), rain and snow are everywhere
BLINK_MOST = 0.8

_SHAPES = {"ellipse": cv2.MORPH_ELLIPSE, "rect": cv2.MORPH_RECT, "cross": cv2.MORPH_CROSS}


class Postprocessor:
    """Clean up foreground masks with the steps of a :class:`PostprocessConfig`.

    Parameters
    ----------
    config : PostprocessConfig, optional
        The steps; the defaults are those of the shipped ``config.toml``.
        ``PostprocessConfig.off()`` turns every step off.
    **params
        Overrides of single fields, e.g. ``Postprocessor(min_blob_area=20)``.

    Notes
    -----
    With the blink gate on (``blink_size`` > 1, the default), masks are taken
    as the frames of one video, in order: the result of a mask depends on the
    masks before it.  Use one post-processor per source, and :meth:`reset`
    between videos.

    Examples
    --------
    >>> import numpy as np
    >>> from bgsub import PostprocessConfig
    >>> post = Postprocessor(PostprocessConfig.off(), min_blob_area=3)
    >>> mask = np.zeros((5, 5), np.uint8)
    >>> mask[0, 0] = 255
    >>> mask[2:5, 2:5] = 255
    >>> post.apply(mask)[0, 0], post.apply(mask)[3, 3]
    (np.uint8(0), np.uint8(255))
    """

    def __init__(self, config: PostprocessConfig | None = None, **params) -> None:
        base = config if config is not None else PostprocessConfig()
        if not isinstance(base, PostprocessConfig):
            raise TypeError(f"config must be a PostprocessConfig, got {type(base).__name__}")
        self._config = replace_section(base, **params) if params else base
        c = self._config
        shape = _SHAPES[c.kernel_shape]
        self._open = (cv2.getStructuringElement(shape, (c.open_size, c.open_size))
                      if c.open_size > 1 else None)
        self._close = (cv2.getStructuringElement(shape, (c.close_size, c.close_size))
                       if c.close_size > 1 else None)
        self._open_half = _half_widths(self._open) if self._open is not None else None
        self._close_half = _half_widths(self._close) if self._close is not None else None
        self._size: tuple[int, int] | None = None
        self._blink = c.blink_size > 1
        # the blink level above which the larger window applies, on its 0..32767 scale
        self._blink_threshold = int(c.blink_level * BLINK_ONE)

    @property
    def config(self) -> PostprocessConfig:
        """The steps in force (read-only)."""
        return self._config

    @property
    def active(self) -> bool:
        """False when every step is off: :meth:`apply` passes masks through."""
        return self._config.active

    def _allocate(self, size: tuple[int, int]) -> None:
        h, w = size
        self._size = size
        # rows padded to whole 8-byte words, the padding kept background:
        # the run scan reads 8 pixels at a time
        wp = -(-w // 8) * 8
        self._fg = np.zeros((h, wp), np.uint8)
        self._tmp = np.zeros((h, wp), np.uint8)
        self._row = _RowBuffers(self._config, h, w)
        if self._close is not None:
            r = self._close_half.shape[0] // 2
            # the closing's dilation, on the frame and a margin of r beyond it
            self._pad = np.empty((h + 2 * r, w + 2 * r), np.uint8)
        # a few runs per row is typical; _blobs_and_holes grows this when needed
        self._runs = _RunBuffers(h, 8 * h)
        if self._blink:
            # the blink gate's state: the last raw foreground (0/1), the blink
            # levels and the last output's foreground (0/255); and its work arrays
            self._last_raw = np.zeros((h, w), np.uint8)
            self._levels = np.zeros((h, w), np.uint16)
            self._last_out = np.zeros((h, w), np.uint8)
            self._guard = np.zeros((h, w), np.uint8)
            self._high = np.zeros((h, w), np.uint8)
            self._near = np.zeros((h, w), np.uint8)
            self._primed = 0

    @property
    def blinking(self) -> np.ndarray | None:
        """uint8 (H, W): 255 where the last mask took the ``blink_size`` window (the
        places where the mask blinks), else 0.  None with the gate off or before a mask.
        The post-processor's own buffer: the next mask overwrites it."""
        if not self._blink or self._size is None or not self._primed:
            return None
        return self._near

    def reset(self) -> None:
        """Forget the masks seen so far (the blink gate's state): the next mask starts a new
        video.  Nothing to forget when the gate is off."""
        if self._size is not None and self._blink:
            self._allocate(self._size)

    def apply(self, mask: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Run the configured steps over one mask.

        Parameters
        ----------
        mask : ndarray
            uint8 (H, W): 0 background, 127 shadow, 255 foreground.
        out : ndarray, optional
            uint8 (H, W) C-contiguous array for the result; may be *mask*
            itself (processing in place).

        Returns
        -------
        ndarray
            uint8 (H, W) with values in {0, 127, 255}: *out* when given, else a
            new array, or *mask* itself when every step is off.
        """
        if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.ndim != 2:
            raise ValueError("mask must be a uint8 array of shape (H, W), got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)} "
                             f"{getattr(mask, 'shape', '')}")
        if out is not None and (not isinstance(out, np.ndarray) or out.shape != mask.shape
                                or out.dtype != np.uint8 or not out.flags.c_contiguous):
            raise ValueError(f"out must be a C-contiguous uint8 array of shape {mask.shape}")
        if not self._config.active:
            if out is None:
                return mask
            if out is not mask:
                np.copyto(out, mask)
            return out
        if mask.shape != self._size:
            self._allocate(mask.shape)
        c = self._config
        h, w = mask.shape
        fg, tmp, row = self._fg, self._tmp, self._row
        mask = np.ascontiguousarray(mask)
        if self._blink:
            # where the raw mask blinks away from the last output's objects
            _majority(self._last_out, self._guard, 2 * BLINK_GUARD + 1, 0, row.padded,
                      row.total, row.rows)
            high = _blink_levels(mask, self._last_raw, self._guard, self._levels, self._high,
                                 self._blink_threshold, self._primed)
            self._primed = 1
            if high:
                _majority(self._high, self._near, 2 * BLINK_SPREAD + 1, 0, row.padded,
                          row.total, row.rows)
            else:
                self._near.fill(0)
        if c.median_size > 1:
            _majority(mask, fg, c.median_size, c.median_size ** 2 // 2, row.padded, row.total,
                      row.rows)
        else:
            _foreground(mask, fg)
        if self._blink and high:
            near = np.count_nonzero(self._near)
            if near > BLINK_MOST * h * w:
                self._near.fill(0)  # rain or snow: everywhere, no place
            else:
                _majority(mask, tmp, c.blink_size, c.blink_size ** 2 // 2, row.padded,
                          row.total, row.rows)
                _choose(self._near, tmp, fg)
        if self._open is not None:
            # the erosion sees foreground beyond the edge (it is ignored), the
            # dilation background
            _morph(fg, h, w, tmp, 0, 0, h, w, self._open_half, False, row.ring_open,
                   row.slots, row.empty)
            _morph(tmp, h, w, fg, 0, 0, h, w, self._open_half, True, row.ring_open,
                   row.slots, row.empty)
        if self._close is not None:
            # the dilation is kept r pixels beyond the edge, where the erosion
            # finds it: background beyond the edge, not foreground, for the closing
            r = self._close_half.shape[0] // 2
            pad = self._pad
            _morph(fg, h, w, pad, -r, -r, h + 2 * r, w + 2 * r, self._close_half, True,
                   row.ring_close, row.slots, row.empty)
            _morph(pad, h + 2 * r, w + 2 * r, fg, r, r, h, w, self._close_half, False,
                   row.ring_close, row.slots, row.empty)
        if c.min_blob_area > 0 or c.fill_holes:
            self._blobs_and_holes(fg, w, c.min_blob_area, c.fill_holes, c.max_hole_area)
        if self._blink:
            np.copyto(self._last_out, fg[:, :w])
        if out is None:
            out = np.empty_like(mask)
        _finish(mask, fg, out)
        return out

    def _blobs_and_holes(self, fg: np.ndarray, w: int, min_area: int, fill: bool,
                         max_hole: int) -> None:
        """Remove small blobs, then fill holes, in place, on runs of pixels.

        Each row of a mask is a few runs of foreground and the gaps between
        them, so both steps label runs, not pixels: one scan of the image,
        then work in proportion to the runs.  That is several times faster
        than labelling pixels (cv2.connectedComponents) at 1920x1080, where
        most of the frame is one background region.
        """
        runs = self._runs
        words = fg.view(np.uint64)
        count = _scan_runs(fg, words, runs.first, runs.start, runs.end)
        if count > runs.capacity:  # a busier mask than any before: grow, scan again
            self._runs = runs = _RunBuffers(fg.shape[0], 2 * count)
            _scan_runs(fg, words, runs.first, runs.start, runs.end)
        _edit_runs(fg, w, runs.first, runs.start, runs.end, runs.parent, runs.area,
                   runs.gap_first, runs.gap_start, runs.gap_end, runs.gap_parent, runs.gap_area,
                   min_area, fill, max_hole)


def needs_warm_up() -> bool:
    """Whether post-processing's kernels are not all in Numba's cache (asked of the last
    one :meth:`Postprocessor.apply` calls)."""
    mask = types.Array(types.uint8, 2, "C")
    return build.is_cached(_finish, (mask, mask, mask)) is not True


def warm_up(config: PostprocessConfig) -> None:
    """Compile (or load from Numba's cache) the kernels :meth:`Postprocessor.apply` runs
    with *config*, on a few small masks with a blinking corner, so that the blink
    gate's larger window runs too (a compiling helper process's job, see
    :func:`bgsub.model.kernels.build.warming`)."""
    post = Postprocessor(config)
    mask = np.zeros((48, 48), np.uint8)
    board = np.indices((8, 8)).sum(0)
    for t in range(12):
        mask[:8, :8] = 255 * ((board + t) % 2)
        post.apply(mask)


#: about what :func:`warm_up` takes when nothing is cached, in seconds of one core
WARM_UP_SECONDS = 6.0


def _half_widths(element: np.ndarray) -> np.ndarray:
    """Row half-widths of a structuring element whose rows are centred runs.

    OpenCV's rect, cross and ellipse elements all are: row i holds the
    columns ``r - a[i] .. r + a[i]``.  That is what lets :func:`_morph` work
    row by row on running widths instead of cell by cell.
    """
    r = element.shape[1] // 2
    halves = []
    for row in element:
        cols = np.flatnonzero(row)
        a = r - cols[0]
        if not (len(cols) == 2 * a + 1 and cols[-1] == r + a):
            raise ValueError("structuring element rows must be centred runs")
        halves.append(a)
    return np.array(halves, np.int64)


class _RowBuffers:
    """Per-row work arrays of the numba steps, kept between frames."""

    def __init__(self, config: PostprocessConfig, h: int, w: int) -> None:
        n = max(config.median_size, 1)
        if config.blink_size > 1:
            n = max(n, config.blink_size, 2 * BLINK_GUARD + 1, 2 * BLINK_SPREAD + 1)
        r = n // 2
        self.padded = np.zeros(w + 2 * r, np.uint8)
        # window sums up to n*n: beyond 8 bits from n = 17 on
        self.total = np.zeros(w, np.uint8 if n * n <= 255 else np.uint16)
        margin = config.close_size // 2  # the closing's dilation goes beyond the edge
        self.rows = np.zeros(h, np.int64)  # foreground pixels per mask row
        self.slots = np.zeros(max(config.open_size, config.close_size, 1), np.int64)
        self.empty = np.zeros(h + 2 * margin, np.bool_)
        self.ring_open = _ring(config.open_size, w)
        self.ring_close = _ring(config.close_size, w + 2 * margin)


def _ring(n: int, width: int) -> np.ndarray:
    """The rows of running widths that _morph keeps, for an n x n element and
    source rows of up to *width* pixels."""
    if n <= 1:
        return np.zeros((1, 1, 1), np.uint8)
    r = n // 2
    # _morph pads a row by the element's radius plus at most the radius again
    return np.zeros((n, r + 1, width + 4 * r), np.uint8)


class _RunBuffers:
    """Run arrays for _scan_runs and _edit_runs, kept between frames.

    Gaps (background runs) number at most one more per row than foreground
    runs, hence ``capacity + rows``.
    """

    def __init__(self, rows: int, capacity: int) -> None:
        self.capacity = capacity
        self.first = np.empty(rows + 1, np.int32)
        self.start = np.empty(capacity, np.int32)
        self.end = np.empty(capacity, np.int32)
        self.parent = np.empty(capacity, np.int32)
        self.area = np.empty(capacity, np.int64)
        gaps = capacity + rows
        self.gap_first = np.empty(rows + 1, np.int32)
        self.gap_start = np.empty(gaps, np.int32)
        self.gap_end = np.empty(gaps, np.int32)
        self.gap_parent = np.empty(gaps, np.int32)
        self.gap_area = np.empty(gaps, np.int64)


# The kernels below work on 0/255 planes.  Their inner loops run along a row
# over contiguous bytes, with no branches, so that LLVM vectorises them (32
# pixels an instruction with AVX2).  Indices are unsigned: a signed index
# makes Numba check it for negative (wrap-around) values, and the check
# keeps the loop scalar.

_u = np.uint64


@njit(cache=True, nogil=True, inline="always")
def _is_fg(v):
    """1 for a foreground value, else 0: shadows count as background."""
    return 1 if is_foreground(v) else 0


@njit(cache=True, nogil=True)
def _foreground(mask, fg):
    """fg = 255 where mask is 255 (shadows count as background), else 0."""
    h, w = mask.shape
    for y in range(h):
        m, f = mask[y], fg[y]
        for x in range(w):
            i = _u(x)
            f[i] = FOREGROUND if is_foreground(m[i]) else 0


@njit(cache=True, nogil=True)
def _majority(mask, fg, n, more, padded, total, rows):
    """fg = 255 where more than *more* pixels of the n x n window are foreground, edges
    replicated: the median with more = n * n // 2, a dilation by a square with 0.

    On two values the median is the majority.  padded[r + x] holds the
    foreground of column x in the window's rows (clamped to the frame),
    updated by one row in and one out per output row; the window's sum is
    then n shifted adds of it.  rows[y] counts row y's foreground: rows
    with none leave the column counts alone, and a window with none is
    background without summing.
    """
    h, w = mask.shape
    r = n // 2
    for y in range(h):
        m = mask[y]
        c = 0
        for x in range(w):
            c += _is_fg(m[_u(x)])
        rows[y] = c
    count = padded[r:r + w]  # the column counts, with r replicas of the edge ones around
    for x in range(w):
        count[_u(x)] = 0
    in_window = 0
    for dy in range(-r, r + 1):
        yy = min(max(dy, 0), h - 1)
        in_window += rows[yy]
        if rows[yy]:
            m = mask[yy]
            for x in range(w):
                i = _u(x)
                count[i] += _is_fg(m[i])
    for y in range(h):
        if y > 0:
            y_in, y_out = min(y + r, h - 1), max(y - r - 1, 0)
            in_window += rows[y_in] - rows[y_out]
            if rows[y_in] or rows[y_out]:
                m_in, m_out = mask[y_in], mask[y_out]
                for x in range(w):
                    i = _u(x)
                    count[i] += _is_fg(m_in[i]) - _is_fg(m_out[i])
        f = fg[y]
        if in_window == 0:
            for x in range(w):
                f[_u(x)] = 0
            continue
        for j in range(r):
            padded[_u(j)] = count[0]
            padded[_u(r + w + j)] = count[w - 1]
        for x in range(w):
            i = _u(x)
            total[i] = padded[i]
        for dx in range(1, n - 1):
            ud = _u(dx)
            for x in range(w):
                i = _u(x)
                total[i] += padded[ud + i]
        last = _u(n - 1)
        for x in range(w):
            i = _u(x)
            f[i] = FOREGROUND if total[i] + padded[last + i] > more else 0


@njit(cache=True, nogil=True)
def _blink_levels(mask, last, guard, levels, high, threshold, primed):
    """Update the blink levels with *mask*; high = 255 where a level exceeds *threshold*.
    Returns the number of such pixels.

    A pixel blinks (b = 1) when its foreground differs from *last* (the last
    mask's, 0/1, then replaced by this one's) and *guard* (0/255) is
    background there; ``levels += (32767 b - levels) >> 6``.  Before the
    first mask (*primed* 0) nothing blinks.
    """
    h, w = mask.shape
    one = np.int32(BLINK_ONE)
    count = 0
    for y in range(h):
        m, l, g, v, o = mask[y], last[y], guard[y], levels[y], high[y]
        for x in range(w):
            i = _u(x)
            f = np.int32(_is_fg(m[i]))
            b = (f ^ np.int32(l[i])) & (np.int32(g[i] == 0)) & np.int32(primed)
            level = np.int32(v[i])
            level = level + (((b * one) - level) >> BLINK_SHIFT)
            v[i] = np.uint16(level)
            above = level > threshold
            o[i] = FOREGROUND if above else 0
            count += above
            l[i] = np.uint8(f)
    return count


@njit(cache=True, nogil=True)
def _choose(near, alt, fg):
    """fg = alt where near (255), else fg: the blink window's majority near blinking pixels."""
    h, w = near.shape
    for y in range(h):
        n, a, f = near[y], alt[y], fg[y]
        for x in range(w):
            i = _u(x)
            f[i] = a[i] if n[i] != 0 else f[i]


@njit(cache=True, nogil=True)
def _widths(planes, length, amax, dilate):
    """planes[a][i] = OR (dilate) or AND of planes[0][i - a .. i + a], i in [a, length - a)."""
    for a in range(1, amax + 1):
        prev, cur = planes[a - 1], planes[a]
        if a == 1:
            if dilate:
                for j in range(1, length - 1):
                    i = _u(j)
                    cur[i] = prev[i - _u(1)] | prev[i] | prev[i + _u(1)]
            else:
                for j in range(1, length - 1):
                    i = _u(j)
                    cur[i] = prev[i - _u(1)] & prev[i] & prev[i + _u(1)]
        else:  # [i-a, i+a] is the union of the windows of a - 1 around i - 1 and i + 1
            if dilate:
                for j in range(a, length - a):
                    i = _u(j)
                    cur[i] = prev[i - _u(1)] | prev[i + _u(1)]
            else:
                for j in range(a, length - a):
                    i = _u(j)
                    cur[i] = prev[i - _u(1)] & prev[i + _u(1)]


@njit(cache=True, nogil=True)
def _load_row(src, yin, planes, sw, pad, length, amax, ident, dilate):
    """Row yin of src, padded with the identity, and its running widths, into planes."""
    p = planes[0]
    s = src[yin]
    for j in range(pad):
        p[_u(j)] = ident
        p[_u(pad + sw + j)] = ident
    up = _u(pad)
    for x in range(sw):
        i = _u(x)
        p[up + i] = s[i]
    _widths(planes, length, amax, dilate)


@njit(cache=True, nogil=True)
def _morph(src, sh, sw, dst, oy, ox, dh, dw, halves, dilate, ring, slots, empty):
    """Dilate (OR) or erode (AND) src[:sh, :sw] into dst[:dh, :dw].

    dst[y, x] combines src[y + oy + dy, x + ox + dx] over the element's cells:
    row dy + r of the element spans dx in [-halves[dy + r], halves[dy + r]]
    (never empty).  Beyond src the op's identity is assumed: background for
    a dilation, foreground for an erosion.

    Masks are mostly empty rows, which decide an output row alone: a
    dilation skips them (they add nothing) and an erosion with one in reach
    is background.  The other src rows, with their running ORs/ANDs over
    every half-width, are computed once, when first needed, and kept in
    *ring* (``slots`` says which row each ring entry holds) while the
    output rows in reach use them.
    """
    n = halves.shape[0]
    r = n // 2
    amax = np.int64(0)  # not the constant 0: helpers are compiled for the type it starts with
    for a in halves:
        amax = max(amax, a)
    ident = 0 if dilate else 255
    pad = amax + max(0, max(-ox, dw + ox - sw))
    length = sw + 2 * pad
    base = _u(pad + ox)  # >= amax >= 0
    for yin in range(sh):
        seen = np.uint8(0)
        row = src[yin]
        for x in range(sw):
            seen |= row[_u(x)]
        empty[yin] = seen == 0
    for j in range(n):
        slots[j] = -1
    for y in range(dh):
        d = dst[y]
        lo, hi = max(y + oy - r, 0), min(y + oy + r + 1, sh)
        blank = True  # whether the output row is background throughout
        if dilate:
            for yy in range(lo, hi):
                blank = blank and empty[yy]
        else:
            blank = False
            for yy in range(lo, hi):
                blank = blank or empty[yy]
        if blank:
            for x in range(dw):
                d[_u(x)] = 0
            continue
        first = True
        for yy in range(lo, hi):
            if dilate and empty[yy]:
                continue  # adds nothing
            slot = yy % n
            if slots[slot] != yy:
                _load_row(src, yy, ring[slot], sw, pad, length, amax, ident, dilate)
                slots[slot] = yy
            plane = ring[slot, halves[yy - (y + oy) + r]]
            if first:
                for x in range(dw):
                    i = _u(x)
                    d[i] = plane[base + i]
                first = False
            elif dilate:
                for x in range(dw):
                    i = _u(x)
                    d[i] |= plane[base + i]
            else:
                for x in range(dw):
                    i = _u(x)
                    d[i] &= plane[base + i]
        if first:  # an erosion with every src row out of reach: the identity
            for x in range(dw):
                d[_u(x)] = ident


@njit(cache=True, nogil=True)
def _finish(mask, fg, out):
    """out = 255 where fg, else the shadow's value where mask was a shadow, else 0.

    (out may be mask.)
    """
    h, w = mask.shape
    for y in range(h):
        m, f, o = mask[y], fg[y], out[y]
        for x in range(w):
            i = _u(x)
            # both loaded unconditionally: a load under a condition stays scalar
            shadow = np.uint8(0) if is_foreground(m[i]) else m[i]
            o[i] = f[i] | shadow


_FULL = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True, nogil=True)
def _scan_runs(fg, words, first, start, end):
    """Record the foreground runs of each row: [start, end) columns.

    *words* is fg seen as 8-byte words: words of 8 background or 8
    foreground pixels, most of a mask, are passed in one step.  Runs of row
    y are ``first[y] .. first[y + 1] - 1``.  Returns the number of runs;
    when it exceeds the arrays' capacity only the count is right (the caller
    grows the arrays and scans again).
    """
    h = fg.shape[0]
    nw = words.shape[1]
    capacity = start.shape[0]
    n = 0
    for y in range(h):
        first[y] = n
        inside = False
        x0 = 0
        for j in range(nw):
            word = words[y, j]
            if word == 0:
                if inside:
                    if n < capacity:
                        start[n] = x0
                        end[n] = 8 * j
                    n += 1
                    inside = False
                continue
            if word == _FULL:
                if not inside:
                    x0 = 8 * j
                    inside = True
                continue
            for x in range(8 * j, 8 * j + 8):
                if fg[y, x] != 0:
                    if not inside:
                        x0 = x
                        inside = True
                elif inside:
                    if n < capacity:
                        start[n] = x0
                        end[n] = x
                    n += 1
                    inside = False
        if inside:  # the padding is background: only a row of whole words ends inside
            if n < capacity:
                start[n] = x0
                end[n] = 8 * nw
            n += 1
    first[h] = n
    return n


@njit(cache=True, nogil=True)
def _root(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving keeps the trees flat
        i = parent[i]
    return i


@njit(cache=True, nogil=True)
def _label_runs(first, start, end, parent, area, rows, diagonal):
    """Union-find over runs; afterwards ``area[_root(parent, i)]`` is i's component size.

    Runs of consecutive rows join when their columns overlap, or also when
    they touch diagonally (*diagonal*: 8-connectivity; else 4-connectivity).
    """
    n = first[rows]
    for i in range(n):
        parent[i] = i
        area[i] = 0
    reach = 1 if diagonal else 0
    for y in range(1, rows):
        a, a_stop = first[y - 1], first[y]
        b, b_stop = first[y], first[y + 1]
        while a < a_stop and b < b_stop:
            if start[a] < end[b] + reach and start[b] < end[a] + reach:
                ra, rb = _root(parent, a), _root(parent, b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
            # the run that ends first cannot meet anything further on the other row
            if end[a] < end[b]:
                a += 1
            else:
                b += 1
    for i in range(n):
        area[_root(parent, i)] += end[i] - start[i]


@njit(cache=True, nogil=True)
def _edit_runs(fg, w, first, start, end, parent, area, gap_first, gap_start, gap_end,
               gap_parent, gap_area, min_area, fill, max_hole):
    """Clear blobs under min_area (8-connected), then fill holes (4-connected gaps).

    A removed run's pixels are cleared in fg and the run is emptied, so the
    gaps are computed from the runs that stay.  A gap component is a hole
    when none of its runs touches the frame's edge (fg may be wider than w).
    """
    h = fg.shape[0]
    if min_area > 0:
        _label_runs(first, start, end, parent, area, h, np.bool_(True))
        for y in range(h):
            for i in range(first[y], first[y + 1]):
                if area[_root(parent, i)] < min_area:
                    for x in range(start[i], end[i]):
                        fg[y, x] = 0
                    end[i] = start[i]
    if not fill:
        return
    g = 0
    for y in range(h):
        gap_first[y] = g
        x = 0
        for i in range(first[y], first[y + 1]):
            if end[i] == start[i]:
                continue  # removed above
            if start[i] > x:
                gap_start[g] = x
                gap_end[g] = start[i]
                g += 1
            x = end[i]
        if x < w:
            gap_start[g] = x
            gap_end[g] = w
            g += 1
    gap_first[h] = g
    _label_runs(gap_first, gap_start, gap_end, gap_parent, gap_area, h, np.bool_(False))
    # the outside: every component with a run on the edge (gap_area reused as a flag)
    for y in range(h):
        for i in range(gap_first[y], gap_first[y + 1]):
            if y == 0 or y == h - 1 or gap_start[i] == 0 or gap_end[i] == w:
                root = _root(gap_parent, i)
                gap_area[root] = -abs(gap_area[root])
    for y in range(h):
        for i in range(gap_first[y], gap_first[y + 1]):
            size = gap_area[_root(gap_parent, i)]
            if size > 0 and (max_hole == 0 or size <= max_hole):
                for x in range(gap_start[i], gap_end[i]):
                    fg[y, x] = 255
