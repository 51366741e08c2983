"""Outputs: each sink writes what a result holds; the writer thread runs them."""

import cv2
import numpy as np
import pytest

from kit import read_video
from bgsub.io.display import annotate
from bgsub.io.sinks import (AnnotatedVideoSink, BackgroundVideoSink, MaskDirSink, MaskVideoSink,
                         ProbabilityVideoSink, Sink, SinkError, SinkWriter, StatsSink)
from bgsub.model.step import FrameResult


def result(index, h=96, w=128):
    frame = np.full((h, w, 3), 60 + index, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[16:48, 16:48] = 255
    mask[56:64, 80:120] = 127
    return FrameResult(index, frame, mask, None, 1024 / (h * w), -8.5 - index, index == 2,
                       background=np.full((h, w, 3), 50, np.uint8),
                       probability=np.full((h, w), 0.5, np.float32))



def test_video_sinks_write_their_image(tmp_path):
    draw = lambda f, m: annotate(f, m, 0.5, 10)  # noqa: E731
    sinks = [AnnotatedVideoSink(tmp_path / "a.avi", 10.0, "--output", draw),
             MaskVideoSink(tmp_path / "m.avi", 10.0, "--mask-output"),
             BackgroundVideoSink(tmp_path / "b.avi", 10.0, "--background-output"),
             ProbabilityVideoSink(tmp_path / "p.avi", 10.0, "--probability-output")]
    assert [s.needs for s in sinks] == [frozenset(), frozenset(), {"background"},
                                        {"probability"}]
    results = [result(i) for i in range(3)]
    for r in results:
        for sink in sinks:
            sink.write(r)
    for sink in sinks:
        sink.close()
    annotated = read_video(tmp_path / "a.avi")
    assert len(annotated) == 3
    drawn = draw(results[0].frame, results[0].mask)
    assert np.abs(annotated[0].astype(int) - drawn).mean() < 3  # MJPG, nearly lossless
    assert results[0].annotated is not None  # drawn once, kept for the other consumers
    mask = read_video(tmp_path / "m.avi")[1][:, :, 0]
    assert abs(int(mask[30, 30]) - 255) < 8 and abs(int(mask[60, 100]) - 127) < 8
    assert abs(int(read_video(tmp_path / "b.avi")[0][5, 5, 0]) - 50) < 4
    assert abs(int(read_video(tmp_path / "p.avi")[0][5, 5, 0]) - 128) < 4


def test_an_annotated_frame_drawn_before_is_used_as_it_is(tmp_path):
    r = result(0)
    r.annotated = np.full_like(r.frame, 200)
    sink = AnnotatedVideoSink(tmp_path / "a.avi", 10.0, "--output",
                              lambda f, m: pytest.fail("drawn twice"))
    sink.write(r)
    sink.close()
    assert abs(int(read_video(tmp_path / "a.avi")[0].mean()) - 200) < 3


def test_mask_dir_names_and_stats_rows(tmp_path):
    plain = MaskDirSink(tmp_path)
    cdnet = MaskDirSink(tmp_path, "--save-masks", "bin{:06d}.png", first=1)
    stats = StatsSink(tmp_path / "s.csv")
    for i in (0, 2):
        for sink in (plain, cdnet, stats):
            sink.write(result(i))
    for sink in (plain, cdnet, stats):
        sink.close()
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "000000.png", "000002.png", "bin000001.png", "bin000003.png"]
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "000002.png"), 0), result(2).mask)
    assert (tmp_path / "s.csv").read_text().splitlines() == [
        "frame,foreground_fraction,log_likelihood,recovering",
        "0,0.083333,-8.500000,0", "2,0.083333,-10.500000,1"]  # 1024 of 12288 pixels


def test_the_writer_runs_sinks_in_its_thread_and_reports_their_errors(tmp_path):
    class Failing(Sink):
        def write(self, r):
            if r.index == 1:
                raise OSError(28, "No space left on device")

    class Recording(Sink):
        needs = frozenset({"background"})

        def __init__(self):
            self.seen, self.closed = [], False

        def write(self, r):
            self.seen.append(r.index)

        def close(self):
            self.closed = True

    recording = Recording()
    writer = SinkWriter([recording, None], queue_size=2)
    assert writer.needs == {"background"} and writer.active
    for i in range(5):
        writer.write(result(i))
    writer.close()
    assert recording.seen == [0, 1, 2, 3, 4] and recording.closed

    recording = Recording()
    writer = SinkWriter([Failing(), recording])
    writer.write(result(0))
    writer.write(result(1))
    with pytest.raises(SinkError, match=r"^output: writing frame 1 failed \(No space left"):
        for i in range(2, 50):  # the next write after the failure reports it
            writer.write(result(i))
    with pytest.raises(SinkError, match="writing frame 1 failed"):
        writer.close()
    assert recording.closed  # every sink is closed, also after an error
    assert not SinkWriter().active
