"""bgsub.opencv: OpenCV's MOG2 tutorial loop runs on bgsub, and each mapped setter acts as MOG2's.

The property tests run every scene through OpenCV's own MOG2 and through the
drop-in with the same calls, and assert the same direction for both.
"""

from __future__ import annotations

import difflib

import cv2
import numpy as np
import pytest

import bgsub.opencv
from bgsub.config import ConfigError, ModelConfig
from bgsub.eval.synthetic import SceneSpec, write_video
from bgsub.model.masker import MixtureMasker
from kit import noisy, read_video

H, W = 48, 64
ENGINES = {"mog2": cv2.createBackgroundSubtractorMOG2,
           "bgsub": bgsub.opencv.createBackgroundSubtractorGMM}

# OpenCV's background-subtraction tutorial (samples/python/tutorial_code/video/
# background_subtraction/bg_sub.py), its argument parsing replaced by *path*.
TUTORIAL = """\
import cv2 as cv

backSub = cv.createBackgroundSubtractorMOG2()
capture = cv.VideoCapture(path)
if not capture.isOpened():
    raise SystemExit('Unable to open: ' + path)
while True:
    ret, frame = capture.read()
    if frame is None:
        break

    fgMask = backSub.apply(frame)

    cv.rectangle(frame, (10, 2), (100,20), (255,255,255), -1)
    cv.putText(frame, str(capture.get(cv.CAP_PROP_POS_FRAMES)), (15, 15),
               cv.FONT_HERSHEY_SIMPLEX, 0.5 , (0,0,0))

    cv.imshow('Frame', frame)
    cv.imshow('FG Mask', fgMask)

    keyboard = cv.waitKey(30)
    if keyboard == 'q' or keyboard == 27:
        break
"""
DROP_IN = TUTORIAL.replace("import cv2 as cv\n", "import cv2 as cv\nimport bgsub.opencv\n").replace(
    "cv.createBackgroundSubtractorMOG2()", "bgsub.opencv.createBackgroundSubtractorGMM()")


def _run_tutorial(script: str, path, monkeypatch) -> list[np.ndarray]:
    """Run *script* on *path* headless: what it shows in 'FG Mask', frame by frame."""
    shown = []
    monkeypatch.setattr(cv2, "imshow", lambda name, image: shown.append(
        image.copy()) if name == "FG Mask" else None)
    monkeypatch.setattr(cv2, "waitKey", lambda delay=0: -1)
    exec(compile(script, "bg_sub.py", "exec"), {"path": str(path), "__name__": "__main__"})
    return shown



def test_tutorial_loop_runs_with_only_the_constructor_changed(tmp_path, monkeypatch):
    path = tmp_path / "clip.avi"
    spec = SceneSpec(width=96, height=72, frames=40, seed=11)
    assert write_video(str(path), spec) == spec.frames
    changed = [line for line in difflib.ndiff(TUTORIAL.splitlines(), DROP_IN.splitlines())
               if line[:2] in ("+ ", "- ")]
    assert changed == ["+ import bgsub.opencv",
                       "- backSub = cv.createBackgroundSubtractorMOG2()",
                       "+ backSub = bgsub.opencv.createBackgroundSubtractorGMM()"]

    masks = _run_tutorial(DROP_IN, path, monkeypatch)
    mog2 = _run_tutorial(TUTORIAL, path, monkeypatch)

    # bgsub's masks: those of a MixtureMasker with the mapped settings
    frames = read_video(path)
    assert len(masks) == len(mog2) == len(frames) == spec.frames
    config = bgsub.opencv.createBackgroundSubtractorGMM().config
    masker = MixtureMasker(config)
    for t, (frame, mask) in enumerate(zip(frames, masks)):
        np.testing.assert_array_equal(mask, masker.apply(frame), err_msg=f"frame {t}")
    seen = np.unique(np.concatenate(masks[1:]))
    assert 255 in seen and set(seen.tolist()) <= {0, 127, 255}
    assert any((a != b).any() for a, b in zip(masks, mog2))  # not MOG2's masks


def test_mapping_of_the_defaults():
    sub = bgsub.opencv.createBackgroundSubtractorGMM()
    defaults, config = ModelConfig(), sub.config
    # history 500 is bgsub's own rates: 1/500, a stopped object absorbed after 100 s at 25 fps
    assert config.learning_rate == defaults.learning_rate == 1 / 500
    assert config.absorb_seconds == pytest.approx(defaults.absorb_seconds)
    # MOG2's squared distance and variance are sums over the channels, bgsub's means
    assert config.match_threshold == pytest.approx(4.0)
    assert (sub.getHistory(), sub.getVarThreshold(), sub.getDetectShadows()) == (500, 16.0, True)
    assert (sub.getNMixtures(), sub.getBackgroundRatio(), sub.getShadowValue(),
            sub.getShadowThreshold()) == (defaults.k, defaults.background_ratio,
                                          defaults.shadow_value, defaults.shadow_ratio_min)
    # before the first frame, and for colour frames, variances are of 3 channels
    assert (sub.getVarInit(), sub.getVarMin(), sub.getVarMax()) == pytest.approx(
        (3 * defaults.init_variance, 3 * defaults.min_variance, 3 * defaults.max_variance))
    sub.setVarMin(30)
    assert sub.getVarMin() == pytest.approx(30) and sub.config.min_variance == pytest.approx(10)
    sub.setHistory(50)
    sub.setVarThreshold(6.25)
    assert sub.config.learning_rate == pytest.approx(0.02)
    assert sub.config.absorb_seconds * sub.config.fps == pytest.approx(250)
    assert sub.config.match_threshold == pytest.approx(2.5)
    sub.apply(np.zeros((H, W), np.uint8))  # grey: one channel
    assert sub.getVarMin() == pytest.approx(10) and sub.masker.config == sub.config


def test_settings_without_an_equivalent_and_bad_values_raise():
    sub = bgsub.opencv.createBackgroundSubtractorGMM()
    with pytest.raises(NotImplementedError, match="one threshold"):
        sub.setVarThresholdGen(9)
    sub.setComplexityReductionThreshold(0)  # bgsub's behaviour
    with pytest.raises(NotImplementedError, match="never drops"):
        sub.setComplexityReductionThreshold(0.05)
    with pytest.raises(ConfigError, match="shadow_value"):
        sub.setShadowValue(255)  # 255 is foreground
    with pytest.raises(ConfigError, match="min_variance <= init_variance"):
        sub.setVarMin(600)  # above 3 * 100
    with pytest.raises(ValueError, match="history"):
        sub.setHistory(0)
    with pytest.raises(ValueError, match="varThreshold"):
        sub.setVarThreshold(-1)
    assert (sub.getShadowValue(), sub.config.min_variance, sub.getHistory(),
            sub.getVarThreshold()) == (127, 81.0, 500, 16.0)
    with pytest.raises(ValueError, match="learningRate"):
        sub.apply(np.zeros((H, W, 3), np.uint8), learningRate=float("nan"))
    with pytest.raises(ValueError, match="uint8"):
        sub.apply(np.zeros((H, W, 3), np.float32))
    assert sub.masker is None and sub.getBackgroundImage().shape == (0, 0)  # as MOG2's


# -- scenes ----------------------------------------------------------------------

def _texture(rng, lo=60, hi=200) -> np.ndarray:
    return rng.integers(lo, hi, (H, W, 3)).astype(np.float64)


def _count(mask, value=None) -> int:
    """Pixels of *mask* equal to *value*; by default those not background (foreground or shadow).

    MOG2 marks a pixel that made a component strong enough to be background in
    the same frame a shadow of it (early frames, one mixture): what changed is
    what is not 0.
    """
    return int((mask != 0).sum() if value is None else (mask == value).sum())


def _noisy_foreground(make, setter, value, sigma, frames=40, measured=10) -> int:
    """Foreground pixels over the last *measured* frames of a static scene under noise."""
    rng = np.random.default_rng(5)
    base = _texture(rng)
    sub = make()
    setter(sub, value)
    total = 0
    for t in range(frames):
        mask = sub.apply(noisy(rng, base, sigma))
        if t >= frames - measured:
            total += _count(mask)
    return total


@pytest.mark.parametrize("engine", ENGINES)
def test_larger_var_threshold_marks_fewer_pixels_foreground(engine):
    make = ENGINES[engine]
    loose = _noisy_foreground(make, lambda s, v: s.setVarThreshold(v), 4, sigma=15)
    strict = _noisy_foreground(make, lambda s, v: s.setVarThreshold(v), 64, sigma=15)
    assert loose > 4 * strict and loose > 0.005 * 10 * H * W


@pytest.mark.parametrize("engine", ENGINES)
def test_larger_var_min_marks_fewer_pixels_foreground(engine):
    def setter(sub, var_min):
        sub.setVarThreshold(2)
        sub.setVarMax(1600)
        sub.setVarMin(var_min)

    low = _noisy_foreground(ENGINES[engine], setter, 2, sigma=4)
    high = _noisy_foreground(ENGINES[engine], setter, 300, sigma=4)
    assert low > 4 * high and low > 0.02 * 10 * H * W


@pytest.mark.parametrize("engine", ENGINES)
def test_larger_var_max_marks_fewer_pixels_foreground(engine):
    def setter(sub, var_max):
        sub.setVarMin(4)
        sub.setVarInit(100)
        sub.setVarMax(var_max)

    low = _noisy_foreground(ENGINES[engine], setter, 100, sigma=30)
    high = _noisy_foreground(ENGINES[engine], setter, 1600, sigma=30)
    assert low > 4 * high and low > 0.02 * 10 * H * W


@pytest.mark.parametrize("engine", ENGINES)
def test_larger_var_init_marks_fewer_pixels_foreground_at_the_start(engine):
    def second_frame(var_init):
        rng = np.random.default_rng(6)
        base = _texture(rng)
        sub = ENGINES[engine]()
        sub.setVarMin(4)
        sub.setVarMax(1600)
        sub.setVarInit(var_init)
        sub.apply(noisy(rng, base, 10))
        return _count(sub.apply(noisy(rng, base, 10)))  # against the young components

    narrow, wide = second_frame(16), second_frame(900)
    assert narrow > 0.3 * H * W and wide < 0.3 * narrow


def _bimodal_foreground(make, setter, value, frames=60, measured=20) -> int:
    """Foreground over the last frames of a scene whose pixels take one of two colours.

    Neighbours' colours differ (bgsub takes a flickering pixel that matches a
    neighbour's background as background).
    """
    rng = np.random.default_rng(8)
    a = _texture(rng, 0, 256)
    b = 255 - a
    sub = make()
    setter(sub, value)
    total = 0
    for t in range(frames):
        pick = rng.random((H, W, 1)) < 0.5
        mask = sub.apply(noisy(rng, np.where(pick, a, b), 2))
        if t >= frames - measured:
            total += _count(mask)
    return total


@pytest.mark.parametrize("engine", ENGINES)
def test_more_mixtures_learn_a_two_valued_background(engine):
    one = _bimodal_foreground(ENGINES[engine], lambda s, v: s.setNMixtures(v), 1)
    three = _bimodal_foreground(ENGINES[engine], lambda s, v: s.setNMixtures(v), 3)
    assert one > 0.2 * 20 * H * W and three < 0.5 * one


@pytest.mark.parametrize("engine", ENGINES)
def test_larger_background_ratio_takes_both_values_as_background(engine):
    low = _bimodal_foreground(ENGINES[engine], lambda s, v: s.setBackgroundRatio(v), 0.3)
    high = _bimodal_foreground(ENGINES[engine], lambda s, v: s.setBackgroundRatio(v), 0.95)
    assert low > 0.2 * 20 * H * W and high < 0.2 * low


def _shadow_mask(make, *setters, ratio=0.6) -> np.ndarray:
    """The mask of a coloured scene's region darkened to *ratio* of its light, after learning."""
    rng = np.random.default_rng(9)
    base = np.clip(np.array([60.0, 120.0, 200.0]) + rng.normal(0, 15, (H, W, 3)), 0, 255)
    sub = make()
    for setter in setters:
        setter(sub)
    for _ in range(40):
        sub.apply(noisy(rng, base, 2))
    shadowed = base.copy()
    shadowed[10:30, 10:40] *= ratio
    return sub.apply(noisy(rng, shadowed, 2))[10:30, 10:40]


@pytest.mark.parametrize("engine", ENGINES)
def test_detect_shadows_off_leaves_no_shadow_value(engine):
    on = _shadow_mask(ENGINES[engine])
    off = _shadow_mask(ENGINES[engine], lambda s: s.setDetectShadows(False))
    assert _count(on, 127) > 0.5 * on.size
    assert _count(off, 127) == 0 and _count(off, 255) > 0.5 * off.size


@pytest.mark.parametrize("engine", ENGINES)
def test_shadow_value_marks_shadows(engine):
    mask = _shadow_mask(ENGINES[engine], lambda s: s.setShadowValue(100))
    assert _count(mask, 100) > 0.5 * mask.size and _count(mask, 127) == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_smaller_shadow_threshold_takes_darker_shadows(engine):
    strict = _shadow_mask(ENGINES[engine], lambda s: s.setShadowThreshold(0.6), ratio=0.45)
    loose = _shadow_mask(ENGINES[engine], lambda s: s.setShadowThreshold(0.3), ratio=0.45)
    assert _count(strict, 127) < 0.1 * strict.size and _count(loose, 127) > 0.5 * loose.size


def _frames_to_absorb(make, history: int, limit: int) -> int:
    """Frames a stopped object stays foreground (most of it) with *history*."""
    rng = np.random.default_rng(10)
    base = _texture(rng)
    sub = make()
    sub.setHistory(history)
    for _ in range(2 * history):
        sub.apply(noisy(rng, base, 3))
    parked = base.copy()
    parked[12:36, 16:48] = (30, 200, 90)
    for t in range(1, limit + 1):
        if _count(sub.apply(noisy(rng, parked, 3))[14:34, 18:46]) < 0.5 * 20 * 28:
            return t
    return limit + 1


@pytest.mark.parametrize("engine", ENGINES)
def test_shorter_history_absorbs_a_stopped_object_sooner(engine):
    short = _frames_to_absorb(ENGINES[engine], 20, 800)
    long = _frames_to_absorb(ENGINES[engine], 100, 800)
    assert 1 < short < long <= 800


@pytest.mark.parametrize("engine", ENGINES)
def test_learning_rate_zero_leaves_the_background_unchanged(engine):
    rng = np.random.default_rng(12)
    base = _texture(rng)
    sub = ENGINES[engine]()
    for _ in range(20):
        sub.apply(noisy(rng, base, 2))
    before = sub.getBackgroundImage().copy()
    other = _texture(rng)
    for _ in range(10):
        mask = sub.apply(noisy(rng, other, 2), learningRate=0)
        assert _count(mask) > 0.5 * H * W
    np.testing.assert_array_equal(sub.getBackgroundImage(), before)
    # and learning at a fixed rate does change it
    sub.apply(noisy(rng, other, 2), learningRate=0.5)
    assert (sub.getBackgroundImage() != before).any()


@pytest.mark.parametrize("engine", ENGINES)
def test_learning_rate_one_starts_again_from_the_frame(engine):
    rng = np.random.default_rng(13)
    base, other = _texture(rng), _texture(rng)
    sub = ENGINES[engine]()
    for _ in range(20):
        sub.apply(noisy(rng, base, 2))
    frame = noisy(rng, other, 2)
    sub.apply(frame, learningRate=1)
    np.testing.assert_array_equal(sub.getBackgroundImage(), frame)


def test_setters_keep_what_the_model_learned():
    rng = np.random.default_rng(14)
    base = _texture(rng)
    sub = bgsub.opencv.createBackgroundSubtractorGMM()
    for _ in range(30):
        sub.apply(noisy(rng, base, 2))
    background = sub.getBackgroundImage().copy()
    learned = sub.masker.frames_learned
    for change in (lambda: sub.setVarThreshold(25), lambda: sub.setVarMin(16),
                   lambda: sub.setVarMax(400), lambda: sub.setNMixtures(1),
                   lambda: sub.setHistory(100), lambda: sub.setShadowValue(100)):
        change()
        assert sub.masker.frames_learned == learned
        assert sub.masker.config == sub.config
        np.testing.assert_allclose(sub.getBackgroundImage(), background, atol=1)
    state = sub.masker.state()
    assert state["w"].shape[0] == 1 and np.allclose(state["w"], 1, atol=1e-3)
    # variances of one channel, within the new range (MOG2's, summed over 3 channels)
    assert state["var"].min() >= 16 / 3 - 0.01 and state["var"].max() <= 400 / 3 + 0.01
    assert _count(sub.apply(noisy(rng, base, 2))) < 0.01 * H * W  # still the background
    sub.setNMixtures(5)  # more: empty slots
    state = sub.masker.state()
    assert state["w"].shape[0] == 5 and (state["w"][1:] == 0).all()
    np.testing.assert_allclose(sub.getBackgroundImage(), background, atol=1)
    assert _count(sub.apply(noisy(rng, base, 2))) < 0.01 * H * W


def test_apply_writes_into_fgmask_and_starts_again_on_another_size():
    rng = np.random.default_rng(15)
    sub = bgsub.opencv.createBackgroundSubtractorGMM()
    base = _texture(rng)
    for _ in range(5):
        sub.apply(noisy(rng, base, 2))
    frame = noisy(rng, base, 2)
    frame[5:20, 5:20] = (0, 0, 255)
    out = np.full((H, W), 7, np.uint8)
    assert sub.apply(frame, out) is out and _count(out, 255) == 15 * 15
    with pytest.raises(ValueError, match="fgmask"):
        sub.apply(frame, np.zeros((H, W + 1), np.uint8))
    small = sub.apply(np.zeros((H // 2, W // 2, 3), np.uint8))  # a new model, as MOG2 makes
    assert small.shape == (H // 2, W // 2) and sub.masker.frame_shape == (H // 2, W // 2, 3)
    assert sub.masker.frames_learned == 1 and _count(small) == 0
