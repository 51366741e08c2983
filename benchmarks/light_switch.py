"""Recovery from a sudden illumination change: bgsub against OpenCV's MOG2.

    python benchmarks/light_switch.py

A static synthetic scene (texture and sensor noise, 320x240) is learned for
150 frames, then the lights go on: every pixel's brightness jumps by 40%.
Recovery time is the number of frames after the switch until the foreground
fraction is back under 1%.  Rows: bgsub with its defaults (which raise the
learning rate when the log-likelihood drops), bgsub with that turned off, and
MOG2 with its defaults.
"""

from __future__ import annotations

import cv2
import numpy as np

from bgsub import MixtureMasker

BEFORE, AFTER, GAIN = 150, 400, 1.4


def clip(seed: int = 0):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 170, (31, 41, 3)).astype(np.uint8)
    base = cv2.resize(coarse, (320, 240), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    for t in range(BEFORE + AFTER):
        scene = base * (GAIN if t >= BEFORE else 1.0)
        noisy = scene + rng.normal(0, 3, scene.shape)
        yield np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def recovery_frames(subtractor) -> int | None:
    """Frames after the switch until under 1% foreground; None if never."""
    for t, frame in enumerate(clip()):
        mask = subtractor.apply(frame)
        if t >= BEFORE and np.count_nonzero(mask == 255) / mask.size < 0.01:
            return t - BEFORE
    return None


def main():
    rows = [("bgsub (defaults)", MixtureMasker()),
            ("bgsub (recovery_drop = 0)", MixtureMasker(recovery_drop=0.0)),
            ("OpenCV MOG2 (defaults)", cv2.createBackgroundSubtractorMOG2())]
    print(f"# lights on at frame {BEFORE}: brightness x{GAIN}; frames until < 1% foreground")
    for name, sub in rows:
        n = recovery_frames(sub)
        print(f"{name:28s} {n if n is not None else f'> {AFTER}'}")


if __name__ == "__main__":
    main()
