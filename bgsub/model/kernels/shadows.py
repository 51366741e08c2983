"""Moving cast shadow detection on the mixture's foreground (Numba kernel).

A cast shadow darkens the background without changing its colour much, so a
foreground pixel is relabelled a shadow when it is a darker copy of one of its
pixel's background components.  The test follows OpenCV MOG2's
``detectShadowGMM``, written in the per-channel Mahalanobis terms of
:mod:`bgsub.model.kernels.layout` (the brightness and chromaticity distortion of Horprasert
et al., 1999).  For a component j (mean mu, variances sigma_c^2) and the
pixel's value x, x is a shadow on j when:

* j is a background component (the match rule's: rank by ``w**2 / s2``, ties
  to the lower slot, s2 the variance or the mean of the channel variances;
  background when at most T of weight ranks above it, summed over the stored
  integer weights as the frame kernel's classification does);
* the brightness ratio ``a = sum_c (x_c mu_c / sigma_c^2) / sum_c (mu_c^2 /
  sigma_c^2)``, the scale that brings ``a mu`` closest to x in j's own metric,
  lies in ``[ratio_min, 1]``.  For the spherical model the variance cancels
  and ``a = <x, mu> / |mu|^2`` as in MOG2; the diagonal model weighs each
  channel by its precision, as its match does;
* the colour distortion is small: ``(1/C) sum_c (x_c - a mu_c)^2 /
  sigma_c^2 < tau_c^2 a^2``.  x lies within tau_c standard deviations (of one
  channel, like ``match_threshold``) of the darkened colour ``a mu``, whose
  spread shrinks with it (MOG2's ``a^2``);
* j is coloured: its mean lies at least tau_c sigma from the grey axis (see
  :func:`darker_spherical`).  On a grey background the colour test cannot tell a
  shadow from a grey object of the right brightness (a grey car on grey
  asphalt), so it does not guess.  A grey frame (C = 1) is all grey: never a
  shadow, and the kernel returns at once;
* x does not match j (see below).

The test runs inside the frame kernel (:func:`bgsub.model.kernels.frame.frame_kernel`),
on each tile right after the tile's pixels were classified and learned, while
the tile's state is still in cache, and sees the state *after* the frame's
update, which is what it needs.  No background component matched a
foreground pixel, so none of them moved: their means and variances are those
the frame was classified against, and their weights all decayed by the same
factor, which keeps their order (the background set, recomputed from the new
weights, differs only through the one component that gained weight).  That
component, the one the frame matched or created, is no reference: it could
rank among the background now (always with k = 1; on a stopped object's
absorption frame), and compared with itself x would pass as a shadow of ratio
1.  It is the only one that matches x after the update (the update moves a
match's mean and variance towards x, which keeps it matching; a new component
is centred on x), so components that match x are skipped.  With k = 1 a
foreground pixel has replaced its only component and nothing is left to
compare with: no shadows.  OpenCV's MOG2 also tests the updated model, without
that exclusion.

Only foreground pixels are tested, one by one: on real footage they are a few
percent of a frame (benchmarks/shadow_cost.py measures the cost).

Every value is float32 and computed in the order of the plain reference
``naive_shadows`` in ``tests/naive.py``, so the two agree exactly; change both
together.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ...labels import FOREGROUND
from .layout import (BLOCK, Q_MAX, UBLOCK, W_ONE, dec_mu, dec_var, dec_w, mu_index, var_index,
                     w_index)

__all__ = ["darker_spherical", "darker_diagonal", "darker_background", "shadow_tile",
           "mark_shadows", "NOT_DARKER", "GREY", "COLOURED"]

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_FG = np.uint8(FOREGROUND)
# what darker_spherical, darker_diagonal and darker_background find
NOT_DARKER = 0
GREY = 1  # a darker copy of a grey component: for the texture test
COLOURED = 2  # a shadow by colour


@njit(cache=True, error_model="numpy")
def darker_spherical(a0, a1, a2, ww, b0, b1, b2, v, inv_c, lam2, ratio_min, tau2,
                     grey_too=False):
    """Whether value (a0, a1, a2) is a darker copy of a component (w, mean b, variance v).

    Returns COLOURED (a shadow by colour), GREY (a darker copy of a grey
    component: a candidate for the texture test) or NOT_DARKER.

    The tests run cheapest and most often failing first, each ending the
    test when it fails: most foreground pixels are not shadows.

    The test of colour against grey: the colour test accepts the ball of
    radius tau_c a sigma around ``a b``; when that ball reaches the grey axis
    (B = G = R), every grey value of the right brightness passes as a shadow,
    a grey car on grey asphalt, a person in black on a concrete floor.
    Scaling by a moves ``a b`` and shrinks the ball alike, so whether it
    reaches grey does not depend on a: b must lie at least tau_c sigma from
    the axis.  With ``grey_too`` the other tests still run on a grey component,
    whose darker copies are GREY, for the texture test of
    :mod:`bgsub.model.kernels.neighbours`, which tells a shadow by other means;
    without, a grey component is NOT_DARKER at once.
    """
    num = a0 * b0 + a1 * b1 + a2 * b2
    den = b0 * b0 + b1 * b1 + b2 * b2
    # products rather than the ratio keep the band's ends exact; a black mean
    # (den 0) has no darker copy
    if not ((ww > _ZERO) & (den > _ZERO) & (ratio_min * den <= num) & (num <= den)):
        return NOT_DARKER
    grey = (b0 + b1 + b2) * inv_c
    g0 = b0 - grey
    g1 = b1 - grey
    g2 = b2 - grey
    coloured = (g0 * g0 + g1 * g1 + g2 * g2) * inv_c >= tau2 * v
    if not (coloured or grey_too):
        return NOT_DARKER  # too close to grey to tell
    a = num / den
    d0 = a0 - a * b0
    d1 = a1 - a * b1
    d2 = a2 - a * b2
    if not (d0 * d0 + d1 * d1 + d2 * d2) * inv_c < tau2 * a * a * v:
        return NOT_DARKER
    e0 = a0 - b0
    e1 = a1 - b1
    e2 = a2 - b2
    if not (e0 * e0 + e1 * e1 + e2 * e2) * inv_c >= lam2 * v:
        return NOT_DARKER  # x matches it
    return COLOURED if coloured else GREY


@njit(cache=True, error_model="numpy")
def darker_diagonal(a0, a1, a2, ww, b0, b1, b2, v0, v1, v2, inv_c, lam2, ratio_min, tau2,
                    grey_too=False):
    """:func:`darker_spherical` for a variance per channel: every sum weighs by precision.

    (The nearest grey, too, is the precision-weighted mean of the channels.)
    """
    num = a0 * b0 / v0 + a1 * b1 / v1 + a2 * b2 / v2
    den = b0 * b0 / v0 + b1 * b1 / v1 + b2 * b2 / v2
    if not ((ww > _ZERO) & (den > _ZERO) & (ratio_min * den <= num) & (num <= den)):
        return NOT_DARKER
    grey = (b0 / v0 + b1 / v1 + b2 / v2) / (_ONE / v0 + _ONE / v1 + _ONE / v2)
    g0 = b0 - grey
    g1 = b1 - grey
    g2 = b2 - grey
    coloured = (g0 * g0 / v0 + g1 * g1 / v1 + g2 * g2 / v2) * inv_c >= tau2
    if not (coloured or grey_too):
        return NOT_DARKER
    a = num / den
    d0 = a0 - a * b0
    d1 = a1 - a * b1
    d2 = a2 - a * b2
    if not (d0 * d0 / v0 + d1 * d1 / v1 + d2 * d2 / v2) * inv_c < tau2 * a * a:
        return NOT_DARKER
    e0 = a0 - b0
    e1 = a1 - b1
    e2 = a2 - b2
    if not (e0 * e0 / v0 + e1 * e1 / v1 + e2 * e2 / v2) * inv_c >= lam2:
        return NOT_DARKER
    return COLOURED if coloured else GREY


@njit(cache=True, error_model="numpy")
def darker_background(x, state, p, s, k, nc, nv, inv_c, var_min, step, t_q, lam2, ratio_min,
                      tau2, grey_too):
    """Whether colour pixel p (state at offset s) is a darker copy of a background slot.

    The slots in rank order while at most T of weight ranks above them, the
    test of :func:`darker_spherical` or :func:`darker_diagonal` on each:
    COLOURED when one is a coloured shadow's; else, with ``grey_too``, GREY
    when one is a grey component's darker copy; else NOT_DARKER.
    """
    px = p * np.uint64(3)
    a0 = np.float32(x[px])
    a1 = np.float32(x[px + np.uint64(1)])
    a2 = np.float32(x[px + np.uint64(2)])
    above = _ZERO  # the weight codes ranked above slot j (the slots are in rank order)
    found = NOT_DARKER
    for j in range(k):
        if above > t_q:
            break  # j and the slots after it are not background
        q = state[w_index(s, j)]
        ww = dec_w(q)
        b0 = dec_mu(state[mu_index(s, j, 0, k, nc)])
        b1 = dec_mu(state[mu_index(s, j, 1, k, nc)])
        b2 = dec_mu(state[mu_index(s, j, 2, k, nc)])
        v0 = dec_var(state[var_index(s, j, 0, k, nc, nv)], var_min, step)
        if nv == 1:
            kind = darker_spherical(a0, a1, a2, ww, b0, b1, b2, v0, inv_c, lam2, ratio_min,
                                    tau2, grey_too)
        else:
            v1 = dec_var(state[var_index(s, j, 1, k, nc, nv)], var_min, step)
            v2 = dec_var(state[var_index(s, j, 2, k, nc, nv)], var_min, step)
            kind = darker_diagonal(a0, a1, a2, ww, b0, b1, b2, v0, v1, v2, inv_c, lam2,
                                   ratio_min, tau2, grey_too)
        if kind == COLOURED:
            return COLOURED
        found = max(found, kind)
        above += np.float32(q)
    return found


@njit(cache=True, error_model="numpy")
def shadow_tile(x, state, mask, t, nb, k, nc, nv, var_min, step, t_q, lam2, ratio_min, tau2,
                value, candidate, grey_too):
    """Relabel tile t's foreground pixels that are cast shadows (the tests above).

    One pixel at a time, and only foreground ones: scalar code for the few
    pixels that need it, on a tile whose state the frame kernel just touched
    (and only on a tile with foreground: its callers OR the tile's mask).
    With ``grey_too``, the darker copies of grey components get ``candidate``
    (the neighbour pass's texture test decides them, and leaves no
    candidate in the mask).  Returns 1 when it marked a candidate, else 0.
    """
    planes = k * (1 + nc + nv)
    base = np.uint64(t) * np.uint64(planes * BLOCK)
    first = np.uint64(t) * UBLOCK
    inv_c = _ONE / np.float32(nc)
    found = np.uint8(0)
    ii = 0
    while True:
        # a search with a data-dependent exit: the vectoriser leaves it (and
        # the test below) alone, where a counted loop over the tile would be
        # turned into a predicated vector loop testing every pixel
        while ii < nb and mask[first + np.uint64(ii)] != _FG:
            ii += 1
        if ii >= nb:
            break
        i = np.uint64(ii)
        ii += 1
        p = first + i
        s = base + i
        kind = darker_background(x, state, p, s, k, nc, nv, inv_c, var_min, step, t_q, lam2,
                                 ratio_min, tau2, grey_too)
        if kind == COLOURED:
            mask[p] = value
        elif kind == GREY:
            mask[p] = candidate
            found = np.uint8(1)
    return found


@njit(cache=True, nogil=True, error_model="numpy")
def mark_shadows(x, state, mask, n, k, nc, nv, var_min, var_max, bg_ratio, lam2, ratio_min,
                 tau2, value, t_start, t_stop):
    """Relabel the cast shadows among a mask's foreground pixels, tiles t_start..t_stop-1.

    The pass a frame kernel built with ``shadows`` makes over each tile it
    has just learned from, on its own: on a given state and mask, for tests
    and for callers with a mask of their own.
    ``x`` is the frame (N*C,; a grey frame has no shadows: nothing changes),
    ``state`` the flat state of the model, ``mask`` (N,) with 255 for
    foreground; shadows get ``value``.  ``lam2``, ``tau2``: the match and
    colour-distortion thresholds squared; ``ratio_min``: the darkest
    shadow's brightness ratio.
    """
    if nc != 3:
        return  # grey frames have no shadows
    step = (var_max - var_min) / Q_MAX
    t_q = bg_ratio * W_ONE
    for t in range(t_start, t_stop):
        nb = min(BLOCK, n - t * BLOCK)
        # most tiles have no foreground: an OR over the tile's mask (a vector
        # loop) rules them out at a fraction of a per-pixel test's cost
        seen = np.uint8(0)
        first = np.uint64(t) * UBLOCK
        for ii in range(nb):
            seen |= mask[first + np.uint64(ii)]
        if seen == _FG:
            shadow_tile(x, state, mask, t, nb, k, nc, nv, var_min, step, t_q, lam2, ratio_min,
                        tau2, value, value, False)
