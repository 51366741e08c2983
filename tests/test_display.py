"""The window: a real HighGUI window under Xvfb, driven by keys the test controls."""

import os
import shutil
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

from bgsub.config import Config, DisplayConfig
from bgsub.io.display import Display, Window, annotate, compose, display_unavailable_reason, drawer
from bgsub.io.pipeline import run_pipeline
from bgsub.io.sources import FrameReader, open_source
from bgsub.model.step import FrameStep
from bgsub.eval.synthetic import SceneSpec, write_video


@pytest.fixture(scope="module")
def xvfb():
    """Start Xvfb on a free display; skip (with the reason) where it cannot start."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian package xvfb; .ci/run installs it)")
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x720x24",
                             "-nolisten", "tcp"], pass_fds=(write,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        pytest.skip("Xvfb did not start")
    yield f":{number}"
    proc.terminate()
    proc.wait(timeout=10)


def test_window_shows_frames_and_obeys_space_and_q(xvfb, tmp_path, monkeypatch):
    monkeypatch.setenv("DISPLAY", xvfb)
    monkeypatch.chdir(tmp_path)  # snapshots land here
    clip = tmp_path / "clip.avi"
    write_video(str(clip), SceneSpec(width=160, height=120, frames=60, seed=4))
    # 4 frames, space (pause), 3 idle polls, s (snapshot while paused), space
    # (resume), 2 frames, q: 4 + 1 + 2 + 1 = 8 frames shown
    script = [-1, -1, -1, -1, ord(" "), -1, -1, -1, ord("s"), ord(" "), -1, -1, ord("q")]
    seen = {"calls": 0, "visible": []}

    def keys(delay_ms):
        if delay_ms == 10:
            return -1  # the window waiting for the next frame: not a step of the script
        seen["visible"].append(cv2.getWindowProperty("bgsub", cv2.WND_PROP_VISIBLE))
        seen["calls"] += 1
        return script.pop(0) if script else ord("q")

    display = Display(key_source=keys)
    config = Config(display=DisplayConfig(max_width=640, show_probability=True))
    assert display.open() is None
    reader = FrameReader(open_source(str(clip)))
    stop = threading.Event()
    step = FrameStep.from_config(config, background=True, probability=True)
    window = Window(display, config.display, drawer(config.display), stop, step.reset)
    assert window.needs == {"background", "probability"}
    done = {}
    pipeline = threading.Thread(target=lambda: done.setdefault(
        "summary", run_pipeline(reader, step, [window.feed()], stop=stop)))
    try:
        pipeline.start()
        window.run(pipeline.is_alive)  # the window in this thread, HighGUI's
        pipeline.join(30)
    finally:
        reader.close()
        window.close()
    summary = done["summary"]
    assert window.quit_by_key and stop.is_set()
    assert summary.processed == 8
    assert seen["calls"] == 13 and script == []
    assert min(seen["visible"]) >= 1  # the window was really there
    assert window.snapshots == ["bgsub-snapshot-000004.png"]
    snap = cv2.imread(str(tmp_path / window.snapshots[0]))
    # four 160-pixel panes (frame, mask, background, probability), under two strips of
    # text: the status line and the panes' titles
    assert snap.shape == (120 + 2 * 22, 640, 3)
    assert snap.shape == display.last_image.shape


def test_annotate_tints_foreground_and_boxes_blobs():
    frame = np.full((40, 60, 3), 100, np.uint8)
    mask = np.zeros((40, 60), np.uint8)
    mask[5:15, 5:20] = 255  # a blob of 150 pixels
    mask[30, 50] = 255  # a speck under min_blob_area
    out = annotate(frame, mask, tint=0.5, min_blob_area=10)
    assert tuple(out[10, 10]) == (50, 50, 178)  # half way to red
    assert tuple(out[25, 30]) == (100, 100, 100)  # background untouched
    assert tuple(out[4, 4]) == (0, 255, 0)  # the box's corner, one pixel outside
    assert tuple(out[29, 49]) == (100, 100, 100)  # no box around the speck
    assert np.array_equal(frame, np.full((40, 60, 3), 100, np.uint8))  # input kept


@pytest.mark.parametrize("shape", [(37, 45, 3), (16, 24), (3, 3, 3)])  # widths not whole words
@pytest.mark.parametrize("tint", [0.25, 0.5, 1.0])
def test_tint_is_the_blend_toward_red_on_foreground_only(shape, tint):
    rng = np.random.default_rng(len(shape) + int(4 * tint))
    frame = rng.integers(0, 256, shape, dtype=np.uint8)
    mask = rng.choice(np.array([0, 127, 255], np.uint8), shape[:2])
    out = annotate(frame, mask, tint=tint, min_blob_area=10 ** 6)  # no boxes
    bgr = frame if frame.ndim == 3 else np.repeat(frame[:, :, None], 3, axis=2)
    fg = mask == 255
    assert np.array_equal(out[~fg], bgr[~fg])  # background and shadows untouched
    expected = np.rint(bgr * (1 - tint) + np.array([0, 0, 255]) * tint)
    assert np.abs(out[fg].astype(int) - expected[fg]).max() <= 1


def test_compose_scales_to_fit_and_keeps_text_apart():
    panes = [np.full((100, 200, 3), 255, np.uint8), np.full((100, 200), 255, np.uint8)]
    assert compose([panes], 1000).shape == (100, 400, 3)
    image = compose([panes], 200, ["a status line"], ["frame", "mask"])
    assert image.shape == (22 + 22 + 50, 200, 3)  # two strips of text, the row halved
    assert (image[44:] == 255).all()  # the text never covers the panes
    assert (image[:44] < 255).any() and (image[:44] > 100).any()  # and it is there
    # text keeps its size at any window size: the strips do not scale with the panes
    big = compose([[np.zeros((480, 640, 3), np.uint8)] * 2], 1280, ["x"], ["frame", "mask"])
    small = compose([[np.zeros((480, 640, 3), np.uint8)] * 2], 320, ["x"], ["frame", "mask"])
    assert big.shape[0] - 480 == small.shape[0] - 120 == 44


def test_compose_gives_each_source_a_row():
    rows = [[np.zeros((60, 80, 3), np.uint8)] * 2, [np.zeros((30, 40), np.uint8)] * 2]
    image = compose(rows, 1000, ["camera 0", "camera 1"], ["frame", "mask"])
    assert image.shape == (2 * 44 + 60 + 30, 160, 3)


def test_titles_that_do_not_fit_are_cut_not_spilled():
    from bgsub.io.display import _strip

    strip = _strip(100, [(0, "a very long title that cannot fit"), (50, "next")])
    assert strip.shape == (22, 100, 3)
    # the first label stops before the second one's place
    assert (strip[:, 46:50] == 32).all()


def test_an_unreachable_x_server_means_headless_not_a_crash(tmp_path):
    """Qt aborts the process when DISPLAY names no server; bgsub must ask first."""
    write_video(str(tmp_path / "clip.mp4"), SceneSpec(width=96, height=64, frames=10, seed=2))
    env = dict(os.environ, DISPLAY=":917")  # no X server there
    env.pop("WAYLAND_DISPLAY", None)
    r = subprocess.run([sys.executable, "-m", "bgsub", "clip.mp4", "--stats", "s.csv"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "no display available (cannot connect to the X server DISPLAY=:917); running " \
           "headless" in r.stderr
    assert "10 frames processed" in r.stderr
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 11


def test_a_running_x_server_is_reachable(xvfb, monkeypatch):
    monkeypatch.setenv("DISPLAY", xvfb)
    assert display_unavailable_reason() is None
