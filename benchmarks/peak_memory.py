"""Peak memory of a process that masks 1920x1080 BGR frames with the defaults.

    python benchmarks/peak_memory.py [--frames N] [--size 1920x1080]

Reports the process's peak resident set size (``ru_maxrss``) after importing
bgsub, after the first frame (model allocated, kernels loaded) and after N
frames, next to the model's own state bytes and one frame's bytes.  Frames are
synthetic (noise over a gradient with a moving block), made before the
measurement starts; Numba's compiled kernels come from its cache when warm.
"""

from __future__ import annotations

import argparse
import resource

import numpy as np


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", default="1920x1080")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    base = np.broadcast_to(np.linspace(0, 200, w).astype(np.uint8)[None, :, None], (h, w, 3))
    frames = []
    for t in range(4):  # built in uint8, so that making them sets no high-water mark
        f = base + rng.integers(0, 6, (h, w, 3), dtype=np.uint8)
        f[100:300, 40 * t:40 * t + 200] = (0, 0, 255)
        frames.append(f)
    before = peak_mib()
    from bgsub import MixtureMasker
    imported = peak_mib()
    masker = MixtureMasker()
    out = np.empty((h, w), np.uint8)
    masker.apply(frames[0], out=out)
    first = peak_mib()
    for i in range(args.frames):
        masker.apply(frames[i % len(frames)], out=out)
    print(f"# {args.size} BGR, bgsub defaults (k={masker.config.k}), {args.frames} frames")
    print(f"peak RSS before import:   {before:8.1f} MiB (Python, numpy, 4 test frames)")
    print(f"peak RSS after import:    {imported:8.1f} MiB")
    print(f"peak RSS after 1 frame:   {first:8.1f} MiB")
    print(f"peak RSS after {args.frames} frames: {peak_mib():8.1f} MiB")
    print(f"model state:              {masker.state_nbytes / 2**20:8.1f} MiB; "
          f"one frame {frames[0].nbytes / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
