"""A long live run through the command, events and clips on: memory and descriptors over time.

    python benchmarks/soak.py [--frames 1000000] [--size 160x120] [--every 30]

A generated camera (an HTTP MJPEG stream on 127.0.0.1, bgsub.eval.synthetic's
MjpegServer, frames sent as fast as bgsub reads them) shows a still scene
that a box crosses every few seconds; ``bgsub URL --no-display --quiet
--events ev.jsonl --clips clips/ --stats s.csv --save-model m.ckpt`` runs on
it (periodic checkpoints every 60 s) until the server has sent --frames
frames, then gets SIGINT.  Every --every seconds the process's resident
memory (VmRSS) and open file descriptors are sampled from /proc; the table
shows them over time, then the growth from the first sample after warm-up
to the last (per hour, by a least-squares line), the events and clips
written, and the exit status.  tests/test_soak.py runs the same for a short
while with bounds on the growth.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bgsub.eval.synthetic import EventSpec, MjpegServer, render_events


def scene(width: int, height: int) -> list[np.ndarray]:
    """300 frames (10 s at 30 fps) in which a box crosses twice."""
    spec = EventSpec(width=width, height=height, frames=300, seed=3,
                     crossings=((60, 119), (200, 239)), size=(width // 8, height // 5))
    return [frame for frame, _ in render_events(spec)]


def sample(pid: int) -> tuple[float, int]:
    """(resident MiB, open descriptors) of process *pid*."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def soak(frames: int, size: tuple[int, int], every: float, folder: Path,
         max_seconds: float | None = None) -> dict:
    """Run the command on a generated camera for *frames* frames; the samples and counts."""
    server = MjpegServer(scene(*size))
    cmd = [sys.executable, "-m", "bgsub", server.url, "--no-display", "--quiet",
           "--events", "ev.jsonl", "--clips", "clips", "--stats", "s.csv",
           "--save-model", "m.ckpt", "--set", "output.checkpoint_every=60"]
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = subprocess.Popen(cmd, cwd=folder, env=env, stderr=subprocess.PIPE, text=True)
    start = time.monotonic()
    samples = []
    try:
        while len(server.sent) < frames and proc.poll() is None:
            if max_seconds is not None and time.monotonic() - start > max_seconds:
                break
            samples.append((time.monotonic() - start, len(server.sent), *sample(proc.pid)))
            time.sleep(every)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        server.close()
    lines = [json.loads(line) for line in (folder / "ev.jsonl").read_text().splitlines()]
    return {"samples": samples, "returncode": proc.returncode, "stderr": err.strip(),
            "events": sum(line["type"] == "end" for line in lines),
            "clips": len(list((folder / "clips").glob("*.mp4"))),
            "seconds": time.monotonic() - start, "frames": len(server.sent)}


def growth(samples: list[tuple], column: int, skip: float) -> float:
    """Least-squares slope of a sample column per hour, after *skip* seconds."""
    points = [(s[0], s[column]) for s in samples if s[0] >= skip]
    if len(points) < 2:
        return 0.0
    t, v = np.array(points, float).T
    return float(np.polyfit(t, v, 1)[0] * 3600)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--size", default="160x120")
    ap.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=60.0,
                    help="seconds left out of the growth (imports, kernels, first clips)")
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        r = soak(args.frames, size, args.every, Path(tmp))
    print(f"# {r['frames']} frames of {args.size} in {r['seconds'] / 60:.1f} min "
          f"({r['frames'] / r['seconds']:.0f} fps), events and clips on")
    print(f"{'minute':>7} {'frames':>9} {'RSS MiB':>8} {'fds':>4}")
    for t, n, rss, fds in r["samples"]:
        print(f"{t / 60:7.1f} {n:9d} {rss:8.1f} {fds:4d}")
    after = [s for s in r["samples"] if s[0] >= args.warmup]
    if after:
        print(f"# after {args.warmup:g} s: RSS {min(s[2] for s in after):.1f}-"
              f"{max(s[2] for s in after):.1f} MiB ({growth(r['samples'], 2, args.warmup):+.2f}"
              f" MiB/hour), descriptors {min(s[3] for s in after)}-{max(s[3] for s in after)}"
              f" ({growth(r['samples'], 3, args.warmup):+.2f}/hour)")
    print(f"# {r['events']} events, {r['clips']} clips; exit status {r['returncode']}")


if __name__ == "__main__":
    main()
