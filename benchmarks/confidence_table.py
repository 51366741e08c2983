"""How well a motion event's confidence says whether it is real: events bucketed by it.

Each shared CDnet sequence (``/work/shared/data/*``) is scanned over its
temporal ROI (``--frames`` frames at most, after ``--learn`` frames the model
learns from first), its ROI.bmp the watched region, with the default
``[scan]`` and the scan's own scorer and probability probe (what
:func:`bgsub.scan.scanner.scan_file` does, on the image files instead of a
video: no encoding in between).  The sequences are busy (a road, a bus
station: one long event each), so most of the time their moving objects are
painted out with the scene's background plate (the median of frames
spread over the sequence), wherever the ground truth marks motion, shadow or
unknown: what remains is the real scene, its noise, light and waving trees,
without its objects.  The timeline is cut into slots of ``--slot`` frames
(longer than the rolls, so that each slot's event is its own); in every other
slot the real frames come back for 3 to 40 frames (real objects, coming and
going), and in the others a disturbance the ground truth knows nothing of
is drawn in at a random place: a flash (a rectangle, a tenth to a quarter
of the frame each way, brightened for 2 to 8 frames), flicker (brightened and
darkened in turn for 6 to 20 frames), noise (Gaussian, 3 to 8 frames) or a
speck (a solid square of 12 to 24 pixels, 3 to 10 frames).

An event is **real** when, in some frame from its first to its last frame of
motion where the real frame was shown, at least ``--overlap`` ground-truth
motion pixels (255) of the ROI lie in its box.  Events are bucketed by
confidence; per bucket, the events, the real ones and their share.
Calibration means that share is about the bucket's confidence.

Prints a Markdown table; ``--write-docs`` puts it into docs/scan.md
(``confidence``); ``--dump FILE.json`` writes every event's measurements::

    python benchmarks/confidence_table.py --write-docs

``--cost`` measures instead what the confidence adds to a frame with motion:
highway at 640 x 360 (the scan's size for 1080p), the frame step (masker and
post-processing, the defaults) against the probability probe on the same
frames' foreground, each at its best of 5 rounds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bgsub.config import Config  # noqa: E402
from bgsub.model.step import FrameStep  # noqa: E402
from bgsub.scan.scanner import scorer_for  # noqa: E402

DATA = Path("/work/shared/data")
KINDS = ("flash", "flicker", "noise", "speck")
EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclasses.dataclass
class Disturbance:
    kind: str
    start: int
    frames: int
    box: tuple[int, int, int, int]  # x, y, w, h
    level: float
    colour: tuple[int, int, int] = (0, 0, 0)


def plan(rng: np.random.Generator, slots: int, slot: int, first: int, roi: np.ndarray
         ) -> tuple[list[tuple[int, int]], list[Disturbance]]:
    """Per slot from frame *first*: a window of real frames (even slots) or a disturbance."""
    h, w = roi.shape
    ys, xs = np.nonzero(roi)
    windows, disturbances = [], []
    for n in range(slots):
        start = first + n * slot + int(rng.integers(0, slot // 4))
        if n % 2 == 0:
            windows.append((start, int(rng.integers(3, 41))))
            continue
        kind = KINDS[(n // 2) % len(KINDS)]
        length = {"flash": (2, 8), "flicker": (6, 20), "noise": (3, 8), "speck": (3, 10)}[kind]
        if kind == "speck":
            bw = bh = int(rng.integers(12, 25))
        else:
            bw, bh = int(w * rng.uniform(0.1, 0.25)), int(h * rng.uniform(0.1, 0.25))
        k = int(rng.integers(0, len(xs)))
        x = int(np.clip(xs[k] - bw // 2, 0, w - bw))
        y = int(np.clip(ys[k] - bh // 2, 0, h - bh))
        disturbances.append(Disturbance(kind, start, int(rng.integers(*length, endpoint=True)),
                                        (x, y, bw, bh), float(rng.uniform(35, 80)),
                                        tuple(int(c) for c in rng.integers(0, 256, 3))))
    return windows, disturbances


def disturbed(frame: np.ndarray, index: int, disturbances: list[Disturbance],
              rng: np.random.Generator) -> np.ndarray:
    """*frame* (frame *index*) with the disturbances under way drawn in."""
    for d in disturbances:
        k = index - d.start
        if not 0 <= k < d.frames:
            continue
        x, y, bw, bh = d.box
        part = frame[y:y + bh, x:x + bw].astype(np.float32)
        if d.kind == "flash":
            part += d.level
        elif d.kind == "flicker":
            part += d.level if k % 2 == 0 else -d.level
        elif d.kind == "noise":
            part += rng.normal(0, d.level / 2, part.shape).astype(np.float32)
        else:
            part[:] = d.colour
        frame = frame.copy()
        frame[y:y + bh, x:x + bw] = np.clip(np.rint(part), 0, 255).astype(np.uint8)
    return frame


_PAINT = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))


def scan_sequence(seq: Path, learn: int, frames: int, slot: int, overlap: int,
                  seed: int) -> list[dict]:
    """The events of one sequence, each with its confidence and whether it is real."""
    roi_start, roi_end = map(int, (seq / "temporalROI.txt").read_text().split()[:2])
    names = sorted((seq / "input").iterdir())[roi_start - 1:roi_end]  # in000001: frame 1
    truths = sorted((seq / "groundtruth").iterdir())[roi_start - 1:roi_end]
    count = min(len(names), learn + frames)
    roi = cv2.imread(str(seq / "ROI.bmp"), cv2.IMREAD_GRAYSCALE) > 0
    plate = np.median(np.stack([cv2.imread(str(names[i]), cv2.IMREAD_COLOR) for i in
                                np.linspace(0, len(names) - 1, 60).astype(int)]),
                      axis=0).astype(np.uint8)
    config = Config()
    scan = dataclasses.replace(config.scan, region_mask=str(seq / "ROI.bmp"))
    rng = np.random.default_rng(seed)
    windows, disturbances = plan(rng, (count - learn) // slot, slot, learn, roi)
    shown = np.zeros(count, bool)
    for start, length in windows:
        shown[start:start + length] = True
    step = FrameStep(config.model, config.postprocess, keep_raw=scan.flicker > 0, fps=25.0)
    h, w = roi.shape
    scorer = scorer_for(seq.name, scan, 25.0, (w, h), first=learn,
                        probe=step.masker.foreground_probability_at)
    motion: dict[int, np.ndarray] = {}  # the ground truth's motion, where shown
    for i in range(count):
        frame = cv2.imread(str(names[i]), cv2.IMREAD_COLOR)
        gt = cv2.imread(str(truths[i]), cv2.IMREAD_GRAYSCALE)
        if shown[i]:
            motion[i] = (gt == 255) & roi
        else:  # the objects painted out
            objects = cv2.dilate(((gt == 50) | (gt >= 170)).astype(np.uint8), _PAINT) > 0
            frame[objects] = plate[objects]
        scorer.write(step(i, disturbed(frame, i, disturbances, rng)))
    scorer.finish(count - 1)
    out = []
    for e in scorer.events:
        x, y, bw, bh = e.box
        real = any(np.count_nonzero(motion[f][y:y + bh, x:x + bw]) >= overlap
                   for f in range(e.motion_start_frame, e.motion_end_frame + 1) if f in motion)
        made = [d.kind for d in disturbances
                if d.start <= e.motion_end_frame and d.start + d.frames - 1 >= e.motion_start_frame]
        out.append({"sequence": seq.name, "event": e.number, "start": e.motion_start_frame,
                    "end": e.motion_end_frame, "motion_frames": e.motion_frames,
                    "probability": round(e.probability, 4), "confidence": round(e.confidence, 4),
                    "real": real, "disturbances": made,
                    "min_length": scorer.detector.rules.min_length,
                    "shown": int(shown[e.motion_start_frame:e.motion_end_frame + 1].sum())})
    return out


def cost(data: Path, frames: int = 100, rounds: int = 5) -> str:
    """The probe's time per frame with motion next to the frame step's, at 640x360."""
    names = sorted((data / "highway" / "input").iterdir())[500:500 + 2 * frames]
    images = [cv2.resize(cv2.imread(str(n), cv2.IMREAD_COLOR), (640, 360),
                         interpolation=cv2.INTER_LINEAR) for n in names]
    config = Config()
    step = FrameStep(config.model, config.postprocess, keep_raw=True, fps=25.0)
    scorer = scorer_for("highway", config.scan, 25.0, (640, 360),
                        probe=step.masker.foreground_probability_at)
    for i, f in enumerate(images[:frames]):  # learn, and compile
        scorer.write(step(i, f))
    best = {"step": math.inf, "probe": math.inf}
    moving_pixels = []
    for r in range(rounds):
        spent = {"step": 0.0, "probe": 0.0}
        for i, f in enumerate(images[frames:]):
            t = time.perf_counter()
            result = step(frames + i, f)
            spent["step"] += time.perf_counter() - t
            score, moving = scorer.score(result.mask)
            t = time.perf_counter()
            scorer.probability(moving)
            spent["probe"] += time.perf_counter() - t
            moving_pixels.append(score.fraction * moving.size)
        for key in best:
            best[key] = min(best[key], spent[key] / frames)
    return (f"640x360 BGR (highway, {np.mean(moving_pixels):.0f} moving pixels a frame on "
            f"average): frame step {1e3 * best['step']:.3f} ms/frame, probability probe "
            f"{1e3 * best['probe']:.3f} ms/frame with motion "
            f"({100 * best['probe'] / best['step']:.1f}% of the step)")


def table(events: list[dict]) -> str:
    lines = ["| confidence | events | real | share real |", "|---|---:|---:|---:|"]
    for lo, hi in zip(EDGES[:-1], EDGES[1:]):
        inside = [e for e in events if lo <= e["confidence"] < hi or hi == 1.0 and
                  e["confidence"] == 1.0]
        real = sum(e["real"] for e in inside)
        share = f"{100 * real / len(inside):.0f}%" if inside else "-"
        lines.append(f"| {lo:.1f} - {hi:.1f} | {len(inside)} | {real} | {share} |")
    real = sum(e["real"] for e in events)
    lines.append(f"| all | {len(events)} | {real} | "
                 f"{100 * real / max(1, len(events)):.0f}% |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--learn", type=int, default=100, help="frames learned before the ROI")
    ap.add_argument("--frames", type=int, default=1300,
                    help="frames scanned per sequence and pass, at most")
    ap.add_argument("--slot", type=int, default=140,
                    help="frames per slot: a real window or a disturbance")
    ap.add_argument("--overlap", type=int, default=20,
                    help="ground-truth motion pixels in the box that make an event real")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--passes", type=int, default=3,
                    help="scans per sequence, each with its own windows and disturbances")
    ap.add_argument("--dump", type=Path, help="write every event's measurements (JSON)")
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--cost", action="store_true", help="measure the cost instead")
    args = ap.parse_args(argv)
    if args.cost:
        print(cost(args.data))
        return 0
    seqs = sorted(p for p in args.data.iterdir() if (p / "groundtruth").is_dir())
    if not seqs:
        print(f"confidence_table: no sequences under {args.data}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    events = []
    for k in range(args.passes):
        for n, seq in enumerate(seqs):
            found = scan_sequence(seq, args.learn, args.frames, args.slot, args.overlap,
                                  args.seed * 1000 + k * 100 + n)
            events += found
            print(f"{seq.name}, pass {k + 1}: {len(found)} events, "
                  f"{sum(e['real'] for e in found)} real, {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)
    events = [e for e in events if math.isfinite(e["confidence"])]
    text = table(events)
    print(text)
    if args.dump:
        args.dump.write_text(json.dumps(events, indent=1) + "\n")
    if args.write_docs:
        from doctables import write_table
        write_table("scan.md", "confidence", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
