"""Read-only queries of the model: background means, log-likelihood, soft probability.

Each works on the flat state of :mod:`bgsub.model.kernels.layout`, in float32 (the
densities in float64), in the same operation order as ``tests/naive.py``.
The per-pixel ones take a range of tiles, shared out by a tile runner
(:mod:`bgsub.model.tiles`); the log-likelihood reads a small subsample, cell by cell.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .spin import back_to_python, first_chunk, next_chunk, out_of_python
from .layout import BLOCK, HALF, Q_MAX, W_ONE, ZERO, dec_mu, dec_var, dec_w, index

__all__ = ["background_means", "cell_log_likelihood", "foreground_probability",
           "foreground_probability_at"]


@njit(cache=True, error_model="numpy")
def _at(state, p, planes, plane):
    return state[index(p, planes, plane)]


@njit(cache=True, error_model="numpy")
def _var_at(state, p, k, nc, nv, j, c, var_min, step):
    planes = k * (1 + nc + nv)
    return dec_var(_at(state, p, planes, k + k * nc + j * nv + (c if nv > 1 else 0)),
                    var_min, step)


@njit(cache=True, nogil=True, error_model="numpy")
def background_means(state, k, nc, nv, var_min, var_max, out, t_start, t_stop):
    """Write each pixel's top-ranked mean, rounded to uint8, into ``out`` (N, C).

    For the pixels of tiles ``t_start .. t_stop - 1``: a tile runner
    (:mod:`bgsub.model.tiles`) shares the tiles out.
    """
    n = out.shape[0]
    planes = k * (1 + nc + nv)
    for p in range(t_start * BLOCK, min(t_stop * BLOCK, n)):
        for c in range(nc):  # slot 0 ranks first
            v = dec_mu(_at(state, p, planes, k + c)) + HALF
            out[p, c] = np.uint8(min(max(v, ZERO), np.float32(255.0)))


@njit(cache=True, error_model="numpy")
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
        d = np.float64(x[p * nc + c]) - np.float64(dec_mu(_at(state, p, planes,
                                                               k + j * nc + c)))
        det *= 2.0 * math.pi * v
        s += d * d / v
    return math.exp(-0.5 * s) / math.sqrt(det)


@njit(cache=True, nogil=True, error_model="numpy")
def cell_log_likelihood(x, state, k, nc, nv, var_min, var_max, outlier, h, w, grid, rows, run,
                        cell_sum, cell_count, ctl, threads, t_start, t_stop):
    """Sums of ln p(x) (float64) per cell of a grid over the frame, on a few runs per cell.

    Cell (i, j) of the ``grid`` x ``grid`` partition (fewer cells when the
    frame has fewer rows or columns) spans rows ``i h / G .. (i + 1) h / G``
    and columns ``j w / G .. (j + 1) w / G`` (integer division).  Its samples
    are ``rows`` runs of ``run`` pixels, on rows ``y0 + (r + 1) ch / (rows +
    1)`` (ch the cell's height), starting ``run / 2`` left of the cell's
    centre (clipped to the cell).  ``cell_sum`` and ``cell_count`` (grid *
    grid,) get each cell's sum and sample count, row-major.  Runs rather than
    single pixels: a run shares its cache lines in every plane.  The grid's
    rows are the "tiles" of a scheduled kernel of a tile runner
    (:mod:`bgsub.model.tiles`; ``ctl, threads, t_start, t_stop`` as for
    :func:`bgsub.model.kernels.frame.frame_kernel`): each cell's sum comes from
    one thread, in one order.
    """
    planes = k * (1 + nc + nv)
    step = (var_max - var_min) / Q_MAX
    uniform = outlier * 256.0 ** -nc
    gy = min(grid, h)
    gx = min(grid, w)
    out_of_python(ctl, threads)  # (see bgsub.model.kernels.spin.enter_python)
    row_start, row_stop = first_chunk(ctl, t_start, t_stop, threads)
    while row_start < row_stop:
        _cell_rows(x, state, k, nc, nv, var_min, step, outlier, uniform, planes, h, w, grid,
                   rows, run, cell_sum, cell_count, gy, gx, row_start, row_stop)
        row_start, row_stop = next_chunk(ctl, t_start, t_stop, threads, row_start, row_stop)
    back_to_python(ctl, threads)


@njit(cache=True, error_model="numpy")
def _cell_rows(x, state, k, nc, nv, var_min, step, outlier, uniform, planes, h, w, grid, rows,
               run, cell_sum, cell_count, gy, gx, row_start, row_stop):
    """The cells of the grid's rows ``row_start .. row_stop - 1`` (see cell_log_likelihood)."""
    for c in range(row_start * grid, row_stop * grid):
        cell_sum[c] = 0.0
        cell_count[c] = 0
    for i in range(row_start, min(row_stop, gy)):
        y0 = i * h // gy
        y1 = (i + 1) * h // gy
        for j in range(gx):
            x0 = j * w // gx
            x1 = (j + 1) * w // gx
            xs = max(x0, (x0 + x1) // 2 - run // 2)
            xe = min(x1, xs + run)
            for r in range(rows):
                y = y0 + (r + 1) * (y1 - y0) // (rows + 1)
                for xx in range(xs, xe):
                    p = y * w + xx
                    mix = 0.0
                    for jj in range(k):
                        wj = np.float64(dec_w(_at(state, p, planes, jj)))
                        if wj > 0.0:
                            mix += wj * _density(x, p, state, k, nc, nv, jj, var_min, step)
                    cell_sum[i * grid + j] += math.log((1.0 - outlier) * mix + uniform)
                    cell_count[i * grid + j] += 1


@njit(cache=True, error_model="numpy")
def _probability(x, p, state, k, nc, nv, planes, var_min, step, t_q, outlier, uniform):
    """Pixel *p*'s posterior of not being background (see foreground_probability)."""
    mix = 0.0
    background = 0.0
    above = 0.0  # the weight codes ranked above slot j (the slots are in rank order)
    for j in range(k):
        qj = _at(state, p, planes, j)
        wj = dec_w(qj)
        if wj > ZERO:
            dens = np.float64(wj) * _density(x, p, state, k, nc, nv, j, var_min, step)
            mix += dens
            if above <= t_q:  # j is background
                background += dens
        above += np.float64(qj)
    total = (1.0 - outlier) * mix + uniform
    return np.float32(1.0 - (1.0 - outlier) * background / total)


@njit(cache=True, nogil=True, error_model="numpy")
def foreground_probability(x, state, k, nc, nv, var_min, var_max, bg_ratio, outlier, out,
                           t_start, t_stop):
    """Posterior that each pixel is not explained by the background components.

    ``1 - (1 - outlier) sum_{j in B} w_j N_j(x) / p(x)`` with B the background
    components (those with at most T of weight ranked above them) and p(x) the
    mixture with its uniform outlier term; written to ``out`` (N,) float32 for
    the pixels of tiles ``t_start .. t_stop - 1`` (see :mod:`bgsub.model.tiles`).
    """
    n = out.shape[0]
    planes = k * (1 + nc + nv)
    step = (var_max - var_min) / Q_MAX
    uniform = outlier * 256.0 ** -nc
    t_q = np.float64(bg_ratio * W_ONE)
    for p in range(t_start * BLOCK, min(t_stop * BLOCK, n)):
        out[p] = _probability(x, p, state, k, nc, nv, planes, var_min, step, t_q, outlier,
                              uniform)


@njit(cache=True, nogil=True, error_model="numpy")
def foreground_probability_at(x, state, k, nc, nv, var_min, var_max, bg_ratio, outlier,
                              pixels, out):
    """:func:`foreground_probability` of the pixels ``pixels`` (flat indices) only.

    ``out[i]`` gets pixel ``pixels[i]``'s posterior, the same float32 the whole
    frame's query gives it.  One thread: a scan asks for a few hundred
    pixels of a frame with motion, not for the frame.
    """
    planes = k * (1 + nc + nv)
    step = (var_max - var_min) / Q_MAX
    uniform = outlier * 256.0 ** -nc
    t_q = np.float64(bg_ratio * W_ONE)
    for i in range(pixels.shape[0]):
        out[i] = _probability(x, pixels[i], state, k, nc, nv, planes, var_min, step, t_q,
                              outlier, uniform)
