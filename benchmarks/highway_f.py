"""F-measure of raw masks (no post-processing) on a CDnet sequence, bgsub vs OpenCV.

    python benchmarks/highway_f.py [SEQ_DIR] [--set key=value ...]

SEQ_DIR defaults to ../shared/data/highway.  Scores with the CDnet rules (see
bgsub.evaluation); every input frame is processed, frames in temporalROI.txt
are scored.  Prints one row per subtractor.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2

from bgsub import MixtureMasker
from bgsub.evaluation import Confusion, confusion, load_cdnet_sequence

DEFAULT_SEQ = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "highway"


def score(seq, make, grey=False):
    """Run a fresh subtractor over every frame; return (Confusion, seconds in apply)."""
    sub = make()
    total = Confusion()
    spent = 0.0
    for index, path in enumerate(seq.inputs, start=1):
        frame = cv2.imread(str(path))
        if grey:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        t0 = time.perf_counter()
        mask = sub.apply(frame)
        spent += time.perf_counter() - t0
        if seq.first_scored <= index <= seq.last_scored:
            gt = cv2.imread(str(seq.groundtruth(index)), cv2.IMREAD_GRAYSCALE)
            total += confusion(mask, gt)
    return total, spent


def parse_value(text):
    if text in ("true", "false"):  # as TOML writes booleans (shadows=false)
        return text == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seq", nargs="?", default=str(DEFAULT_SEQ))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a [model] parameter of bgsub")
    ap.add_argument("--no-opencv", action="store_true", help="score bgsub only")
    args = ap.parse_args(argv)
    if not Path(args.seq, "input").is_dir():
        sys.exit(f"error: no CDnet sequence at {args.seq} (expected input/, groundtruth/, "
                 "temporalROI.txt)")
    params = dict(item.split("=", 1) for item in args.set)
    params = {k: parse_value(v) for k, v in params.items()}
    seq = load_cdnet_sequence(args.seq)
    rows = [("bgsub " + " ".join(args.set), lambda: MixtureMasker(**params))]
    if not args.no_opencv:
        rows += [("MOG2 (defaults)", cv2.createBackgroundSubtractorMOG2),
                 ("MOG2 (detectShadows=False)",
                  lambda: cv2.createBackgroundSubtractorMOG2(detectShadows=False))]
    print(f"{'subtractor':40s} {'Recall':>7s} {'Prec':>7s} {'F':>7s} {'PWC':>7s}")
    for name, make in rows:
        c, _ = score(seq, make)
        print(f"{name:40s} {c.recall:7.4f} {c.precision:7.4f} {c.f_measure:7.4f} {c.pwc:7.3f}")


if __name__ == "__main__":
    main()
