"""End-to-end rate of ``bgsub VIDEO --no-display --output out.mp4`` against its stages.

    python benchmarks/bench_pipeline.py [--frames N] [--sizes 640x480,1280x720]

For each size a synthetic clip (bgsub.eval.synthetic) is written to a temporary
folder, then measured four ways in this process, each stage run as the
command runs it (OpenCV's thread pool off, the masker with the command's
thread count, ``pipeline.masker_threads``):

* decode only: read every frame with OpenCV;
* mask only: the frame step (bgsub.model.step.FrameStep: the masker, then the
  post-processing) on frames already in memory (the main loop's work);
* encode only: the --output sink (bgsub.io.sinks.AnnotatedVideoSink: draw the
  annotated frames and write them with OpenCV's mp4v writer) on those
  results (the writer thread's work);
* end to end: the bgsub command (cli.main) with --no-display --output.

The reader and writer threads let the three stages overlap, so the end-to-end
rate should come close to the slowest stage.  But the stages share the CPU,
so the pipeline can also never beat ``cores / (CPU seconds per frame of all
three stages)`` ("CPU bound", measured with process CPU time).  The last
columns compare the pipeline with the slowest stage and with that bound, and
give the share of the cores the pipeline kept busy ("busy"): where that is
near 100%, only less CPU per frame makes the pipeline faster.

The rounds take turns, and each row comes twice: "median" takes every
column (ratios included) per round, from runs a few seconds apart, then the
median over the rounds; "best" takes each stage's fastest round.  On a
shared machine whose speed drifts by a third within minutes, the best rounds
of different stages may come from different spells, so "best" compares
unlike with unlike; "median" is the figure to quote.

"mask, all" is the masker with every core, as a library caller gets it by
default: what the mask stage would do with the machine to itself.  Where the
command gives the masker fewer threads (auto: every CPU but one when it
writes outputs), that rate is not the stage's rate in the pipeline, and no
overlap can reach it: the bound is the limit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from bgsub.cli import main as bgsub_main
from bgsub.config import resolve_config
from bgsub.io.display import drawer
from bgsub.io.pipeline import masker_threads
from bgsub.io.sinks import AnnotatedVideoSink
from bgsub.model.step import FrameStep
from bgsub.eval.synthetic import SceneSpec, write_video


def rounds_of(rounds, fns):
    """{name: [(wall seconds, process CPU seconds) of each round]}.

    The rounds take turns (every function once, then again), so that each
    round's figures are taken close together in time.
    """
    runs = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            runs[name].append(_timed(fn))
    return runs


def figures(runs, n, cores):
    """The table's columns from one set of (wall, CPU) seconds per stage."""
    rates = {name: n / wall for name, (wall, _) in runs.items()}
    bound = cores * n / sum(runs[name][1] for name in ("decode", "mask", "encode"))
    slowest = min(rates["decode"], rates["mask"], rates["encode"])
    wall, cpu = runs["pipeline"]
    return [rates["decode"], rates["mask"], rates["encode"], rates["mask, all"], bound,
            rates["pipeline"], rates["pipeline"] / slowest,
            rates["pipeline"] / min(slowest, bound), cpu / wall / cores]


def _timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--sizes", default="640x480,1280x720")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    # the CPUs this process may use, and the configuration the command will
    # read (./config.toml when present), so that stages and pipeline agree
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    config = resolve_config()
    threads = masker_threads(config.pipeline.masker_threads, writes=True)
    print(f"# {args.frames} frames of a synthetic scene per size, {args.rounds} rounds: the "
          "median of each round's figures, and the figures of each stage's best round")
    print(f"# {cores} CPU cores; the command's masker uses {threads} thread(s) when it writes "
          "a video; rates in frames per second")
    print(f"{'size':>10s} {'':>6s} {'decode':>8s} {'mask':>8s} {'encode':>8s} {'mask, all':>10s} "
          f"{'CPU bound':>10s} {'pipeline':>9s} {'of slowest':>11s} {'of bound':>9s} {'busy':>5s}")
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

            def mask_with(step):
                def run():
                    step.reset()
                    for i, f in enumerate(frames):
                        step(i, f)  # not kept: the pipeline frees each result
                return run

            # the results the writer thread gets, computed once
            step = FrameStep.from_config(config, threads=threads)
            results = [step(i, f) for i, f in enumerate(frames)]
            draw = drawer(config.display)

            def encode():
                sink = AnnotatedVideoSink(Path(tmp) / "enc.mp4", 25.0, "--output", draw)
                for result in results:
                    result.annotated = None  # drawn again every round, as the writer does
                    sink.write(result)
                sink.close()

            def pipeline():
                code = bgsub_main([str(clip), "--no-display", "--quiet", "--output",
                                   str(Path(tmp) / "out.mp4")])
                assert code == 0

            mask_with(FrameStep.from_config(config))()  # compile / load the kernels
            pipeline()
            opencv_threads = cv2.getNumThreads()
            cv2.setNumThreads(1)  # as the command runs its stages
            try:
                runs = rounds_of(args.rounds, {
                    "decode": decode, "mask": mask_with(step), "encode": encode,
                    "mask, all": mask_with(FrameStep.from_config(config)),
                    "pipeline": pipeline})
            finally:
                cv2.setNumThreads(opencv_threads)
            # each round's own figures, then their median: the ratios of one round
            # compare runs a few seconds apart
            per_round = [figures({name: times[r] for name, times in runs.items()}, n, cores)
                         for r in range(args.rounds)]
            median = [statistics.median(column) for column in zip(*per_round)]
            best = figures({name: min(times) for name, times in runs.items()}, n, cores)
            for label, row in (("median", median), ("best", best)):
                print(f"{size:>10s} {label:>6s} " + " ".join(
                    f"{v:{width}.1f}" for v, width in zip(row[:6], (8, 8, 8, 10, 10, 9)))
                    + f" {row[6]:11.0%} {row[7]:9.0%} {row[8]:5.0%}", flush=True)

if __name__ == "__main__":
    main()
