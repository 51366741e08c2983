"""Scoring masks against ground truth with the CDnet 2014 rules.

Ground-truth labels: 0 static, 50 hard shadow, 85 outside the region of
interest, 170 unknown motion, 255 moving.  85 and 170 are not scored, 50 counts
as background (negative) and 255 as foreground (positive).  A mask pixel is
positive only when it is 255: 127 (a shadow) and 0 are negatives.  Only frames
inside ``temporalROI.txt`` are scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Confusion", "confusion", "CdnetSequence", "load_cdnet_sequence"]

GT_STATIC, GT_SHADOW, GT_OUTSIDE, GT_UNKNOWN, GT_MOVING = 0, 50, 85, 170, 255


@dataclass
class Confusion:
    """Pixel counts of one or more scored frames, and the CDnet metrics."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __iadd__(self, other: "Confusion") -> "Confusion":
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.tn += other.tn
        return self

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> float:
        return _ratio(self.tn, self.tn + self.fp)

    @property
    def fpr(self) -> float:
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def fnr(self) -> float:
        return _ratio(self.fn, self.tp + self.fn)

    @property
    def pwc(self) -> float:
        """Percentage of wrong classifications."""
        return 100.0 * _ratio(self.fn + self.fp, self.tp + self.fn + self.fp + self.tn)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def f_measure(self) -> float:
        p, r = self.precision, self.recall
        return _ratio(2.0 * p * r, p + r)


def _ratio(num: float, den: float) -> float:
    return float(num) / den if den else 0.0


def confusion(mask: np.ndarray, gt: np.ndarray, roi: np.ndarray | None = None) -> Confusion:
    """Count TP/FP/FN/TN of one mask against one CDnet ground-truth frame.

    Parameters
    ----------
    mask : ndarray
        uint8 (H, W); 255 is foreground, anything else (0, 127) background.
    gt : ndarray
        uint8 (H, W) with CDnet labels.
    roi : ndarray, optional
        bool (H, W); pixels outside it are not scored.
    """
    if mask.shape != gt.shape:
        raise ValueError(f"mask shape {mask.shape} differs from ground truth {gt.shape}")
    scored = (gt != GT_OUTSIDE) & (gt != GT_UNKNOWN)
    if roi is not None:
        scored &= roi
    positive = mask == 255
    truth = gt == GT_MOVING
    tp = int(np.count_nonzero(positive & truth & scored))
    fp = int(np.count_nonzero(positive & ~truth & scored))
    fn = int(np.count_nonzero(~positive & truth & scored))
    tn = int(np.count_nonzero(scored)) - tp - fp - fn
    return Confusion(tp, fp, fn, tn)


@dataclass
class CdnetSequence:
    """Paths of a CDnet 2014 sequence folder."""

    root: Path
    inputs: list[Path]
    first_scored: int
    last_scored: int

    def groundtruth(self, index: int) -> Path:
        """Ground-truth path of the 1-based frame *index*."""
        return self.root / "groundtruth" / f"gt{index:06d}.png"


def load_cdnet_sequence(root: str | Path) -> CdnetSequence:
    """Describe a CDnet sequence folder (``input/``, ``groundtruth/``, ``temporalROI.txt``)."""
    root = Path(root)
    inputs = sorted((root / "input").glob("in*.jpg"))
    if not inputs:
        raise FileNotFoundError(f"no input/in*.jpg frames under {root}")
    try:
        first, last = (int(v) for v in (root / "temporalROI.txt").read_text().split()[:2])
    except (OSError, ValueError) as exc:
        raise FileNotFoundError(f"cannot read {root / 'temporalROI.txt'}: {exc}") from None
    return CdnetSequence(root, inputs, first, last)
