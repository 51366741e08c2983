"""Durations as frames, seconds or timecodes."""

import datetime

import pytest

from bgsub.timecode import Duration, parse_duration, timecode


@pytest.mark.parametrize("text,fps,frames", [
    (45, 30.0, 45), ("45", 25.0, 45), (" 12 ", 30.0, 12), (0, 30.0, 0),
    ("1.5s", 30.0, 45), ("1.5 s", 25.0, 38), ("2s", 29.97, 60), (".5s", 10.0, 5),
    ("00:00:01.5", 30.0, 45), ("00:01:00", 25.0, 1500), ("01:30", 10.0, 900),
    ("1:00:00", 1.0, 3600), (datetime.time(0, 0, 2, 500000), 30.0, 75),
])
def test_every_form_turns_into_frames_at_the_file_rate(text, fps, frames):
    assert parse_duration(text).frames(fps) == frames


def test_frames_stay_frames_whatever_the_rate():
    assert parse_duration("90").frames(5.0) == parse_duration("90").frames(60.0) == 90
    assert parse_duration("3s").frames(5.0) == 15 and parse_duration("3s").frames(60.0) == 180


@pytest.mark.parametrize("bad", ["-3", "1.5", "1.5m", "s", "", "00:61:00", "1:2:75",
                                 "abc", -1, 1.5, True, None, "1e3s"])
def test_anything_else_is_refused_with_the_forms_it_could_take(bad):
    with pytest.raises(ValueError) as err:
        parse_duration(bad, "--start")
    message = str(err.value)
    assert message.startswith("--start must be frames (45), seconds") and repr(bad) in message


def test_timecodes_round_to_the_millisecond():
    assert timecode(0) == "00:00:00.000"
    assert timecode(59.9996) == "00:01:00.000"
    assert timecode(36000 + 61.25) == "10:01:01.250"
    assert timecode(1 / 3) == "00:00:00.333"
    assert str(Duration(count=3)) == "3 frames" and str(Duration(seconds=1.5)) == "1.5 s"


@pytest.mark.parametrize("duration", [
    Duration(count=0), Duration(count=45), Duration(seconds=0.1), Duration(seconds=2.0),
    Duration(seconds=1 / 3), Duration(seconds=3723.5), Duration(seconds=1e-7),
    Duration(seconds=123456789.125),
])
def test_a_duration_written_as_a_setting_reads_back_the_same(duration):
    written = duration.setting()
    assert parse_duration(written) == duration
    assert parse_duration(duration) is duration  # already read: taken as it is


def test_a_duration_is_frames_or_seconds_never_both_nor_neither():
    assert Duration(seconds=1.5).setting() == "1.5s" and Duration(count=45).setting() == 45
    for both_or_none in ({}, {"count": 3, "seconds": 1.0}):
        with pytest.raises(ValueError):
            Duration(**both_or_none)
