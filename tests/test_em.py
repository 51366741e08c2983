"""Batch EM: against a plain reference, monotone, recovering known parameters."""

import numpy as np
import pytest

from bgsub.model.em import fit_mixtures

from naive import naive_em


def two_clusters(rng, n, s, sds=((4.0, 4.0, 4.0), (8.0, 8.0, 8.0)), weight=0.3):
    means = np.array([[50, 60, 70], [180, 170, 160]], float)
    comp = (rng.random((n, s)) < weight).astype(int)
    return means[comp] + rng.normal(0, 1, (n, s, 3)) * np.array(sds)[comp], comp


@pytest.mark.parametrize("covariance", ["spherical", "diagonal"])
@pytest.mark.parametrize("init", ["kmeans", "random"])
def test_em_matches_plain_reference(covariance, init):
    rng = np.random.default_rng(1)
    x = rng.normal(100, 30, (6, 40, 3))
    x[:, ::3] += 60  # some structure to fit
    start = fit_mixtures(x, 3, covariance, init, max_iter=0, var_min=4.0, seed=5)
    fitted = fit_mixtures(x, 3, covariance, init, max_iter=12, tol=-np.inf, var_min=4.0,
                          seed=5)
    assert fitted.iterations == 12
    for p in range(x.shape[0]):
        w, mu, var, r, trace = naive_em(x[p], start.weights[p], start.means[p],
                                        start.variances[p], 12, 4.0, 1e6)
        np.testing.assert_allclose(fitted.weights[p], w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fitted.means[p], mu, rtol=1e-5)
        np.testing.assert_allclose(fitted.variances[p], var, rtol=1e-5)
        np.testing.assert_allclose(fitted.responsibilities[p], r, rtol=1e-4, atol=1e-6)
    # the reported trace is the mean over sets of each set's trace
    traces = [naive_em(x[p], start.weights[p], start.means[p], start.variances[p], 12, 4.0,
                       1e6)[4] for p in range(x.shape[0])]
    # (the reference starts from the float32-rounded initial parameters)
    np.testing.assert_allclose(fitted.log_likelihood, np.mean(traces, axis=0), rtol=1e-7)


@pytest.mark.parametrize("covariance", ["spherical", "diagonal"])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_log_likelihood_never_decreases(covariance, k):
    rng = np.random.default_rng(k)
    x = rng.integers(0, 256, (200, 30, 3)).astype(np.uint8)  # unstructured data
    for init in ("kmeans", "random"):
        res = fit_mixtures(x, k, covariance, init, max_iter=60, tol=-np.inf, var_min=4.0)
        assert np.all(np.diff(res.log_likelihood) >= -1e-9 * np.abs(res.log_likelihood[1:]))
        for p in range(0, 200, 50):  # each set alone, too
            alone = fit_mixtures(x[p:p + 1], k, covariance, init, max_iter=60, tol=-np.inf,
                                 var_min=4.0)
            assert np.all(np.diff(alone.log_likelihood) >= -1e-9 * np.abs(
                alone.log_likelihood[1:]))


@pytest.mark.parametrize("covariance,sds", [
    ("spherical", ((4.0, 4.0, 4.0), (8.0, 8.0, 8.0))),
    ("diagonal", ((2.0, 6.0, 12.0), (10.0, 3.0, 5.0))),
])
@pytest.mark.parametrize("init", ["kmeans", "random"])
def test_em_recovers_known_parameters(covariance, sds, init):
    rng = np.random.default_rng(2)
    x, comp = two_clusters(rng, 300, 300, sds)
    drawn = comp.mean(axis=1)  # each set's actual share of the bright cluster
    res = fit_mixtures(x, 2, covariance, init, max_iter=300, tol=1e-7, var_min=1.0)
    order = np.argsort(res.means[:, :, 0], axis=1)  # the dark component first
    w = np.take_along_axis(res.weights, order, 1)
    mu = np.take_along_axis(res.means, order[..., None], 1)
    sd = np.sqrt(np.take_along_axis(res.variances, order[..., None], 1))
    want_sd = np.array(sds) if covariance == "diagonal" else np.array(sds)[:, :1]
    ok = ((np.abs(w[:, 1] - drawn) < 0.02)
          & (np.abs(mu - [[50, 60, 70], [180, 170, 160]]) < 3).all((1, 2))
          & (np.abs(sd / want_sd - 1) < 0.25).all((1, 2)))
    # every set from k-means; random starts may stop on a slow plateau now and then
    assert ok.mean() >= (1.0 if init == "kmeans" else 0.95), ok.mean()
    np.testing.assert_allclose(res.responsibilities.sum(axis=2), 1.0, atol=1e-5)


def test_variance_floor_keeps_a_constant_pixel_finite():
    x = np.full((3, 20, 3), 128, np.uint8)
    res = fit_mixtures(x, 3, "diagonal", "kmeans", var_min=9.0)
    assert np.all(np.isfinite(res.log_likelihood))
    assert np.all(res.variances >= 9.0)
    assert np.allclose(res.weights.sum(axis=1), 1.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="covariance"):
        fit_mixtures(np.zeros((2, 3)), 2, covariance="full")
    with pytest.raises(ValueError, match="init"):
        fit_mixtures(np.zeros((2, 3)), 2, init="kmeans++")
    with pytest.raises(ValueError, match="shape"):
        fit_mixtures(np.zeros(3), 2)
