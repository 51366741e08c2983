"""What ``--serve`` costs the frame loop: no server, one viewer, a stalled viewer.

Run: python benchmarks/bench_serve.py [--rounds 5] [--seconds 10] [--json out.json] [--write-docs]

The loop is :func:`bgsub.io.pipeline.run_pipeline` over generated 640x480
frames held in memory (no decoding), through the frame step, with the
events' scorer as a ``--serve`` run has it, and:

* ``none``: no server;
* ``viewer``: a :class:`~bgsub.live.server.LiveServer` and one viewer (a
  process of its own) reading its MJPEG stream of the annotated frame as fast
  as it comes;
* ``stalled``: a viewer that connects to the stream and then reads nothing
  for the round (``--seconds``, 10 by default): the server keeps encoding
  (someone is watching), the socket's buffers fill, and the loop must not
  notice.

Each round runs, for ``--seconds`` each: ``none``, one mode, ``none``, the
other mode, ``none`` (which mode comes first alternates).  A mode's loss in a
round is against the mean of the two ``none`` runs on either side of it, so
that a drift of the machine's speed cancels; its cost is the median of its
losses over the rounds.  ``--write-docs`` puts the table into
``docs/serve.md``.  The costs are the
relative fps losses against ``none``; ``--serve`` promises at most 10%
for one viewer at 640x480 and at most 5% for a stalled one.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cv2  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402
from doctables import cpu_name, write_table  # noqa: E402

from bgsub.config import Config  # noqa: E402
from bgsub.eval.synthetic import EventSpec, render_events  # noqa: E402
from bgsub.io.display import drawer  # noqa: E402
from bgsub.io.pipeline import run_pipeline  # noqa: E402
from bgsub.live.events import LiveEvents  # noqa: E402
from bgsub.live.server import LiveServer  # noqa: E402
from bgsub.model.step import FrameStep  # noqa: E402


class Looped:
    """A reader over frames in memory, looped, for *seconds*."""

    def __init__(self, frames: list[np.ndarray], seconds: float, first: int = 0) -> None:
        self.frames = frames
        self.end = time.perf_counter() + seconds
        self.i = first

    def get(self, timeout: float = 0.1):
        if time.perf_counter() >= self.end:
            return None
        frame = self.frames[self.i % len(self.frames)]
        self.i += 1
        return self.i - 1, frame


# a viewer in a process of its own (as a browser is): reads the MJPEG stream as fast as it comes
READER = """
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as sock:
    sock.sendall(b"GET /stream/0/frame.mjpg HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n")
    while sock.recv(1 << 16):
        pass
"""


def stalled(port: int) -> socket.socket:
    """A viewer that asks for the stream, reads nothing and keeps the connection."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /stream/0/frame.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


def one(mode: str, frames, config: Config, seconds: float) -> float:
    step = FrameStep.from_config(config, fps=30.0)
    events = LiveEvents("bench", config, 30.0)
    consumers = [events]
    server = viewer = sock = None
    if mode != "none":
        server = LiveServer("127.0.0.1", 0, None, drawer(config.display))
        server.start()
        server.add_source("bench")
        consumers.append(server.feed(0, step.reset))
        events.subscribers.append(lambda record: server.event(0, record))
        if mode == "viewer":
            viewer = subprocess.Popen([sys.executable, "-c", READER, str(server.port)])
        else:
            sock = stalled(server.port)
        time.sleep(0.5)  # the viewer is connected
    # a second of warm-up (the model's first frames, the caches), not timed
    warm = Looped(frames, 1.0)
    run_pipeline(warm, step, consumers)
    summary = run_pipeline(Looped(frames, seconds, warm.i), step, consumers)
    if viewer is not None:
        viewer.kill()
        viewer.wait()
    if sock is not None:
        sock.close()
    if server is not None:
        server.close()
    events.close()
    return summary.fps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--json", type=Path)
    p.add_argument("--write-docs", action="store_true",
                   help="put the table into docs/serve.md")
    args = p.parse_args()
    spec = EventSpec(width=640, height=480, frames=120, crossings=((30, 89),), size=(60, 80))
    frames = [f for f, _ in render_events(spec)]
    config = Config()
    setup = (f"640x480 BGR frames from memory (a 60x80 object crossing in 60 of every 120), "
             f"{args.rounds} rounds of {args.seconds:g} s per run: no server, a mode, no "
             f"server, the other mode, no server; {cpu_name()}, {os.cpu_count()} CPUs; "
             f"OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), bgsub "
             f"{numba.get_num_threads()} threads; the server encodes at most 10 frames a "
             f"second per source")
    print(setup, f"; load average {os.getloadavg()[0]:.2f}", sep="")
    one("none", frames, config, 2.0)  # compiles the kernels
    fps: dict[str, list[float]] = {m: [] for m in ("none", "viewer", "stalled")}
    losses: dict[str, list[float]] = {"viewer": [], "stalled": []}
    for r in range(args.rounds):
        # each mode between two runs without a server, so that a drift of the machine's
        # speed cancels; which mode comes first alternates
        first, second = ("viewer", "stalled") if r % 2 == 0 else ("stalled", "viewer")
        runs = [(m, one(m, frames, config, args.seconds))
                for m in ("none", first, "none", second, "none")]
        for m, v in runs:
            fps[m].append(v)
        for i in (1, 3):
            mode, value = runs[i]
            losses[mode].append(1 - value / ((runs[i - 1][1] + runs[i + 1][1]) / 2))
        print(f"round {r + 1}: " + ", ".join(f"{m} {v:.1f}" for m, v in runs) + " fps",
              flush=True)
    median = {m: statistics.median(v) for m, v in fps.items()}
    cost = {m: statistics.median(v) for m, v in losses.items()}
    print(f"median: no server {median['none']:.1f} fps; one viewer {median['viewer']:.1f} fps "
          f"({100 * cost['viewer']:.1f}% slower); a stalled viewer {median['stalled']:.1f} "
          f"fps ({100 * cost['stalled']:.1f}% slower)")
    table = "\n".join([
        f"Setup: {setup}.",
        "",
        "| mode | loop fps (median) | cost against the runs without a server on either "
        "side (median of rounds) | aim |",
        "|---|---:|---:|---:|",
        f"| no server | {median['none']:.1f} | - | - |",
        f"| one viewer | {median['viewer']:.1f} | {100 * cost['viewer']:.1f}% | <= 10% |",
        f"| a stalled viewer | {median['stalled']:.1f} | {100 * cost['stalled']:.1f}% | <= 5% |",
    ])
    print(table)
    if args.write_docs:
        write_table("serve.md", "serve", table)
    if args.json:
        args.json.write_text(json.dumps({"fps": fps, "median": median, "cost": cost},
                                        indent=2))


if __name__ == "__main__":
    main()
