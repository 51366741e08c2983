"""What a mask's values mean, in one place.

A mask is uint8 (H, W): 255 foreground, 0 background, and any other value a
moving cast shadow (127 by default, OpenCV's convention; ``model.shadow_value``).
A shadow is never foreground: the display, the statistics, the evaluation,
the events and every count look at 255 alone.
"""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit

__all__ = ["FOREGROUND", "BACKGROUND", "SHADOW", "is_foreground", "foreground",
           "foreground_fraction", "blob_area"]

FOREGROUND = 255
BACKGROUND = 0
SHADOW = 127  # the default shadow value


@njit(inline="always", cache=True, nogil=True)
def is_foreground(v):
    """Whether a mask value is foreground (for Numba kernels; shadows are not)."""
    return v == FOREGROUND


def foreground(mask: np.ndarray) -> np.ndarray:
    """uint8 (H, W): 255 where *mask* is foreground, else 0."""
    return cv2.compare(mask, FOREGROUND - 1, cv2.CMP_GT)


def foreground_fraction(mask: np.ndarray) -> float:
    """The share of *mask*'s pixels that are foreground."""
    return cv2.countNonZero(foreground(mask)) / mask.size if mask.size else 0.0


def blob_area(contour: np.ndarray) -> float:
    """The pixels inside a blob's outer contour (from :func:`cv2.findContours`), holes included.

    The shoelace area of the outline through the edge pixels' centres, plus
    the half pixel outside it all round: exact for blobs whose outline runs
    along rows, columns and diagonals, and far cheaper than labelling the
    pixels (0.03 ms against 1.4 ms for a 640x360 mask).

    >>> mask = np.zeros((20, 20), np.uint8); mask[2:7, 3:11] = 255
    >>> contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    >>> blob_area(contours[0])
    40.0
    """
    return cv2.contourArea(contour) + cv2.arcLength(contour, True) / 2 + 1
