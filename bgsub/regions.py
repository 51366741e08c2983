"""The part of the picture that is watched: include and exclude polygons, a mask image.

A polygon is a flat sequence of source-frame pixel coordinates ``x0, y0, x1,
y1, ...`` (three points or more; 0, 0 is the top-left pixel's centre and
W-1, H-1 the bottom-right's, as DVR-Scan's ``-a``).  A pixel is inside when
its centre is inside the polygon or on its outline, so the polygon ``0,0,
W-1,0, W-1,H-1, 0,H-1`` is the whole frame.  A mask image counts its white
pixels (grey >= 128) and is stretched to the frame's size.

The watched region is the include polygons' union (the whole frame without
any), cut down to the mask image's white part where one is given, minus the
exclude polygons.  The model still learns from every pixel; only the score
looks at the region alone.

Frames may be scored smaller than they were recorded (``scan.downscale``):
:func:`region_mask` rasterises the same polygons on the smaller grid, each
small pixel standing for the source pixels it was averaged from, so a region
means the same at every scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import BgsubError

__all__ = ["Region", "RegionError", "parse_polygon", "polygon_mask", "region_mask",
           "outlines"]

Polygon = tuple[float, ...]

#: the largest coordinate a polygon may have: far beyond any frame, small enough
#: that the rasteriser's arithmetic stays exact and finite
MAX_COORDINATE = 1_000_000.0


class RegionError(BgsubError, ValueError):
    """A region that cannot be used (a user error)."""


def parse_polygon(text: str, option: str = "--region") -> Polygon:
    """``"x0,y0,x1,y1,..."`` as a polygon; RegionError when it is not one."""
    try:
        polygon = tuple(float(v) for v in text.replace(" ", ",").split(",") if v)
    except ValueError:
        polygon = ()
    if not polygon:
        raise RegionError(f"{option} {text!r}: expected x0,y0,x1,y1,x2,y2,... in pixels")
    check_polygon(polygon, f"{option} {text!r}")
    return polygon


def check_polygon(polygon: Polygon, name: str) -> None:
    """RegionError unless *polygon* holds three points or more, all finite and >= 0."""
    if len(polygon) < 6 or len(polygon) % 2:
        raise RegionError(f"{name}: a polygon needs x,y pairs of at least 3 points, got "
                          f"{len(polygon)} numbers")
    if not all(math.isfinite(v) and 0 <= v <= MAX_COORDINATE for v in polygon):
        raise RegionError(f"{name}: coordinates must be finite pixel positions >= 0 and "
                          f"<= {MAX_COORDINATE:.0f}")


def polygon_mask(polygon: Polygon, width: int, height: int,
                 scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """bool (height, width): the pixels whose centre is inside *polygon* or on its outline.

    *polygon* is in source pixels; the grid's pixel ``(i, j)`` has its centre
    at source position ``((j + 0.5) * sx - 0.5, (i + 0.5) * sy - 0.5)`` for
    ``scale = (sx, sy)``, the source pixels per grid pixel.
    """
    sx, sy = scale
    xs = np.asarray(polygon[0::2], np.float64)
    ys = np.asarray(polygon[1::2], np.float64)
    x0, y0, x1, y1 = xs, ys, np.roll(xs, -1), np.roll(ys, -1)
    eps = 1e-9
    out = np.zeros((height, width), bool)
    slanted = y0 != y1
    for i in range(height):
        yc = (i + 0.5) * sy - 0.5
        # the edges this row meets, the outline's end points included
        meets = slanted & (np.minimum(y0, y1) <= yc + eps) & (yc - eps <= np.maximum(y0, y1))
        # for inside/outside, an edge counts from its lower end up to (not
        # including) its upper end, so a vertex the outline passes counts once
        counts = slanted & (((y0 <= yc) & (yc < y1)) | ((y1 <= yc) & (yc < y0)))
        with np.errstate(divide="ignore", invalid="ignore"):
            at = x0 + (yc - y0) * (x1 - x0) / (y1 - y0)
        crossings = np.sort(at[counts])
        spans = [(crossings[k], crossings[k + 1]) for k in range(0, len(crossings) - 1, 2)]
        spans += [(x, x) for x in at[meets]]  # the outline itself is inside
        flat = (~slanted) & (np.abs(y0 - yc) <= eps)
        spans += [(min(a, b), max(a, b)) for a, b in zip(x0[flat], x1[flat])]
        row = out[i]
        for a, b in spans:
            # grid pixels j whose centre (j + 0.5) * sx - 0.5 lies in [a, b]
            j0 = max(0, math.ceil((a + 0.5) / sx - 0.5 - eps))
            j1 = min(width - 1, math.floor((b + 0.5) / sx - 0.5 + eps))
            if j0 <= j1:
                row[j0:j1 + 1] = True
    return out


@dataclass(frozen=True)
class Region:
    """What is watched: include and exclude polygons, and a mask image (all optional).

    Attributes
    ----------
    include, exclude : tuple of polygons
        Polygons in source pixels (see :func:`parse_polygon`).
    mask_image : str
        Path of an image whose white pixels are watched; "" for none.
    """

    include: tuple[Polygon, ...] = ()
    exclude: tuple[Polygon, ...] = ()
    mask_image: str = ""

    @property
    def whole_frame(self) -> bool:
        """Whether the region is the whole frame (nothing given)."""
        return not (self.include or self.exclude or self.mask_image)

    def read_mask_image(self) -> np.ndarray:
        """The mask image as grey uint8; RegionError when it cannot be read."""
        path = Path(self.mask_image)
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path.is_file() else None
        if image is None:
            raise RegionError(f"region mask {path}: not a readable image (expected a "
                              "black-and-white image, white = watched)")
        return image


def region_mask(region: Region, width: int, height: int,
                scale: tuple[float, float] = (1.0, 1.0),
                mask_image: np.ndarray | None = None) -> np.ndarray | None:
    """uint8 (height, width), 255 where watched, on a grid of *scale* source pixels per pixel.

    None for the whole frame.  *mask_image* is the region's image already
    read (default: read it).  RegionError when the region covers no pixel.
    """
    if region.whole_frame:
        return None
    if region.include:
        watched = np.zeros((height, width), bool)
        for polygon in region.include:
            watched |= polygon_mask(polygon, width, height, scale)
    else:
        watched = np.ones((height, width), bool)
    if region.mask_image:
        image = region.read_mask_image() if mask_image is None else mask_image
        watched &= cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST) >= 128
    for polygon in region.exclude:
        watched &= ~polygon_mask(polygon, width, height, scale)
    if not watched.any():
        raise RegionError(f"the region covers no pixel of the {round(width * scale[0])}x"
                          f"{round(height * scale[1])} frame (check --region, --exclude and "
                          "the mask image against the video's size)")
    return watched.astype(np.uint8) * 255


def outlines(region: Region, scale: tuple[float, float] = (1.0, 1.0)
             ) -> list[tuple[np.ndarray, bool]]:
    """Each polygon as int32 points on the scaled grid, with True for an include polygon.

    For drawing the region (:func:`cv2.polylines`).
    """
    sx, sy = scale
    shapes = []
    for polygons, include in ((region.include, True), (region.exclude, False)):
        for polygon in polygons:
            points = np.array(polygon, np.float64).reshape(-1, 2)
            points = (points + 0.5) / (sx, sy) - 0.5
            shapes.append((np.rint(points).astype(np.int32), include))
    return shapes
