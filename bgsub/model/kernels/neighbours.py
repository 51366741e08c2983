"""The pass after the frame kernel: tests that look at a pixel's neighbours.

The frame kernel classifies and learns tile by tile, several tiles at once;
a test that reads a neighbour's state must wait until every tile has learned,
so these run in a second pass over the tiles, which reads the state anywhere
and writes only its own pixels' mask.  Only pixels left foreground (or
shadow) are visited, a few percent of a frame, in the tiles the frame kernel
flagged (``busy``): a frame of background costs a byte per tile.

* **Neighbour match** (Elgammal et al. 2000's displacement probability,
  ViBe's spatial diffusion): a pixel whose flicker level is at least the
  gate and whose value matches a *background* component of a pixel within
  ``radius`` (the match rule of :func:`bgsub.model.kernels.frame._match`, on the
  neighbour's slots) is background.  A camera that shakes by a pixel or two,
  a branch that waves: the value belongs to the scene, one pixel over.  The
  gate keeps the test to pixels that flicker: a steady object's edge would
  otherwise match the background next to it and erode.
* **Shadows on grey backgrounds by texture**: a foreground pixel that is a
  darker copy of a background component whose colour is too close to grey for
  the colour test (:mod:`bgsub.model.kernels.shadows`; the frame kernel marks such
  candidates while it has their state in cache) is a shadow when the frame's
  brightness around it is a scaled copy of the background's: over the 5x5
  window (clipped at the frame's edge), brightness L = mean of the channels,
  background brightness M = mean of the top-ranked component's channels,
  the fit L = a M leaves a root-mean-square residual of at most 0.2 of the
  mean of L, and L and M correlate (normalised cross-correlation at least
  0.4).  A shadow keeps the floor's texture, a grey object replaces it.
  (The sums are of integers, the channels and the stored mean codes, so they
  are exact in any order; no division per pixel.)
* **Ghost cells**: each pixel still foreground by its own classification
  (a released ghost's pixels included, neighbour matches not) marks its 8x8
  cell for :mod:`bgsub.model.kernels.ghosts`, on the frames that test for ghosts.

Every value is computed in the order of ``tests/naive.py``; change both
together.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .frame import BUSY_WORK, _match
from .layout import BLOCK, FLICKER_ONE, Q_MAX, W_ONE, mu_index
from .spin import back_to_python, first_chunk, next_chunk, out_of_python

__all__ = ["neighbour_pass", "TEXTURE_RADIUS", "TEXTURE_NCC", "TEXTURE_SPREAD",
           "GHOST_CELL"]

TEXTURE_RADIUS = 2
TEXTURE_NCC = 0.4
TEXTURE_SPREAD = 0.2
GHOST_CELL = 8  # pixels per side of a ghost cell
_PASS_CHUNKS = 16  # per thread: chunks of 1/32 of the tiles left with 2 threads, at least 4

_ZERO = np.float32(0.0)
_FLAT = 1e-6 * 9.0 * 768.0 ** 2  # a flat window's variance product, in the sums' units
_ONE = np.float32(1.0)
_FG = np.uint8(255)


@njit(cache=True, error_model="numpy")
def _slot(q, planes):
    """Where pixel q's values start in the state: its tile's start plus its lane."""
    return np.uint64((q // BLOCK) * planes * BLOCK + q % BLOCK)


@njit(cache=True, error_model="numpy")
def _columns(x, state, y0, y1, c0, c1, w, k, nc, planes):
    """The texture sums over rows y0..y1-1 of columns c0..c1-1: L, M, LL, MM, LM, count.

    L = the channels' sum, M = the sum of the top-ranked mean's stored codes,
    as int64: the sums are exact in any order.
    """
    sx = sb = sxx = sbb = sxb = 0
    count = 0
    for yy in range(y0, y1):
        for xq in range(c0, c1):
            q = yy * w + xq
            s = _slot(q, planes)
            lx = np.int64(x[q * 3]) + np.int64(x[q * 3 + 1]) + np.int64(x[q * 3 + 2])
            lb = (np.int64(state[mu_index(s, 0, 0, k, nc)])
                  + np.int64(state[mu_index(s, 0, 1, k, nc)])
                  + np.int64(state[mu_index(s, 0, 2, k, nc)]))
            sx += lx
            sb += lb
            sxx += lx * lx
            sbb += lb * lb
            sxb += lx * lb
            count += 1
    return sx, sb, sxx, sbb, sxb, count


@njit(cache=True, error_model="numpy")
def _texture_test(sx, sb, sxx, sbb, sxb, count):
    """Whether the frame's brightness in a window is a scaled copy of the background's.

    From the window's integer sums (see _columns and the module docstring):
    the fit L = a M through the origin leaves a root-mean-square residual of
    at most 0.2 of the mean brightness, and L and M correlate (normalised
    cross-correlation at least 0.4; a window flatter than that in either can
    tell nothing).  In grey levels (L / 3, M / 768) the scales cancel: with n the count,
    the residual test ``sqrt(max(LL - LM^2 / MM, 0) / n) <= 0.2 L / n`` (sums
    of L = a M's fit) is ``25 n (LL MM - LM^2) <= L^2 MM``; the variances
    and covariance times n^2 are ``vx = n LL - L^2``, ``vb = n MM - M^2``,
    ``c = n LM - L M`` (exact integers); the window is flat when
    ``vx vb / (9 768^2 n^4) <= 1e-6``, and the correlation
    ``c / sqrt(vx vb) >= 0.4`` is ``c >= 0 and 25 c^2 >= 4 vx vb``.  No
    division, no root: a tenth of the ratios' cost, for the same test.
    (``LL MM`` can pass 2^63: the products are float64.)
    """
    if sbb <= 0 or sx <= 0:
        return False
    n = np.float64(count)
    fx = np.float64(sx)
    fbb = np.float64(sbb)
    fxb = np.float64(sxb)
    if 25.0 * n * (np.float64(sxx) * fbb - fxb * fxb) > fx * fx * fbb:
        return False
    vx = np.float64(count * sxx - sx * sx)
    vb = np.float64(count * sbb - sb * sb)
    den = vx * vb
    if den <= _FLAT * (n * n) * (n * n):
        return False  # a flat window: no texture to compare
    c = np.float64(count * sxb - sx * sb)
    return c >= 0.0 and 25.0 * c * c >= 4.0 * den


@njit(cache=True, error_model="numpy")
def _neighbour_match(x, state, p, h, w, k, nc, nv, lam2, var_min, step, t_q, radius):
    """Whether pixel p's value matches a background component of a pixel within radius."""
    planes = k * (1 + nc + nv)
    inv_c = _ONE / np.float32(nc)
    c1 = 1 if nc > 1 else 0
    c2 = 2 if nc > 2 else 0
    px = p * nc
    x0 = np.float32(x[px])
    x1 = np.float32(x[px + c1])
    x2 = np.float32(x[px + c2])
    y = p // w
    xx = p - y * w
    for yy in range(max(0, y - radius), min(h, y + radius + 1)):
        for xq in range(max(0, xx - radius), min(w, xx + radius + 1)):
            if yy == y and xq == xx:
                continue
            best, _, _, above = _match(state, _slot(yy * w + xq, planes), x0, x1, x2, k, nc,
                                       nv, inv_c, lam2, var_min, step)
            if (best >= _ZERO) & (above <= t_q):
                return True
    return False


@njit(cache=True, nogil=True, error_model="numpy")
def neighbour_pass(x, state, mask, aux, release, busy, cells, h, w, k, nc, nv, lam2, bg_ratio,
                   var_min, var_max, radius, gate, candidate, value, mark, releasing, ctl, threads,
                   t_start, t_stop):
    """The pass over tiles ``t_start .. t_stop - 1`` after the frame kernel (see above).

    ``mask`` (N,) as the frame kernel left it, updated in place: its texture
    candidates (``candidate``, see :func:`bgsub.model.kernels.shadows.shadow_tile`)
    become shadows (``value``) or foreground; ``aux`` the flicker words;
    ``release`` (N,) 1 for the pixels of released ghosts, ``releasing``
    whether any is; ``busy`` the frame kernel's per-tile flags (see
    :func:`bgsub.model.kernels.frame.frame_kernel`: a tile without BUSY_WORK holds
    nothing to test, and is visited only to mark cells); ``cells``
    (ceil(h / 8), ceil(w / 8)) uint8 gets 1 for each cell holding a pixel
    still foreground by its own classification.  ``radius`` 0 turns the
    neighbour match off; ``gate`` is the flicker level (0..32767) from which
    it applies; ``mark`` asks for the cells (only the ghost test's frames
    need them).
    """
    n = h * w
    step = (var_max - var_min) / Q_MAX
    t_q = bg_ratio * W_ONE
    planes = k * (1 + nc + nv)
    # the texture window last summed: its row and columns lo..hi-1, and its
    # sums (see _columns); candidates come in runs along a row, and the
    # next one's window is this one's, a column over
    win_y = win_lo = win_hi = np.int64(-1)  # not the constant: helpers compile for its type
    sx = sb = sxx = sbb = sxb = 0
    count = 0
    out_of_python(ctl, threads)  # (see bgsub.model.kernels.spin.enter_python)
    # small chunks: the work is in the few busy tiles, which lie together
    # (the first quarter of a frame's tiles can hold them all)
    c_start, c_stop = first_chunk(ctl, t_start, t_stop, threads, _PASS_CHUNKS)
    while c_start < c_stop:
        for t in range(c_start, c_stop):
            flags = busy[t]
            # a tile with neither foreground to test nor cells to mark is skipped
            if (flags & BUSY_WORK) == 0 and not (mark and (flags != 0 or releasing)):
                continue
            first = t * BLOCK
            nb = min(BLOCK, n - first)
            # released pixels only count in the rare tiles that hold some (an OR
            # over the tile, a vector loop; unsigned indices, so that no
            # negative-index wraparound hides the addresses' linearity from the
            # vectoriser)
            held = np.uint8(0)
            if releasing:
                start = np.uint64(first)
                for ii in range(np.uint64(nb)):
                    held |= release[start + ii]
                if flags == 0 and held == 0:
                    continue
            # the tile's first row and column: a pixel's follow by subtraction,
            # not by a division per pixel
            row0 = first // w
            col0 = first - row0 * w
            ii = 0
            while True:
                # a search with a data-dependent exit, which the vectoriser leaves
                # alone (see shadows.shadow_tile)
                if held == 0:
                    # eight bytes at a time through the background (one load each)
                    while ii + 8 <= nb and (mask[first + ii] | mask[first + ii + 1]
                                            | mask[first + ii + 2] | mask[first + ii + 3]
                                            | mask[first + ii + 4] | mask[first + ii + 5]
                                            | mask[first + ii + 6] | mask[first + ii + 7]) == 0:
                        ii += 8
                    while ii < nb and mask[first + ii] == 0:
                        ii += 1
                else:
                    while ii < nb and mask[first + ii] == 0 and release[first + ii] == 0:
                        ii += 1
                if ii >= nb:
                    break
                p = first + ii
                ii += 1
                m = mask[p]
                code = np.int32(aux[p])
                if m != 0 and radius > 0 and (code & FLICKER_ONE) >= gate:
                    if _neighbour_match(x, state, p, h, w, k, nc, nv, lam2, var_min, step, t_q,
                                        radius):
                        mask[p] = 0
                        continue
                if m == candidate and nc == 3:
                    y = p // w
                    xx = p - y * w
                    y0 = max(0, y - TEXTURE_RADIUS)
                    y1 = min(h, y + TEXTURE_RADIUS + 1)
                    lo = max(0, xx - TEXTURE_RADIUS)
                    hi = min(w, xx + TEXTURE_RADIUS + 1)
                    if (y == win_y and win_lo <= lo < win_hi
                            and (lo - win_lo) + (hi - win_hi) < hi - lo):
                        # slide: the columns left behind out, the new ones in
                        out = _columns(x, state, y0, y1, win_lo, lo, w, k, nc, planes)
                        new = _columns(x, state, y0, y1, win_hi, hi, w, k, nc, planes)
                        sx += new[0] - out[0]
                        sb += new[1] - out[1]
                        sxx += new[2] - out[2]
                        sbb += new[3] - out[3]
                        sxb += new[4] - out[4]
                        count += new[5] - out[5]
                    else:
                        sx, sb, sxx, sbb, sxb, count = _columns(x, state, y0, y1, lo, hi, w,
                                                                k, nc, planes)
                    win_y, win_lo, win_hi = y, lo, hi
                    mask[p] = value if _texture_test(sx, sb, sxx, sbb, sxb, count) else _FG
                if mark and code >> 15 != 0:
                    y = row0
                    col = col0 + ii - 1
                    while col >= w:
                        col -= w
                        y += 1
                    # threads may mark one cell at once: each writes the same byte 1
                    cells[y // GHOST_CELL, col // GHOST_CELL] = 1
        c_start, c_stop = next_chunk(ctl, t_start, t_stop, threads, c_start, c_stop,
                                     _PASS_CHUNKS)
    back_to_python(ctl, threads)
