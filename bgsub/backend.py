"""Where the model's state lives and what runs on it: the CPU backend.

:class:`~bgsub.masker.MixtureMasker` holds the model's parameters and its
schedule (learning rates, recovery, bootstrap) and asks a backend for
everything per pixel: allocate a state, apply a frame, the log-likelihood,
the soft probability, the background, and the state as numbers.  The CPU
backend keeps the 16-bit tiled state of :mod:`bgsub.kernels.layout` and
runs the Numba kernels of :mod:`bgsub.kernels` over it, a frame's tiles shared
out by a :class:`~bgsub.tiles.TileRunner`.  Another backend (a GPU's) would
offer the same methods.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .config import ModelConfig
from .tiles import shared_runner

__all__ = ["CpuBackend"]

_LL_SAMPLES = 1024  # pixels in the log-likelihood's subsample, about
_LL_RUN = 32  # ... in runs of this many consecutive pixels
_RHO_CODES = {"alpha_over_weight": kernels.RHO_ALPHA_OVER_W, "gaussian": kernels.RHO_GAUSSIAN}


class CpuBackend:
    """The model's state and kernels on the CPU.

    Parameters
    ----------
    config : ModelConfig
        The model's parameters (its shape: k, covariance, rho, shadows; and
        the thresholds the kernels take).
    threads : int, optional
        Threads that share a frame out, the calling one included (default:
        Numba's count); backends asking for the same count share helpers.
    """

    def __init__(self, config: ModelConfig, threads: int | None = None) -> None:
        self.config = config
        self.requested_threads = threads
        self._runner = shared_runner(threads)
        self._state: np.ndarray | None = None
        self._dims: tuple[int, int, int, int] | None = None  # k, channels, variances, pixels
        self._kernels: dict[bool, object] = {}

    @property
    def threads(self) -> int:
        return self._runner.threads

    @property
    def nbytes(self) -> int:
        """Bytes of state; 0 before :meth:`allocate`."""
        return 0 if self._state is None else self._state.nbytes

    @property
    def dims(self) -> tuple[int, int, int, int] | None:
        """(k, channels, variances per component, pixels), None before :meth:`allocate`."""
        return self._dims

    def allocate(self, pixels: int, channels: int) -> None:
        """A state of empty slots (weight 0) for *pixels* pixels of *channels* channels."""
        cfg = self.config
        k = cfg.k
        variances = channels if cfg.covariance == "diagonal" else 1
        self._dims = (k, channels, variances, pixels)
        # empty slots (w = 0, mu = 0) with the initial variance, as one tile repeated
        one_tile = kernels.encode_state(
            np.zeros((k, kernels.BLOCK)), np.zeros((k, channels, kernels.BLOCK)),
            np.full((k, variances, kernels.BLOCK), cfg.init_variance), *self._var_range())
        self._state = np.tile(one_tile, -(-pixels // kernels.BLOCK))
        self._kernels = {True: self._kernel(learn=True)}  # classify-only: built on first use

    def release(self) -> None:
        """Forget the state."""
        self._state = self._dims = None
        self._kernels = {}

    def _kernel(self, learn: bool):
        k, channels, variances, _ = self._dims
        return kernels.frame_kernel(k, channels, variances, learn, _RHO_CODES[self.config.rho],
                                    self.config.shadows)

    def _tiles(self) -> int:
        return -(-self._dims[3] // kernels.BLOCK)

    def _var_range(self) -> tuple[np.float32, np.float32]:
        return np.float32(self.config.min_variance), np.float32(self.config.max_variance)

    def apply(self, x: np.ndarray, mask: np.ndarray, alpha: float | None) -> None:
        """Classify the flat frame *x* into the flat *mask*, then learn at *alpha*.

        ``alpha=None`` classifies without learning.
        """
        learn = alpha is not None
        kernel = self._kernels.get(learn)
        if kernel is None:
            kernel = self._kernels[learn] = self._kernel(learn)
        cfg = self.config
        w_init, var_init = (cfg.init_weight, cfg.init_variance) if learn else (0.0, 0.0)
        self._runner.run(kernel, (
            x, self._state, mask, self._dims[3], np.float32(alpha or 0.0),
            np.float32(cfg.match_threshold ** 2), np.float32(cfg.background_ratio),
            np.float32(w_init), np.float32(var_init), *self._var_range(),
            np.float32(cfg.shadow_ratio_min), np.float32(cfg.shadow_threshold ** 2),
            np.uint8(cfg.shadow_value)), self._tiles())

    def log_likelihood(self, x: np.ndarray) -> float:
        """Mean per-pixel log-likelihood (nats) of the flat frame *x* under the state.

        On runs of 32 consecutive pixels spread evenly over the frame, about
        1024 pixels in all.
        """
        n = self._dims[3]
        return kernels.mean_log_likelihood(x, self._state, *self._dims, *self._var_range(),
                                           self.config.outlier_weight,
                                           _LL_RUN * max(1, n // _LL_SAMPLES), _LL_RUN)

    def probability(self, x: np.ndarray) -> np.ndarray:
        """float32 (N,): the posterior that each pixel of *x* is not background."""
        out = np.empty(self._dims[3], np.float32)
        self._runner.run(kernels.foreground_probability, (
            x, self._state, *self._dims[:3], *self._var_range(),
            np.float32(self.config.background_ratio), self.config.outlier_weight, out),
            self._tiles())
        return out

    def background(self) -> np.ndarray:
        """uint8 (N, C): each pixel's top-ranked mean."""
        out = np.empty((self._dims[3], self._dims[1]), np.uint8)
        self._runner.run(kernels.background_means,
                         (self._state, *self._dims[:3], *self._var_range(), out), self._tiles())
        return out

    def decode(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """float32 weights (k, N), means (k, C, N), variances (k, V, N), in rank order."""
        return kernels.decode_state(self._state, *self._dims, *self._var_range())

    def codes(self) -> np.ndarray:
        """A copy of the stored state (its 16-bit codes), for a checkpoint."""
        return self._state.copy()

    def load_codes(self, codes: np.ndarray, pixels: int, channels: int) -> None:
        """Take a state saved by :meth:`codes` for *pixels* pixels of *channels* channels.

        Raises ValueError when its size does not fit that shape and the model.
        """
        self.allocate(pixels, channels)
        if codes.dtype != self._state.dtype or codes.shape != self._state.shape:
            raise ValueError(f"a state of {codes.size} {codes.dtype} codes does not fit "
                             f"{pixels} pixels of {channels} channels with k={self.config.k} "
                             f"({self._state.size} {self._state.dtype} codes)")
        self._state[:] = codes

    def encode(self, w: np.ndarray, mu: np.ndarray, var: np.ndarray) -> None:
        """Replace the state with these values (encoded, sorted into rank order)."""
        self._state[:] = kernels.encode_state(w, mu, var, *self._var_range())
