"""Moving cast shadows: the kernel against the plain reference, and what it must do."""

import numpy as np
import pytest
from naive import naive_shadows  # tests/naive.py, the plain reference

from bgsub import MixtureMasker

from bgsub.model import kernels
from bgsub.config import ModelConfig
from kit import noisy

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


def stored(w, mu, var, cfg):
    """The state as the masker stores it (16-bit codes), and the values it stands for."""
    state = kernels.encode_state(w, mu, var, cfg.min_variance, cfg.max_variance)
    k, c, n = mu.shape
    decoded = kernels.decode_state(state, k, c, var.shape[1], n, cfg.min_variance,
                                   cfg.max_variance)
    return state, decoded


def run_kernel(x, w, mu, var, mask, **params):
    cfg = ModelConfig(**params)
    out = mask.copy()
    state, _ = stored(w, mu, var, cfg)
    k, c, n = mu.shape
    kernels.mark_shadows(x.reshape(-1), state, out, n, k, c, var.shape[1],
                         np.float32(cfg.min_variance), np.float32(cfg.max_variance),
                         np.float32(cfg.background_ratio), np.float32(cfg.match_threshold ** 2),
                         np.float32(cfg.shadow_ratio_min), np.float32(cfg.shadow_threshold ** 2),
                         np.uint8(cfg.shadow_value), 0, -(-n // kernels.BLOCK))
    return out


def run_reference(x, w, mu, var, mask, **params):
    cfg = ModelConfig(**params)
    _, (w, mu, var) = stored(w, mu, var, cfg)
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


# --- behaviour through MixtureMasker -----------------------------------------------------

H, W = 40, 60


def coloured_background(rng):
    """Saturated colours: each pixel's channels near 200, 110 and 40 in a random order.

    Far from the grey axis (about 65 grey levels), so the colour test can
    always tell a shadow from another colour, whatever the variance floor.
    """
    levels = np.array([200.0, 110.0, 40.0])
    order = np.argsort(rng.random((H, W, 3)), axis=2)
    return levels[order] + rng.uniform(-15, 15, (H, W, 3))


SHADOW = (slice(10, 20), slice(10, 30))
OBJECT = (slice(25, 35), slice(30, 50))


def shadow_and_object(rng, bg, params=None, channels=3, frames=100):
    """Learn the background, then show a cast shadow and a dark object of another colour.

    Both darken the background by 0.6; the object also turns its colour (its
    channels rotated), which is all that tells it from a shadow.
    """
    m = MixtureMasker(**(params or {}))
    to_frame = (lambda f: f) if channels == 3 else (lambda f: f.mean(axis=2))
    for _ in range(frames):
        m.apply(noisy(rng, to_frame(bg)))
    scene = bg.copy()
    scene[SHADOW] *= 0.6
    scene[OBJECT] = 0.6 * bg[OBJECT][:, :, [1, 2, 0]]
    return m, m.apply(noisy(rng, to_frame(scene)))


def fraction(mask, region, value):
    return np.mean(mask[region] == value)


def test_cast_shadow_is_127_and_a_dark_object_255():
    rng = np.random.default_rng(20)
    bg = coloured_background(rng)
    _, mask = shadow_and_object(rng, bg)
    # a shadow is recognised where the background is coloured enough for the
    # colour test: at least shadow_threshold sigma from the grey axis, sigma
    # here the variance floor (the noise is smaller); nearer grey it stays
    # foreground by design
    cfg = ModelConfig()
    under = bg[SHADOW].astype(float)
    chroma = ((under - under.mean(axis=2, keepdims=True)) ** 2).mean(axis=2)
    limit = cfg.shadow_threshold ** 2 * cfg.min_variance
    coloured, greyish = chroma > 1.2 * limit, chroma < 0.8 * limit
    assert coloured.mean() > 0.6  # mostly coloured: the test means something
    assert np.mean(mask[SHADOW][coloured] == 127) > 0.95
    assert not np.any(mask[SHADOW][greyish] == 127)
    # the dark object of another colour is never a shadow (a pixel whose
    # colours barely change when rotated may match the background)
    assert fraction(mask, OBJECT, 127) == 0.0
    assert fraction(mask, OBJECT, 255) > 0.98
    rest = np.ones((H, W), bool)
    rest[SHADOW] = rest[OBJECT] = False
    assert np.mean(mask[rest] == 0) > 0.995
    assert set(np.unique(mask)) <= {0, 127, 255}


@pytest.mark.parametrize("covariance", ["spherical", "diagonal"])
def test_shadow_value_zero_folds_shadows_into_the_background(covariance):
    rng = np.random.default_rng(21)
    bg = coloured_background(rng)
    _, mask = shadow_and_object(rng, bg, {"shadow_value": 0, "covariance": covariance})
    assert fraction(mask, SHADOW, 0) > 0.9
    assert fraction(mask, OBJECT, 255) == 1.0
    assert not np.any(mask == 127)


def test_shadows_off_gives_only_foreground_and_background():
    rng = np.random.default_rng(22)
    bg = coloured_background(rng)
    _, mask = shadow_and_object(rng, bg, {"shadows": False})
    assert set(np.unique(mask)) <= {0, 255}
    assert fraction(mask, SHADOW, 255) > 0.9


def test_no_shadows_on_grey_frames_or_a_grey_background_by_colour():
    """Without colour a shadow and a darker grey object look alike to the colour test."""
    rng = np.random.default_rng(23)
    bg = coloured_background(rng)
    _, mask = shadow_and_object(rng, bg, channels=1)
    assert set(np.unique(mask)) <= {0, 255}
    assert fraction(mask, SHADOW, 255) > 0.9
    grey_bg = np.repeat(bg.mean(axis=2, keepdims=True), 3, axis=2)
    _, mask = shadow_and_object(rng, grey_bg, {"shadow_texture": False})
    assert fraction(mask, SHADOW, 255) > 0.9


def test_shadows_on_a_grey_background_by_texture():
    """On a textured grey floor a shadow keeps the texture; a flat dark object does not."""
    rng = np.random.default_rng(27)
    grey_bg = np.repeat(coloured_background(rng).mean(axis=2, keepdims=True), 3, axis=2)
    m = MixtureMasker()
    for _ in range(100):
        m.apply(noisy(rng, grey_bg))
    scene = grey_bg.copy()
    scene[SHADOW] *= 0.6
    scene[OBJECT] = 0.6 * grey_bg[OBJECT].mean()  # as dark, but flat
    mask = m.apply(noisy(rng, scene))
    # the 5x5 window of a pixel within 2 of the shadow's edge holds lit floor too
    inner = (slice(SHADOW[0].start + 2, SHADOW[0].stop - 2),
             slice(SHADOW[1].start + 2, SHADOW[1].stop - 2))
    assert fraction(mask, inner, 127) > 0.9
    assert fraction(mask, OBJECT, 255) > 0.9


def test_one_component_has_nothing_left_to_compare_with():
    """k = 1: a foreground pixel replaced its only component, so no shadows."""
    rng = np.random.default_rng(24)
    _, mask = shadow_and_object(rng, coloured_background(rng), {"k": 1})
    assert fraction(mask, SHADOW, 255) > 0.9


def test_first_frame_and_classify_only_paths():
    rng = np.random.default_rng(25)
    bg = coloured_background(rng)
    scene = bg.copy()
    scene[SHADOW] *= 0.6
    m = MixtureMasker()
    assert not np.any(m.apply(noisy(rng, scene), learning_rate=0.0))  # no model yet
    assert not np.any(m.apply(noisy(rng, bg)))  # the first frame is the model
    for _ in range(60):
        m.apply(noisy(rng, bg))
    frame = noisy(rng, scene)
    before = m.state()
    classified = m.apply(frame, learning_rate=0.0)
    for name, plane in m.state().items():
        np.testing.assert_array_equal(plane, before[name])
    assert fraction(classified, SHADOW, 127) > 0.9
    # the learning apply classifies the same frame alike, shadows included
    np.testing.assert_array_equal(m.apply(frame), classified)


def test_a_shadow_that_stays_becomes_background():
    """A stopped shadow is absorbed like any stopped object, then is background (0)."""
    rng = np.random.default_rng(26)
    bg = coloured_background(rng)
    # foreground (and shadow) pixels learn at the rate that absorbs in 2 s at 25 fps
    m = MixtureMasker(learning_rate=0.02, absorb_seconds=2.0, fps=25)
    for _ in range(150):
        m.apply(noisy(rng, bg))
    scene = bg.copy()
    scene[SHADOW] *= 0.6
    masks = [m.apply(noisy(rng, scene)) for _ in range(150)]
    assert fraction(masks[0], SHADOW, 127) > 0.9
    assert fraction(masks[-1], SHADOW, 0) > 0.95
    # never foreground on the way: it goes from shadow to background
    assert max(fraction(mask, SHADOW, 255) for mask in masks) < 0.1
