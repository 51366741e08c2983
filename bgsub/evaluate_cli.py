"""``bgsub eval``: score bgsub (and OpenCV's subtractors) on CDnet 2014 sequences.

Every input frame of each sequence goes, in order, through the configured
masker and post-processing (``[model]`` and ``[postprocess]``); the frames in
``temporalROI.txt`` are scored with the CDnet rules (:mod:`bgsub.evaluation`).
``--compare`` adds other methods, run on the same frames in the same pass:

* ``raw``: bgsub's mask before post-processing (the same model, no second run);
* ``mog2``, ``knn``: ``cv2.createBackgroundSubtractorMOG2()`` and
  ``cv2.createBackgroundSubtractorKNN()`` with their default parameters;
* ``mog``: ``cv2.bgsegm.createBackgroundSubtractorMOG()`` (defaults), which
  needs opencv-contrib; without ``cv2.bgsegm`` it is skipped with a note.

OpenCV's shadow value (127) is a negative, like bgsub's.  Each method starts
afresh on each sequence.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from . import __version__
from .cli import UsageError, add_config_arguments, guarded, resolve_config
from .config import Config
from .evaluation import (
    METRICS,
    CdnetError,
    CdnetSequence,
    Confusion,
    load_cdnet_sequence,
    mean_metrics,
    score_sequence,
)
from .masker import MixtureMasker
from .pipeline import Progress
from .postprocess import Postprocessor
from .sinks import SinkError, check_output_dir, check_writable_file

__all__ = ["COMPARE_METHODS", "main"]

#: What --compare accepts, and what each name runs.
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bgsub eval",
        description="Score bgsub's masks (the configured model and post-processing) on CDnet "
                    "2014 sequences with the CDnet rules, optionally beside OpenCV's "
                    "subtractors run on the same frames. Prints Recall, Specificity, FPR, "
                    "FNR, PWC, Precision and F-measure per sequence, then their mean over "
                    "the sequences.",
        epilog="A sequence folder holds input/in000001.jpg..., groundtruth/gt000001.png..., "
               "temporalROI.txt ('first last', 1-based) and optionally ROI.bmp. Exit status: "
               "0 done, 2 bad input.")
    # "*" rather than "+": a missing folder gets bgsub's one-line error, not argparse's usage
    p.add_argument("sequences", nargs="*", metavar="SEQ_DIR", help="CDnet sequence folder")
    p.add_argument("--compare", default="", metavar="LIST",
                   help="comma-separated methods to score beside bgsub: "
                        + ", ".join(f"{k} ({v})" for k, v in COMPARE_METHODS.items()))
    p.add_argument("--json", metavar="FILE",
                   help="write every number (per sequence and method, confusion counts, "
                        "means) as JSON")
    p.add_argument("--save-masks", metavar="DIR",
                   help="keep bgsub's masks as DIR/<sequence>/binNNNNNN.png (CDnet's result "
                        "format)")
    add_config_arguments(p, "postprocess.median_size=5")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    p.add_argument("--version", action="version", version=f"bgsub {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``bgsub eval`` with *argv* (the arguments after ``eval``); return the exit status."""
    args = build_parser().parse_args(argv)
    return guarded(lambda: _evaluate(args), args.debug, (CdnetError,))


def parse_compare(text: str) -> list[str]:
    """The --compare list, in order, without repeats; UsageError for an unknown name."""
    names: list[str] = []
    for name in (item.strip() for item in text.split(",")):
        if not name:
            continue
        if name not in COMPARE_METHODS:
            raise UsageError(f"--compare: unknown method {name!r} (expected a comma-separated "
                             f"list of {', '.join(COMPARE_METHODS)})")
        if name not in names:
            names.append(name)
    return names


def _evaluate(args: argparse.Namespace) -> int:
    if not args.sequences:
        raise UsageError("no sequence given: expected one or more CDnet sequence folders "
                         "(see bgsub eval --help)")
    config = resolve_config(args)
    compare = parse_compare(args.compare)
    # every check before the first frame: a bad argument never costs a long run
    json_path = check_writable_file(args.json, "--json") if args.json else None
    sequences = [load_cdnet_sequence(path) for path in args.sequences]
    mask_dirs = _mask_dirs(sequences, args.save_masks) if args.save_masks else None
    skipped = {}
    if "mog" in compare and not hasattr(cv2, "bgsegm"):
        skipped["mog"] = "cv2.bgsegm is missing (it comes with opencv-contrib-python)"
        print(f"bgsub: note: mog skipped: {skipped['mog']}", file=sys.stderr)
        compare.remove("mog")
    methods = ["bgsub", *compare]

    progress = Progress(sum(len(s.inputs) for s in sequences), quiet=args.quiet)
    done = 0
    results = []
    for i, seq in enumerate(sequences):
        def on_frame(_index: int) -> None:
            nonlocal done
            done += 1
            progress.update(done)

        process, seconds = _processor(config, compare,
                                      mask_dirs[i] if mask_dirs is not None else None)
        scores = score_sequence(seq, process, on_frame)
        progress.clear()
        results.append((seq, scores, seconds))
        print(("\n" if i else "") + _heading(seq))
        print(_table({m: scores[m].metrics() for m in methods}))
        sys.stdout.flush()
    if len(sequences) > 1:
        means = {m: mean_metrics(scores[m] for _, scores, _ in results) for m in methods}
        print(f"\nmean over {len(sequences)} sequences")
        print(_table(means))
    if json_path is not None:
        _write_json(json_path, config, methods, skipped, results)
    return 0


def _mask_dirs(sequences: list[CdnetSequence], root: str) -> list[Path]:
    """DIR/<sequence name> for each sequence, created and checked before any frame."""
    names = [seq.name for seq in sequences]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f"--save-masks: two sequences are named {name!r}; their masks "
                             f"would share DIR/{name} (give folders with distinct names)")
    for seq in sequences:
        target = (Path(root) / seq.name).resolve()
        source = seq.root.resolve()
        if target == source or source in target.parents:
            raise UsageError(f"--save-masks {root}: would write into the sequence folder "
                             f"{seq.root} (give a folder outside the data set)")
    check_output_dir(root, "--save-masks")
    return [check_output_dir(Path(root) / name, "--save-masks") for name in names]


def _processor(config: Config, compare: list[str], mask_dir: Path | None):
    """A fresh ``process(index, frame) -> {method: mask}`` for one sequence, and its timings."""
    masker = MixtureMasker(config.model)
    post = Postprocessor(config.postprocess)
    opencv = {name: _OPENCV_FACTORIES[name]() for name in compare if name in _OPENCV_FACTORIES}
    cv2.setRNGSeed(OPENCV_SEED)
    keep_raw = "raw" in compare and post.active
    seconds = {name: 0.0 for name in ["bgsub", *compare]}

    def process(index: int, frame: np.ndarray) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        raw = masker.apply(frame)
        t1 = time.perf_counter()
        mask = post.apply(raw, out=None if keep_raw else raw)
        t2 = time.perf_counter()
        seconds["bgsub"] += t2 - t0
        masks = {"bgsub": mask}
        if "raw" in compare:
            masks["raw"] = raw
            seconds["raw"] += t1 - t0
        for name, subtractor in opencv.items():
            t0 = time.perf_counter()
            masks[name] = subtractor.apply(frame)
            seconds[name] += time.perf_counter() - t0
        if mask_dir is not None:
            target = mask_dir / f"bin{index:06d}.png"
            if not cv2.imwrite(str(target), mask):
                raise SinkError(f"--save-masks {mask_dir}: cannot write {target.name}")
        return masks

    return process, seconds


def _heading(seq: CdnetSequence) -> str:
    roi = "ROI.bmp" if seq.roi is not None else "no ROI.bmp: whole frame"
    return (f"{seq.name} ({seq.root}): {len(seq.inputs)} frames, {seq.scored_frames} scored "
            f"({seq.first_scored}..{seq.last_scored}), {roi}")


def _table(rows: dict[str, dict[str, float]]) -> str:
    width = max(9, *(len(name) for name in rows))
    heads = [label for _, label in METRICS]
    lines = [f"{'method':<{width}}" + "".join(f" {h:>11}" for h in heads)]
    for name, metrics in rows.items():
        lines.append(f"{name:<{width}}"
                     + "".join(f" {metrics[key]:>11.4f}" for key, _ in METRICS))
    return "\n".join(lines)


def _write_json(path: Path, config: Config, methods: list[str], skipped: dict[str, str],
                results: list[tuple[CdnetSequence, dict[str, Confusion], dict[str, float]]]
                ) -> None:
    data = {
        "bgsub_version": __version__,
        "config": {"model": dataclasses.asdict(config.model),
                   "postprocess": dataclasses.asdict(config.postprocess)},
        "methods": {m: ("MixtureMasker ([model]) then Postprocessor ([postprocess])"
                        if m == "bgsub" else COMPARE_METHODS[m]) for m in methods},
        "skipped": skipped,
        "sequences": [
            {"name": seq.name, "path": str(seq.root), "frames": len(seq.inputs),
             "temporal_roi": [seq.first_scored, seq.last_scored],
             "scored_frames": seq.scored_frames, "roi_bmp": seq.roi is not None,
             "results": {m: scores[m].as_dict() for m in methods},
             "seconds": {m: round(seconds[m], 4) for m in methods}}
            for seq, scores, seconds in results],
        # CDnet's category figure: the mean of the per-sequence metrics
        "mean": {m: mean_metrics(scores[m] for _, scores, _ in results) for m in methods},
    }
    try:
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise SinkError(f"--json {path}: cannot be written ({exc.strerror})") from None


if __name__ == "__main__":
    sys.exit(main())
