"""End-to-end rate of ``bgsub VIDEO --no-display --output out.mp4`` against its stages.

    python benchmarks/bench_pipeline.py [--frames N] [--sizes 640x480,1280x720]

For each size a synthetic clip (bgsub.synthetic) is written to a temporary
folder, then measured four ways in this process:

* decode only: read every frame with OpenCV;
* mask only: MixtureMasker.apply then Postprocessor.apply on frames already
  in memory (the main loop's work);
* encode only: draw the annotated frames and write them with OpenCV's mp4v
  writer (the writer thread's work);
* end to end: the bgsub command (cli.main) with --no-display --output.

The reader and writer threads let the three stages overlap, so the end-to-end
rate should come close to the slowest stage.  But the stages share the CPU:
the masker alone keeps every core busy, so the pipeline can also never beat
``cores / (CPU seconds per frame of all three stages)`` ("CPU bound",
measured with process CPU time).  The last columns compare the pipeline
with the slowest stage and with that bound.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2

from bgsub import MixtureMasker, Postprocessor
from bgsub.cli import main as bgsub_main
from bgsub.display import annotate
from bgsub.synthetic import SceneSpec, write_video


def best_of(rounds, fn):
    """(wall seconds, process CPU seconds) of the fastest of *rounds* runs."""
    return min(_timed(fn) for _ in range(rounds))


def _timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--sizes", default="640x480,1280x720")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"# {args.frames} frames of a synthetic scene per size, best of {args.rounds} rounds")
    cores = os.cpu_count() or 1
    print(f"# {cores} CPU cores; rates in frames per second")
    print(f"{'size':>10s} {'decode':>8s} {'mask':>8s} {'encode':>8s} {'CPU bound':>10s} "
          f"{'pipeline':>9s} {'of slowest':>11s} {'of bound':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            clip = Path(tmp) / f"clip{w}.mp4"
            write_video(str(clip), SceneSpec(width=w, height=h, frames=args.frames, seed=7))
            frames = []
            cap = cv2.VideoCapture(str(clip))
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                frames.append(frame)
            n = len(frames)

            def decode():
                c = cv2.VideoCapture(str(clip))
                while c.read()[0]:
                    pass

            masker, post = MixtureMasker(), Postprocessor()
            masks = []

            def mask():
                masker.reset()
                masks.clear()
                for f in frames:
                    m = masker.apply(f)
                    masks.append(post.apply(m, out=m))

            def encode():
                out = cv2.VideoWriter(str(Path(tmp) / "enc.mp4"),
                                      cv2.VideoWriter_fourcc(*"mp4v"), 25, (w, h))
                for f, m in zip(frames, masks):
                    out.write(annotate(f, m))
                out.release()

            def pipeline():
                code = bgsub_main([str(clip), "--no-display", "--quiet", "--output",
                                   str(Path(tmp) / "out.mp4")])
                assert code == 0

            mask()  # compile / load the kernels, and fill `masks` for encode
            runs = {name: best_of(args.rounds, fn) for name, fn in
                    (("decode", decode), ("mask", mask), ("encode", encode),
                     ("pipeline", pipeline))}
            rates = {name: n / wall for name, (wall, _) in runs.items()}
            cpu = sum(runs[name][1] for name in ("decode", "mask", "encode")) / n
            bound = cores / cpu
            slowest = min(rates["decode"], rates["mask"], rates["encode"])
            print(f"{size:>10s} {rates['decode']:8.1f} {rates['mask']:8.1f} "
                  f"{rates['encode']:8.1f} {bound:10.1f} {rates['pipeline']:9.1f} "
                  f"{rates['pipeline'] / slowest:11.0%} "
                  f"{rates['pipeline'] / min(slowest, bound):9.0%}", flush=True)


if __name__ == "__main__":
    main()
