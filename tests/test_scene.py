"""Scene events: the tampered-footage generator, the detectors, where the events go."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bgsub.config import Config
from bgsub.eval.tamper import KINDS, STRENGTHS, Span, tamper


def _frames(n=12, h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 220, (h, w, 3), dtype=np.uint8)
    return [base.copy() for _ in range(n)]


def test_tamper_is_deterministic_by_seed_and_touches_only_its_spans():
    frames = _frames()
    other = _frames(seed=5)
    spans = [Span(k, s, 2 + 2 * i, 3 + 2 * i) for i, (k, s) in enumerate(
        [("covered", "hand"), ("moved", "view"), ("defocused", "2.5"), ("weather", "rain")])]
    a, truth = tamper(frames, spans, seed=7, other=other)
    b, _ = tamper(frames, spans, seed=7, other=other)
    c, _ = tamper(frames, spans, seed=8, other=other)
    assert truth == sorted(spans, key=lambda s: s.start)
    changed = {i for i in range(len(frames)) if not np.array_equal(a[i], frames[i])}
    assert changed == {2, 4, 6, 8}
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[8], c[8])  # the rain is drawn from the seed
    assert np.array_equal(a[0], frames[0]) and a[0] is frames[0]


@pytest.mark.parametrize("kind", KINDS)
def test_every_strength_of_every_kind_changes_the_picture_as_named(kind):
    frames = _frames(n=3)
    for strength in STRENGTHS[kind]:
        out, _ = tamper(frames, [Span(kind, strength, 1, 2)], seed=1, other=_frames(3, seed=9))
        f, g = frames[1].astype(float), out[1].astype(float)
        assert out[1].shape == frames[1].shape and out[1].dtype == np.uint8
        if kind == "covered":
            assert g.std() < 6
        elif kind == "lighting" and strength == "grey":
            assert np.ptp(g, axis=2).max() == 0
        elif kind == "lighting":
            assert abs(g.mean() / f.mean() - float(strength)) < 0.2
        elif kind == "defocused":
            assert np.abs(np.diff(g, axis=1)).mean() < 0.8 * np.abs(np.diff(f, axis=1)).mean()
        elif kind == "weather":
            assert (g >= f).all() and 0.005 < (g > f).mean() < 0.5
        else:
            assert not np.array_equal(f, g)


def test_tamper_refuses_overlapping_or_unknown_spans():
    with pytest.raises(ValueError, match="overlap"):
        tamper(_frames(), [Span("covered", "black", 1, 4), Span("covered", "grey", 3, 5)])
    with pytest.raises(ValueError, match="strength"):
        Span("moved", "huge", 1, 2)
    with pytest.raises(ValueError, match="ends after"):
        tamper(_frames(), [Span("covered", "black", 5, 40)])


# -- the detectors ------------------------------------------------------------------

from bgsub.eval.synthetic import SAMPLE, EventSpec, render, render_events  # noqa: E402
from bgsub.scan.scene import SceneDetector, SceneEvent, SceneRules, overlapping  # noqa: E402


@pytest.fixture(scope="module")
def scene_frames():
    """The sample scene: texture, sensor noise, an illumination drift, moving objects."""
    return [frame for frame, _ in render(SAMPLE)]


def _events(frames):
    detector = SceneDetector(SceneRules(fps=25))
    for i, f in enumerate(frames):
        detector.update(i, f)
    detector.finish()
    return detector.events


def test_no_scene_event_on_an_unaltered_scene_with_moving_objects(scene_frames):
    assert _events(scene_frames) == []


@pytest.mark.parametrize("kind,strength", [
    ("covered", "hand"), ("covered", "black"), ("moved", "5"), ("moved", "view"),
    ("defocused", "2.5"), ("lighting", "1.5"), ("lighting", "grey"), ("weather", "rain")])
def test_each_kind_is_found_within_a_second_and_ends_with_its_span(scene_frames, kind,
                                                                   strength):
    other = [np.ascontiguousarray(f[::-1, ::-1]) for f in scene_frames]  # another view
    span = Span(kind, strength, 80, 140)
    frames, _ = tamper(scene_frames, [span], seed=3, other=other)
    events = _events(frames)
    assert [e.kind for e in events] == [kind], [(e.kind, e.start_frame) for e in events]
    e = events[0]
    assert span.start <= e.start_frame <= span.start + 25
    assert span.end - 1 <= e.end_frame <= span.end + 12
    assert 0 < e.score <= 1 and 0 <= e.evidence["cells"] <= 1
    assert json.loads(json.dumps(e.as_dict()))["kind"] == kind  # plain numbers: JSON lines


def test_a_lasting_new_view_becomes_the_reference_and_its_event_ends(scene_frames):
    rules = SceneRules(fps=25, adopt_seconds=1.0)
    frames, _ = tamper(scene_frames, [Span("moved", "15", 60, 200)], seed=2)
    detector = SceneDetector(rules)
    for i, f in enumerate(frames):
        detector.update(i, f)
    (event,) = [e for e in detector.events if e.kind == "moved"]
    # a look every 10 frames: seen by frame 70, adopted 1 s later, ended 3 looks on
    assert 60 <= event.start_frame <= 70 and 0 <= event.end_frame < 70 + 25 + 10 * 5


def test_start_and_end_callbacks_and_overlap():
    started, ended = [], []
    detector = SceneDetector(SceneRules(fps=25, interval=0, start_looks=2, end_looks=3),
                             on_start=started.append, on_end=ended.append)
    rng = np.random.default_rng(0)
    view = rng.integers(0, 255, (120, 160), dtype=np.uint8)
    for i in range(60):
        detector.update(i, view if not 30 <= i < 40 else np.zeros_like(view))
    assert [e.start_frame for e in started] == [30] and [e.end_frame for e in ended] == [39]
    assert overlapping(detector.events, 39, 50) == ended and overlapping(ended, 0, 29) == []
    assert SceneEvent("covered", 5, -1, 1.0).overlaps(100, 120)  # an open one runs on


# -- where scene events go -------------------------------------------------------------

from kit import bgsub  # noqa: E402

LIVE = EventSpec(width=160, height=120, frames=150, fps=25.0, crossings=((20, 40),))
BLACK = (70, 110)  # the lens covered for these frames


def _covered_clip(path):
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = LIVE.width, LIVE.height, "yuv420p"
        stream.options = {"crf": "0", "preset": "veryfast"}
        for t, (frame, _) in enumerate(render_events(LIVE)):
            if BLACK[0] <= t < BLACK[1]:
                frame = np.zeros_like(frame)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_live_scene_lines_for_a_covered_lens_reach_the_file_and_on_event(tmp_path):
    clip = _covered_clip(tmp_path / "cam.mkv")
    r = bgsub(clip, "--no-display", "--events", "ev.jsonl", "--on-event", "cat >> got.jsonl",
              cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    scene = [d for d in lines if d["type"] == "scene"]
    assert [(d["state"], d["kind"]) for d in scene] == [("start", "covered"), ("end", "covered")]
    start, end = scene
    # a look every 10 frames
    assert BLACK[0] <= start["start_frame"] <= BLACK[0] + 10
    assert BLACK[1] - 1 <= end["end_frame"] <= BLACK[1] + 10
    assert end["start"] == start["start"] and end["evidence"]["cells"] > 0.9
    # the lens going black and coming back is motion too: that event says so
    motion = [d for d in lines if d["type"] == "end" and d["end_frame"] >= BLACK[0]]
    assert motion and all(d["scene"] == ["covered"] for d in motion)
    got = [json.loads(x) for x in (tmp_path / "got.jsonl").read_text().splitlines()]
    assert sorted(d["type"] + d.get("state", "") for d in got) == sorted(
        d["type"] + d.get("state", "") for d in lines)
    r = bgsub(clip, "--no-display", "--events", "off.jsonl", "--set", "scan.scene=false",
              cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    assert '"scene"' not in (tmp_path / "off.jsonl").read_text()


def test_scan_writes_the_scene_table_counts_it_and_shows_it_on_the_timeline(tmp_path):
    import cv2

    from test_report import BROWSER, chromium

    clip = _covered_clip(tmp_path / "cam.mkv")
    out = tmp_path / "out"
    r = bgsub("scan", clip, "--output-dir", out, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "1 scene events (covered 1)" in r.stderr
    table = json.loads((out / "events.json").read_text())
    (scene,) = table["files"][0]["scene"]
    assert scene["kind"] == "covered" and scene["file"] == str(clip)
    assert BLACK[0] <= scene["start_frame"] <= BLACK[0] + 10
    assert BLACK[1] - 1 <= scene["end_frame"] <= BLACK[1] + 10
    assert scene["start_time"] == pytest.approx(scene["start_frame"] / 25)
    assert json.loads((out / "cam.scan.json").read_text())["scene"][0]["kind"] == "covered"
    # the lens going black is motion too: that event (joined, by its rolls, with the
    # crossing before it) is marked with it
    marks = [(e["start_frame"] <= BLACK[0] <= e["end_frame"], e["scene"])
             for e in table["files"][0]["events"]]
    assert marks == [(True, ["covered"])]
    page = (out / "report.html").read_text()
    assert page.count('class="scene-span" data-kind="covered"') == 1
    assert "and 1 scene events" in page and "scene events: covered" in page
    if BROWSER is None:
        pytest.skip("no chromium installed: the report's browser check needs it")
    shot = tmp_path / "shot.png"
    chromium("--window-size=1000,800", f"--screenshot={shot}", (out / "report.html").as_uri(),
             tmp_path=tmp_path)
    image = cv2.imread(str(shot))
    assert image is not None
    # the scene event's purple band (#8e24aa at 70% over white) is on screen
    purple = (np.abs(image.astype(int) - (190, 98, 171)).max(axis=2) < 25)
    assert purple.sum() > 100


def test_a_new_frame_size_ends_the_events_and_starts_a_new_reference():
    rng = np.random.default_rng(1)
    small = rng.integers(0, 255, (120, 160), dtype=np.uint8)
    large = rng.integers(0, 255, (240, 320), dtype=np.uint8)
    detector = SceneDetector(SceneRules(fps=25, interval=0))
    for i in range(40):
        detector.update(i, small if i < 30 else np.zeros_like(small))
    assert detector.events and detector.events[0].end_frame == -1
    for i in range(40, 100):  # another camera mode: not "moved", a new view learned
        detector.update(i, large)
    detector.finish()
    assert [(e.kind, e.start_frame, e.end_frame) for e in detector.events] == [
        ("covered", 30, 39)]


@pytest.mark.parametrize("bad", [{"fps": 0}, {"start_looks": 0}, {"learn_rate": 0},
                                 {"lighting_gain": 1.0}, {"interval": -1}])
def test_scene_rules_refuse_nonsense(bad):
    with pytest.raises(ValueError):
        SceneRules(**bad)


def test_stretches_scanned_apart_keep_their_scene_events_in_order():
    from bgsub.scan.scanner import ScanResult, merge_results

    def part(first, last, scene):
        return ScanResult("a.mp4", [], 25.0, 160, 120, 1, first, last, last - first + 1,
                          (last - first + 1) / 25, 1.0, scene=scene)

    late = SceneEvent("weather", 150, 180, 0.5)
    early = SceneEvent("covered", 10, 40, 1.0)
    merged = merge_results([part(100, 199, [late]), part(0, 99, [early])])
    assert merged.scene == [early, late]


def test_during_scene_keeps_marks_or_drops_the_motion_a_scene_change_makes(tmp_path):
    clip = _covered_clip(tmp_path / "cam.mkv")
    rolls = ["--set", "scan.pre_roll=0.2s", "--set", "scan.post_roll=0.2s", "--scan-only"]
    found = {}
    for mode in ("keep", "mark", "drop"):
        out = tmp_path / mode
        r = bgsub("scan", clip, "--output-dir", out, *rolls, "--set",
                  f"events.during_scene={mode}", cwd=tmp_path, timeout=600)
        assert r.returncode == 0, r.stderr
        found[mode] = json.loads((out / "events.json").read_text())["files"][0]
    crossing = [(e["motion_start_frame"], e.get("scene")) for e in found["mark"]["events"]
                if e["motion_start_frame"] < BLACK[0] - 10]
    blackout = [e for e in found["mark"]["events"] if e["motion_start_frame"] >= BLACK[0] - 10]
    assert crossing == [(crossing[0][0], [])]  # the box crossing: no scene event
    assert blackout and all(e["scene"] == ["covered"] for e in blackout)
    assert all("scene" not in e for e in found["keep"]["events"])
    assert len(found["keep"]["events"]) == len(found["mark"]["events"])
    # dropped: the lens going black and coming back; the crossing stays
    assert [e["motion_start_frame"] for e in found["drop"]["events"]] == [crossing[0][0]]
    assert len(found["drop"]["scene"]) == 1


def test_a_scene_change_explains_the_motion_that_starts_with_it():
    detector = SceneDetector(SceneRules(fps=25))  # a look every 10 frames
    detector.events = [SceneEvent("covered", 100, 150, 1.0), SceneEvent("weather", 300, -1, 0.5)]
    assert detector.explains(92) and detector.explains(160)  # a look before, a look after
    assert not detector.explains(89) and not detector.explains(161)
    assert not detector.explains(400)  # rain explains no motion away: a person in it counts


def _blob(h, w, x, y, size=(30, 30)):
    """A foreground mask with one square blob at (x, y)."""
    mask = np.zeros((h, w), np.uint8)
    mask[y:y + size[1], x:x + size[0]] = 255
    return mask


def test_during_rain_a_frame_has_motion_only_with_a_large_blob_that_lasts(scene_frames):
    from bgsub.scan.detector import FrameScore
    from bgsub.scan.scanner import WEATHER_PERSISTENCE, scorer_for, weather_gate

    h, w = scene_frames[0].shape[:2]
    scorer = scorer_for("cam", Config().scan, 25.0, (w, h))
    scene = SceneDetector(SceneRules(fps=25))
    weather_gate(scorer, scene, 0.01, (w, h))  # a blob of 768 pixels
    specks = FrameScore(0.02, 40, (0, 0, 9, 9))
    rainy, _ = tamper(scene_frames, [Span("weather", "rain", 60, 200)], seed=4)
    for i, f in enumerate(rainy[:60]):
        scene.update(i, f)
    assert scorer.gate(specks, _blob(h, w, 0, 0, (5, 8))) is specks  # dry: as it is
    assert not scorer.hold_flicker()  # ... and the flicker check learns
    for i, f in enumerate(rainy[60:120], 60):
        scene.update(i, f)
    assert scene.under_way("weather") and scene.seeing("weather") and scorer.hold_flicker()
    assert scorer.gate(specks, _blob(h, w, 0, 0, (5, 8))) == FrameScore(0.0)
    # a person: 900 pixels, moving 2 pixels a frame; motion once it has lasted 0.2 s
    need = round(WEATHER_PERSISTENCE * 25)
    person = [FrameScore(0.02, 900, (0, 0, 40, 60)) for _ in range(need + 2)]
    passed = [scorer.gate(score, _blob(h, w, 10 + 2 * k, 40)) is score
              for k, score in enumerate(person)]
    assert passed == [False] * (need - 1) + [True] * 3
    # a large blob that does not last (rain run together, somewhere new each frame)
    jumps = [scorer.gate(person[0], _blob(h, w, x, y)) for x, y in
             [(0, 0), (100, 0), (0, 100), (100, 100), (50, 50), (120, 30), (10, 150)]]
    assert jumps == [FrameScore(0.0)] * 7


def _walk_in_the_rain(gate: bool, strength: str = "rain", frames: int = 420, start: int = 150):
    """The motion events of a still synthetic scene that one box crosses, in rain (from
    frame 150: after the model and the scene detector have learned it), scanned with the
    default ``[scan]``, with the weather gate or without (``weather_blob = 0``)."""
    import dataclasses

    from bgsub.model.step import FrameStep
    from bgsub.scan.scanner import scorer_for, weather_gate

    spec = EventSpec(width=320, height=240, frames=frames, fps=25.0, size=(14, 30),
                     crossings=((300, 360),))
    frames = [frame for frame, _ in render_events(spec)]
    frames, _ = tamper(frames, [Span("weather", strength, start, len(frames))], seed=5)
    config = Config()
    scan = config.scan if gate else dataclasses.replace(config.scan, weather_blob=0.0)
    step = FrameStep(config.model, config.postprocess, keep_raw=True, blinking=True, fps=25)
    scene = SceneDetector(SceneRules(fps=25))
    scorer = scorer_for("cam", scan, 25.0, (spec.width, spec.height), first=100)
    weather_gate(scorer, scene, scan.weather_blob, (spec.width, spec.height))
    for i, frame in enumerate(frames):
        result = step(i, frame)
        scene.write(result)
        scorer.write(result)
    scorer.finish(len(frames) - 1)
    scene.finish()
    return scorer.events, scene.events


def test_a_walk_in_the_rain_is_one_event_and_the_rain_none():
    events, scene = _walk_in_the_rain(gate=True)
    assert [e.kind for e in scene] == ["weather"] and 150 <= scene[0].start_frame <= 175
    # the box crosses in frames 300 .. 360: that event, and nothing else
    assert [(e.motion_start_frame <= 310, e.motion_end_frame >= 350) for e in events] == [
        (True, True)], [(e.motion_start_frame, e.motion_end_frame) for e in events]
    # without the gate the box is one event too (the flicker check and the speck map
    # hold what they learned while it rains), but the rain's first frames, before they
    # and the blink gate know it, make a short one; the next test has rain that the
    # gate alone keeps out
    ungated = [(e.motion_start_frame, e.motion_end_frame)
               for e in _walk_in_the_rain(gate=False)[0]]
    box = [(a, b) for a, b in ungated if a <= 310 and b >= 350]
    assert len(box) == 1 and all(b < 200 for a, b in ungated if (a, b) not in box), ungated


def test_drops_near_the_lens_make_events_only_without_the_gate():
    # a downpour: rain, and 0.6 s of large drops near the lens in every 6 s (frames
    # 300-314, during the box's crossing, and 450-464, on the still scene)
    events, scene = _walk_in_the_rain(gate=True, strength="downpour", frames=600, start=160)
    assert [e.kind for e in scene] == ["weather"]
    spans = [(e.motion_start_frame, e.motion_end_frame) for e in events]
    assert len(spans) == 1 and spans[0][0] <= 310 and spans[0][1] >= 350, spans
    ungated, _ = _walk_in_the_rain(gate=False, strength="downpour", frames=600, start=160)
    # without the gate the drops' burst on the still scene is motion (here the downpour's
    # streaks are too: one event from its start to the end)
    assert any(e.motion_start_frame <= 450 <= e.motion_end_frame for e in ungated), [
        (e.motion_start_frame, e.motion_end_frame) for e in ungated]


def test_weather_is_seen_over_waving_trees_and_they_alone_are_no_weather():
    # trees fill the top 200 of the 240 rows: they change most cells in every look, so
    # rain adds few isolated changes there; but the rows below stay still
    spec = EventSpec(width=320, height=240, frames=300, fps=25.0, waving=200, sway=5.0,
                     crossings=((60, 100),))
    frames = [frame for frame, _ in render_events(spec)]
    assert _events(frames) == []
    for strength in ("rain-light", "rain", "snow"):
        wet, _ = tamper(frames, [Span("weather", strength, 150, 250)], seed=6)
        events = _events(wet)
        assert [e.kind for e in events] == ["weather"], (strength, events)
        assert 150 <= events[0].start_frame <= 175


FALL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fall" / "input"


@pytest.mark.skipif(not FALL.is_dir(), reason="the CDnet fall frames (shared/data/fall) "
                    "are not here")
def test_rain_and_snow_are_seen_over_the_trees_of_fall_and_the_trees_alone_are_not():
    # fall's trees wave all the time: between two looks 0.4 s apart they change most
    # cells; between a look and the frame before it, far fewer (rain: all new)
    import cv2

    names = sorted(FALL.iterdir())[800:1100]
    frames = [cv2.imread(str(name), cv2.IMREAD_COLOR) for name in names]
    assert _events(frames) == []
    for strength in ("rain", "snow"):
        wet, _ = tamper(frames, [Span("weather", strength, 150, 300)], seed=2)
        events = _events(wet)
        assert [e.kind for e in events] == ["weather"], (strength, events)
        assert 150 <= events[0].start_frame <= 175


def test_the_small_picture_is_the_mean_of_the_area_each_pixel_covers():
    """The detectors' 160x120 picture (halved, then resized) against the plain block means."""
    import cv2

    from bgsub.scan.scene import _gradient, _shrink, _small_grey

    rng = np.random.default_rng(3)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), np.uint8), (0, 0), 2)
    blocks = frame.reshape(120, 4, 160, 4, 3).astype(np.float64).mean(axis=(1, 3))
    small = _shrink(frame)
    assert small.shape == (120, 160, 3) and small.dtype == np.uint8
    assert np.abs(small - blocks).max() <= 1.0  # each halving rounds to a grey level
    for shape in [(481, 641, 3), (240, 320), (100, 90, 3), (1080, 1920, 3)]:
        assert _shrink(rng.integers(0, 256, shape, np.uint8)).shape[:2] == (120, 160)
    # the reference's picture: made grey at full size, then small
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float64)
    grey_blocks = grey.reshape(120, 4, 160, 4).mean(axis=(1, 3))
    small_grey = _small_grey(frame)
    assert small_grey.dtype == np.float32 and np.abs(small_grey - grey_blocks).max() <= 1.0
    # the detail measure: mean absolute difference of neighbours, every 4th row and column
    g = frame[:, :, 1].astype(np.int64)
    plain = (np.abs(np.diff(g[::4], axis=1)).mean() + np.abs(np.diff(g[:, ::4], axis=0)).mean())
    assert _gradient(frame) == pytest.approx(plain, rel=1e-12)


def test_the_phase_correlation_is_opencvs_from_the_kept_spectra():
    """The shift from two spectra (the reference's kept, the picture's new) against
    ``cv2.phaseCorrelate`` on the pictures themselves, for whole and sub-pixel shifts."""
    import cv2

    from bgsub.scan.scene import _phase_shift, _spectrum, _window

    rng = np.random.default_rng(5)
    for blur in (1, 3):  # detailed, and blurred enough to make the peak a poor one
        scene = cv2.GaussianBlur(rng.integers(0, 256, (240, 320)).astype(np.float32),
                                 (0, 0), blur)
        reference = np.ascontiguousarray(scene[60:180, 80:240])
        for dx, dy in [(0, 0), (3, 0), (0, -5), (7.5, 2.25), (-12, 9), (30, -20), (0.4, 0.3)]:
            moved = cv2.warpAffine(scene, np.float32([[1, 0, dx], [0, 1, dy]]), (320, 240))
            picture = np.ascontiguousarray(moved[60:180, 80:240])
            opencv, _ = cv2.phaseCorrelate(reference, picture, _window())
            ours = _phase_shift(_spectrum(reference), _spectrum(picture))
            assert ours == pytest.approx(opencv, abs=1e-4), (blur, dx, dy)
            if blur == 1:  # and it finds the shift
                assert ours == pytest.approx((dx, dy), abs=0.75), (dx, dy)
    flat = np.full((120, 160), 80, np.float32)  # no peak at all: no shift, no error
    assert np.isfinite(_phase_shift(_spectrum(flat), _spectrum(flat))).all()


def test_the_kept_spectrum_of_the_reference_is_the_spectrum_of_the_reference():
    """Learning blends the pictures into the reference and their spectra into its
    spectrum; after many looks the two still agree (the DFT is linear)."""
    from bgsub.scan.scene import _spectrum

    rng = np.random.default_rng(8)
    view = rng.integers(0, 200, (120, 160, 3), dtype=np.uint8)
    detector = SceneDetector(SceneRules(fps=25, interval=0))
    for i in range(300):
        noisy = np.clip(view.astype(np.int16) + rng.integers(-6, 7, view.shape), 0, 255)
        detector.update(i, noisy.astype(np.uint8))
    assert detector.events == []
    kept = detector._ref.spectrum
    plain = _spectrum(detector._ref.grey)
    assert kept is not None and np.abs(kept - plain).max() <= 1e-4 * np.abs(plain).max()


def test_a_looks_kernels_agree_with_the_plain_reference():
    """The weather grid, the reference sums and the phase peak's centroid against
    ``tests/naive.py``: random pictures with clumps of change, quiet and busy
    cells, with no usual changes learned yet, and peaks at the map's borders."""
    from naive import naive_peak_centroid, naive_reference_sums, naive_weather_cells

    from bgsub.scan.scene import _NO_USUAL, _peak_centroid, _reference_sums, _weather_cells

    rng = np.random.default_rng(11)
    for trial in range(12):
        before = rng.integers(0, 256, (120, 160)).astype(np.float32)
        grey = before.copy()
        changed = rng.random((120, 160)) < rng.choice([0.0, 0.002, 0.02, 0.3])
        grey[changed] = np.clip(grey[changed] + rng.choice([-40, 13, 40], changed.sum()), 0, 255)
        grey[:, :8] += 12.0  # exactly 12: not a change
        grey[rng.integers(0, 110):, rng.integers(0, 150):][:10, :10] = 255 - before[:10, :10]
        usual = (rng.random((30, 40)) * rng.choice([0.1, 0.3, 1.0])).astype(np.float32)
        usual[0, 0] = np.float32(0.2)  # at the level: not busy
        for u in (usual, _NO_USUAL):
            counts = np.full((30, 40), -1, np.int32)
            touched = np.full((30, 40), -1, np.float32)
            shares = _weather_cells(grey, before, u, counts, touched)
            plain_counts, plain_touched, plain_shares = naive_weather_cells(grey, before, u)
            assert np.array_equal(counts, plain_counts), trial
            assert np.array_equal(touched, plain_touched), trial
            assert shares == plain_shares, (trial, shares, plain_shares)
        ref = rng.random((120, 160)).astype(np.float32) * 255
        sums = _reference_sums(grey, ref)
        plain = naive_reference_sums(grey, ref)
        assert sums[3] == plain[3]
        assert np.allclose(sums, plain, rtol=1e-9, atol=0), (sums, plain)
    for peak in [(0, 0), (0, 159), (119, 0), (60, 80), (59, 79), (1, 158), (118, 2)]:
        surface = rng.random((120, 160)).astype(np.float32) * 0.1
        surface[peak] = 1.0
        surface[(peak[0] + 1) % 120, peak[1]] = 0.5  # a second-best beside it
        assert np.allclose(_peak_centroid(surface), naive_peak_centroid(surface),
                           rtol=0, atol=1e-9), peak
    ties = np.zeros((120, 160), np.float32)
    ties[5, 7] = ties[9, 3] = 1.0  # the first row by row wins, as cv2.minMaxLoc's
    assert np.allclose(_peak_centroid(ties), naive_peak_centroid(ties), atol=1e-9)
