"""``bgsub eval``: score bgsub (and OpenCV's subtractors) on CDnet 2014 sequences.

Every input frame of each sequence goes, in order, through the configured
frame step (``[model]`` and ``[postprocess]``); the frames in
``temporalROI.txt`` are scored with the CDnet rules (:mod:`bgsub.eval.cdnet`).
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
import logging
import sys
from pathlib import Path

import cv2

from .._version import __version__
from ..config import Config
from ..eval.cdnet import (COMPARE_METHODS, METRICS, CdnetSequence, SequenceScores,
                          evaluate_sequence, load_cdnet_sequence, mean_metrics)
from ..files import (SinkError, check_not_inputs, check_output_dir, check_writable_file,
                       write_atomically)
from ..io.progress import Progress
from ..model.step import FrameStep
from ..text import one_line
from .common import UsageError, config_of, run_command

__all__ = ["add_parser", "main", "parse_compare"]

logger = logging.getLogger("bgsub")


def add_parser(commands, parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "eval", parents=[parent], help="score bgsub on CDnet 2014 sequences",
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
    p.set_defaults(run=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Run the parsed ``bgsub eval`` arguments; return the exit status."""
    return run_command(args, lambda: _evaluate(args))


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
    config = config_of(args)
    compare = parse_compare(args.compare)
    # every check before the first frame: a bad argument never costs a long run
    json_path = check_writable_file(args.json, "--json") if args.json is not None else None
    sequences = [load_cdnet_sequence(path) for path in args.sequences]
    if json_path is not None:
        _check_outside(json_path, sequences)
    mask_dirs = _mask_dirs(sequences, args.save_masks) if args.save_masks is not None else None
    skipped = {}
    if "mog" in compare and not hasattr(cv2, "bgsegm"):
        skipped["mog"] = "cv2.bgsegm is missing (it comes with opencv-contrib-python)"
        logger.warning("mog skipped: %s", skipped["mog"])
        compare.remove("mog")
    methods = ["bgsub", *compare]

    results = []
    for i, seq in enumerate(sequences):
        step = FrameStep.from_config(config, keep_raw="raw" in compare)
        progress = Progress(len(seq.inputs), quiet=args.quiet, desc=seq.name)
        result = evaluate_sequence(seq, step, compare,
                                   mask_dir=mask_dirs[i] if mask_dirs is not None else None,
                                   progress=progress)
        results.append(result)
        print(("\n" if i else "") + _heading(seq))
        print(_table({m: result.scores[m].metrics() for m in methods}))
        sys.stdout.flush()
    if len(sequences) > 1:
        means = {m: mean_metrics(r.scores[m] for r in results) for m in methods}
        print(f"\nmean over {len(sequences)} sequences")
        print(_table(means))
    if json_path is not None:
        _write_json(json_path, config, methods, skipped, results)
    return 0


def _check_outside(path: Path, sequences: list[CdnetSequence]) -> None:
    """Refuse an output inside a sequence folder, or that is one of its files by another name."""
    for seq in sequences:
        if seq.root.resolve() in path.resolve().parents:
            raise UsageError(f"--json {path}: would write into the sequence folder {seq.root} "
                             "(give a file outside the data set)")
        files = [p for sub in ("input", "groundtruth") for p in (seq.root / sub).iterdir()]
        files += [seq.root / "temporalROI.txt", seq.root / "ROI.bmp"]
        check_not_inputs({"--json": path}, files)


def _mask_dirs(sequences: list[CdnetSequence], root: str) -> list[Path]:
    """DIR/<sequence name> for each sequence, created and checked before any frame."""
    if not root.strip():
        raise SinkError("--save-masks: the name is empty (expected a folder name)")
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


def _heading(seq: CdnetSequence) -> str:
    roi = "ROI.bmp" if seq.roi is not None else "no ROI.bmp: whole frame"
    # one line whatever the folder's name holds (a newline would fake a table's line)
    return (f"{one_line(seq.name)} ({one_line(seq.root)}): {len(seq.inputs)} frames, "
            f"{seq.scored_frames} scored "
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
                results: list[SequenceScores]) -> None:
    data = {
        "bgsub_version": __version__,
        "config": {"model": dataclasses.asdict(config.model),
                   "postprocess": dataclasses.asdict(config.postprocess)},
        "methods": {m: ("MixtureMasker ([model]) then Postprocessor ([postprocess])"
                        if m == "bgsub" else COMPARE_METHODS[m]) for m in methods},
        "skipped": skipped,
        "sequences": [
            {"name": r.seq.name, "path": str(r.seq.root), "frames": len(r.seq.inputs),
             "temporal_roi": [r.seq.first_scored, r.seq.last_scored],
             "scored_frames": r.seq.scored_frames, "roi_bmp": r.seq.roi is not None,
             "results": {m: r.scores[m].as_dict() for m in methods},
             "seconds": {m: round(r.seconds[m], 4) for m in methods}}
            for r in results],
        # CDnet's category figure: the mean of the per-sequence metrics
        "mean": {m: mean_metrics(r.scores[m] for r in results) for m in methods},
    }
    try:
        write_atomically(path, (json.dumps(data, indent=2) + "\n").encode())
    except OSError as exc:
        raise SinkError(f"--json {path}: cannot be written ({exc.strerror})") from None
