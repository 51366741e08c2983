"""Sweep settings over CDnet sequences and rank them by F-measure.

    python benchmarks/tune.py SEQ_DIR [SEQ_DIR ...] \\
        --grid model.k=3,4 --grid postprocess.median_size=0,3,5 [--set KEY=VALUE ...]

Every combination of the ``--grid`` values (a cartesian product) is scored
like ``bgsub eval`` would score it with those ``--set`` overrides: the
configured masker, then the post-processing, every frame in order, the CDnet
rules on the frames of the temporal ROI, the mean of the per-sequence metrics
over several sequences.  Combinations that differ only in ``[postprocess]``
share one run of the model (the masks are post-processed several ways), so a
post-processing grid costs little more than one run.  ``--set`` fixes other
settings for every combination; ``--config`` picks the base file as in bgsub.

Prints one row per combination, best F first, and optionally writes them as
JSON (``--json FILE``).  ``bgsub eval --set ...`` reproduces any row.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

from bgsub.config import Config, ConfigError, PostprocessConfig, apply_overrides, resolve_config
from bgsub.eval.cdnet import (CdnetError, Confusion, evaluate_sequence, load_cdnet_sequence,
                              mean_metrics)
from bgsub.model.postprocess import Postprocessor
from bgsub.model.step import FrameStep


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """``section.key=v1,v2,...`` items as (key, values); values stay text for --set."""
    grid = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or "." not in key or not values:
            raise ConfigError(f"--grid expects section.key=v1,v2,..., got {item!r}")
        grid.append((key.strip(), [v.strip() for v in values.split(",")]))
    return grid


def combinations(base: Config, grid: list[tuple[str, list[str]]]) -> list[tuple[list[str], Config]]:
    """Every point of the grid as (its --set overrides, the validated Config)."""
    points = []
    for values in itertools.product(*(vals for _, vals in grid)):
        overrides = [f"{key}={value}" for (key, _), value in zip(grid, values)]
        points.append((overrides, apply_overrides(base, overrides)))
    return points


def run(sequences, points, quiet=False):
    """Score every point on every sequence; return rows (overrides, per-sequence, mean)."""
    # points sharing a [model] share the masker's run
    by_model: dict = {}
    for i, (_, config) in enumerate(points):
        by_model.setdefault(config.model, []).append(i)
    scores: list[list[Confusion]] = [[] for _ in points]
    start = time.perf_counter()
    for g, (model, members) in enumerate(by_model.items(), start=1):
        for seq in sequences:
            # the model's raw masks, post-processed each member's way
            step = FrameStep(model, PostprocessConfig.off())
            posts = {i: Postprocessor(points[i][1].postprocess) for i in members}
            methods = {i: (lambda result, post=post: post.apply(result.mask))
                       for i, post in posts.items()}
            result = evaluate_sequence(seq, step, methods=methods)
            for i in members:
                scores[i].append(result.scores[i])
            if not quiet:
                print(f"tune: model setting {g}/{len(by_model)}, {seq.name} done "
                      f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return [(points[i][0], scores[i], mean_metrics(scores[i])) for i in range(len(points))]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sequences", nargs="+", metavar="SEQ_DIR")
    ap.add_argument("--grid", action="append", default=[], metavar="SECTION.KEY=V1,V2,...",
                    help="values to try for one setting (repeatable: a cartesian product)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="a fixed override for every combination")
    ap.add_argument("--config", type=Path, metavar="FILE",
                    help="base configuration (default: ./config.toml if present, else defaults)")
    ap.add_argument("--top", type=int, default=0, help="print only the best N rows")
    ap.add_argument("--json", metavar="FILE", help="write every row as JSON")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    try:
        base = resolve_config(args.config, args.set)
        points = combinations(base, parse_grid(args.grid))
        sequences = [load_cdnet_sequence(path) for path in args.sequences]
    except (ConfigError, CdnetError) as exc:
        sys.exit(f"tune: error: {exc}")
    rows = run(sequences, points, args.quiet)
    rows.sort(key=lambda row: -row[2]["f_measure"])
    shown = rows[:args.top] if args.top > 0 else rows
    width = max([len(" ".join(o)) for o, _, _ in rows] + [9])
    header = f"{'overrides':<{width}} {'Recall':>7} {'Prec':>7} {'PWC':>7} {'F':>7}"
    if len(sequences) > 1:  # each sequence's own F after the mean's
        header += "".join(f" {'F ' + s.name[:8]:>10}" for s in sequences)
    print(header)
    for overrides, per_seq, mean in shown:
        line = (f"{' '.join(overrides) or '(base)':<{width}} {mean['recall']:7.4f} "
                f"{mean['precision']:7.4f} {mean['pwc']:7.3f} {mean['f_measure']:7.4f}")
        if len(sequences) > 1:
            line += "".join(f" {c.f_measure:10.4f}" for c in per_seq)
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"overrides": o, "mean": m,
              "sequences": {s.name: c.as_dict() for s, c in zip(sequences, per_seq)}}
             for o, per_seq, m in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
