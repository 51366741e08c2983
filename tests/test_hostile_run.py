"""bgsub run against hostile inputs: FIFOs where files are expected, camera-style file names."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bgsub.eval.synthetic import EventSpec
from kit import bgsub, cli_env, events_recording

TINY = EventSpec(frames=60, crossings=((20, 40),))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return events_recording(tmp_path_factory.mktemp("run"), TINY, "v.mp4")


def _one_line_error(done, *words):
    lines = [line for line in done.stderr.splitlines() if "no display available" not in line]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("bgsub: error:"), done.stderr
    for word in words:
        assert word in lines[0], done.stderr


@pytest.mark.parametrize("option", ["--load-model", "--events"])
def test_a_fifo_given_as_a_file_is_refused_at_once(clip, tmp_path, option):
    fifo = tmp_path / ("m.bgm" if option == "--load-model" else "ev.jsonl")
    os.mkfifo(fifo)
    try:
        done = bgsub(clip, option, fifo, "--quiet", cwd=tmp_path, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{option} FIFO: the run hung in open()")
    _one_line_error(done, str(fifo.name), "FIFO")


def test_a_camera_style_name_is_a_file_not_a_protocol(clip, tmp_path):
    source = tmp_path / "2024-06-01T12:00:00.mp4"
    source.write_bytes(clip.read_bytes())
    done = bgsub(source.name, "--output", "2024-06-01T13:00:00.mp4", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Protocol" not in done.stderr and "cannot read" not in done.stderr
    assert (tmp_path / "2024-06-01T13:00:00.mp4").stat().st_size > 0


def test_the_end_line_names_no_clip_that_was_not_written(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(disk)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs to fill ({done.stderr.strip()})")
    try:
        spec = EventSpec(frames=150, crossings=((20, 60), (100, 140)), noise=6)
        video = events_recording(tmp_path, spec, "live.mkv", crf=0)
        bgsub(video, "--no-display", "--events", "ev.jsonl", "--clips", disk, "--set",
              "scan.pre_roll=10", "--set", "scan.post_roll=5", cwd=tmp_path)
        lines = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
        ends = [line for line in lines if line["type"] == "end"]
        assert ends, lines
        for line in ends:
            if line["clip"] is not None:
                assert Path(line["clip"]).is_file(), line
            else:
                assert "clip_error" in line
        assert any(line["clip"] is None for line in ends), lines
    finally:
        subprocess.run(["umount", str(disk)], check=False)
