"""What shadow detection costs per frame, against the rest of ``apply``.

    python benchmarks/shadow_cost.py [--source highway|sample] [--seq DIR] [--start I]
                                     [--frames N] [--rounds R] [--size WxH] [--threads T]

Frames resized to the size (default 1920x1080 BGR) from one of two sources: a
CDnet sequence (default ../shared/data/highway) from frame I on (default
1370: its 40 frames hold 6% moving pixels, about highway's mean), cars on a
grey road where the colour test rarely gets past the grey-background check;
or the bundled synthetic sample's scene from frame 101 on, a coloured
background where it does.  A masker with shadows off learns the 100 frames
before them.  Then after each ``apply`` (timed: the fused classify-and-learn
kernel and the log-likelihood) ``bgsub.shadows.mark_shadows`` runs on a copy
of its mask and its post-update state (timed apart).  Every round is the same
frames from the same warmed model; each frame's best round counts, which
filters out the noise of a shared machine.  Also timed: the kernel on an
empty mask (the scan alone) and on an all-foreground one (its worst case).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numba
import numpy as np

from bgsub import MixtureMasker, shadows
from bgsub.config import ModelConfig
from bgsub.evaluation import load_cdnet_sequence
from bgsub.synthetic import SAMPLE, render

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
    warm_up, frames = frames[:100], frames[100:]
    cfg = ModelConfig()
    params = (np.float32(cfg.background_ratio), np.float32(cfg.match_threshold ** 2),
              np.float32(cfg.shadow_ratio_min), np.float32(cfg.shadow_threshold ** 2),
              np.uint8(cfg.shadow_value))
    warm = MixtureMasker(shadows=False)
    for f in warm_up:  # a settled model, as in the middle of a stream
        warm.apply(f)
    state = {name: getattr(warm, name) for name in ("_w", "_mu", "_var")}
    saved = {name: a.copy() for name, a in state.items()}
    t_saved = warm._t
    t_apply = np.full(len(frames), np.inf)  # per frame, the best of the rounds
    t_shadow = np.full(len(frames), np.inf)
    foreground = shadowed = 0
    out = np.empty((h, w), np.uint8)
    scratch = shadows.allocate_scratch(warm._scratch.shape[0])
    copy = np.zeros(h * w, np.uint8)
    shadows.mark_shadows(frames[0].reshape(-1), *state.values(), copy, scratch, *params)  # compile
    for _ in range(args.rounds):
        for name, a in state.items():
            a[:] = saved[name]
        warm._t = t_saved
        foreground = shadowed = 0
        for index, f in enumerate(frames):
            t0 = time.perf_counter()
            warm.apply(f, out=out)
            t1 = time.perf_counter()
            copy[:] = out.reshape(-1)
            t2 = time.perf_counter()
            shadows.mark_shadows(f.reshape(-1), *state.values(), copy, scratch, *params)
            t3 = time.perf_counter()
            t_apply[index] = min(t_apply[index], t1 - t0)
            t_shadow[index] = min(t_shadow[index], t3 - t2)
            foreground += int(np.count_nonzero(out == 255))
            shadowed += int(np.count_nonzero(copy == cfg.shadow_value))
    best_apply, best_shadow = t_apply.mean(), t_shadow.mean()
    fixed = np.empty(h * w, np.uint8)
    best = {}
    for fill in (0, 255):  # the scan alone, and every pixel examined
        best[fill] = np.inf
        for _ in range(args.rounds):
            fixed[:] = fill
            t0 = time.perf_counter()
            shadows.mark_shadows(frames[-1].reshape(-1), *state.values(), fixed, scratch,
                                 *params)
            best[fill] = min(best[fill], time.perf_counter() - t0)
    n = len(frames) * h * w
    print(f"# {what} (the first 100 learned), {w}x{h} BGR, k={cfg.k}, numba threads "
          f"{numba.get_num_threads()}; each frame's best of {args.rounds} rounds")
    print(f"foreground {100 * foreground / n:.2f}% of pixels, of which shadows "
          f"{100 * shadowed / max(foreground, 1):.2f}%")
    print(f"apply (shadows off)   {1000 * best_apply:8.3f} ms/frame")
    print(f"mark_shadows          {1000 * best_shadow:8.3f} ms/frame "
          f"({100 * best_shadow / best_apply:.1f}% of apply)")
    print(f"mark_shadows, no fg   {1000 * best[0]:8.3f} ms/frame (the scan alone)")
    print(f"mark_shadows, all fg  {1000 * best[255]:8.3f} ms/frame (worst case)")


if __name__ == "__main__":
    main()
