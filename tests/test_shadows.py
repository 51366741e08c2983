"""Moving cast shadows: the kernel against the plain reference, and what it must do."""

import numpy as np
import pytest
from naive import naive_shadows  # tests/naive.py, the plain reference

from bgsub import shadows
from bgsub.config import ModelConfig

DEFAULTS = ModelConfig()


def random_case(rng, n, k, diagonal):
    """A post-update state, a frame and a mask built to reach every branch of the test.

    Each pixel's value is one of: a darkened copy of a random component (the
    ratio spread across the band's ends: too dark, in, brighter), the component
    itself (it matches), or a random colour.  Means are coloured, grey, or
    black; weights include empty slots and exact ties (so rank ties are
    decided by slot); variances span the clamp.  The mask has whole blocks of
    foreground (tested in place) and scattered pixels (gathered).
    """
    w = rng.dirichlet(np.ones(k), n).T.astype(np.float32)
    w[rng.random((k, n)) < 0.15] = 0.0
    if k > 1:
        tie = rng.random(n) < 0.2
        w[1, tie] = w[0, tie]
    mu = rng.uniform(0, 255, (k, 3, n)).astype(np.float32)
    grey = rng.random((k, n)) < 0.15
    mu[:, 1][grey] = mu[:, 0][grey]
    mu[:, 2][grey] = mu[:, 0][grey]
    mu[:, :, rng.random(n) < 0.02] = 0.0  # black means: no darker copy
    var = rng.uniform(16, 400, (k, 3 if diagonal else 1, n)).astype(np.float32)
    if k > 1:
        var[1, :, tie] = var[0, :, tie]
    pick = rng.integers(0, k, n)
    chosen = mu[pick, :, np.arange(n)]  # (n, 3)
    ratio = rng.uniform(0.35, 1.1, n)[:, None]
    x = chosen * ratio + rng.normal(0, 2, (n, 3))
    kind = rng.random(n)
    x[kind < 0.1] = chosen[kind < 0.1]  # the component itself: it matches
    wild = kind > 0.85
    x[wild] = rng.uniform(0, 255, (int(wild.sum()), 3))
    x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    mask = np.where(rng.random(n) < 0.3, 255, 0).astype(np.uint8)
    for start in range(0, n - 600, 1500):  # runs of foreground that fill whole blocks
        mask[start:start + 600] = 255
    mask[rng.random(n) < 0.02] = 127  # not foreground: must stay as it is
    return x, w, mu, var, mask


def run_kernel(x, w, mu, var, mask, n_chunks=3, **params):
    cfg = ModelConfig(**params)
    out = mask.copy()
    scratch = shadows.allocate_scratch(n_chunks)
    shadows.mark_shadows(x.reshape(-1), w, mu, var, out, scratch,
                         np.float32(cfg.background_ratio), np.float32(cfg.match_threshold ** 2),
                         np.float32(cfg.shadow_ratio_min), np.float32(cfg.shadow_threshold ** 2),
                         np.uint8(cfg.shadow_value))
    return out


def run_reference(x, w, mu, var, mask, **params):
    cfg = ModelConfig(**params)
    return naive_shadows(x, w, mu, var, mask, np.float32(cfg.background_ratio),
                         cfg.match_threshold, cfg.shadow_ratio_min, cfg.shadow_threshold,
                         cfg.shadow_value)


@pytest.mark.parametrize("covariance", ["spherical", "diagonal"])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_kernel_matches_reference(k, covariance):
    rng = np.random.default_rng(100 + k)
    n = 7000  # blocks of both kinds in every chunk, and a partial last block
    x, w, mu, var, mask = random_case(rng, n, k, covariance == "diagonal")
    for params in ({}, {"background_ratio": 0.9, "shadow_value": 0, "shadow_ratio_min": 0.4,
                        "shadow_threshold": 1.5, "match_threshold": 2.0}):
        got = run_kernel(x, w, mu, var, mask, **params)
        expected = run_reference(x, w, mu, var, mask, **params)
        np.testing.assert_array_equal(got, expected)
        value = params.get("shadow_value", DEFAULTS.shadow_value)
        changed = got != mask
        assert np.all(mask[changed] == 255) and np.all(got[changed] == value)
        if k > 1:
            assert changed.sum() > 50, changed.sum()


@pytest.mark.parametrize("covariance", ["spherical", "diagonal"])
def test_reference_cases_discriminate_every_condition(covariance):
    """Dropping any one condition changes the reference's answer on these cases.

    So a kernel that forgot one (ignored the band's floor, the colour test,
    the grey check, the match exclusion or the rank) would fail the
    comparison above on the same kind of data.
    """
    rng = np.random.default_rng(7)
    x, w, mu, var, mask = random_case(rng, 4000, 3, covariance == "diagonal")
    base = run_reference(x, w, mu, var, mask)
    loosened = [
        {"shadow_ratio_min": 1e-6},  # the band's floor
        {"shadow_threshold": 1e3},  # the colour test (and the grey check goes the other way)
        {"match_threshold": 1e-3},  # excluding components that match x
        {"background_ratio": 0.999},  # the rank: more components count as background
    ]
    for params in loosened:
        assert not np.array_equal(run_reference(x, w, mu, var, mask, **params), base), params
    # the grey check alone: the same data with every mean made grey has no shadows
    grey_mu = np.repeat(mu.mean(axis=1, keepdims=True), 3, axis=1).astype(np.float32)
    assert np.array_equal(run_reference(x, w, grey_mu, var, mask), mask)
    assert np.array_equal(run_kernel(x, w, grey_mu, var, mask), mask)


def test_kernel_leaves_grey_frames_alone():
    rng = np.random.default_rng(3)
    n, k = 1000, 3
    x = rng.integers(0, 256, (n, 1)).astype(np.uint8)
    w = np.full((k, n), 1 / 3, np.float32)
    mu = (x.T[None] / rng.uniform(0.5, 1.0, (k, 1, n))).astype(np.float32)  # x darker by 0.5-1
    var = np.full((k, 1, n), 16.0, np.float32)
    mask = np.full(n, 255, np.uint8)
    np.testing.assert_array_equal(run_kernel(x, w, mu, var, mask), mask)
    np.testing.assert_array_equal(run_reference(x, w, mu, var, mask), mask)
