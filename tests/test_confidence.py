"""Motion events' confidence: its measure, where it shows, and scan.min_confidence."""

import csv
import json
import math
import re

import numpy as np
import pytest

from bgsub.config import Config
from bgsub.eval.synthetic import EventSpec, render_events
from bgsub.model.step import FrameStep
from bgsub.scan.detector import (Event, EventDetector, EventRules, FrameScore, confidence,
                                 join_events)
from bgsub.scan.report import render_report
from bgsub.scan.scanner import scorer_for
from kit import bgsub, events_recording


def test_confidence_grows_with_probability_length_and_steadiness():
    base = confidence(0.9, 20, 20, 3)
    assert 0.0 < base < 0.9
    assert confidence(0.5, 20, 20, 3) < base  # fainter pixels
    assert confidence(0.9, 5, 5, 3) < base  # shorter
    assert confidence(0.9, 20, 60, 3) < base  # on and off
    assert confidence(0.9, 10_000, 10_000, 3) == pytest.approx(0.9)
    for args in [(1.0, 10**6, 10**6, 1), (0.0, 5, 5, 3), (1.0, 1, 1, 1), (1.3, 9, 9, 1),
                 (-0.2, 9, 9, 1)]:
        assert 0.0 <= confidence(*args) <= 1.0
    assert math.isnan(confidence(math.nan, 20, 20, 3))


def test_the_detector_gathers_each_events_motion_frames_and_probability():
    rules = EventRules(threshold=0.01, min_length=2, pre_roll=0, post_roll=3)
    detector = EventDetector(rules)
    shares = [0, 0.05, 0.05, 0, 0.05, 0.05, 0, 0, 0, 0, 0]
    probabilities = [math.nan, 0.9, 0.7, math.nan, 0.8, math.nan, math.nan, 0, 0, 0, 0]
    events = []
    for i, (share, p) in enumerate(zip(shares, probabilities)):
        events += detector.update(i, FrameScore(share, probability=p))
    events += detector.finish()
    (event,) = events
    assert event.motion_frames == 4  # frames 1, 2, 4, 5; the break is in the span
    assert event.probability == pytest.approx(0.8)  # frame 5 measured none
    assert event.confidence(2) == pytest.approx(confidence(0.8, 4, 5, 2))
    # a stretch scanned apart joins with the mean weighted by motion frames
    parts = [Event(0, 9, 2, 9, 0.1, 5, motion_frames=8, probability=0.9),
             Event(10, 14, 10, 11, 0.2, 10, motion_frames=2, probability=0.4)]
    (joined,) = join_events(parts, EventRules(0.01, post_roll=1), 0, 20)
    assert joined.motion_frames == 10 and joined.probability == pytest.approx(0.8)


def _scan_frames(frames, fps=30.0):
    config = Config()
    h, w = frames[0].shape[:2]
    step = FrameStep(config.model, config.postprocess, keep_raw=True, fps=fps, threads=1)
    scorer = scorer_for("clip", config.scan, fps, (w, h),
                        probe=step.masker.foreground_probability_at)
    asked = []
    probe = scorer.probe
    scorer.probe = lambda pixels: asked.append(len(pixels)) or probe(pixels)
    for i, frame in enumerate(frames):
        scorer.write(step(i, frame))
    scorer.finish(len(frames) - 1)
    return scorer.events, asked


def test_a_solid_persistent_object_is_surer_than_a_short_flickering_speck():
    spec = EventSpec(frames=300, crossings=((40, 99),), seed=3)
    frames = [frame for frame, _ in render_events(spec)]
    # a speck, far from the crossing, that blinks: on for 3 frames, then now and then
    for t in (220, 221, 222, 225, 228):
        patch = frames[t][10:24, 130:144].astype(np.int16) + 30
        frames[t][10:24, 130:144] = np.clip(patch, 0, 255).astype(np.uint8)
    events, asked = _scan_frames(frames)
    assert len(events) == 2, [(e.start_frame, e.end_frame) for e in events]
    solid, speck = events
    assert speck.motion_start_frame >= 218
    for e in events:
        assert 0.0 <= e.confidence <= 1.0 and 0.0 <= e.probability <= 1.0
    assert solid.confidence > 0.7 and speck.confidence < 0.3
    assert solid.confidence > speck.confidence + 0.5
    assert solid.motion_frames >= 50 and speck.motion_frames <= 6
    # asked on frames with motion only, for a bounded subsample of their pixels
    assert 0 < len(asked) <= solid.motion_frames + speck.motion_frames + 2
    assert max(asked) <= 256


def test_min_confidence_must_be_between_0_and_1(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    for value in ("1.5", "-0.1", "nan"):
        r = bgsub("scan", "a.mp4", "--set", f"scan.min_confidence={value}", cwd=tmp_path,
                  timeout=600)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("bgsub:")
        assert "scan.min_confidence" in lines[0] and "[0, 1]" in lines[0]
        assert "Traceback" not in r.stderr


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A long crossing (a sure event), then a quick one (a short, less sure event)."""
    folder = tmp_path_factory.mktemp("conf")
    spec = EventSpec(frames=330, crossings=((40, 109), (240, 243)), seed=5)
    return events_recording(folder, spec, crf=0)


def test_the_tables_record_and_report_carry_confidence_and_min_confidence_drops(
        recording, tmp_path):
    out = tmp_path / "all"
    r = bgsub("scan", recording, "--output-dir", out, cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader((out / "events.csv").open()))
    assert len(rows) == 2
    sure, short = (float(row["confidence"]) for row in rows)
    assert 0 <= short < sure <= 1 and sure > 0.6
    table = json.loads((out / "events.json").read_text())
    assert "confidence" in table["columns"]
    events = table["files"][0]["events"]
    assert [e["confidence"] for e in events] == [sure, short]
    assert all(0 < e["probability"] <= 1 and e["motion_frames"] > 0 for e in events)
    record = json.loads(next(out.glob("*.scan.json")).read_text())
    assert [e["confidence"] for e in record["events"]] == [sure, short]
    assert record["below_confidence"] == 0
    page = (out / "report.html").read_text()
    cells = re.findall(r'<td class="num confidence" data-sort="([0-9.]+)">([0-9.]+)</td>', page)
    assert [float(shown) for _, shown in cells] == [round(sure, 2), round(short, 2)]
    assert f"confidence {short:.2f}" in page  # on the event's card too

    # a threshold between the two: the short event goes, counted, with no outputs
    kept = tmp_path / "kept"
    r = bgsub("scan", recording, "--output-dir", kept, "--set",
              f"scan.min_confidence={(sure + short) / 2:.4f}", cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader((kept / "events.csv").open()))
    assert [float(row["confidence"]) for row in rows] == [sure]
    record = json.loads(next(kept.glob("*.scan.json")).read_text())
    assert record["below_confidence"] == 1 and len(record["events"]) == 1
    assert sorted(p.name for p in kept.glob("*.event*")) == [
        "recording.event001.jpg", "recording.event001.mp4"]
    assert "1 motion events dropped under scan.min_confidence" in r.stderr


def _event(number, confidence, start=40):
    return {"event": number, "start_frame": start, "end_frame": start + 30, "peak_frame": start,
            "peak_score": 0.02, "duration": 1.0, "start_time": start / 30,
            "start_timecode": f"00:00:{start / 30:06.3f}",
            "end_timecode": f"00:00:{(start + 30) / 30:06.3f}", "confidence": confidence}


def _record(name, events):
    return {"file": name, "status": "scanned", "events": events, "seconds": 10.0,
            "fps": 30.0, "width": 160, "height": 120, "first_frame": 0, "last_frame": 299,
            "activity": {"first": 0, "width": 10, "values": [0.0] * 30}}


def test_the_reports_events_table_lists_the_surest_first(tmp_path):
    records = [(_record("/cam/a.mp4", [_event(1, 0.31), _event(2, None, 100),
                                       _event(3, 0.88, 200)]), tmp_path),
               (_record("/cam/b.mp4", [_event(1, 0.52)]), tmp_path),
               ({"file": "/cam/c.mp4", "status": "failed", "error": "x", "events": [],
                 "seconds": 0.0}, tmp_path)]
    page = render_report(records, tmp_path, threshold=0.003)
    table = page.split('<table id="events">')[1].split("</table>")[0]
    shown = re.findall(r'class="num confidence" data-sort="([0-9.]*)">([^<]*)<', table)
    assert shown == [("0.880000", "0.88"), ("0.520000", "0.52"), ("0.310000", "0.31"),
                     ("", "-")]  # not measured: last
    assert table.count("<tr>") == 5 and 'data-key="confidence"' in table
    assert 'href="#file0"' in table and 'href="#file1"' in table


BROWSER = __import__("shutil").which("chromium") or __import__("shutil").which(
    "chromium-browser")


@pytest.mark.skipif(BROWSER is None, reason="no chromium installed (Debian: apt-get install "
                    "chromium); the report's browser check needs it")
def test_a_click_on_a_header_sorts_the_events_table(tmp_path):
    import subprocess

    records = [(_record("/cam/a.mp4", [_event(1, 0.31, 40), _event(2, 0.88, 100),
                                       _event(3, None, 160)]), tmp_path),
               (_record("/cam/b.mp4", [_event(1, 0.52, 10)]), tmp_path)]
    page = render_report(records, tmp_path, threshold=0.003)
    # click "confidence" once (highest first), then "start" twice (ascending)
    clicks = """<script>
    window.addEventListener("load", function () {
      var th = function (key) { return document.querySelector('#events th[data-key="' + key + '"]'); };
      var order = function () { return Array.prototype.map.call(
        document.querySelectorAll("#events tbody td.confidence"),
        function (td) { return td.textContent; }).join(","); };
      th("confidence").click();
      document.body.dataset.byConfidence = order();
      th("start").click(); th("start").click();
      document.body.dataset.byStart = order();
    });
    </script></body>"""
    (tmp_path / "report.html").write_text(page.replace("</body>", clicks))
    profile = tmp_path / "profile"
    r = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--disable-background-networking",
                        f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                        "--dump-dom", (tmp_path / "report.html").as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert 'data-by-confidence="0.88,0.52,0.31,-"' in r.stdout, r.stdout[-2000:]
    # frames 10 (b), 40, 100, 160 (a): the starts' times, ascending
    assert 'data-by-start="0.52,0.31,0.88,-"' in r.stdout
