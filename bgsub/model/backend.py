"""Where the model's state lives and what runs on it: the CPU backend.

:class:`~bgsub.model.masker.MixtureMasker` holds the model's parameters and its
schedule (learning rates, recovery, bootstrap) and asks a backend for
everything per pixel: allocate a state, apply a frame, the log-likelihood,
the soft probability, the background, and the state as numbers.  The CPU
backend keeps the 16-bit tiled state of :mod:`bgsub.model.kernels.layout` and
runs the Numba kernels of :mod:`bgsub.model.kernels` over it, a frame's tiles shared
out by a :class:`~bgsub.model.tiles.TileRunner`.  Another backend (a GPU's) would
offer the same methods.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .kernels import build, ghosts, layout, neighbours
from .kernels.layout import FLICKER_ONE
from ..config import ModelConfig
from .tiles import shared_runner

__all__ = ["CpuBackend"]

# The log-likelihood's subsample: per cell of an 8x8 grid, 2 runs of 8 pixels
# (1024 pixels in all); per cell, so that a drop can be told global or local.
LL_GRID = 8
_LL_ROWS = 2
_LL_RUN = 8
# frames of this many tiles or more share the neighbour pass out (from
# 640x480; 1280x720 gained a quarter once the helpers spin between jobs)
_SHARED_PASS_TILES = 128
_F0 = np.float32(0.0)
_GHOST_EVERY = 4  # frames between two ghost tests
_RHO_CODES = {"alpha_over_weight": kernels.RHO_ALPHA_OVER_W, "gaussian": kernels.RHO_GAUSSIAN}
# a scheduled kernel's last arguments, as the runner passes them (for their types)
_SCHEDULED = (np.zeros(8, np.int64), 1, 0, 1)
# CPU seconds to compile each kernel (measured with the default model, colour,
# k = 3, on an x86-64 machine with AVX2): what the notice of a first run adds up
_COMPILE_SECONDS = {"frame": 15.0, "neighbours": 6.0, "likelihood": 2.0, "ghosts": 3.0}


def _aligned_zeros(size: int, dtype) -> np.ndarray:
    """Zeros on a 64-byte boundary (a cache line): numpy only promises 16, and a
    vector load that straddles two lines costs two (about 2% of the frame
    kernel's time at 640x480)."""
    dtype = np.dtype(dtype)
    raw = np.zeros(size * dtype.itemsize + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + size * dtype.itemsize].view(dtype)


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
        self._height = self._width = 0
        self.cell_sum = np.zeros(LL_GRID * LL_GRID)
        self.cell_count = np.zeros(LL_GRID * LL_GRID, np.int64)

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

    def allocate(self, pixels: int, channels: int, width: int) -> None:
        """A state of empty slots (weight 0) for *pixels* pixels of *channels* channels.

        *width* is the frame's width (pixels in a row): the tests that look at
        neighbours need it.
        """
        cfg = self.config
        k = cfg.k
        variances = channels if cfg.covariance == "diagonal" else 1
        if width <= 0 or pixels % width:
            raise ValueError(f"{pixels} pixels are not rows of {width}")
        self._height, self._width = pixels // width, width
        # beside the state, per pixel: the flicker word (see kernels.frame) and
        # whether it belongs to a released ghost; per 8x8 cell, whether it holds
        # foreground and for how many frames in a row it has been in a ghost
        self._aux = _aligned_zeros(pixels, np.uint16)
        self._release = np.zeros(pixels, np.uint8)
        self._releasing = False
        self._frames = 0
        # the kernels' arguments that do not change from frame to frame
        lam2 = np.float32(cfg.match_threshold ** 2)
        tau2 = np.float32(cfg.shadow_threshold ** 2)
        var_range = self._var_range()
        value = np.uint8(cfg.shadow_value)
        # the frame kernel's mark for the texture test's candidates, which the
        # neighbour pass replaces: any value a mask cannot hold otherwise
        candidate = np.uint8(254 if cfg.shadow_value != 254 else 253)
        # the flicker level from which the neighbour match applies (never, off)
        gate = (int(cfg.neighbour_flicker * FLICKER_ONE) if cfg.neighbour_radius > 0
                else FLICKER_ONE + 1)
        self._fixed = {
            "init": (np.float32(cfg.init_weight), np.float32(cfg.init_variance)),
            "rates": (np.float32(1.0 / cfg.flicker_reference if cfg.flicker_reference > 0
                                 else 0.0), np.float32(cfg.ghost_rate),
                      np.float32(cfg.flicker_threshold),
                      np.float32(cfg.flicker_threshold_from), lam2,
                      np.float32(cfg.background_ratio)),
            "shadows": (*var_range, np.float32(cfg.shadow_ratio_min), tau2, value, candidate,
                        gate),
            "neighbours": (self._height, width, k, channels, variances, lam2,
                           np.float32(cfg.background_ratio), *var_range,
                           cfg.neighbour_radius, gate, candidate, value)}
        self._busy = np.zeros(-(-pixels // kernels.BLOCK), np.uint8)
        cells = (-(-self._height // neighbours.GHOST_CELL), -(-width // neighbours.GHOST_CELL))
        self._cells = np.zeros(cells, np.uint8)
        self._ghost_run = np.zeros(cells, np.int32)
        self._labels = np.zeros(cells, np.int32)
        self._stack = np.zeros(cells[0] * cells[1], np.int64)
        self._dims = (k, channels, variances, pixels)
        # empty slots (w = 0, mu = 0) with the initial variance, as one tile repeated
        one_tile = layout.empty_tile(k, channels, variances, cfg.init_variance,
                                     *self._var_range())
        self._state = _aligned_zeros(one_tile.size * -(-pixels // kernels.BLOCK), np.uint16)
        self._state[:] = np.tile(one_tile, -(-pixels // kernels.BLOCK))
        self._kernels = {}  # built on first use, with what the frames after it need

    def release(self) -> None:
        """Forget the state."""
        self._state = self._dims = None
        self._kernels = {}

    def _kernel(self, learn: bool, compiled: bool = True):
        k, channels, variances, _ = self._dims
        return kernels.frame_kernel(k, channels, variances, learn, _RHO_CODES[self.config.rho],
                                    self.config.shadows, self.config.shadow_texture, compiled)

    def _prepare(self, x: np.ndarray, mask: np.ndarray, learn: bool):
        """The frame kernel for *learn*, compiled; on the first frame, with the passes
        the next frames run (neighbours, log-likelihood, ghosts), so that a first
        run is told once what it waits for (:func:`bgsub.model.kernels.build.prepare`)."""
        kernel = self._kernel(learn, compiled=False)
        needs = [(kernel, kernels.frame.SIGNATURE, True, _COMPILE_SECONDS["frame"])]
        if not self._kernels:
            cfg = self.config
            passes = [(neighbours.neighbour_pass, "neighbours", (
                x, self._state, mask, self._aux, self._release, self._busy, self._cells,
                *self._fixed["neighbours"], False, False, *_SCHEDULED)),
                (kernels.cell_log_likelihood, "likelihood", (
                    x, self._state, *self._dims[:3], *self._var_range(), cfg.outlier_weight,
                    self._height, self._width, LL_GRID, _LL_ROWS, _LL_RUN, self.cell_sum,
                    self.cell_count, *_SCHEDULED))]
            if learn and cfg.ghost_frames > 0:
                passes.append((ghosts.track_ghosts, "ghosts", (
                    x, self._state, mask, self._aux, self._release, self._cells, self._labels,
                    self._stack, self._ghost_run, self._height, self._width, *self._dims[:3],
                    cfg.ghost_contrast, cfg.ghost_frames, _GHOST_EVERY, self._releasing)))
            needs += [(d, build.signature_of(d, args), False, _COMPILE_SECONDS[name])
                      for d, name, args in passes]
        build.prepare(needs)
        return kernel

    def _tiles(self) -> int:
        return -(-self._dims[3] // kernels.BLOCK)

    def _var_range(self) -> tuple[np.float32, np.float32]:
        return np.float32(self.config.min_variance), np.float32(self.config.max_variance)

    def apply(self, x: np.ndarray, mask: np.ndarray, alpha: float | None,
              alpha_fg: float | None = None, track_ghosts: bool = True) -> None:
        """Classify the flat frame *x* into the flat *mask*, then learn.

        Background pixels learn at *alpha*, foreground ones at *alpha_fg*
        (default: *alpha*), raised by their flicker level (see
        :mod:`bgsub.model.kernels.frame`).  ``alpha=None`` classifies without
        learning.  Then the neighbour pass (:mod:`bgsub.model.kernels.neighbours`)
        and, when learning and *track_ghosts*, the ghost test of
        :mod:`bgsub.model.kernels.ghosts`, whose releases take effect from the next
        frame.
        """
        learn = alpha is not None
        kernel = self._kernels.get(learn)
        if kernel is None:
            kernel = self._kernels[learn] = self._prepare(x, mask, learn)
        cfg = self.config
        fixed = self._fixed
        w_init, var_init = fixed["init"] if learn else (_F0, _F0)
        alpha = np.float32(alpha or 0.0)
        self._runner.run(kernel, (
            x, self._state, mask, self._aux, self._release, self._busy, self._dims[3], alpha,
            alpha if alpha_fg is None else np.float32(alpha_fg), *fixed["rates"], w_init,
            var_init, *fixed["shadows"]), self._tiles(), scheduled=True)
        # the ghost test runs every _GHOST_EVERY learned frames: only its frames
        # need the foreground's cells
        test_ghosts = learn and track_ghosts and cfg.ghost_frames > 0
        if test_ghosts:
            self._frames += 1
            test_ghosts = self._frames % _GHOST_EVERY == 0
        if test_ghosts:
            self._cells.fill(0)
        args = (x, self._state, mask, self._aux, self._release, self._busy, self._cells,
                *fixed["neighbours"], test_ghosts, self._releasing)
        # its work is in the few tiles with foreground: in small frames,
        # handing tiles to helpers once more a frame costs more than it saves
        # (320x240 on 2 cores)
        self._runner.run(neighbours.neighbour_pass, args, self._tiles(), scheduled=True,
                         share=self._tiles() >= _SHARED_PASS_TILES)
        if test_ghosts:
            self._track_ghosts(x, mask)

    def _track_ghosts(self, x: np.ndarray, mask: np.ndarray) -> None:
        """Count each cell's frames in a ghost; release those at ghost_frames (next frame).

        Tested every _GHOST_EVERY frames (a ghost lasts ghost_frames at the
        least, so the count loses nothing that matters), each test counting
        for that many frames.
        """
        cfg = self.config
        self._releasing = ghosts.track_ghosts(
            x, self._state, mask, self._aux, self._release, self._cells, self._labels,
            self._stack, self._ghost_run, self._height, self._width, *self._dims[:3],
            cfg.ghost_contrast, cfg.ghost_frames, _GHOST_EVERY, self._releasing)

    def log_likelihood(self, x: np.ndarray) -> float:
        """Mean per-pixel log-likelihood (nats) of the flat frame *x* under the state.

        On 2 runs of 8 pixels in each cell of an 8x8 grid over the frame (1024
        pixels; fewer for a frame under 8 rows or 8 columns); the cells'
        means stay in :attr:`cell_sum` / :attr:`cell_count`.  The grid's rows
        are shared out like tiles: the samples' state is out of cache by now
        (the frame kernel streamed the whole state since), and two threads
        wait for it side by side.
        """
        self._runner.run(kernels.cell_log_likelihood, (
            x, self._state, *self._dims[:3], *self._var_range(), self.config.outlier_weight,
            self._height, self._width, LL_GRID, _LL_ROWS, _LL_RUN, self.cell_sum,
            self.cell_count), LL_GRID, scheduled=True)
        return float(self.cell_sum.sum() / self.cell_count.sum())

    def probability(self, x: np.ndarray) -> np.ndarray:
        """float32 (N,): the posterior that each pixel of *x* is not background."""
        out = np.empty(self._dims[3], np.float32)
        self._runner.run(kernels.foreground_probability, (
            x, self._state, *self._dims[:3], *self._var_range(),
            np.float32(self.config.background_ratio), self.config.outlier_weight, out),
            self._tiles())
        return out

    def probability_at(self, x: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        """float32: the posterior of :meth:`probability` at the flat indices *pixels* only."""
        out = np.empty(len(pixels), np.float32)
        kernels.foreground_probability_at(
            x, self._state, *self._dims[:3], *self._var_range(),
            np.float32(self.config.background_ratio), self.config.outlier_weight,
            np.ascontiguousarray(pixels, np.int64), out)
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

    @staticmethod
    def code_count(config: ModelConfig, pixels: int, channels: int) -> int:
        """The length of :meth:`codes` for *pixels* pixels of *channels* channels, unallocated."""
        variances = channels if config.covariance == "diagonal" else 1
        planes = config.k * (1 + channels + variances)
        return -(-pixels // kernels.BLOCK) * planes * kernels.BLOCK + pixels

    @staticmethod
    def ghost_shape(height: int, width: int) -> tuple[int, int]:
        """The shape of :meth:`ghost_codes`'s counts for frames of *height* x *width*."""
        return -(-height // neighbours.GHOST_CELL), -(-width // neighbours.GHOST_CELL)

    def codes(self) -> np.ndarray:
        """A copy of the stored state (its 16-bit codes) and the flicker words, for a checkpoint."""
        return np.concatenate([self._state, self._aux])

    def ghost_codes(self) -> tuple[np.ndarray, int]:
        """A copy of the ghost test's per-cell counts, and the frames counted towards its schedule.

        With the state and flicker words of :meth:`codes`, all that a frame
        carries to the next: the released pixels follow from the counts.
        """
        return self._ghost_run.copy(), self._frames

    def load_ghosts(self, run: np.ndarray, frames: int) -> None:
        """Take the ghost test's counts and schedule saved by :meth:`ghost_codes`.

        Raises ValueError when they do not fit the frame size.
        """
        if (not isinstance(run, np.ndarray) or run.dtype != self._ghost_run.dtype
                or run.shape != self._ghost_run.shape):
            raise ValueError(f"ghost counts of shape {getattr(run, 'shape', None)} do not fit "
                             f"{self._ghost_run.shape} cells of int32")
        if run.size and int(run.min()) < 0:
            raise ValueError("a negative ghost count")
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 0:
            raise ValueError(f"a ghost test schedule of {frames!r} frames")
        self._ghost_run[:] = run
        self._frames = frames
        # the released pixels as the last test left them: those of the cells at
        # ghost_frames or more (see kernels.ghosts.track_ghosts)
        limit = self.config.ghost_frames
        released = (run >= limit) if limit > 0 else np.zeros_like(run, bool)
        self._releasing = bool(released.any())
        cell = neighbours.GHOST_CELL
        self._release[:] = np.repeat(np.repeat(released, cell, 0), cell, 1)[
            :self._height, :self._width].reshape(-1)

    def load_codes(self, codes: np.ndarray, pixels: int, channels: int, width: int) -> None:
        """Take a state saved by :meth:`codes` for *pixels* pixels of *channels* channels.

        Raises ValueError when its size does not fit that shape and the model.
        """
        self.allocate(pixels, channels, width)
        size = self._state.size + self._aux.size
        if codes.dtype != self._state.dtype or codes.shape != (size,):
            raise ValueError(f"a state of {codes.size} {codes.dtype} codes does not fit "
                             f"{pixels} pixels of {channels} channels with k={self.config.k} "
                             f"({size} {self._state.dtype} codes)")
        self._state[:] = codes[:self._state.size]
        self._aux[:] = codes[self._state.size:]

    def released(self) -> np.ndarray:
        """bool (N,): the pixels of released ghosts (background from the next frame)."""
        return self._release != 0

    def encode(self, w: np.ndarray, mu: np.ndarray, var: np.ndarray) -> None:
        """Replace the state with these values (encoded, sorted into rank order)."""
        self._state[:] = kernels.encode_state(w, mu, var, *self._var_range())
