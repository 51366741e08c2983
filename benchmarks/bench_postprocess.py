"""Cost of the post-processing per frame, beside the masker's, at four frame sizes.

    python benchmarks/bench_postprocess.py [SEQ_DIR] [--set postprocess.key=value ...]

Masks come from the model run over highway's first 300 frames (SEQ_DIR defaults
to ../shared/data/highway), resized to each size; each figure is the best of 5
rounds of 20 frames, so it is the cost on this machine with the least
interference from other load.  Prints milliseconds per frame.
"""

from __future__ import annotations

import argparse
import os
import timeit
from pathlib import Path

import cv2
import numpy as np

from bgsub import Config, MixtureMasker, Postprocessor
from bgsub.config import apply_overrides
from bgsub.eval.cdnet import load_cdnet_sequence

SIZES = [(320, 240), (640, 480), (1280, 720), (1920, 1080)]
DEFAULT_SEQ = Path(os.environ.get(
    "BGSUB_HIGHWAY", Path(__file__).resolve().parents[1].parent / "shared" / "data" / "highway"))


def best_ms(fn, number=20, repeat=5):
    return 1e3 * min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seq", nargs="?", default=str(DEFAULT_SEQ))
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = ap.parse_args(argv)
    config = apply_overrides(Config(), args.set) if args.set else Config()
    seq = load_cdnet_sequence(args.seq)
    frames = [seq.read_frame(i) for i in range(1, min(300, len(seq.inputs)) + 1)]
    masker = MixtureMasker(config.model)
    for frame in frames:
        mask = masker.apply(frame)
    print(f"{'size':>10} {'masker BGR ms':>14} {'post ms':>8} {'post/masker':>12}")
    for w, h in SIZES:
        big = cv2.resize(frames[-1], (w, h))
        big_mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
        model = MixtureMasker(config.model)
        for _ in range(3):
            model.apply(big)
        post = Postprocessor(config.postprocess)
        out = np.empty_like(big_mask)
        post.apply(big_mask, out=out)  # compile and allocate outside the timing
        t_mask = best_ms(lambda m=model, f=big: m.apply(f), number=5)
        t_post = best_ms(lambda p=post, m=big_mask, o=out: p.apply(m, out=o))
        print(f"{w:>5}x{h:<4} {t_mask:14.2f} {t_post:8.2f} {t_post / t_mask:12.2f}")


if __name__ == "__main__":
    main()
