"""Live events: JSON lines as events start and end, clips with their pre-roll, --on-event."""

import json

import numpy as np
import pytest

from bgsub.eval.synthetic import EventSpec, render_events, write_events_video
from kit import bgsub

from kit import read_video  # every frame, decoded by OpenCV as a player would

SPEC = EventSpec(width=160, height=120, frames=150, fps=30.0, crossings=((40, 69), (110, 129)))


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("live") / "cam.mkv"
    assert write_events_video(str(path), SPEC, crf=0) == SPEC.frames
    return path


def test_events_lines_clips_and_commands(recording, tmp_path):
    rules = ["--set", "scan.pre_roll=10", "--set", "scan.post_roll=5", "--set",
             "scan.min_event_length=3"]
    r = bgsub(recording, "--no-display", "--events", "ev.jsonl", "--clips", "clips",
              "--on-event", "cat >> got.jsonl", *rules, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "2 events" in r.stderr
    lines = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert [(d["type"], d["event"]) for d in lines] == [
        ("start", 1), ("end", 1), ("start", 2), ("end", 2)]
    truth = [(first, last) for first, last in SPEC.crossings]
    for (start, end), (first, last) in zip(zip(lines[0::2], lines[1::2]), truth):
        assert end["start"] == start["start"] and end["clip"] == start["clip"]
        # the box is on screen a frame or two after its crossing begins, and the motion
        # needs min_event_length to count; the event starts pre_roll before it
        motion = end["start_frame"] + 10
        assert first <= motion <= first + 3
        assert last - 2 <= end["end_frame"] - 5 <= last + 1
        assert end["peak_score"] > 0.01 and end["box"] is not None
        # the confidence so far at the start (its first frames of motion), all of it at the end
        assert 0 < start["confidence"] < end["confidence"] <= 1 and end["confidence"] > 0.6
        # the clip is the event's frames, pre-roll included, as the source had them: the
        # box shows in its frames exactly where it shows in the source's
        clip = read_video(tmp_path / end["clip"])
        assert len(clip) == end["end_frame"] - end["start_frame"] + 1
        scene = list(render_events(SPEC))
        moving = [i for i in range(len(clip))
                  if np.count_nonzero(scene[end["start_frame"] + i][1]) >= 100]
        assert moving and moving[0] >= 8  # the pre-roll: frames before the motion
        for i in moving:  # each frame with the box is the source's frame of that moment
            errors = [np.abs(clip[i].astype(int) - frame).mean() for frame, _ in scene]
            assert int(np.argmin(errors)) == end["start_frame"] + i
    got = [json.loads(line) for line in (tmp_path / "got.jsonl").read_text().splitlines()]
    assert sorted((d["type"], d["event"]) for d in got) == sorted(
        (d["type"], d["event"]) for d in lines)


def test_an_on_event_command_that_hangs_never_holds_the_masking(recording, tmp_path):
    r = bgsub(recording, "--no-display", "--on-event", "sleep 60", "--set",
              "events.command_timeout=1", "--set", "events.max_commands=1", cwd=tmp_path,
              timeout=120)
    assert r.returncode == 0, r.stderr
    assert "150 frames processed" in r.stderr
    assert "is not passed on" in r.stderr  # one at a time: the others were dropped, said so
    assert "ran over 1 s and was stopped" in r.stderr
