"""One frame through the model and the post-processing: the step every command shares.

``bgsub`` (run), ``bgsub eval``, the benchmarks and the scan all put frames
through a :class:`FrameStep` and hand the :class:`FrameResult` to their
consumers (video files, a window, a scorer, an event detector).  The step
owns the masker and the post-processor; it knows nothing of where frames
come from or where results go.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..config import Config, ModelConfig, PostprocessConfig
from ..labels import foreground_fraction
from .kernels import build
from .masker import FrameSizeError, MixtureMasker
from .postprocess import WARM_UP_SECONDS, Postprocessor, needs_warm_up, warm_up

__all__ = ["FrameResult", "FrameStep"]

logger = logging.getLogger("bgsub")


@dataclass(eq=False, slots=True)
class FrameResult:
    """What one frame gave.

    Attributes
    ----------
    index : int
        The frame's zero-based position in its source.
    frame : ndarray
        The frame itself, uint8 grey (H, W) or BGR (H, W, 3).
    mask : ndarray
        uint8 (H, W) after post-processing: 255 foreground, 0 background,
        another value a shadow (see :mod:`bgsub.labels`).
    raw_mask : ndarray or None
        The model's mask before post-processing, when the step keeps it.
    foreground_fraction : float
        The share of the mask's pixels that are foreground.
    log_likelihood : float
        The frame's mean per-pixel log-likelihood (nats) under the model
        before it learned from the frame; NaN on a model's first frame.
    recovering : bool
        Whether the model learned this frame at its recovery rate.
    reset : bool
        Whether the model started afresh on this frame (a size change, a
        reset asked for).
    background, probability : ndarray or None
        The background image (uint8, the frame's shape) and the soft
        foreground probability (float32 (H, W)), when the step was asked for
        them.
    blinking : ndarray or None
        uint8 (H, W): 255 where the post-processing's blink gate took its
        larger window (where the mask blinks: a waving tree, water), when the
        step was asked for it and the gate is on.
    annotated : ndarray or None
        The frame drawn with its mask (BGR), once a consumer has drawn it
        (see :func:`bgsub.io.display.annotated`): drawn once, shared by all.
    """

    index: int
    frame: np.ndarray
    mask: np.ndarray
    raw_mask: np.ndarray | None
    foreground_fraction: float
    log_likelihood: float
    recovering: bool
    reset: bool = False
    background: np.ndarray | None = None
    probability: np.ndarray | None = None
    annotated: np.ndarray | None = None
    blinking: np.ndarray | None = None


class FrameStep:
    """Mask a frame, clean the mask up, and describe the result.

    Parameters
    ----------
    model : ModelConfig, optional
        The masker's parameters (default: the shipped ``[model]``).
    postprocess : PostprocessConfig, optional
        The post-processing (default: the shipped ``[postprocess]``).
    threads : int, optional
        The masker's thread count (see :class:`~bgsub.model.masker.MixtureMasker`).
    keep_raw : bool
        Keep the mask before post-processing in ``FrameResult.raw_mask``.
    background, probability : bool
        Compute the background image and the soft foreground probability of
        every frame (they cost time per frame: only on request).
    blinking : bool
        Keep where the post-processing's blink gate applied in
        ``FrameResult.blinking``.
    masker : MixtureMasker, optional
        The masker to use (a loaded model, say) instead of a new one.
    fps : float, optional
        The source's frame rate, in which the model counts ``absorb_seconds``
        (default: ``model.fps``).
    other_shape : callable, optional
        With a *masker* that holds a model (a loaded one): the first frame
        must have the model's shape, else ``other_shape(its shape)`` (an
        exception) is raised.  Later size changes reset the model, as usual.

    Notes
    -----
    Frames of another size than the model's (a camera changing mode, a mixed
    image folder) start a new model, with a warning on the ``bgsub`` logger.
    Each result holds new arrays: consumers may keep them.

    Examples
    --------
    >>> import numpy as np
    >>> from bgsub.model.step import FrameStep
    >>> step = FrameStep(threads=1)
    >>> result = step(0, np.full((48, 64, 3), 90, np.uint8))
    >>> result.mask.shape, result.foreground_fraction
    ((48, 64), 0.0)
    """

    def __init__(self, model: ModelConfig | None = None,
                 postprocess: PostprocessConfig | None = None, *, threads: int | None = None,
                 keep_raw: bool = False, background: bool = False,
                 probability: bool = False, blinking: bool = False,
                 masker: MixtureMasker | None = None,
                 fps: float | None = None,
                 other_shape: Callable[[tuple[int, ...]], Exception] | None = None) -> None:
        #: the masker (*masker* when given, a loaded model say; else a new one of *model*,
        #: counting its absorption time in *fps*, the source's frame rate)
        self.masker = (masker if masker is not None
                       else MixtureMasker(model, threads=threads, fps=fps))
        self.postprocessor = Postprocessor(postprocess)
        self.keep_raw = keep_raw
        self.background = background
        self.probability = probability
        self.blinking = blinking
        #: seconds spent masking and post-processing, over every frame so far
        self.seconds = {"mask": 0.0, "postprocess": 0.0}
        self._reset_pending = False
        # until the first mask: a helper process that compiles the masker's kernels
        # also compiles post-processing's
        self._warm_up = (((warm_up.__module__, warm_up.__name__, (self.postprocessor.config,),
                           WARM_UP_SECONDS),) if self.postprocessor.active else ())
        shape = self.masker.frame_shape
        self._expected: tuple[tuple[int, ...], Callable] | None = (
            (tuple(shape), other_shape) if other_shape is not None and shape is not None
            else None)

    @classmethod
    def from_config(cls, config: Config, **options) -> "FrameStep":
        """The step of a whole configuration's ``[model]`` and ``[postprocess]``."""
        return cls(config.model, config.postprocess, **options)

    def with_outputs(self, *, keep_raw: bool | None = None, background: bool | None = None,
                     probability: bool | None = None,
                     blinking: bool | None = None) -> "FrameStep":
        """A step on the same model (this masker, the same post-processing) that keeps other
        results: each of *keep_raw*, *background*, *probability*, *blinking* given replaces
        this one's.

        The masks are those this step would give: the model and the post-processing
        (its blink gate remembers the last masks) carry on.
        """
        step = FrameStep(postprocess=self.postprocessor.config, masker=self.masker,
                         keep_raw=self.keep_raw if keep_raw is None else keep_raw,
                         background=self.background if background is None else background,
                         probability=self.probability if probability is None else probability,
                         blinking=self.blinking if blinking is None else blinking)
        step.postprocessor = self.postprocessor
        return step

    def reset(self) -> None:
        """Start a new model with the next frame (its result says ``reset``)."""
        self.masker.reset()
        self.postprocessor.reset()
        self._reset_pending = True

    def __call__(self, index: int, frame: np.ndarray) -> FrameResult:
        """The result of frame *index* (its position in the source)."""
        reset, self._reset_pending = self._reset_pending, False
        if frame.ndim == 3 and frame.shape[2] == 1:
            frame = frame[:, :, 0]  # one channel is grey, for the model and the drawing
        if self._expected is not None:
            (shape, error), self._expected = self._expected, None
            if frame.shape != shape:
                raise error(frame.shape)
        t0 = time.perf_counter()
        try:
            jobs, self._warm_up = self._warm_up, ()
            if jobs and needs_warm_up():
                with build.warming(*jobs):
                    raw = self.masker.apply(frame)
            else:
                raw = self.masker.apply(frame)
        except FrameSizeError as changed:
            logger.warning("frame %d: %s: resetting the model", index, changed.change)
            self.masker.reset()
            self.postprocessor.reset()
            reset = True
            raw = self.masker.apply(frame)
        t1 = time.perf_counter()
        if self.postprocessor.active:
            # in place unless the raw mask is kept: each mask is a new array
            mask = self.postprocessor.apply(raw, out=None if self.keep_raw else raw)
        else:
            mask = raw
        t2 = time.perf_counter()
        self.seconds["mask"] += t1 - t0
        self.seconds["postprocess"] += t2 - t1
        masker = self.masker
        return FrameResult(
            index, frame, mask, raw if self.keep_raw else None, foreground_fraction(mask),
            masker.log_likelihood, masker.recovering, reset,
            masker.background_image() if self.background else None,
            masker.foreground_probability() if self.probability else None,
            blinking=self._blinking() if self.blinking else None)

    def _blinking(self) -> np.ndarray | None:
        near = self.postprocessor.blinking
        return None if near is None else near.copy()
