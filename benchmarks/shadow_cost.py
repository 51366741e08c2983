"""What shadow detection costs per frame, against the rest of ``apply``.

    python benchmarks/shadow_cost.py [--source highway|sample] [--seq DIR] [--start I]
                                     [--frames N] [--rounds R] [--size WxH] [--threads T]

Frames resized to the size (default 1920x1080 BGR) from one of two sources: a
CDnet sequence (default ../shared/data/highway) from frame I on (default
1370: its 40 frames hold 6% moving pixels, about highway's mean), cars on a
grey road where the colour test rarely gets past the grey-background check;
or the bundled synthetic sample's scene from frame 101 on, a coloured
background where it does.  Two maskers, shadows on and off, learn the 100
frames before them; then both ``apply`` the timed frames, alternately, for R
rounds, and each one's best round counts (the noise of a shared machine).
Shadows are tested inside the frame kernel, tile by tile, so the difference
between the two rates is their whole cost.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numba
import numpy as np

from bgsub import MixtureMasker
from bgsub.eval.cdnet import load_cdnet_sequence
from bgsub.eval.synthetic import SAMPLE, render

DEFAULT_SEQ = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "highway"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=("highway", "sample"), default="highway")
    ap.add_argument("--seq", type=Path, default=DEFAULT_SEQ)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--start", type=int, default=1370, help="highway: first timed frame (1-based)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--threads", type=int, default=0, help="numba threads (0: numba's default)")
    args = ap.parse_args(argv)
    if args.threads:
        numba.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    if args.source == "highway":
        seq = load_cdnet_sequence(args.seq)
        first = max(0, args.start - 101)
        source = (cv2.imread(str(p)) for p in seq.inputs[first:])
        what = f"{seq.root.resolve().name} frames {first + 1}..{first + 100 + args.frames}"
    else:
        source = (frame for frame, _ in render(SAMPLE))
        what = f"the synthetic sample's frames 1..{100 + args.frames}"
    frames = [cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR)
              for _, f in zip(range(100 + args.frames), source)]
    maskers = {"on": MixtureMasker(shadows=True), "off": MixtureMasker(shadows=False)}
    for masker in maskers.values():
        for f in frames[:100]:
            masker.apply(f)
    timed = frames[100:]
    best = {name: float("inf") for name in maskers}
    marked = 0
    for _ in range(args.rounds):
        for name, masker in maskers.items():
            copy = MixtureMasker(masker.config)
            copy.__dict__.update({k: (v.copy() if isinstance(v, np.ndarray) else v)
                                  for k, v in masker.__dict__.items()})
            t0 = time.perf_counter()
            for f in timed:
                mask = copy.apply(f)
                if name == "on":
                    marked += int(np.count_nonzero(mask == copy.config.shadow_value))
            best[name] = min(best[name], (time.perf_counter() - t0) / len(timed))
    print(f"# {what}, {w}x{h} BGR, {args.rounds} rounds, numba threads "
          f"{numba.get_num_threads()}")
    print(f"apply, shadows on   {1000 * best['on']:8.3f} ms/frame")
    print(f"apply, shadows off  {1000 * best['off']:8.3f} ms/frame")
    print(f"shadows cost        {1000 * (best['on'] - best['off']):8.3f} ms/frame "
          f"({100 * (best['on'] / best['off'] - 1):.1f}%); "
          f"{marked / args.rounds / len(timed) / (w * h):.2%} of pixels marked")


if __name__ == "__main__":
    main()
