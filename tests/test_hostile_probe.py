"""Issue 24's own hostile probe: the cases it found broken, each fixed with a test here."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kit import bgsub, cli_env, events_recording

from bgsub.eval.synthetic import EventSpec

TINY = EventSpec(frames=90, crossings=((20, 45),))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return events_recording(tmp_path_factory.mktemp("probe"), TINY, "v.mp4")


def test_scan_of_a_file_whose_name_is_near_name_max_writes_its_outputs(clip, tmp_path):
    # 251 + ".mp4" = 255 bytes, the longest name a Linux file system allows: the
    # outputs' names (NAME.event001.jpg, NAME.scan.json) must not grow past it
    name = "a" * 251 + ".mp4"
    shutil.copy(clip, tmp_path / name)
    done = bgsub("scan", name, "--output-dir", "out", "--quiet", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "File name too long" not in done.stderr
    out = tmp_path / "out"
    written = sorted(p.name for p in out.iterdir())
    assert all(len(n.encode()) <= 255 for n in written), written
    records = [n for n in written if n.endswith(".scan.json")]
    assert len(records) == 1, written
    assert any(n.endswith(".event001.jpg") for n in written), written
    assert any(n.endswith(".event001.mp4") for n in written), written
    # a second run finds the record and skips the file
    again = bgsub("scan", name, "--output-dir", "out", cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "1 from earlier runs" in again.stderr, again.stderr


def test_scan_names_stay_unique_when_long_names_are_shortened(clip, tmp_path):
    a, b = "b" * 240 + "1.mp4", "b" * 240 + "2.mp4"
    for n in (a, b):
        shutil.copy(clip, tmp_path / n)
    done = bgsub("scan", a, b, "--output-dir", "out", "--quiet", "--scan-only",
                 cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    records = [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".scan.json")]
    assert len(records) == 2, records


def test_a_huge_chunk_length_on_a_cluster_is_one_task_not_an_internal_error(clip):
    import dataclasses

    from bgsub.config import Config, replace_section
    from bgsub.scan.cluster import plan_chunks

    config = Config()
    config = dataclasses.replace(config, scan=replace_section(config.scan,
                                                              chunk_minutes=1e308))
    chunks = plan_chunks(clip, config, 30.0, 90)
    assert len(chunks) == 1


def _header_only_mkv(clip, path):
    """The first 6000 bytes of an mkv of *clip* at *path*: a header, and no frame that decodes."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg to make an mkv")
    mkv = path.with_name("whole-" + path.name)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(clip), "-c:v", "libx264",
                    str(mkv)], check=True)
    path.write_bytes(mkv.read_bytes()[:6000])


def test_run_of_a_file_with_no_readable_frame_fails_instead_of_a_silent_exit_0(clip, tmp_path):
    _header_only_mkv(clip, tmp_path / "t.mkv")
    done = bgsub("run", "t.mkv", "--no-display", "--quiet", "--output", "o.mp4",
                 cwd=tmp_path, timeout=120)
    assert not (tmp_path / "o.mp4").exists()
    assert done.returncode == 2, (done.returncode, done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("bgsub: error:")]
    assert len(errors) == 1 and "t.mkv" in errors[0], done.stderr
    assert "Traceback" not in done.stderr


def test_eval_of_a_file_says_it_is_not_a_folder(clip, tmp_path):
    done = bgsub("eval", clip, "--quiet", cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bgsub: error:"), done.stderr
    assert "no such folder" not in lines[0] and "not a folder" in lines[0], done.stderr


@pytest.mark.parametrize("option,suffix", [("--output", ".mp4"), ("--stats", ".csv"),
                                           ("--save-model", ".bgm")])
def test_run_writes_outputs_whose_legal_names_are_near_name_max(clip, tmp_path, option, suffix):
    # a 249-byte name is legal; its partial name (.NAME.bgsub-partial.EXT) would not be
    name = "c" * (249 - len(suffix)) + suffix
    done = bgsub("run", clip, "--no-display", "--quiet", option, name, cwd=tmp_path,
                 timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / name).is_file() and (tmp_path / name).stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no partial file left


def test_partial_names_stay_within_name_max_and_distinct():
    from bgsub.files import partial_path

    a = partial_path(Path("/tmp") / ("x" * 250 + "1.mp4"))
    b = partial_path(Path("/tmp") / ("x" * 250 + "2.mp4"))
    assert a != b and a.suffix == ".mp4"
    assert all(len(os.fsencode(p.name)) <= 255 for p in (a, b))
    assert partial_path(Path("/tmp/a.mp4")).name == ".a.bgsub-partial.mp4"  # short: unchanged


def test_an_interrupted_scan_leaves_no_thumbnail_of_a_file_it_did_not_finish(tmp_path):
    spec = EventSpec(width=160, height=120, frames=3000,
                     crossings=tuple((s, s + 40) for s in range(20, 2900, 120)))
    events_recording(tmp_path, spec, "long.mp4")
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "bgsub", "scan", "long.mp4",
                                "--output-dir", str(out), "--quiet"], cwd=tmp_path,
                               env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("*.jpg")) and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.02)
        if process.poll() is not None:
            pytest.skip("the scan ended before the signal")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    if (out / "long.scan.json").exists():
        pytest.skip("the file was done before the signal")
    assert not list(out.glob("long.event*")), sorted(p.name for p in out.iterdir())


def test_of_several_sources_the_one_with_no_readable_frame_is_named_once(clip, tmp_path):
    _header_only_mkv(clip, tmp_path / "t.mkv")
    shutil.copy(clip, tmp_path / "v.mp4")
    done = bgsub("run", "t.mkv", "v.mp4", "--no-display", cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("bgsub: error:")]
    assert errors == [errors[0]] and errors[0].count("t.mkv") == 1, done.stderr
    assert "v.mp4: 90 frames processed" in done.stderr, done.stderr


def test_serve_with_a_user_and_password_is_refused_without_echoing_the_password(clip, tmp_path):
    done = bgsub("run", clip, "--no-display", "--quiet", "--serve",
                 "admin:hunter2@127.0.0.1:0", cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bgsub: error: --serve"), done.stderr
    assert "hunter2" not in done.stderr + done.stdout and "admin" not in done.stderr


def test_scan_says_when_a_file_had_no_frame_to_scan(clip, tmp_path):
    done = bgsub("scan", clip, "--start", "10000", "--scan-only", "--output-dir", "out",
                 cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "no frame was scanned" in line]
    assert len(warnings) == 1 and warnings[0].startswith("bgsub: warning:"), done.stderr


def _damaged_webm(path: Path, spec: EventSpec) -> Path:
    """A VP8 WebM of *spec* whose middle third is random bytes: decoding ends early there.

    WebM gives no stream's frame count or duration, only the container's duration.
    """
    import random

    import av

    from bgsub.eval.synthetic import render_events

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libvpx", rate=30)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        for frame, _ in render_events(spec):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = bytearray(path.read_bytes())
    third = len(data) // 3
    rng = random.Random(1)
    data[third:2 * third] = bytes(rng.randrange(256) for _ in range(third))
    path.write_bytes(bytes(data))
    return path


def test_scan_reports_a_webm_that_ends_early_as_run_does(tmp_path):
    _damaged_webm(tmp_path / "garb.webm", EventSpec(frames=120, crossings=((5, 60),)))
    ran = bgsub("run", "garb.webm", "--no-display", "--quiet", cwd=tmp_path, timeout=300)
    assert ran.returncode == 0, ran.stderr
    ran_warnings = [line for line in ran.stderr.splitlines() if "ends early" in line]
    assert len(ran_warnings) == 1 and "of garb.webm" in ran_warnings[0], ran.stderr
    scanned = bgsub("scan", "garb.webm", "--scan-only", "--output-dir", "out", cwd=tmp_path,
                    timeout=300)
    assert scanned.returncode == 0, scanned.stderr
    warnings = [line for line in scanned.stderr.splitlines() if "ends early" in line]
    assert warnings == ran_warnings, scanned.stderr  # the same stretch, in the same words
    record = json.loads((tmp_path / "out" / "garb.scan.json").read_text())
    assert record["status"] == "scanned"
    (first, count), = record["damaged"]  # the record keeps it, for the report and a resume
    assert first == record["last_frame"] + 1 and first + count == 120, record["damaged"]
    table = json.loads((tmp_path / "out" / "events.json").read_text())
    assert table["files"][0]["damaged"] == record["damaged"]


def _odd_sized(path: Path, codec: str = "libx264", pix_fmt: str = "yuv444p",
               spec: EventSpec = TINY) -> Path:
    """A 161x121 recording of *spec* (4:4:4 H.264 takes odd sizes; 4:2:0 does not)."""
    import av

    from bgsub.eval.synthetic import render_events

    spec = EventSpec(width=161, height=121, frames=spec.frames, crossings=spec.crossings)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = 161, 121, pix_fmt
        for frame, _ in render_events(spec):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_run_says_when_a_video_output_is_smaller_than_an_odd_sized_source(tmp_path):
    import cv2

    _odd_sized(tmp_path / "odd.mp4")
    done = bgsub("run", "odd.mp4", "--no-display", "--quiet", "--output", "o.mp4",
                 "--mask-output", "m.mp4", "--mask-dir", "masks", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    warnings = done.stderr.splitlines()
    assert len(warnings) == 2 and all(w.startswith("bgsub: warning: ") for w in warnings), \
        done.stderr
    for option, name in (("--output", "o.mp4"), ("--mask-output", "m.mp4")):
        line, = [w for w in warnings if f"{option} {name}:" in w]
        assert "160x120" in line and "161x121" in line, line
        capture = cv2.VideoCapture(str(tmp_path / name))  # the size said is the size written
        assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) \
            == (160, 120)
        capture.release()
    assert cv2.imread(str(tmp_path / "masks" / "000000.png")).shape[:2] == (121, 161)


def test_live_clips_of_an_odd_sized_source_say_their_size_once(tmp_path):
    # a camera's clips are all the same size: one warning, not one per clip
    _odd_sized(tmp_path / "odd.mp4", spec=EventSpec(frames=420, crossings=((20, 45), (330, 355))))
    done = bgsub("run", "odd.mp4", "--no-display", "--quiet", "--events", "e.jsonl",
                 "--clips", "clips", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "clips").iterdir())) == 2
    warnings = [w for w in done.stderr.splitlines() if "--clips" in w]
    assert len(warnings) == 1 and "160x120" in warnings[0] and "161x121" in warnings[0], \
        done.stderr


def test_a_re_encoded_clip_of_an_odd_sized_source_says_its_size(tmp_path, caplog):
    import av

    from bgsub.scan.clips import cut_clip

    # raw video cannot be copied into an .mp4: the clip is re-encoded, 4:2:0, even-sized
    source = _odd_sized(tmp_path / "odd.nut", "rawvideo", "bgr24")
    with caplog.at_level("WARNING", logger="bgsub"):
        clip = cut_clip(source, tmp_path / "c.mp4", 0.5, 1.5, 30.0, (15, 44))
    assert not clip.copied
    with av.open(str(clip.path)) as written:
        context = written.streams.video[0].codec_context
        assert (context.width, context.height) == (160, 120)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "c.mp4" in warnings[0], warnings
    assert "160x120" in warnings[0] and "161x121" in warnings[0], warnings


def test_a_copied_clip_of_an_odd_sized_source_keeps_its_size(tmp_path, caplog):
    import av

    from bgsub.scan.clips import cut_clip

    source = _odd_sized(tmp_path / "odd.mp4")
    with caplog.at_level("WARNING", logger="bgsub"):
        clip = cut_clip(source, tmp_path / "c.mp4", 0.5, 1.5, 30.0, (15, 44))
    assert clip.copied
    with av.open(str(clip.path)) as written:
        context = written.streams.video[0].codec_context
        assert (context.width, context.height) == (161, 121)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def _scanned_with_clips(tmp_path: Path, name: str) -> dict:
    """Scan *name* in *tmp_path*; its record, after checking that every event has its clip
    (holding the event's frames, copied) and that the scan left nothing else behind."""
    import av

    done = bgsub("scan", name, "--output-dir", "out", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr  # never the whole file listed as failed
    stem = Path(name).stem
    record = json.loads((tmp_path / "out" / f"{stem}.scan.json").read_text())
    assert record["status"] == "scanned" and record["events"], record
    expected = {"events.csv", "events.json", "report.html", f"{stem}.scan.json"}
    for event in record["events"]:
        assert event["clip"] and event["clip_copied"], event  # the stream, copied from its start
        with av.open(str(tmp_path / "out" / event["clip"])) as clip:
            decoded = sum(1 for _ in clip.decode(video=0))
        assert decoded >= event["end_frame"] - event["start_frame"] + 1, (decoded, event)
        expected |= {event["clip"], event["thumbnail"]}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(expected)
    return record


def test_head_c_of_a_ts_is_scanned_with_what_exists_of_its_clips(tmp_path):
    """Issue 24 item 10 as written: an H.264 .ts cut short by ``head -c 180000``."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg to make a .ts as a camera would")
    sample = Path(__file__).resolve().parents[1] / "videos" / "sample.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(sample), "-c:v", "libx264",
                    "-crf", "12", "-pix_fmt", "yuv420p", str(tmp_path / "hw.ts")],
                   check=True)
    assert (tmp_path / "hw.ts").stat().st_size > 400_000  # head -c cuts it short
    with open(tmp_path / "t.ts", "wb") as out:
        subprocess.run(["head", "-c", "180000", str(tmp_path / "hw.ts")], stdout=out, check=True)
    _scanned_with_clips(tmp_path, "t.ts")


def test_a_truncated_ts_with_one_key_frame_is_scanned_with_what_exists_of_its_clips(tmp_path):
    """The same without ffmpeg: a PyAV-written .ts, one key frame, cut at 60 %.

    MPEG-TS seeks by decoding time, which runs behind the first frame's time: a
    seek to the first frame's time lands past the only key frame.
    """
    spec = EventSpec(frames=150, crossings=((5, 40), (60, 130)))
    whole = events_recording(tmp_path, spec, "whole.ts", gop=250)
    data = whole.read_bytes()
    (tmp_path / "t.ts").write_bytes(data[:len(data) * 6 // 10])
    whole.unlink()
    record = _scanned_with_clips(tmp_path, "t.ts")
    assert record["last_frame"] < 149 and record["damaged"], record  # cut short, and said


def test_a_clip_with_no_frame_of_its_event_in_the_file_is_a_missing_clip(clip, tmp_path):
    from bgsub.scan.clips import ClipError, cut_clip

    with pytest.raises(ClipError) as caught:  # past the end: neither times nor positions
        cut_clip(clip, tmp_path / "c.mp4", 100.0, 101.0, 30.0, (3000, 3030))
    assert caught.value.missing
    assert not list(tmp_path.iterdir())


def test_an_event_whose_clip_cannot_be_cut_is_listed_without_it(tmp_path, monkeypatch,
                                                                  capsys):
    """One event's frames missing from the file: the file, its other clips and record stand."""
    import bgsub.cli.scan as scan_cli
    from bgsub.cli import main
    from bgsub.scan import clips

    video = events_recording(tmp_path, EventSpec(frames=300, crossings=((5, 40), (200, 240))),
                             "two.mp4")
    real = scan_cli.cut_clip

    def cut(source, target, *args, **kwargs):
        if ".event001." in str(target):
            raise clips._NoFrame(f"{target}: no frame in the event's time")
        return real(source, target, *args, **kwargs)

    monkeypatch.setattr(scan_cli, "cut_clip", cut)
    monkeypatch.chdir(tmp_path)
    assert main(["scan", str(video), "--output-dir", "out"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "event 1's clip" in line]
    assert len(lines) == 1 and lines[0].startswith("bgsub: warning: "), err
    assert "listed as failed" not in err
    record = json.loads((tmp_path / "out" / "two.scan.json").read_text())
    first, second = record["events"]
    assert first["clip"] is None and "no frame" in first["clip_error"], first
    assert first["thumbnail"] and (tmp_path / "out" / first["thumbnail"]).is_file()
    assert second["clip"] and (tmp_path / "out" / second["clip"]).is_file(), second
    assert second["clip_error"] is None


@pytest.mark.parametrize("address", ["127.0.0.1:²", "127.0.0.1:٨٠٨٠", "[::1:0", "::1]:0"])
def test_serve_addresses_that_are_no_host_and_port_are_one_line_naming_them(clip, tmp_path,
                                                                            address):
    # "²" is a digit to str.isdigit, not to int(); unpaired IPv6 brackets were shown doubled
    done = bgsub("run", clip, "--no-display", "--quiet", "--serve", address, cwd=tmp_path,
                 timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert lines == [f"bgsub: error: --serve {address}: expected HOST:PORT with a port from 0 "
                     "to 65535 (e.g. --serve 127.0.0.1:8080)"], done.stderr


@pytest.mark.parametrize("args,option", [
    (["run", "{clip}", "--no-display", "--load-model", ""], "--load-model"),
    (["run", "{clip}", "--no-display", "--config", ""], "--config"),
    (["eval", "{clip}", "--config", " "], "--config"),
    (["scan", "{clip}", "--output-dir", ""], "--output-dir"),
    (["scan", "{clip}", "--events", ""], "--events"),
    (["scan", "{clip}", "--report", ""], "--report"),
])
def test_an_empty_name_is_refused_by_its_option_not_taken_as_a_default_or_the_folder(
        clip, tmp_path, args, option):
    # (an unset shell variable: --output-dir "$OUT"); Path("") is "." and was named as such,
    # or the empty name fell back to the default place
    done = bgsub(*[a.format(clip=clip) for a in args], cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bgsub: error: "), done.stderr
    assert option in lines[0] and "the name is empty" in lines[0], done.stderr
    assert not list(tmp_path.iterdir())  # nothing scanned, nothing written


def _errors(done) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("bgsub: error:")]


def test_scan_says_an_empty_file_is_empty_as_run_does(clip, tmp_path):
    # FFmpeg's "Invalid data found when processing input" said nothing a person could act on
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(clip, folder / "v.mp4")
    (folder / "zero.mp4").touch()
    run = bgsub("run", folder / "zero.mp4", "--no-display", cwd=tmp_path, timeout=60)
    assert run.returncode == 2 and len(_errors(run)) == 1, run.stderr
    reason = "the file is empty (expected a video file)"
    assert _errors(run)[0].endswith(f"zero.mp4: {reason}"), run.stderr
    # one file, and in a folder with another that is scanned
    for inputs in (["in/zero.mp4"], ["in"]):
        done = bgsub("scan", *inputs, "--output-dir", "out", "--scan-only", cwd=tmp_path,
                     timeout=300)
        assert done.returncode == 3, done.stderr
        assert _errors(done) == [f"bgsub: error: in/zero.mp4: {reason}; listed as failed"], \
            done.stderr
        assert "Invalid data" not in done.stderr, done.stderr
    assert "1 files scanned" in done.stderr and (tmp_path / "out" / "v.scan.json").is_file(), \
        done.stderr


@pytest.mark.parametrize("size", ["W100000 H100000", "W0 H0"])
def test_an_impossible_y4m_header_is_named_as_such_by_run_and_scan(tmp_path, size):
    # FFmpeg's Y4M reader turns "Picture size ... is invalid" into "Device or resource busy"
    (tmp_path / "h.y4m").write_bytes(f"YUV4MPEG2 {size} F25:1 Ip A1:1 C420jpeg\nFRAME\n"
                                     .encode() + bytes(64))
    reason = "not a video file that can be read (its header is invalid)"
    run = bgsub("run", "h.y4m", "--no-display", cwd=tmp_path, timeout=60)
    assert run.returncode == 2, run.stderr
    assert _errors(run) == [f"bgsub: error: h.y4m: {reason}"], run.stderr
    scan = bgsub("scan", "h.y4m", "--output-dir", "out", "--scan-only", cwd=tmp_path,
                 timeout=60)
    assert scan.returncode == 3, scan.stderr
    assert _errors(scan) == [f"bgsub: error: h.y4m: {reason}; listed as failed"], scan.stderr
    assert "busy" not in run.stderr + scan.stderr


@pytest.mark.parametrize("taken", ["v.scan.json", "v.event001.jpg", "v.event001.mp4"])
def test_an_output_name_taken_by_a_folder_fails_the_file_naming_the_folder(clip, tmp_path,
                                                                           taken):
    # the record's and the thumbnail's were a raw "[Errno 21] Is a directory", the clip's
    # "the clip could not be written ([Errno 21] Is a directory)"
    shutil.copy(clip, tmp_path / "v.mp4")
    (tmp_path / "out" / taken).mkdir(parents=True)
    done = bgsub("scan", "v.mp4", "--output-dir", "out", cwd=tmp_path, timeout=300)
    assert done.returncode == 3, done.stderr
    assert _errors(done) == [f"bgsub: error: v.mp4: out/{taken}: is a folder (expected a "
                             "file name); listed as failed"], done.stderr
    assert "Errno" not in done.stderr and "directory" not in done.stderr, done.stderr
    # the folder is left alone, and the file leaves no other thumbnail, clip or record
    assert (tmp_path / "out" / taken).is_dir()
    assert [p.name for p in (tmp_path / "out").glob("v.*")] == [taken]


def test_outputs_of_an_input_whose_name_begins_with_a_dot_are_visible(clip, tmp_path):
    # "..mp4" gave "..event001.jpg" and "..scan.json": hidden, like partial files
    for name in ("..mp4", ".hidden.mp4"):
        shutil.copy(clip, tmp_path / name)
    done = bgsub("scan", "..mp4", ".hidden.mp4", "--output-dir", "out", "--quiet",
                 cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert not [n for n in written if n.startswith(".")], written
    for stem in ("_", "_hidden"):
        assert {f"{stem}.scan.json", f"{stem}.event001.jpg", f"{stem}.event001.mp4"} \
            <= set(written), written
    record = json.loads((tmp_path / "out" / "_.scan.json").read_text())
    assert record["events"][0]["thumbnail"] == "_.event001.jpg", record


def test_a_name_made_visible_stays_distinct_from_the_name_it_becomes():
    from bgsub.cli.scan import _names

    here = Path("/tmp/x")
    paths = [here / ".a.mp4", here / "_a.mp4", here / "b.mp4", here / "..mp4",
             here / "c.d.mp4"]
    names = _names(paths, [here] * len(paths))
    assert names[2] == "b" and names[3] == "_" and names[4] == "c.d"  # ordinary: unchanged
    assert len(set(names)) == len(names), names
    assert not [n for n in names if n.startswith(".")], names


def test_an_output_on_a_read_only_file_system_is_named_as_one_that_cannot_be_written(
        clip, tmp_path):
    # (pins the wording; root ignores mode bits, so the folder is a tmpfs remounted read-only)
    from kit import small_disk

    with small_disk(tmp_path / "ro", "1m") as ro:
        (ro / "sub").mkdir()
        done = subprocess.run(["mount", "-o", "remount,ro", str(ro)], capture_output=True,
                              text=True, check=False)
        if done.returncode:
            pytest.skip(f"cannot remount read-only here: {done.stderr.strip()}")
        for args, option in ((["run", clip, "--no-display", "--output", "ro/o.mp4"],
                              "--output ro/o.mp4"),
                             (["scan", clip, "--output-dir", "ro/sub"], "--output-dir ro/sub")):
            done = bgsub(*args, cwd=tmp_path, timeout=120)
            assert done.returncode == 2, done.stderr
            assert done.stderr.splitlines() == [f"bgsub: error: {option}: cannot be written "
                                                "(permission denied)"], done.stderr


def test_live_clips_of_a_source_whose_name_begins_with_a_dot_are_visible(tmp_path, clip):
    """`bgsub run ..mp4 --clips DIR` names its clips after the source, never hidden."""
    source = tmp_path / "..mp4"
    shutil.copy(clip, source)
    clips = tmp_path / "clips"
    run = bgsub("run", "..mp4", "--no-display", "--events", str(tmp_path / "e.jsonl"),
                "--clips", str(clips), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    names = sorted(p.name for p in clips.iterdir())
    assert names and not any(n.startswith(".") for n in names), names
