"""What each mechanism of the model is worth: the five CDnet sequences with one turned off.

    python benchmarks/mechanism_table.py [DATA_DIR] [--write-docs] [--json FILE]
                                         [--from-json FILE]

scores bgsub on DATA_DIR/{highway,pedestrians,office,busStation,fall} (the
sequences of ``accuracy_table.py``) with the shipped configuration and then with
one mechanism turned off at a time, and prints a Markdown table: what is turned
off, the setting that turns it off, the mean F and each sequence's F.  The
scoring is :func:`tune.run`'s, which is ``bgsub eval``'s (the CDnet rules over
each temporal ROI, the mean of the per-sequence metrics); rows that differ only
in ``[postprocess]`` share one run of the model.  Any row is reproduced by
``bgsub eval DATA_DIR/... --set KEY=VALUE`` (the raw row by ``--compare raw``).

``--json FILE`` keeps the scores; ``--from-json FILE`` prints (and writes) the
table from such a file without running anything.  ``--write-docs`` puts the
table into ``docs/accuracy.md`` between its ``table:mechanisms`` markers.
DATA_DIR defaults to ``../shared/data`` beside the checkout, or ``$BGSUB_DATA``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from accuracy_table import DEFAULT_DATA, SEQUENCES
from doctables import write_table
from tune import combinations, run

from bgsub.config import PostprocessConfig, resolve_config
from bgsub.eval.cdnet import load_cdnet_sequence

# (what is turned off, its --set overrides; None: the raw mask, no post-processing)
MECHANISMS: list[tuple[str, list[str] | None]] = [
    ("nothing (the defaults)", []),
    ("selective update (the 247 frames of α)", ["model.absorb_seconds=9.88"]),
    ("texture test for grey-floor shadows", ["model.shadow_texture=false"]),
    ("flicker level (foreground learning by flicker)", ["model.flicker_reference=0"]),
    ("flicker-widened match threshold (off; on at 4, its previous value)",
     ["model.flicker_threshold=4"]),
    ("flicker gate of the neighbour match", ["model.neighbour_flicker=0"]),
    ("ghost release", ["model.ghost_frames=0"]),
    ("neighbour match", ["model.neighbour_radius=0"]),
    ("blink gate (the 15-pixel median where the mask blinks)", ["postprocess.blink_size=0"]),
    ("median 5, back to 7 (its previous value)", ["postprocess.median_size=7"]),
    ("closing 9, back to off (its previous value)", ["postprocess.close_size=0"]),
    ("the previous defaults (no blink gate, median 7, widened threshold)",
     ["postprocess.blink_size=0", "postprocess.median_size=7", "model.flicker_threshold=4"]),
    ("all post-processing (the raw mask)", None),
]


def score(data_dir: Path) -> list[dict]:
    """Every row of :data:`MECHANISMS` scored on the five sequences, as JSON-ready dicts."""
    base = resolve_config(None, [])
    points = []
    for _, overrides in MECHANISMS:
        if overrides is None:
            points.append((["(raw)"], dataclasses.replace(base, postprocess=PostprocessConfig.off())))
        else:
            points.extend(combinations(base, [(o.partition("=")[0], [o.partition("=")[2]])
                                              for o in overrides]))
    sequences = [load_cdnet_sequence(data_dir / name) for name in SEQUENCES]
    rows = run(sequences, points)
    return [{"label": label, "overrides": overrides,
             "mean_f": mean["f_measure"],
             "f": {s.name: c.f_measure for s, c in zip(sequences, per_seq)}}
            for (label, overrides), (_, per_seq, mean) in zip(MECHANISMS, rows)]


def table(rows: list[dict]) -> str:
    names = list(rows[0]["f"])
    lines = ["| turned off | setting | mean F | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    default = rows[0]
    for row in rows:
        if row["overrides"] is None:
            setting = "`--compare raw`"
        else:
            setting = ", ".join(f"`{o.partition('.')[2].replace('=', ' = ')}`"
                                for o in row["overrides"])
        cells = []
        for name in names:
            cell = f"{row['f'][name]:.4f}"
            # a change of 0.005 or more against the defaults in bold
            if row is not default and abs(row["f"][name] - default["f"][name]) >= 0.005:
                cell = f"**{cell}**"
            cells.append(cell)
        lines.append(f"| {row['label']} | {setting} | {row['mean_f']:.4f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA, metavar="DATA_DIR")
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--json", type=Path, metavar="FILE", help="keep the scores as JSON")
    ap.add_argument("--from-json", type=Path, metavar="FILE",
                    help="make the table from scores kept with --json; run nothing")
    args = ap.parse_args(argv)
    if args.from_json:
        rows = json.loads(args.from_json.read_text())
    else:
        rows = score(args.data)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2) + "\n")
    markdown = table(rows)
    print(markdown)
    if args.write_docs:
        print(f"wrote {write_table('accuracy.md', 'mechanisms', markdown)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
