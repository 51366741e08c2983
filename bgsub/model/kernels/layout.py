"""The model's state: one flat uint16 array in tiles, and its 16-bit encoding.

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

Rank order: a component's rank key is ``w**2 / s2`` (s2 its variance, or the
mean of its channel variances), and each pixel's slots are *stored in rank
order*, key descending: slot 0 is the top-ranked component, slot k-1 the
least probable.  A slot with weight 0 is empty: it never matches, and sorts
last.  :func:`encode_state` sorts whatever it is given.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["BLOCK", "W_ONE", "MU_ONE", "plane_count", "state_size", "encode_state",
           "decode_state", "empty_tile"]

# Pixels per tile.  Kernel time a pixel, single-threaded, 320x240 / 1920x1080:
# 256: 5.3 / 6.5 ns, 512: 5.1 / 5.5, 1024: 5.0 / 5.3, 2048: 6.0 / 5.8, 4096: 5.9 / 5.6.
# Longer runs per plane suit the prefetcher; from 2048 on, planes 4 KiB apart
# probably alias in the L1 cache.
BLOCK = 1024
W_ONE = np.float32(65535.0)  # the stored weight of 1.0
MU_ONE = np.float32(256.0)  # the stored step of one grey level
_W_INV = np.float32(1.0) / W_ONE
_MU_INV = np.float32(1.0) / MU_ONE
Q_MAX = np.float32(65535.0)
ZERO = np.float32(0.0)
ONE = np.float32(1.0)
HALF = np.float32(0.5)
UBLOCK = np.uint64(BLOCK)
# The flicker word kept per pixel beside the state (see bgsub.model.kernels.frame):
# a level of 15 bits, this value meaning 1.0, and the last classification.
FLICKER_ONE = 32767


def plane_count(k: int, channels: int, variances: int) -> int:
    """Planes per tile: k weights, k*C means, k*V variances."""
    return k * (1 + channels + variances)


def state_size(n: int, k: int, channels: int, variances: int) -> int:
    """Length of the flat uint16 state for n pixels (whole tiles)."""
    return -(-n // BLOCK) * plane_count(k, channels, variances) * BLOCK


# -- the codes ------------------------------------------------------------------

@njit(cache=True, error_model="numpy")
def dec_w(q):
    return np.float32(q) * _W_INV


@njit(cache=True, error_model="numpy")
def dec_mu(q):
    return np.float32(q) * _MU_INV


@njit(cache=True, error_model="numpy")
def dec_var(q, var_min, step):
    return var_min + np.float32(q) * step


@njit(cache=True, error_model="numpy")
def q16(v):
    """Store a non-negative float already scaled to [0, 65535] (truncating), via int32.

    Going through int32 keeps every vector lane 32 bits wide.
    """
    return np.uint16(np.int32(v))


@njit(cache=True, error_model="numpy")
def w_code(w):
    return min(w * W_ONE, Q_MAX)


@njit(cache=True, error_model="numpy")
def mu_code(m):
    return m * MU_ONE + HALF


@njit(cache=True, error_model="numpy")
def var_code(v, var_min, inv_step):
    return min((v - var_min) * inv_step + HALF, Q_MAX)


def var_step(var_min: float, var_max: float) -> tuple[np.float32, np.float32]:
    """One variance code's step, and its reciprocal (0 when the clamp is a point)."""
    step = (np.float32(var_max) - np.float32(var_min)) / Q_MAX
    return np.float32(step), (ONE / step if step > 0 else ZERO)


# -- where a value sits -----------------------------------------------------------

@njit(cache=True, error_model="numpy")
def index(p, planes, plane):
    """Where a plane's value for pixel p sits in the flat state."""
    return ((p // BLOCK) * planes + plane) * BLOCK + p % BLOCK


# From a pixel's offset s in its tile (the tile's start plus its lane): where
# component j's values sit.  Offsets are computed, not looked up in tuples: a
# tuple indexed by a loop variable goes through the stack, and the vectoriser
# then gathers lane by lane.

@njit(cache=True, error_model="numpy")
def w_index(s, j):
    return s + np.uint64(j * BLOCK)


@njit(cache=True, error_model="numpy")
def mu_index(s, j, c, k, nc):
    return s + np.uint64((k + j * nc + c) * BLOCK)


@njit(cache=True, error_model="numpy")
def var_index(s, j, c, k, nc, nv):
    return s + np.uint64((k + k * nc + j * nv + (c if nv > 1 else 0)) * BLOCK)


@njit(cache=True, error_model="numpy")
def channel(c, x0, x1, x2):
    """Channel c of a pixel (c is a constant once the channel loop is unrolled)."""
    return x0 if c == 0 else (x1 if c == 1 else x2)


@njit(cache=True, error_model="numpy")
def rank_var(state, s, j, k, nc, nv, var_min, step):
    """sigma^2 for ranking: the variance, or the mean of the channels' variances."""
    if nv == 1:
        return dec_var(state[var_index(s, j, 0, k, nc, nv)], var_min, step)
    v = ZERO
    for c in range(nc):
        v += dec_var(state[var_index(s, j, c, k, nc, nv)], var_min, step)
    return v * (ONE / np.float32(nc))


@njit(cache=True, error_model="numpy")
def stored_key(state, s, j, k, nc, nv, var_min, step):
    """Slot j's rank key w^2 / sigma^2, from the values stored in the state."""
    w = dec_w(state[w_index(s, j)])
    return w * w / rank_var(state, s, j, k, nc, nv, var_min, step)


# -- whole states ---------------------------------------------------------------

@njit(cache=True, error_model="numpy")
def _encode(w, mu, var, out, var_min, var_max, inv_step):
    k, nc, n = mu.shape
    nv = var.shape[1]
    planes = k * (1 + nc + nv)
    for p in range(n):
        for j in range(k):
            wj = min(max(np.float32(w[j, p]), ZERO), ONE)
            out[index(p, planes, j)] = q16(w_code(wj))
            for c in range(nc):
                m = min(max(np.float32(mu[j, c, p]), ZERO), np.float32(255.0))
                out[index(p, planes, k + j * nc + c)] = q16(mu_code(m))
            for c in range(nv):
                v = min(max(np.float32(var[j, c, p]), var_min), var_max)
                out[index(p, planes, k + k * nc + j * nv + c)] = q16(
                    var_code(v, var_min, inv_step))


@njit(cache=True, error_model="numpy")
def _decode(state, w, mu, var, var_min, step):
    k, nc, n = mu.shape
    nv = var.shape[1]
    planes = k * (1 + nc + nv)
    for p in range(n):
        for j in range(k):
            w[j, p] = dec_w(state[index(p, planes, j)])
            for c in range(nc):
                mu[j, c, p] = dec_mu(state[index(p, planes, k + j * nc + c)])
            for c in range(nv):
                var[j, c, p] = dec_var(state[index(p, planes, k + k * nc + j * nv + c)],
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
    _, inv_step = var_step(var_min, var_max)
    args = (np.float32(var_min), np.float32(var_max), inv_step)
    _encode(w, mu, var, out, *args)
    order = np.argsort(-_stored_keys(out, k, nc, nv, n, var_min, var_max), axis=0, kind="stable")
    if (order != np.arange(k)[:, None]).any():
        w, mu, var = (np.take_along_axis(a, order.reshape(k, *[1] * (a.ndim - 2), n), 0)
                      for a in (w, mu, var))
        _encode(np.ascontiguousarray(w), np.ascontiguousarray(mu), np.ascontiguousarray(var),
                out, *args)
    return out


def empty_tile(k: int, channels: int, variances: int, variance: float, var_min: float,
               var_max: float) -> np.ndarray:
    """One tile of empty slots (w = 0, mean 0) with the variance *variance*: what
    :func:`encode_state` gives for them, in plain NumPy (a new model's state is this
    tile repeated, and needs no kernel compiled)."""
    planes = plane_count(k, channels, variances)
    tile = np.zeros(planes * BLOCK, np.uint16)
    _, inv_step = var_step(var_min, var_max)
    lo, hi = np.float32(var_min), np.float32(var_max)
    v = min(max(np.float32(variance), lo), hi)
    code = np.uint16(np.int32(min((v - lo) * inv_step + HALF, Q_MAX)))
    tile[(k + k * channels) * BLOCK:] = code  # the variance planes come last
    return tile


def _stored_keys(state, k, nc, nv, n, var_min, var_max) -> np.ndarray:
    """The rank keys w^2 / sigma^2 (k, N) of a state's stored values, as the kernels do."""
    w, _, var = decode_state(state, k, nc, nv, n, var_min, var_max)
    rank = var[:, 0]
    if nv > 1:
        rank = np.zeros_like(rank)
        for c in range(nv):
            rank = rank + var[:, c]
        rank = rank * (ONE / np.float32(nc))
    with np.errstate(divide="ignore", invalid="ignore"):
        return w * w / rank


def decode_state(state, k: int, channels: int, variances: int, n: int, var_min: float,
                 var_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The float32 weights (k, N), means (k, C, N) and variances (k, V, N) of a flat state."""
    w = np.empty((k, n), np.float32)
    mu = np.empty((k, channels, n), np.float32)
    var = np.empty((k, variances, n), np.float32)
    step, _ = var_step(var_min, var_max)
    _decode(state, w, mu, var, np.float32(var_min), step)
    return w, mu, var
