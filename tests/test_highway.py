"""Raw-mask accuracy on CDnet 2014 baseline/highway, against OpenCV's MOG2 in the same run.

The sequence is not part of the project: it is looked for in ../shared/data/highway
(beside the checkout) or in $BGSUB_HIGHWAY, and the test is skipped without it.
"""

import os
from pathlib import Path

import cv2
import pytest

from bgsub import MixtureMasker
from bgsub.evaluation import Confusion, confusion, load_cdnet_sequence

ROOT = Path(__file__).resolve().parents[1]
SEQ = Path(os.environ.get("BGSUB_HIGHWAY", ROOT.parent / "shared" / "data" / "highway"))

pytestmark = pytest.mark.skipif(
    not (SEQ / "input").is_dir(),
    reason=f"CDnet highway sequence not found at {SEQ} (set BGSUB_HIGHWAY to its folder)")


def test_raw_masks_beat_mog2_on_highway():
    seq = load_cdnet_sequence(SEQ)
    subtractors = {
        "bgsub": MixtureMasker(),
        "mog2": cv2.createBackgroundSubtractorMOG2(),
        "mog2_no_shadows": cv2.createBackgroundSubtractorMOG2(detectShadows=False),
    }
    scores = {name: Confusion() for name in subtractors}
    for index, path in enumerate(seq.inputs, start=1):
        frame = cv2.imread(str(path))
        masks = {name: sub.apply(frame) for name, sub in subtractors.items()}
        if seq.first_scored <= index <= seq.last_scored:
            gt = cv2.imread(str(seq.groundtruth(index)), cv2.IMREAD_GRAYSCALE)
            for name, mask in masks.items():
                scores[name] += confusion(mask, gt)
    f = {name: c.f_measure for name, c in scores.items()}
    print("highway F:", {name: round(v, 4) for name, v in f.items()})
    assert f["bgsub"] > f["mog2"]
    assert f["bgsub"] > f["mog2_no_shadows"]
    assert f["bgsub"] > 0.84
