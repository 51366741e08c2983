"""scan_file and iter_events on generated recordings with known moving objects."""

import dataclasses
import math
import pickle

import numpy as np
import pytest

import bgsub
from bgsub.config import Config, replace_section
from bgsub.scan.scanner import Activity, ScanOptions, find_videos, iter_events, scan_file
from bgsub.io.sources import SourceError
from bgsub.eval.synthetic import EventSpec, write_events_video
from kit import config_with

# two crossings 60 frames apart, in 150 frames (5 s at 30 fps)
SPEC = EventSpec(frames=150, crossings=((20, 39), (100, 119)))


NO_ROLLS = config_with(pre_roll=0, post_roll=0, min_event_length=1)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("scan") / "crossings.mp4"
    assert write_events_video(str(path), SPEC) == SPEC.frames
    return path


def test_events_are_found_at_the_frames_where_things_move(recording):
    result = scan_file(recording, NO_ROLLS, ScanOptions(scores=True))
    assert (result.first_frame, result.last_frame, result.frames) == (0, 149, 150)
    assert result.fps == 30.0 and math.isclose(result.seconds, 5.0)
    assert (result.width, result.height, result.downscale) == (160, 120, 1)
    assert len(result.events) == 2
    for event, (first, last) in zip(result.events, SPEC.crossings):
        # the object is on screen from its first frame to its last
        assert abs(event.motion_start_frame - first) <= 1
        assert abs(event.motion_end_frame - last) <= 1
        assert (event.start_frame, event.end_frame) == (event.motion_start_frame,
                                                        event.motion_end_frame)
        assert event.motion_start_frame <= event.peak_frame <= event.motion_end_frame
        # its path: a band 24 pixels high at mid height, across the frame
        x, y, w, h = event.box
        assert abs(y - 48) <= 2 and abs(h - 24) <= 3 and x <= 2 and x + w >= 158
        assert 0.015 < event.peak_score < 0.03  # 18 x 24 of 160 x 120 is 0.0225
        assert event.start_time == event.start_frame / 30 and event.duration > 0.5
    scores = result.scores
    assert scores.dtype == np.float32 and len(scores) == 150
    assert np.nanmax(scores[50:90]) == 0.0 and scores[30] > 0.01
    assert max(result.activity.values) == pytest.approx(float(np.max(scores)))


def test_with_the_default_rolls_the_two_crossings_are_one_event(recording):
    (event,) = scan_file(recording, Config()).events  # 1.5 s + 2 s > 60 frames apart
    assert event.start_frame == 0 and event.end_frame == 149  # both rolls clipped


def test_the_events_iterator_gives_the_scan_s_events(recording):
    assert list(iter_events(recording, NO_ROLLS)) == scan_file(recording, NO_ROLLS).events
    events = iter_events(recording, NO_ROLLS)
    first = next(events)
    events.close()  # stops the scan
    assert first.number == 1


def test_start_end_frame_skip_and_downscale(recording):
    part = scan_file(recording, NO_ROLLS, ScanOptions(start="2s", end=140))
    assert (part.first_frame, part.last_frame) == (60, 139)
    assert [e.motion_start_frame for e in part.events] == pytest.approx([100], abs=1)
    skipping = scan_file(recording, dataclasses.replace(
        NO_ROLLS, scan=replace_section(NO_ROLLS.scan, frame_skip=2)), ScanOptions(scores=True))
    assert skipping.frames == 50 and np.isnan(skipping.scores[1::3]).all()
    for event, (first, last) in zip(skipping.events, SPEC.crossings):
        assert abs(event.motion_start_frame - first) <= 3 and abs(event.motion_end_frame - last) <= 3
    small = scan_file(recording, dataclasses.replace(
        NO_ROLLS, scan=replace_section(NO_ROLLS.scan, downscale=2)))
    assert small.downscale == 2 and len(small.events) == 2
    x, y, w, h = small.events[0].box  # in source pixels still
    assert abs(y - 48) <= 3 and abs(h - 24) <= 4


def test_a_warm_up_learns_without_scoring(recording):
    result = scan_file(recording, NO_ROLLS, ScanOptions(start=60, warmup=30, scores=True))
    assert result.first_frame == 60 and len(result.scores) == 90
    assert [e.motion_start_frame for e in result.events] == pytest.approx([100], abs=1)


def test_only_the_region_is_scored(recording):
    above = config_with(pre_roll=0, post_roll=0, regions=((0, 0, 159, 0, 159, 30, 0, 30),))
    assert scan_file(recording, above).events == []
    path_left = config_with(pre_roll=0, post_roll=0, min_event_length=1,
                            regions=((0, 40, 40, 40, 40, 80, 0, 80),))
    events = scan_file(recording, path_left).events
    assert len(events) == 2
    # in the left quarter only while the object crosses it
    assert all(e.motion_end_frame - e.motion_start_frame < 8 for e in events)
    excluded = config_with(exclude=((0, 40, 159, 40, 159, 80, 0, 80),))
    assert scan_file(recording, excluded).events == []


def test_the_callback_gets_each_event_s_peak_frame(recording):
    seen = []
    result = scan_file(recording, NO_ROLLS,
                       on_event=lambda event, frame, moving: seen.append((event, frame, moving)))
    assert [e for e, _, _ in seen] == result.events
    for event, frame, moving in seen:
        assert frame.shape == (120, 160, 3) and moving.shape == (120, 160)
        assert np.count_nonzero(moving) == pytest.approx(event.peak_score * 160 * 120, abs=1)


def test_results_pickle_and_files_that_are_no_video_fail(recording, tmp_path):
    result = scan_file(recording, NO_ROLLS, ScanOptions(scores=True))
    again = pickle.loads(pickle.dumps(result))
    assert again.events == result.events and np.array_equal(again.scores, result.scores,
                                                            equal_nan=True)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    with pytest.raises(SourceError, match="bad.mp4: not a video file that can be read"):
        scan_file(bad, NO_ROLLS)
    with pytest.raises(ValueError, match="not after the start"):
        scan_file(recording, NO_ROLLS, ScanOptions(start=50, end=40))


def test_the_api_is_importable_from_the_package():
    assert bgsub.scan_file is scan_file and bgsub.iter_events is iter_events


def test_activity_bins_stay_few_and_keep_every_peak():
    activity = Activity(bins=4)
    for i in range(100):
        activity.add(i, 0.5 if i == 77 else i / 1000)
    assert len(activity.values) <= 8 and activity.width == 16
    assert max(activity.values) == 0.5 and activity.values[77 // 16] == 0.5


def test_find_videos_walks_folders_and_patterns(tmp_path):
    (tmp_path / "cam" / "day2").mkdir(parents=True)
    for name in ("cam/b.mp4", "cam/a.MKV", "cam/day2/c.avi", "cam/notes.txt",
                 "cam/a.event001.mp4", "other.mp4"):
        (tmp_path / name).write_bytes(b"x")
    files, empty = find_videos([str(tmp_path / "cam"), str(tmp_path / "*.mp4"),
                                str(tmp_path / "cam" / "b.mp4"), str(tmp_path / "none*.mkv")])
    names = [p.relative_to(tmp_path).as_posix() for p in files]
    # a clip of an earlier scan is no input
    assert names == ["cam/a.MKV", "cam/b.mp4", "cam/day2/c.avi", "other.mp4"]
    assert empty == [str(tmp_path / "none*.mkv")]


def test_a_tree_in_the_wind_is_no_event_but_someone_walking_past_it_is(tmp_path):
    spec = EventSpec(width=160, height=120, frames=450, crossings=((250, 289),), size=(16, 30),
                     waving=54, sway=3.0, seed=3)
    path = tmp_path / "tree.mp4"
    write_events_video(str(path), spec)
    rolls_off = config_with(pre_roll=0, post_roll=0)  # and 0.1 s of motion to start one
    settled = [(e.motion_start_frame, e.motion_end_frame)
               for e in scan_file(path, rolls_off).events if e.motion_start_frame > 150]
    assert settled == [(250, 289)]
    # with the baseline settings for moving backgrounds, the post-processing's blink
    # gate alone keeps the gusts from being events; without it the scan's own checks
    # keep most of them out, together better than either alone
    baseline = {"flicker_threshold": 0.0, "neighbour_flicker": 0.3, "flicker_reference": 0.15}

    def events(gate=True, **scan):
        config = config_with(pre_roll=0, post_roll=0, **scan)
        config = dataclasses.replace(
            config, model=replace_section(config.model, **baseline),
            postprocess=replace_section(config.postprocess, **({} if gate else {"blink_size": 0})))
        return [(e.motion_start_frame, e.motion_end_frame)
                for e in scan_file(path, config).events if e.motion_start_frame > 150]

    assert events() == [(250, 289)]
    assert events(flicker=0.0, speck=0.0) == [(250, 289)]  # the blink gate alone
    both, neither = len(events(False)), len(events(False, flicker=0.0, speck=0.0))
    assert both <= 3 and neither >= 8  # the crossing and the gusts
    assert both < len(events(False, flicker=0.0)) and both < len(events(False, speck=0.0))


def test_pixels_that_blink_stop_counting_and_pixels_that_change_once_do_not():
    from bgsub.scan.detector import EventRules
    from bgsub.scan.scanner import MotionScorer

    scorer = MotionScorer("x", EventRules(0.01), fps=30.0, flicker=0.06, flicker_frames=45.0)
    raw = np.zeros((4, 4), np.uint8)
    for t in range(60):
        raw[0, 0] = 255 * (t % 2)  # leaves: on, off, on, off
        raw[1, 1] = 255 * (t >= 30)  # someone arrives and stays
        steady = scorer.steady(raw.copy())
    assert steady[0, 0] == 0 and steady[1, 1] == 255 and steady[3, 3] == 255
    score, moving = scorer.score(raw, steady)
    assert moving[0, 0] == 0 and moving[1, 1] == 255 and score.fraction == 1 / 16


def test_places_that_keep_leaving_specks_stop_counting_and_a_passing_blob_does_not():
    """Specks (blobs under ``speck`` of the picture) that keep coming back in one place
    (in more than ``speck_share`` of the recent frames) make it, and 2 pixels around it,
    unscored, even in a frame without them; a large blob that crosses the picture
    makes nothing unscored, and the place is scored again once its specks stop."""
    from bgsub.scan.detector import EventRules
    from bgsub.scan.scanner import MotionScorer

    scorer = MotionScorer("x", EventRules(0.01), fps=30.0, speck=0.002, speck_share=0.05,
                          speck_frames=30.0)
    mask = np.zeros((60, 80), np.uint8)
    for t in range(90):
        mask[:] = 0
        if t % 3 == 0:  # a leaf here, one frame in three (a 2x2 blob: under 0.002 of 4800)
            mask[10 + t % 2:12 + t % 2, 10:12] = 255
        x = t % 70  # a car crossing the lower half, again and again
        mask[40:55, x:x + 10] = 255
        free = scorer.speckless(mask)
    assert free[11, 11] == 0 and free[8, 8] == 0 and free[7, 7] == 255  # within 2 pixels
    assert (free[35:60] == 255).all()  # where the car went, scored
    for _ in range(200):  # the tree stops leaving specks
        free = scorer.speckless(np.zeros((60, 80), np.uint8))
    assert (free == 255).all()
    off = MotionScorer("x", EventRules(0.01), fps=30.0)
    assert off.speckless(mask) is None  # speck = 0: off
    # more blobs than 16-bit labels can number: every pixel of a grid is a speck
    grid = MotionScorer("x", EventRules(0.01), fps=30.0, speck=0.001, speck_share=0.05,
                        speck_frames=1.0)
    dots = np.zeros((540, 1000), np.uint8)
    dots[::2, ::2] = 255  # 135000 blobs
    assert (grid.speckless(dots) == 0).all()


def test_places_where_the_blink_gate_keeps_applying_are_not_scored():
    """The post-processing's blink gate removes most of a waving background's specks;
    where it took its larger window (``FrameResult.blinking``) in more than
    ``BLINK_SHARE`` of the recent frames is not scored, though the mask there is
    empty; where it applied now and then (the first seconds of rain) still is."""
    from bgsub.scan.detector import EventRules
    from bgsub.scan.scanner import BLINK_SHARE, MotionScorer

    def scorer():
        return MotionScorer("x", EventRules(0.01), fps=30.0, speck=0.002, speck_share=0.05,
                            speck_frames=30.0)

    crown, rain = scorer(), scorer()
    mask = np.zeros((60, 80), np.uint8)
    blinking = np.zeros((60, 80), np.uint8)
    for t in range(90):
        blinking[:] = 0
        if t % 2 == 0:  # the tree's crown, every other frame
            blinking[5:20, 5:25] = 255
        free = crown.speckless(mask, blinking)
        blinking[:] = 255 if t % 10 == 0 else 0  # now and then, everywhere
        wet = rain.speckless(mask, blinking)
    assert BLINK_SHARE < 0.5
    assert (free[5:20, 5:25] == 0).all() and free[3, 3] == 0  # and 2 pixels around
    assert (free[25:] == 255).all() and (wet == 255).all()
    assert (scorer().speckless(mask) == 255).all()  # no gate: nothing from it


def test_a_camera_s_next_recording_carries_on_with_the_same_model(tmp_path):
    spec = EventSpec(frames=150, crossings=((50, 69), (60, 110)))
    paths = {}
    for name, frames in (("all", range(150)), ("first", range(60)), ("next", range(60, 150))):
        paths[name] = tmp_path / f"{name}.mp4"
        write_events_video(str(paths[name]), spec, frames=frames, crf=0)  # lossless
    # the flicker check keeps 1.5 s of memory per file: off, the scores are exact
    config = dataclasses.replace(NO_ROLLS, scan=replace_section(NO_ROLLS.scan, flicker=0.0))
    whole = scan_file(paths["all"], config, ScanOptions(scores=True))
    from bgsub.model.step import FrameStep

    step = FrameStep.from_config(config)
    scan_file(paths["first"], config, step=step)
    carried = scan_file(paths["next"], config, ScanOptions(scores=True), step=step)
    fresh = scan_file(paths["next"], config, ScanOptions(scores=True))
    # the second file scores as the same frames did in one long recording ...
    assert np.array_equal(carried.scores, whole.scores[60:])
    # ... where a model of its own starts blind to what is already moving
    assert not np.allclose(fresh.scores[:20], whole.scores[60:80])


@pytest.mark.parametrize("config", [NO_ROLLS, Config()], ids=["no rolls", "defaults"])
def test_stretches_scanned_apart_with_a_warm_up_merge_into_the_whole_file_s_result(recording,
                                                                                   config):
    from bgsub.scan.scanner import merge_results

    whole = scan_file(recording, config, ScanOptions(scores=True))
    # cut inside the first crossing (20..39) and between the two; scanned in any order
    parts = [scan_file(recording, config, ScanOptions(start=a, end=b, warmup=45, scores=True))
             for a, b in ((90, 150), (0, 30), (30, 90))]
    merged = merge_results(parts, config)
    assert (merged.first_frame, merged.last_frame, merged.frame_count) == (0, 149, 150)
    assert merged.frames == whole.frames == 150 and merged.seconds == whole.seconds
    assert [e.number for e in merged.events] == list(range(1, len(whole.events) + 1))
    for joined, single in zip(merged.events, whole.events):
        assert abs(joined.start_frame - single.start_frame) <= 1
        assert abs(joined.end_frame - single.end_frame) <= 1
        assert abs(joined.motion_start_frame - single.motion_start_frame) <= 1
        assert abs(joined.motion_end_frame - single.motion_end_frame) <= 1
        # the confidence of an event cut in two: its halves' measures put together
        assert abs(joined.motion_frames - single.motion_frames) <= 2
        assert joined.confidence == pytest.approx(single.confidence, abs=0.03)
    assert np.nanmax(np.abs(merged.scores - whole.scores)) < 0.005
    assert max(merged.activity.values) == pytest.approx(max(whole.activity.values), abs=0.005)
