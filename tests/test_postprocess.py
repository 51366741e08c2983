"""Post-processing steps against plain Python references, shadows, buffers and config."""

import dataclasses
from collections import deque

import cv2
import numpy as np
import pytest

from bgsub import ConfigError
from bgsub.config import Config, PostprocessConfig, apply_overrides
from bgsub.model.postprocess import Postprocessor
from naive import NaiveBlinkGate  # tests/naive.py, the plain reference


def only(**steps):
    """A Postprocessor with just these steps on (the shipped defaults turn several on)."""
    return Postprocessor(PostprocessConfig.off(), **steps)


# ---------------------------------------------------------------- plain references


def offsets(kernel):
    """(dy, dx) of the kernel's set cells, relative to its centre."""
    r = kernel.shape[0] // 2
    return [(y - r, x - r) for y, x in zip(*np.nonzero(kernel))]


def rect(n):
    return np.ones((n, n), np.uint8)


def cross(n):
    k = np.zeros((n, n), np.uint8)
    k[n // 2, :] = 1
    k[:, n // 2] = 1
    return k


def naive_median(fg, n):
    """Majority of the n x n window, the frame's edge replicated."""
    h, w = fg.shape
    out = np.zeros_like(fg)
    r = n // 2
    for y in range(h):
        for x in range(w):
            votes = 0
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    yy, xx = min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)
                    votes += fg[yy, xx]
            out[y, x] = votes > n * n // 2
    return out


def naive_erode(fg, kernel, outside):
    h, w = fg.shape
    out = np.zeros_like(fg)
    for y in range(h):
        for x in range(w):
            out[y, x] = all(fg[y + dy, x + dx] if 0 <= y + dy < h and 0 <= x + dx < w
                            else outside for dy, dx in offsets(kernel))
    return out


def naive_dilate(fg, kernel):
    h, w = fg.shape
    out = np.zeros_like(fg)
    for y in range(h):
        for x in range(w):
            out[y, x] = any(fg[y - dy, x - dx] for dy, dx in offsets(kernel)
                            if 0 <= y - dy < h and 0 <= x - dx < w)
    return out


def naive_opening(fg, kernel):
    """Erosion ignores the outside (an object cut by the edge is not eaten there)."""
    return naive_dilate(naive_erode(fg, kernel, outside=True), kernel)


def naive_closing(fg, kernel):
    """Closing on the unbounded plane, background beyond the frame.

    p is kept when every q in p + K lies in the dilation of the set, and the
    dilation is evaluated at q even where q is outside the frame.
    """
    h, w = fg.shape
    ks = offsets(kernel)

    def dilated(qy, qx):
        return any(fg[qy - dy, qx - dx] for dy, dx in ks
                   if 0 <= qy - dy < h and 0 <= qx - dx < w)

    out = np.zeros_like(fg)
    for y in range(h):
        for x in range(w):
            out[y, x] = all(dilated(y + dy, x + dx) for dy, dx in ks)
    return out


def components(cells, neighbours):
    """Connected components of a set of (y, x) cells, as lists of cells."""
    cells = set(cells)
    seen, result = set(), []
    for start in sorted(cells):
        if start in seen:
            continue
        seen.add(start)
        comp, todo = [], deque([start])
        while todo:
            y, x = todo.popleft()
            comp.append((y, x))
            for dy, dx in neighbours:
                nb = (y + dy, x + dx)
                if nb in cells and nb not in seen:
                    seen.add(nb)
                    todo.append(nb)
        result.append(comp)
    return result


N8 = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
N4 = [(-1, 0), (1, 0), (0, -1), (0, 1)]


def naive_remove_small(fg, min_area):
    out = fg.copy()
    for comp in components(zip(*np.nonzero(fg)), N8):
        if len(comp) < min_area:
            for y, x in comp:
                out[y, x] = False
    return out


def naive_fill_holes(fg, max_area=0):
    h, w = fg.shape
    out = fg.copy()
    for comp in components(zip(*np.nonzero(~fg)), N4):
        touches_edge = any(y in (0, h - 1) or x in (0, w - 1) for y, x in comp)
        if not touches_edge and (max_area == 0 or len(comp) <= max_area):
            for y, x in comp:
                out[y, x] = True
    return out


def random_mask(seed, shape=(23, 29), shadows=True):
    """Blobs of several sizes with holes, specks, and (optionally) shadow pixels."""
    rng = np.random.default_rng(seed)
    h, w = shape
    mask = np.zeros(shape, np.uint8)
    for _ in range(5):
        y, x = rng.integers(-3, h), rng.integers(-3, w)
        mask[max(y, 0):y + rng.integers(2, 10), max(x, 0):x + rng.integers(2, 10)] = 255
    mask[rng.random(shape) < 0.08] = 255  # specks
    mask[rng.random(shape) < 0.08] = 0  # pinholes
    if shadows:
        mask[(rng.random(shape) < 0.1) & (mask == 0)] = 127
    return mask


def expected_output(mask, fg_after):
    """The documented shadow rule: 255 where foreground after, else 127 where shadow before."""
    return np.where(fg_after, 255, np.where(mask == 127, 127, 0)).astype(np.uint8)


# ---------------------------------------------------------------- each step


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [3, 5, 7, 17])  # 17: box sums beyond 8 bits
def test_median_matches_a_plain_majority(seed, n):
    mask = random_mask(seed)
    out = only(median_size=n).apply(mask)
    assert np.array_equal(out, expected_output(mask, naive_median(mask == 255, n)))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("shape,n", [("rect", 3), ("cross", 5), ("ellipse", 5), ("rect", 5)])
def test_opening_and_closing_match_plain_references(seed, shape, n):
    mask = random_mask(seed + 10)
    kernel = {"rect": rect(n), "cross": cross(n),
              # the ellipse is OpenCV's digital disc: its shape is the definition
              "ellipse": cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (n, n))}[shape]
    fg = mask == 255
    opened = only(open_size=n, kernel_shape=shape).apply(mask)
    assert np.array_equal(opened, expected_output(mask, naive_opening(fg, kernel)))
    closed = only(close_size=n, kernel_shape=shape).apply(mask)
    assert np.array_equal(closed, expected_output(mask, naive_closing(fg, kernel)))
    both = only(open_size=n, close_size=n, kernel_shape=shape).apply(mask)
    assert np.array_equal(both, expected_output(mask, naive_closing(naive_opening(fg, kernel),
                                                                     kernel)))


def test_closing_does_not_glue_objects_to_the_edge_nor_eat_them():
    mask = np.zeros((12, 12), np.uint8)
    mask[2:8, 3:9] = 255  # two pixels from the top edge
    mask[9:12, 0:2] = 255  # cut by the bottom-left corner
    out = only(close_size=5, kernel_shape="rect").apply(mask)
    assert not out[:2].any()  # the strip above the object stays background
    assert (out[mask == 255] == 255).all()  # a closing only adds


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("min_area", [1, 3, 8])
def test_small_blob_removal_matches_a_plain_flood_fill(seed, min_area):
    mask = random_mask(seed + 20)
    out = only(min_blob_area=min_area).apply(mask)
    assert np.array_equal(out, expected_output(mask, naive_remove_small(mask == 255, min_area)))


def test_blobs_are_eight_connected():
    mask = np.zeros((6, 6), np.uint8)
    mask[1, 1] = mask[2, 2] = mask[3, 3] = 255  # one diagonal blob of 3
    mask[1, 4] = 255  # alone
    out = only(min_blob_area=2).apply(mask)
    assert out[1, 1] == out[2, 2] == out[3, 3] == 255 and out[1, 4] == 0


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("max_area", [0, 1, 4])
def test_hole_filling_matches_a_plain_flood_fill(seed, max_area):
    mask = random_mask(seed + 30, shape=(26, 31))
    out = only(fill_holes=True, max_hole_area=max_area).apply(mask)
    assert np.array_equal(out, expected_output(mask, naive_fill_holes(mask == 255, max_area)))


def test_a_diagonally_closed_ring_encloses_its_hole_but_an_open_one_does_not():
    mask = np.zeros((7, 7), np.uint8)
    for y, x in [(1, 3), (2, 2), (2, 4), (3, 1), (3, 5), (4, 2), (4, 4), (5, 3)]:
        mask[y, x] = 255  # a diamond: 8-connected ring, its inside 4-connected
    out = only(fill_holes=True).apply(mask)
    assert (out[2:5, 3] == 255).all() and out[3, 2] == 255 and out[3, 4] == 255
    assert out[0, 0] == 0
    mask[5, 3] = 0  # opened at the bottom: the inside reaches the edge
    mask[6, 3] = 0
    out = only(fill_holes=True).apply(mask)
    assert out[3, 3] == 0


@pytest.mark.parametrize("seed", range(3))
def test_all_steps_in_their_documented_order(seed):
    mask = random_mask(seed + 40, shape=(25, 27))
    fg = mask == 255
    kernel = rect(3)
    fg = naive_median(fg, 3)
    fg = naive_opening(fg, kernel)
    fg = naive_closing(fg, kernel)
    fg = naive_remove_small(fg, 4)
    fg = naive_fill_holes(fg, 6)
    post = only(median_size=3, open_size=3, close_size=3, kernel_shape="rect",
                         min_blob_area=4, fill_holes=True, max_hole_area=6)
    assert np.array_equal(post.apply(mask), expected_output(mask, fg))


# ---------------------------------------------------------------- shadows


def test_shadows_stay_unless_a_step_makes_them_foreground():
    mask = np.zeros((9, 9), np.uint8)
    mask[1:7, 1:7] = 255
    mask[3, 3] = 127  # a shadow pixel in a hole: filling makes it foreground
    mask[0, 8] = 127  # a lone shadow pixel: no step touches shadows
    mask[8, 0] = 255  # a lone foreground pixel removed: background, not shadow
    out = only(min_blob_area=2, fill_holes=True).apply(mask)
    assert out[3, 3] == 255 and out[0, 8] == 127 and out[8, 0] == 0
    assert set(np.unique(out)) <= {0, 127, 255}


@pytest.mark.parametrize("seed", range(3))
def test_shadows_count_as_background_for_every_step(seed):
    """A mask with shadows gives the foreground of the same mask with shadows set to 0."""
    mask = random_mask(seed + 50)
    no_shadow = np.where(mask == 127, 0, mask).astype(np.uint8)
    post = only(median_size=3, close_size=3, min_blob_area=3, fill_holes=True)
    out, ref = post.apply(mask), post.apply(no_shadow)
    assert np.array_equal(out == 255, ref == 255)
    assert np.array_equal(out == 127, (mask == 127) & (ref != 255))


# ---------------------------------------------------------------- API and buffers


def test_identity_when_every_step_is_off():
    mask = random_mask(1)
    post = only()
    assert not post.active and Postprocessor().active  # the shipped defaults do something
    assert post.apply(mask) is mask
    out = np.empty_like(mask)
    assert post.apply(mask, out=out) is out and np.array_equal(out, mask)


def test_in_place_and_out_and_size_changes():
    post = only(median_size=3, close_size=5, min_blob_area=3, fill_holes=True)
    for shape in [(20, 30), (41, 17), (20, 30)]:  # buffers follow the frame size
        mask = random_mask(7, shape)
        expected = post.apply(mask.copy())
        out = np.empty_like(mask)
        assert post.apply(mask, out=out) is out and np.array_equal(out, expected)
        same = mask.copy()
        assert post.apply(same, out=same) is same and np.array_equal(same, expected)
        assert post.apply(mask) is not mask


def test_bad_arguments():
    post = only(median_size=3)
    with pytest.raises(ValueError, match="mask must be a uint8 array of shape"):
        post.apply(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="mask must be a uint8"):
        post.apply(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="out must be a C-contiguous uint8 array"):
        post.apply(np.zeros((4, 4), np.uint8), out=np.zeros((4, 5), np.uint8))
    with pytest.raises(TypeError, match="config must be a PostprocessConfig"):
        Postprocessor({"median_size": 3})


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("params,needle", [
    ({"median_size": 4}, ("postprocess.median_size must be 0 or 1 (off) or an odd integer in "
                          "3..99, got 4")),
    ({"median_size": -1}, "postprocess.median_size"),
    ({"open_size": 101}, "postprocess.open_size must be 0 or 1 (off) or an odd integer"),
    ({"close_size": 2}, "postprocess.close_size"),
    ({"close_size": 3.0}, "postprocess.close_size must be int"),
    ({"kernel_shape": "disc"}, ("postprocess.kernel_shape must be one of 'ellipse', 'rect', "
                                "'cross', got 'disc'")),
    ({"min_blob_area": -5}, "postprocess.min_blob_area must be >= 0 (0 = off), got -5"),
    ({"max_hole_area": -1}, "postprocess.max_hole_area must be >= 0"),
    ({"fill_holes": 1}, "postprocess.fill_holes must be bool"),
    ({"blink_size": 10}, "postprocess.blink_size must be 0 or 1 (off) or an odd integer"),
    ({"blink_level": 0}, "postprocess.blink_level must be in (0, 1), got 0"),
    ({"blink_level": 1.5}, "postprocess.blink_level must be in (0, 1), got 1.5"),
    ({"blink_level": float("nan")}, "postprocess.blink_level must be in (0, 1)"),
])
def test_invalid_postprocess_settings(params, needle):
    with pytest.raises(ConfigError) as err:
        PostprocessConfig(**params)
    assert needle in str(err.value)
    with pytest.raises(ConfigError):
        Postprocessor(**params)


def test_postprocess_overrides_from_the_command_line_syntax():
    c = apply_overrides(Config(), ["postprocess.median_size=7", "postprocess.kernel_shape=rect",
                                   "postprocess.fill_holes=true"])
    assert (c.postprocess.median_size, c.postprocess.kernel_shape,
            c.postprocess.fill_holes) == (7, "rect", True)
    with pytest.raises(ConfigError, match="unknown key postprocess.median; valid keys in "
                                          r"\[postprocess\]: median_size"):
        apply_overrides(Config(), ["postprocess.median=3"])


# ---------------------------------------------------------------- in the pipeline


def test_the_command_writes_post_processed_masks(tmp_path):
    """--mask-dir gets the cleaned mask: a 2x2 blob goes with min_blob_area, a big one stays."""
    import os
    import subprocess
    import sys

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(6):
        frame = np.full((40, 48, 3), 100, np.uint8)
        if i >= 3:  # after the model settled on the empty scene
            frame[5:15, 5:15] = 250  # 100 pixels
            frame[30:32, 40:42] = 250  # 4 pixels
        cv2.imwrite(str(folder / f"{i:02d}.png"), frame)
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}

    def masks(*settings):
        out = tmp_path / f"masks{len(list(tmp_path.glob('masks*')))}"
        r = subprocess.run([sys.executable, "-m", "bgsub", str(folder), "--no-display",
                            "--quiet", "--mask-dir", str(out), *settings], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        return cv2.imread(str(out / "000004.png"), cv2.IMREAD_UNCHANGED)

    off = ["--set", "postprocess.median_size=0", "--set", "postprocess.open_size=0",
           "--set", "postprocess.close_size=0", "--set", "postprocess.fill_holes=false"]
    raw = masks(*off, "--set", "postprocess.min_blob_area=0")
    assert raw[10, 10] == 255 and raw[31, 41] == 255
    cleaned = masks(*off, "--set", "postprocess.min_blob_area=10")
    assert cleaned[10, 10] == 255 and cleaned[31, 41] == 0
    assert np.array_equal(cleaned[:20, :20], raw[:20, :20])


def test_run_pipeline_uses_the_configured_postprocessor():
    from bgsub.io.pipeline import run_pipeline
    from bgsub.model.step import FrameStep

    frames = [np.full((12, 12), 100, np.uint8) for _ in range(3)]
    frames[2] = frames[2].copy()
    frames[2][2:4, 2:4] = 240  # 4 pixels
    frames[2][6:11, 6:11] = 240  # 25 pixels

    class Reader:
        def __init__(self):
            self.items = list(enumerate(frames))

        def get(self, timeout=0.1):
            return self.items.pop(0) if self.items else None

    class Writer:
        def __init__(self):
            self.masks = []

        def write(self, result):
            self.masks.append(result.mask.copy())

    config = dataclasses.replace(Config(), postprocess=PostprocessConfig.off())
    config = apply_overrides(config, ["postprocess.min_blob_area=5"])
    writer = Writer()
    summary = run_pipeline(Reader(), FrameStep.from_config(config), [writer])
    last = writer.masks[-1]
    assert last[3, 3] == 0 and last[8, 8] == 255
    # the summary counts the cleaned mask: 25 of 144 pixels on the last frame
    assert summary.mean_foreground == pytest.approx(25 / 144 / 3)


def test_masks_with_many_runs_per_row():
    """A speckled mask has more runs than the buffers first hold: they grow, results stay right."""
    rng = np.random.default_rng(3)
    mask = np.where(rng.random((20, 60)) < 0.5, 255, 0).astype(np.uint8)
    post = only(min_blob_area=4, fill_holes=True)
    small = only(min_blob_area=4, fill_holes=True).apply(mask[:4, :8])  # tiny buffers
    assert small.shape == (4, 8)
    for m in (mask, mask[:, ::-1].copy()):
        fg = naive_fill_holes(naive_remove_small(m == 255, 4))
        assert np.array_equal(post.apply(m), expected_output(m, fg))


def sparse_mask(seed, shape):
    """A few blobs, one cut by an edge, and specks, with many empty rows between them."""
    rng = np.random.default_rng(seed)
    h, w = shape
    mask = np.zeros(shape, np.uint8)
    for y, x, bh, bw in ((2, 3, 5, 7), (h // 2, w - 4, 6, 9), (h - 3, w // 3, 8, 4)):
        mask[max(y, 0):y + bh, max(x, 0):x + bw] = 255
    if h > 20:
        mask[h // 2 + 1, w - 2] = 0  # a pinhole
    specks = rng.random(shape) < 0.01
    specks[h // 4:h // 2] = False  # rows with nothing at all
    mask[specks] = 255
    mask[(rng.random(shape) < 0.05) & (mask == 0)] = 127
    return mask


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("shape", [(26, 31), (3, 2), (1, 1)])  # widths not whole words
@pytest.mark.parametrize("n", [3, 9])  # 9: an element larger than the small frames
def test_sparse_masks_large_elements_and_tiny_frames(seed, shape, n):
    """Empty rows decide rows alone (the fast paths); elements may exceed the frame."""
    mask = sparse_mask(seed, shape)
    fg = mask == 255
    ellipse = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (n, n))
    assert np.array_equal(only(median_size=n).apply(mask),
                          expected_output(mask, naive_median(fg, n)))
    opened = naive_opening(fg, ellipse)
    assert np.array_equal(only(open_size=n).apply(mask), expected_output(mask, opened))
    both = only(open_size=n, close_size=n, fill_holes=True).apply(mask)
    assert np.array_equal(both, expected_output(
        mask, naive_fill_holes(naive_closing(opened, ellipse))))


# ---------------------------------------------------------------- the blink gate


def blinking_video(seed, shape=(30, 36), frames=40, density=0.35):
    """Masks of a video: speckle that comes and goes in the left half (a waving
    background) and a square that moves across the frame (an object)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    masks = []
    for t in range(frames):
        mask = np.zeros(shape, np.uint8)
        speckle = rng.random((h, w // 2)) < density
        mask[:, :w // 2][speckle] = 255
        x = (t * 2) % (w - 8)
        mask[h - 10:h - 2, x:x + 8] = 255
        mask[(rng.random(shape) < 0.05) & (mask == 0)] = 127  # shadows
        masks.append(mask)
    return masks


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("median_size,blink_size,level", [(3, 5, 0.05), (0, 7, 0.1),
                                                          (5, 9, 0.02)])
def test_blink_gate_matches_the_plain_reference(seed, median_size, blink_size, level):
    post = only(median_size=median_size, blink_size=blink_size, blink_level=level,
                open_size=3, close_size=5, fill_holes=True)
    masks = blinking_video(seed)
    gate = NaiveBlinkGate(masks[0].shape, median_size, blink_size, level)
    widened = 0
    for mask in masks:
        fg = gate.step(mask)
        fg = naive_opening(fg, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
        fg = naive_closing(fg, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
        fg = naive_fill_holes(fg)
        gate.remember(fg)
        assert np.array_equal(post.apply(mask), expected_output(mask, fg))
        assert np.array_equal(post.blinking, np.where(gate.near, 255, 0))
        widened += int(np.any(gate.levels > gate.threshold))
    assert widened > 10  # the larger window did apply


def test_blink_gate_removes_a_waving_background_and_keeps_the_object():
    masks = blinking_video(5, shape=(60, 80), frames=60)
    gated = only(median_size=3, blink_size=11, blink_level=0.06, open_size=3, close_size=5)
    plain = only(median_size=3, open_size=3, close_size=5)
    for mask in masks:
        with_gate, without = gated.apply(mask), plain.apply(mask)
    # the speckle's clumps survive a median of 3 but not the blink window (away from
    # the corners, where the replicated edge weighs a pixel up to 36 times)
    inside = np.s_[6:40, 6:36]
    assert np.count_nonzero(without[inside] == 255) > 20
    assert np.count_nonzero(with_gate[inside] == 255) == 0
    # the moving square, in the right half, is what it is without the gate
    square = np.s_[45:, 40:]
    assert np.count_nonzero(with_gate[square] == 255) > 40
    assert np.array_equal(with_gate[square], without[square])


def test_blink_gate_follows_one_video_and_reset_forgets_it():
    masks = blinking_video(9)
    steps = {"median_size": 3, "open_size": 3}
    post = only(blink_size=9, blink_level=0.05, **steps)
    outputs = [post.apply(m) for m in masks]
    plain = [only(**steps).apply(m) for m in masks]
    # the first mask is the plain steps' (nothing has blinked yet), and so is any
    # mask a new post-processor sees first ...
    assert np.array_equal(outputs[0], plain[0])
    assert np.array_equal(only(blink_size=9, blink_level=0.05, **steps).apply(masks[-1]),
                          plain[-1])
    # ... later ones depend on the video so far: less of the speckle is left
    assert (np.count_nonzero(outputs[-1][:, :18] == 255)
            < np.count_nonzero(plain[-1][:, :18] == 255))
    post.reset()  # a new video
    assert post.blinking is None
    assert np.array_equal(post.apply(masks[-1]), plain[-1])
    assert only(**steps).blinking is None  # no gate


def test_blink_gate_stands_down_when_the_whole_frame_blinks():
    """Rain or snow blink everywhere: no place is a moving background, and the larger
    window would erode every small object; past BLINK_MOST of the frame the gate does
    nothing (the plain reference agrees)."""
    from bgsub.model.postprocess import BLINK_MOST

    rng = np.random.default_rng(3)
    shape = (60, 80)
    steps = {"median_size": 3, "open_size": 3}
    post = only(blink_size=9, blink_level=0.05, **steps)
    gate = NaiveBlinkGate(shape, 3, 9, 0.05, most=BLINK_MOST)
    for t in range(40):
        mask = np.where(rng.random(shape) < 0.3, 255, 0).astype(np.uint8)  # streaks
        mask[20:32, 30:38] = 255  # a small object, in the rain
        out = post.apply(mask)
        fg = naive_opening(gate.step(mask), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
        gate.remember(fg)
        assert np.array_equal(out, expected_output(mask, fg))
    assert not gate.near.any() and not post.blinking.any()
    assert np.array_equal(out, only(**steps).apply(mask))
    assert np.count_nonzero(gate.levels > gate.threshold) > BLINK_MOST * gate.levels.size / 2


WARMED = """
import json
import numba
import numpy as np
from bgsub.config import PostprocessConfig
from bgsub.model import postprocess as pp

kernels = {name: d for name, d in vars(pp).items()
           if isinstance(d, numba.core.registry.CPUDispatcher)}
pp.warm_up(PostprocessConfig())
before = {name: len(d.signatures) for name, d in kernels.items()}
post = pp.Postprocessor()
rng = np.random.default_rng(1)
for _ in range(30):  # a blinking half beside a still square, at another size
    mask = np.zeros((60, 80), np.uint8)
    mask[:, :30] = rng.integers(0, 2, (60, 30), dtype=np.uint8) * 255
    mask[20:40, 50:70] = 255
    post.apply(mask)
after = {name: len(d.signatures) for name, d in kernels.items()}
print(json.dumps({"blinking": int(post.blinking.sum()),
                  "new": [n for n in kernels if after[n] > before[n]]}))
"""


def test_the_warm_up_builds_every_kernel_the_blink_gate_runs():
    """What a first run's helper process compiles ahead (``warm_up``) is all that a
    blinking video then calls: nothing is left to compile while frames wait."""
    import json
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", WARMED], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["blinking"] > 0  # the gate's larger window ran
    assert seen["new"] == []
