"""Leave one out: would the moving-background defaults be chosen without each sequence?

    python benchmarks/leave_one_out.py [DATA_DIR] [--write-docs] [--json FILE]
                                       [--from-json FILE] [--grid SECTION.KEY=V1,V2,...]

scores a grid of the settings the moving-background defaults were chosen on
(by default ``model.flicker_threshold`` 0, 4 x ``model.flicker_reference``
0.05, 0.1 x ``postprocess.median_size`` 5, 7 x ``postprocess.blink_size`` 0,
11, 15, 19 x ``postprocess.blink_level`` 0.03, 0.05, 0.08; ``--grid``
replaces it, repeatable) on the five CDnet sequences of
``accuracy_table.py``, everything else at the shipped values.  Then, for each
sequence, it chooses the grid point with the best mean F on the other four
(ties, equal to four decimals: the best worst sequence of the four), scores the
left-out sequence with that choice and reports its drop against its F with the
shipped defaults (and gives its F with the grid's choice on all five, the
first row).  A large drop means a default fits that sequence, not a kind of
scene.

The scoring is :func:`tune.run`'s (``bgsub eval``'s rules; grid points that
differ only in ``[postprocess]`` share one run of the model).  ``--json FILE``
keeps every point's per-sequence F; ``--from-json FILE`` makes the table from
such a file without running anything.  ``--write-docs`` puts the table into
``docs/accuracy.md`` between its ``table:leave-one-out`` markers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from accuracy_table import DEFAULT_DATA, SEQUENCES
from doctables import write_table
from tune import combinations, parse_grid, run

from bgsub.config import apply_overrides, resolve_config
from bgsub.eval.cdnet import load_cdnet_sequence

GRID = ["model.flicker_threshold=0,4", "model.flicker_reference=0.05,0.1",
        "postprocess.median_size=5,7", "postprocess.blink_size=0,11,15,19",
        "postprocess.blink_level=0.03,0.05,0.08"]


def score(data_dir: Path, grid: list[str]) -> dict:
    """Every grid point's F on each sequence, and the shipped defaults' F."""
    base = resolve_config(None, [])
    points = combinations(base, parse_grid(grid))
    points.append(([], base))  # the defaults, whether or not the grid holds them
    sequences = [load_cdnet_sequence(data_dir / name) for name in SEQUENCES]
    rows = run(sequences, points)
    f = [{s.name: c.f_measure for s, c in zip(sequences, per_seq)} for _, per_seq, _ in rows]
    return {"grid": grid, "defaults": f[-1],
            "points": [{"overrides": o, "f": fs} for (o, _, _), fs in zip(rows[:-1], f[:-1])]}


def choose(points: list[dict], names: list[str]) -> dict:
    """The point with the best mean F over *names*; ties (4 decimals): the best worst."""
    def key(point):
        values = [point["f"][n] for n in names]
        return (round(sum(values) / len(values), 4), min(values))
    return max(points, key=key)


def short(overrides: list[str]) -> str:
    """The grid point's settings, and whether they are the shipped ones."""
    text = ", ".join(o.partition(".")[2].replace("=", " ") for o in overrides)
    base = resolve_config(None, [])
    return text + (" (the defaults)" if apply_overrides(base, overrides) == base else "")


def table(scores: dict) -> str:
    names = list(scores["defaults"])
    points, defaults = scores["points"], scores["defaults"]
    lines = ["| left out | chosen on the others | its F with that choice | "
             "its F with the defaults | drop | its F, chosen on all five | "
             "mean F of the others |",
             "|---|---|---|---|---|---|---|"]
    best = choose(points, names)
    mean = sum(best["f"].values()) / len(names)
    lines.append(f"| none (chosen on all five) | {short(best['overrides'])} | | | | | "
                 f"{mean:.4f} (defaults {sum(defaults.values()) / len(names):.4f}) |")
    for name in names:
        others = [n for n in names if n != name]
        chosen = choose(points, others)
        mean = sum(chosen["f"][n] for n in others) / len(others)
        drop = defaults[name] - chosen["f"][name]
        lines.append(f"| {name} | {short(chosen['overrides'])} | {chosen['f'][name]:.4f} | "
                     f"{defaults[name]:.4f} | **{drop:.4f}** | {best['f'][name]:.4f} | "
                     f"{mean:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA, metavar="DATA_DIR")
    ap.add_argument("--grid", action="append", metavar="SECTION.KEY=V1,V2,...",
                    help="replace the default grid (repeatable: a cartesian product)")
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--json", type=Path, metavar="FILE", help="keep the scores as JSON")
    ap.add_argument("--from-json", type=Path, metavar="FILE",
                    help="make the table from scores kept with --json; run nothing")
    args = ap.parse_args(argv)
    if args.from_json:
        scores = json.loads(args.from_json.read_text())
    else:
        scores = score(args.data, args.grid or GRID)
        if args.json:
            args.json.write_text(json.dumps(scores, indent=1) + "\n")
    markdown = table(scores)
    print(markdown)
    if args.write_docs:
        print(f"wrote {write_table('accuracy.md', 'leave-one-out', markdown)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
