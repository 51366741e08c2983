"""Watched regions: polygon rasterisation, include and exclude, a mask image."""

import cv2
import numpy as np
import pytest

from bgsub.regions import (Region, RegionError, outlines, parse_polygon, polygon_mask,
                           region_mask)


def on_segment(px, py, ax, ay, bx, by, eps=1e-9):
    cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    return (abs(cross) <= eps * max(1.0, abs(bx - ax) + abs(by - ay))
            and min(ax, bx) - eps <= px <= max(ax, bx) + eps
            and min(ay, by) - eps <= py <= max(ay, by) + eps)


def inside(px, py, polygon):
    """Point in polygon, the outline included: ray casting, one point at a time."""
    pts = list(zip(polygon[0::2], polygon[1::2]))
    hit = False
    for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1]):
        if on_segment(px, py, ax, ay, bx, by):
            return True
        if (ay > py) != (by > py) and px < ax + (py - ay) * (bx - ax) / (by - ay):
            hit = not hit
    return hit


def naive_mask(polygon, width, height, scale=(1.0, 1.0)):
    sx, sy = scale
    return np.array([[inside((j + 0.5) * sx - 0.5, (i + 0.5) * sy - 0.5, polygon)
                      for j in range(width)] for i in range(height)])


@pytest.mark.parametrize("seed", range(12))
def test_random_polygons_match_a_point_by_point_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 9))
    # integer corners (outlines through pixel centres, flat edges) half the time
    points = rng.uniform(-3, 33, 2 * n)
    polygon = tuple(np.round(points) if seed % 2 else points)
    polygon = tuple(float(max(0.0, v)) for v in polygon)
    scale = [(1.0, 1.0), (2.0, 2.0), (1.5, 3.0)][seed % 3]
    w, h = int(32 / scale[0]), int(32 / scale[1])
    assert np.array_equal(polygon_mask(polygon, w, h, scale), naive_mask(polygon, w, h, scale))


def test_the_whole_frame_polygon_is_every_pixel_and_a_rectangle_its_pixels():
    w, h = 40, 30
    assert polygon_mask((0, 0, w - 1, 0, w - 1, h - 1, 0, h - 1), w, h).all()
    rect = polygon_mask((5, 4, 14, 4, 14, 9, 5, 9), w, h)
    expected = np.zeros((h, w), bool)
    expected[4:10, 5:15] = True
    assert np.array_equal(rect, expected)
    # cv2.fillPoly agrees on axis-aligned outlines
    filled = cv2.fillPoly(np.zeros((h, w), np.uint8), [np.array([[5, 4], [14, 4], [14, 9],
                                                                  [5, 9]], np.int32)], 1)
    assert np.array_equal(rect, filled.astype(bool))


def test_a_region_means_the_same_part_of_the_picture_at_every_scale():
    polygon = (40, 20, 119, 20, 119, 99, 40, 99)  # source pixels 40..119 x 20..99
    full = polygon_mask(polygon, 160, 120)
    half = polygon_mask(polygon, 80, 60, (2.0, 2.0))
    assert full.sum() == 80 * 80 and half.sum() == 40 * 40
    third = polygon_mask(polygon, 53, 40, (160 / 53, 3.0))
    assert abs(third.mean() - full.mean()) < 0.03


def test_include_exclude_and_mask_image_combine(tmp_path):
    w, h = 40, 20
    left = (0, 0, 19, 0, 19, 19, 0, 19)
    right = (20, 0, 39, 0, 39, 19, 20, 19)
    hole = (5, 5, 9, 5, 9, 9, 5, 9)
    assert region_mask(Region(), w, h) is None  # the whole frame
    only_left = region_mask(Region(include=(left,)), w, h)
    assert only_left.dtype == np.uint8 and set(np.unique(only_left)) == {0, 255}
    assert (only_left[:, :20] == 255).all() and (only_left[:, 20:] == 0).all()
    both = region_mask(Region(include=(left, right)), w, h)
    assert (both == 255).all()
    holed = region_mask(Region(include=(left,), exclude=(hole,)), w, h)
    assert (holed[5:10, 5:10] == 0).all() and holed.sum() == 255 * (400 - 25)
    everything_but = region_mask(Region(exclude=(hole,)), w, h)
    assert (everything_but == 0).sum() == 25
    # a mask image (white counts), half the frame's size, stretched to it
    image = np.zeros((10, 20), np.uint8)
    image[:, 10:] = 255
    path = tmp_path / "mask.png"
    cv2.imwrite(str(path), image)
    masked = region_mask(Region(mask_image=str(path)), w, h)
    assert (masked[:, 20:] == 255).all() and (masked[:, :20] == 0).all()
    half_and_half = region_mask(Region(include=(left, right), exclude=(hole,),
                                       mask_image=str(path)), w, h)
    assert (half_and_half[:, 20:] == 255).all() and (half_and_half[:, :20] == 0).all()
    with pytest.raises(RegionError, match="covers no pixel"):
        region_mask(Region(include=(left,), mask_image=str(path)), w, h)


def test_unreadable_mask_images_and_bad_polygons_are_refused(tmp_path):
    bad = tmp_path / "mask.png"
    bad.write_text("not an image")
    with pytest.raises(RegionError, match="not a readable image"):
        region_mask(Region(mask_image=str(bad)), 10, 10)
    with pytest.raises(RegionError, match="not a readable image"):
        Region(mask_image=str(tmp_path / "missing.png")).read_mask_image()
    assert parse_polygon("0,0, 10,0, 10,10") == (0, 0, 10, 0, 10, 10)
    for text, needle in [("0,0,10,0", "at least 3 points"), ("0,0,10,0,10", "x,y pairs"),
                         ("a,b,c,d,e,f", "expected x0,y0"), ("0,0,-1,0,5,5", ">= 0"),
                         ("", "expected x0,y0")]:
        with pytest.raises(RegionError, match=needle):
            parse_polygon(text)


def test_outlines_are_drawn_on_the_scored_grid():
    shapes = outlines(Region(include=((0, 0, 99, 0, 99, 49),), exclude=((10, 10, 20, 10,
                                                                         20, 20),)), (2.0, 2.0))
    (points, include), (_, excluded) = shapes
    assert include and not excluded
    assert points.dtype == np.int32 and points.tolist() == [[0, 0], [49, 0], [49, 24]]
