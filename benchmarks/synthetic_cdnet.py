"""Write synthetic scenes as CDnet 2014 sequence folders, for checks beyond highway.

    python benchmarks/synthetic_cdnet.py OUT_DIR

Writes four sequences under OUT_DIR (input/inNNNNNN.jpg, groundtruth/gtNNNNNN.png,
temporalROI.txt; the first 30 frames are learning, not scored), each stressing
what a setting tuned on highway alone might get wrong:

* ``sample``: the bundled sample's scene (320x240, a waving region, a stopped
  object), JPEG quality 90;
* ``small``: 160x120, sensor noise 7, JPEG quality 40 (small, low-quality
  frames: objects of a few hundred pixels, blocky noise);
* ``jitter``: 320x240, the camera shakes by up to 2 pixels each frame (the
  ground truth moves with it);
* ``water``: 320x240, the lower half ripples (travelling waves of +-30 grey
  levels plus flicker), objects pass over it.

Then ``bgsub eval OUT_DIR/*`` or ``python benchmarks/tune.py OUT_DIR/* ...``.
The scenes come from :mod:`bgsub.eval.synthetic` with fixed seeds: the same files
every time.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from bgsub.eval.synthetic import SAMPLE, SceneSpec, render

LEARNING = 30  # frames not scored at the start


def write_sequence(root: Path, frames, quality: int) -> None:
    """Write (frame, gt) pairs as a CDnet folder; every frame after LEARNING is scored."""
    (root / "input").mkdir(parents=True, exist_ok=True)
    (root / "groundtruth").mkdir(exist_ok=True)
    count = 0
    for i, (frame, gt) in enumerate(frames, start=1):
        cv2.imwrite(str(root / "input" / f"in{i:06d}.jpg"), frame,
                    [cv2.IMWRITE_JPEG_QUALITY, quality])
        cv2.imwrite(str(root / "groundtruth" / f"gt{i:06d}.png"), gt)
        count = i
    (root / "temporalROI.txt").write_text(f"{LEARNING + 1} {count}\n")


def jitter(frames, seed: int, amplitude: int = 2):
    rng = np.random.default_rng(seed)
    for frame, gt in frames:
        dx, dy = rng.integers(-amplitude, amplitude + 1, 2)
        shift = np.float32([[1, 0, dx], [0, 1, dy]])
        size = (frame.shape[1], frame.shape[0])
        yield (cv2.warpAffine(frame, shift, size, borderMode=cv2.BORDER_REPLICATE),
               cv2.warpAffine(gt, shift, size, flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_REPLICATE))


def water(frames, seed: int):
    rng = np.random.default_rng(seed)
    for t, (frame, gt) in enumerate(frames):
        h, w = gt.shape
        y, x = np.mgrid[h // 2:h, 0:w].astype(np.float32)
        ripple = (18 * np.sin(0.35 * x + 0.8 * y - 0.9 * t)
                  + 12 * np.sin(0.21 * x - 0.5 * y + 0.6 * t + 1.0)
                  + rng.normal(0, 4, y.shape))
        lower = frame[h // 2:].astype(np.float32)
        wet = lower * 0.6 + np.array([60, 40, 10], np.float32) + ripple[..., None]
        objects = gt[h // 2:] > 0  # objects pass over the water, hiding it
        lower[~objects] = wet[~objects]
        out = frame.copy()
        out[h // 2:] = np.clip(lower, 0, 255).astype(np.uint8)
        yield out, gt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    write_sequence(args.out / "sample", render(SAMPLE), 90)
    write_sequence(args.out / "small",
                   render(SceneSpec(width=160, height=120, frames=300, noise=7.0, seed=7)), 40)
    write_sequence(args.out / "jitter", jitter(render(SceneSpec(frames=300, seed=11)), 11), 90)
    write_sequence(args.out / "water", water(render(SceneSpec(frames=300, seed=13)), 13), 90)
    print(f"wrote sample, small, jitter, water under {args.out}")


if __name__ == "__main__":
    main()
