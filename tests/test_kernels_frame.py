"""The Numba kernels against the plain reference in tests/naive.py."""

import numpy as np
import pytest

from bgsub import MixtureMasker
from bgsub.eval.synthetic import SceneSpec, render

from naive import NaiveMixture, naive_shadows

# 23 x 29 = 667 pixels: one partial tile (the tests below with larger frames cross tiles)
H, W = 23, 29

# Every kernel shape (k, channels, variances, rho) compiles for 10-20 s.  The default run
# covers each code path with a few shapes; CI also runs the rest (pytest -m all_shapes).
ALL_SHAPES = pytest.mark.all_shapes


def shapes(names, cases, default):
    """Parameters *cases* for *names*; those not in *default* only under -m all_shapes."""
    return pytest.mark.parametrize(names, [
        case if case in default else pytest.param(*case, marks=ALL_SHAPES) for case in cases])
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
    events = {}
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
    events["replaced"] = slow.replacements
    events["reranked"] = slow.reranks
    events["matched_below_top"] = slow.matches_below_top
    return events


@shapes("k,channels,covariance",
        [(k, c, v) for c in (1, 3) for k in (1, 2, 3, 5) for v in ("spherical", "diagonal")],
        default=[(1, 3, "spherical"), (2, 3, "spherical"), (3, 3, "spherical"),
                 (5, 3, "spherical"), (3, 3, "diagonal"), (3, 1, "spherical"),
                 (3, 1, "diagonal")])  # grey: diagonal is spherical, the same kernel
def test_kernel_matches_reference(k, channels, covariance):
    events = run_both(k, channels, "alpha_over_weight", seed=10 * k + channels,
                      covariance=covariance)
    # the comparison must have exercised the replacement and the re-ranking paths
    assert events["replaced"] > 100
    if k > 1:
        assert events["reranked"] > 100
        assert events["matched_below_top"] > 100


@shapes("channels,covariance", [(c, v) for c in (1, 3) for v in ("spherical", "diagonal")],
        default=[(3, "spherical")])
def test_kernel_matches_reference_paper_rho(channels, covariance):
    run_both(3, channels, "gaussian", seed=7 + channels, covariance=covariance)


@shapes("k,covariance", [(5, "spherical"), (3, "diagonal"), (4, "spherical"), (4, "diagonal")],
        default=[(5, "spherical"), (3, "diagonal")])
def test_kernel_matches_reference_other_parameters(k, covariance):
    run_both(k, 3, "alpha_over_weight", seed=99, match_threshold=3.0, background_ratio=0.5,
             init_weight=0.2, init_variance=100.0, min_variance=4.0, max_variance=400.0,
             covariance=covariance)


@pytest.mark.parametrize("channels,covariance", [(3, "spherical"), (3, "diagonal"),
                                                (1, "spherical")])
def test_kernel_matches_reference_with_flicker_threshold(channels, covariance):
    """lambda widened by each pixel's flicker level: the same masks and states as the reference.

    The frames hop between modes, so the flicker levels spread over their
    range; the classify-only frames (rate 0) widen lambda too.
    """
    events = run_both(3, channels, "alpha_over_weight", seed=21 + channels,
                      covariance=covariance, flicker_threshold=3.0,
                      flicker_threshold_from=0.1)
    assert events["replaced"] > 100 and events["matched_below_top"] > 100


def test_flicker_threshold_changes_the_masks():
    """The widening is not a no-op: on hopping pixels it lets more match (fewer foreground)."""
    rng = np.random.default_rng(8)
    frames = list(multimodal_frames(rng, 60, 3, noise=12.0))
    plain = MixtureMasker(k=3, flicker_threshold=0.0)
    widened = MixtureMasker(k=3, flicker_threshold=3.0, flicker_threshold_from=0.0)
    fg_plain = fg_widened = 0
    for frame in frames:
        fg_plain += int(np.count_nonzero(plain.apply(frame) == 255))
        fg_widened += int(np.count_nonzero(widened.apply(frame) == 255))
    assert fg_widened < 0.9 * fg_plain


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


@pytest.mark.parametrize("covariance", ["spherical", "diagonal"])
def test_probability_at_pixels_matches_reference(covariance):
    """The scan's query of a few pixels gives what the reference gives those pixels, and
    what the whole frame's query gives them, bit for bit."""
    rng = np.random.default_rng(5)
    base = rng.integers(40, 170, (H, W, 3)).astype(float)
    fast, slow = MixtureMasker(covariance=covariance), NaiveMixture(covariance=covariance)
    for t in range(25):
        scene = base.copy()
        if t >= 20:  # an object arrives: probabilities near 1 there, near 0 elsewhere
            scene[5:15, 8:20] = 230
        frame = np.clip(np.rint(scene + rng.normal(0, 3, scene.shape)), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(fast.apply(frame), slow.apply(frame))
    pixels = np.concatenate([rng.choice(H * W, 40, replace=False),
                             (np.arange(5, 15)[:, None] * W + np.arange(8, 20)).ravel()])
    got = fast.foreground_probability_at(pixels)
    assert got.dtype == np.float32 and got.shape == pixels.shape
    np.testing.assert_allclose(got, slow.foreground_probability_at(frame, pixels), atol=1e-6)
    np.testing.assert_array_equal(got, fast.foreground_probability().reshape(-1)[pixels])
    assert got[40:].min() > 0.9 and np.median(got[:40]) < 0.5
    assert fast.foreground_probability_at(np.array([], np.int64)).shape == (0,)
    with pytest.raises(IndexError):
        fast.foreground_probability_at(np.array([H * W]))


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


def _near_ties(rng, n, k, channels, covariance):
    """States whose slots sit close to swapping rank, and frames that match slot 0.

    Slot 1's key is a hair below slot 0's and slot 2's below slot 1's, so
    that learning (slot 0's variance growing, the decayed weights' truncation)
    reorders some pixels: the short path must then re-rank them exactly as
    the general path does.
    """
    nv = channels if covariance == "diagonal" else 1
    var = rng.uniform(81, 400, (k, nv, n)).astype(np.float32)
    w = np.zeros((k, n), np.float32)
    w[0] = rng.uniform(0.05, 0.5, n)
    for j in range(1, k):
        # key_j = w_j^2 / var_j just below key_j-1, give or take
        ratio = np.sqrt(var[j].mean(0) / var[j - 1].mean(0))
        w[j] = np.clip(w[j - 1] * ratio * rng.uniform(0.97, 1.0, n), 0, 1)
    w /= np.maximum(w.sum(0), 1)
    mu = rng.uniform(30, 220, (k, channels, n)).astype(np.float32)
    # values inside slot 0's match radius, out towards its edge: its variance grows
    sigma = np.sqrt(var[0].mean(0))
    x = mu[0] + rng.uniform(-3, 3, (channels, n)) * sigma
    x = np.clip(np.rint(x), 0, 255).astype(np.uint8).T.copy()
    return w, mu, var, x


@shapes("k,channels,covariance",
        [(k, c, v) for k, c in [(3, 3), (3, 1), (5, 3), (2, 3)]
         for v in ("spherical", "diagonal")],
        default=[(3, 3, "spherical"), (3, 3, "diagonal"), (3, 1, "spherical"),
                 (5, 3, "spherical"), (2, 3, "spherical")])
@pytest.mark.parametrize("widen", [0.0, 2.0])
def test_short_path_reranks_like_the_general_path(k, channels, covariance, widen):
    """Pixel groups that all match slot 0 take the kernel's short path; checked bit for bit.

    With ``widen`` (flicker_threshold) the general path's pixels match within
    a lambda raised by their flicker level; the short path's match slot 0
    within lambda, so within the raised one too.
    """
    from bgsub.model import kernels
    rng = np.random.default_rng(k * 10 + channels)
    cfg = dict(k=k, covariance=covariance, learning_rate=0.05, flicker_threshold=widen,
               flicker_threshold_from=0.25)
    slow = NaiveMixture(**cfg)
    n = 4 * kernels.BLOCK + 77  # whole tiles and a partial last one
    alpha = np.float32(0.05)
    w, mu, var, x = _near_ties(rng, n, k, channels, covariance)
    vmin, vmax = np.float32(slow.var_min), np.float32(slow.var_max)
    state = kernels.encode_state(w, mu, var, vmin, vmax)
    nv = var.shape[1]
    slow.w, slow.mu, slow.var = kernels.decode_state(state, k, channels, nv, n, vmin, vmax)
    slow.wq = np.rint(slow.w.astype(np.float64) * 65535).astype(np.int64)
    slow.last_match = np.full(n, -1)
    slow.last_reranked = np.zeros(n, bool)
    # flicker words of every level and last classification, some released
    # ghost pixels, and a foreground rate of its own: the selective update
    # runs in the general path, the flicker update in both
    aux = rng.integers(0, 65536, n).astype(np.uint16)
    release = (rng.random(n) < 0.1).astype(np.uint8)
    slow.flicker = aux.astype(np.int64)
    slow.release = release.astype(bool)
    alpha_fg = np.float32(0.001)
    expected = np.array([slow._pixel(p, [np.float32(v) for v in x[p]], alpha, alpha_fg)
                         for p in range(n)], np.uint8)
    # the product's kernel, shadows and all (the tests above have compiled it)
    kernel = kernels.frame_kernel(k, channels, nv, True, 0, True)
    got = np.empty(n, np.uint8)
    tiles = -(-n // kernels.BLOCK)
    busy = np.full(tiles, 7, np.uint8)
    _, value, ratio_min, tau, lam = slow.shadow
    kernel(x.reshape(-1), state, got, aux, release, busy, n, alpha, alpha_fg, slow.inv_ref,
           slow.ghost[1], slow.lam_gain, slow.lam_from, slow.lam2, slow.T, slow.w_init, slow.var_init, vmin, vmax,
           np.float32(ratio_min), np.float32(tau ** 2), np.uint8(value), np.uint8(254),
           32768, np.zeros(8, np.int64), 1, 0, tiles)
    np.testing.assert_array_equal(aux, slow.flicker.astype(np.uint16))
    # a tile is busy when a pixel of it is foreground; with no texture test
    # and no neighbour match (gate 32768), it holds no work for the pass
    fg = np.zeros(tiles * kernels.BLOCK, bool)
    fg[:n] = expected != 0
    np.testing.assert_array_equal(busy, fg.reshape(tiles, -1).any(axis=1))
    if channels == 3:
        expected = naive_shadows(x, slow.w, slow.mu, slow.var, expected, slow.T, lam, ratio_min,
                                 tau, value)
    np.testing.assert_array_equal(got, expected)
    for name, a, b in zip(("w", "mu", "var"),
                          kernels.decode_state(state, k, channels, nv, n, vmin, vmax),
                          (slow.w, slow.mu, slow.var)):
        np.testing.assert_array_equal(a, b, err_msg=name)
    # both paths ran, and the short path met pixels that had to be re-ranked
    whole = n // kernels.BLOCK * kernels.BLOCK
    on_top = (slow.last_match[:whole] == 0).reshape(-1, 8)
    short = on_top.all(axis=1)
    assert 0.2 < short.mean() < 0.95
    assert slow.last_reranked[:whole].reshape(-1, 8)[short].sum() > 20


def test_state_is_kept_in_rank_order():
    """After every frame each pixel's slots are sorted by w^2 / sigma^2, descending."""
    rng = np.random.default_rng(4)
    fast = MixtureMasker(k=5)
    for t, frame in enumerate(multimodal_frames(rng, 30, 3)):
        fast.apply(frame, learning_rate=RATES[t % len(RATES)])
        state = fast.state()
        keys = state["w"] ** 2 / state["var"][:, 0]
        assert np.all(np.diff(keys, axis=0) <= 0), t
        assert np.any(np.diff(keys, axis=0) < 0)  # not all ties: the order has content


@pytest.mark.parametrize("channels", [1, 3])
def test_only_tiles_with_foreground_are_busy(channels):
    """The frame kernel flags the tiles that hold foreground, and only those.

    The neighbour pass visits no other tile: a missing flag would leave a
    texture candidate in the mask, an extra one only costs time.
    """
    from bgsub.model import kernels
    rng = np.random.default_rng(channels)
    shape = (96, 64, channels) if channels == 3 else (96, 64)
    scene = rng.integers(60, 200, shape).astype(np.uint8)
    m = MixtureMasker(k=3)
    for _ in range(30):
        m.apply(scene)
    frame = scene.copy()
    frame[70:74, 10:20] += 128  # rows 70-73: tile 4 of 6 (uint8: wraps, far from before)
    mask = m.apply(frame)
    busy = m._backend._busy
    tiles = np.zeros(busy.size * kernels.BLOCK, bool)
    tiles[:mask.size] = mask.reshape(-1) != 0
    np.testing.assert_array_equal(busy != 0, tiles.reshape(busy.size, -1).any(axis=1))
    assert np.count_nonzero(busy) == 1 and mask[70:74, 10:20].all()
    assert busy[4] == kernels.frame.BUSY_FOREGROUND  # nothing flickers yet: no work
    m.apply(scene)
    assert not m._backend._busy.any()
    # a patch that comes and goes flickers: its tile holds work for the
    # neighbour match (the masks are checked against the reference elsewhere)
    for i in range(60):
        m.apply(frame if i % 2 else scene)
    busy = m._backend._busy
    assert busy[4] == kernels.frame.BUSY_FOREGROUND | kernels.frame.BUSY_WORK
    assert np.count_nonzero(busy) == 1
