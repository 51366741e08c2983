"""A drop-in for OpenCV scripts written around ``cv2.createBackgroundSubtractorMOG2()``.

Change the constructor and keep the loop::

    backSub = cv.createBackgroundSubtractorMOG2()          # before
    backSub = bgsub.opencv.createBackgroundSubtractorGMM()  # after
    fgMask = backSub.apply(frame)

:class:`BackgroundSubtractorGMM` offers the methods of OpenCV's
``BackgroundSubtractorMOG2`` under their OpenCV names, over a
:class:`bgsub.model.masker.MixtureMasker`.  The MOG2 settings are mapped onto
bgsub's model (``ModelConfig``); the others keep bgsub's values:

=================================  ==============================================
MOG2                               bgsub (``ModelConfig``)
=================================  ==============================================
history (500)                      ``learning_rate = 1 / history``; a stopped
                                   object is absorbed after ``5 * history``
                                   frames (``absorb_seconds = 5 * history /
                                   fps``): 0.002 and 100 s at 25 fps for 500
varThreshold (16)                  ``match_threshold = sqrt(varThreshold)``
nmixtures                          ``k`` (1..8; bgsub's default 3)
backgroundRatio                    ``background_ratio`` (bgsub's default 0.6)
varInit, varMin, varMax            ``C *`` ``init_variance``, ``min_variance``,
                                   ``max_variance`` (C channels: MOG2's
                                   variance is summed over the channels,
                                   bgsub's is one channel's)
detectShadows (True)               ``shadows``
shadowValue (127)                  ``shadow_value`` (0..254)
shadowThreshold                    ``shadow_ratio_min`` (bgsub's default 0.35)
varThresholdGen                    none: one threshold matches and classifies
complexityReductionThreshold       none: bgsub keeps k slots (0 is its behaviour)
=================================  ==============================================

``docs/opencv.md`` has the full table and what behaves differently.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from .config import MAX_THREADS, ModelConfig, replace_section
from .model.kernels.layout import encode_state
from .model.masker import MixtureMasker

__all__ = ["createBackgroundSubtractorGMM", "BackgroundSubtractorGMM"]

_DEFAULTS = ModelConfig()
# Frames a stopped object stays foreground per frame of history: bgsub's own
# defaults (absorbed after 100 s at 25 fps, learning rate 1/500), so that MOG2's
# default history of 500 gives bgsub's default model.
_ABSORB_PER_HISTORY = round(_DEFAULTS.absorb_seconds * _DEFAULTS.fps * _DEFAULTS.learning_rate, 9)


def createBackgroundSubtractorGMM(history: int = 500, varThreshold: float = 16,
                                  detectShadows: bool = True, *,
                                  config: ModelConfig | None = None,
                                  threads: int | None = None) -> "BackgroundSubtractorGMM":
    """A bgsub background subtractor with OpenCV's ``createBackgroundSubtractorMOG2`` signature.

    Parameters
    ----------
    history : int
        MOG2's history, in frames (>= 1): bgsub's learning rate is
        ``1 / history`` and a stopped object is absorbed after about
        ``5 * history`` frames.
    varThreshold : float
        MOG2's threshold (> 0) on the squared distance in variances: bgsub's
        ``match_threshold`` (lambda, in standard deviations) is
        ``sqrt(varThreshold)``.  (MOG2 sums the squared distance and the
        variance over the channels, bgsub averages both: the ratio is the
        same.)
    detectShadows : bool
        Mark moving cast shadows (with the shadow value, 127).
    config : ModelConfig, optional
        bgsub's parameters for everything the three above do not set
        (default: bgsub's defaults); its ``learning_rate``,
        ``absorb_seconds``, ``match_threshold`` and ``shadows`` are replaced
        by the mapped values.
    threads : int, optional
        Threads of the masker (see :class:`bgsub.model.masker.MixtureMasker`).

    Returns
    -------
    BackgroundSubtractorGMM

    Examples
    --------
    >>> import numpy as np
    >>> import bgsub.opencv
    >>> backSub = bgsub.opencv.createBackgroundSubtractorGMM(history=200, varThreshold=25)
    >>> backSub.getHistory(), backSub.getVarThreshold(), backSub.getDetectShadows()
    (200, 25.0, True)
    >>> frame = np.full((48, 64, 3), 100, np.uint8)
    >>> backSub.apply(frame).shape
    (48, 64)
    """
    return BackgroundSubtractorGMM(history, varThreshold, detectShadows, config=config,
                                   threads=threads)


class BackgroundSubtractorGMM:
    """bgsub's mixture masker behind OpenCV's ``BackgroundSubtractorMOG2`` methods.

    Build it with :func:`createBackgroundSubtractorGMM`.  The masker is made on
    the first frame and made anew, as MOG2 does, when a frame of another size
    or channel count comes.  A setter that changes the model keeps what has been learned:
    the masker is rebuilt from its own state with the new settings
    (:meth:`setNMixtures` keeps each pixel's top-ranked components and
    renormalises their weights, or adds empty slots; :meth:`setVarMin` and
    :meth:`setVarMax` clamp the variances to the new range).  Only the ghost
    counts of ``ghost_frames`` start again.

    Parameters
    ----------
    history, varThreshold, detectShadows, config, threads
        See :func:`createBackgroundSubtractorGMM`.

    Notes
    -----
    A setting outside bgsub's range raises :class:`bgsub.config.ConfigError`
    (a ValueError) where OpenCV raises ``cv2.error``; a setting that has no
    equivalent (:meth:`setVarThresholdGen`, a non-zero
    :meth:`setComplexityReductionThreshold`) raises NotImplementedError.

    Examples
    --------
    >>> import numpy as np
    >>> from bgsub.opencv import createBackgroundSubtractorGMM
    >>> backSub = createBackgroundSubtractorGMM()
    >>> backSub.config.learning_rate, backSub.config.match_threshold
    (0.002, 4.0)
    >>> background = np.full((48, 64, 3), 100, np.uint8)
    >>> for _ in range(20):
    ...     fgMask = backSub.apply(background)
    >>> frame = background.copy(); frame[10:20, 10:30] = (0, 0, 255)
    >>> fgMask = backSub.apply(frame)
    >>> sorted(np.unique(fgMask).tolist()), int((fgMask == 255).sum())
    ([0, 255], 200)
    >>> backSub.setShadowValue(100); backSub.getShadowValue()
    100
    """

    def __init__(self, history: int = 500, varThreshold: float = 16,
                 detectShadows: bool = True, *, config: ModelConfig | None = None,
                 threads: int | None = None) -> None:
        base = config if config is not None else ModelConfig()
        if not isinstance(base, ModelConfig):
            raise TypeError(f"config must be a ModelConfig, got {type(base).__name__}")
        self._threads = threads
        self._masker: MixtureMasker | None = None
        self._history = _check_history(history)
        self._var_threshold = _check_var_threshold(varThreshold)
        self._base = replace_section(base, **self._history_params(self._history, base),
                                     match_threshold=math.sqrt(self._var_threshold),
                                     shadows=_check_bool("detectShadows", detectShadows))
        if threads is not None and (isinstance(threads, bool)
                                    or not isinstance(threads, numbers.Integral)
                                    or not 1 <= threads <= MAX_THREADS):
            raise ValueError(f"threads must be an integer in 1..{MAX_THREADS} or None, "
                             f"got {threads!r}")

    # -- bgsub's side ---------------------------------------------------------------

    @staticmethod
    def _history_params(history: int, base: ModelConfig) -> dict:
        return {"learning_rate": 1.0 / history,
                "absorb_seconds": _ABSORB_PER_HISTORY * history / base.fps}

    @property
    def config(self) -> ModelConfig:
        """The bgsub model parameters the settings map onto (those of :attr:`masker`)."""
        return self._base

    def _channels(self) -> int:
        """Channels of the model's frames: MOG2's variances are summed over them (3 before
        the first frame: OpenCV's frames are BGR)."""
        shape = self._masker.frame_shape if self._masker is not None else None
        return 1 if shape is not None and len(shape) == 2 else 3

    @property
    def masker(self) -> MixtureMasker | None:
        """The :class:`~bgsub.model.masker.MixtureMasker` at work; None before the first frame."""
        return self._masker

    def _reconfigure(self, **changes) -> None:
        """Take new settings (validated first), keeping what the masker has learned."""
        self._base = replace_section(self._base, **changes)
        masker = self._masker
        if masker is None:
            return
        config = self._base
        if config == masker.config:
            return
        state = masker.__getstate__()
        old = masker.config
        if (config.k, config.min_variance, config.max_variance) != (
                old.k, old.min_variance, old.max_variance):
            state["arrays"]["state"] = _reencode(masker, state["arrays"]["state"], config)
        state["config"] = dataclasses.asdict(config)
        rebuilt = MixtureMasker.__new__(MixtureMasker)
        rebuilt.__setstate__(state)
        self._masker = rebuilt

    # -- OpenCV's side --------------------------------------------------------------

    def apply(self, image: np.ndarray, fgmask: np.ndarray | None = None,
              learningRate: float = -1) -> np.ndarray:
        """Classify a frame and learn from it: the foreground mask.

        Parameters
        ----------
        image : ndarray
            uint8 grey (H, W) or BGR (H, W, 3).  A frame of another size or
            channel count than the last one starts a new model, as in MOG2.
        fgmask : ndarray, optional
            uint8 (H, W) array the mask is written into (and returned).
        learningRate : float
            Negative (default): bgsub's own rates (``1 / history`` with the
            early frames' ``1 / t`` warm-up, foreground pixels at the slower
            rate that absorbs a stopped object after ``5 * history`` frames,
            faster learning after a sudden change of the whole scene).
            0: classify without learning.  1 (or more): start a new model
            from this frame (its mask is all background).  In between: every
            pixel learns at this rate for this frame, as in MOG2.

        Returns
        -------
        ndarray
            uint8 (H, W): 0 background, 255 foreground, the shadow value
            (127 unless set) a moving cast shadow.

        Raises
        ------
        ValueError
            For a frame that is not uint8 grey or BGR, a NaN rate, or an
            *fgmask* of another shape or dtype.
        """
        if not isinstance(image, np.ndarray):
            raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
        frame = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
        if frame.ndim not in (2, 3):
            raise ValueError(f"image must be grey (H, W) or BGR (H, W, 3), got shape "
                             f"{image.shape}")
        if (isinstance(learningRate, bool) or not isinstance(learningRate, numbers.Real)
                or math.isnan(learningRate)):
            raise ValueError(f"learningRate must be a number, got {learningRate!r}")
        rate = float(learningRate)
        out = None
        if fgmask is not None:
            h, w = frame.shape[:2]
            if (not isinstance(fgmask, np.ndarray) or fgmask.dtype != np.uint8
                    or fgmask.shape not in ((h, w), (h, w, 1))):
                raise ValueError(f"fgmask must be a uint8 array of shape {(h, w)}, got "
                                 f"{getattr(fgmask, 'dtype', type(fgmask).__name__)} "
                                 f"{getattr(fgmask, 'shape', '')}")
            if fgmask.ndim == 2 and fgmask.flags.c_contiguous:
                out = fgmask
        masker = self._masker
        if masker is None or masker.frame_shape != frame.shape:
            # a new model, as MOG2 starts one (kept only once it took the frame)
            masker = MixtureMasker(self._base, threads=self._threads)
        elif rate >= 1.0:
            masker.reset()
        mask = masker.apply(frame, None if rate < 0 or rate >= 1.0 else rate, out=out)
        self._masker = masker
        if fgmask is not None and out is None:
            fgmask[...] = mask.reshape(fgmask.shape)
            return fgmask
        return mask

    def getBackgroundImage(self, backgroundImage: np.ndarray | None = None) -> np.ndarray:
        """The mean of each pixel's top-ranked component: uint8, the frames' shape.

        Empty, shape (0, 0), before the first frame (as MOG2's).  Written
        into *backgroundImage* when it is an array of that shape and dtype
        uint8.
        """
        if self._masker is None or self._masker.frame_shape is None:
            return np.zeros((0, 0), np.uint8)
        image = self._masker.background_image()
        if backgroundImage is None:
            return image
        if (not isinstance(backgroundImage, np.ndarray) or backgroundImage.dtype != np.uint8
                or backgroundImage.shape != image.shape):
            raise ValueError(f"backgroundImage must be a uint8 array of shape {image.shape}")
        backgroundImage[...] = image
        return backgroundImage

    def clear(self) -> None:
        """Forget the model: the next frame starts a new one."""
        self._masker = None

    def empty(self) -> bool:
        """False, as OpenCV's MOG2 answers: the subtractor is ready for frames."""
        return False

    def getDefaultName(self) -> str:
        """``"bgsub.BackgroundSubtractorGMM"`` (OpenCV's Algorithm name)."""
        return "bgsub.BackgroundSubtractorGMM"

    def getHistory(self) -> int:
        """Frames of history: the learning rate is ``1 / history``."""
        return self._history

    def setHistory(self, history: int) -> None:
        """Set the learning rate to ``1 / history`` and absorb stopped objects after
        ``5 * history`` frames (MOG2: a shorter history absorbs them sooner)."""
        history = _check_history(history)
        self._reconfigure(**self._history_params(history, self._base))
        self._history = history

    def getVarThreshold(self) -> float:
        """The threshold on the squared distance, in variances (``match_threshold**2``)."""
        return self._var_threshold

    def setVarThreshold(self, varThreshold: float) -> None:
        """Set ``match_threshold = sqrt(varThreshold)``: larger, fewer foreground pixels."""
        value = _check_var_threshold(varThreshold)
        self._reconfigure(match_threshold=math.sqrt(value))
        self._var_threshold = value

    def getVarThresholdGen(self) -> float:
        """The threshold a value matches a component with to update it: bgsub's is varThreshold."""
        return self._var_threshold

    def setVarThresholdGen(self, varThresholdGen: float) -> None:
        """No equivalent: bgsub matches and classifies with one threshold (setVarThreshold)."""
        raise NotImplementedError("bgsub matches and classifies with one threshold: set it "
                                  "with setVarThreshold()")

    def getNMixtures(self) -> int:
        """Gaussians per pixel (``k``)."""
        return self._base.k

    def setNMixtures(self, nmixtures: int) -> None:
        """Set ``k`` (1..8): a pixel keeps its top-ranked components."""
        self._reconfigure(k=_check_int("nmixtures", nmixtures))

    def getBackgroundRatio(self) -> float:
        """T: components belong to the background until their weights add up to it."""
        return self._base.background_ratio

    def setBackgroundRatio(self, ratio: float) -> None:
        """Set T (``background_ratio``) in (0, 1)."""
        self._reconfigure(background_ratio=_check_float("ratio", ratio))

    def getVarInit(self) -> float:
        """Variance of a new component, summed over the channels: ``C * init_variance``."""
        return self._base.init_variance * self._channels()

    def setVarInit(self, varInit: float) -> None:
        """Set ``init_variance = varInit / C`` (within [varMin, varMax])."""
        self._reconfigure(init_variance=_check_float("varInit", varInit) / self._channels())

    def getVarMin(self) -> float:
        """The least variance, summed over the channels: ``C * min_variance``."""
        return self._base.min_variance * self._channels()

    def setVarMin(self, varMin: float) -> None:
        """Set ``min_variance = varMin / C`` (at most varInit)."""
        self._reconfigure(min_variance=_check_float("varMin", varMin) / self._channels())

    def getVarMax(self) -> float:
        """The greatest variance, summed over the channels: ``C * max_variance``."""
        return self._base.max_variance * self._channels()

    def setVarMax(self, varMax: float) -> None:
        """Set ``max_variance = varMax / C`` (at least varInit)."""
        self._reconfigure(max_variance=_check_float("varMax", varMax) / self._channels())

    def getComplexityReductionThreshold(self) -> float:
        """0.0: bgsub never drops a component (it keeps ``k`` slots)."""
        return 0.0

    def setComplexityReductionThreshold(self, ct: float) -> None:
        """0 only (bgsub's behaviour); any other value raises NotImplementedError."""
        if _check_float("ct", ct) != 0.0:
            raise NotImplementedError("bgsub keeps k components per pixel and never drops "
                                      "one: only a complexity reduction threshold of 0 applies; "
                                      "set fewer with setNMixtures()")

    def getDetectShadows(self) -> bool:
        """Whether moving cast shadows are marked (``shadows``)."""
        return self._base.shadows

    def setDetectShadows(self, detectShadows: bool) -> None:
        """Mark shadows (with the shadow value) or not (then they are foreground or background)."""
        self._reconfigure(shadows=_check_bool("detectShadows", detectShadows))

    def getShadowValue(self) -> int:
        """Mask value of a shadow pixel (``shadow_value``)."""
        return self._base.shadow_value

    def setShadowValue(self, value: int) -> None:
        """Set the shadow's mask value, 0..254 (255 is foreground)."""
        self._reconfigure(shadow_value=_check_int("value", value))

    def getShadowThreshold(self) -> float:
        """Tau: the darkest shadow keeps this fraction of the background's light
        (``shadow_ratio_min``)."""
        return self._base.shadow_ratio_min

    def setShadowThreshold(self, threshold: float) -> None:
        """Set tau (``shadow_ratio_min``) in (0, 1): smaller, darker shadows are shadows."""
        self._reconfigure(shadow_ratio_min=_check_float("threshold", threshold))

    def __repr__(self) -> str:
        return (f"BackgroundSubtractorGMM(history={self._history}, "
                f"varThreshold={self._var_threshold}, detectShadows={self._base.shadows})")


def _reencode(masker: MixtureMasker, codes: np.ndarray, config: ModelConfig) -> np.ndarray:
    """*masker*'s state *codes* (a checkpoint's) laid out for *config*'s k and variance range.

    Fewer components keep each pixel's top-ranked ones with their weights
    renormalised to sum to one; more add empty slots (weight 0).  Variances
    are clamped to the new range.  The per-pixel flicker words that follow
    the state are kept.
    """
    decoded = masker.state()
    w, mu, var = decoded["w"], decoded["mu"], decoded["var"]
    k_old, k = w.shape[0], config.k
    if k < k_old:
        w, mu, var = w[:k], mu[:k], var[:k]
        total = w.sum(axis=0)
        w = np.where(total > 0, w / np.where(total > 0, total, 1), w)
    elif k > k_old:
        extra = k - k_old
        w = np.concatenate([w, np.zeros((extra, *w.shape[1:]), w.dtype)])
        mu = np.concatenate([mu, np.zeros((extra, *mu.shape[1:]), mu.dtype)])
        var = np.concatenate([var, np.full((extra, *var.shape[1:]), config.init_variance,
                                           var.dtype)])
    pixels = w.shape[1]
    flicker = codes[-pixels:]
    return np.concatenate([encode_state(w, mu, var, config.min_variance, config.max_variance),
                           flicker])


def _check_history(history) -> int:
    history = _check_int("history", history)
    if history < 1:
        raise ValueError(f"history must be >= 1 frame, got {history}")
    return history


def _check_var_threshold(value) -> float:
    value = _check_float("varThreshold", value)
    if not 0 < value < math.inf:
        raise ValueError(f"varThreshold must be a positive number, got {value}")
    return value


def _check_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _check_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)
