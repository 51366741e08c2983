"""The frame step: one frame through the masker and the post-processing, described."""

import logging

import numpy as np
import pytest

from bgsub import MixtureMasker, Postprocessor
from bgsub.config import PostprocessConfig
from bgsub.labels import foreground_fraction
from bgsub.model.step import FrameStep


def frames(n=6, shape=(32, 40, 3)):
    rng = np.random.default_rng(4)
    base = rng.integers(40, 200, shape, dtype=np.uint8)
    out = []
    for t in range(n):
        f = base.copy()
        f[8:20, 4 * t:4 * t + 10] = 250  # a mover
        out.append(f)
    return out


def test_results_are_the_masker_then_the_postprocessor():
    step = FrameStep(keep_raw=True, threads=1)
    masker, post = MixtureMasker(threads=1), Postprocessor()
    for i, frame in enumerate(frames()):
        result = step(i, frame)
        raw = masker.apply(frame)
        np.testing.assert_array_equal(result.raw_mask, raw)
        np.testing.assert_array_equal(result.mask, post.apply(raw))
        assert result.index == i and result.frame is frame
        assert result.foreground_fraction == foreground_fraction(result.mask)
        assert result.log_likelihood == masker.log_likelihood or i == 0
        assert result.recovering == masker.recovering and not result.reset
        assert result.background is None and result.probability is None
    assert result.foreground_fraction > 0  # the mover is there
    assert step.seconds["mask"] > 0 and step.seconds["postprocess"] > 0


def test_raw_mask_only_on_request_and_extras_on_request():
    step = FrameStep(threads=1)
    result = step(0, frames(1)[0])
    assert result.raw_mask is None
    step = FrameStep(threads=1, background=True, probability=True)
    for i, frame in enumerate(frames(3)):
        result = step(i, frame)
    assert result.background.shape == frame.shape and result.background.dtype == np.uint8
    assert result.probability.shape == frame.shape[:2]
    np.testing.assert_array_equal(result.background, step.masker.background_image())


def test_without_postprocessing_the_mask_is_the_model_s():
    step = FrameStep(postprocess=PostprocessConfig.off(), keep_raw=True, threads=1)
    result = step(0, frames(1)[0])
    assert result.mask is result.raw_mask


def test_a_size_change_resets_with_a_warning(caplog):
    step = FrameStep(threads=1)
    step(0, frames(1)[0])
    with caplog.at_level(logging.WARNING, logger="bgsub"):
        result = step(1, frames(1, (20, 30, 3))[0])
    assert result.reset and result.mask.shape == (20, 30)
    assert caplog.messages == ["frame 1: frame size 30x20 differs from the model's 40x32: "
                               "resetting the model"]
    assert not step(2, frames(1, (20, 30, 3))[0]).reset


def test_a_step_with_other_outputs_carries_on_with_the_same_model():
    step = FrameStep(threads=1)
    first, second = frames(2)
    step(0, first)
    raw = step.with_outputs(keep_raw=True)
    result = raw(1, second)
    assert raw.masker is step.masker and not step.keep_raw and result.raw_mask is not None
    alone = FrameStep(threads=1)
    alone(0, first)
    assert np.array_equal(alone(1, second).mask, result.mask)  # the model carried on
    # and the post-processing: its blink gate remembers the masks so far
    assert raw.postprocessor is step.postprocessor
    assert result.blinking is None
    kept = raw.with_outputs(blinking=True)(2, first)
    assert kept.blinking is not None and kept.blinking.shape == kept.mask.shape
    assert kept.blinking is not step.postprocessor.blinking  # a copy the consumer keeps


def test_reset_is_reported_by_the_next_result():
    step = FrameStep(threads=1)
    step(0, frames(1)[0])
    step.reset()
    assert step.postprocessor.blinking is None  # the post-processing starts afresh too
    result = step(1, frames(1)[0])
    assert result.reset and step.masker.frames_learned == 1


@pytest.mark.parametrize("shape", [(12, 16, 1), (12, 16)])
def test_one_channel_frames_are_grey(shape):
    result = FrameStep(threads=1)(0, np.zeros(shape, np.uint8))
    assert result.frame.shape == (12, 16) and result.mask.shape == (12, 16)


def test_a_loaded_model_refuses_a_first_frame_of_another_shape():
    masker = MixtureMasker(threads=1)
    masker.apply(frames(1)[0])
    step = FrameStep(masker=masker, other_shape=lambda shape: LookupError(f"got {shape}"))
    with pytest.raises(LookupError, match=r"got \(20, 30, 3\)"):
        step(0, frames(1, (20, 30, 3))[0])
    assert step(1, frames(1, (20, 30, 3))[0]).reset  # later changes reset, as usual
    fresh = FrameStep(threads=1, other_shape=lambda shape: LookupError("never"))
    fresh(0, frames(1)[0])  # no model yet: any first frame
    assert fresh(1, frames(1, (20, 30, 3))[0]).reset
