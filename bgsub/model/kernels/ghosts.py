"""Ghost release: the outline test of foreground blobs (Numba kernels).

When an object that was part of the background leaves (a parked car drives
off, a bag is picked up), the background it uncovers matches nothing in the
model and is foreground; with selective update it would stay so for the
whole absorption time, a *ghost*.  What tells a ghost from a real object is
its outline: a real object's edge is in the frame and not in the background
image (the model's top-ranked means), a ghost's edge is in the background
image (the object that left) and not in the frame (the floor continues
across it).

Blobs are connected groups (8-neighbours) of 8x8 cells that hold a pixel
foreground by its own classification (:mod:`bgsub.model.kernels.neighbours` marks
them; :func:`label_cells` labels them).  For each foreground
pixel p of a blob and each of its 8 neighbours q that is not foreground (q
is outside: p is on the blob's outline), if q is a settled background pixel
(its top weight at least 0.8, its flicker level at most 0.05: a reference
that means something), the blob sums ``||x_p - x_q||`` (the frame's
contrast) and ``||B_p - B_q||`` (the background image's).  The masker
(:class:`bgsub.model.backend.CpuBackend`) calls a blob a ghost when it has at least
8 outline pixels, at least one reference pair per outline pixel, and a frame
contrast below ``ghost_contrast`` times the background's; a cell that stays
in a ghost ``ghost_frames`` frames in a row is released: its foreground
pixels learn at ``ghost_rate`` and are background from the next frame on.

Float64 sums in the order of ``tests/naive.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .layout import BLOCK, FLICKER_ONE, W_ONE, dec_mu, mu_index, w_index
from .neighbours import GHOST_CELL

__all__ = ["track_ghosts", "ghost_outline", "label_cells", "REFERENCE_WEIGHT",
           "REFERENCE_FLICKER", "MIN_OUTLINE"]

REFERENCE_WEIGHT = 0.8
REFERENCE_FLICKER = 0.05
MIN_OUTLINE = 8


@njit(cache=True, error_model="numpy")
def _own_fg(aux, mask, release, p):
    return (np.int32(aux[p]) >> 15 != 0) and (mask[p] != 0 or release[p] != 0)


@njit(cache=True, nogil=True, error_model="numpy")
def ghost_outline(x, state, mask, aux, release, labels, count, h, w, k, nc, nv, outline,
                  frame_sum, model_sum, pairs):
    """Per blob label (0..count-1): outline pixels, reference pairs and the two contrast sums.

    ``labels`` (ceil(h / 8), ceil(w / 8)) int32: the cells' blob labels (0: no
    blob).  Cells are visited row by row, their pixels row by row.
    """
    planes = k * (1 + nc + nv)
    w_ref = np.float32(REFERENCE_WEIGHT) * W_ONE
    f_ref = np.int32(REFERENCE_FLICKER * FLICKER_ONE)
    for i in range(count):
        outline[i] = 0
        frame_sum[i] = 0.0
        model_sum[i] = 0.0
        pairs[i] = 0
    gh, gw = labels.shape
    for ci in range(gh):
        for cj in range(gw):
            lab = labels[ci, cj]
            if lab == 0:
                continue
            for y in range(ci * GHOST_CELL, min(h, (ci + 1) * GHOST_CELL)):
                for xx in range(cj * GHOST_CELL, min(w, (cj + 1) * GHOST_CELL)):
                    p = y * w + xx
                    if not _own_fg(aux, mask, release, p):
                        continue
                    sp = np.uint64((p // BLOCK) * planes * BLOCK + p % BLOCK)
                    on_outline = False
                    for dy in range(-1, 2):
                        for dx in range(-1, 2):
                            yy = y + dy
                            xq = xx + dx
                            if (dy == 0 and dx == 0) or yy < 0 or yy >= h or xq < 0 or xq >= w:
                                continue
                            q = yy * w + xq
                            if _own_fg(aux, mask, release, q):
                                continue
                            on_outline = True
                            sq = np.uint64((q // BLOCK) * planes * BLOCK + q % BLOCK)
                            if (np.float32(state[w_index(sq, 0)]) < w_ref
                                    or (np.int32(aux[q]) & FLICKER_ONE) > f_ref):
                                continue  # not a settled background: no reference
                            df = 0.0
                            dm = 0.0
                            for c in range(nc):
                                a = np.float64(x[p * nc + c]) - np.float64(x[q * nc + c])
                                b = (np.float64(dec_mu(state[mu_index(sp, 0, c, k, nc)]))
                                     - np.float64(dec_mu(state[mu_index(sq, 0, c, k, nc)])))
                                df += a * a
                                dm += b * b
                            frame_sum[lab] += math.sqrt(df)
                            model_sum[lab] += math.sqrt(dm)
                            pairs[lab] += 1
                    if on_outline:
                        outline[lab] += 1


@njit(cache=True, nogil=True, error_model="numpy")
def label_cells(cells, labels, stack):
    """Label the 8-connected groups of nonzero cells 1, 2, ... in ``labels``; returns count.

    A flood fill from each unlabelled cell in row-major order, with ``stack``
    (at least cells.size, int64) as its work list.  (OpenCV's labelling
    would start its thread pool in a masker asked to use one thread.)
    """
    gh, gw = cells.shape
    count = 0
    for i in range(gh):
        for j in range(gw):
            labels[i, j] = 0
    for i in range(gh):
        for j in range(gw):
            if cells[i, j] == 0 or labels[i, j] != 0:
                continue
            count += 1
            labels[i, j] = count
            top = 0
            stack[top] = i * gw + j
            top += 1
            while top > 0:
                top -= 1
                a, b = divmod(stack[top], gw)
                for u in range(max(0, a - 1), min(gh, a + 2)):
                    for v in range(max(0, b - 1), min(gw, b + 2)):
                        if cells[u, v] != 0 and labels[u, v] == 0:
                            labels[u, v] = count
                            stack[top] = u * gw + v
                            top += 1
    return count + 1


@njit(cache=True, nogil=True, error_model="numpy")
def track_ghosts(x, state, mask, aux, release, cells, labels, stack, run, h, w, k, nc, nv,
                 contrast, frames, every, releasing):
    """One ghost test: label the blobs, test their outlines, count, release (see above).

    ``cells`` from the neighbour pass; ``run`` (cells' shape, int32) the
    frames in a row each cell has been in a ghost, raised by ``every`` for
    a cell in a ghost now, else 0; cells at ``frames`` or more are released:
    ``release`` (N,) is rewritten when any is, or when ``releasing`` (some
    were last time).  Returns whether any cell is released.
    """
    gh, gw = cells.shape
    any_cell = False
    for i in range(gh):
        for j in range(gw):
            any_cell |= cells[i, j] != 0
    if not any_cell:
        for i in range(gh):
            for j in range(gw):
                run[i, j] = 0
    else:
        count = label_cells(cells, labels, stack)
        outline = np.zeros(count, np.int64)
        pairs = np.zeros(count, np.int64)
        frame_sum = np.zeros(count)
        model_sum = np.zeros(count)
        ghost_outline(x, state, mask, aux, release, labels, count, h, w, k, nc, nv, outline,
                      frame_sum, model_sum, pairs)
        ghost = np.zeros(count, np.bool_)
        for i in range(1, count):
            ghost[i] = ((outline[i] >= MIN_OUTLINE) and pairs[i] >= 1 and pairs[i] >= outline[i]
                        and frame_sum[i] < contrast * model_sum[i])
        for i in range(gh):
            for j in range(gw):
                run[i, j] = run[i, j] + every if ghost[labels[i, j]] else 0
    released = False
    for i in range(gh):
        for j in range(gw):
            released |= run[i, j] >= frames
    if released or releasing:
        for y in range(h):
            for xx in range(w):
                release[y * w + xx] = 1 if run[y // GHOST_CELL, xx // GHOST_CELL] >= frames else 0
    return released
