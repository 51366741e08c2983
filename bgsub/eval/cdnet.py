"""Scoring masks against ground truth with the CDnet 2014 rules.

Ground-truth labels: 0 static, 50 hard shadow, 85 outside the region of
interest, 170 unknown motion, 255 moving.  85 and 170 are not scored, 50 counts
as background (negative) and 255 as foreground (positive).  A mask pixel is
positive only when it is 255: 127 (a shadow) and 0 are negatives.  Pixels
outside the sequence's ``ROI.bmp`` are not scored either, and only frames
inside ``temporalROI.txt`` are.  A sequence's confusion counts are summed over
its scored frames before the metrics are taken; several sequences are
summarised by the mean of their metrics, as CDnet does for its categories.

A CDnet sequence folder holds ``input/in000001.jpg ...`` (every frame, from
1 without gaps), ``groundtruth/gt000001.png ...``, ``temporalROI.txt`` (the
first and last scored frame numbers, 1-based) and optionally ``ROI.bmp``
(non-zero = scored; without it the whole frame is).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import cv2
import numpy as np

from ..errors import BgsubError
from ..labels import FOREGROUND
from ..io.pipeline import run_pipeline
from ..io.progress import Progress
from ..io.sinks import MaskDirSink
from ..io.sources import FrameReader, Source, SourceInfo
from ..model.step import FrameResult, FrameStep

__all__ = [
    "METRICS",
    "COMPARE_METHODS",
    "OPENCV_SEED",
    "CdnetError",
    "CdnetSequence",
    "CdnetSource",
    "Confusion",
    "GroundTruth",
    "SequenceScores",
    "confusion",
    "evaluate_sequence",
    "load_cdnet_sequence",
    "mean_metrics",
    "opencv_method",
]

GT_STATIC, GT_SHADOW, GT_OUTSIDE, GT_UNKNOWN, GT_MOVING = 0, 50, 85, 170, 255

#: The CDnet metrics, as (attribute of Confusion, name in tables and files).
METRICS = (("recall", "Recall"), ("specificity", "Specificity"), ("fpr", "FPR"),
           ("fnr", "FNR"), ("pwc", "PWC"), ("precision", "Precision"),
           ("f_measure", "F-measure"))


class CdnetError(BgsubError, ValueError):
    """A folder that is not a usable CDnet sequence (a user error)."""


@dataclass
class Confusion:
    """Pixel counts of one or more scored frames, and the CDnet metrics."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __iadd__(self, other: Confusion) -> Self:
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

    def metrics(self) -> dict[str, float]:
        """The seven CDnet metrics by attribute name (``recall`` ... ``f_measure``)."""
        return {name: getattr(self, name) for name, _ in METRICS}

    def as_dict(self) -> dict[str, float]:
        """The counts and the metrics, for a JSON file."""
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn, **self.metrics()}


def _ratio(num: float, den: float) -> float:
    return float(num) / den if den else 0.0


def mean_metrics(confusions: Iterable[Confusion]) -> dict[str, float]:
    """The mean of each metric over several sequences (CDnet's category average).

    Averaging metrics, not counts, gives each sequence the same say whatever
    its size.
    """
    rows = [c.metrics() for c in confusions]
    if not rows:
        raise ValueError("mean_metrics needs at least one Confusion")
    return {name: sum(r[name] for r in rows) / len(rows) for name, _ in METRICS}


class GroundTruth:
    """One ground-truth frame prepared for scoring any number of masks.

    The scored positives and negatives are worked out once; each mask then
    costs two counts.

    Parameters
    ----------
    gt : ndarray
        uint8 (H, W) with CDnet labels.
    roi : ndarray, optional
        bool (H, W); pixels outside it are not scored.
    """

    def __init__(self, gt: np.ndarray, roi: np.ndarray | None = None) -> None:
        if roi is not None and roi.shape != gt.shape:
            raise ValueError(f"ROI shape {roi.shape} differs from ground truth {gt.shape}")
        scored = (gt != GT_OUTSIDE) & (gt != GT_UNKNOWN)
        if roi is not None:
            scored &= roi
        truth = gt == GT_MOVING
        self.shape = gt.shape
        self._positive = scored & truth
        self._negative = scored & ~truth
        self._n_positive = int(np.count_nonzero(self._positive))
        self._n_negative = int(np.count_nonzero(self._negative))

    def score(self, mask: np.ndarray) -> Confusion:
        """TP/FP/FN/TN of *mask* (uint8 (H, W); only 255 is foreground)."""
        if mask.shape != self.shape:
            raise ValueError(f"mask shape {mask.shape} differs from ground truth {self.shape}")
        detected = mask == FOREGROUND
        tp = int(np.count_nonzero(detected & self._positive))
        fp = int(np.count_nonzero(detected & self._negative))
        return Confusion(tp, fp, self._n_positive - tp, self._n_negative - fp)


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
    return GroundTruth(gt, roi).score(mask)


_INPUT_NAME = re.compile(r"in(\d+)\.jpg")
_LAYOUT = ("a CDnet sequence folder holds input/in000001.jpg..., groundtruth/gt000001.png..., "
           "temporalROI.txt and optionally ROI.bmp")


@dataclass
class CdnetSequence:
    """A CDnet 2014 sequence folder, checked by :func:`load_cdnet_sequence`.

    Attributes
    ----------
    root : Path
        The folder.
    inputs : list of Path
        ``input/in000001.jpg`` ... in frame order; frame ``i`` (1-based) is
        ``inputs[i - 1]``.
    first_scored, last_scored : int
        The temporal ROI: the 1-based frame numbers scored, both included.
    roi : ndarray or None
        bool (H, W) from ``ROI.bmp`` (non-zero = scored), None without one.
    shape : tuple of int
        Shape of the frames, (H, W, 3).
    """

    root: Path
    inputs: list[Path]
    first_scored: int
    last_scored: int
    roi: np.ndarray | None = None
    shape: tuple[int, ...] | None = None

    @property
    def name(self) -> str:
        """The folder's name (``highway``)."""
        return self.root.resolve().name

    @property
    def scored_frames(self) -> int:
        return self.last_scored - self.first_scored + 1

    def is_scored(self, index: int) -> bool:
        """Whether the 1-based frame *index* is inside the temporal ROI."""
        return self.first_scored <= index <= self.last_scored

    def groundtruth(self, index: int) -> Path:
        """Ground-truth path of the 1-based frame *index*."""
        return self.root / "groundtruth" / f"gt{index:06d}.png"

    def read_frame(self, index: int) -> np.ndarray:
        """The 1-based frame *index* as a BGR array; CdnetError if it cannot be read."""
        path = self.inputs[index - 1]
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise CdnetError(f"{path}: not a readable image (every input frame is needed)")
        if self.shape is not None and frame.shape != self.shape:
            raise CdnetError(f"{path}: size {frame.shape[1]}x{frame.shape[0]} differs from "
                             f"the first frame's {self.shape[1]}x{self.shape[0]}")
        return frame

    def read_groundtruth(self, index: int) -> np.ndarray:
        """The ground truth of the 1-based frame *index*; CdnetError if it cannot be read."""
        path = self.groundtruth(index)
        gt = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gt is None:
            raise CdnetError(f"{path}: not a readable image (expected a grey PNG of CDnet "
                             "labels)")
        if self.shape is not None and gt.shape != self.shape[:2]:
            raise CdnetError(f"{path}: size {gt.shape[1]}x{gt.shape[0]} differs from the "
                             f"frames' {self.shape[1]}x{self.shape[0]}")
        return gt


def load_cdnet_sequence(root: str | Path) -> CdnetSequence:
    """Check and describe a CDnet sequence folder.

    Reads the file listings, ``temporalROI.txt``, ``ROI.bmp`` and the first
    frame; the other frames are read while scoring.

    Raises
    ------
    CdnetError
        For a missing folder, ``input/`` or ``groundtruth/``, frames not
        numbered from 1 without gaps, a missing or garbled
        ``temporalROI.txt``, a temporal ROI outside the frames, a missing
        ground-truth file for a scored frame, or an unreadable or mis-sized
        ``ROI.bmp`` or first frame.  The message names the problem and the
        layout expected.
    """
    root = Path(root)
    if not root.is_dir():
        problem = "not a folder" if root.exists() else "no such folder"
        raise CdnetError(f"{root}: {problem} ({_LAYOUT})")
    for sub in ("input", "groundtruth"):
        if not (root / sub).is_dir():
            raise CdnetError(f"{root}: no {sub}/ folder ({_LAYOUT})")
    numbered = {}
    for path in (root / "input").iterdir():
        match = _INPUT_NAME.fullmatch(path.name)
        if match:
            numbered[int(match.group(1))] = path
    if not numbered:
        raise CdnetError(f"{root}: no input/in*.jpg frames ({_LAYOUT})")
    count = len(numbered)
    for i in range(1, count + 1):
        if i not in numbered:
            raise CdnetError(f"{root}: input/in{i:06d}.jpg is missing (frames must be numbered "
                             f"from in000001.jpg without gaps; found {count} frames up to "
                             f"in{max(numbered):06d}.jpg)")
    inputs = [numbered[i] for i in range(1, count + 1)]
    first, last = _read_temporal_roi(root / "temporalROI.txt", count)
    present = {p.name for p in (root / "groundtruth").iterdir()}
    for i in range(first, last + 1):
        if f"gt{i:06d}.png" not in present:
            raise CdnetError(f"{root}: groundtruth/gt{i:06d}.png is missing (every frame in "
                             f"temporalROI.txt, {first}..{last}, needs its ground truth)")
    seq = CdnetSequence(root, inputs, first, last)
    seq.shape = seq.read_frame(1).shape
    roi_path = root / "ROI.bmp"
    if roi_path.exists():
        roi = cv2.imread(str(roi_path), cv2.IMREAD_GRAYSCALE)
        if roi is None:
            raise CdnetError(f"{roi_path}: not a readable image (expected a mask, non-zero = "
                             "scored, or no ROI.bmp to score the whole frame)")
        if roi.shape != seq.shape[:2]:
            raise CdnetError(f"{roi_path}: size {roi.shape[1]}x{roi.shape[0]} differs from "
                             f"the frames' {seq.shape[1]}x{seq.shape[0]}")
        seq.roi = roi > 0
        if not seq.roi.any():
            raise CdnetError(f"{roi_path}: selects no pixel (non-zero pixels are scored)")
    return seq


def _read_temporal_roi(path: Path, count: int) -> tuple[int, int]:
    expect = "expected two frame numbers 'first last', 1-based"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise CdnetError(f"{path}: missing ({expect})") from None
    except OSError as exc:
        raise CdnetError(f"{path}: cannot be read ({exc.strerror})") from None
    parts = text.split()
    try:
        first, last = (int(v) for v in parts)
    except ValueError:
        shown = text.strip()[:40]
        raise CdnetError(f"{path}: holds {shown!r}, {expect}") from None
    if not 1 <= first <= last <= count:
        raise CdnetError(f"{path}: frames {first}..{last} are not within the {count} input "
                         f"frames ({expect}, first <= last)")
    return first, last


class CdnetSource(Source):
    """A sequence's input frames, in order, as a :class:`~bgsub.io.sources.Source`.

    Every frame is needed: one that cannot be read raises :class:`CdnetError`.
    """

    def __init__(self, seq: CdnetSequence) -> None:
        self.seq = seq
        self._next = 1
        self.info = SourceInfo("folder", str(seq.root), 25.0, len(seq.inputs))

    def read(self) -> np.ndarray | None:
        if self._next > len(self.seq.inputs):
            return None
        self._next += 1
        return self.seq.read_frame(self._next - 1)


#: What ``bgsub eval --compare`` accepts beside bgsub, and what each name runs.
COMPARE_METHODS = {
    "raw": "bgsub's mask before post-processing",
    "mog2": "cv2.createBackgroundSubtractorMOG2()",
    "knn": "cv2.createBackgroundSubtractorKNN()",
    "mog": "cv2.bgsegm.createBackgroundSubtractorMOG()",
}

_OPENCV_FACTORIES: dict[str, Callable[[], object]] = {
    "mog2": lambda: cv2.createBackgroundSubtractorMOG2(),
    "knn": lambda: cv2.createBackgroundSubtractorKNN(),
    "mog": lambda: cv2.bgsegm.createBackgroundSubtractorMOG(),
}

#: Seed of OpenCV's random generator at the start of each sequence.  KNN draws
#: from it (on the calling thread) as it learns, so without a fixed seed its
#: scores would depend on whatever drew from it before: earlier sequences,
#: or earlier code in the same process.
OPENCV_SEED = 12345


def opencv_method(name: str) -> Callable[[FrameResult], np.ndarray]:
    """A fresh OpenCV subtractor (``mog2``, ``knn``, ``mog``), as a method of a result."""
    subtractor = _OPENCV_FACTORIES[name]()
    return lambda result: subtractor.apply(result.frame)


@dataclass
class SequenceScores:
    """The confusion counts of each method on one sequence, and the seconds each took."""

    seq: CdnetSequence
    scores: dict[str, Confusion] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class _Scorer:
    """A pipeline consumer: each method's mask of each result, scored on the scored frames."""

    def __init__(self, seq: CdnetSequence,
                 methods: dict[str, Callable[[FrameResult], np.ndarray]]) -> None:
        self.seq = seq
        self.methods = methods
        self.scores = {name: Confusion() for name in methods}
        self.seconds = {name: 0.0 for name in methods}

    def write(self, result: FrameResult) -> None:
        number = result.index + 1  # CDnet numbers frames from 1
        masks = {}
        for name, method in self.methods.items():
            t0 = time.perf_counter()
            masks[name] = method(result)
            self.seconds[name] += time.perf_counter() - t0
        if self.seq.is_scored(number):
            truth = GroundTruth(self.seq.read_groundtruth(number), self.seq.roi)
            for name, mask in masks.items():
                self.scores[name] += truth.score(mask)

    def close(self) -> None:
        pass


def evaluate_sequence(seq: CdnetSequence, step: FrameStep, compare: Iterable[str] = (), *,
                      methods: dict[str, Callable[[FrameResult], np.ndarray]] | None = None,
                      mask_dir: Path | None = None,
                      progress: Progress | None = None) -> SequenceScores:
    """Put every frame of *seq* through *step* and score the masks with the CDnet rules.

    Parameters
    ----------
    seq : CdnetSequence
        The sequence; every input frame is processed, in order.
    step : FrameStep
        bgsub's frame step, scored as ``bgsub`` (the post-processed mask).
        Give it ``keep_raw=True`` for ``raw`` in *compare*.
    compare : iterable of str
        Other methods of :data:`COMPARE_METHODS`, run on the same frames.
    methods : dict, optional
        More methods by name: ``method(result) -> mask`` for every result.
    mask_dir : Path, optional
        Keep bgsub's masks there as ``binNNNNNN.png`` (CDnet's result format).
    progress : Progress, optional
        Told the frames done.

    Returns
    -------
    SequenceScores
        The summed :class:`Confusion` over the scored frames by method, and
        the seconds each method took.
    """
    cv2.setRNGSeed(OPENCV_SEED)
    named: dict[str, Callable[[FrameResult], np.ndarray]] = {"bgsub": lambda r: r.mask}
    for name in compare:
        named[name] = (lambda r: r.raw_mask) if name == "raw" else opencv_method(name)
    named.update(methods or {})
    scorer = _Scorer(seq, named)
    consumers: list = [scorer]
    if mask_dir is not None:
        consumers.append(MaskDirSink(mask_dir, "--save-masks", "bin{:06d}.png", first=1))
    before = dict(step.seconds)
    reader = FrameReader(CdnetSource(seq))
    try:
        run_pipeline(reader, step, consumers, progress=progress)
    finally:
        reader.close()
    for consumer in consumers:
        consumer.close()
    seconds = dict(scorer.seconds)
    spent = {k: step.seconds[k] - before[k] for k in before}
    seconds["bgsub"] = spent["mask"] + spent["postprocess"]
    if "raw" in seconds:
        seconds["raw"] = spent["mask"]
    return SequenceScores(seq, scorer.scores, seconds)
