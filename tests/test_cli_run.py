"""The bgsub command end to end, headless, on generated clips and folders."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from bgsub.eval.synthetic import SceneSpec, render, write_video
from kit import bgsub, stream_server

ROOT = Path(__file__).resolve().parents[1]
SMALL = SceneSpec(width=96, height=64, frames=40, seed=1)


def count_frames(path):
    cap = cv2.VideoCapture(str(path))
    n, size = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n, size = n + 1, frame.shape[:2]
    cap.release()
    return n, size


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    assert write_video(str(path), SMALL) == SMALL.frames
    return path


def test_file_to_every_output(clip, tmp_path):
    r = bgsub(clip, "--no-display", "--output", "a.mp4", "--mask-output", "m.avi",
              "--background-output", "b.mkv", "--mask-dir", "masks", "--probability-output",
              "p.mp4", "--stats", "stats.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = (tmp_path / "stats.csv").read_text().splitlines()
    assert rows[0] == "frame,foreground_fraction,log_likelihood,recovering"
    assert len(rows) == SMALL.frames + 1
    last = rows[-1].split(",")
    assert int(last[0]) == SMALL.frames - 1 and 0 <= float(last[1]) <= 1
    assert float(last[2]) < 0 and last[3] in ("0", "1")
    assert "log-likelihood" in r.stderr and "recoveries" in r.stderr
    for name in ("a.mp4", "m.avi", "b.mkv", "p.mp4"):
        assert count_frames(tmp_path / name) == (SMALL.frames, (SMALL.height, SMALL.width))
    masks = sorted((tmp_path / "masks").iterdir())
    assert [p.name for p in masks] == [f"{i:06d}.png" for i in range(SMALL.frames)]
    mask = cv2.imread(str(masks[-1]), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (SMALL.height, SMALL.width) and set(np.unique(mask)) <= {0, 127, 255}
    assert f"{SMALL.frames} frames processed, 0 skipped" in r.stderr
    assert "foreground mean" in r.stderr and "Traceback" not in r.stderr


def test_headless_fallback_is_announced_once(clip, tmp_path):
    r = bgsub(clip, "--quiet", cwd=tmp_path)  # no --no-display, and no DISPLAY
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("no display available") == 1
    assert "frames processed" not in r.stderr  # --quiet


def test_image_folder_with_a_corrupt_image_and_a_size_change(tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    frames = [f for f, _ in render(SMALL)][:12]
    for i, frame in enumerate(frames):
        if i >= 8:  # the camera changed mode
            frame = cv2.resize(frame, (SMALL.width * 2, SMALL.height * 2))
        cv2.imwrite(str(folder / f"f{i:03d}.png"), frame)
    (folder / "f005.png").write_bytes(b"not a png")
    (folder / "notes.txt").write_text("ignored: not an image")
    r = bgsub(folder, "--no-display", "--mask-dir", "masks", "--mask-output", "m.mp4",
              cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert names == [f"{i:06d}.png" for i in range(12) if i != 5]  # one per frame read
    assert "f005.png is not a readable image; skipped" in r.stderr
    assert "resetting the model" in r.stderr
    assert "11 frames processed, 1 skipped" in r.stderr
    big = cv2.imread(str(tmp_path / "masks" / "000009.png"), cv2.IMREAD_UNCHANGED)
    assert big.shape == (SMALL.height * 2, SMALL.width * 2)
    # the video keeps its first size
    assert count_frames(tmp_path / "m.mp4") == (11, (SMALL.height, SMALL.width))


def test_config_file_and_overrides(clip, tmp_path):
    (tmp_path / "config.toml").write_text("[model]\nk = 9\n")
    r = bgsub(clip, "--no-display", cwd=tmp_path)  # ./config.toml is picked up
    assert r.returncode == 2 and "config.toml: model.k must be an integer in 1..8" in r.stderr
    # --set applies on top of the file: the file's valid min_variance meets an
    # init_variance below it
    (tmp_path / "config.toml").write_text("[model]\nmin_variance = 50.0\n")
    r = bgsub(clip, "--no-display", "--set", "model.init_variance=40", cwd=tmp_path)
    assert r.returncode == 2 and "min_variance <= init_variance" in r.stderr
    r = bgsub(clip, "--no-display", "--set", "model.init_variance=60", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (tmp_path / "other.toml").write_text("[model]\nk = 1\nrho = \"gaussian\"\n")
    r = bgsub(clip, "--no-display", "--config", "other.toml", "--quiet", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == ""


@pytest.mark.parametrize("args,message", [
    (["missing.mp4"], "missing.mp4: no such file or folder"),
    (["text.mp4"], "text.mp4: not a video OpenCV can read"),
    (["empty.mp4"], "empty.mp4: the file is empty"),
    (["emptydir"], "emptydir: the folder holds no images"),
    (["--camera", "7"], "camera 7 does not open"),
    (["--camera", "0", "--width", "-5"], "--width: source.width must be >= 0, got -5"),
    (["rtsp://127.0.0.1:9/none", "--set", "source.open_timeout=2"],
     "the stream refuses the connection, closes it or sends no video"),
    (["CLIP", "--set", "model.learning_rate=1.5"], "model.learning_rate must be in [0, 1]"),
    (["CLIP", "--set", "model.T=0.5"], "unknown key model.T; valid keys in [model]: k,"),
    (["CLIP", "--set", "model.k"], "--set expects section.key=value"),
    (["CLIP", "--set", "pipeline.masker_threads=-1"],
     "pipeline.masker_threads must be in 0..256 (0 = auto), got -1"),
    (["CLIP", "--set", "pipeline.masker_threads=100000"],
     "pipeline.masker_threads must be in 0..256 (0 = auto), got 100000"),
    (["CLIP", "--set", "pipeline.io_nice=20"], "pipeline.io_nice must be in 0..19, got 20"),
    (["CLIP", "--config", "bad.toml"], "bad.toml: invalid TOML: Invalid value (at line 2"),
    (["CLIP", "--config", "unknown.toml"], "unknown key display.colour; valid keys"),
    (["CLIP", "--config", "nothere.toml"], "config file not found: nothere.toml"),
    (["CLIP", "--output", "nodir/out.mp4"], "--output nodir/out.mp4: the folder nodir does not"),
    (["CLIP", "--mask-output", "out.xyz"], "unknown video extension '.xyz'"),
    (["CLIP", "--mask-dir", "text.mp4"], "exists and is not a folder"),
    (["CLIP", "--stats", "emptydir"], "--stats emptydir: is a folder"),
    (["CLIP", "--stats", "dangling.csv"],
     "--stats dangling.csv: is a link to nowhere/x.csv, which does not exist"),
    (["CLIP", "--output", "dangling.csv.mp4"],
     "--output dangling.csv.mp4: is a link to nowhere/x.mp4, which does not exist"),
    (["CLIP", "--stats", "/proc/x.csv"], "--stats /proc/x.csv: cannot be written"),
    (["text.mp4", "--output", "text.mp4"], "--output text.mp4 is the source itself"),
    (["CLIP", "--output", "o.mp4", "--mask-output", "o.mp4"],
     "--mask-output o.mp4 is also given to --output"),
    (["imgs", "--mask-dir", "imgs"], "--mask-dir imgs is the source itself"),
    ([], "no source given"),
])
def test_bad_input_gets_one_line_and_exit_2(clip, tmp_path, args, message):
    (tmp_path / "text.mp4").write_text("this is not a video\n")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "000000.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "bad.toml").write_text("[model]\nk = = 3\n")
    (tmp_path / "unknown.toml").write_text("[display]\ncolour = 1\n")
    (tmp_path / "dangling.csv").symlink_to("nowhere/x.csv")
    (tmp_path / "dangling.csv.mp4").symlink_to("nowhere/x.mp4")
    args = [str(clip) if a == "CLIP" else a for a in args]
    start = time.monotonic()
    r = bgsub(*args, "--no-display", cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("bgsub: error: ") and message in lines[0], lines[0]
    assert time.monotonic() - start < 60  # the stream timeout is bounded
    # nothing was written by a run that failed before its first frame
    assert not (tmp_path / "out.mp4").exists()
    assert (tmp_path / "text.mp4").read_text() == "this is not a video\n"  # source intact
    assert cv2.imread(str(tmp_path / "imgs" / "000000.png")).shape == (8, 8, 3)


def test_debug_shows_the_traceback(tmp_path):
    r = bgsub("missing.mp4", "--debug", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" in r.stderr


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interruption_leaves_playable_files(tmp_path, sig, code):
    long = tmp_path / "long.avi"
    write_video(str(long), SceneSpec(width=320, height=240, frames=600, seed=3))
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    proc = subprocess.Popen([sys.executable, "-m", "bgsub", str(long), "--no-display",
                             "--output", "out.mp4", "--mask-dir", "masks"], cwd=tmp_path,
                            env=env, stderr=subprocess.PIPE, text=True)
    masks = tmp_path / "masks"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(masks.glob("*.png"))) < 20:
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    written = len(list(masks.glob("*.png")))
    assert 20 <= written < 600
    frames, size = count_frames(tmp_path / "out.mp4")
    assert frames == written and size == (240, 320)
    assert f"{written} frames processed" in err and "Traceback" not in err


@pytest.mark.parametrize("hang_up,timeout,words", [
    (False, 2, "the stream does not connect within 2 s"),  # bounded by open_timeout
    (True, 30, "the stream refuses the connection, closes it or sends no video"),  # at once
], ids=["silent", "hangs-up"])
def test_a_stream_that_never_sends_video_is_named_as_such(tmp_path, hang_up, timeout, words):
    """A server that accepts the connection and then says nothing, or hangs up."""
    with stream_server(hang_up) as port:
        start = time.monotonic()
        r = bgsub(f"rtsp://127.0.0.1:{port}/live", "--no-display", "--set",
                  f"source.open_timeout={timeout}", cwd=tmp_path)
        elapsed = time.monotonic() - start
    assert r.returncode == 2, r.stderr
    assert words in r.stderr, r.stderr
    assert elapsed < (20 if not hang_up else timeout - 5)


def test_pipeline_takes_single_channel_frames_as_grey():
    """(H, W, 1) frames from a custom reader are grey frames, not a size change each time."""
    from bgsub.io.display import drawer
    from bgsub.config import DisplayConfig
    from bgsub.io.pipeline import run_pipeline
    from bgsub.model.step import FrameStep

    class Reader:
        def __init__(self):
            self.items = [(i, np.full((6, 8, 1), 100 + i % 2, np.uint8)) for i in range(5)]

        def get(self, timeout=0.1):
            return self.items.pop(0) if self.items else None

    class Drawn:
        def __init__(self):
            self.shapes = []

        def write(self, result):
            self.shapes.append(drawer(DisplayConfig())(result.frame, result.mask).shape)

    drawn = Drawn()
    summary = run_pipeline(Reader(), FrameStep(), [drawn])
    assert summary.processed == 5 and summary.resets == 0
    assert drawn.shapes == [(6, 8, 3)] * 5


@pytest.mark.parametrize("setting,writes,cpus,expected", [
    (0, True, 2, 1),  # the writer and the reader take about a core
    (0, True, 8, 7),
    (0, False, 2, 2),  # only the reader: the masker takes every core
    (0, True, 1, 1),  # never fewer than one
    (3, True, 8, 3),  # a set count is kept
    (4, False, 2, 4),
])
def test_masker_threads_auto_leaves_a_core_to_the_writer(setting, writes, cpus, expected):
    from bgsub.io.pipeline import masker_threads

    assert masker_threads(setting, writes, cpus) == expected


def test_masker_threads_setting_runs_and_gives_the_same_masks(tmp_path):
    """One thread or two: the command writes the same masks."""
    spec = SceneSpec(width=192, height=128, frames=20, seed=3)  # 24 tiles: two threads share
    write_video(str(tmp_path / "c.mp4"), spec)
    for threads in (1, 2):
        r = bgsub("c.mp4", "--no-display", "--quiet", "--set",
                  f"pipeline.masker_threads={threads}", "--mask-dir", f"m{threads}", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "m1").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "m2").iterdir())
    assert len(names) == spec.frames
    foreground = 0
    for name in names:
        one = cv2.imread(str(tmp_path / "m1" / name), 0)
        np.testing.assert_array_equal(one, cv2.imread(str(tmp_path / "m2" / name), 0))
        foreground += np.count_nonzero(one == 255)
    assert foreground > 0  # the scene's movers were found, so the masks say something


def test_two_sources_in_one_process_give_the_masks_of_two_processes(tmp_path):
    write_video(str(tmp_path / "a.mp4"), SceneSpec(width=128, height=96, frames=30, seed=4))
    write_video(str(tmp_path / "b.avi"), SceneSpec(width=96, height=64, frames=25, seed=5))
    r = bgsub("a.mp4", "b.avi", "--no-display", "--mask-dir", "both-{n}", "--stats",
              "s-{n}.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "a.mp4: 30 frames processed" in r.stderr and "b.avi: 25 frames processed" in r.stderr
    for n, name in enumerate(("a.mp4", "b.avi")):
        r = bgsub(name, "--no-display", "--mask-dir", f"alone-{n}", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        both = sorted((tmp_path / f"both-{n}").iterdir())
        alone = sorted((tmp_path / f"alone-{n}").iterdir())
        assert [p.name for p in both] == [p.name for p in alone] and len(both) in (25, 30)
        for x, y in zip(both, alone):
            np.testing.assert_array_equal(cv2.imread(str(x), 0), cv2.imread(str(y), 0))
    r = bgsub("a.mp4", "b.avi", "--no-display", "--stats", "s.csv", cwd=tmp_path)
    assert r.returncode == 2 and "with several sources each output name needs {n}" in r.stderr
