"""The frame kernel: classify one frame and learn from it, tile by tile.

The model
---------
With d_c = x_c - mu_c, a value matches a component when ``m2 < lambda^2``
with ``m2 = (1/C) sum_c d_c^2 / sigma_c^2`` (spherical: evaluated as ``(1/C)
||d||^2 < lambda^2 sigma^2``).  Each pixel's slots are stored in rank order
(see :mod:`bgsub.model.kernels.layout`): matching takes the first slot within
lambda sigma, the background test sums the weights of the slots before it,
and a miss replaces slot k-1.  After learning, a pixel's slots are
stable-sorted by the keys of their stored values again (a bubble sort with
fixed comparisons); since every weight but the matched one decays by the
same factor, that sort almost never moves anything.

The kernel
----------
One pass per frame.  The component and channel loops have compile-time
trip counts (the kernel is built per ``k``, channel count, variance count and
rho mode by :func:`frame_kernel`), so LLVM unrolls them and vectorises the
loops over the pixels of a tile.  A tile goes through three paths, each a
named helper inlined into the kernel:

* :func:`_classify_tile`: classification alone (``learning_rate=0``);
* :func:`_short_run`: most pixels match their top-ranked slot and stay in
  order; for runs of groups of 8 such pixels (one AVX2 vector) the short path
  updates slot 0 and decays the other weights, and reads and writes nothing
  of the other slots' means and variances;
* :func:`_general_run`: every other group: match, classify, learn with every
  slot in registers, re-rank.

Selective update and the flicker level: beside the state, each pixel keeps a
16-bit flicker word (bits 0-14 a level V in 0..32767, bit 15 its last own
classification), updated every learned frame by ``V += (32767 b - V) >> 5``
(b = 1 when the classification changed).  A background pixel learns at
alpha; a foreground one at alpha_fg (the masker derives it from
``absorb_seconds``) raised linearly towards alpha as V / 32767 nears the
reference level, and, when it belongs to a ghost released by
:mod:`bgsub.model.kernels.ghosts`, at max(ghost_rate, alpha) and is background.
The flicker level also widens the pixel's match threshold: lambda (1 + g (V /
32767 - V0)+), g = ``flicker_threshold``, V0 = ``flicker_threshold_from``, so
that a waving background matches the values it swings through while a still
object (V near 0) keeps lambda.

Indices are unsigned: Numba then emits no negative-index wraparound, which
would hide the addresses' linearity from the vectoriser.  Cast shadows are
marked per tile right after it (:mod:`bgsub.model.kernels.shadows`).

Every kernel works in float32, in the same operation order as the plain
reference implementation in ``tests/naive.py``; change both together.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit, types

from .build import compile_vectorized
from ...labels import FOREGROUND
from .layout import (BLOCK, FLICKER_ONE, ONE, Q_MAX, UBLOCK, W_ONE, ZERO, channel, dec_mu, dec_var,
                     dec_w, mu_code, mu_index, q16, rank_var, stored_key, var_code, var_index,
                     w_code, w_index)
from .shadows import shadow_tile
from .spin import back_to_python, first_chunk, next_chunk, out_of_python

__all__ = ["frame_kernel", "RHO_ALPHA_OVER_W", "RHO_GAUSSIAN", "BUSY_FOREGROUND", "BUSY_WORK"]

RHO_ALPHA_OVER_W = 0
RHO_GAUSSIAN = 1

_NO_KEY = np.float32(-1.0)
BUSY_FOREGROUND = np.uint8(1)  # the tile holds foreground
BUSY_WORK = np.uint8(2)  # and a texture candidate or a pixel for the neighbour match
_FG = np.uint8(FOREGROUND)
_BG = np.uint8(0)
_GROUP = 8  # pixels that take the short path together: one AVX2 vector
_SAFE = np.float32(1.0 - 2.0 ** -12)  # see the short path's re-ranking flag

# The helpers below compute every candidate first and only then choose: an
# expression inside a conditional is evaluated in a branch of its own, which
# LLVM vectorises as masked, lane-by-lane code; a choice between ready values
# is a single blend.  The unchanged value is re-derived through ``zero`` (0,
# but opaque to the compiler): seeing that a store writes back the value just
# loaded, LLVM would otherwise make the store conditional, and conditional
# stores are again lane by lane.


@njit(cache=True, error_model="numpy")
def _new_weight(q, jf, b, rr, one_minus_a, alpha, w_init):
    """A slot's weight after this frame, before renormalisation."""
    decayed = one_minus_a * dec_w(q)
    plus = decayed + alpha
    matched_w = plus if jf == b else decayed
    unmatched_w = w_init if jf == rr else decayed
    return matched_w if b >= ZERO else unmatched_w


@njit(cache=True, error_model="numpy")
def _choose(moved, new, old, hit, replaced):
    """moved if hit, else new if replaced, else old: integer arithmetic, no branch."""
    h = np.int32(hit)
    r = np.int32(replaced)
    return np.uint16(old + h * (moved - old) + r * (new - old))


@njit(cache=True, error_model="numpy")
def _opaque(q, zero):
    """q as int32, plus ``zero``: an int32 0 the compiler cannot see through."""
    return np.int32(q) + zero


@njit(cache=True, error_model="numpy")
def _pick(other, keep, swap, zero):
    """other if swap, else keep: integer arithmetic through an opaque keep (see _opaque)."""
    kept = _opaque(keep, zero)
    return np.uint16(kept + np.int32(swap) * (np.int32(other) - kept))


@njit(cache=True, error_model="numpy")
def _moved_var(v, target, rho, var_min, var_max, inv_step):
    """The code of a variance moved towards ``target`` (m2 or d_c^2) and clamped."""
    moved = min(max(v + rho * (target - v), var_min), var_max)
    return np.int32(var_code(moved, var_min, inv_step))


@njit(cache=True, error_model="numpy")
def _rerank(state, s, k, nc, nv, var_min, step, zero):
    """Stable-sort a pixel's slots by key, descending: a bubble sort in the state.

    Every comparison and exchange has a fixed position, so the pixel loop stays
    one vector loop; the slots were in order before the frame changed them,
    so most exchanges exchange nothing.
    """
    for sweep in range(k - 1):
        for j in range(k - 1):  # a constant trip count, so that LLVM unrolls both loops
            if j >= k - 1 - sweep:
                continue  # already in place after this many sweeps
            swap = stored_key(state, s, j + 1, k, nc, nv, var_min, step) > stored_key(
                state, s, j, k, nc, nv, var_min, step)
            a = state[w_index(s, j)]
            b = state[w_index(s, j + 1)]
            state[w_index(s, j)] = _pick(b, a, swap, zero)
            state[w_index(s, j + 1)] = _pick(a, b, swap, zero)
            for c in range(nc):
                a = state[mu_index(s, j, c, k, nc)]
                b = state[mu_index(s, j + 1, c, k, nc)]
                state[mu_index(s, j, c, k, nc)] = _pick(b, a, swap, zero)
                state[mu_index(s, j + 1, c, k, nc)] = _pick(a, b, swap, zero)
            for c in range(nv):
                a = state[var_index(s, j, c, k, nc, nv)]
                b = state[var_index(s, j + 1, c, k, nc, nv)]
                state[var_index(s, j, c, k, nc, nv)] = _pick(b, a, swap, zero)
                state[var_index(s, j + 1, c, k, nc, nv)] = _pick(a, b, swap, zero)


@njit(cache=True, error_model="numpy")
def _rho(rho_mode, alpha, w_new, m2, var, v0, v1, v2, nc, nv):
    """The matched component's learning rate: alpha / w (w its new weight), or alpha eta.

    The density eta(x | mu, Sigma) is computed in float64 with libm's pow and
    exp as the reference calls them; ``m2`` is the mean over channels of the
    squared Mahalanobis terms, so the exponent -1/2 (x-mu)' Sigma^-1 (x-mu)
    is -(C/2) m2 (spherical: m2 is the plain squared distance, over var).
    """
    if rho_mode == RHO_ALPHA_OVER_W:
        return alpha / w_new
    half_c = nc / 2.0
    if nv == 1:
        vb = np.float64(var)
        eta = (2.0 * math.pi * vb) ** (-half_c) * math.exp(-half_c * np.float64(m2) / vb)
    else:
        det = 1.0
        for c in range(nc):
            det *= 2.0 * math.pi * np.float64(channel(c, v0, v1, v2))
        eta = det ** -0.5 * math.exp(-half_c * np.float64(m2))
    return np.float32(min(np.float64(alpha) * eta, 1.0))


@njit(cache=True, error_model="numpy")
def _top(state, s, x0, x1, x2, k, nc, nv, inv_c, lam2, var_min, step):
    """Whether the pixel matches slot 0 (the top-ranked), with m2, sigma^2 and the means."""
    w0 = dec_w(state[w_index(s, 0)])
    v = rank_var(state, s, 0, k, nc, nv, var_min, step)
    m0 = dec_mu(state[mu_index(s, 0, 0, k, nc)])
    m1 = dec_mu(state[mu_index(s, 0, 1 if nc > 1 else 0, k, nc)])
    m2_ = dec_mu(state[mu_index(s, 0, 2 if nc > 2 else 0, k, nc)])
    d2 = ZERO
    for c in range(nc):
        a = channel(c, x0, x1, x2) - channel(c, m0, m1, m2_)
        if nv == 1:
            d2 += a * a
        else:
            d2 += a * a / dec_var(state[var_index(s, 0, c, k, nc, nv)], var_min, step)
    dd = d2 * inv_c
    limit = lam2 * v if nv == 1 else lam2
    return (w0 > ZERO) & (dd < limit), w0, dd, v, m0, m1, m2_


@njit(cache=True, error_model="numpy")
def _moved(x0, x1, x2, m0, m1, m2_, v, vb0, vb1, vb2, m2, rho, nv, var_min, var_max, inv_step):
    """The codes of a matched component's mean and variances after it learned from x.

    Spherical (nv 1): the variance v follows m2; diagonal: each channel's
    variance vb_c follows its own squared distance.
    """
    a0 = x0 - m0
    a1 = x1 - m1
    a2 = x2 - m2_
    mv0 = np.int32(mu_code(m0 + rho * a0))
    mv1 = np.int32(mu_code(m1 + rho * a1))
    mv2 = np.int32(mu_code(m2_ + rho * a2))
    if nv == 1:
        vv0 = vv1 = vv2 = _moved_var(v, m2, rho, var_min, var_max, inv_step)
    else:
        vv0 = _moved_var(vb0, a0 * a0, rho, var_min, var_max, inv_step)
        vv1 = _moved_var(vb1, a1 * a1, rho, var_min, var_max, inv_step)
        vv2 = _moved_var(vb2, a2 * a2, rho, var_min, var_max, inv_step)
    return mv0, mv1, mv2, vv0, vv1, vv2


@njit(cache=True, error_model="numpy")
def _top_update(state, s, x0, x1, x2, k, nc, nv, inv_c, lam2, alpha, one_minus_a, var_min,
                var_max, step, inv_step, rho_mode):
    """Slot 0 matched: its new weight code, mean codes and variance codes.

    The same operations as the general path gives a pixel matched by slot 0.
    """
    _, w0, dd, v, m0, m1, m2_ = _top(state, s, x0, x1, x2, k, nc, nv, inv_c, lam2, var_min,
                                     step)
    w_new = one_minus_a * w0 + alpha
    vb0 = dec_var(state[var_index(s, 0, 0, k, nc, nv)], var_min, step)
    vb1 = dec_var(state[var_index(s, 0, 1 if nv > 1 else 0, k, nc, nv)], var_min, step)
    vb2 = dec_var(state[var_index(s, 0, 2 if nv > 2 else 0, k, nc, nv)], var_min, step)
    rho = _rho(rho_mode, alpha, w_new, dd, v, vb0, vb1, vb2, nc, nv)
    mv0, mv1, mv2, vv0, vv1, vv2 = _moved(x0, x1, x2, m0, m1, m2_, v, vb0, vb1, vb2, dd, rho,
                                          nv, var_min, var_max, inv_step)
    return np.int32(w_code(w_new)), mv0, mv1, mv2, vv0, vv1, vv2


@njit(cache=True, error_model="numpy")
def _code_rank_var(c0, c1, c2, nc, nv, var_min, step):
    """sigma^2 for ranking from variance codes, as rank_var computes it from the state."""
    if nv == 1:
        return dec_var(c0, var_min, step)
    v = ZERO
    for c in range(nc):
        v += dec_var(channel(c, c0, c1, c2), var_min, step)
    return v * (ONE / np.float32(nc))


@njit(cache=True, error_model="numpy")
def _flags(mask, first, start, stop):
    """The OR of a tile's mask over lanes start..stop-1 (flags before the labels)."""
    flags = np.uint8(0)
    for ii in range(start, stop):
        flags |= mask[first + np.uint64(ii)]
    return flags


@njit(cache=True, error_model="numpy")
def _run_end(mask, first, g, nb, flagged):
    """Where the run of groups from lane g ends: groups with a flag (or none) in a row."""
    e = g
    while e < nb and (_flags(mask, first, e, min(nb, e + _GROUP)) != 0) == flagged:
        e += _GROUP
    return min(e, nb)


@njit(cache=True, error_model="numpy")
def _match(state, s, x0, x1, x2, k, nc, nv, inv_c, lam2, var_min, step):
    """The first slot (in rank order) within lambda sigma, and the weight ranked above it.

    Returns the slot as a float (-1: none), m2 and sigma^2 of the match, and
    the sum of the weight codes ranked above it.  The stored integer codes
    (at most 5 * 65535 < 2**24) sum exactly in float32.
    """
    best = _NO_KEY
    best_d2 = ZERO
    best_var = ONE
    above = ZERO
    cumulative = ZERO
    for j in range(k):
        q = state[w_index(s, j)]
        v = rank_var(state, s, j, k, nc, nv, var_min, step)
        d2 = ZERO
        for c in range(nc):
            a = channel(c, x0, x1, x2) - dec_mu(state[mu_index(s, j, c, k, nc)])
            if nv == 1:
                d2 += a * a
            else:
                d2 += a * a / dec_var(state[var_index(s, j, c, k, nc, nv)], var_min, step)
        dd = d2 * inv_c
        limit = lam2 * v if nv == 1 else lam2
        hit = (dec_w(q) > ZERO) & (dd < limit) & (best < ZERO)
        best = np.float32(j) if hit else best
        best_d2 = dd if hit else best_d2
        best_var = v if hit else best_var
        above = cumulative if hit else above
        cumulative += np.float32(q)
    return best, best_d2, best_var, above


# -- flicker and selective update --------------------------------------------------

_FLICKER_ONE = np.int32(FLICKER_ONE)
_INV_FLICKER = np.float32(1.0 / FLICKER_ONE)


@njit(cache=True, error_model="numpy")
def _flicker_code(code, own):
    """A pixel's flicker word after this frame's own classification ``own`` (1 foreground).

    Bits 0-14 hold the flicker level V in 0..32767, bit 15 the last frame's
    classification: ``V += (32767 b - V) >> 5`` (an arithmetic shift: a
    running mean of gain 1/32), b = 1 when the classification changed.
    """
    c = np.int32(code)
    prev = c >> 15
    v = c & _FLICKER_ONE
    v = v + ((((own ^ prev) * _FLICKER_ONE) - v) >> 5)
    return np.uint16(v | (own << 15))


@njit(cache=True, error_model="numpy")
def _pixel_rate(fg, released, code, alpha_bg, alpha_fg, inv_ref, ghost_rate):
    """The rate a pixel learns at: alpha_bg for background; for foreground alpha_fg,
    raised linearly with the flicker level towards alpha_bg (reached at the
    reference level, ``inv_ref`` its inverse); a released ghost's
    max(ghost_rate, alpha_bg)."""
    level = np.float32(np.int32(code) & _FLICKER_ONE) * _INV_FLICKER
    share = min(level * inv_ref, ONE)
    rate_fg = alpha_fg + share * (alpha_bg - alpha_fg)
    rate_fg = max(ghost_rate, alpha_bg) if released else rate_fg
    return rate_fg if fg else alpha_bg


@njit(cache=True, error_model="numpy")
def _pixel_lam2(code, lam2, gain, level_from):
    """lambda^2 of a pixel whose flicker word is ``code``: (lambda (1 + gain (V - V0)+))^2.

    V is the flicker level in [0, 1], V0 ``level_from``; a gain of 0 leaves
    lambda.  The level is the last frame's: the word is updated after the
    pixel is classified.
    """
    level = np.float32(np.int32(code) & _FLICKER_ONE) * _INV_FLICKER
    s = ONE + gain * max(level - level_from, ZERO)
    return lam2 * (s * s)


# -- the three paths --------------------------------------------------------------

@njit(cache=True, error_model="numpy")
def _offsets(nc):
    """A pixel's stride in the frame and the offsets of its channels 1 and 2 (0 for grey)."""
    return np.uint64(nc), np.uint64(1 if nc > 1 else 0), np.uint64(2 if nc > 2 else 0)


@njit(cache=True, error_model="numpy")
def _classify_tile(x, state, mask, aux, first, base, nb, k, nc, nv, inv_c, lam2, lam_gain,
                   lam_from, var_min, step, t_q):
    """Classification alone: foreground when no slot within lambda sigma is background
    (lambda raised by the pixel's flicker level, see :func:`_pixel_lam2`)."""
    u_nc, c1, c2 = _offsets(nc)
    for ii in range(nb):
        p = first + np.uint64(ii)
        px = p * u_nc
        best, _, _, above = _match(
            state, base + np.uint64(ii), np.float32(x[px]), np.float32(x[px + c1]),
            np.float32(x[px + c2]), k, nc, nv, inv_c, _pixel_lam2(aux[p], lam2, lam_gain, lam_from),
            var_min, step)
        mask[p] = _FG if (best < ZERO) | (above > t_q) else _BG


@njit(cache=True, error_model="numpy")
def _flag_general(x, state, mask, first, base, nb, k, nc, nv, inv_c, lam2, var_min, step):
    """Flag in the mask (1) each pixel that does not match its slot 0: the general path's."""
    u_nc, c1, c2 = _offsets(nc)
    for ii in range(nb):
        p = first + np.uint64(ii)
        px = p * u_nc
        mask[p] = np.uint8(1) - np.uint8(_top(
            state, base + np.uint64(ii), np.float32(x[px]), np.float32(x[px + c1]),
            np.float32(x[px + c2]), k, nc, nv, inv_c, lam2, var_min, step)[0])


@njit(cache=True, error_model="numpy")
def _short_run(x, state, mask, aux, first, base, g, e, k, nc, nv, inv_c, lam2, alpha,
               one_minus_a, var_min, var_max, step, inv_step, rho_mode, zero):
    """Lanes g..e-1, every one matching its slot 0: update slot 0, decay the other weights.

    Slot 0 stays on top unless its variance grew more than its weight, or
    truncating the decayed weights swapped two others: such pixels are flagged
    and re-ranked.  Every lane's mask ends 0: no weight ranks above slot 0, and
    each lane's flicker level follows a background classification.
    """
    u_nc, c1, c2 = _offsets(nc)
    for ii in range(g, e):
        s = base + np.uint64(ii)
        p = first + np.uint64(ii)
        px = p * u_nc
        wq, mv0, mv1, mv2, vv0, vv1, vv2 = _top_update(
            state, s, np.float32(x[px]), np.float32(x[px + c1]), np.float32(x[px + c2]), k,
            nc, nv, inv_c, lam2, alpha, one_minus_a, var_min, var_max, step, inv_step,
            rho_mode)
        for j in range(1, k):
            state[w_index(s, j)] = q16(w_code(one_minus_a * dec_w(state[w_index(s, j)])))
        state[w_index(s, 0)] = np.uint16(wq)
        for c in range(nc):
            state[mu_index(s, 0, c, k, nc)] = np.uint16(channel(c, mv0, mv1, mv2))
        for c in range(nv):
            state[var_index(s, 0, c, k, nc, nv)] = np.uint16(channel(c, vv0, vv1, vv2))
        # The flag compares w_j^2 sigma_j-1^2 with w_j-1^2 sigma_j^2, without
        # divisions, and with a margin far above their rounding: it may flag a
        # pixel the exact keys keep in order (the re-ranking then moves
        # nothing), never the other way round
        w = dec_w(np.int32(wq))
        w2_prev = w * w
        v_prev = _code_rank_var(vv0, vv1, vv2, nc, nv, var_min, step)
        moved = np.uint8(0)
        for j in range(1, k):
            wj = dec_w(state[w_index(s, j)])
            w2 = wj * wj
            v = rank_var(state, s, j, k, nc, nv, var_min, step)
            moved |= np.uint8(w2 * v_prev > w2_prev * v * _SAFE)
            w2_prev = w2
            v_prev = v
        mask[p] = moved
    # the flicker words: background now, so a word of 0 (level 0, background
    # last frame: most of a steady scene) stays 0, and a run of such words is
    # only read
    words = np.uint16(0)
    for ii in range(g, e):
        words |= aux[first + np.uint64(ii)]
    if words != 0:
        for ii in range(g, e):
            p = first + np.uint64(ii)
            aux[p] = _flicker_code(aux[p], np.int32(0))
    if _flags(mask, first, g, e) != 0:
        for ii in range(g, e):
            if mask[first + np.uint64(ii)] != 0:
                _rerank(state, base + np.uint64(ii), k, nc, nv, var_min, step, zero)
    for ii in range(g, e):
        mask[first + np.uint64(ii)] = _BG


@njit(cache=True, error_model="numpy")
def _general_run(x, state, mask, aux, release, first, base, g, e, k, nc, nv, inv_c, lam2,
                 lam_gain, lam_from, alpha_bg, alpha_fg, inv_ref, ghost_rate, w_init, q_init, var_min, var_max,
                 step, inv_step, t_q, rho_mode, zero):
    """Lanes g..e-1 in full: match, classify, learn with every slot, re-rank.

    The pixel's rate is chosen by its classification (selective update, see
    :func:`_pixel_rate`); a pixel of a released ghost is background.  The
    match threshold grows with the flicker level (:func:`_pixel_lam2`); the
    short path's pixels match slot 0 within lambda, so within any larger one
    too, and take the same classification and learning either way.
    """
    u_nc, c1, c2 = _offsets(nc)
    last = np.float32(k - 1)  # the least probable slot, replaced when nothing matches
    for ii in range(g, e):
        s = base + np.uint64(ii)
        p = first + np.uint64(ii)
        # the pixel's channels, loaded once: a load after a store to the state
        # is repeated, LLVM not knowing the frame is another array
        px = p * u_nc
        x0 = np.float32(x[px])
        x1 = np.float32(x[px + c1])
        x2 = np.float32(x[px + c2])
        best, best_d2, best_var, above = _match(state, s, x0, x1, x2, k, nc, nv, inv_c,
                                                _pixel_lam2(aux[p], lam2, lam_gain, lam_from),
                                                var_min, step)
        fg = (best < ZERO) | (above > t_q)
        code = _flicker_code(aux[p], np.int32(fg))
        aux[p] = code
        released = release[p] != 0
        alpha = _pixel_rate(fg, released, code, alpha_bg, alpha_fg, inv_ref, ghost_rate)
        one_minus_a = ONE - alpha

        # the weights: decay every weight, add alpha to the match; an unmatched
        # pixel's least probable slot gets w_init, and its weights are
        # renormalised
        matched = best >= ZERO
        total = ZERO
        w_best = ZERO
        for j in range(k):
            jf = np.float32(j)
            new = _new_weight(state[w_index(s, j)], jf, best, last, one_minus_a, alpha, w_init)
            total += new
            w_best += new if jf == best else ZERO  # the match's new weight
        scale = ONE if matched else ONE / total

        # the matched component's mean and variances (any, when none matched)
        mb0 = mb1 = mb2 = ZERO
        vb0 = vb1 = vb2 = ZERO
        for j in range(k):
            hit_j = np.float32(j) == best
            for c in range(nc):
                m = dec_mu(state[mu_index(s, j, c, k, nc)])
                mb0 = m if hit_j & (c == 0) else mb0
                mb1 = m if hit_j & (c == 1) else mb1
                mb2 = m if hit_j & (c == 2) else mb2
                v = dec_var(state[var_index(s, j, c, k, nc, nv)], var_min, step)
                vb0 = v if hit_j & (c == 0) else vb0
                vb1 = v if hit_j & (c == 1) else vb1
                vb2 = v if hit_j & (c == 2) else vb2
        rho = _rho(rho_mode, alpha, w_best if matched else ONE, best_d2, best_var, vb0, vb1,
                   vb2, nc, nv)

        # the match's new mean and variance, computed once (a pixel has one
        # match), then blended into every slot with the replacement's values
        mv0, mv1, mv2, vv0, vv1, vv2 = _moved(x0, x1, x2, mb0, mb1, mb2, best_var, vb0, vb1,
                                              vb2, best_d2, rho, nv, var_min, var_max,
                                              inv_step)
        nx0 = np.int32(mu_code(x0))
        nx1 = np.int32(mu_code(x1))
        nx2 = np.int32(mu_code(x2))
        for j in range(k):
            jf = np.float32(j)
            hit_j = jf == best
            replaced = (best < ZERO) & (jf == last)
            new = _new_weight(state[w_index(s, j)], jf, best, last, one_minus_a, alpha, w_init)
            state[w_index(s, j)] = q16(w_code(new * scale))
            for c in range(nc):
                at = mu_index(s, j, c, k, nc)
                state[at] = _choose(channel(c, mv0, mv1, mv2), channel(c, nx0, nx1, nx2),
                                    _opaque(state[at], zero), hit_j, replaced)
            for c in range(nv):
                at = var_index(s, j, c, k, nc, nv)
                state[at] = _choose(channel(c, vv0, vv1, vv2), q_init,
                                    _opaque(state[at], zero), hit_j, replaced)
        _rerank(state, s, k, nc, nv, var_min, step, zero)
        # stored last: the state's values are not reloaded after it
        mask[p] = _FG if fg & (release[p] == 0) else _BG


# -- building -------------------------------------------------------------------

_SIGNATURE = ((types.Array(types.uint8, 1, "C"), types.Array(types.uint16, 1, "C"),
               types.Array(types.uint8, 1, "C"), types.Array(types.uint16, 1, "C"),
               types.Array(types.uint8, 1, "C"), types.Array(types.uint8, 1, "C"), types.int64)
              + (types.float32,) * 14 + (types.uint8,) * 2 + (types.int64,)
              + (types.Array(types.int64, 1, "C"),) + (types.int64,) * 3)
SIGNATURE = _SIGNATURE  # the frame kernel's argument types


def frame_kernel(k: int, channels: int, variances: int, learn: bool, rho_mode: int,
                 shadows: bool = False, texture: bool = False, compiled: bool = True):
    """The kernel that classifies one frame and (if ``learn``) learns from it.

    Built once per model shape: ``k``, the channel and variance counts, the
    mode and whether it marks shadows are frozen into it as compile-time
    constants (and, being plain values, let Numba's disk cache find it again
    in the next process).  The kernel is called as ``kernel(x, state, mask,
    aux, release, busy, n, alpha, alpha_fg, inv_ref, ghost_rate, lam_gain,
    lam_from, lam2, bg_ratio, w_init, var_init, var_min, var_max, ratio_min, tau2, value,
    candidate, gate, ctl, threads, t_start, t_stop)`` without the GIL; it is
    a scheduled kernel of :class:`bgsub.model.tiles.TileRunner`: threads share a
    frame out by tiles, each taking its chunks itself.  With ``shadows``
    (colour only), each tile's cast shadows are marked (see
    :func:`bgsub.model.kernels.shadows.mark_shadows`) right after the tile is
    classified and learned from, while its state is in the cache; with
    ``texture`` too, so are the candidates for the neighbour pass's texture
    test.  Building is thread-safe (:mod:`bgsub.model.kernels.build`).  With
    ``compiled=False``, the kernel is returned before compiling: compile it
    for :data:`SIGNATURE` with :func:`bgsub.model.kernels.build.prepare` (or
    :func:`~bgsub.model.kernels.build.compile_vectorized`), never by calling it.

    Parameters
    ----------
    x : (N*C,) uint8
        The frame, flat: pixels in row-major order, channels interleaved.
    state : uint16
        The flat state (see :mod:`bgsub.model.kernels.layout`), updated in place.
    mask : (N,) uint8
        Output: 255 foreground, 0 background (classified before learning).
    aux : (N,) uint16
        The flicker words, updated in place when learning.
    release : (N,) uint8
        1 for the pixels of released ghosts (see :mod:`bgsub.model.kernels.ghosts`).
    busy : (tiles,) uint8
        Output: per tile, BUSY_FOREGROUND when a pixel of it is foreground,
        plus BUSY_WORK when one is a texture candidate or flickers at
        ``gate`` or more: what the neighbour pass needs to visit.
    n : int
        Pixels in the frame.
    alpha, alpha_fg : float32
        Learning rates of this frame, for background and foreground
        (ignored when not ``learn``).
    inv_ref, ghost_rate : float32
        1 / ``flicker_reference`` and a released ghost's rate.
    lam_gain, lam_from : float32
        ``flicker_threshold`` and ``flicker_threshold_from``: lambda grows by
        the gain times the flicker level's excess over ``lam_from``.
    lam2, bg_ratio, w_init, var_init, var_min, var_max : float32
        lambda squared, T, the replacement weight and variance, and the
        variance clamp (which also sets the variances' encoding).
    ratio_min, tau2 : float32
        The darkest shadow's brightness ratio, and the colour-distortion
        threshold squared (ignored without ``shadows``).
    value, candidate : uint8
        The mask values of a shadow and of a texture candidate (ignored
        without ``shadows`` and ``texture``).
    gate : int
        The flicker level (0..32767) from which the neighbour match applies
        (above 32767: it does not).
    ctl, threads : (8,) int64, int
        With ``threads`` > 1, the runner's counters, from which the kernel
        takes chunks of tiles ``0 .. t_stop - 1`` (``t_start`` is then the
        job's base, see :func:`bgsub.model.kernels.spin.take_chunk`); with 1, it
        processes ``t_start .. t_stop - 1`` and leaves ``ctl`` alone.
    t_start, t_stop : int
        The tiles to process (see ``ctl``).
    """
    # grey frames have no shadows: one kernel for both settings
    colour = bool(shadows) and int(channels) == 3
    kernel = _build(int(k), int(channels), int(variances), bool(learn), int(rho_mode), colour,
                    colour and bool(texture))
    if compiled:
        compile_vectorized(kernel, SIGNATURE)  # from Numba's disk cache when it is there
    return kernel


@functools.lru_cache(maxsize=None)
def _build(k: int, nc: int, nv: int, learn: bool, rho_mode: int, shadows: bool,
           texture: bool):
    planes = k * (1 + nc + nv)
    inv_c = ONE / np.float32(nc)
    u_tile = np.uint64(planes * BLOCK)

    @njit(cache=True, nogil=True, error_model="numpy")
    def kernel(x, state, mask, aux, release, busy, n, alpha, alpha_fg, inv_ref, ghost_rate,
               lam_gain, lam_from, lam2, bg_ratio, w_init, var_init, var_min, var_max, ratio_min, tau2, value,
               candidate, gate, ctl, threads, t_start, t_stop):
        out_of_python(ctl, threads)  # (see bgsub.model.kernels.spin.enter_python)
        step = (var_max - var_min) / Q_MAX
        inv_step = ONE / step if step > ZERO else ZERO
        t_q = bg_ratio * W_ONE
        q_init = np.int32(var_code(var_init, var_min, inv_step))
        one_minus_a = ONE - alpha
        # 0 for any finite alpha, but not known to LLVM to be 0 (see _opaque)
        zero = np.int32(alpha - alpha)
        # with threads > 1, the kernel takes its chunks of tiles 0..t_stop-1
        # itself (see bgsub.model.tiles; t_start is then the job's base), and
        # counts the tiles it finished
        c_start, c_stop = first_chunk(ctl, t_start, t_stop, threads)
        while c_start < c_stop:
            for t in range(c_start, c_stop):
                nb = min(BLOCK, n - t * BLOCK)
                base = np.uint64(t) * u_tile
                first = np.uint64(t) * UBLOCK
                if not learn:
                    _classify_tile(x, state, mask, aux, first, base, nb, k, nc, nv, inv_c, lam2,
                                   lam_gain, lam_from, var_min, step, t_q)
                else:
                    # the short path goes by groups of _GROUP pixels (one vector),
                    # so that its vector loops stay full; a group with any other
                    # pixel takes the general path.  The mask holds the per-pixel
                    # flags until it gets the labels.
                    _flag_general(x, state, mask, first, base, nb, k, nc, nv, inv_c, lam2, var_min,
                                  step)
                    g = np.int64(0)  # not the constant 0: helpers compile for its first type
                    while g < nb:
                        # a run of short-path groups, then a run of general ones:
                        # one vector loop per run rather than per group
                        e = _run_end(mask, first, g, nb, False)
                        _short_run(x, state, mask, aux, first, base, g, e, k, nc, nv, inv_c,
                                   lam2, alpha, one_minus_a, var_min, var_max, step, inv_step,
                                   rho_mode, zero)
                        g = e
                        e = _run_end(mask, first, g, nb, True)
                        _general_run(x, state, mask, aux, release, first, base, g, e, k, nc, nv,
                                     inv_c, lam2, lam_gain, lam_from, alpha, alpha_fg, inv_ref, ghost_rate, w_init,
                                     q_init, var_min, var_max, step, inv_step, t_q, rho_mode, zero)
                        g = e
                # whether the tile holds foreground: an OR over its mask, in
                # cache (an OR carried through the general path's loop would
                # keep it from vectorising)
                seen = _flags(mask, first, 0, nb)
                flags = np.uint8(0)
                if seen != 0:
                    flags = BUSY_FOREGROUND
                    if shadows and shadow_tile(x, state, mask, t, nb, k, nc, nv, var_min, step,
                                               t_q, lam2, ratio_min, tau2, value, candidate,
                                               texture):
                        flags |= BUSY_WORK
                    # foreground that flickers enough for the neighbour match
                    flicker = np.uint8(0)
                    for ii in range(nb):
                        at = first + np.uint64(ii)
                        flicker |= np.uint8(mask[at] != 0) & np.uint8(
                            (np.int32(aux[at]) & _FLICKER_ONE) >= gate)
                    if flicker != 0:
                        flags |= BUSY_WORK
                busy[t] = flags
            c_start, c_stop = next_chunk(ctl, t_start, t_stop, threads, c_start, c_stop)
        back_to_python(ctl, threads)

    return kernel
