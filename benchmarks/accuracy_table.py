"""The accuracy table of docs/accuracy.md: ``bgsub eval`` on the five CDnet sequences beside OpenCV.

    python benchmarks/accuracy_table.py [DATA_DIR] [--write-docs] [--anchors FILE]
                                        [bgsub eval options ...]

runs ``bgsub eval DATA_DIR/{highway,pedestrians,office,busStation,fall} --compare
raw,mog2,knn,mog`` (plus any other options: ``--set section.key=value``...)
and prints its JSON as that page's Markdown table: per sequence and for the
mean, bgsub, its raw mask, MOG2, KNN and MOG with the seven CDnet metrics.
DATA_DIR defaults to ``../shared/data`` beside the checkout, or
``$BGSUB_DATA``.  All the scoring is done by ``bgsub eval`` (:mod:`bgsub.cli.evaluate`); this
file only fixes the comparison and the layout.  The MOG column needs
opencv-contrib (``cv2.bgsegm``); without it bgsub skips MOG with a note.

``--anchors FILE`` adds BGSLibrary's SuBSENSE and PAWCS from the counts that
``benchmarks/anchors_cdnet.py`` wrote (it runs in an environment of its own).
``--write-docs`` also puts the table into ``docs/accuracy.md`` (between its
``table:accuracy`` markers); it takes the shipped configuration only, so it
refuses other bgsub eval options.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

from bgsub.cli import main as bgsub
from doctables import write_table
from bgsub.eval.cdnet import METRICS, Confusion, mean_metrics

SEQUENCES = ("highway", "pedestrians", "office", "busStation", "fall")
DEFAULT_DATA = Path(os.environ.get(
    "BGSUB_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
NAMES = {"bgsub": "bgsub", "raw": "bgsub, raw mask", "mog2": "OpenCV MOG2",
         "knn": "OpenCV KNN", "mog": "OpenCV MOG (bgsegm)"}


def add_anchors(data: dict, path: Path) -> None:
    """Put the counts of ``anchors_cdnet.py``'s file beside each sequence's results, and
    their means (over the same sequences) beside the mean."""
    anchors = json.loads(path.read_text())["results"]
    for method, by_sequence in anchors.items():
        label = f"BGSLibrary {method}"
        confusions = []
        for seq in data["sequences"]:
            c = Confusion(*(by_sequence[seq["name"]][k] for k in ("tp", "fp", "fn", "tn")))
            seq["results"][label] = c.metrics()
            confusions.append(c)
        data["mean"][label] = mean_metrics(confusions)


def table(data: dict) -> str:
    head = "| sequence | method | " + " | ".join(label for _, label in METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    rows = [(s["name"], s["results"]) for s in data["sequences"]] + [("mean", data["mean"])]
    for name, results in rows:
        for method, metrics in results.items():
            cells = [f"{metrics[key]:.4f}" for key, _ in METRICS]
            if method == "bgsub":
                cells[-1] = f"**{cells[-1]}**"
            lines.append(f"| {name} | {NAMES.get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    data_dir = DEFAULT_DATA
    if argv and not argv[0].startswith("-"):
        data_dir, argv = Path(argv[0]), argv[1:]
    write_docs = "--write-docs" in argv
    argv = [a for a in argv if a != "--write-docs"]
    anchors = None
    if "--anchors" in argv:
        at = argv.index("--anchors")
        anchors, argv = Path(argv[at + 1]), argv[:at] + argv[at + 2:]
    if write_docs and argv:
        print("accuracy_table.py: --write-docs takes the shipped configuration only; got "
              + " ".join(argv), file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scores.json"
        # the command's own tables are the same numbers: only the Markdown is printed
        with contextlib.redirect_stdout(io.StringIO()):
            code = bgsub(["eval", *(str(data_dir / s) for s in SEQUENCES), "--compare",
                          "raw,mog2,knn,mog", "--json", str(out), "--quiet", *argv])
        if code != 0:
            return code
        data = json.loads(out.read_text())
        if anchors is not None:
            add_anchors(data, anchors)
        markdown = table(data)
        print(markdown)
        if write_docs:
            print(f"wrote {write_table('accuracy.md', 'accuracy', markdown)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
