"""How many 640x480 streams at 15 fps one process masks in real time, every frame.

    python benchmarks/bench_streams.py [--max 8] [--seconds 20] [--fps 15]

Generated sources: for each stream an HTTP MJPEG server on 127.0.0.1 sends
pre-encoded 640x480 JPEG frames of a synthetic scene (bgsub.eval.synthetic) at
the given rate, paced by the clock, as an IP camera does (encoding happens
once, before the run, so the servers cost almost nothing).  Then the real
command, ``bgsub URL1 URL2 ... --no-display --stats s-{n}.csv``, masks all
of them in one process (one model, reader and decoder per stream, the cores
shared out).  A stream is kept up with when the command took at least 98%
of the frames the server meant to send in the measured span (after a
warm-up); when bgsub falls behind, TCP pushes back and the server sends
less.  The answer is the largest count at which every stream keeps up.
Also reported: the process's CPU use (a share of all cores).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from bgsub.eval.synthetic import MjpegServer, SceneSpec, render


def frames_jpeg(n: int, seed: int) -> list[bytes]:
    spec = SceneSpec(width=640, height=480, frames=n, seed=seed)
    return [cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
            for frame, _ in render(spec)]


def run(count: int, jpegs: list[bytes], fps: float, seconds: float, warmup: float) -> dict:
    servers = [MjpegServer(jpegs, fps) for _ in range(count)]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "bgsub", *[s.url for s in servers], "--no-display",
               "--quiet", "--stats", str(Path(tmp) / ("s-{n}.csv" if count > 1 else "s.csv"))]
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "DISPLAY": ""})
        time.sleep(warmup)
        t0 = time.monotonic()
        cpu0 = _cpu(proc.pid)
        time.sleep(seconds)
        t1 = time.monotonic()
        cpu1 = _cpu(proc.pid)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    for s in servers:
        s.close()
    rates = [sum(t0 <= t < t1 for t in s.sent) / (t1 - t0) for s in servers]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"count": count, "rates": rates, "kept_up": min(rates) >= 0.98 * fps,
            "cpu": (cpu1 - cpu0) / (t1 - t0) / cores, "stderr": err.strip()}


def _cpu(pid: int) -> float:
    """CPU seconds of process *pid* so far (user + system, from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=64, help="most streams to try")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured span per count")
    ap.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring")
    ap.add_argument("--fps", type=float, default=15.0)
    args = ap.parse_args(argv)
    jpegs = frames_jpeg(150, seed=11)
    print(f"# 640x480 MJPEG streams at {args.fps:g} fps; {args.seconds:g} s measured after "
          f"{args.warmup:g} s; kept up = every stream >= 98% of its frames")
    print(f"{'streams':>8} {'min fps':>8} {'mean fps':>9} {'CPU':>6} kept up")

    def kept_up(count: int) -> bool:
        r = run(count, jpegs, args.fps, args.seconds, args.warmup)
        print(f"{count:8d} {min(r['rates']):8.2f} {sum(r['rates']) / count:9.2f} "
              f"{r['cpu']:6.0%} {'yes' if r['kept_up'] else 'no'}", flush=True)
        return r["kept_up"]

    # doubling until a count fails, then halving the gap
    good, bad = 0, None
    count = 1
    while count <= args.max and kept_up(count):
        good, count = count, count * 2
    bad = count if count <= args.max else None
    while bad is not None and bad - good > 1:
        middle = (good + bad) // 2
        if kept_up(middle):
            good = middle
        else:
            bad = middle
    print(f"# sustained: {good} streams" + ("" if bad is not None else
                                              f" (the most tried, --max {args.max})"))


if __name__ == "__main__":
    main()
