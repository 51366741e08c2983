"""The event detector on made-up score sequences, against an offline reference."""

import itertools

import numpy as np
import pytest

from bgsub.scan.detector import Event, EventDetector, EventRules, FrameScore, union_box

TH = 0.01


def run(shares, rules, step=1, first=0, last=None, boxes=None, largest=None):
    """Feed scores for frames first, first + step, ...; every event, and when each came out."""
    detector = EventDetector(rules, step, first)
    events, emitted_at = [], []
    for k, share in enumerate(shares):
        index = first + k * step
        box = boxes[k] if boxes is not None else None
        size = largest[k] if largest is not None else 0
        for event in detector.update(index, FrameScore(share, size, box)):
            events.append(event)
            emitted_at.append(index)
        assert len(detector.peak_frames()) <= 3  # the images a caller keeps stay few
    last = first + len(shares) * step - 1 if last is None else last
    for event in detector.finish(last):
        events.append(event)
        emitted_at.append(None)
    return events, emitted_at


def reference(motion, rules, first=0):
    """Events of per-frame motion flags, found offline in two passes (step 1).

    First the events one by one: an event starts at the first frame of a
    run of min_length motion frames; it takes in later motion while the
    gaps are shorter than the post-roll (at least one frame ends it when the
    post-roll is 0); its rolls are added.  Then events whose rolled spans
    overlap or touch are joined.
    """
    n = len(motion)
    found = []
    i = 0
    while i < n:
        run_end = i
        while run_end < n and motion[run_end]:
            run_end += 1
        if run_end - i >= rules.min_length:
            last = run_end - 1
            j = run_end
            while j < n:
                if motion[j]:
                    last = j
                elif j - last >= max(rules.post_roll, 1):
                    break
                j += 1
            found.append([i, last])
            i = max(j, last + 1)
        else:
            i = run_end + 1 if run_end == i else run_end
    spans = []
    for start, last in found:
        begin = max(first, start - rules.pre_roll)
        end = min(n - 1 + first, last + rules.post_roll)
        if spans and begin <= spans[-1][3] + 1:
            spans[-1][2], spans[-1][3] = last, end
        else:
            spans.append([begin, start, last, end])
    return [tuple(s) for s in spans]


def spans(events):
    return [(e.start, e.motion_start, e.motion_end, e.end) for e in events]


def test_one_event_with_its_rolls_peak_and_box():
    shares = [0] * 10 + [0.02, 0.05, 0.03, 0.04] + [0] * 10
    boxes = [None] * 10 + [(5, 5, 9, 9), (6, 4, 12, 9), (7, 5, 14, 10), (8, 5, 15, 11)] \
        + [None] * 10
    largest = [0] * 10 + [25, 40, 30, 35] + [0] * 10
    rules = EventRules(TH, min_length=2, pre_roll=3, post_roll=4)
    (event,), _ = run(shares, rules, boxes=boxes, largest=largest)
    assert spans([event]) == [(7, 10, 13, 17)]
    assert (event.peak_frame, event.peak_score, event.largest) == (11, 0.05, 40)
    assert event.box == (5, 4, 15, 11) and event.frames == 11


def test_motion_shorter_than_min_length_is_no_event_and_exactly_min_length_is():
    rules = EventRules(TH, min_length=3)
    assert run([0, 0.5, 0.5, 0, 0.5, 0.5, 0] + [0] * 5, rules)[0] == []
    (event,), _ = run([0, 0.5, 0.5, 0.5, 0] + [0] * 5, rules)
    assert (event.motion_start, event.motion_end) == (1, 3)
    # a short run at the very end is not an event either
    assert run([0] * 5 + [0.5, 0.5], rules)[0] == []


def test_a_gap_shorter_than_the_post_roll_keeps_the_event_open():
    rules = EventRules(TH, post_roll=3)
    one, _ = run([0.5, 0.5, 0, 0, 0.5, 0] + [0] * 6, rules)
    assert spans(one) == [(0, 0, 4, 7)]
    two, _ = run([0.5, 0.5, 0, 0, 0, 0.5, 0] + [0] * 6, rules)
    # the gap reached the post-roll: the first event ended at frame 1 + 3,
    # the second starts at 5: touching, so one event
    assert spans(two) == [(0, 0, 5, 8)]


def test_events_closer_than_the_rolls_merge_and_farther_ones_do_not():
    rules = EventRules(TH, pre_roll=2, post_roll=2)
    # motion at 2 and at 9: spans [0, 4] and [7, 11] are apart
    apart, _ = run([0, 0, 0.5] + [0] * 6 + [0.5] + [0] * 5, rules)
    assert spans(apart) == [(0, 2, 2, 4), (7, 9, 9, 11)]
    # motion at 2 and at 7: [0, 4] and [5, 9] touch: one event
    touch, _ = run([0, 0, 0.5] + [0] * 4 + [0.5] + [0] * 5, rules)
    assert spans(touch) == [(0, 2, 7, 9)]


def test_the_pre_roll_never_reaches_before_the_first_frame_scored():
    rules = EventRules(TH, pre_roll=10)
    events, _ = run([0.5, 0, 0], rules, first=100)
    assert spans(events) == [(100, 100, 100, 100)]
    events, _ = run([0, 0, 0, 0.5, 0], rules, first=100)
    assert events[0].start == 100


def test_finish_clips_the_post_roll_to_the_last_frame():
    rules = EventRules(TH, post_roll=30)
    events, emitted = run([0, 0.5, 0.5, 0, 0], rules)
    assert spans(events) == [(1, 1, 2, 4)] and emitted == [None]


def test_an_event_comes_out_once_no_later_motion_can_join_it():
    rules = EventRules(TH, pre_roll=3, post_roll=2)
    shares = [0.5] + [0] * 20
    events, emitted = run(shares, rules)
    # ends at 0 + 2; a new event could start (pre-roll included) at 3 until
    # frame 6 is known to have no motion
    assert spans(events) == [(0, 0, 0, 2)] and emitted == [6]


def test_min_area_alone_makes_motion():
    rules = EventRules(TH, min_area=50)
    events, _ = run([0.001, 0.001, 0.001, 0], rules, largest=[10, 60, 70, 0])
    assert spans(events) == [(1, 1, 2, 2)]
    assert run([0.001] * 4, EventRules(TH), largest=[60] * 4)[0] == []  # min_area off


def test_scores_of_skipped_frames_stand_for_the_frames_they_skip():
    # step 3: a score at 0, 3, 6, ...; each stands for itself and the next two
    rules = EventRules(TH, min_length=4, post_roll=3)
    events, _ = run([0, 0.5, 0.5, 0, 0, 0], rules, step=3)
    # motion scored at 3 and 6 stands for frames 3..8: 6 frames >= 4; it
    # ends at 8 + 3
    assert spans(events) == [(3, 3, 8, 11)]
    # one scored frame of motion stands for 3 frames: short of 4
    assert run([0, 0.5, 0, 0], rules, step=3)[0] == []


def test_scores_must_come_in_order():
    detector = EventDetector(EventRules(TH))
    detector.update(5, FrameScore(0))
    with pytest.raises(ValueError, match="frame order"):
        detector.update(5, FrameScore(0))


def test_the_rules_are_checked():
    with pytest.raises(ValueError):
        EventRules(0.0)
    with pytest.raises(ValueError):
        EventRules(TH, min_length=0)
    with pytest.raises(ValueError):
        EventRules(TH, post_roll=-1)


def test_peak_frames_name_the_frames_whose_images_to_keep():
    detector = EventDetector(EventRules(TH, min_length=3, post_roll=1))
    detector.update(0, FrameScore(0.2))  # a run, not yet an event: its peak counts
    assert detector.peak_frames() == {0}
    detector.update(1, FrameScore(0.5))
    detector.update(2, FrameScore(0.3))
    assert detector.peak_frames() == {1} and detector.in_event
    done = detector.update(3, FrameScore(0))
    assert done == [] and not detector.in_event and detector.peak_frames() == {1}
    done = detector.update(4, FrameScore(0))
    assert [e.peak_frame for e in done] == [1] and detector.peak_frames() == set()


def test_union_box():
    assert union_box(None, None) is None and union_box((1, 2, 3, 4), None) == (1, 2, 3, 4)
    assert union_box((1, 2, 3, 4), (0, 5, 2, 9)) == (0, 2, 3, 9)


@pytest.mark.parametrize("min_length,pre_roll,post_roll", list(itertools.product(
    [1, 2, 4], [0, 1, 5], [0, 1, 3, 8])))
def test_random_scores_give_the_reference_events(min_length, pre_roll, post_roll):
    rng = np.random.default_rng(min_length * 100 + pre_roll * 10 + post_roll)
    rules = EventRules(TH, min_length=min_length, pre_roll=pre_roll, post_roll=post_roll)
    for trial in range(20):
        # bursty motion: runs of motion and of stillness of random lengths
        flags = []
        while len(flags) < 300:
            flags += [bool(rng.random() < 0.4)] * int(rng.integers(1, 12))
        flags = flags[:300]
        shares = np.where(flags, rng.uniform(TH, 1, 300), rng.uniform(0, TH * 0.99, 300))
        events, emitted = run(list(shares), rules)
        assert spans(events) == reference(flags, rules), (trial, flags)
        for event, when in zip(events, emitted):
            motion = shares[event.motion_start:event.motion_end + 1]
            moving = np.array(flags[event.motion_start:event.motion_end + 1])
            assert event.peak_score == motion[moving].max()
            assert event.peak_frame == event.motion_start + int(np.argmax(
                np.where(moving, motion, -1)))
            # out in order, as soon as no later motion could join it
            assert when is None or when >= event.end + pre_roll
        assert all(a.end + 1 < b.start for a, b in zip(events, events[1:]))


def test_the_detector_starts_afresh_after_finish():
    detector = EventDetector(EventRules(TH))
    detector.update(0, FrameScore(0.5))
    assert len(detector.finish()) == 1
    detector.update(0, FrameScore(0.5))  # frame numbers start again
    assert [isinstance(e, Event) for e in detector.finish()] == [True]


@pytest.mark.parametrize("pre_roll,post_roll", [(0, 0), (3, 5), (10, 2)])
def test_events_of_stretches_scanned_apart_join_into_those_of_one_pass(pre_roll, post_roll):
    from bgsub.scan.detector import join_events

    rng = np.random.default_rng(pre_roll * 10 + post_roll)
    rules = EventRules(TH, min_length=1, pre_roll=pre_roll, post_roll=post_roll)
    for trial in range(20):
        flags = []
        while len(flags) < 300:
            flags += [bool(rng.random() < 0.4)] * int(rng.integers(1, 15))
        shares = list(np.where(flags[:300], 0.5, 0.0) * rng.uniform(0.5, 1, 300))
        whole, _ = run(shares, rules)
        cuts = sorted(rng.choice(np.arange(1, 300), 3, replace=False))
        pieces = []
        for a, b in zip([0, *cuts], [*cuts, 300]):
            pieces += run(shares[a:b], rules, first=a)[0]
        assert join_events(pieces, rules, 0, 299) == whole, (trial, cuts)
        assert join_events(whole, rules, 0, 299) == whole  # one pass: unchanged
