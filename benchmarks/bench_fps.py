"""Frames per second of MixtureMasker.apply against OpenCV's MOG2, same frames, same run.

    python benchmarks/bench_fps.py [--seq DIR] [--start N] [--frames N] [--rounds R]
                                   [--sizes 320x240,...] [--write-docs]

Frames are N frames of a CDnet sequence from frame ``--start`` (default: frames
600-659 of ../shared/data/highway, busy ones: cars in every frame), resized to
each size, grey and BGR; the setup line says how many of them have motion in
the ground truth.  Without the sequence, textured synthetic frames with a
moving block stand in (said in the output).  Both subtractors first run over
the frames once (bgsub's compilation and both models' learning are not timed),
then run alternately for R rounds over the same frames; each round gives a
ratio, and the figures are the medians over the rounds (of the ratios, and of
each one's rate).  MOG2 is ``createBackgroundSubtractorMOG2(detectShadows=
False)`` with OpenCV's default thread count.  The ratio is what this benchmark
is for: absolute rates depend on the machine and its load.

Next to the rates: the state traffic (bgsub reads and writes its whole 16-bit
state once per frame, so bytes per second = 2 x state size x fps) against the
machine's copy bandwidth (read + write bytes per second of ``np.copyto``
between two buffers of the state's size, best of several), which bounds it.

At 640x480 BGR it also times the scene detectors (:class:`bgsub.scan.scene.
SceneDetector`, what a scan or a live run with events adds per frame) on the
same frames, alternating with the frame step (masker and post-processing, the
defaults) and the masker alone, and gives their cost as a share of each
(medians over the rounds).

``--write-docs`` puts the results, as a Markdown table under its setup line,
into ``docs/speed.md`` (between its ``table:speed`` markers); only frames of a
real sequence count.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numba
import numpy as np

from bgsub import FrameStep, MixtureMasker

try:  # absent from older checkouts, which this benchmark also runs on (PYTHONPATH=...)
    from bgsub.scan.scene import SceneDetector, SceneRules
except ImportError:
    SceneDetector = SceneRules = None
from doctables import cpu_name, write_table

DEFAULT_SEQ = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "highway"
SIZES = "320x240,640x480,1280x720,1920x1080"


def load_frames(seq: Path, start: int, count: int) -> tuple[list[np.ndarray], str]:
    files = sorted((seq / "input").glob("*.jpg"))[start - 1:start - 1 + count]
    if files:
        truth = [seq / "groundtruth" / f"gt{f.stem[2:]}.png" for f in files]
        moving = sum(1 for t in truth
                     if t.exists() and (cv2.imread(str(t), cv2.IMREAD_GRAYSCALE) == 255).any())
        first, last = int(files[0].stem[2:]), int(files[-1].stem[2:])
        return ([cv2.imread(str(f)) for f in files],
                f"{len(files)} frames of {seq.resolve().name} ({first}-{last}; {moving} with "
                f"motion in the ground truth)")
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (240, 320, 3), np.uint8)
    base = cv2.GaussianBlur(base, (0, 0), 3)
    frames = []
    for t in range(count):
        f = cv2.add(base, rng.integers(0, 6, base.shape, np.uint8))
        cv2.rectangle(f, (10 + 4 * t % 280, 60), (40 + 4 * t % 280, 100), (0, 0, 255), -1)
        frames.append(f)
    return frames, f"{count} synthetic frames (no sequence at {seq})"


def copy_bandwidth(nbytes: int, repeats: int = 10) -> float:
    """Read + write bytes per second of copying an nbytes buffer (best of repeats)."""
    src = np.ones(nbytes, np.uint8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * nbytes / best


def rate(apply, frames) -> float:
    t0 = time.perf_counter()
    for f in frames:
        apply(f)
    return len(frames) / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=Path, default=DEFAULT_SEQ)
    ap.add_argument("--start", type=int, default=600, help="first frame (1-based)")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--sizes", default=SIZES)
    ap.add_argument("--write-docs", action="store_true",
                    help="put the table into docs/speed.md")
    args = ap.parse_args(argv)
    source, what = load_frames(args.seq, args.start, args.frames)
    if args.write_docs and "synthetic" in what:
        ap.error(f"--write-docs needs the sequence's frames: {what}")
    rows = []
    scene = ""
    setup = (f"{what}; median of {args.rounds} alternating rounds; {cpu_name()}, "
             f"{numba.config.NUMBA_NUM_THREADS} CPUs; bgsub {numba.get_num_threads()} threads "
             f"(defaults: k=3, shadows on); OpenCV {cv2.__version__}, "
             f"{cv2.getNumThreads()} threads (MOG2, detectShadows=False)")
    print(f"# {setup}")
    print(f"{'size':>10s} {'mode':>5s} {'bgsub fps':>10s} {'MOG2 fps':>9s} {'ratio':>6s} "
          f"{'state GB/s':>10s} {'copy GB/s':>9s}")
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        bgr = [cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in source]
        for mode in ("grey", "BGR"):
            frames = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in bgr] if mode == "grey" else bgr
            ours = MixtureMasker()
            mog2 = cv2.createBackgroundSubtractorMOG2(detectShadows=False)
            for f in frames:  # warm-up: compile, fill the models
                ours.apply(f)
                mog2.apply(f)
            rates_ours, rates_mog2 = [], []
            for r in range(args.rounds):  # alternating, and which goes first alternates too
                pair = [(ours.apply, rates_ours), (mog2.apply, rates_mog2)]
                for apply, rates in (pair if r % 2 == 0 else pair[::-1]):
                    rates.append(rate(apply, frames))
            ratio = statistics.median(a / b for a, b in zip(rates_ours, rates_mog2))
            fps_ours, fps_mog2 = statistics.median(rates_ours), statistics.median(rates_mog2)
            state_bytes = ours.state_nbytes
            state_gbs = 2 * state_bytes * fps_ours / 1e9
            copy_gbs = copy_bandwidth(state_bytes) / 1e9
            print(f"{size:>10s} {mode:>5s} {fps_ours:10.1f} {fps_mog2:9.1f} "
                  f"{ratio:6.2f} {state_gbs:10.1f} {copy_gbs:9.1f}", flush=True)
            rows.append((size, mode, fps_ours, fps_mog2, ratio, state_gbs, copy_gbs))
            if (size, mode) == ("640x480", "BGR") and SceneDetector is not None:
                scene = scene_cost(ours, frames, args.rounds)
                print(f"# scene detectors at 640x480 BGR: {scene}")
    if args.write_docs:
        table = f"Setup: {setup}.\n\n{markdown_table(rows)}"
        if scene:
            table += f"\n\nScene detectors at 640x480 BGR, same run: {scene}."
        print(f"wrote {write_table('speed.md', 'speed', table)}", file=sys.stderr)


def scene_cost(masker, frames, rounds: int) -> str:
    """The scene detectors' time per frame against the frame step's (masker and
    post-processing, the defaults) and *masker*'s alone.

    The detectors run as a scan or a live run calls them: on each frame right
    after the frame step, each of the two timed on its own; a round of the
    masker alone alternates with those rounds.
    """
    step = FrameStep()
    detector = SceneDetector(SceneRules(fps=25))
    index = 0
    for _ in range(3):  # past the detector's learning; the step's kernels compiled
        for f in frames:
            step(index, f)
            detector.update(index, f)
            index += 1
    times: dict[str, list[float]] = {"step": [], "masker": [], "scene": []}
    for _ in range(rounds):
        stepping = looking = 0.0
        for f in frames:
            t = time.perf_counter()
            step(index, f)
            t_step = time.perf_counter()
            detector.update(index, f)
            t_scene = time.perf_counter()
            stepping += t_step - t
            looking += t_scene - t_step
            index += 1
        times["step"].append(stepping / len(frames))
        times["scene"].append(looking / len(frames))
        t = time.perf_counter()
        for f in frames:
            masker.apply(f)
        times["masker"].append((time.perf_counter() - t) / len(frames))
    share = {k: statistics.median(a / b for a, b in zip(times["scene"], times[k]))
             for k in ("step", "masker")}
    return (f"{1e3 * statistics.median(times['scene']):.3f} ms a frame (a look every "
            f"{detector.every} frames; each frame right after its frame step, as a scan "
            f"runs them), {100 * share['step']:.1f}% of the frame step's "
            f"time (masker and post-processing, "
            f"{1e3 * statistics.median(times['step']):.2f} ms), "
            f"{100 * share['masker']:.1f}% of the masker's alone")


def markdown_table(rows) -> str:
    """The rows as docs/speed.md shows them; the 1920x1080 BGR ratio in bold."""
    lines = ["| size | mode | bgsub fps | MOG2 fps | ratio | state GB/s | copy GB/s |",
             "|---|---|---|---|---|---|---|"]
    for size, mode, ours, mog2, ratio, state, copy in rows:
        ratio = f"{ratio:.2f}"
        if (size, mode) == ("1920x1080", "BGR"):
            ratio = f"**{ratio}**"
        lines.append(f"| {size} | {mode} | {ours:.1f} | {mog2:.1f} | {ratio} | {state:.1f} "
                     f"| {copy:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
