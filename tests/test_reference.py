"""The Numba kernels against the plain reference in tests/naive.py."""

import numpy as np
import pytest

from bgsub import MixtureMasker
from bgsub.synthetic import SceneSpec, render

from naive import NaiveMixture

# 23 x 29 = 667 pixels: several 256-pixel blocks and a partial last one
H, W = 23, 29
# explicit rates, the default warm-up schedule (None) and classify-only (0)
RATES = [None, None, 0.05, 0.0, None, 0.3, 0.01, 1.0]


def multimodal_frames(rng, n_frames, channels, modes=3, noise=4.0, outliers=0.1):
    """Each pixel hops between a few random values, with noise and uniform outliers.

    Exercises matching, misses (replacement), and weights that cross each other
    (re-ranking).
    """
    centres = rng.integers(0, 256, (modes, H, W, channels))
    for _ in range(n_frames):
        pick = rng.integers(0, modes, (H, W))
        frame = np.take_along_axis(centres, pick[None, :, :, None], 0)[0]
        frame = frame + rng.normal(0, noise, (H, W, channels))
        wild = rng.random((H, W)) < outliers
        frame[wild] = rng.integers(0, 256, (int(wild.sum()), channels))
        frame = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        yield frame[:, :, 0] if channels == 1 else frame


def run_both(k, channels, rho, seed, n_frames=40, **params):
    rng = np.random.default_rng(seed)
    fast = MixtureMasker(k=k, rho=rho, **params)
    slow = NaiveMixture(k=k, rho=rho, **params)
    events = {"reranked": 0}
    previous_top = None
    for t, frame in enumerate(multimodal_frames(rng, n_frames, channels)):
        rate = RATES[t % len(RATES)]
        expected = slow.apply(frame, learning_rate=rate)
        got = fast.apply(frame, learning_rate=rate)
        assert got.dtype == np.uint8 and got.shape == (H, W)
        np.testing.assert_array_equal(got, expected, err_msg=f"mask differs at frame {t}")
        # the log-likelihood (before learning) agrees to float64 rounding
        if np.isnan(slow.ll):
            assert np.isnan(fast.log_likelihood)
        else:
            assert abs(fast.log_likelihood - slow.ll) <= 1e-9 * abs(slow.ll), t
        state, ref = fast.state(), slow.state()
        for name in ("w", "mu", "var"):
            np.testing.assert_array_equal(state[name], ref[name],
                                       err_msg=f"{name} differs at frame {t}")
        keys = ref["w"] ** 2 / ref["var"][:, 0]
        top = keys.argmax(axis=0)
        if previous_top is not None:
            events["reranked"] += int(np.count_nonzero(top != previous_top))
        previous_top = top
    events["replaced"] = slow.replacements
    events["matched_below_top"] = slow.matches_below_top
    return events


@pytest.mark.parametrize("covariance", ["spherical", "diagonal"])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("channels", [1, 3])
def test_kernel_matches_reference(k, channels, covariance):
    events = run_both(k, channels, "alpha_over_weight", seed=10 * k + channels,
                      covariance=covariance)
    # the comparison must have exercised the replacement and the re-ranking paths
    assert events["replaced"] > 100
    if k > 1:
        assert events["reranked"] > 100
        assert events["matched_below_top"] > 100


@pytest.mark.parametrize("covariance", ["spherical", "diagonal"])
@pytest.mark.parametrize("channels", [1, 3])
def test_kernel_matches_reference_paper_rho(channels, covariance):
    run_both(3, channels, "gaussian", seed=7 + channels, covariance=covariance)


@pytest.mark.parametrize("covariance", ["spherical", "diagonal"])
def test_kernel_matches_reference_other_parameters(covariance):
    run_both(4, 3, "alpha_over_weight", seed=99, match_threshold=3.0, background_ratio=0.5,
             init_weight=0.2, init_variance=100.0, min_variance=4.0, max_variance=400.0,
             covariance=covariance)


def test_kernel_matches_reference_on_a_large_frame():
    """Enough pixels for every thread to get chunks of several blocks."""
    rng = np.random.default_rng(5)
    h, w = 64, 150
    fast, slow = MixtureMasker(k=3), NaiveMixture(k=3)
    base = rng.integers(0, 256, (h, w, 3))
    for _ in range(4):
        frame = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(fast.apply(frame), slow.apply(frame))
    np.testing.assert_allclose(fast.state()["mu"], slow.state()["mu"], rtol=1e-6, atol=1e-6)


def test_kernel_matches_reference_when_weights_are_pruned():
    """Components that stop matching decay to weight 0 and become empty slots."""
    rng = np.random.default_rng(3)
    fast, slow = MixtureMasker(k=3), NaiveMixture(k=3)
    frames = list(multimodal_frames(rng, 8, 3))
    still = frames[-1]
    frames += [np.clip(still + rng.normal(0, 2, still.shape), 0, 255).astype(np.uint8)
               for _ in range(40)]
    for t, frame in enumerate(frames):
        np.testing.assert_array_equal(fast.apply(frame, learning_rate=0.5),
                                      slow.apply(frame, learning_rate=0.5))
        np.testing.assert_allclose(fast.state()["w"], slow.state()["w"], rtol=1e-6, atol=1e-6,
                                   err_msg=f"weights differ at frame {t}")
    assert slow.prunes > 100
    assert np.count_nonzero(fast.state()["w"] == 0) > 100


@pytest.mark.parametrize("covariance", ["spherical", "diagonal"])
def test_recovery_and_probability_match_reference(covariance):
    """Lights switched on: the log-likelihood drops, both models speed up alike."""
    rng = np.random.default_rng(11)
    base = rng.integers(40, 170, (H, W, 3)).astype(float)
    fast, slow = MixtureMasker(covariance=covariance), NaiveMixture(covariance=covariance)
    recovering = 0
    for t in range(60):
        scene = base * (1.4 if t >= 30 else 1.0)
        frame = np.clip(np.rint(scene + rng.normal(0, 3, scene.shape)), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(fast.apply(frame), slow.apply(frame))
        assert fast.recovering == slow.boosted
        recovering += fast.recovering
        np.testing.assert_allclose(fast.state()["mu"], slow.state()["mu"], rtol=1e-6)
        if t in (29, 30, 45):
            np.testing.assert_allclose(fast.foreground_probability(),
                                       slow.foreground_probability(frame), atol=1e-6)
    assert recovering == 30  # one recovery of recovery_frames, triggered by the switch


def test_16_bit_state_keeps_the_masks_of_a_float32_state():
    """The stored codes change the model's masks on a handful of pixels at most.

    The reference with ``quantize=False`` keeps float32 weights, means and
    variances: the model before 16-bit storage.  On a synthetic scene with
    noise, drift, a multimodal region and moving objects, the masks of the
    16-bit kernel may differ from it where a value sits on a match boundary,
    but on no more than 1 pixel in 1000.
    """
    spec = SceneSpec(width=40, height=30, frames=100, seed=3)
    fast, exact = MixtureMasker(), NaiveMixture(quantize=False)
    differ = total = foreground = 0
    for frame, _ in render(spec):
        got, expected = fast.apply(frame), exact.apply(frame)
        differ += np.count_nonzero(got != expected)
        foreground += np.count_nonzero(expected)
        total += got.size
    assert foreground > 0.02 * total  # the scene does have moving things to disagree on
    assert differ <= total / 1000
