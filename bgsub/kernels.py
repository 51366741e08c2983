"""Numba kernels of the per-pixel Stauffer–Grimson mixture.

State layout
------------
The whole model is one flat uint16 array, in tiles of ``BLOCK`` pixels:
pixel ``p`` lives in tile ``p // BLOCK`` at lane ``p % BLOCK``, and a tile
holds ``P`` planes of ``BLOCK`` values each, one after the other::

    plane j                     weight of component j          (j < k)
    plane k + j*C + c           mean of component j, channel c
    plane k + k*C + j*V + v     variance of component j (V = 1 spherical,
                                V = C diagonal: one per channel)

so ``state[(t * P + plane) * BLOCK + lane]``.  Values are 16-bit fixed point:

* weight ``w = q / 65535``, truncated when stored (a weight that stops
  matching decays all the way to 0, an empty slot, instead of sticking where
  one step rounds back to itself);
* mean ``mu = q / 256`` (1/256 of a grey level), rounded to nearest;
* variance ``var = var_min + q * step``, ``step = (var_max - var_min) /
  65535``, rounded to nearest.

Why this layout: a frame reads and writes the whole state once, and at large
sizes that traffic bounds the frame rate, so 16 bits halve it; one array
walked front to back is a single stream for the prefetcher instead of 15; and
every plane of a tile sits a compile-time constant distance from the others,
which lets LLVM vectorise the per-pixel loop without runtime alias checks
(with separate plane arrays it needed more checks than it allows, and gave
up).  Every update is computed in float32 on decoded values and encoded
again when stored.

The model
---------
With d_c = x_c - mu_c, a value matches a component when ``m2 < lambda^2``
with ``m2 = (1/C) sum_c d_c^2 / sigma_c^2`` (spherical: evaluated as ``(1/C)
||d||^2 < lambda^2 sigma^2``).  A component's rank key is ``w**2 / s2`` (s2
its variance, or the mean of its channel variances), and each pixel's slots
are *stored in rank order*, key descending: slot 0 is the top-ranked
component, slot k-1 the least probable.  Matching takes the first slot
within lambda sigma, the background test sums the weights of the slots
before it, and a miss replaces slot k-1.  After learning, a pixel's slots
are stable-sorted by the keys of their stored values again (a bubble sort
with fixed comparisons); since every weight but the matched one decays by
the same factor, that sort almost never moves anything.  A slot with weight
0 is empty: it never matches, and sorts last.

The kernel
----------
One pass per frame.  The component and channel loops have compile-time
trip counts (the kernel is built per ``k``, channel count, variance count and
rho mode by :func:`frame_kernel`), so LLVM unrolls them and vectorises the
loops over the pixels of a tile.  Most pixels match their top-ranked slot and
stay in order; for groups of 8 such pixels (one AVX2 vector) a short path
updates slot 0 and decays the other weights, and reads and writes nothing of
the other slots' means and variances.  Every other group takes the general
path: match, classify, learn with every slot in registers, re-rank.  Indices
are unsigned: Numba then emits no negative-index wraparound, which would hide
the addresses' linearity from the vectoriser.

Every kernel works in float32, in the same operation order as the plain
reference implementation in ``tests/naive.py``; change both together.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import tempfile

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types

from .shadows import darker_diagonal, darker_spherical

__all__ = ["frame_kernel", "state_size", "plane_count", "encode_state", "decode_state",
           "background_means", "mean_log_likelihood", "foreground_probability",
           "RHO_ALPHA_OVER_W", "RHO_GAUSSIAN", "BLOCK", "W_ONE", "MU_ONE"]

RHO_ALPHA_OVER_W = 0
RHO_GAUSSIAN = 1

# Pixels per tile.  Kernel time a pixel, single-threaded, 320x240 / 1920x1080:
# 256: 5.3 / 6.5 ns, 512: 5.1 / 5.5, 1024: 5.0 / 5.3, 2048: 6.0 / 5.8, 4096: 5.9 / 5.6.
# Longer runs per plane suit the prefetcher; from 2048 on, planes 4 KiB apart
# probably alias in the L1 cache.
BLOCK = 1024
W_ONE = np.float32(65535.0)  # the stored weight of 1.0
MU_ONE = np.float32(256.0)  # the stored step of one grey level
_W_INV = np.float32(1.0) / W_ONE
_MU_INV = np.float32(1.0) / MU_ONE
_Q_MAX = np.float32(65535.0)
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_NO_KEY = np.float32(-1.0)
_FG = np.uint8(255)
_BG = np.uint8(0)
_UB = np.uint64(BLOCK)
_GROUP = 8  # pixels that take the short path together: one AVX2 vector
_SAFE = np.float32(1.0 - 2.0 ** -12)  # see the short path's re-ranking flag


def plane_count(k: int, channels: int, variances: int) -> int:
    """Planes per tile: k weights, k*C means, k*V variances."""
    return k * (1 + channels + variances)


def state_size(n: int, k: int, channels: int, variances: int) -> int:
    """Length of the flat uint16 state for n pixels (whole tiles)."""
    return -(-n // BLOCK) * plane_count(k, channels, variances) * BLOCK


# -- encoding -----------------------------------------------------------------

@njit(inline="always", cache=True, error_model="numpy")
def _dec_w(q):
    return np.float32(q) * _W_INV


@njit(inline="always", cache=True, error_model="numpy")
def _dec_mu(q):
    return np.float32(q) * _MU_INV


@njit(inline="always", cache=True, error_model="numpy")
def _dec_var(q, var_min, step):
    return var_min + np.float32(q) * step


@njit(inline="always", cache=True, error_model="numpy")
def _q16(v):
    """Store a non-negative float already scaled to [0, 65535] (truncating), via int32.

    Going through int32 keeps every vector lane 32 bits wide.
    """
    return np.uint16(np.int32(v))


@njit(inline="always", cache=True, error_model="numpy")
def _w_code(w):
    return min(w * W_ONE, _Q_MAX)


@njit(inline="always", cache=True, error_model="numpy")
def _mu_code(m):
    return m * MU_ONE + _HALF


@njit(inline="always", cache=True, error_model="numpy")
def _var_code(v, var_min, inv_step):
    return min((v - var_min) * inv_step + _HALF, _Q_MAX)


def _var_step(var_min: float, var_max: float) -> tuple[np.float32, np.float32]:
    step = (np.float32(var_max) - np.float32(var_min)) / _Q_MAX
    return np.float32(step), (_ONE / step if step > 0 else _ZERO)


@njit(inline="always", cache=True, error_model="numpy")
def _index(p, planes, plane):
    """Where a plane's value for pixel p sits in the flat state (see the module docstring)."""
    return ((p // BLOCK) * planes + plane) * BLOCK + p % BLOCK


@njit(cache=True, error_model="numpy")
def _encode(w, mu, var, out, var_min, var_max, inv_step):
    k, nc, n = mu.shape
    nv = var.shape[1]
    planes = k * (1 + nc + nv)
    for p in range(n):
        for j in range(k):
            wj = min(max(np.float32(w[j, p]), _ZERO), _ONE)
            out[_index(p, planes, j)] = _q16(_w_code(wj))
            for c in range(nc):
                m = min(max(np.float32(mu[j, c, p]), _ZERO), np.float32(255.0))
                out[_index(p, planes, k + j * nc + c)] = _q16(_mu_code(m))
            for c in range(nv):
                v = min(max(np.float32(var[j, c, p]), var_min), var_max)
                out[_index(p, planes, k + k * nc + j * nv + c)] = _q16(
                    _var_code(v, var_min, inv_step))


@njit(cache=True, error_model="numpy")
def _decode(state, w, mu, var, var_min, step):
    k, nc, n = mu.shape
    nv = var.shape[1]
    planes = k * (1 + nc + nv)
    for p in range(n):
        for j in range(k):
            w[j, p] = _dec_w(state[_index(p, planes, j)])
            for c in range(nc):
                mu[j, c, p] = _dec_mu(state[_index(p, planes, k + j * nc + c)])
            for c in range(nv):
                var[j, c, p] = _dec_var(state[_index(p, planes, k + k * nc + j * nv + c)],
                                        var_min, step)


def encode_state(w, mu, var, var_min: float, var_max: float) -> np.ndarray:
    """Encode weights (k, N), means (k, C, N) and variances (k, V, N) into a flat state.

    Weights are clipped to [0, 1] and truncated to multiples of 1/65535; means
    clipped to [0, 255] and rounded to 1/256; variances clipped to [var_min,
    var_max] and rounded to ``(var_max - var_min) / 65535``.  Each pixel's
    components are stored in rank order (see the module docstring), whatever
    order they come in.  Lanes past N in the last tile are 0 (empty slots).
    """
    w, mu, var = (np.ascontiguousarray(a, np.float32) for a in (w, mu, var))
    k, nc, n = mu.shape
    nv = var.shape[1]
    out = np.zeros(state_size(n, k, nc, nv), np.uint16)
    _, inv_step = _var_step(var_min, var_max)
    args = (np.float32(var_min), np.float32(var_max), inv_step)
    _encode(w, mu, var, out, *args)
    order = np.argsort(-_stored_keys(out, k, nc, nv, n, var_min, var_max), axis=0, kind="stable")
    if (order != np.arange(k)[:, None]).any():
        w, mu, var = (np.take_along_axis(a, order.reshape(k, *[1] * (a.ndim - 2), n), 0)
                      for a in (w, mu, var))
        _encode(np.ascontiguousarray(w), np.ascontiguousarray(mu), np.ascontiguousarray(var),
                out, *args)
    return out


def _stored_keys(state, k, nc, nv, n, var_min, var_max) -> np.ndarray:
    """The rank keys w^2 / sigma^2 (k, N) of a state's stored values, as the kernels do."""
    w, _, var = decode_state(state, k, nc, nv, n, var_min, var_max)
    rank_var = var[:, 0]
    if nv > 1:
        rank_var = np.zeros_like(rank_var)
        for c in range(nv):
            rank_var = rank_var + var[:, c]
        rank_var = rank_var * (_ONE / np.float32(nc))
    with np.errstate(divide="ignore", invalid="ignore"):
        return w * w / rank_var


def decode_state(state, k: int, channels: int, variances: int, n: int, var_min: float,
                 var_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The float32 weights (k, N), means (k, C, N) and variances (k, V, N) of a flat state."""
    w = np.empty((k, n), np.float32)
    mu = np.empty((k, channels, n), np.float32)
    var = np.empty((k, variances, n), np.float32)
    step, _ = _var_step(var_min, var_max)
    _decode(state, w, mu, var, np.float32(var_min), step)
    return w, mu, var


# -- the frame kernel ---------------------------------------------------------

# The helpers below compute every candidate first and only then choose: an
# expression inside a conditional is evaluated in a branch of its own, which
# LLVM vectorises as masked, lane-by-lane code; a choice between ready values
# is a single blend.  The unchanged value is re-derived through ``zero`` (0,
# but opaque to the compiler): seeing that a store writes back the value just
# loaded, LLVM would otherwise make the store conditional, and conditional
# stores are again lane by lane.

@njit(inline="always", cache=True, error_model="numpy")
def _new_weight(q, jf, b, rr, one_minus_a, alpha, w_init):
    """A slot's weight after this frame, before renormalisation."""
    decayed = one_minus_a * _dec_w(q)
    plus = decayed + alpha
    matched_w = plus if jf == b else decayed
    unmatched_w = w_init if jf == rr else decayed
    return matched_w if b >= _ZERO else unmatched_w


@njit(inline="always", cache=True, error_model="numpy")
def _choose(moved, new, old, hit, replaced):
    """moved if hit, else new if replaced, else old: integer arithmetic, no branch."""
    h = np.int32(hit)
    r = np.int32(replaced)
    return np.uint16(old + h * (moved - old) + r * (new - old))


@njit(inline="always", cache=True, error_model="numpy")
def _opaque(q, zero):
    """q as int32, plus ``zero``: an int32 0 the compiler cannot see through."""
    return np.int32(q) + zero


@njit(inline="always", cache=True, error_model="numpy")
def _moved_var(v, target, rho, var_min, var_max, inv_step):
    """The code of a variance moved towards ``target`` (m2 or d_c^2) and clamped."""
    moved = min(max(v + rho * (target - v), var_min), var_max)
    return np.int32(_var_code(moved, var_min, inv_step))


@njit(inline="always", cache=True, error_model="numpy")
def _channel(c, x0, x1, x2):
    """Channel c of a pixel (c is a constant once the channel loop is unrolled)."""
    return x0 if c == 0 else (x1 if c == 1 else x2)




# Where component j's values sit, from a pixel's offset s in its tile.
# Offsets are computed, not looked up in tuples: a tuple indexed by a loop
# variable goes through the stack, and the vectoriser then gathers lane by
# lane.

@njit(inline="always", cache=True, error_model="numpy")
def _w_index(s, j):
    return s + np.uint64(j * BLOCK)


@njit(inline="always", cache=True, error_model="numpy")
def _mu_index(s, j, c, k, nc):
    return s + np.uint64((k + j * nc + c) * BLOCK)


@njit(inline="always", cache=True, error_model="numpy")
def _var_index(s, j, c, k, nc, nv):
    return s + np.uint64((k + k * nc + j * nv + (c if nv > 1 else 0)) * BLOCK)


@njit(inline="always", cache=True, error_model="numpy")
def _rank_var(state, s, j, k, nc, nv, var_min, step):
    """sigma^2 for ranking: the variance, or the mean of the channels' variances."""
    if nv == 1:
        return _dec_var(state[_var_index(s, j, 0, k, nc, nv)], var_min, step)
    v = _ZERO
    for c in range(nc):
        v += _dec_var(state[_var_index(s, j, c, k, nc, nv)], var_min, step)
    return v * (_ONE / np.float32(nc))


@njit(inline="always", cache=True, error_model="numpy")
def _pick(other, keep, swap, zero):
    """other if swap, else keep: integer arithmetic through an opaque keep (see _opaque)."""
    kept = _opaque(keep, zero)
    return np.uint16(kept + np.int32(swap) * (np.int32(other) - kept))


@njit(inline="always", cache=True, error_model="numpy")
def _stored_key(state, s, j, k, nc, nv, var_min, step):
    """Slot j's rank key w^2 / sigma^2, from the values stored in the state."""
    w = _dec_w(state[_w_index(s, j)])
    return w * w / _rank_var(state, s, j, k, nc, nv, var_min, step)


@njit(inline="always", cache=True, error_model="numpy")
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
            swap = _stored_key(state, s, j + 1, k, nc, nv, var_min, step) > _stored_key(
                state, s, j, k, nc, nv, var_min, step)
            a = state[_w_index(s, j)]
            b = state[_w_index(s, j + 1)]
            state[_w_index(s, j)] = _pick(b, a, swap, zero)
            state[_w_index(s, j + 1)] = _pick(a, b, swap, zero)
            for c in range(nc):
                a = state[_mu_index(s, j, c, k, nc)]
                b = state[_mu_index(s, j + 1, c, k, nc)]
                state[_mu_index(s, j, c, k, nc)] = _pick(b, a, swap, zero)
                state[_mu_index(s, j + 1, c, k, nc)] = _pick(a, b, swap, zero)
            for c in range(nv):
                a = state[_var_index(s, j, c, k, nc, nv)]
                b = state[_var_index(s, j + 1, c, k, nc, nv)]
                state[_var_index(s, j, c, k, nc, nv)] = _pick(b, a, swap, zero)
                state[_var_index(s, j + 1, c, k, nc, nv)] = _pick(a, b, swap, zero)


@njit(inline="always", cache=True, error_model="numpy")
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
            det *= 2.0 * math.pi * np.float64(_channel(c, v0, v1, v2))
        eta = det ** -0.5 * math.exp(-half_c * np.float64(m2))
    return np.float32(min(np.float64(alpha) * eta, 1.0))


@njit(inline="always", cache=True, error_model="numpy")
def _top(state, s, x0, x1, x2, k, nc, nv, inv_c, lam2, var_min, step):
    """Whether the pixel matches slot 0 (the top-ranked), with m2, sigma^2 and the means."""
    w0 = _dec_w(state[_w_index(s, 0)])
    v = _rank_var(state, s, 0, k, nc, nv, var_min, step)
    m0 = _dec_mu(state[_mu_index(s, 0, 0, k, nc)])
    m1 = _dec_mu(state[_mu_index(s, 0, 1 if nc > 1 else 0, k, nc)])
    m2_ = _dec_mu(state[_mu_index(s, 0, 2 if nc > 2 else 0, k, nc)])
    d2 = _ZERO
    for c in range(nc):
        a = _channel(c, x0, x1, x2) - _channel(c, m0, m1, m2_)
        if nv == 1:
            d2 += a * a
        else:
            d2 += a * a / _dec_var(state[_var_index(s, 0, c, k, nc, nv)], var_min, step)
    dd = d2 * inv_c
    limit = lam2 * v if nv == 1 else lam2
    return (w0 > _ZERO) & (dd < limit), w0, dd, v, m0, m1, m2_


@njit(inline="always", cache=True, error_model="numpy")
def _top_update(state, s, x0, x1, x2, k, nc, nv, inv_c, lam2, alpha, one_minus_a, var_min,
                var_max, step, inv_step, rho_mode):
    """Slot 0 matched: its new weight code, mean codes and variance codes.

    The same operations as the general path gives a pixel matched by slot 0.
    """
    _, w0, dd, v, m0, m1, m2_ = _top(state, s, x0, x1, x2, k, nc, nv, inv_c, lam2, var_min,
                                     step)
    w_new = one_minus_a * w0 + alpha
    vb0 = _dec_var(state[_var_index(s, 0, 0, k, nc, nv)], var_min, step)
    vb1 = _dec_var(state[_var_index(s, 0, 1 if nv > 1 else 0, k, nc, nv)], var_min, step)
    vb2 = _dec_var(state[_var_index(s, 0, 2 if nv > 2 else 0, k, nc, nv)], var_min, step)
    rho = _rho(rho_mode, alpha, w_new, dd, v, vb0, vb1, vb2, nc, nv)
    mv0, mv1, mv2, vv0, vv1, vv2 = _moved(x0, x1, x2, m0, m1, m2_, v, vb0, vb1, vb2, dd, rho,
                                          nv, var_min, var_max, inv_step)
    return np.int32(_w_code(w_new)), mv0, mv1, mv2, vv0, vv1, vv2


@njit(inline="always", cache=True, error_model="numpy")
def _moved(x0, x1, x2, m0, m1, m2_, v, vb0, vb1, vb2, m2, rho, nv, var_min, var_max, inv_step):
    """The codes of a matched component's mean and variances after it learned from x.

    Spherical (nv 1): the variance v follows m2; diagonal: each channel's
    variance vb_c follows its own squared distance.
    """
    a0 = x0 - m0
    a1 = x1 - m1
    a2 = x2 - m2_
    mv0 = np.int32(_mu_code(m0 + rho * a0))
    mv1 = np.int32(_mu_code(m1 + rho * a1))
    mv2 = np.int32(_mu_code(m2_ + rho * a2))
    if nv == 1:
        vv0 = vv1 = vv2 = _moved_var(v, m2, rho, var_min, var_max, inv_step)
    else:
        vv0 = _moved_var(vb0, a0 * a0, rho, var_min, var_max, inv_step)
        vv1 = _moved_var(vb1, a1 * a1, rho, var_min, var_max, inv_step)
        vv2 = _moved_var(vb2, a2 * a2, rho, var_min, var_max, inv_step)
    return mv0, mv1, mv2, vv0, vv1, vv2


@njit(inline="always", cache=True, error_model="numpy")
def _code_rank_var(c0, c1, c2, nc, nv, var_min, step):
    """sigma^2 for ranking from variance codes, as _rank_var computes it from the state."""
    if nv == 1:
        return _dec_var(c0, var_min, step)
    v = _ZERO
    for c in range(nc):
        v += _dec_var(_channel(c, c0, c1, c2), var_min, step)
    return v * (_ONE / np.float32(nc))


@njit(inline="always", cache=True, error_model="numpy")
def _flags(mask, first, start, stop):
    """The OR of a tile's mask over lanes start..stop-1 (flags before the labels)."""
    flags = np.uint8(0)
    for ii in range(start, stop):
        flags |= mask[first + np.uint64(ii)]
    return flags


@njit(inline="always", cache=True, error_model="numpy")
def _run_end(mask, first, g, nb, flagged):
    """Where the run of groups from lane g ends: groups with a flag (or none) in a row."""
    e = g
    while e < nb and (_flags(mask, first, e, min(nb, e + _GROUP)) != 0) == flagged:
        e += _GROUP
    return min(e, nb)


@njit(inline="always", cache=True, error_model="numpy")
def _match(state, s, x0, x1, x2, k, nc, nv, inv_c, lam2, var_min, step):
    """The first slot (in rank order) within lambda sigma, and the weight ranked above it.

    Returns the slot as a float (-1: none), m2 and sigma^2 of the match, and
    the sum of the weight codes ranked above it.  The stored integer codes
    (at most 5 * 65535 < 2**24) sum exactly in float32.
    """
    best = _NO_KEY
    best_d2 = _ZERO
    best_var = _ONE
    above = _ZERO
    cumulative = _ZERO
    for j in range(k):
        q = state[_w_index(s, j)]
        v = _rank_var(state, s, j, k, nc, nv, var_min, step)
        d2 = _ZERO
        for c in range(nc):
            a = _channel(c, x0, x1, x2) - _dec_mu(state[_mu_index(s, j, c, k, nc)])
            if nv == 1:
                d2 += a * a
            else:
                d2 += a * a / _dec_var(state[_var_index(s, j, c, k, nc, nv)], var_min, step)
        dd = d2 * inv_c
        limit = lam2 * v if nv == 1 else lam2
        hit = (_dec_w(q) > _ZERO) & (dd < limit) & (best < _ZERO)
        best = np.float32(j) if hit else best
        best_d2 = dd if hit else best_d2
        best_var = v if hit else best_var
        above = cumulative if hit else above
        cumulative += np.float32(q)
    return best, best_d2, best_var, above


@njit(inline="always", cache=True, error_model="numpy")
def _shadow_tile(x, state, mask, t, nb, k, nc, nv, var_min, step, t_q, lam2, ratio_min, tau2,
                 value):
    """Relabel tile t's foreground pixels that are cast shadows (see :mod:`bgsub.shadows`).

    One pixel at a time, and only foreground ones: scalar code for the few
    pixels that need it, on a tile whose state the frame kernel just touched.
    """
    planes = k * (1 + nc + nv)
    base = np.uint64(t) * np.uint64(planes * BLOCK)
    first = np.uint64(t) * _UB
    inv_c = _ONE / np.float32(nc)
    # most tiles have no foreground: an OR over the tile's mask (a vector
    # loop) rules them out at a fraction of a per-pixel test's cost
    seen = np.uint8(0)
    for ii in range(nb):
        seen |= mask[first + np.uint64(ii)]
    if seen != _FG:
        return
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
        px = p * np.uint64(3)
        a0 = np.float32(x[px])
        a1 = np.float32(x[px + np.uint64(1)])
        a2 = np.float32(x[px + np.uint64(2)])
        above = _ZERO  # the weight codes ranked above slot j (the slots are in rank order)
        for j in range(k):
            if above > t_q:
                break  # j and the slots after it are not background
            q = state[_w_index(s, j)]
            ww = _dec_w(q)
            b0 = _dec_mu(state[_mu_index(s, j, 0, k, nc)])
            b1 = _dec_mu(state[_mu_index(s, j, 1, k, nc)])
            b2 = _dec_mu(state[_mu_index(s, j, 2, k, nc)])
            v0 = _dec_var(state[_var_index(s, j, 0, k, nc, nv)], var_min, step)
            if nv == 1:
                darker = darker_spherical(a0, a1, a2, ww, b0, b1, b2, v0, inv_c, lam2,
                                          ratio_min, tau2)
            else:
                v1 = _dec_var(state[_var_index(s, j, 1, k, nc, nv)], var_min, step)
                v2 = _dec_var(state[_var_index(s, j, 2, k, nc, nv)], var_min, step)
                darker = darker_diagonal(a0, a1, a2, ww, b0, b1, b2, v0, v1, v2, inv_c, lam2,
                                         ratio_min, tau2)
            if darker:
                mask[p] = value
                break
            above += np.float32(q)


@njit(cache=True, nogil=True, error_model="numpy")
def mark_shadows(x, state, mask, n, k, nc, nv, var_min, var_max, bg_ratio, lam2, ratio_min,
                 tau2, value, t_start, t_stop):
    """Relabel the cast shadows among a mask's foreground pixels, tiles t_start..t_stop-1.

    The pass a frame kernel built with ``shadows`` makes over each tile it
    has just learned from (see :mod:`bgsub.shadows`), on its own: on a given
    state and mask, for tests and for callers with a mask of their own.
    ``x`` is the frame (N*C,; a grey frame has no shadows: nothing changes),
    ``state`` the flat state of the model, ``mask`` (N,) with 255 for
    foreground; shadows get ``value``.  ``lam2``, ``tau2``: the match and
    colour-distortion thresholds squared; ``ratio_min``: the darkest
    shadow's brightness ratio.
    """
    if nc != 3:
        return  # grey frames have no shadows
    step = (var_max - var_min) / _Q_MAX
    t_q = bg_ratio * W_ONE
    for t in range(t_start, t_stop):
        _shadow_tile(x, state, mask, t, min(BLOCK, n - t * BLOCK), k, nc, nv, var_min, step,
                     t_q, lam2, ratio_min, tau2, value)


@functools.lru_cache(maxsize=None)
def frame_kernel(k: int, channels: int, variances: int, learn: bool, rho_mode: int,
                 shadows: bool = False):
    """The kernel that classifies one frame and (if ``learn``) learns from it.

    Built once per model shape: ``k``, the channel and variance counts, the
    mode and whether it marks shadows are frozen into it as compile-time
    constants (and, being plain values, let Numba's disk cache find it again
    in the next process).  The kernel is called as ``kernel(x, state, mask,
    n, alpha, lam2, bg_ratio, w_init, var_init, var_min, var_max, ratio_min,
    tau2, value, t_start, t_stop)`` and works on the tiles ``t_start <= t <
    t_stop`` without the GIL: threads share a frame out by tiles (see
    :mod:`bgsub.tiles`).  With ``shadows`` (colour only), each tile's cast
    shadows are marked (see :func:`mark_shadows`) right after the tile is
    classified and learned from, while its state is in the cache.

    Parameters
    ----------
    x : (N*C,) uint8
        The frame, flat: pixels in row-major order, channels interleaved.
    state : uint16
        The flat state (see the module docstring), updated in place.
    mask : (N,) uint8
        Output: 255 foreground, 0 background (classified before learning).
    n : int
        Pixels in the frame.
    alpha : float32
        Learning rate of this frame (ignored when not ``learn``).
    lam2, bg_ratio, w_init, var_init, var_min, var_max : float32
        lambda squared, T, the replacement weight and variance, and the
        variance clamp (which also sets the variances' encoding).
    ratio_min, tau2 : float32
        The darkest shadow's brightness ratio, and the colour-distortion
        threshold squared (ignored without ``shadows``).
    value : uint8
        The mask value of a shadow (ignored without ``shadows``).
    t_start, t_stop : int
        The tiles to process.
    """
    k, nc, nv = int(k), int(channels), int(variances)
    learn, rho_mode = bool(learn), int(rho_mode)
    shadows = bool(shadows) and nc == 3  # grey frames have no shadows
    planes = k * (1 + nc + nv)
    inv_c = _ONE / np.float32(nc)
    u_nc = np.uint64(nc)
    u_tile = np.uint64(planes * BLOCK)
    last = np.float32(k - 1)  # the least probable slot, replaced when nothing matches
    c1 = np.uint64(1 if nc > 1 else 0)
    c2 = np.uint64(2 if nc > 2 else 0)

    @njit(cache=True, nogil=True, error_model="numpy")
    def kernel(x, state, mask, n, alpha, lam2, bg_ratio, w_init, var_init, var_min, var_max,
               ratio_min, tau2, value, t_start, t_stop):
        step = (var_max - var_min) / _Q_MAX
        inv_step = _ONE / step if step > _ZERO else _ZERO
        t_q = bg_ratio * W_ONE
        q_init = np.int32(_var_code(var_init, var_min, inv_step))
        one_minus_a = _ONE - alpha
        # 0 for any finite alpha, but not known to LLVM to be 0 (see _opaque)
        zero = np.int32(alpha - alpha)
        for t in range(t_start, t_stop):
            nb = min(BLOCK, n - t * BLOCK)
            base = np.uint64(t) * u_tile
            first = np.uint64(t) * _UB
            if not learn:
                for ii in range(nb):
                    p = first + np.uint64(ii)
                    px = p * u_nc
                    best, _, _, above = _match(
                        state, base + np.uint64(ii), np.float32(x[px]), np.float32(x[px + c1]),
                        np.float32(x[px + c2]), k, nc, nv, inv_c, lam2, var_min, step)
                    mask[p] = _FG if (best < _ZERO) | (above > t_q) else _BG
                if shadows:
                    _shadow_tile(x, state, mask, t, nb, k, nc, nv, var_min, step, t_q, lam2,
                                 ratio_min, tau2, value)
                continue

            # Most pixels match their top-ranked slot, which stays on top: they
            # take a short path that touches only slot 0 and the weights.  It
            # goes by groups of _GROUP pixels (one vector), so that the vector
            # loops stay full; a group with any other pixel takes the general
            # path.  The mask holds the per-pixel flags until it gets the labels.
            for ii in range(nb):
                p = first + np.uint64(ii)
                px = p * u_nc
                mask[p] = np.uint8(1) - np.uint8(_top(
                    state, base + np.uint64(ii), np.float32(x[px]), np.float32(x[px + c1]),
                    np.float32(x[px + c2]), k, nc, nv, inv_c, lam2, var_min, step)[0])
            g = 0
            while g < nb:
                # a run of short-path groups, then a run of general ones: one
                # vector loop per run rather than per group
                e = _run_end(mask, first, g, nb, False)
                for ii in range(g, e):
                    s = base + np.uint64(ii)
                    p = first + np.uint64(ii)
                    px = p * u_nc
                    wq, mv0, mv1, mv2, vv0, vv1, vv2 = _top_update(
                        state, s, np.float32(x[px]), np.float32(x[px + c1]),
                        np.float32(x[px + c2]), k, nc, nv, inv_c, lam2, alpha, one_minus_a,
                        var_min, var_max, step, inv_step, rho_mode)
                    for j in range(1, k):
                        state[_w_index(s, j)] = _q16(_w_code(
                            one_minus_a * _dec_w(state[_w_index(s, j)])))
                    state[_w_index(s, 0)] = np.uint16(wq)
                    for c in range(nc):
                        state[_mu_index(s, 0, c, k, nc)] = np.uint16(_channel(c, mv0, mv1, mv2))
                    for c in range(nv):
                        state[_var_index(s, 0, c, k, nc, nv)] = np.uint16(
                            _channel(c, vv0, vv1, vv2))
                    # slot 0 can drop below slot 1 (its variance grew more than
                    # its weight), and truncating the decayed weights can swap
                    # two others: flag the pixel for re-ranking.  The flag
                    # compares w_j^2 sigma_j-1^2 with w_j-1^2 sigma_j^2, without
                    # divisions, and with a margin far above their rounding:
                    # it may flag a pixel the exact keys keep in order (the
                    # re-ranking then moves nothing), never the other way round
                    w = _dec_w(np.int32(wq))
                    w2_prev = w * w
                    v_prev = _code_rank_var(vv0, vv1, vv2, nc, nv, var_min, step)
                    moved = np.uint8(0)
                    for j in range(1, k):
                        wj = _dec_w(state[_w_index(s, j)])
                        w2 = wj * wj
                        v = _rank_var(state, s, j, k, nc, nv, var_min, step)
                        moved |= np.uint8(w2 * v_prev > w2_prev * v * _SAFE)
                        w2_prev = w2
                        v_prev = v
                    mask[p] = moved
                if _flags(mask, first, g, e) != 0:
                    for ii in range(g, e):
                        if mask[first + np.uint64(ii)] != 0:
                            _rerank(state, base + np.uint64(ii), k, nc, nv, var_min, step, zero)
                for ii in range(g, e):
                    mask[first + np.uint64(ii)] = _BG  # no weight ranks above slot 0

                g = e
                e = _run_end(mask, first, g, nb, True)
                for ii in range(g, e):
                    s = base + np.uint64(ii)
                    p = first + np.uint64(ii)
                    # the pixel's channels, loaded once: a load after a store to
                    # the state is repeated, LLVM not knowing the frame is
                    # another array
                    px = p * u_nc
                    x0 = np.float32(x[px])
                    x1 = np.float32(x[px + c1])
                    x2 = np.float32(x[px + c2])
                    best, best_d2, best_var, above = _match(state, s, x0, x1, x2, k, nc, nv,
                                                            inv_c, lam2, var_min, step)
                    fg = (best < _ZERO) | (above > t_q)

                    # the weights: decay every weight, add alpha to the match; an
                    # unmatched pixel's least probable slot gets w_init, and its
                    # weights are renormalised
                    matched = best >= _ZERO
                    total = _ZERO
                    w_best = _ZERO
                    for j in range(k):
                        jf = np.float32(j)
                        new = _new_weight(state[_w_index(s, j)], jf, best, last, one_minus_a,
                                          alpha, w_init)
                        total += new
                        w_best += new if jf == best else _ZERO  # the match's new weight
                    scale = _ONE if matched else _ONE / total

                    # the matched component's mean and variances (any, when none matched)
                    mb0 = mb1 = mb2 = _ZERO
                    vb0 = vb1 = vb2 = _ZERO
                    for j in range(k):
                        hit_j = np.float32(j) == best
                        for c in range(nc):
                            m = _dec_mu(state[_mu_index(s, j, c, k, nc)])
                            mb0 = m if hit_j & (c == 0) else mb0
                            mb1 = m if hit_j & (c == 1) else mb1
                            mb2 = m if hit_j & (c == 2) else mb2
                            v = _dec_var(state[_var_index(s, j, c, k, nc, nv)], var_min, step)
                            vb0 = v if hit_j & (c == 0) else vb0
                            vb1 = v if hit_j & (c == 1) else vb1
                            vb2 = v if hit_j & (c == 2) else vb2
                    rho = _rho(rho_mode, alpha, w_best if matched else _ONE, best_d2, best_var,
                               vb0, vb1, vb2, nc, nv)

                    # the match's new mean and variance, computed once (a pixel has
                    # one match), then blended into every slot with the
                    # replacement's values
                    mv0, mv1, mv2, vv0, vv1, vv2 = _moved(
                        x0, x1, x2, mb0, mb1, mb2, best_var, vb0, vb1, vb2, best_d2, rho, nv,
                        var_min, var_max, inv_step)
                    nx0 = np.int32(_mu_code(x0))
                    nx1 = np.int32(_mu_code(x1))
                    nx2 = np.int32(_mu_code(x2))
                    for j in range(k):
                        jf = np.float32(j)
                        hit_j = jf == best
                        replaced = (best < _ZERO) & (jf == last)
                        new = _new_weight(state[_w_index(s, j)], jf, best, last, one_minus_a,
                                          alpha, w_init)
                        state[_w_index(s, j)] = _q16(_w_code(new * scale))
                        for c in range(nc):
                            at = _mu_index(s, j, c, k, nc)
                            state[at] = _choose(_channel(c, mv0, mv1, mv2),
                                                _channel(c, nx0, nx1, nx2),
                                                _opaque(state[at], zero), hit_j, replaced)
                        for c in range(nv):
                            at = _var_index(s, j, c, k, nc, nv)
                            state[at] = _choose(_channel(c, vv0, vv1, vv2), q_init,
                                                _opaque(state[at], zero), hit_j, replaced)
                    _rerank(state, s, k, nc, nv, var_min, step, zero)
                    # stored last: the state's values are not reloaded after it
                    mask[p] = _FG if fg else _BG
                g = e
            if shadows:
                # while the tile's state is still in the cache
                _shadow_tile(x, state, mask, t, nb, k, nc, nv, var_min, step, t_q, lam2,
                             ratio_min, tau2, value)

    signature = ((types.Array(types.uint8, 1, "C"), types.Array(types.uint16, 1, "C"),
                  types.Array(types.uint8, 1, "C"), types.int64) + (types.float32,) * 9
                 + (types.uint8,) + (types.int64,) * 2)
    with _vector_width(8):
        kernel.compile(signature)  # from Numba's disk cache when it is there
    return kernel


@contextlib.contextmanager
def _vector_width(width: int):
    """Compile our kernels with LLVM options that let the per-pixel loop vectorise.

    * ``-force-vector-width``: the cost model rejects vectorising the
      learning loop, over-costing the 16-bit conversions; measured, the
      vectorised loop is several times faster.  Eight float32 lanes fill an
      AVX2 register.
    * ``-unroll-threshold``: the component and channel loops must be unrolled
      completely, or the pixel loop is not the innermost loop and is not
      vectorised; the default size limit stops short of k = 5.
    * ``-unswitch-threshold``: loop unswitching would otherwise split the
      component loop on the pixel's match (invariant in that loop) into two
      copies, and the vectoriser would then predicate every store lane by
      lane.

    The options are global to LLVM, so they are set for the compilation
    only, and put back to LLVM's defaults after it.  With a width forced,
    LLVM warns on stderr about every loop it still cannot vectorise (the
    scalar loops around the kernel, by design); that noise is captured and
    dropped, unless the compilation fails.
    """
    options = {"force-vector-width": (width, 0), "unroll-threshold": (4000, 300),
               "unswitch-threshold": (1, 50)}
    for name, (value, _) in options.items():
        llvm.set_option("", f"-{name}={value}")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as noise:
        os.dup2(noise.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            for name, (_, default) in options.items():
                llvm.set_option("", f"-{name}={default}")
            if failed:
                noise.seek(0)
                sys.stderr.write(noise.read().decode(errors="replace"))


# -- reading the model --------------------------------------------------------

@njit(inline="always", cache=True, error_model="numpy")
def _at(state, p, planes, plane):
    return state[_index(p, planes, plane)]


@njit(inline="always", cache=True, error_model="numpy")
def _var_at(state, p, k, nc, nv, j, c, var_min, step):
    planes = k * (1 + nc + nv)
    return _dec_var(_at(state, p, planes, k + k * nc + j * nv + (c if nv > 1 else 0)),
                    var_min, step)


@njit(cache=True, nogil=True, error_model="numpy")
def background_means(state, k, nc, nv, var_min, var_max, out, t_start, t_stop):
    """Write each pixel's top-ranked mean, rounded to uint8, into ``out`` (N, C).

    For the pixels of tiles ``t_start .. t_stop - 1``: a tile runner
    (:mod:`bgsub.tiles`) shares the tiles out.
    """
    n = out.shape[0]
    planes = k * (1 + nc + nv)
    for p in range(t_start * BLOCK, min(t_stop * BLOCK, n)):
        for c in range(nc):  # slot 0 ranks first
            v = _dec_mu(_at(state, p, planes, k + c)) + _HALF
            out[p, c] = np.uint8(min(max(v, _ZERO), np.float32(255.0)))


@njit(inline="always", cache=True, error_model="numpy")
def _density(x, p, state, k, nc, nv, j, var_min, step):
    """N(x_p | mu_j, Sigma_j), float64, for the spherical or diagonal model.

    ``exp(-m / 2) / sqrt(|2 pi Sigma|)`` (m the Mahalanobis distance): one
    exponential and one square root per component, no logarithm.  The
    log-likelihood is computed every frame, and at small sizes its
    transcendental functions cost a sizeable part of the frame kernel.
    """
    planes = k * (1 + nc + nv)
    det = 1.0  # |2 pi Sigma|
    s = 0.0  # Mahalanobis distance
    for c in range(nc):
        v = np.float64(_var_at(state, p, k, nc, nv, j, c, var_min, step))
        d = np.float64(x[p * nc + c]) - np.float64(_dec_mu(_at(state, p, planes,
                                                               k + j * nc + c)))
        det *= 2.0 * math.pi * v
        s += d * d / v
    return math.exp(-0.5 * s) / math.sqrt(det)


@njit(cache=True, nogil=True, error_model="numpy")
def mean_log_likelihood(x, state, k, nc, nv, n, var_min, var_max, outlier, stride, run):
    """Mean of ln p(x) (float64) over the pixels p with ``p % stride < run``.

    ``p(x) = (1 - outlier) sum_j w_j N(x | mu_j, Sigma_j) + outlier / 256**C``:
    the uniform term keeps one unexplained pixel from sending the mean to
    minus infinity.  Runs of consecutive pixels rather than single pixels
    spread out: a pixel's values lie in as many cache lines as the state has
    planes, and a run shares them.
    """
    planes = k * (1 + nc + nv)
    step = (var_max - var_min) / _Q_MAX
    uniform = outlier * 256.0 ** -nc
    total = 0.0
    count = 0
    for start in range(0, n, stride):  # a few thousand pixels: threads would cost more
        for p in range(start, min(start + run, n)):
            mix = 0.0
            for j in range(k):
                wj = np.float64(_dec_w(_at(state, p, planes, j)))
                if wj > 0.0:
                    mix += wj * _density(x, p, state, k, nc, nv, j, var_min, step)
            total += math.log((1.0 - outlier) * mix + uniform)
            count += 1
    return total / count


@njit(cache=True, nogil=True, error_model="numpy")
def foreground_probability(x, state, k, nc, nv, var_min, var_max, bg_ratio, outlier, out,
                           t_start, t_stop):
    """Posterior that each pixel is not explained by the background components.

    ``1 - (1 - outlier) sum_{j in B} w_j N_j(x) / p(x)`` with B the background
    components (those with at most T of weight ranked above them) and p(x) the
    mixture with its uniform outlier term; written to ``out`` (N,) float32 for
    the pixels of tiles ``t_start .. t_stop - 1`` (see :mod:`bgsub.tiles`).
    """
    n = out.shape[0]
    planes = k * (1 + nc + nv)
    step = (var_max - var_min) / _Q_MAX
    uniform = outlier * 256.0 ** -nc
    t_q = np.float64(bg_ratio * W_ONE)
    for p in range(t_start * BLOCK, min(t_stop * BLOCK, n)):
        mix = 0.0
        background = 0.0
        above = 0.0  # the weight codes ranked above slot j (the slots are in rank order)
        for j in range(k):
            qj = _at(state, p, planes, j)
            wj = _dec_w(qj)
            if wj > _ZERO:
                dens = np.float64(wj) * _density(x, p, state, k, nc, nv, j, var_min, step)
                mix += dens
                if above <= t_q:  # j is background
                    background += dens
            above += np.float64(qj)
        total = (1.0 - outlier) * mix + uniform
        out[p] = np.float32(1.0 - (1.0 - outlier) * background / total)
