"""CDnet scoring rules on hand-made arrays with known counts."""

import numpy as np

from bgsub.evaluation import confusion


def test_confusion_follows_cdnet_labels():
    gt = np.array([[0, 50, 85, 170, 255, 255],
                   [0, 50, 85, 170, 255, 0]], np.uint8)
    mask = np.array([[255, 255, 255, 255, 255, 0],
                     [0, 127, 0, 0, 127, 0]], np.uint8)
    c = confusion(mask, gt)
    # 85 and 170 never count; 50 is a negative; 127 in the mask is a negative
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 2, 2, 3)
    assert c.recall == 1 / 3
    assert c.precision == 1 / 3
    assert c.specificity == 3 / 5
    assert c.fpr == 2 / 5
    assert c.fnr == 2 / 3
    assert c.pwc == 100 * 4 / 8
    assert abs(c.f_measure - 1 / 3) < 1e-12


def test_confusion_with_roi_and_sums():
    gt = np.full((2, 2), 255, np.uint8)
    mask = np.array([[255, 0], [255, 0]], np.uint8)
    roi = np.array([[True, True], [False, False]])
    c = confusion(mask, gt, roi)
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 0, 1, 0)
    c += confusion(mask, gt)
    assert (c.tp, c.fn) == (3, 3)
    empty = confusion(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    assert empty.f_measure == 0.0 and empty.precision == 0.0
