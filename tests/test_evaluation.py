"""CDnet scoring rules on hand-made arrays with known counts."""

import cv2
import numpy as np
import pytest

from bgsub.eval.cdnet import (
    CdnetError,
    Confusion,
    GroundTruth,
    confusion,
    evaluate_sequence,
    load_cdnet_sequence,
    mean_metrics,
)
from bgsub.model.step import FrameStep


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


def test_roi_and_labels_together():
    gt = np.array([[255, 255, 50, 0],
                   [170, 85, 255, 0]], np.uint8)
    mask = np.array([[255, 0, 255, 127],
                     [255, 255, 255, 255]], np.uint8)
    roi = np.array([[True, True, True, False],
                    [True, True, True, True]])
    c = confusion(mask, gt, roi)
    # scored: (0,0) TP, (0,1) FN, (0,2) FP (shadow label), (1,2) TP, (1,3) FP;
    # (0,3) is outside the ROI, (1,0) unknown, (1,1) outside by label
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 2, 1, 0)
    truth = GroundTruth(gt, roi)
    assert truth.score(mask) == c  # one prepared frame scores any number of masks
    assert truth.score(np.zeros_like(mask)) == Confusion(0, 0, 3, 2)


def test_metrics_dict_and_mean_over_sequences():
    a, b = Confusion(tp=8, fp=2, fn=2, tn=88), Confusion(tp=1, fp=3, fn=0, tn=0)
    assert a.metrics() == {"recall": 0.8, "specificity": 88 / 90, "fpr": 2 / 90, "fnr": 0.2,
                           "pwc": 4.0, "precision": 0.8, "f_measure": a.f_measure}
    assert abs(a.f_measure - 0.8) < 1e-12
    mean = mean_metrics([a, b])
    # metrics are averaged, not counts summed: b's precision 0.25 counts as much as a's
    assert mean["precision"] == (0.8 + 0.25) / 2
    assert mean["recall"] == (0.8 + 1.0) / 2
    assert mean["specificity"] == (88 / 90 + 0.0) / 2
    assert a.as_dict()["tn"] == 88 and a.as_dict()["pwc"] == 4.0
    with pytest.raises(ValueError):
        mean_metrics([])


def test_evaluate_sequence_counts_only_the_temporal_roi_and_the_roi(tmp_path):
    (tmp_path / "input").mkdir()
    (tmp_path / "groundtruth").mkdir()
    gt = np.zeros((4, 6), np.uint8)
    gt[1:3, 1:3] = 255
    for i in range(1, 6):
        cv2.imwrite(str(tmp_path / "input" / f"in{i:06d}.jpg"), np.full((4, 6, 3), i, np.uint8))
        cv2.imwrite(str(tmp_path / "groundtruth" / f"gt{i:06d}.png"), gt)
    (tmp_path / "temporalROI.txt").write_text("2 4")
    roi = np.full((4, 6), 255, np.uint8)
    roi[:, 5] = 0  # the last column is not scored
    cv2.imwrite(str(tmp_path / "ROI.bmp"), roi)
    seq = load_cdnet_sequence(tmp_path)
    assert (seq.name, seq.first_scored, seq.last_scored, seq.scored_frames) == (
        tmp_path.name, 2, 4, 3)
    assert seq.roi.sum() == 20 and seq.shape == (4, 6, 3)
    seen = []

    def everything(result):
        seen.append((result.index + 1, int(result.frame[0, 0, 0])))
        return np.full((4, 6), 255, np.uint8)

    scores = evaluate_sequence(seq, FrameStep(threads=1), methods={
        "all": everything, "none": lambda result: np.zeros((4, 6), np.uint8)}).scores
    assert [i for i, _ in seen] == [1, 2, 3, 4, 5]  # every frame, in order
    assert all(abs(value - i) <= 1 for i, value in seen)  # frame i is in00000i.jpg
    # 3 scored frames x (4 positives, 16 negatives inside the ROI)
    assert scores["all"] == Confusion(tp=12, fp=48, fn=0, tn=0)
    assert scores["none"] == Confusion(tp=0, fp=0, fn=12, tn=48)


def test_whole_frame_without_roi_bmp(tmp_path):
    (tmp_path / "input").mkdir()
    (tmp_path / "groundtruth").mkdir()
    cv2.imwrite(str(tmp_path / "input" / "in000001.jpg"), np.zeros((3, 3, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "groundtruth" / "gt000001.png"), np.zeros((3, 3), np.uint8))
    (tmp_path / "temporalROI.txt").write_text("1 1\n")
    seq = load_cdnet_sequence(tmp_path)
    assert seq.roi is None
    scores = evaluate_sequence(seq, FrameStep(threads=1),
                               methods={"m": lambda result: np.zeros((3, 3), np.uint8)}).scores
    assert scores["m"] == Confusion(tn=9)
    with pytest.raises(CdnetError, match="no such folder"):
        load_cdnet_sequence(tmp_path / "nothere")
