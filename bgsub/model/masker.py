"""The public masker: a per-pixel Stauffer–Grimson Gaussian mixture.

The masker knows frames (numpy arrays) and nothing else: no files, cameras or
windows.  It holds the model's parameters and schedule (learning rates,
recovery, bootstrap); the per-pixel work is its backend's
(:class:`bgsub.model.backend.CpuBackend`, the Numba kernels of :mod:`bgsub.model.kernels`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import threading
from pathlib import Path

import numpy as np

from .backend import LL_GRID, CpuBackend
from ..errors import BgsubError
from ..config import MAX_THREADS, ModelConfig, load_config, replace_section
from . import checkpoint
from .em import fit_mixtures

__all__ = ["MixtureMasker", "FrameSizeError", "absorption_frames", "rate_for_absorption"]


def _locked(method):
    """Run *method* under the masker's lock: one call at a time, whatever the thread."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return call


class FrameSizeError(BgsubError, ValueError):
    """A frame's size or channel count differs from the frames the model was built on.

    The model cannot take it without :meth:`MixtureMasker.reset`; the pipeline
    resets and carries on.

    Attributes
    ----------
    expected, got : tuple of int
        The shape of the model's frames and that of the frame refused.
    """

    def __init__(self, expected: tuple[int, ...], got: tuple[int, ...]) -> None:
        self.expected = tuple(expected)
        self.got = tuple(got)
        super().__init__(f"{self.change}; call reset() to start a new model")

    def __reduce__(self):  # rebuilt from its data (another thread's or process's error)
        return type(self), (self.expected, self.got)

    @property
    def change(self) -> str:
        """What differs, in words: ``frame size 7x4 differs from the model's 6x4``."""
        if self.got[:2] != self.expected[:2]:
            return (f"frame size {self.got[1]}x{self.got[0]} differs from the model's "
                    f"{self.expected[1]}x{self.expected[0]}")
        return (f"frame must be {_describe(self.expected)} like the earlier frames, got "
                f"{_describe(self.got)}")


def absorption_frames(learning_rate: float, background_ratio: float, init_weight: float) -> int:
    """Frames a stopped object stays foreground before it becomes background.

    An object that appears at a pixel and stays there is first unmatched: it
    replaces an empty slot and, after renormalisation, has weight
    ``w0 = w_init / (1 - alpha + w_init)``; that frame is foreground.  Every
    later frame matches it, and with weights summing to one, ``1 - w`` shrinks
    by ``(1 - alpha)`` per frame: after n matches ``1 - w_n = (1 - alpha)**n
    (1 - w0)``.  Each frame is classified *before* the model learns from it,
    and the object's component is background once the weight ranked above it,
    the old background's ``1 - w_n``, is at most T.  When T < 1/2 it gets there
    earlier, by out-ranking the old background as soon as ``w_n > 1/2``.  So
    the object is foreground for

    .. math:: F = 1 + \\left\\lceil \\frac{\\ln(T' / (1 - w_0))}{\\ln(1 - \\alpha)}
              \\right\\rceil, \\qquad T' = \\max(T, 1/2)

    frames (at least 1; for T < 1/2 the crossing must be strict, so an exact
    integer ratio counts one more) and background from frame F + 1 on.  With
    selective update the object's pixels learn at the foreground rate
    (:attr:`MixtureMasker.foreground_rate`, from ``absorb_seconds``): 2500
    frames with the defaults at 25 fps.  Were they to learn at the
    background's 0.002 (T = 0.6, w_init = 0.02) it would be 247 frames.

    The derivation assumes the warm-up is over (alpha, not 1/t, is in force),
    the pixel's old background carried all the weight, and the object is as
    noisy as the background (equal sigma, so rank follows weight).  A much
    steadier object out-ranks the old background sooner; so does one whose
    arrival raises its pixels' flicker level, and the 16-bit weights'
    truncation takes a few percent off at rates near 1e-4.

    OpenCV's MOG2 documentation says a stopped object is absorbed after
    ``backgroundRatio * history`` frames (450 with its defaults); the same
    derivation for MOG2's update gives 52, almost an order of magnitude fewer.

    Parameters
    ----------
    learning_rate : float
        The rate the object's pixels learn at, in (0, 1).
    background_ratio : float
        T in (0, 1).
    init_weight : float
        Initial weight of a new component, in (0, 1).

    Returns
    -------
    int
        The number of frames, counting the first one the object is present.
    """
    if not 0.0 < learning_rate < 1.0:
        raise ValueError(f"learning_rate must be in (0, 1), got {learning_rate}")
    w0 = init_weight / (1.0 - learning_rate + init_weight)
    if background_ratio >= 0.5:
        n = math.ceil(math.log(background_ratio / (1.0 - w0)) / math.log(1.0 - learning_rate))
    else:
        n = math.floor(math.log(0.5 / (1.0 - w0)) / math.log(1.0 - learning_rate)) + 1
    return 1 + max(0, n)


def rate_for_absorption(frames: float, background_ratio: float, init_weight: float) -> float:
    """The learning rate at which a stopped object stays foreground about *frames* frames.

    The inverse of :func:`absorption_frames`: ``1 - w_n = (1 - a)**n (1 - w0)``
    reaches ``T' = max(T, 1/2)`` after ``n = frames - 1`` matches, so
    ``a = 1 - (T' / (1 - w0))**(1 / (frames - 1))``, with w0 taken as
    ``w_init / (1 + w_init)`` (a is small).  ``absorption_frames(a, T,
    w_init)`` is then within a frame of *frames*.

    Examples
    --------
    >>> from bgsub.model.masker import absorption_frames, rate_for_absorption
    >>> a = rate_for_absorption(2500, 0.6, 0.02)
    >>> abs(absorption_frames(a, 0.6, 0.02) - 2500) <= 1
    True
    """
    if not frames >= 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    t_prime = max(background_ratio, 0.5)
    w0 = init_weight / (1.0 + init_weight)
    rate = 1.0 - (t_prime / (1.0 - w0)) ** (1.0 / max(frames - 1.0, 1.0))
    return min(max(rate, 1e-9), 1.0)


class MixtureMasker:
    """Background subtraction with a per-pixel adaptive Gaussian mixture.

    Every pixel keeps ``k`` Gaussians, updated online from each frame
    (Stauffer and Grimson's model, with selective update, a flicker level,
    neighbour match, ghost release, shadow detection and recovery from
    sudden changes).  :meth:`apply` classifies a frame against the model,
    then learns from it, and returns the mask: 0 background, 255 foreground,
    ``shadow_value`` (127) for a moving cast shadow.  The documentation's
    model page (``docs/model.md``) describes the model once; the
    configuration reference gives each parameter's default and what it rests
    on.  The per-pixel work is the backend's
    (:class:`bgsub.model.backend.CpuBackend`, the Numba kernels of
    :mod:`bgsub.model.kernels`, mirrored by ``tests/naive.py``).

    Parameters
    ----------
    config : ModelConfig, optional
        Base parameters; the defaults are those of the shipped ``config.toml``.
    threads : int, optional
        Threads that share out each frame's pixels, the calling one included,
        in :meth:`apply`, :meth:`background_image`,
        :meth:`foreground_probability` and the EM bootstrap (default: as many
        as Numba has, ``NUMBA_NUM_THREADS``, by default the number of CPUs;
        at most 256).  The masks do not depend on it.  Splitting a frame
        costs CPU of its own (handing out tiles, a second core's cache misses:
        up to about 10% more CPU a frame with two threads than with one, on 2
        cores), so where other work keeps every core busy anyway, as in the
        ``bgsub`` command writing a video, fewer threads leave that CPU to it.
        ``threads=1`` starts no thread at all, whatever threading layer Numba
        uses.
    fps : float, optional
        The source's frame rate, in (0, 1000], in which ``absorb_seconds`` is
        counted (default: ``config.fps``).
    **params
        Single parameters overriding ``config`` (``k``, ``learning_rate``,
        ``match_threshold``, ``background_ratio``, ``init_weight``,
        ``init_variance``, ``min_variance``, ``max_variance``, ``rho``,
        ``shadows``, ``shadow_value``, ...); see
        :class:`bgsub.config.ModelConfig`.

    Notes
    -----
    A masker may be shared between threads: its methods take a lock, so
    calls run one at a time and never see a half-updated model.  Frames from
    two threads then interleave in one model, which is rarely what a caller
    wants: give each camera (each thread) its own masker, with the thread
    count it should use.

    Examples
    --------
    >>> import numpy as np
    >>> from bgsub import MixtureMasker
    >>> m = MixtureMasker(k=3, learning_rate=0.01)
    >>> frame = np.full((48, 64, 3), 100, np.uint8)
    >>> mask = m.apply(frame)
    >>> mask.shape, mask.dtype
    ((48, 64), dtype('uint8'))
    """

    def __init__(self, config: ModelConfig | None = None, *, threads: int | None = None,
                 fps: float | None = None, **params) -> None:
        base = config if config is not None else ModelConfig()
        if not isinstance(base, ModelConfig):
            raise TypeError(f"config must be a ModelConfig, got {type(base).__name__}")
        if threads is not None and (isinstance(threads, bool)
                                    or not isinstance(threads, numbers.Integral)
                                    or not 1 <= threads <= MAX_THREADS):
            raise ValueError(f"threads must be an integer in 1..{MAX_THREADS} or None, "
                             f"got {threads!r}")
        threads = None if threads is None else int(threads)
        self._lock = threading.RLock()
        self._config = replace_section(base, **params) if params else base
        if fps is not None and not (isinstance(fps, numbers.Real) and 0 < fps <= 1000):
            raise ValueError(f"fps must be a number in (0, 1000] or None, got {fps!r}")
        self._fps = float(fps) if fps is not None else self._config.fps
        cfg = self._config
        self._alpha_fg = rate_for_absorption(cfg.absorb_seconds * self._fps,
                                             cfg.background_ratio, cfg.init_weight)
        self._backend = CpuBackend(self._config, threads)
        self.reset()

    @classmethod
    def from_config(cls, path: str | Path, **params) -> "MixtureMasker":
        """Build a masker from the ``[model]`` section of a TOML file."""
        return cls(load_config(path).model, **params)

    @property
    def config(self) -> ModelConfig:
        """The model parameters in force (read-only)."""
        return self._config

    @property
    def threads(self) -> int:
        """Threads that share out each frame's pixels, the calling one included."""
        return self._backend.threads

    @property
    def fps(self) -> float:
        """Frames per second that ``absorb_seconds`` is counted in."""
        return self._fps

    @property
    def foreground_rate(self) -> float:
        """The learning rate of a steady foreground pixel (selective update).

        A stopped object stays foreground for ``absorption_frames(
        foreground_rate, background_ratio, init_weight)`` frames: about
        ``absorb_seconds * fps``.
        """
        return self._alpha_fg

    @property
    def frames_learned(self) -> int:
        """Frames the model has learned from since creation or :meth:`reset`."""
        return self._t

    @property
    def frame_shape(self) -> tuple[int, ...] | None:
        """Shape of the frames the model was built on, or None before the first."""
        return self._shape

    @property
    def state_nbytes(self) -> int:
        """Bytes of model state (16-bit codes, see :mod:`bgsub.model.kernels.layout`); 0 before the
        first frame.

        Every frame reads and writes all of it once.
        """
        return self._backend.nbytes

    @_locked
    def reset(self) -> None:
        """Forget everything: the next frame starts a new model, of any size."""
        self._t = 0
        self._ll = math.nan
        self._ll_average: np.ndarray | None = None  # per cell of the likelihood's grid
        self._recovery_left = 0
        self._boosted = False  # whether the last frame learned at recovery_rate
        self._last_x: np.ndarray | None = None
        self._bootstrap: np.ndarray | None = None  # frames collected for the EM fit
        self._shape: tuple[int, ...] | None = None
        self._backend.release()

    def _allocate(self, shape: tuple[int, ...], bootstrap: bool | None = None) -> None:
        """The state for frames of *shape*, and the EM bootstrap's frames when
        *bootstrap* (default: when the configuration starts by EM)."""
        channels = 1 if len(shape) == 2 else shape[2]
        n = shape[0] * shape[1]
        self._shape = shape
        self._backend.allocate(n, channels, shape[1])
        if bootstrap is None:
            bootstrap = self._config.init != "first-frame"
        if bootstrap:
            self._bootstrap = np.empty((n, self._config.init_frames, channels), np.uint8)

    def _check_frame(self, frame) -> np.ndarray:
        if not isinstance(frame, np.ndarray):
            raise TypeError(f"frame must be a numpy array, got {type(frame).__name__}")
        if frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8, got {frame.dtype}")
        if frame.ndim == 3 and frame.shape[2] == 1:
            frame = frame[:, :, 0]
        if not (frame.ndim == 2 or frame.ndim == 3 and frame.shape[2] == 3):
            raise ValueError("frame must be grey (H, W) or BGR (H, W, 3), "
                             f"got shape {frame.shape}")
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise ValueError(f"frame is empty: shape {frame.shape}")
        if self._shape is not None and frame.shape != self._shape:
            raise FrameSizeError(self._shape, frame.shape)
        return np.ascontiguousarray(frame)

    @_locked
    def apply(self, frame: np.ndarray, learning_rate: float | None = None,
              out: np.ndarray | None = None) -> np.ndarray:
        """Classify a frame, then update the model with it.

        Parameters
        ----------
        frame : ndarray
            uint8 grey (H, W) or BGR (H, W, 3); every frame must have the shape
            of the first one (or call :meth:`reset`).
        learning_rate : float, optional
            alpha for this frame in [0, 1].  None uses the configured rate with
            the early-frame warm-up ``max(alpha, 1/t)``; 0 classifies without
            changing any state.
        out : ndarray, optional
            uint8 (H, W) C-contiguous array to write the mask into.

        Returns
        -------
        mask : ndarray
            uint8 (H, W): 0 background, 255 foreground, ``shadow_value``
            (127 by default) a moving cast shadow.

        Raises
        ------
        ValueError
            For a frame of another dtype, channel count or shape, or a
            learning rate outside [0, 1].  :class:`FrameSizeError` (a
            ValueError) when the size or channel count differs from the
            model's.
        """
        frame = self._check_frame(frame)
        if learning_rate is not None:
            learning_rate = float(learning_rate)
            if not 0.0 <= learning_rate <= 1.0:
                raise ValueError(f"learning_rate must be in [0, 1], got {learning_rate}")
        h, w = frame.shape[:2]
        if out is None:
            out = np.empty((h, w), np.uint8)
        elif (not isinstance(out, np.ndarray) or out.shape != (h, w) or out.dtype != np.uint8
              or not out.flags.c_contiguous):
            raise ValueError(f"out must be a C-contiguous uint8 array of shape {(h, w)}")
        elif np.shares_memory(out, frame):
            frame = frame.copy()  # the mask is written while the frame is read
        if self._shape is None:
            if learning_rate == 0.0:
                out.fill(0)
                return out
            self._allocate(frame.shape)
        x = frame.reshape(-1)
        flat = out.reshape(-1)
        cfg = self._config
        self._last_x = x
        # the likelihood of the frame under the model *before* it learns from it
        self._ll = self._backend.log_likelihood(x) if self._t > 0 else math.nan
        if learning_rate == 0.0:
            self._backend.apply(x, flat, None)
            return out
        self._t += 1
        self._boosted = learning_rate is None and self._recovering()
        if learning_rate is None:
            alpha = max(cfg.learning_rate, 1.0 / self._t)
            alpha_fg = self._alpha_fg
            if self._boosted:
                alpha = max(alpha, cfg.recovery_rate)
                alpha_fg = max(alpha_fg, cfg.recovery_rate)
        else:
            alpha = alpha_fg = learning_rate
        self._backend.apply(x, flat, alpha, alpha_fg, track_ghosts=self._t > 1)
        if self._t == 1:
            out.fill(0)  # the first frame *is* the model: nothing can be moving yet
        if self._bootstrap is not None:
            self._collect(x)
        return out

    def _collect(self, x: np.ndarray) -> None:
        """Keep a bootstrap frame, and refit every pixel by batch EM now and then.

        Fits after 2, 4, 8, ... frames and after the last one: the masks of the
        bootstrap come from the latest fit (plus online learning since), whose
        weights are the frequencies seen so far.  The online model alone gives
        a value that returns after one frame the low init_weight, and shows it
        as foreground (a ghost) for several frames.  Doubling keeps the total
        cost at about 2.5 times that of the final fit.
        """
        cfg = self._config
        count = self._t
        n, _, channels = self._bootstrap.shape
        self._bootstrap[:, count - 1, :] = x.reshape(n, channels)
        if count & (count - 1) and count < cfg.init_frames:
            return  # not a power of two, not the last
        fit = fit_mixtures(self._bootstrap[:, :count], cfg.k, covariance=cfg.covariance,
                           init="kmeans" if cfg.init == "em" else "random",
                           max_iter=cfg.em_max_iter, tol=cfg.em_tol, var_min=cfg.min_variance,
                           var_max=cfg.max_variance, return_responsibilities=False,
                           threads=self.threads)
        self._backend.encode(fit.weights.T, fit.means.transpose(1, 2, 0),
                             fit.variances.transpose(1, 2, 0))
        if count >= cfg.init_frames:
            self._bootstrap = None  # done: free the frames

    def _recovering(self) -> bool:
        """Track the log-likelihood per cell; True when this frame is to learn at recovery_rate.

        A frame in which at least ``recovery_cells`` of the grid's cells (of
        those sampled) fall more than recovery_drop below their running
        averages starts a recovery of recovery_frames frames (itself the
        first); when one ends, the averages start afresh.  An object, however
        close to the camera, leaves cells that still fit: only a change of
        the whole scene drops them all.
        """
        cfg = self._config
        if cfg.recovery_drop <= 0 or not math.isfinite(self._ll):
            return False
        count = self._backend.cell_count
        cells = self._backend.cell_sum / np.maximum(count, 1)
        if self._recovery_left == 0 and self._ll_average is not None:
            sampled = count > 0
            dropped = (cells < self._ll_average - cfg.recovery_drop) & sampled
            if dropped.sum() >= cfg.recovery_cells * sampled.sum():
                self._recovery_left = cfg.recovery_frames
        if self._recovery_left > 0:
            self._recovery_left -= 1
            if self._recovery_left == 0:
                self._ll_average = None  # start afresh on the recovered model
            return True
        # running averages over about ten frames
        self._ll_average = (cells.copy() if self._ll_average is None
                            else 0.9 * self._ll_average + 0.1 * cells)
        return False

    @property
    def log_likelihood(self) -> float:
        """Mean per-pixel log-likelihood (nats) of the last frame under the model.

        Taken before the model learned from the frame, over a regular subsample
        of 1024 pixels (2 runs of 8 pixels in each cell of an 8x8 grid over
        the frame), with the mixture ``p(x) = (1 - eps)
        sum_j w_j N(x | mu_j, Sigma_j) + eps / 256**C`` (eps =
        ``outlier_weight``; the uniform term keeps one unexplained pixel from
        dominating the mean).  NaN before the model has seen a frame.  A sudden
        drop means the scene no longer fits the model: with ``recovery_drop`` >
        0 the model then learns faster for a while, when the drop is spread
        over the frame (``recovery_cells`` of the grid's cells).
        """
        return self._ll

    @property
    def recovering(self) -> bool:
        """Whether the last frame was learned at ``recovery_rate`` (after a likelihood drop)."""
        return self._boosted

    @_locked
    def foreground_probability(self) -> np.ndarray:
        """Posterior that each pixel of the last frame is not background.

        ``P(fg | x) = 1 - (1 - eps) sum_{j in B} w_j N_j(x) / p(x)``: the
        background components B (those with at most T of weight ranked above
        them) against the other components and the uniform outlier term of
        ``p(x)`` (see :attr:`log_likelihood`).  Computed on demand from the
        last frame passed to :meth:`apply` (not copied: do not modify it in
        between) and the model as it is now, after learning from that frame.

        Returns
        -------
        ndarray
            float32 (H, W) in [0, 1].
        """
        if self._last_x is None:
            raise RuntimeError("foreground_probability() needs a frame: apply one first")
        return self._backend.probability(self._last_x).reshape(self._shape[:2])

    @_locked
    def foreground_probability_at(self, pixels: np.ndarray) -> np.ndarray:
        """:meth:`foreground_probability` at a few pixels of the last frame only.

        Parameters
        ----------
        pixels : ndarray
            Flat (row-major) pixel indices, ``y * width + x``.

        Returns
        -------
        ndarray
            float32, one per index: the values :meth:`foreground_probability`
            gives those pixels, for the cost of those pixels alone.
        """
        if self._last_x is None:
            raise RuntimeError("foreground_probability_at() needs a frame: apply one first")
        pixels = np.asarray(pixels, np.int64).reshape(-1)
        size = self._shape[0] * self._shape[1]
        if pixels.size and (pixels.min() < 0 or pixels.max() >= size):
            raise IndexError(f"pixel indices must be in 0..{size - 1}")
        return self._backend.probability_at(self._last_x, pixels)

    @_locked
    def background_image(self) -> np.ndarray:
        """The mean of each pixel's top-ranked component.

        Returns
        -------
        ndarray
            uint8, the shape of the frames.

        Raises
        ------
        RuntimeError
            Before the first frame.
        """
        if self._shape is None:
            raise RuntimeError("background_image() needs a model: apply a frame first")
        return self._backend.background().reshape(self._shape)

    @_locked
    def state(self) -> dict[str, np.ndarray]:
        """The model's weights ``w`` (k, N), means ``mu`` (k, C, N) and variances ``var`` (k, V, N).

        float32 copies decoded from the stored 16-bit planes (see
        :mod:`bgsub.model.kernels.layout` for the resolution); V is 1 for the spherical model
        and C for the diagonal one.  Each pixel's components come in rank
        order: index 0 is the top-ranked (largest w / sigma), empty slots
        (w = 0) last.
        """
        if self._shape is None:
            raise RuntimeError("state() needs a model: apply a frame first")
        w, mu, var = self._backend.decode()
        return {"w": w, "mu": mu, "var": var}

    # -- checkpoints and pickling ---------------------------------------------------

    @_locked
    def __getstate__(self) -> dict:
        """Everything the model has learned and carries from frame to frame (see
        :mod:`bgsub.model.checkpoint`): a masker restored from it makes the same
        masks, bit for bit, from the next frame on.

        Not the last frame: :meth:`foreground_probability` needs a new one.
        """
        arrays = {}
        ghost_frames = 0
        if self._shape is not None:
            arrays["state"] = self._backend.codes()
            arrays["ghosts"], ghost_frames = self._backend.ghost_codes()
        if self._bootstrap is not None:
            arrays["bootstrap"] = self._bootstrap.copy()
        return {
            "config": dataclasses.asdict(self._config),
            "threads": self._backend.requested_threads,
            "shape": list(self._shape) if self._shape is not None else None,
            "tracking": {"frames_learned": self._t,
                         "log_likelihood": None if math.isnan(self._ll) else self._ll,
                         "log_likelihood_average": (None if self._ll_average is None
                                                    else self._ll_average.tolist()),
                         "fps": self._fps,
                         "recovery_left": self._recovery_left, "recovering": self._boosted,
                         "ghost_test_frames": ghost_frames},
            "arrays": arrays,
        }

    def __setstate__(self, state: dict) -> None:
        """Restore a state of :meth:`__getstate__`, every part checked before any is used.

        Raises ValueError (TypeError for a part of the wrong kind) naming what
        does not fit; the sizes are checked before anything of the frame's
        size is allocated.
        """
        config, threads, fps, shape, tracking, arrays = _checked_state(state)
        self.__init__(config, threads=threads, fps=fps)
        if shape is None:
            return
        t = tracking["frames_learned"]
        self._allocate(shape, bootstrap=arrays.get("bootstrap") is not None)
        self._backend.load_codes(arrays["state"], shape[0] * shape[1],
                                 1 if len(shape) == 2 else 3, shape[1])
        self._backend.load_ghosts(arrays["ghosts"], tracking["ghost_test_frames"])
        if self._bootstrap is not None:
            self._bootstrap[:] = arrays["bootstrap"]
        self._t = t
        ll = tracking["log_likelihood"]
        self._ll = math.nan if ll is None else float(ll)
        average = tracking["log_likelihood_average"]
        self._ll_average = None if average is None else np.asarray(average, np.float64)
        self._recovery_left = tracking["recovery_left"]
        self._boosted = tracking["recovering"]

    def save(self, path: str | Path) -> None:
        """Write the model to *path* (atomically; see :mod:`bgsub.model.checkpoint`).

        :meth:`load` gives back a masker that makes the same masks.
        """
        checkpoint.write(path, self.__getstate__())

    @classmethod
    def load(cls, path: str | Path, *, threads: int | None = None) -> "MixtureMasker":
        """A masker from a file written by :meth:`save`.

        Raises :class:`bgsub.model.checkpoint.CheckpointError` (a ValueError) for a
        file that is not a checkpoint, of another format version, damaged or
        truncated.  *threads* overrides the thread count it was saved with.
        """
        return cls._from_state(checkpoint.read(path), str(path), threads)

    @classmethod
    def _from_state(cls, state: dict, name: str, threads: int | None) -> "MixtureMasker":
        masker = cls.__new__(cls)
        if threads is not None:
            state = {**state, "threads": threads}
        try:
            masker.__setstate__(state)
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
            raise checkpoint.CheckpointError(f"{name}: the checkpoint does not hold a usable "
                                             f"model ({exc})") from None
        return masker

    def __repr__(self) -> str:
        c = self._config
        return (f"MixtureMasker(k={c.k}, learning_rate={c.learning_rate}, "
                f"match_threshold={c.match_threshold}, background_ratio={c.background_ratio})")


def _integer(value, what: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{what} must be an integer >= {low}, got {value!r}")
    return int(value)


def _number(value, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number or null, got {value!r}")
    return float(value)


def _checked_state(state) -> tuple:
    """The parts of a saved state, each of the right kind and size for the others.

    Returns (config, threads, fps, shape, tracking, arrays); raises
    ValueError naming the first part that does not fit.  Nothing of the
    frame's size is allocated here: the arrays' shapes are compared with the
    ones the configuration and frame shape call for.
    """
    if not isinstance(state, dict):
        raise ValueError(f"a state must be a mapping, got {type(state).__name__}")
    for key, kind in (("config", dict), ("tracking", dict), ("arrays", dict)):
        if not isinstance(state.get(key), kind):
            raise ValueError(f"its {key!r} must be a mapping, got "
                             f"{type(state.get(key)).__name__}")
    try:
        config = ModelConfig(**state["config"])
    except TypeError as exc:  # a setting it does not know, or one missing
        raise ValueError(f"its model settings do not fit this bgsub ({exc})") from None
    threads = state.get("threads")
    if threads is not None:
        threads = _integer(threads, "threads", 1)
    tracking = dict(state["tracking"])
    fps = _number(tracking.get("fps"), "fps")
    shape = state.get("shape")
    if shape is not None:
        if (not isinstance(shape, (list, tuple)) or len(shape) not in (2, 3)
                or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
                       for v in shape) or len(shape) == 3 and shape[2] != 3):
            raise ValueError(f"a frame shape of {shape!r}: expected [height, width] or "
                             "[height, width, 3]")
        shape = tuple(int(v) for v in shape)
    checked = {
        "frames_learned": _integer(tracking.get("frames_learned"), "frames_learned"),
        "log_likelihood": _number(tracking.get("log_likelihood"), "log_likelihood"),
        "recovery_left": _integer(tracking.get("recovery_left"), "recovery_left"),
        "ghost_test_frames": _integer(tracking.get("ghost_test_frames", 0),
                                      "ghost_test_frames"),
    }
    recovering = tracking.get("recovering")
    if not isinstance(recovering, bool):
        raise ValueError(f"recovering must be true or false, got {recovering!r}")
    checked["recovering"] = recovering
    average = tracking.get("log_likelihood_average")
    if average is not None:
        cells = LL_GRID * LL_GRID
        if not isinstance(average, (list, tuple)) or len(average) != cells:
            raise ValueError(f"log_likelihood_average must be a list of {cells} numbers")
        average = [_number(v, "log_likelihood_average") for v in average]
        if None in average:
            raise ValueError("log_likelihood_average must hold numbers, not null")
    checked["log_likelihood_average"] = average
    arrays = state["arrays"]
    if any(not isinstance(a, np.ndarray) for a in arrays.values()):
        raise ValueError("its arrays must be numpy arrays")
    if shape is None:
        if arrays:
            raise ValueError(f"arrays ({', '.join(arrays)}) without a frame shape")
        return config, threads, fps, shape, checked, {}
    pixels, channels = shape[0] * shape[1], 1 if len(shape) == 2 else 3
    expected = {"state": ((CpuBackend.code_count(config, pixels, channels),), np.uint16),
                "ghosts": (CpuBackend.ghost_shape(shape[0], shape[1]), np.int32)}
    # the EM bootstrap's frames, while it still collects them
    if config.init != "first-frame" and checked["frames_learned"] < config.init_frames:
        expected["bootstrap"] = ((pixels, config.init_frames, channels), np.uint8)
    if set(arrays) != set(expected):
        raise ValueError(f"arrays {sorted(arrays)} where a model of {_describe(shape)} "
                         f"{shape[1]}x{shape[0]} frames holds {sorted(expected)}")
    for name, (size, dtype) in expected.items():
        array = arrays[name]
        if array.dtype != dtype or array.shape != size:
            raise ValueError(f"its {name!r} is {array.dtype} {array.shape}; the model's "
                             f"settings and frames of {shape[1]}x{shape[0]} call for "
                             f"{np.dtype(dtype)} {size}")
    return config, threads, fps, shape, checked, arrays


def _describe(shape: tuple[int, ...]) -> str:
    return "grey (H, W)" if len(shape) == 2 else f"BGR (H, W, {shape[2]})"
