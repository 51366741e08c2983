"""Where a frame's time goes in MixtureMasker.apply: the frame kernel, the neighbour pass,
the ghost test, the log-likelihood and the rest, on busy frames and on a still one.

    python benchmarks/frame_parts.py [--seq DIR] [--start N] [--frames N] [--rounds R]
                                     [--size WxH] [--threads T] [--write-docs]

Busy frames are N frames of a CDnet sequence from ``--start`` (default: highway
600-659, cars in every frame, as ``bench_fps.py``), resized to ``--size``
(default 1920x1080), BGR.  The still case repeats the first of them, so every
pixel settles: the frame kernel's short path everywhere, nothing for the passes
after it.  After a warm-up pass over the frames (compilation, the model's
learning), R rounds run each case in turn; each part's time is summed per
round, and the figures are the medians over the rounds, in milliseconds per
frame.  MOG2 (``detectShadows=False``, OpenCV's thread count) runs on the same
busy frames in the same rounds, for scale.

The parts are timed from Python around each of the backend's calls, so "rest"
is what ``apply`` spends outside them (argument checks, the learning-rate
schedule, handing the calls to the runner).  ``--write-docs`` puts the table,
under its setup line, into ``docs/speed.md`` (between its ``table:parts``
markers).
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

import cv2
import numba
import numpy as np

from bgsub import MixtureMasker
from bench_fps import DEFAULT_SEQ, load_frames
from doctables import cpu_name, write_table

NAMES = {"kernel": "frame kernel", "neighbour_pass": "neighbour pass",
         "ghosts": "ghost test (every 4th frame)", "cell_log_likelihood": "log-likelihood"}


def timed(masker: MixtureMasker, parts: dict) -> None:
    """Wrap the masker's backend calls so that each adds its seconds to *parts*."""
    backend = masker._backend
    runner = backend._runner
    run, track = runner.run, backend._track_ghosts

    def timed_run(kernel, args, n, **kw):
        t = time.perf_counter()
        run(kernel, args, n, **kw)
        parts[getattr(kernel, "__name__", "kernel")] += time.perf_counter() - t

    def timed_track(*args):
        t = time.perf_counter()
        track(*args)
        parts["ghosts"] += time.perf_counter() - t

    runner.run = timed_run
    backend._track_ghosts = timed_track


def general_groups(masker: MixtureMasker, frames, every: int = 6) -> tuple[float, float]:
    """The lowest and highest share, over every *every*-th frame, of the 8-pixel groups
    that take the frame kernel's general path: those with a pixel that does not match
    its top-ranked component (the match rule of bgsub.model.kernels.frame, on the
    decoded state before the frame).  The masker learns from every frame."""
    cfg = masker.config
    lam2 = np.float32(cfg.match_threshold ** 2)
    shares = []
    for i, frame in enumerate(frames):
        if i % every == 0:
            w, mu, var = masker._backend.decode()
            x = frame.reshape(-1, mu.shape[1]).astype(np.float32).T
            d2 = (x - mu[0]) ** 2
            if var.shape[1] == 1:
                near = d2.mean(0) < lam2 * var[0, 0]
            else:
                near = (d2 / var[0]).mean(0) < lam2
            miss = ~((w[0] > 0) & near)
            shares.append(float(miss[:miss.size // 8 * 8].reshape(-1, 8).any(1).mean()))
        masker.apply(frame)
    return min(shares), max(shares)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=Path, default=DEFAULT_SEQ)
    ap.add_argument("--start", type=int, default=600)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--write-docs", action="store_true", help="put the table into docs/speed.md")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    source, what = load_frames(args.seq, args.start, args.frames)
    busy = [cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in source]
    still = [busy[0]] * len(busy)
    cases = {"busy": (MixtureMasker(threads=args.threads), busy),
             "still": (MixtureMasker(threads=args.threads), still)}
    mog2 = cv2.createBackgroundSubtractorMOG2(detectShadows=False)
    for masker, frames in cases.values():
        for f in frames:
            masker.apply(f)
    for f in busy:
        mog2.apply(f)
    if args.write_docs and "synthetic" in what:
        ap.error(f"--write-docs needs the sequence's frames: {what}")
    threads = cases["busy"][0].threads
    setup = (f"{args.size} BGR, {what}; median of {args.rounds} rounds; {cpu_name()}, "
             f"{numba.config.NUMBA_NUM_THREADS} CPUs; bgsub {threads} threads (defaults); "
             f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads")
    print(f"# {setup}")
    rounds = {name: [] for name in cases}
    mog2_ms = []
    for _ in range(args.rounds):
        for name, (masker, frames) in cases.items():
            parts = collections.defaultdict(float)
            timed(masker, parts)
            t = time.perf_counter()
            for f in frames:
                masker.apply(f)
            total = time.perf_counter() - t
            del masker._backend._runner.run, masker._backend._track_ghosts
            parts["rest"] = total - sum(parts.values())
            parts["total"] = total
            rounds[name].append({k: 1e3 * v / len(frames) for k, v in parts.items()})
        t = time.perf_counter()
        for f in busy:
            mog2.apply(f)
        mog2_ms.append(1e3 * (time.perf_counter() - t) / len(busy))
    lines = ["| ms a frame | busy frames | a still frame |", "|---|---|---|"]
    print(f"{'ms a frame':30s} {'busy':>8s} {'still':>8s}")
    for key in [*NAMES, "rest", "total"]:
        row = [statistics.median(r.get(key, 0.0) for r in rounds[name]) for name in cases]
        print(f"{NAMES.get(key, key):30s} {row[0]:8.3f} {row[1]:8.3f}")
        lines.append(f"| {NAMES.get(key, key)} | {row[0]:.2f} | {row[1]:.2f} |")
    mog2 = statistics.median(mog2_ms)
    print(f"{'MOG2 (busy frames)':30s} {mog2:8.3f}")
    lines.append(f"| MOG2, same rounds | {mog2:.2f} | |")
    low, high = general_groups(cases["busy"][0], busy)
    groups = (f"On every 6th busy frame, {100 * low:.1f}-{100 * high:.1f}% of the 8-pixel "
              f"groups hold a pixel that does not match its top-ranked component: the "
              f"general path's share.")
    print(groups)
    if args.write_docs:
        table = f"Setup: {setup}.\n\n" + "\n".join(lines) + f"\n\n{groups}"
        print(f"wrote {write_table('speed.md', 'parts', table)}", file=sys.stderr)


if __name__ == "__main__":
    main()
