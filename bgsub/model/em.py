"""Batch EM for many independent Gaussian mixtures: one per pixel.

:func:`fit_mixtures` fits a k-component mixture to each of N sample sets (a
pixel's values over S frames) by Expectation-Maximization:

* **initialise** by k-means (deterministic farthest-point seeds refined by
  Lloyd iterations: weights, means and variances from the clusters) or at
  random (means at random samples of the set, every variance the set's
  variance, equal weights);
* **E-step**: responsibilities ``r_sk = w_k N(x_s | mu_k, Sigma_k) / sum_j
  w_j N(x_s | mu_j, Sigma_j)``, in log space;
* **M-step**: ``w_k = sum_s r_sk / S``, ``mu_k`` the responsibility-weighted
  mean, ``sigma_k^2`` the weighted mean squared distance per channel
  (spherical: over all channels; diagonal: each channel apart), clamped to
  ``[var_min, var_max]``.  A floor keeps a constant pixel from collapsing to a
  zero variance; clamping is the exact maximiser of the constrained problem,
  so the log-likelihood still never decreases;
* **stop** when a pixel's mean log-likelihood gains less than ``tol`` or after
  ``max_iter`` iterations.

Each pixel runs its own EM; they run in parallel over chunks of pixels, each
chunk with preallocated scratch.  Arithmetic is float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

__all__ = ["EMResult", "fit_mixtures"]

INIT_KMEANS = 0
INIT_RANDOM = 1
_LLOYD_ITERATIONS = 10
_EMPTY = 1e-10  # a component with less total responsibility than this is dropped


@dataclass
class EMResult:
    """What :func:`fit_mixtures` returns.

    Attributes
    ----------
    weights : ndarray
        float32 (N, k).
    means : ndarray
        float32 (N, k, C).
    variances : ndarray
        float32 (N, k, V), V = 1 (spherical) or C (diagonal).
    responsibilities : ndarray or None
        float32 (N, S, k) for the final parameters, if asked for.
    log_likelihood : ndarray
        float64 (iterations + 1,): the mean per-sample log-likelihood over all
        sets after each iteration (entry 0: the initialisation); a set that
        converged early carries its final value forward.
    iterations : int
        EM iterations of the slowest set.
    """

    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    responsibilities: np.ndarray | None
    log_likelihood: np.ndarray
    iterations: int


def fit_mixtures(samples: np.ndarray, k: int, covariance: str = "spherical",
                 init: str = "kmeans", max_iter: int = 100, tol: float = 1e-4,
                 var_min: float = 1.0, var_max: float = 1e6, seed: int = 0,
                 return_responsibilities: bool = True, threads: int | None = None) -> EMResult:
    """Fit a k-component Gaussian mixture to each of N independent sample sets.

    Parameters
    ----------
    samples : ndarray
        (N, S, C) or (N, S): N sets of S samples with C channels (uint8 or
        float).
    k : int
        Components per set.
    covariance : {"spherical", "diagonal"}
        sigma^2 I, or a variance per channel.
    init : {"kmeans", "random"}
        Initialisation (see the module docstring).
    max_iter : int
        Most EM iterations per set.
    tol : float
        Stop a set when its mean log-likelihood gains less than this.
    var_min, var_max : float
        Variance clamp.
    seed : int
        Seed of the random initialisation.
    return_responsibilities : bool
        Also return the (N, S, k) responsibilities (memory: 4 N S k bytes).
    threads : int, optional
        Threads of Numba's pool to use (default: the calling thread's Numba
        setting); 1 fits on the calling thread alone and never starts the
        pool, whatever threading layer Numba has.  The fit does not depend
        on it.

    Returns
    -------
    EMResult
    """
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    if samples.ndim != 3 or samples.shape[1] < 1:
        raise ValueError(f"samples must be (N, S) or (N, S, C), got shape {samples.shape}")
    if covariance not in ("spherical", "diagonal"):
        raise ValueError(f"covariance must be 'spherical' or 'diagonal', got {covariance!r}")
    if init not in ("kmeans", "random"):
        raise ValueError(f"init must be 'kmeans' or 'random', got {init!r}")
    if k < 1 or max_iter < 0 or not 0 < var_min <= var_max:
        raise ValueError("need k >= 1, max_iter >= 0 and 0 < var_min <= var_max")
    if samples.dtype != np.uint8:
        samples = samples.astype(np.float64)
    samples = np.ascontiguousarray(samples)
    n, s, c = samples.shape
    v = c if covariance == "diagonal" else 1
    weights = np.zeros((n, k), np.float32)
    means = np.zeros((n, k, c), np.float32)
    variances = np.zeros((n, k, v), np.float32)
    resp = np.zeros((n, s, k) if return_responsibilities else (0, 0, 0), np.float32)
    chunks = max(1, min(4 * numba.config.NUMBA_NUM_THREADS, n))  # the fit does not depend on it
    scratch = np.zeros((chunks, s, k + 1), np.float64)
    params = np.zeros((chunks, k, 1 + c + v), np.float64)
    aux = np.zeros((chunks, k, 1 + v), np.float64)
    trace = np.zeros((chunks, max_iter + 1), np.float64)
    iterations = np.zeros(chunks, np.int64)
    args = (samples, k, v, INIT_KMEANS if init == "kmeans" else INIT_RANDOM, max_iter, tol,
            var_min, var_max, seed, weights, means, variances, resp, scratch, params, aux, trace,
            iterations)
    if threads == 1:
        _fit_serial(*args)
    elif threads is None:
        _fit(*args)
    else:
        # Numba's parallel loops take their thread count per calling thread
        previous = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            _fit(*args)
        finally:
            numba.set_num_threads(previous)
    used = int(iterations.max())
    return EMResult(weights, means, variances, resp if return_responsibilities else None,
                    trace.sum(axis=0)[:used + 1] / n, used)


@njit(inline="always", cache=True)
def _hash(a, b, c):
    """A counter-based random number in [0, 1): same draw whatever the thread."""
    z = (a * 0x9E3779B97F4A7C15 + b * 0xBF58476D1CE4E5B9 + c * 0x94D049BB133111EB
         + 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z = z ^ (z >> 31)
    return (z >> 11) / 9007199254740992.0


@njit(cache=True, error_model="numpy")
def _e_step(x, p, par, r, aux, k, c, v):
    """Responsibilities into r[s, :k]; returns the mean log-likelihood per sample.

    aux (k, 1 + V) receives each component's ln w - ln|2 pi Sigma| / 2 and its
    inverse variances, computed once instead of once per sample.
    """
    s_count = x.shape[1]
    for j in range(k):
        w = par[j, 0]
        if w > 0.0:
            log_det = 0.0
            for ch in range(c):
                log_det += math.log(2.0 * math.pi * par[j, 1 + c + (ch if v > 1 else 0)])
            aux[j, 0] = math.log(w) - 0.5 * log_det
        else:
            aux[j, 0] = -math.inf
        for vi in range(v):
            aux[j, 1 + vi] = 1.0 / par[j, 1 + c + vi]
    total = 0.0
    for si in range(s_count):
        peak = -math.inf
        for j in range(k):
            lp = aux[j, 0]
            if lp > -math.inf:
                d2 = 0.0
                for ch in range(c):
                    d = np.float64(x[p, si, ch]) - par[j, 1 + ch]
                    d2 += d * d * aux[j, 1 + (ch if v > 1 else 0)]
                lp -= 0.5 * d2
            r[si, j] = lp
            peak = max(peak, lp)
        acc = 0.0
        for j in range(k):
            acc += math.exp(r[si, j] - peak)
        log_norm = peak + math.log(acc)
        for j in range(k):
            r[si, j] = math.exp(r[si, j] - log_norm)
        total += log_norm
    return total / s_count


@njit(cache=True, error_model="numpy")
def _m_step(x, p, par, r, k, c, v, var_min, var_max):
    s_count = x.shape[1]
    for j in range(k):
        nk = 0.0
        for si in range(s_count):
            nk += r[si, j]
        if nk < _EMPTY:
            par[j, 0] = 0.0  # an empty component: dropped, its mean and variance kept
            continue
        par[j, 0] = nk / s_count
        for ch in range(c):
            acc = 0.0
            for si in range(s_count):
                acc += r[si, j] * np.float64(x[p, si, ch])
            par[j, 1 + ch] = acc / nk
        for vi in range(v):
            acc = 0.0
            for si in range(s_count):
                d2 = 0.0
                for ch in range(c):
                    if v == 1 or ch == vi:
                        d = np.float64(x[p, si, ch]) - par[j, 1 + ch]
                        d2 += d * d
                acc += r[si, j] * d2
            var = acc / nk / (c if v == 1 else 1)
            par[j, 1 + c + vi] = min(max(var, var_min), var_max)


@njit(cache=True, error_model="numpy")
def _initialise(x, p, par, labels, k, c, v, init, var_min, var_max, seed):
    """Set par for pixel p by k-means or at random; labels is S-long scratch."""
    s_count = x.shape[1]
    total_var = 0.0  # the set's variance, averaged over channels
    for ch in range(c):
        mean = 0.0
        for si in range(s_count):
            mean += np.float64(x[p, si, ch])
        mean /= s_count
        acc = 0.0
        for si in range(s_count):
            d = np.float64(x[p, si, ch]) - mean
            acc += d * d
        total_var += acc / s_count / c
    total_var = min(max(total_var, var_min), var_max)
    if init == INIT_RANDOM:
        for j in range(k):
            pick = min(int(_hash(seed, p, j) * s_count), s_count - 1)
            par[j, 0] = 1.0 / k
            for ch in range(c):
                par[j, 1 + ch] = np.float64(x[p, pick, ch])
            for vi in range(v):
                par[j, 1 + c + vi] = total_var
        return
    # k-means: farthest-point seeds (the first sample, then repeatedly the
    # sample farthest from every seed so far), then Lloyd iterations
    for ch in range(c):
        par[0, 1 + ch] = np.float64(x[p, 0, ch])
    for j in range(1, k):
        far, far_d = 0, -1.0
        for si in range(s_count):
            nearest = math.inf
            for q in range(j):
                d2 = 0.0
                for ch in range(c):
                    d = np.float64(x[p, si, ch]) - par[q, 1 + ch]
                    d2 += d * d
                nearest = min(nearest, d2)
            if nearest > far_d:
                far, far_d = si, nearest
        for ch in range(c):
            par[j, 1 + ch] = np.float64(x[p, far, ch])
    for _ in range(_LLOYD_ITERATIONS):
        for si in range(s_count):
            best, best_d = 0, math.inf
            for j in range(k):
                d2 = 0.0
                for ch in range(c):
                    d = np.float64(x[p, si, ch]) - par[j, 1 + ch]
                    d2 += d * d
                if d2 < best_d:
                    best, best_d = j, d2
            labels[si] = best
        for j in range(k):
            count = 0
            for si in range(s_count):
                count += labels[si] == j
            if count == 0:
                continue  # an empty cluster keeps its centre
            for ch in range(c):
                acc = 0.0
                for si in range(s_count):
                    if labels[si] == j:
                        acc += np.float64(x[p, si, ch])
                par[j, 1 + ch] = acc / count
    for j in range(k):
        count = 0
        for si in range(s_count):
            count += labels[si] == j
        par[j, 0] = count / s_count
        for vi in range(v):
            acc = 0.0
            for si in range(s_count):
                if labels[si] == j:
                    for ch in range(c):
                        if v == 1 or ch == vi:
                            d = np.float64(x[p, si, ch]) - par[j, 1 + ch]
                            acc += d * d
            var = acc / max(count, 1) / (c if v == 1 else 1)
            par[j, 1 + c + vi] = min(max(var, var_min), var_max) if count > 1 else total_var


@njit(cache=True, nogil=True, error_model="numpy")
def _fit_chunk(ch, x, k, v, init, max_iter, tol, var_min, var_max, seed, weights, means,
               variances, resp, scratch, params, aux, trace, iterations):
    """Fit the pixels of chunk *ch* (a share of the N sets), with that chunk's scratch."""
    n, s_count, c = x.shape
    chunks = scratch.shape[0]
    r = scratch[ch]
    par = params[ch]
    aux_ch = aux[ch]
    labels = np.empty(s_count, np.int64)  # once per chunk, not per pixel
    for p in range((ch * n) // chunks, ((ch + 1) * n) // chunks):
        _initialise(x, p, par, labels, k, c, v, init, var_min, var_max, seed)
        previous = -math.inf
        it = 0
        while True:
            ll = _e_step(x, p, par, r, aux_ch, k, c, v)
            trace[ch, it] += ll
            if it == max_iter or (it > 0 and ll - previous < tol):
                break
            _m_step(x, p, par, r, k, c, v, var_min, var_max)
            previous = ll
            it += 1
        for later in range(it + 1, max_iter + 1):
            trace[ch, later] += ll  # converged: its value carries forward
        iterations[ch] = max(iterations[ch], it)
        for j in range(k):
            weights[p, j] = par[j, 0]
            for cc in range(c):
                means[p, j, cc] = par[j, 1 + cc]
            for vi in range(v):
                variances[p, j, vi] = par[j, 1 + c + vi]
        if resp.shape[0] > 0:
            for si in range(s_count):
                for j in range(k):
                    resp[p, si, j] = r[si, j]


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _fit(x, k, v, init, max_iter, tol, var_min, var_max, seed, weights, means, variances,
         resp, scratch, params, aux, trace, iterations):
    for ch in prange(scratch.shape[0]):
        _fit_chunk(ch, x, k, v, init, max_iter, tol, var_min, var_max, seed, weights, means,
                   variances, resp, scratch, params, aux, trace, iterations)


@njit(cache=True, nogil=True, error_model="numpy")
def _fit_serial(x, k, v, init, max_iter, tol, var_min, var_max, seed, weights, means,
                variances, resp, scratch, params, aux, trace, iterations):
    """The same, on the calling thread alone: Numba's thread pool is never started."""
    for ch in range(scratch.shape[0]):
        _fit_chunk(ch, x, k, v, init, max_iter, tol, var_min, var_max, seed, weights, means,
                   variances, resp, scratch, params, aux, trace, iterations)
