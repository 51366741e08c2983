"""Clips (stream copy, re-encoding) and thumbnails."""

import av
import numpy as np
import pytest

from bgsub.scan.clips import Clip, ClipError, clip_extension, cut_clip, thumbnail
from bgsub.eval.synthetic import EventSpec, render_events, write_events_video
from kit import read_video  # every frame, decoded by OpenCV as a player would

SPEC = EventSpec(frames=150, crossings=((60, 89),))
GOP = 30  # a key frame every second


@pytest.fixture(scope="module", params=[".mp4", ".mkv"])
def recording(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / f"source{request.param}"
    write_events_video(str(path), SPEC, gop=GOP)
    return path


def test_a_stream_copy_starts_on_the_key_frame_at_or_before_the_start(recording, tmp_path):
    source = read_video(recording)
    target = tmp_path / f"clip{recording.suffix}"
    start, end = 75 / 30, 100 / 30  # frames 75 to 99
    clip = cut_clip(recording, target, start, end, 30.0)
    assert clip == Clip(target, 2.0, True)  # key frames at 0, 30, 60, 90, ...
    assert not list(tmp_path.glob(".*"))  # no partial file left behind
    frames = read_video(target)
    # from the key frame at 60 to the end: 40 frames, and a few more the
    # end's frames needed (B-frames shown before the frames they refer to)
    assert 40 <= len(frames) <= 44
    # the very same frames: the packets were copied, not encoded again
    for k in (0, 15, 39):
        assert np.array_equal(frames[k], source[60 + k])
    with av.open(str(target)) as check:  # and its length says so
        stream = check.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert float(check.duration / 1e6) == pytest.approx(len(frames) / 30, abs=0.1)


def test_a_clip_that_cannot_be_copied_is_encoded_again(tmp_path):
    # raw video in NUT: not a container clips are copied into, so an .mp4
    source = tmp_path / "raw.nut"
    mp4 = tmp_path / "h264.mp4"
    with av.open(str(source), "w") as out:
        stream = out.add_stream("rawvideo", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i, (image, _) in enumerate(render_events(SPEC)):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
    assert clip_extension(source) == ".mp4" and clip_extension(mp4) == ".mp4"
    assert clip_extension("a.MKV") == ".mkv" and clip_extension("a.dav") == ".mp4"
    target = tmp_path / "clip.mp4"
    clip = cut_clip(source, target, 75 / 30, 100 / 30, 30.0)
    assert clip == Clip(target, 2.5, False)  # re-encoded from the event's first frame
    frames = read_video(target)
    assert len(frames) == 25
    original = [image for image, _ in render_events(SPEC)]
    # its first frame is the source's frame 75: the object stands where it stood then
    nearest = min(range(65, 86), key=lambda k: np.abs(frames[0].astype(int) - original[k]).mean())
    assert nearest == 75


def test_an_empty_stretch_is_no_clip(recording, tmp_path):
    with pytest.raises(ClipError, match="no frame"):
        cut_clip(recording, tmp_path / "late.mp4", 20.0, 21.0, 30.0)
    assert not list(tmp_path.iterdir())


def test_a_thumbnail_boxes_the_moving_blobs_and_outlines_the_region():
    frame = np.full((60, 80, 3), 100, np.uint8)
    moving = np.zeros((60, 80), np.uint8)
    moving[20:30, 30:40] = 255
    region = [(np.array([[5, 5], [70, 5], [70, 50]], np.int32), True)]
    image = thumbnail(frame, moving, region)
    assert image.shape == frame.shape and np.array_equal(frame, np.full_like(frame, 100))
    green = (image[:, :, 1] == 255) & (image[:, :, 0] == 0) & (image[:, :, 2] == 0)
    ys, xs = np.nonzero(green)
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == (28, 18, 41, 31)  # around, not on
    assert not green[21:29, 31:39].any()
    yellow = (image[:, :, 1] > 150) & (image[:, :, 2] > 150) & (image[:, :, 0] < 80)
    assert yellow[5, 20:60].all()
