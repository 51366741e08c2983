"""Moving cast shadow detection on the mixture's foreground (Numba kernel).

A cast shadow darkens the background without changing its colour much, so a
foreground pixel is relabelled a shadow when it is a darker copy of one of its
pixel's background components.  The test follows OpenCV MOG2's
``detectShadowGMM``, written in the per-channel Mahalanobis terms of
:mod:`bgsub.kernels` (the brightness and chromaticity distortion of Horprasert
et al., 1999).  For a component j (mean mu, variances sigma_c^2) and the
pixel's value x, x is a shadow on j when:

* j is a background component (the match rule's: rank by ``w**2 / s2``, ties
  to the lower slot, s2 the variance or the mean of the channel variances;
  background when at most T of weight ranks above it, summed in float64 where
  the sum is exact, as ``kernels._classify_block`` does);
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
  :func:`_spherical`).  On a grey background the colour test cannot tell a
  shadow from a grey object of the right brightness (a grey car on grey
  asphalt), so it does not guess.  A grey frame (C = 1) is all grey: never a
  shadow, and the kernel returns at once;
* x does not match j (see below).

The kernel runs after :func:`bgsub.kernels.update_classify` and sees the state
*after* the frame's update, which is what it needs.  No background component
matched a foreground pixel, so none of them moved: their means and variances
are those the frame was classified against, and their weights all decayed by
the same factor, which keeps their order (the background set, recomputed from
the new weights, differs only through the one component that gained weight).
That component, the one the frame matched or created, is no reference: it
could rank among the background now (always with k = 1; on a stopped object's
absorption frame), and compared with itself x would pass as a shadow of ratio
1.  It is the only one that matches x after the update (the update moves a
match's mean and variance towards x, which keeps it matching; a new component
is centred on x), so components that match x are skipped.  With k = 1 a
foreground pixel has replaced its only component and nothing is left to
compare with: no shadows.  OpenCV's MOG2 also tests the updated model, without
that exclusion.

Layout as in :mod:`bgsub.kernels`, pixels in blocks of ``BLOCK``, except
that the threads take spans of blocks in turn rather than one share each,
since the foreground crowds where the objects are.  A block without
foreground costs one vectorised OR of its mask bytes.  A block mostly
foreground is tested whole, component by component, in one branch-free pass
over contiguous planes that LLVM vectorises; only the few candidates that
pass get their rank worked out.  The other blocks, most of them holding a few
noise pixels, test those pixels one by one.  Those take most of the time
left: about a microsecond a block, for touching a page of each of the
k (1 + C + V) planes for a handful of pixels (benchmarks/shadow_cost.py
measures the whole).

Every value is float32 and computed in the order of the plain reference
``naive_shadows`` in ``tests/naive.py``, so the two agree exactly; change both
together.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["BLOCK", "allocate_scratch", "mark_shadows"]

BLOCK = 256
_SPAN = 8  # blocks a thread takes in a row (2048 pixels, a 1080p line)
_FG = np.uint8(255)
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
# rows of one chunk's float32 scratch: the pixels' values (B, G, R), then 0/1
# flags (float, so that every lane of the vectorised loops is 32 bits wide)
_CAND, _HIT = 3, 4
_N_ROWS = 5


def allocate_scratch(n_chunks: int) -> np.ndarray:
    """The float32 scratch :func:`mark_shadows` needs, for pixels shared out in ``n_chunks`` chunks.

    Per chunk: a block's pixel values (B, G, R rows) and two rows of flags.
    Allocated once per model, never per frame.
    """
    return np.zeros((n_chunks, _N_ROWS, BLOCK), np.float32)


@njit(cache=True, error_model="numpy")
def _may_hold_foreground(mask, p0, nb):
    """False when no byte of the block is 255: one vectorised OR, no branch per byte.

    (255 has every bit set, so a block without it ORs to something else.)
    """
    m = mask[p0:p0 + nb]
    seen = np.uint8(0)
    for i in range(nb):
        seen |= m[i]
    return seen == _FG


@njit(inline="always", cache=True, error_model="numpy")
def _spherical(a0, a1, a2, ww, b0, b1, b2, v, inv_c, lam2, ratio_min, tau2):
    """Whether value (a0, a1, a2) is a darker copy of a component (w, mean b, variance v).

    Every test is computed and the results combined, no branch, so that a loop
    over pixels vectorises.

    The test of colour against grey: the colour test accepts the ball of
    radius tau_c a sigma around ``a b``; when that ball reaches the grey axis
    (B = G = R), every grey value of the right brightness passes as a shadow,
    a grey car on grey asphalt, a person in black on a concrete floor.
    Scaling by a moves ``a b`` and shrinks the ball alike, so whether it
    reaches grey does not depend on a: b must lie at least tau_c sigma from
    the axis.
    """
    num = a0 * b0 + a1 * b1 + a2 * b2
    den = b0 * b0 + b1 * b1 + b2 * b2
    # products rather than the ratio keep the band's ends exact; a black mean
    # (den 0) has no darker copy, and its NaN ratio is never used
    band = (ww > _ZERO) & (den > _ZERO) & (ratio_min * den <= num) & (num <= den)
    a = num / den
    grey = (b0 + b1 + b2) * inv_c
    g0 = b0 - grey
    g1 = b1 - grey
    g2 = b2 - grey
    coloured = (g0 * g0 + g1 * g1 + g2 * g2) * inv_c >= tau2 * v
    d0 = a0 - a * b0
    d1 = a1 - a * b1
    d2 = a2 - a * b2
    close = (d0 * d0 + d1 * d1 + d2 * d2) * inv_c < tau2 * a * a * v
    e0 = a0 - b0
    e1 = a1 - b1
    e2 = a2 - b2
    # "does not match" as its own comparison: ~ of a bool is Python's int ~,
    # which put int64 lanes among the float32 ones
    apart = (e0 * e0 + e1 * e1 + e2 * e2) * inv_c >= lam2 * v
    return band & coloured & close & apart


@njit(inline="always", cache=True, error_model="numpy")
def _diagonal(a0, a1, a2, ww, b0, b1, b2, v0, v1, v2, inv_c, lam2, ratio_min, tau2):
    """:func:`_spherical` for a variance per channel: every sum weighs by precision.

    (The nearest grey, too, is the precision-weighted mean of the channels.)
    """
    num = a0 * b0 / v0 + a1 * b1 / v1 + a2 * b2 / v2
    den = b0 * b0 / v0 + b1 * b1 / v1 + b2 * b2 / v2
    band = (ww > _ZERO) & (den > _ZERO) & (ratio_min * den <= num) & (num <= den)
    a = num / den
    grey = (b0 / v0 + b1 / v1 + b2 / v2) / (_ONE / v0 + _ONE / v1 + _ONE / v2)
    g0 = b0 - grey
    g1 = b1 - grey
    g2 = b2 - grey
    coloured = (g0 * g0 / v0 + g1 * g1 / v1 + g2 * g2 / v2) * inv_c >= tau2
    d0 = a0 - a * b0
    d1 = a1 - a * b1
    d2 = a2 - a * b2
    close = (d0 * d0 / v0 + d1 * d1 / v1 + d2 * d2 / v2) * inv_c < tau2 * a * a
    e0 = a0 - b0
    e1 = a1 - b1
    e2 = a2 - b2
    apart = (e0 * e0 / v0 + e1 * e1 / v1 + e2 * e2 / v2) * inv_c >= lam2
    return band & coloured & close & apart


@njit(inline="always", cache=True, error_model="numpy")
def _rank_key(w, var, j, p, inv_c):
    """Component j's rank key ``w**2 / s2`` at pixel p, as the match computes it."""
    wj = w[j, p]
    if var.shape[1] == 1:
        return wj * wj / var[j, 0, p]
    s2 = _ZERO
    for c in range(var.shape[1]):
        s2 += var[j, c, p]
    return wj * wj / (s2 * inv_c)


@njit(cache=True, error_model="numpy")
def _is_background(w, var, j, p, inv_c, t64):
    """Whether at most T of weight ranks above component j at pixel p (ties to the lower slot)."""
    key_j = _rank_key(w, var, j, p, inv_c)
    above = 0.0
    for q in range(w.shape[0]):
        key_q = _rank_key(w, var, q, p, inv_c)
        if q != j and (key_q > key_j or (key_q == key_j and q < j)):
            above += np.float64(w[q, p])
    return above <= t64


@njit(cache=True, error_model="numpy")
def _candidates(nb, j, rows, w, mu, var, p0, inv_c, lam2, ratio_min, tau2):
    """Flag (CAND row) the block's pixels that are a darker copy of component j, rank aside.

    The values are in rows 0-2.  One branch-free pass over contiguous
    planes, which LLVM vectorises.  Returns how many are flagged (as a float).
    """
    x0 = rows[0]
    x1 = rows[1]
    x2 = rows[2]
    cand = rows[_CAND]
    wj = w[j, p0:p0 + nb]
    m0 = mu[j, 0, p0:p0 + nb]
    m1 = mu[j, 1, p0:p0 + nb]
    m2 = mu[j, 2, p0:p0 + nb]
    if var.shape[1] == 1:
        vj = var[j, 0, p0:p0 + nb]
        for i in range(nb):
            ok = _spherical(x0[i], x1[i], x2[i], wj[i], m0[i], m1[i], m2[i], vj[i], inv_c, lam2,
                            ratio_min, tau2)
            cand[i] = _ONE if ok else _ZERO
    else:
        v0 = var[j, 0, p0:p0 + nb]
        v1 = var[j, 1, p0:p0 + nb]
        v2 = var[j, 2, p0:p0 + nb]
        for i in range(nb):
            ok = _diagonal(x0[i], x1[i], x2[i], wj[i], m0[i], m1[i], m2[i], v0[i], v1[i], v2[i],
                           inv_c, lam2, ratio_min, tau2)
            cand[i] = _ONE if ok else _ZERO
    # counted apart: an int counter in the loop above, mixed with its float
    # lanes, kept LLVM from vectorising it
    total = _ZERO
    for i in range(nb):
        total += cand[i]
    return total


@njit(cache=True, error_model="numpy")
def _dense_block(x, p0, nb, w, mu, var, mask, rows, inv_c, t64, lam2, ratio_min, tau2, value):
    """Relabel the shadows of a block that is mostly foreground: every pixel, vectorised."""
    xs = x[p0 * 3:(p0 + nb) * 3]
    x0 = rows[0]
    x1 = rows[1]
    x2 = rows[2]
    for i in range(nb):  # a constant stride lets LLVM vectorise the de-interleaving
        x0[i] = np.float32(xs[3 * i])
        x1[i] = np.float32(xs[3 * i + 1])
        x2[i] = np.float32(xs[3 * i + 2])
    cand = rows[_CAND]
    hit = rows[_HIT]
    for i in range(nb):
        hit[i] = _ZERO
    for j in range(w.shape[0]):
        if _candidates(nb, j, rows, w, mu, var, p0, inv_c, lam2, ratio_min, tau2) == 0:
            continue  # the common case: the rank is only worked out for candidates
        for i in range(nb):
            if cand[i] > _ZERO and hit[i] == _ZERO and _is_background(w, var, j, p0 + i, inv_c,
                                                                       t64):
                hit[i] = _ONE
    m = mask[p0:p0 + nb]
    for i in range(nb):
        mi = m[i]
        m[i] = value if (hit[i] > _ZERO) & (mi == _FG) else mi


@njit(cache=True, error_model="numpy")
def _sparse_block(x, p0, nb, w, mu, var, mask, inv_c, t64, lam2, ratio_min, tau2, value):
    """Relabel the shadows of a block with a few foreground pixels: those alone, one by one."""
    diagonal = var.shape[1] > 1
    for p in range(p0, p0 + nb):
        if mask[p] != _FG:
            continue
        a0 = np.float32(x[3 * p])
        a1 = np.float32(x[3 * p + 1])
        a2 = np.float32(x[3 * p + 2])
        for j in range(w.shape[0]):
            if diagonal:
                ok = _diagonal(a0, a1, a2, w[j, p], mu[j, 0, p], mu[j, 1, p], mu[j, 2, p],
                               var[j, 0, p], var[j, 1, p], var[j, 2, p], inv_c, lam2, ratio_min,
                               tau2)
            else:
                ok = _spherical(a0, a1, a2, w[j, p], mu[j, 0, p], mu[j, 1, p], mu[j, 2, p],
                                var[j, 0, p], inv_c, lam2, ratio_min, tau2)
            if ok and _is_background(w, var, j, p, inv_c, t64):
                mask[p] = value
                break


@njit(cache=True, error_model="numpy")
def _shadow_block(x, p0, nb, w, mu, var, mask, rows, inv_c, t64, lam2, ratio_min, tau2, value):
    """Relabel the shadows among one block's foreground pixels.

    Most blocks with foreground hold a few noise pixels: testing the whole
    block would read every plane of it for those, so they are tested one by
    one.  A block mostly foreground is tested whole, vectorised.
    """
    m = mask[p0:p0 + nb]
    count = 0
    for i in range(nb):
        count += 1 if m[i] == _FG else 0
    if 4 * count >= nb:
        _dense_block(x, p0, nb, w, mu, var, mask, rows, inv_c, t64, lam2, ratio_min, tau2, value)
    else:
        _sparse_block(x, p0, nb, w, mu, var, mask, inv_c, t64, lam2, ratio_min, tau2, value)


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def mark_shadows(x, w, mu, var, mask, scratch, bg_ratio, lam2, ratio_min, tau2, value):
    """Relabel the foreground pixels of a colour frame that are cast shadows.

    Parameters
    ----------
    x : (N*3,) uint8
        The frame the mask was computed from, flat, channels interleaved.  A
        grey frame (C = 1) has no shadows (see the module docstring): the
        kernel returns at once.
    w, mu, var : float32 state planes (see :mod:`bgsub.kernels`), after the
        frame's update; read only.
    mask : (N,) uint8
        The mask from ``update_classify``; foreground pixels (255) that are
        shadows are set to ``value``, every other pixel is left alone.
    scratch : (n_chunks, 5, BLOCK) float32
        From :func:`allocate_scratch`; the pixels are shared out in as many
        chunks as it has rows.
    bg_ratio : float32
        Background ratio T.
    lam2 : float32
        Match threshold lambda squared (components that match x are skipped).
    ratio_min : float32
        The darkest shadow: it keeps at least this fraction of the light.
    tau2 : float32
        Colour distortion threshold tau_c squared.
    value : uint8
        The label of a shadow pixel.
    """
    nc = mu.shape[1]
    if nc != 3:
        return
    n = x.shape[0] // nc
    inv_c = _ONE / np.float32(nc)
    t64 = np.float64(bg_ratio)
    n_chunks = scratch.shape[0]
    span = _SPAN * BLOCK
    n_spans = (n + span - 1) // span
    for ch in prange(n_chunks):
        rows = scratch[ch]
        # every n_chunks-th span: the foreground gathers where the objects are,
        # and contiguous shares would leave one thread with most of it
        for s in range(ch, n_spans, n_chunks):
            for p0 in range(s * span, min(n, (s + 1) * span), BLOCK):
                nb = min(BLOCK, n - p0)
                if _may_hold_foreground(mask, p0, nb):
                    _shadow_block(x, p0, nb, w, mu, var, mask, rows, inv_c, t64, lam2,
                                  ratio_min, tau2, value)
