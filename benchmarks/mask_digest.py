"""Digests of the shipped defaults' masks on the shared CDnet sequences: a bit-exactness check.

    python benchmarks/mask_digest.py [FRAMES_PER_SEQUENCE]

prints, per sequence in ``../shared/data`` (or ``$BGSUB_DATA``), the frames
read and the SHA-256 (first 16 hex digits) of the post-processed masks and of
the raw masks, and the sum of the per-frame log-likelihoods, from
``FrameStep.from_config(load_config("config.toml"))`` with two threads at
25 fps.  Run it from two checkouts (``PYTHONPATH=CHECKOUT``) to show that a
change leaves every mask as it was, bit for bit.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from bgsub import FrameStep, load_config

DATA = Path(os.environ.get("BGSUB_DATA",
                           Path(__file__).resolve().parents[1].parent / "shared" / "data"))
SEQUENCES = ("highway", "pedestrians", "office", "busStation", "fall")


def main(argv: list[str]) -> int:
    limit = int(argv[0]) if argv else None
    config = load_config(Path(__file__).resolve().parents[1] / "config.toml")
    for name in SEQUENCES:
        files = sorted((DATA / name / "input").glob("*.jpg"))[:limit]
        if not files:
            print(f"{name}: no frames under {DATA / name / 'input'}", file=sys.stderr)
            continue
        step = FrameStep.from_config(config, keep_raw=True, threads=2, fps=25.0)
        masks, raw, total = hashlib.sha256(), hashlib.sha256(), 0.0
        for index, path in enumerate(files):
            result = step(index, cv2.imread(str(path)))
            masks.update(result.mask.tobytes())
            raw.update(result.raw_mask.tobytes())
            total += 0.0 if np.isnan(result.log_likelihood) else result.log_likelihood
        print(f"{name} {len(files)} {masks.hexdigest()[:16]} {raw.hexdigest()[:16]} "
              f"{total:.9f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
