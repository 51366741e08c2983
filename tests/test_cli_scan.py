"""bgsub scan end to end: outputs, a corrupt file among good ones, resuming, bad input."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from bgsub.cli import main
from bgsub.eval.synthetic import EventSpec, write_events_video
from kit import bgsub
from test_cli_run import count_frames

# 1.5 s pre-roll and 2 s post-roll at 30 fps: crossings 4 s apart are two events
MOVING = EventSpec(frames=300, crossings=((60, 79), (240, 259)))
STILL = EventSpec(frames=90, crossings=())


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A camera's folder: a recording with two events, a still one, and a broken file."""
    root = tmp_path_factory.mktemp("archive")
    folder = root / "cam"
    folder.mkdir()
    write_events_video(str(folder / "a.mp4"), MOVING)
    write_events_video(str(folder / "b.mkv"), STILL)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x20ftypisom" + os.urandom(4000))
    (folder / "notes.txt").write_text("not a video")
    return folder


@pytest.fixture(scope="module")
def scanned(archive):
    out = archive.parent / "out"
    before = {p: p.stat().st_mtime_ns for p in archive.iterdir()}
    r = bgsub("scan", archive, "--output-dir", out, "--events", out / "found.csv",
              cwd=archive.parent)
    assert {p: p.stat().st_mtime_ns for p in archive.iterdir()} == before  # inputs untouched
    return r, out


def test_a_folder_with_a_broken_file_is_scanned_and_the_failure_listed(scanned, archive):
    r, out = scanned
    assert r.returncode == 3, r.stderr  # some failed, the others were scanned
    assert "broken.mp4" in r.stderr and "listed as failed" in r.stderr
    assert "3 files" not in r.stderr and "2 files scanned" in r.stderr
    assert "1 with motion, 1 failed; 2 events" in r.stderr and "Traceback" not in r.stderr
    # stdout: the events, one line each
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith(str(archive / "a.mp4")) for line in lines)
    rows = list(csv.DictReader((out / "found.csv").open()))
    assert [(row["file"], row["event"]) for row in rows] == [(str(archive / "a.mp4"), "1"),
                                                             (str(archive / "a.mp4"), "2")]
    for row, (first, last) in zip(rows, MOVING.crossings):
        # the motion where the object crossed; the event 1.5 s before it and 2 s after
        assert abs(int(row["motion_start_frame"]) - first) <= 1
        assert abs(int(row["motion_end_frame"]) - last) <= 1
        assert int(row["start_frame"]) == int(row["motion_start_frame"]) - 45
        assert int(row["end_frame"]) == min(int(row["motion_end_frame"]) + 60, 299)
        assert float(row["start_time"]) == pytest.approx(int(row["start_frame"]) / 30)
        assert row["start_timecode"].startswith("00:00:0") and float(row["duration"]) > 3
        assert int(row["box_width"]) > 100 and 20 <= int(row["box_height"]) <= 30
    document = json.loads((out / "found.json").read_text())
    assert (document["schema"], document["version"]) == ("bgsub-scan-events", 1)
    statuses = {Path(f["file"]).name: f["status"] for f in document["files"]}
    assert statuses == {"a.mp4": "scanned", "b.mkv": "scanned", "broken.mp4": "failed"}
    failed = next(f for f in document["files"] if f["status"] == "failed")
    assert "not a video file" in failed["error"]
    # a record per file scanned (none for the broken one), nothing left half-written
    assert sorted(p.name for p in out.glob("*.scan.json")) == ["a.scan.json", "b.scan.json"]
    assert not list(out.glob(".*"))


def test_each_event_has_a_clip_from_before_its_pre_roll_and_a_thumbnail(scanned):
    _, out = scanned
    for row in csv.DictReader((out / "found.csv").open()):
        clip = out / row["clip"]
        assert clip.suffix == ".mp4" and float(row["clip_start"]) <= float(row["start_time"])
        # stream copy: from the key frame at or before the start (every second here)
        assert float(row["start_time"]) - float(row["clip_start"]) < 1.0
        frames, _ = count_frames(clip)
        expected = (float(row["end_time"]) - float(row["clip_start"])) * 30
        assert expected <= frames <= expected + 4, (frames, expected)
        image = cv2.imread(str(out / row["thumbnail"]))
        assert image.shape == (120, 160, 3)
        green = (image[:, :, 1] > 200) & (image[:, :, 0] < 60) & (image[:, :, 2] < 60)
        assert green.sum() > 40  # the moving object is boxed


def test_the_report_lists_every_file_and_shows_the_events(scanned):
    _, out = scanned
    page = (out / "report.html").read_text()
    assert page.count('data-status="scanned"') == 2 and page.count('data-status="failed"') == 1
    assert "3 files: 1 with motion, 1 without, 1 failed; 2 events" in page
    assert page.count("<svg") == 1 and page.count('class="event-span"') == 2
    assert 'src="./a.event001.jpg"' in page and 'href="./a.event002.mp4"' in page


def test_scan_only_and_quiet_print_the_events_and_write_the_tables(archive, tmp_path):
    r = bgsub("scan", archive / "a.mp4", archive / "b.mkv", "--scan-only", "--quiet",
              "--output-dir", tmp_path, "--set", "scan.post_roll=1s", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and len(r.stdout.splitlines()) == 2
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["a.scan.json", "b.scan.json", "events.csv", "events.json"]
    rows = list(csv.DictReader((tmp_path / "events.csv").open()))
    assert int(rows[0]["end_frame"]) == int(rows[0]["motion_end_frame"]) + 30  # --set
    assert rows[0]["clip"] == "" and rows[0]["thumbnail"] == ""


def test_an_interrupted_run_resumes_without_losing_or_repeating_anything(tmp_path):
    folder = tmp_path / "night"
    folder.mkdir()
    for i in range(5):
        write_events_video(str(folder / f"{i:02d}.mp4"), EventSpec(
            frames=240, seed=i, crossings=((30 + 20 * i, 59 + 20 * i),)))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bgsub", "scan", str(folder), "--output-dir", str(out),
               "--jobs", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.scan.json")) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.kill()  # a crash: no shutdown at all
    process.communicate()
    done = sorted(p.name for p in out.glob("*.scan.json"))
    assert 1 <= len(done) < 5, done
    r = bgsub("scan", folder, "--output-dir", out, "--jobs", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"{len(done)} of 5 files already scanned" in r.stderr
    resumed = list(csv.DictReader((out / "events.csv").open()))
    fresh_out = tmp_path / "fresh"
    r = bgsub("scan", folder, "--output-dir", fresh_out, "--scan-only", cwd=tmp_path)
    fresh = list(csv.DictReader((fresh_out / "events.csv").open()))
    keys = ("file", "event", "start_frame", "end_frame", "peak_frame", "peak_score")
    assert [tuple(row[k] for k in keys) for row in resumed] == \
        [tuple(row[k] for k in keys) for row in fresh]
    assert len(resumed) == 5  # one event per file, none twice
    assert len(list(out.glob("*.mp4"))) == len(list(out.glob("*.jpg"))) == 5
    assert not list(out.glob(".*"))
    # a third run has nothing left to do, and says so
    r = bgsub("scan", folder, "--output-dir", out, cwd=tmp_path)
    assert r.returncode == 0 and "5 of 5 files already scanned" in r.stderr


def test_sigterm_stops_cleanly_and_keeps_the_files_done(tmp_path):
    folder = tmp_path / "cam"
    folder.mkdir()
    for i in range(6):
        write_events_video(str(folder / f"{i}.mp4"), EventSpec(frames=300, seed=i))
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "bgsub", "scan", str(folder),
                                "--output-dir", str(out), "--jobs", "1", "--scan-only"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.scan.json")) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr
    document = json.loads((out / "events.json").read_text())
    assert len(document["files"]) == len(list(out.glob("*.scan.json"))) < 6


@pytest.mark.parametrize("args,needle", [
    ([], "no input given"),
    (["missing.mp4"], "missing.mp4: no such file or folder"),
    (["{video}", "--start", "soon"], "--start 'soon': expected frames (45), seconds"),
    (["{video}", "--region", "1,2,3"], "--region '1,2,3': a polygon needs x,y pairs"),
    (["{video}", "--region-mask", "nothing.png"], "region mask nothing.png: not a readable"),
    (["{video}", "--events", "table.txt"], "--events table.txt: expected a .csv file name"),
    (["{video}", "--downscale", "-1"], "scan.downscale must be in 0..64"),
    (["{video}", "--set", "scan.pre_roll=1.5"], "scan.pre_roll must be frames (45), seconds "
                                                 '("1.5s") or a timecode ("00:00:01.5"), got 1.5'),
    (["{video}", "--set", "scan.pre_roll=1.5m"], "scan.pre_roll must be frames (45)"),
    (["{empty}"], "no video files found in"),
])
def test_bad_input_is_one_line_and_status_2(args, needle, archive, tmp_path, monkeypatch,
                                            capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    args = [a.format(video=archive / "a.mp4", empty=tmp_path / "empty") for a in args]
    assert main(["scan", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.startswith("bgsub: error: ")
    assert "Traceback" not in err and not list(tmp_path.glob("*.csv"))


def test_continuous_carries_the_model_from_one_recording_to_the_next(tmp_path):
    spec = EventSpec(frames=150, crossings=((50, 69), (60, 110)))
    for name, frames in (("1-all", range(150)), ("2-first", range(60)),
                         ("3-next", range(60, 150))):
        write_events_video(str(tmp_path / f"{name}.mp4"), spec, frames=frames, crf=0)
    settings = ["--scan-only", "--set", "scan.flicker=0", "--set", "scan.pre_roll=0",
                "--set", "scan.post_roll=0"]
    r = bgsub("scan", "1-all.mp4", "--output-dir", "whole", *settings, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = bgsub("scan", "2-first.mp4", "3-next.mp4", "--continuous", "--output-dir", "parts",
              *settings, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = bgsub("scan", "3-next.mp4", "--output-dir", "alone", *settings, cwd=tmp_path)

    def activity(folder, name):  # each frame's score (one per bin in short files)
        record = json.loads((tmp_path / folder / f"{name}.scan.json").read_text())
        assert record["activity"]["width"] == 1
        return record["activity"]["values"]

    # the second recording scores as the same frames did in one long one ...
    assert activity("parts", "3-next") == activity("whole", "1-all")[60:]
    # ... where a model of its own starts blind to what is already moving
    assert activity("alone", "3-next")[:20] != activity("whole", "1-all")[60:80]
