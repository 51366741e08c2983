"""Numba kernels of the per-pixel Stauffer–Grimson mixture, by concern.

* :mod:`~bgsub.model.kernels.layout`: the state (one flat uint16 array in tiles)
  and its 16-bit encoding;
* :mod:`~bgsub.model.kernels.frame`: the frame kernel, which classifies a frame and
  learns from it, built per model shape;
* :mod:`~bgsub.model.kernels.shadows`: the cast-shadow test and the pass that runs
  it on a tile's foreground;
* :mod:`~bgsub.model.kernels.neighbours`: the pass after the frame kernel: the
  neighbour match, shadows on grey backgrounds by texture, ghost cells;
* :mod:`~bgsub.model.kernels.ghosts`: the outline test that releases ghosts;
* :mod:`~bgsub.model.kernels.queries`: read-only queries (background means,
  log-likelihood, soft foreground probability);
* :mod:`~bgsub.model.kernels.build`: compiling a frame kernel with the LLVM options
  its vector loops need, one compilation at a time; the notice of a first
  run's compile; where Numba caches the kernels (per user, per version).

:class:`bgsub.model.backend.CpuBackend` puts them together for the masker.
"""

# first: its cache locator must be in place before any kernel is defined
from . import build  # noqa: F401
from .frame import RHO_ALPHA_OVER_W, RHO_GAUSSIAN, frame_kernel
from .layout import BLOCK, MU_ONE, W_ONE, decode_state, encode_state, plane_count, state_size
from .queries import (background_means, cell_log_likelihood, foreground_probability,
                      foreground_probability_at)
from .shadows import mark_shadows

__all__ = ["frame_kernel", "state_size", "plane_count", "encode_state", "decode_state",
           "background_means", "cell_log_likelihood", "foreground_probability", "foreground_probability_at",
           "mark_shadows",
           "RHO_ALPHA_OVER_W", "RHO_GAUSSIAN", "BLOCK", "W_ONE", "MU_ONE"]
