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
from kit import bgsub, cli_env, events_recording, small_disk

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
    with small_disk(tmp_path / "disk", "100k") as disk:
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


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_signal_stops_waiting_for_stuck_commands_and_stops_them(clip, tmp_path):
    # the shell and its child write their ids: both must be gone after the run
    command = "echo $$ >> pids; sleep 1000 & echo $! >> pids; wait"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bgsub", str(clip), "--no-display", "--events", "ev.jsonl",
         "--on-event", command, "--set", "events.command_timeout=300"],
        cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = tmp_path / "pids"
    try:
        deadline = time.monotonic() + 240
        lines = tmp_path / "ev.jsonl"
        while time.monotonic() < deadline and not (
                lines.exists() and '"end"' in lines.read_text()):
            time.sleep(0.2)
        assert '"end"' in lines.read_text()
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the run still waits for the commands a minute after the signal")
        assert time.monotonic() - signalled < 20, err
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        time.sleep(0.5)
        started = [int(p) for p in pids.read_text().split()]
        assert len(started) == 4  # two commands (start, end), a shell and a sleep each
        assert not [p for p in started if _alive(p)], "a command outlived the run"
        assert [json.loads(line)["type"] for line in lines.read_text().splitlines()] == [
            "start", "end"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in (int(p) for p in pids.read_text().split()) if pids.exists() else ():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
