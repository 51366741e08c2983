"""Scene events: the tampered-footage generator, the detectors, where the events go."""

from __future__ import annotations

import numpy as np
import pytest

from bgsub.eval.tamper import KINDS, STRENGTHS, Span, tamper


def _frames(n=12, h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 220, (h, w, 3), dtype=np.uint8)
    return [base.copy() for _ in range(n)]


def test_tamper_is_deterministic_by_seed_and_touches_only_its_spans():
    frames = _frames()
    other = _frames(seed=5)
    spans = [Span(k, s, 2 + 2 * i, 3 + 2 * i) for i, (k, s) in enumerate(
        [("covered", "hand"), ("moved", "view"), ("defocused", "2.5"), ("weather", "rain")])]
    a, truth = tamper(frames, spans, seed=7, other=other)
    b, _ = tamper(frames, spans, seed=7, other=other)
    c, _ = tamper(frames, spans, seed=8, other=other)
    assert truth == sorted(spans, key=lambda s: s.start)
    changed = {i for i in range(len(frames)) if not np.array_equal(a[i], frames[i])}
    assert changed == {2, 4, 6, 8}
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[8], c[8])  # the rain is drawn from the seed
    assert np.array_equal(a[0], frames[0]) and a[0] is frames[0]


@pytest.mark.parametrize("kind", KINDS)
def test_every_strength_of_every_kind_changes_the_picture_as_named(kind):
    frames = _frames(n=3)
    for strength in STRENGTHS[kind]:
        out, _ = tamper(frames, [Span(kind, strength, 1, 2)], seed=1, other=_frames(3, seed=9))
        f, g = frames[1].astype(float), out[1].astype(float)
        assert out[1].shape == frames[1].shape and out[1].dtype == np.uint8
        if kind == "covered":
            assert g.std() < 6
        elif kind == "lighting" and strength == "grey":
            assert np.ptp(g, axis=2).max() == 0
        elif kind == "lighting":
            assert abs(g.mean() / f.mean() - float(strength)) < 0.2
        elif kind == "defocused":
            assert np.abs(np.diff(g, axis=1)).mean() < 0.8 * np.abs(np.diff(f, axis=1)).mean()
        elif kind == "weather":
            assert (g >= f).all() and 0.005 < (g > f).mean() < 0.5
        else:
            assert not np.array_equal(f, g)


def test_tamper_refuses_overlapping_or_unknown_spans():
    with pytest.raises(ValueError, match="overlap"):
        tamper(_frames(), [Span("covered", "black", 1, 4), Span("covered", "grey", 3, 5)])
    with pytest.raises(ValueError, match="strength"):
        Span("moved", "huge", 1, 2)
    with pytest.raises(ValueError, match="ends after"):
        tamper(_frames(), [Span("covered", "black", 5, 40)])
