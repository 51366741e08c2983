"""Numba kernels of the per-pixel Stauffer–Grimson mixture.

State layout (structure of arrays, all float32, C-contiguous, N = H*W):

* ``w``   (k, N)    component weights
* ``mu``  (k, C, N) component means, one plane per channel
* ``var`` (k, V, N) component variances; V = 1 for the spherical model
  (sigma^2 shared by the channels), V = C for the diagonal one (a variance per
  channel).

Distances: with d_c = x_c - mu_c, a value matches a component when
``m2 < lambda^2`` with ``m2 = (1/C) sum_c d_c^2 / sigma_c^2`` (the mean
squared Mahalanobis distance per channel; spherical: ``(1/C) ||d||^2 /
sigma^2``, evaluated as ``(1/C) ||d||^2 < lambda^2 sigma^2``).

Components are *not* stored in rank order: a component's rank is derived from
its key ``w**2 / s2`` (the square of w/sigma: same order, no sqrt) when it is
needed, with s2 its variance, or for the diagonal model the mean of its channel
variances (the same key when they are equal).  Rank order is "key
descending, ties to the lower slot", so the top-ranked component is the first
in that order and the least probable one the last.  Keeping no order means no
per-pixel swapping of planes and no sort.

A slot with weight 0 is empty: it never matches and is replaced first.
Weights that decay below ``W_PRUNE`` become 0, which keeps float32 denormals
(very slow arithmetic) out of the state.

Why the loops look the way they do: each thread walks its share of the pixels
in blocks of ``BLOCK`` pixels, and every pass over a block loops over
components (and channels) outside and over pixels inside, with selects instead
of branches.  The inner loops are then straight-line code over contiguous
planes that LLVM turns into SIMD, and a block's scratch stays in L1.  The
per-thread scratch is allocated once by the caller (:func:`scratch_shapes`),
never per frame.

Every kernel works in float32, in the same operation order as the plain
reference implementation in ``tests/naive.py``; change both together.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["update_classify", "background_means", "scratch_shapes",
           "mean_log_likelihood", "foreground_probability",
           "RHO_ALPHA_OVER_W", "RHO_GAUSSIAN", "W_PRUNE", "BLOCK"]

RHO_ALPHA_OVER_W = 0
RHO_GAUSSIAN = 1

BLOCK = 256
W_PRUNE = np.float32(1e-8)
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_NO_KEY = np.float32(-1.0)
_FG = np.uint8(255)
_BG = np.uint8(0)

# Rows of one chunk's scratch: the block's pixels (one row per channel), then
# these.  Slot numbers are stored as float32 (-1 = none) so that every lane of
# the vectorised loops is 32 bits wide: mixing int64 loop counters with int32
# slots made LLVM's selects 2-3x slower.
_D2, _BEST_KEY, _BEST_D2, _BEST_VAR, _RHO, _R_KEY, _SCALE, _BEST, _R, _RANK_VAR = range(10)
_N_ROWS = 10


def scratch_shapes(channels: int, n_chunks: int,
                   k: int) -> tuple[tuple[int, int, int], tuple[int, int]]:
    """Shapes of the float32 and float64 scratch arrays the kernels need.

    The float32 rows: the block's pixels (C), the named rows, then each
    component's key (k) as the match computed it, so classifying reuses them.
    """
    return (n_chunks, channels + _N_ROWS + k, BLOCK), (n_chunks, BLOCK)


@njit(cache=True, error_model="numpy")
def _rank_var(var, j, p0, nb, row, inv_c):
    """Component j's ranking variance over a block: its variance, or the mean of its channels'."""
    if var.shape[1] == 1:
        return var[j, 0, p0:p0 + nb]
    for i in range(nb):
        row[i] = _ZERO
    for c in range(var.shape[1]):
        vc = var[j, c, p0:p0 + nb]
        for i in range(nb):
            row[i] += vc[i]
    for i in range(nb):
        row[i] = row[i] * inv_c
    return row


@njit(inline="always", cache=True, error_model="numpy")
def _rank_variance_at(var, j, p, inv_c):
    """One pixel's ranking variance, computed as _rank_var does."""
    if var.shape[1] == 1:
        return var[j, 0, p]
    s2 = _ZERO
    for c in range(var.shape[1]):
        s2 += var[j, c, p]
    return s2 * inv_c


@njit(cache=True, error_model="numpy")
def _match_block(x, p0, nb, w, mu, var, fs, inv_c, lam2):
    """Find each pixel's highest-ranked match and least probable slot in a block.

    The block starts at pixel p0 of the flat frame ``x`` (N*C,).

    Leaves in the scratch: the pixels as float32 (rows 0..C-1), the matched
    slot (-1 for none) with its key, m2 and (spherical) variance, and the
    least probable slot (lowest key, ties to the higher slot) with its key.
    """
    k = w.shape[0]
    nc = mu.shape[1]
    diagonal = var.shape[1] > 1
    rank_row = fs[nc + _RANK_VAR]
    d2 = fs[nc + _D2]
    best_key = fs[nc + _BEST_KEY]
    best_d2 = fs[nc + _BEST_D2]
    best_var = fs[nc + _BEST_VAR]
    r_key = fs[nc + _R_KEY]
    best = fs[nc + _BEST]
    r = fs[nc + _R]
    # a flat slice with a constant stride lets LLVM vectorise the de-interleaving
    xs = x[p0 * nc:(p0 + nb) * nc]
    if nc == 3:
        x0 = fs[0]
        x1 = fs[1]
        x2 = fs[2]
        for i in range(nb):
            x0[i] = np.float32(xs[3 * i])
            x1[i] = np.float32(xs[3 * i + 1])
            x2[i] = np.float32(xs[3 * i + 2])
    else:
        x0 = fs[0]
        for i in range(nb):
            x0[i] = np.float32(xs[i])
    for i in range(nb):
        best[i] = _NO_KEY
        best_key[i] = _NO_KEY
        best_d2[i] = _ZERO
        best_var[i] = _ONE
        r[i] = _ZERO
        r_key[i] = np.float32(np.inf)
    for j in range(k):
        jf = np.float32(j)
        wj = w[j, p0:p0 + nb]
        vj = _rank_var(var, j, p0, nb, rank_row, inv_c)
        keys = fs[nc + _N_ROWS + j]
        for i in range(nb):
            d2[i] = _ZERO
        for c in range(nc):
            xc = fs[c]
            mjc = mu[j, c, p0:p0 + nb]
            if diagonal:
                vjc = var[j, c, p0:p0 + nb]
                for i in range(nb):
                    diff = xc[i] - mjc[i]
                    d2[i] += diff * diff / vjc[i]
            else:
                for i in range(nb):
                    diff = xc[i] - mjc[i]
                    d2[i] += diff * diff
        for i in range(nb):
            ww = wj[i]
            v = vj[i]
            dd = d2[i] * inv_c
            key = ww * ww / v
            keys[i] = key
            limit = lam2 if diagonal else lam2 * v
            old_best = best[i]
            old_key = best_key[i]
            old_d2 = best_d2[i]
            old_var = best_var[i]
            old_r = r[i]
            old_r_key = r_key[i]
            # key > best_key also keeps the lower slot on equal keys (rank ties)
            hit = (ww > _ZERO) & (dd < limit) & (key > old_key)
            best[i] = old_best + (_ONE if hit else _ZERO) * (jf - old_best)
            best_key[i] = key if hit else old_key
            best_d2[i] = dd if hit else old_d2
            best_var[i] = v if hit else old_var
            low = key <= old_r_key
            r[i] = old_r + (_ONE if low else _ZERO) * (jf - old_r)
            r_key[i] = key if low else old_r_key


@njit(cache=True, error_model="numpy")
def _classify_block(p0, nb, w, fs, above64, nc, bg_ratio, mask):
    """Foreground unless the match lies among the first B ranked components.

    The matched component is background exactly when the weights of the
    components ranked above it sum to at most T: then B, the first count whose
    cumulative weight exceeds T, lies past it.  The sum is taken in float64,
    where it is exact (weights are 0 or in [W_PRUNE, 1]: 52 bits suffice), so
    the decision does not depend on the order of summation.
    """
    k = w.shape[0]
    best_key = fs[nc + _BEST_KEY]
    above = above64
    best = fs[nc + _BEST]
    for i in range(nb):
        above[i] = 0.0
    for j in range(k):
        jf = np.float32(j)
        wj = w[j, p0:p0 + nb]
        keys = fs[nc + _N_ROWS + j]  # as the match computed them
        for i in range(nb):
            ww = wj[i]
            key = keys[i]
            b = best[i]
            bk = best_key[i]
            higher = (key > bk) | ((key == bk) & (jf < b))
            above[i] += np.float64(ww) if (higher & (jf != b)) else 0.0
    m = mask[p0:p0 + nb]
    t = np.float64(bg_ratio)
    for i in range(nb):
        b = best[i]
        a = above[i]
        m[i] = _FG if (b < _ZERO) | (a > t) else _BG


@njit(cache=True, error_model="numpy")
def _learn_block(p0, nb, w, mu, var, fs, alpha, w_init, var_init, var_min, var_max,
                 rho_mode):
    """Update weights, the matched component, and replace where nothing matched."""
    k = w.shape[0]
    nc = mu.shape[1]
    best_d2 = fs[nc + _BEST_D2]
    best_var = fs[nc + _BEST_VAR]
    rho = fs[nc + _RHO]
    scale = fs[nc + _SCALE]
    best = fs[nc + _BEST]
    r = fs[nc + _R]
    one_minus_a = _ONE - alpha
    # weights: decay all, add alpha to the match; an unmatched pixel's least
    # probable slot gets w_init and its weights are renormalised (scale)
    # (every value is loaded before the selects: a load inside a conditional
    # expression becomes a masked load, which is microcoded and slow on AMD)
    for i in range(nb):
        scale[i] = _ZERO
        rho[i] = _ZERO
    for j in range(k):
        jf = np.float32(j)
        wj = w[j, p0:p0 + nb]
        for i in range(nb):
            b = best[i]
            rr = r[i]
            is_best = jf == b
            decayed = one_minus_a * wj[i]
            pruned = decayed if decayed >= W_PRUNE else _ZERO
            matched_w = decayed + alpha if is_best else pruned
            new = matched_w if b >= _ZERO else (w_init if jf == rr else pruned)
            wj[i] = new
            scale[i] += new
            rho[i] += new if is_best else _ZERO  # the match's new weight, exactly
    for i in range(nb):
        total = scale[i]
        scale[i] = _ONE if best[i] >= _ZERO else _ONE / total
    for j in range(k):
        wj = w[j, p0:p0 + nb]
        for i in range(nb):
            wj[i] = wj[i] * scale[i]
    if rho_mode == RHO_ALPHA_OVER_W:
        for i in range(nb):
            wb = rho[i]
            rho[i] = alpha / (wb if best[i] >= _ZERO else _ONE)
    else:
        # the density eta(x | mu, Sigma) in C dimensions, in float64 with
        # libm's pow and exp as the reference calls them.  best_d2 holds m2, so
        # the exponent -1/2 (x-mu)' Sigma^-1 (x-mu) is -(C/2) m2.
        half_c = nc / 2.0
        a64 = np.float64(alpha)
        for i in range(nb):
            m2 = np.float64(best_d2[i])
            if var.shape[1] == 1:
                vb = np.float64(best_var[i])
                eta = (2.0 * math.pi * vb) ** (-half_c) * math.exp(-half_c * m2 / vb)
            else:
                b = max(int(best[i]), 0)
                det = 1.0
                for c in range(nc):
                    det *= 2.0 * math.pi * np.float64(var[b, c, p0 + i])
                eta = det ** -0.5 * math.exp(-half_c * m2)
            rho[i] = np.float32(min(a64 * eta, 1.0))
    diagonal = var.shape[1] > 1
    for j in range(k):
        jf = np.float32(j)
        for c in range(nc):
            xc = fs[c]
            mjc = mu[j, c, p0:p0 + nb]
            if diagonal:
                # each channel's variance follows its own squared distance
                vjc = var[j, c, p0:p0 + nb]
                for i in range(nb):
                    m = mjc[i]
                    xv = xc[i]
                    b = best[i]
                    rr = r[i]
                    v = vjc[i]
                    diff = xv - m
                    moved = m + rho[i] * diff
                    replaced = (b < _ZERO) & (jf == rr)
                    mjc[i] = moved if jf == b else (xv if replaced else m)
                    vmoved = min(max(v + rho[i] * (diff * diff - v), var_min), var_max)
                    vjc[i] = vmoved if jf == b else (var_init if replaced else v)
            else:
                for i in range(nb):
                    m = mjc[i]
                    xv = xc[i]
                    b = best[i]
                    rr = r[i]
                    moved = m + rho[i] * (xv - m)
                    mjc[i] = moved if jf == b else (xv if (b < _ZERO) & (jf == rr) else m)
        if not diagonal:
            vj = var[j, 0, p0:p0 + nb]
            for i in range(nb):
                v = vj[i]
                b = best[i]
                rr = r[i]
                moved = v + rho[i] * (best_d2[i] - v)
                moved = min(max(moved, var_min), var_max)
                vj[i] = moved if jf == b else (var_init if (b < _ZERO) & (jf == rr) else v)


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def update_classify(x, w, mu, var, mask, scratch, above64, alpha, lam2, bg_ratio, w_init,
                    var_init, var_min, var_max, rho_mode):
    """Classify one frame against the model, then learn from it (unless alpha is 0).

    Parameters
    ----------
    x : (N*C,) uint8
        The frame, flat: pixels in row-major order, channels interleaved (C is
        1 or 3, the channel count of ``mu``).
    w, mu, var : float32 state planes (see module docstring), updated in place.
    mask : (N,) uint8
        Output: 255 foreground, 0 background (classified before learning).
    scratch, above64 : float32 and float64 scratch, shapes from :func:`scratch_shapes`.
    alpha : float32
        Learning rate of this frame; 0 classifies without changing the state.
    lam2 : float32
        Match threshold lambda squared.
    bg_ratio : float32
        Background ratio T.
    w_init, var_init, var_min, var_max : float32
        Replacement weight and variance, and the variance clamp.
    rho_mode : int
        ``RHO_ALPHA_OVER_W`` or ``RHO_GAUSSIAN``.
    """
    nc = mu.shape[1]
    n = x.shape[0] // nc
    inv_c = _ONE / np.float32(nc)
    n_chunks = scratch.shape[0]
    for ch in prange(n_chunks):
        fs = scratch[ch]
        stop = (ch + 1) * n // n_chunks
        for p0 in range(ch * n // n_chunks, stop, BLOCK):
            nb = min(BLOCK, stop - p0)
            _match_block(x, p0, nb, w, mu, var, fs, inv_c, lam2)
            _classify_block(p0, nb, w, fs, above64[ch], nc, bg_ratio, mask)
            if alpha > _ZERO:  # alpha = 0: classify only, nothing changes (no replacement)
                _learn_block(p0, nb, w, mu, var, fs, alpha, w_init, var_init, var_min,
                             var_max, rho_mode)


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def background_means(w, mu, var, out):
    """Write each pixel's top-ranked mean, rounded to uint8, into ``out`` (N, C)."""
    k, nc, n = mu.shape
    inv_c = _ONE / np.float32(nc)
    for p in prange(n):
        top = 0
        top_key = _NO_KEY
        for j in range(k):
            wj = w[j, p]
            key = wj * wj / _rank_variance_at(var, j, p, inv_c)
            if key > top_key:
                top = j
                top_key = key
        for c in range(nc):
            v = mu[top, c, p] + _HALF
            out[p, c] = np.uint8(min(max(v, _ZERO), np.float32(255.0)))


@njit(inline="always", cache=True, error_model="numpy")
def _log_density(x, p, nc, mu, var, j):
    """ln N(x_p | mu_j, Sigma_j), float64, for the spherical or diagonal model."""
    s = 0.0  # sum over channels of ln(2 pi var) and d^2 / var
    for c in range(nc):
        v = np.float64(var[j, c if var.shape[1] > 1 else 0, p])
        d = np.float64(x[p * nc + c]) - np.float64(mu[j, c, p])
        s += math.log(2.0 * math.pi * v) + d * d / v
    return -0.5 * s


@njit(cache=True, nogil=True, error_model="numpy")
def mean_log_likelihood(x, w, mu, var, outlier, stride):
    """Mean of ln p(x) over every ``stride``-th pixel (float64).

    ``p(x) = (1 - outlier) sum_j w_j N(x | mu_j, Sigma_j) + outlier / 256**C``:
    the uniform term keeps one unexplained pixel from sending the mean to
    minus infinity.
    """
    k, nc, n = mu.shape
    count = (n + stride - 1) // stride
    uniform = outlier * 256.0 ** -nc
    total = 0.0
    for q in range(count):  # a few thousand pixels: threads would cost more than they save
        p = q * stride
        mix = 0.0
        for j in range(k):
            wj = np.float64(w[j, p])
            if wj > 0.0:
                mix += wj * math.exp(_log_density(x, p, nc, mu, var, j))
        total += math.log((1.0 - outlier) * mix + uniform)
    return total / count


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def foreground_probability(x, w, mu, var, bg_ratio, outlier, out):
    """Posterior that each pixel is not explained by the background components.

    ``1 - (1 - outlier) sum_{j in B} w_j N_j(x) / p(x)`` with B the background
    components (those with at most T of weight ranked above them) and p(x) the
    mixture with its uniform outlier term; written to ``out`` (N,) float32.
    """
    k, nc, n = mu.shape
    uniform = outlier * 256.0 ** -nc
    t = np.float64(bg_ratio)
    inv_c = _ONE / np.float32(nc)
    for p in prange(n):
        mix = 0.0
        background = 0.0
        for j in range(k):
            wj = w[j, p]
            if wj <= _ZERO:
                continue
            dens = np.float64(wj) * math.exp(_log_density(x, p, nc, mu, var, j))
            mix += dens
            # j is background when the weight ranked above it is at most T
            key_j = wj * wj / _rank_variance_at(var, j, p, inv_c)
            above = 0.0
            for i in range(k):
                wi = w[i, p]
                key_i = wi * wi / _rank_variance_at(var, i, p, inv_c)
                if i != j and (key_i > key_j or (key_i == key_j and i < j)):
                    above += np.float64(wi)
            if above <= t:
                background += dens
        total = (1.0 - outlier) * mix + uniform
        out[p] = np.float32(1.0 - (1.0 - outlier) * background / total)
