"""The reader and writer threads yield to the masker: their nice value, and only theirs."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from bgsub.io.priority import lower_this_thread
from bgsub.io.sinks import Sink, SinkWriter
from bgsub.io.sources import FrameReader, Source, SourceInfo
from bgsub.eval.synthetic import SceneSpec, write_video

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="per-thread nice values are Linux only")


def own_nice():
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def in_a_thread(fn):
    result = []
    t = threading.Thread(target=lambda: result.append(fn()))
    t.start()
    t.join()
    return result[0]


@linux_only
def test_lowering_changes_the_calling_thread_alone():
    before = own_nice()
    done, nice = in_a_thread(lambda: (lower_this_thread(5), own_nice()))
    assert done and nice == min(19, before + 5)
    assert own_nice() == before  # this thread, and so the process's others, keep theirs
    assert in_a_thread(lambda: (lower_this_thread(0), own_nice())) == (False, before)


class RecordingSource(Source):
    def __init__(self):
        self.info = SourceInfo("file", "recording", 25.0, 2)
        self.nice = []
        self.left = 2

    def read(self):
        self.nice.append(own_nice())
        self.left -= 1
        return np.zeros((4, 4), np.uint8) if self.left >= 0 else None


@linux_only
def test_reader_and_writer_threads_run_at_the_given_nice(tmp_path):
    base = own_nice()
    source = RecordingSource()
    reader = FrameReader(source, nice=7)
    while reader.get(timeout=5) is not None:
        pass
    reader.close()
    assert source.nice and set(source.nice) == {min(19, base + 7)}

    seen = []

    class Recording(Sink):
        def write(self, result):
            seen.append(own_nice())

    writer = SinkWriter([Recording()], nice=3)
    writer.write(None)
    writer.close()
    assert seen == [min(19, base + 3)]
    assert own_nice() == base


RUN_THEN_LIST_PRIORITIES = r"""
import os, sys, time
import cv2, numpy as np
from bgsub import cli
from bgsub.io.sinks import VideoSink

slow = VideoSink.write_image
def write(self, image):  # a writer that falls behind, so its queue is full at the end
    time.sleep(0.02)
    slow(self, image)
VideoSink.write_image = write
before = cv2.getNumThreads()
code = cli.main([sys.argv[1], "--no-display", "--quiet", "--output", sys.argv[2],
                 "--mask-output", sys.argv[3]])
assert code == 0 and cv2.getNumThreads() == before, (code, cv2.getNumThreads(), before)
for _ in range(20):  # work for OpenCV's pool, from the main thread
    cv2.GaussianBlur(np.zeros((480, 640), np.uint8), (7, 7), 0)
def nice_values():
    values = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            values.add(os.getpriority(os.PRIO_PROCESS, int(tid)))
        except ProcessLookupError:  # gone meanwhile
            pass
    return sorted(values)
# a thread whose join() returned may take a moment more to leave /proc: wait for it
for _ in range(200):
    if len(nice_values()) == 1:
        break
    time.sleep(0.01)
print(nice_values())
"""


@linux_only
def test_no_thread_keeps_the_writer_priority_after_a_run(tmp_path):
    """OpenCV's pool stays off until the niced writer is done, so it never inherits its nice."""
    clip = tmp_path / "c.mp4"
    write_video(str(clip), SceneSpec(width=640, height=480, frames=20, seed=2))
    script = tmp_path / "run.py"
    script.write_text(RUN_THEN_LIST_PRIORITIES)
    r = subprocess.run([sys.executable, str(script), str(clip), str(tmp_path / "o.avi"),
                        str(tmp_path / "m.avi")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str([own_nice()])  # every thread at the process's nice
