"""bgsub scan against hostile inputs: FIFOs, camera-style names, huge regions, outputs
that would overwrite inputs, full disks, damaged and truncated files."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bgsub.eval.synthetic import EventSpec
from kit import bgsub, events_recording
from kit import small_disk as kit_small_disk

TINY = EventSpec(frames=90, crossings=((20, 45),))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return events_recording(tmp_path_factory.mktemp("scan"), TINY, "v.mp4")


def _one_line_error(done, *words):
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bgsub: error:"), done.stderr
    for word in words:
        assert word in lines[0], done.stderr


def test_a_fifo_in_a_folder_is_listed_as_failed_and_the_scan_goes_on(clip, tmp_path):
    folder = tmp_path / "cam"
    folder.mkdir()
    shutil.copy(clip, folder / "a.mp4")
    os.mkfifo(folder / "b.mp4")
    try:
        done = bgsub("scan", folder, "--scan-only", "--output-dir", tmp_path / "out",
                     cwd=tmp_path, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("the scan hung on the FIFO")
    assert done.returncode == 3, done.stderr
    assert "b.mp4: is a FIFO" in done.stderr
    assert json.loads((tmp_path / "out" / "a.scan.json").read_text())["status"] == "scanned"
    assert "Traceback" not in done.stderr


def test_a_fifo_as_the_report_is_refused(clip, tmp_path):
    os.mkfifo(tmp_path / "r.html")
    try:
        done = bgsub("scan", clip, "--output-dir", tmp_path / "out", "--report",
                     tmp_path / "r.html", cwd=tmp_path, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("the scan hung on the FIFO")
    _one_line_error(done, "--report", "FIFO")


def test_camera_style_names_are_files_not_protocols(clip, tmp_path):
    folder = tmp_path / "cam"
    folder.mkdir()
    name = "2024-06-01T12:00:00.mp4"
    shutil.copy(clip, folder / name)
    done = bgsub("scan", name, "--output-dir", tmp_path / "out", cwd=folder)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "out" / "2024-06-01T12:00:00.scan.json").read_text())
    assert record["status"] == "scanned" and record["events"], record
    assert (tmp_path / "out" / record["events"][0]["clip"]).stat().st_size > 0
    done = bgsub("scan", ".", "--scan-only", "--output-dir", tmp_path / "out2", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "Protocol" not in done.stderr


@pytest.mark.parametrize("args, words", [
    (["--region", "0,0,1e300,0,1e300,1e300"], ["--region", "1000000"]),
    (["--exclude", "0,0,5e9,0,5e9,5e9"], ["--exclude"]),
    (["--end", "0"], ["--end"]),
    (["--start", "50", "--end", "10"], ["--end", "--start"]),
    (["--start", "2s", "--end", "00:00:01"], ["--end", "--start"]),
])
def test_bad_regions_and_empty_stretches_are_usage_errors(clip, tmp_path, args, words):
    done = bgsub("scan", clip, "--scan-only", "--output-dir", tmp_path, *args, cwd=tmp_path)
    _one_line_error(done, *words)


@pytest.mark.parametrize("args, words", [
    (["--report", "ow/a.mp4"], ["--report", "ow/a.mp4"]),
    (["--report", "o/a.scan.json"], ["--report", "record"]),
    (["--events", "o/a.scan.csv"], ["--events", "record"]),
    (["--report", "o/a.event001.jpg"], ["--report", "thumbnail"]),
    (["--report", "o/events.json"], ["--report", "--events"]),
    (["--events", "o/x.csv", "--report", "o/x.csv"], ["--report", "--events"]),
])
def test_no_output_of_a_scan_overwrites_an_input_or_another_output(clip, tmp_path, args, words):
    (tmp_path / "ow").mkdir()
    shutil.copy(clip, tmp_path / "ow" / "a.mp4")
    before = (tmp_path / "ow" / "a.mp4").read_bytes()
    done = bgsub("scan", "ow/a.mp4", "--output-dir", "o", *args, cwd=tmp_path)
    _one_line_error(done, *words)
    assert (tmp_path / "ow" / "a.mp4").read_bytes() == before
    assert not (tmp_path / "o" / "a.scan.json").exists()


def test_a_hard_link_to_the_input_as_the_report_is_refused(clip, tmp_path):
    shutil.copy(clip, tmp_path / "a.mp4")
    os.link(tmp_path / "a.mp4", tmp_path / "r.html")
    done = bgsub("scan", "a.mp4", "--output-dir", "o", "--report", "r.html", cwd=tmp_path)
    _one_line_error(done, "--report", "link")
    assert (tmp_path / "a.mp4").read_bytes() == clip.read_bytes()


@pytest.fixture
def small_disk(tmp_path):
    """A 200 KB tmpfs, or a skip saying why there is none."""
    with kit_small_disk(tmp_path / "disk") as disk:
        yield disk


def test_a_full_report_or_table_is_named_in_one_line(clip, tmp_path):
    done = bgsub("scan", clip, "--output-dir", tmp_path, "--report", "/dev/full", cwd=tmp_path)
    _one_line_error(done, "--report /dev/full", "disk is full")


def test_clips_on_a_full_disk_say_so_and_leave_no_thumbnail(tmp_path, small_disk):
    spec = EventSpec(frames=150, crossings=((20, 60), (100, 140)), noise=6)
    video = events_recording(tmp_path, spec, "big.mp4", crf=10)
    assert video.stat().st_size > 400_000  # a clip cannot fit
    done = bgsub("scan", video, "--output-dir", small_disk, "--scan-only", cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # the tables fit
    for name in os.listdir(small_disk):
        os.unlink(small_disk / name)
    done = bgsub("scan", video, "--output-dir", small_disk, cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "disk is full" in done.stderr and "Invalid argument" not in done.stderr
    left = sorted(os.listdir(small_disk))
    assert not [n for n in left if ".event" in n or "partial" in n], left


def test_a_ts_whose_timestamps_restart_is_cut_by_position(tmp_path):
    """Two recordings joined (timestamps start again): the event's time holds no frame."""
    import av

    first = events_recording(tmp_path, EventSpec(frames=90, crossings=()), "p1.ts")
    second = events_recording(tmp_path, TINY, "p2.ts")
    joined = tmp_path / "cam" / "joined.ts"
    joined.parent.mkdir()
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    done = bgsub("scan", joined, "--output-dir", "o", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "o" / "joined.scan.json").read_text())
    assert record["status"] == "scanned" and len(record["events"]) == 1, record
    event = record["events"][0]
    with av.open(str(tmp_path / "o" / event["clip"])) as clip:
        assert sum(1 for _ in clip.decode(video=0)) == (event["end_frame"]
                                                        - event["start_frame"] + 1)
    assert (tmp_path / "o" / event["thumbnail"]).is_file()


def test_a_file_that_fails_at_its_clips_leaves_none_of_its_outputs(tmp_path):
    """Its thumbnail was written before its clip failed: it goes too."""
    video = events_recording(tmp_path, TINY, "a.mp4")
    out = tmp_path / "o"
    out.mkdir()
    (out / "a.event001.mp4").mkdir()  # the clip cannot take its name
    done = bgsub("scan", video, "--output-dir", out, cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "listed as failed" in done.stderr
    assert sorted(os.listdir(out)) == ["a.event001.mp4", "events.csv", "events.json",
                                      "report.html"]


def _garbled(folder: Path) -> Path:
    """A recording with bytes overwritten here and there in its frames' data."""
    import random

    video = events_recording(folder, EventSpec(frames=180, crossings=((30, 60),), noise=4),
                             "garbled.mp4", gop=60)
    data = bytearray(video.read_bytes())
    rng = random.Random(3)
    for pos in range(len(data) // 5, len(data) * 4 // 5, len(data) // 12):
        data[pos:pos + 200] = bytes(rng.randrange(256) for _ in range(200))
    video.write_bytes(bytes(data))
    return video


def test_damaged_stretches_are_reported_and_keep_the_frames_positions(tmp_path):
    folder = tmp_path / "cam"
    folder.mkdir()
    video = _garbled(folder)
    done = bgsub("scan", video, "--scan-only", "--output-dir", "alone", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "of " + str(video) + " could not be decoded; skipped" in done.stderr
    alone = json.loads((tmp_path / "alone" / "garbled.scan.json").read_text())
    assert alone["decode_errors"] > 0
    assert alone["last_frame"] == 179  # the lost frames keep their positions: all 180 counted
    # with a neighbour, the file's results are the same
    events_recording(folder, TINY, "z.mp4")
    done = bgsub("scan", folder, "--scan-only", "--output-dir", "both", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    both = json.loads((tmp_path / "both" / "garbled.scan.json").read_text())
    for key in ("first_frame", "last_frame", "frames_scored", "decode_errors", "events"):
        assert both[key] == alone[key], key


def test_a_truncated_faststart_file_reports_its_missing_frames(tmp_path):
    import av

    from bgsub.eval.synthetic import render_events

    video = tmp_path / "fs.mp4"
    with av.open(str(video), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for frame, _ in render_events(EventSpec(frames=180, crossings=((30, 60),))):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = video.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # the header first: it counts 180
    video.write_bytes(data[:len(data) // 2])
    done = bgsub("scan", video, "--scan-only", "--output-dir", "o", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "o" / "fs.scan.json").read_text())
    missing = 179 - record["last_frame"]
    assert missing > 50, record
    assert (f"frames {record['last_frame'] + 1}-179 of {video} could not be read: the file "
            "ends early") in done.stderr


@pytest.fixture
def web_server():
    """An HTTP server on 127.0.0.1: something that is no Dask scheduler."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("scheme, words", [("tcp", ["no Dask scheduler"]),
                                           ("tls", ["TLS", "not supported"])])
def test_a_scheduler_address_that_is_no_scheduler_is_one_line(clip, tmp_path, web_server,
                                                              scheme, words):
    pytest.importorskip("distributed")
    try:
        done = bgsub("scan", clip, "--scan-only", "--output-dir", tmp_path, "--scheduler",
                     f"{scheme}://127.0.0.1:{web_server}", "--set", "scan.connect_timeout=5",
                     cwd=tmp_path, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("the scan hung connecting to a web server")
    _one_line_error(done, *words)


def test_dask_s_log_records_come_out_as_bgsub_lines(capfd):
    pytest.importorskip("distributed")
    import logging

    import distributed  # noqa: F401  (its logging set up, as in a cluster scan)

    from bgsub.cli.common import logging_to_stderr
    from bgsub.scan.cluster import dask_logs_as_ours

    with logging_to_stderr(), dask_logs_as_ours():
        logging.getLogger("distributed.scheduler").error(
            "Task %s marked as failed because %d workers died\nTraceback: ...", "t-1", 3)
        logging.getLogger("distributed.core").warning("a warning: not shown")
    err = capfd.readouterr().err
    lines = err.splitlines()
    assert lines == ["bgsub: warning: dask: Task t-1 marked as failed because 3 workers died"]


def test_a_thumbnail_on_a_nearly_full_disk_says_the_disk_is_full(tmp_path, small_disk):
    """A few kB left: not zero, so OpenCV's bare failure was taken for an I/O error."""
    video = events_recording(tmp_path, EventSpec(width=320, height=240, frames=90,
                                                 crossings=((20, 60),), noise=6), "a.mp4")
    stat = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(bytes(stat.f_bfree * stat.f_frsize - 8192))
    out = small_disk / "o"
    done = bgsub("scan", video, "--output-dir", out, "--events", tmp_path / "events.csv",
                 "--report", tmp_path / "report.html", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("bgsub: error:")]
    assert len(errors) == 1, done.stderr
    assert "a.event001.jpg: the thumbnail could not be written (the disk is full)" in errors[0]
    assert "Errno" not in done.stderr, done.stderr
    assert not [p.name for p in out.iterdir() if ".event" in p.name or "partial" in p.name]
