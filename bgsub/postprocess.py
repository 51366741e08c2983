"""Mask post-processing: median filter, opening, closing, small blobs, holes.

The steps run in a fixed order, each one optional (``[postprocess]`` in
``config.toml``):

1. **median filter** (``median_size``): each pixel takes the majority of its
   square window; removes salt-and-pepper noise and smooths outlines.  The
   frame's edge is extended by replication (OpenCV's ``medianBlur``).
2. **opening** (``open_size``): erosion then dilation; removes specks and
   threads thinner than the structuring element.
3. **closing** (``close_size``): dilation then erosion; bridges gaps and
   cracks narrower than the element.

   Both see the world beyond the frame's edge as background, except the
   opening's erosion, which ignores it: an object cut by the edge is not
   eaten there, and the closing does not glue an object to a nearby edge (it
   is computed on a copy padded with background, then cropped).
4. **small-blob removal** (``min_blob_area``): 8-connected foreground blobs
   of fewer pixels are removed.
5. **hole filling** (``fill_holes``, ``max_hole_area``): 4-connected
   background regions that do not touch the frame's edge (so are enclosed by
   foreground) become foreground, optionally only those of at most
   ``max_hole_area`` pixels.  4-connectivity is the dual of the blobs'
   8-connectivity: a ring closed only diagonally still encloses its hole.

Noise goes before the shape steps so that the opening does not have to eat
it and the closing does not glue it to objects; blobs are counted after the
morphology, which may split or merge them; holes are filled last, in the
blobs that survived.

**Shadows.**  Masks hold 0 (background), 127 (shadow) and 255 (foreground).
The steps see only the foreground set (255); shadows count as background for
them.  The output is 255 where the processed foreground is, else 127 where
the input was a shadow, else 0.  So a shadow pixel stays a shadow unless a
step makes it foreground (a closing or a filled hole that covers it), and a
foreground pixel a step removes becomes background, never shadow.

The class keeps its buffers between frames (reallocated only when the frame
size changes) and builds its structuring elements once.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
from numba import njit

from .config import PostprocessConfig

__all__ = ["Postprocessor"]

FOREGROUND, SHADOW = 255, 127
_SHAPES = {"ellipse": cv2.MORPH_ELLIPSE, "rect": cv2.MORPH_RECT, "cross": cv2.MORPH_CROSS}


class Postprocessor:
    """Clean up foreground masks with the steps of a :class:`PostprocessConfig`.

    Parameters
    ----------
    config : PostprocessConfig, optional
        The steps; the default turns every step off.
    **params
        Overrides of single fields, e.g. ``Postprocessor(min_blob_area=20)``.

    Examples
    --------
    >>> import numpy as np
    >>> post = Postprocessor(min_blob_area=3)
    >>> mask = np.zeros((5, 5), np.uint8)
    >>> mask[0, 0] = 255
    >>> mask[2:5, 2:5] = 255
    >>> post.apply(mask)[0, 0], post.apply(mask)[3, 3]
    (np.uint8(0), np.uint8(255))
    """

    def __init__(self, config: PostprocessConfig | None = None, **params) -> None:
        base = config if config is not None else PostprocessConfig()
        if not isinstance(base, PostprocessConfig):
            raise TypeError(f"config must be a PostprocessConfig, got {type(base).__name__}")
        # dataclasses.replace validates the fields again (ConfigError on bad values)
        self._config = dataclasses.replace(base, **params) if params else base
        c = self._config
        shape = _SHAPES[c.kernel_shape]
        self._open = (cv2.getStructuringElement(shape, (c.open_size, c.open_size))
                      if c.open_size > 1 else None)
        self._close = (cv2.getStructuringElement(shape, (c.close_size, c.close_size))
                       if c.close_size > 1 else None)
        self._size: tuple[int, int] | None = None

    @property
    def config(self) -> PostprocessConfig:
        """The steps in force (read-only)."""
        return self._config

    @property
    def active(self) -> bool:
        """False when every step is off: :meth:`apply` passes masks through."""
        return self._config.active

    def _allocate(self, size: tuple[int, int]) -> None:
        self._size = size
        self._fg = np.empty(size, np.uint8)
        self._tmp = np.empty(size, np.uint8)
        self._shadow = np.empty(size, np.uint8)
        self._labels = np.empty(size, np.int32)
        if self._close is not None:
            r = self._close.shape[0] // 2
            padded = (size[0] + 2 * r, size[1] + 2 * r)
            self._pad_in = np.empty(padded, np.uint8)
            self._pad_out = np.empty(padded, np.uint8)

    def apply(self, mask: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Run the configured steps over one mask.

        Parameters
        ----------
        mask : ndarray
            uint8 (H, W): 0 background, 127 shadow, 255 foreground.
        out : ndarray, optional
            uint8 (H, W) C-contiguous array for the result; may be *mask*
            itself (processing in place).

        Returns
        -------
        ndarray
            uint8 (H, W) with values in {0, 127, 255}: *out* when given, else a
            new array, or *mask* itself when every step is off.
        """
        if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.ndim != 2:
            raise ValueError("mask must be a uint8 array of shape (H, W), got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)} "
                             f"{getattr(mask, 'shape', '')}")
        if out is not None and (not isinstance(out, np.ndarray) or out.shape != mask.shape
                                or out.dtype != np.uint8 or not out.flags.c_contiguous):
            raise ValueError(f"out must be a C-contiguous uint8 array of shape {mask.shape}")
        if not self._config.active:
            if out is None:
                return mask
            if out is not mask:
                np.copyto(out, mask)
            return out
        if mask.shape != self._size:
            self._allocate(mask.shape)
        c = self._config
        fg, tmp = self._fg, self._tmp
        # the shadows are read now: *out* may be *mask*
        cv2.compare(mask, SHADOW, cv2.CMP_EQ, dst=self._shadow)
        cv2.bitwise_and(self._shadow, SHADOW, dst=self._shadow)
        cv2.compare(mask, FOREGROUND - 1, cv2.CMP_GT, dst=fg)
        if c.median_size > 1:
            cv2.medianBlur(fg, c.median_size, dst=tmp)
            fg, tmp = tmp, fg
        if self._open is not None:
            cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._open, dst=tmp)
            fg, tmp = tmp, fg
        if self._close is not None:
            self._closing(fg, tmp)
            fg, tmp = tmp, fg
        if c.min_blob_area > 0:
            self._remove_small_blobs(fg, c.min_blob_area)
        if c.fill_holes:
            self._fill_holes(fg, tmp, c.max_hole_area)
        if out is None:
            out = np.empty_like(mask)
        return cv2.max(fg, self._shadow, dst=out)

    def _closing(self, src: np.ndarray, dst: np.ndarray) -> None:
        """Close *src* into *dst* with background beyond the edge.

        OpenCV's closing erodes as if the outside were foreground, which fills
        a strip narrower than the element between an object and the edge.
        Padding by the element's radius with background keeps the dilation's
        spill beyond the edge, where the erosion then finds it.
        """
        r = self._close.shape[0] // 2
        cv2.copyMakeBorder(src, r, r, r, r, cv2.BORDER_CONSTANT, dst=self._pad_in, value=0)
        cv2.morphologyEx(self._pad_in, cv2.MORPH_CLOSE, self._close, dst=self._pad_out)
        np.copyto(dst, self._pad_out[r:-r, r:-r])

    def _remove_small_blobs(self, fg: np.ndarray, min_area: int) -> None:
        """Clear, in place, the 8-connected blobs of *fg* under *min_area* pixels."""
        # labels only: OpenCV's WithStats variant costs several times more than
        # the labelling itself, and the areas are one pass in _drop_small
        n, labels = cv2.connectedComponents(fg, labels=self._labels, connectivity=8,
                                            ltype=cv2.CV_32S)
        if n > 1:
            _drop_small(labels, n, min_area, fg)

    def _fill_holes(self, fg: np.ndarray, tmp: np.ndarray, max_area: int) -> None:
        """Set, in place, the background regions of *fg* enclosed by foreground."""
        cv2.bitwise_not(fg, dst=tmp)
        n, labels = cv2.connectedComponents(tmp, labels=self._labels, connectivity=4,
                                            ltype=cv2.CV_32S)
        if n > 2:  # the foreground, the outer background and at least one more region
            _fill_enclosed(labels, n, max_area, fg)


@njit(cache=True, nogil=True)
def _drop_small(labels, n, min_area, fg):
    """Set fg to 0 on every pixel whose label (not 0) has fewer than min_area pixels."""
    h, w = labels.shape
    area = np.zeros(n, np.int64)
    for y in range(h):
        for x in range(w):
            area[labels[y, x]] += 1
    small = False
    for i in range(1, n):
        if area[i] < min_area:
            small = True
            break
    if not small:
        return
    for y in range(h):
        for x in range(w):
            label = labels[y, x]
            if label != 0 and area[label] < min_area:
                fg[y, x] = 0


@njit(cache=True, nogil=True)
def _fill_enclosed(labels, n, max_area, fg):
    """Set fg to 255 on background regions (labels of the inverse, not 0) off the edge.

    A region touching the frame's edge is open to the outside, not a hole;
    with max_area > 0 only holes of at most max_area pixels are filled.
    """
    h, w = labels.shape
    area = np.zeros(n, np.int64)
    for y in range(h):
        for x in range(w):
            area[labels[y, x]] += 1
    hole = np.ones(n, np.bool_)
    hole[0] = False  # the foreground itself
    for x in range(w):
        hole[labels[0, x]] = False
        hole[labels[h - 1, x]] = False
    for y in range(h):
        hole[labels[y, 0]] = False
        hole[labels[y, w - 1]] = False
    if max_area > 0:
        for i in range(1, n):
            if area[i] > max_area:
                hole[i] = False
    for y in range(h):
        for x in range(w):
            if hole[labels[y, x]]:
                fg[y, x] = 255
