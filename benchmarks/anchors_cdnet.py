"""BGSLibrary's SuBSENSE and PAWCS on the shared CDnet sequences, for the accuracy table.

    cd SCRATCH && ANCHORS_ENV/bin/python /path/to/benchmarks/anchors_cdnet.py OUT.json [DATA_DIR]

runs ``pybgs.SuBSENSE()`` and ``pybgs.PAWCS()`` (default parameters) over every
frame of ``DATA_DIR/{highway,pedestrians,office,busStation,fall}`` in order, a
fresh process per method and sequence, and writes each sequence's summed CDnet counts
(TP, FP, FN, TN over the temporal ROI, the ROI and the 85/170 labels left out:
``bgsub eval``'s rules, written out again here) and its frames per second to
OUT.json, after each sequence.  ``python benchmarks/accuracy_table.py
--anchors OUT.json`` then puts both beside bgsub in the table.

pybgs is an anchor, not a dependency: it needs an environment of its own
(``python3 -m venv ../anchors-bgs && ../anchors-bgs/bin/pip install pybgs``, which
builds BGSLibrary against Debian's ``libopencv-dev`` in about 8 minutes), and
it writes ``./config/*.xml`` in the folder it runs in, hence SCRATCH.  It does
not import bgsub.  Both draw from C's ``rand()``, which pybgs never seeds: in
one process a sequence would start from the state the ones before it left,
and PAWCS on busStation scores 0.87 or 0.52 depending on it; a fresh process
starts from the same state every time, so the figures repeat.  PAWCS takes about 25 minutes on one core, SuBSENSE about 10.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np
import pybgs

SEQUENCES = ("highway", "pedestrians", "office", "busStation", "fall")
METHODS = {"SuBSENSE": pybgs.SuBSENSE, "PAWCS": pybgs.PAWCS}


def counts(make, root: Path) -> dict:
    """The summed counts of one sequence and the algorithm's frames per second."""
    inputs = sorted((root / "input").glob("in*.jpg"))
    first, last = (int(x) for x in (root / "temporalROI.txt").read_text().split()[:2])
    roi = root / "ROI.bmp"
    inside = cv2.imread(str(roi), cv2.IMREAD_GRAYSCALE) > 0 if roi.exists() else True
    algorithm = make()
    tp = fp = fn = tn = 0
    seconds = 0.0
    for number, path in enumerate(inputs, start=1):
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        began = time.perf_counter()
        mask = np.asarray(algorithm.apply(frame))
        seconds += time.perf_counter() - began
        if not first <= number <= last:
            continue
        if mask.ndim == 3:
            mask = mask[..., 0]
        gt = cv2.imread(str(root / "groundtruth" / f"gt{number:06d}.png"), cv2.IMREAD_GRAYSCALE)
        scored = (gt != 85) & (gt != 170) & inside
        positive, negative = scored & (gt == 255), scored & (gt != 255)
        detected = mask == 255
        hits, false = int(np.count_nonzero(detected & positive)), int(
            np.count_nonzero(detected & negative))
        tp, fp = tp + hits, fp + false
        fn += int(np.count_nonzero(positive)) - hits
        tn += int(np.count_nonzero(negative)) - false
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "frames": len(inputs),
            "fps": len(inputs) / seconds}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:  # one method on one sequence, in this fresh process
        method, root = argv[1], Path(argv[2])
        print(json.dumps(counts(METHODS[method], root)))
        return 0
    if not 1 <= len(argv) <= 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    out = Path(argv[0])
    data = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data"
    doc = {"pybgs": version("pybgs"), "opencv": cv2.__version__, "results": {}}
    for method in METHODS:
        for name in SEQUENCES:
            done = subprocess.run([sys.executable, __file__, "--one", method, str(data / name)],
                                  check=True, capture_output=True, text=True)
            # pybgs prints its own lines first: the counts are the last one
            doc["results"].setdefault(method, {})[name] = json.loads(
                done.stdout.strip().splitlines()[-1])
            out.write_text(json.dumps(doc, indent=1) + "\n")
            print(f"{method} {name}: {doc['results'][method][name]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
