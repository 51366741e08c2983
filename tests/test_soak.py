"""A live run for a while, events and clips on: memory and descriptors stay flat.

The short form of benchmarks/soak.py (whose README figures come from a run of
a million frames).  BGSUB_SOAK_SECONDS sets how long it runs (default 20; CI runs it for 3 minutes).
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from soak import soak  # noqa: E402  (benchmarks/soak.py)

SECONDS = float(os.environ.get("BGSUB_SOAK_SECONDS", "20"))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="samples /proc")
def test_a_long_live_run_keeps_its_memory_and_descriptors_flat(tmp_path):
    r = soak(10**9, (160, 120), every=1.0, folder=tmp_path, max_seconds=SECONDS)
    assert r["returncode"] == 130, r["stderr"]  # stopped by SIGINT, outputs complete
    assert r["events"] >= 3 and r["clips"] == r["events"]
    settled = [s for s in r["samples"] if s[0] >= min(10.0, SECONDS / 3)]
    assert len(settled) >= 5
    rss = [s[2] for s in settled]
    fds = [s[3] for s in settled]
    assert max(fds) - min(fds) <= 2, fds  # a clip being written holds one more
    # allocator noise, not growth: the last samples are no higher than the first ones
    assert max(rss[-3:]) - max(rss[:3]) < 8, rss
