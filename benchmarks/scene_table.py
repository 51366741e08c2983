"""How well the scene detectors find injected covered/moved/defocused/lighting/weather spans.

For each shared CDnet sequence (``/work/shared/data/*/input``) and each kind
and strength of :mod:`bgsub.eval.tamper`, spans are injected into the real
frames and a fresh :class:`~bgsub.scan.scene.SceneDetector` looks at a
window around each span (``--lead`` unaltered frames before it, to learn the
view).  A span counts as detected when an event of its kind starts within
``--within`` frames of the span's start; its delay is that event's start
frame minus the span's.  The unaltered sequences (``--plain`` frames each) give the
false scene events.  The detectors need frames only, not the model's masks,
so the benchmark runs in a minute or two.

Prints a Markdown table; ``--write-docs`` puts it into docs/scene.md::

    python benchmarks/scene_table.py --write-docs

``--cost`` measures instead what the detectors cost next to the masking: the
frame step (masker and post-processing, the defaults), the masker alone (as
``bench_fps.py`` times it) and the detector on the same 640 x 480 frames,
alternately, each at its best of 5 rounds.

``--rain`` (with ``--write-docs``: docs/scene.md's ``rain`` table) scans rain and
snow over the sequences with ground truth, with the weather gate
(``scan.weather_blob``) and without: the motion events the weather adds, and the
frame-level recall of the events next to the dry run's (see :func:`rain`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bgsub.eval.tamper import KINDS, STRENGTHS, Span, tamper  # noqa: E402
from bgsub.model.step import FrameStep  # noqa: E402
from bgsub.scan.scene import SceneDetector, SceneRules  # noqa: E402

DATA = Path("/work/shared/data")


def load(seq: Path, start: int, count: int, scale: float) -> list[np.ndarray]:
    names = sorted((seq / "input").iterdir())[start:start + count]
    frames = []
    for name in names:
        img = cv2.imread(str(name), cv2.IMREAD_COLOR)
        if scale != 1:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frames.append(img)
    return frames


def detect(frames, rules=None) -> list:
    detector = SceneDetector(rules or SceneRules())
    for i, f in enumerate(frames):
        detector.update(i, f)
    detector.finish()
    return detector.events


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--start", type=int, default=300, help="first frame used (default 300)")
    ap.add_argument("--span", type=int, default=50, help="frames per injected span")
    ap.add_argument("--lead", type=int, default=100, help="unaltered frames before a span")
    ap.add_argument("--spans", type=int, default=2, help="spans per sequence and strength")
    ap.add_argument("--within", type=int, default=25, help="a detection counts within this")
    ap.add_argument("--scale", type=float, default=1.0, help="resize the frames first")
    ap.add_argument("--plain", type=int, default=600,
                    help="unaltered frames per sequence for false events")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--cost", action="store_true", help="measure the cost at 640x480 instead")
    ap.add_argument("--rain", action="store_true",
                    help="count the motion events rain adds, and the recall, instead")
    ap.add_argument("--only", default="", help="with --rain: these sequences (a,b,...)")
    args = ap.parse_args(argv)
    if args.cost:
        print(cost(args.data))
        return 0
    if args.rain:
        table = rain(args.data, args.seed, only=args.only)
        print(table)
        if args.write_docs:
            from doctables import write_table
            write_table("scene.md", "rain", table)
        return 0
    seqs = sorted(p for p in args.data.iterdir() if (p / "input").is_dir())
    if not seqs:
        print(f"scene_table: no sequences under {args.data}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    every = SceneDetector(SceneRules()).every  # frames from one look to the next
    window = args.lead + every + args.span + args.within
    need = args.spans * window
    found: dict[tuple[str, str], list[int | None]] = defaultdict(list)
    false_events: dict[str, list] = {}
    for n, seq in enumerate(seqs):
        frames = load(seq, args.start, max(need, args.plain), args.scale)
        other = load(seqs[(n + 1) % len(seqs)], args.start, args.span, args.scale)
        # the unaltered sequence, with the model's masks: no scene event expected
        false_events[seq.name] = detect(frames[:args.plain])
        for kind in KINDS:
            for strength in STRENGTHS[kind]:
                for k in range(args.spans):
                    part = frames[k * window:(k + 1) * window]
                    seed = args.seed * 1000 + n * 100 + k
                    start = args.lead + (n * 3 + k * 5) % every  # anywhere between two looks
                    span = Span(kind, strength, start, start + args.span)
                    tampered, _ = tamper(part, [span], seed=seed, other=other)
                    events = detect(tampered)
                    found[kind, strength].append(_delay(events, span, args.within))
                    if found[kind, strength][-1] is None:
                        print(f"{seq.name}: {kind} {strength} from {start} missed; events "
                              f"{[(e.kind, e.start_frame) for e in events]}", file=sys.stderr)
        print(f"{seq.name}: done at {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    table = _table(found, false_events, args)
    print(table)
    print(f"\n{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if args.write_docs:
        from doctables import write_table
        write_table("scene.md", "scene", table)
    return 0


def cost(data: Path, frames: int = 100, rounds: int = 5) -> str:
    """The detectors' cost per frame next to the frame step's, at 640x480 (highway)."""
    seq = data / "highway"
    images = [cv2.resize(f, (640, 480), interpolation=cv2.INTER_LINEAR)
              for f in load(seq, 600, frames, 1.0)]
    step = FrameStep()
    detector = SceneDetector(SceneRules(fps=25))
    for i, f in enumerate(images):  # learn (past the detector's warm-up), and compile
        step(i, f)
        detector.update(i, f)
    best = {"step": float("inf"), "masker": float("inf"), "scene": float("inf")}
    for r in range(1, rounds + 1):
        t = time.perf_counter()
        for i, f in enumerate(images):
            step(r * frames + i, f)
        best["step"] = min(best["step"], (time.perf_counter() - t) / frames)
        t = time.perf_counter()
        for f in images:
            step.masker.apply(f)
        best["masker"] = min(best["masker"], (time.perf_counter() - t) / frames)
        t = time.perf_counter()
        for i, f in enumerate(images):
            detector.update(r * frames + i, f)
        best["scene"] = min(best["scene"], (time.perf_counter() - t) / frames)
    return (f"640x480 BGR: frame step {1e3 * best['step']:.3f} ms/frame, masker alone "
            f"{1e3 * best['masker']:.3f} ms/frame (bench_fps.py's measure), scene detectors "
            f"{1e3 * best['scene']:.3f} ms/frame: {100 * best['scene'] / best['step']:.1f}% "
            f"of the step, {100 * best['scene'] / best['masker']:.1f}% of the masker")


def rain(data: Path, seed: int, learn: int = 200, only: str = "") -> str:
    """What rain and snow over every frame do to a scan's motion events (the default
    ``[scan]``, its pre- and post-roll included), per sequence with ground truth.

    Each sequence is scanned over its ``temporalROI.txt`` (after *learn* frames of
    learning, unaltered), and so is each :data:`SYNTHETIC` scene (a box crossing a
    still picture now and then): dry, then with rain and with snow over every scored
    frame, each without the weather gate (``off``:
    ``scan.weather_blob = 0``) and with the default.  Per run: the motion events; the
    events the weather added (those that overlap no event of the dry run: pieces of
    a dry event, split or joined, are not new); the frames inside
    events where the ground truth has no motion (what a flood of events is made of:
    fewer than 50 moving pixels); and the frame-level
    recall of the events: the share of the ground truth's moving frames (50 pixels or
    more at 255 in ``groundtruth/``, or of the box) that lie inside an event, and that recall over the
    dry run's.  The last lines sum the events added over the sequences, without the
    gate and with it, and the reduction (one less their ratio).
    """
    from bgsub.config import Config
    from bgsub.scan.scanner import scorer_for, weather_gate

    config = Config()
    blob = config.scan.weather_blob
    lines = ["| sequence | weather | weather_blob | motion events | added | event frames "
             "without motion | event recall | of dry |", "|---|---|---|---:|---:|---:|---:|---:|"]
    added: dict[tuple[str, str], int] = defaultdict(int)
    worst: dict[str, float] = {}
    for name, images, truth in _rain_sources(data, learn, only):
        h, w = images[0].shape[:2]
        frames = len(truth)
        dry_spans: list[tuple[int, int]] = []
        dry_recall = None
        for weather in ("none", "rain", "snow", "downpour"):
            shown = images if weather == "none" else tamper(
                images, [Span("weather", weather, learn, learn + frames)], seed=seed)[0]
            # as bgsub scan runs: the raw masks and the blink gate's places kept, and
            # the weather gate set up with weather_blob or 0 (off)
            step = FrameStep(config.model, config.postprocess, keep_raw=True, blinking=True,
                             fps=25)
            scene = SceneDetector(SceneRules(fps=25))
            scorers = {}
            for gated in ((True,) if weather == "none" else (False, True)):
                scorers[gated] = scorer_for(name, config.scan, 25.0, (w, h), first=learn)
                weather_gate(scorers[gated], scene, blob if gated else 0.0, (w, h))
            for i, f in enumerate(shown):
                result = step(i, f)
                scene.write(result)
                for scorer in scorers.values():
                    scorer.write(result)
            for gated, scorer in scorers.items():
                scorer.finish(learn + frames - 1)
                inside = np.zeros(frames, bool)
                for e in scorer.events:
                    inside[e.start_frame - learn:e.end_frame - learn + 1] = True
                recall = float(inside[truth].mean()) if truth.any() else float("nan")
                count = len(scorer.events)
                if weather == "none":
                    dry_spans = [(e.start_frame, e.end_frame) for e in scorer.events]
                    dry_recall = recall
                more = sum(1 for e in scorer.events
                           if not any(e.start_frame <= b and a <= e.end_frame
                                      for a, b in dry_spans))
                of_dry = recall / dry_recall if dry_recall else float("nan")
                if weather != "none":
                    added[weather, "on" if gated else "off"] += more
                    if gated:
                        worst[f"{name} {weather}"] = of_dry
                still = int(np.count_nonzero(inside & ~truth))
                lines.append(f"| {name} | {weather} | {blob if gated else 'off'} | {count} "
                             f"| {more if weather != 'none' else '-'} | {still} "
                             f"| {100 * recall:.1f}% | {100 * of_dry:.1f}% |")
        print(f"{name}: done", file=sys.stderr)
    lines.append("")
    for weather in ("rain", "snow", "downpour"):
        off, on = added[weather, "off"], added[weather, "on"]
        cut = f"{100 * (1 - on / off):.0f}%" if off > 0 else "-"
        lines.append(f"{weather.capitalize()}: {off} motion events added without the gate, "
                     f"{on} with it (reduction {cut}).  ")
    if worst:
        name = min(worst, key=worst.get)
        lines.append(f"Lowest event recall with the gate, relative to dry: "
                     f"{100 * worst[name]:.1f}% ({name}).")
    return "\n".join(lines)


#: the synthetic scenes of ``--rain``: still stretches that a box crosses now and then
#: (a person, a car), without and with waving trees; 48 s at 25 fps after the learning
SYNTHETIC = {
    "synthetic": dict(width=320, height=240, frames=1400, fps=25.0, size=(14, 30),
                      crossings=((300, 360), (620, 660), (900, 990), (1250, 1290))),
    "synthetic-trees": dict(width=320, height=240, frames=1400, fps=25.0, size=(20, 16),
                            waving=70, crossings=((350, 380), (700, 760), (1100, 1130))),
}


def _rain_sources(data: Path, learn: int, only: str):
    """``(name, frames, truth)``: the shared sequences with ground truth, scored over their
    ``temporalROI.txt`` after *learn* frames, and the :data:`SYNTHETIC` scenes; *truth*
    says which scored frames have motion (50 pixels or more)."""
    from bgsub.eval.synthetic import EventSpec, render_events

    wanted = set(only.split(",")) if only else None
    for seq in sorted(p for p in data.iterdir() if (p / "temporalROI.txt").is_file()):
        if wanted is not None and seq.name not in wanted:
            continue
        first, last = (int(x) - 1 for x in (seq / "temporalROI.txt").read_text().split()[:2])
        images = load(seq, first - learn, learn + last - first + 1, 1.0)
        names = sorted((seq / "groundtruth").iterdir())[first:last + 1]
        truth = np.array([cv2.countNonZero((cv2.imread(str(n), cv2.IMREAD_GRAYSCALE) == 255)
                                           .astype(np.uint8)) >= 50 for n in names])
        yield seq.name, images, truth[:len(images) - learn]
    for name, spec in SYNTHETIC.items():
        if wanted is not None and name not in wanted:
            continue
        rendered = list(render_events(EventSpec(**spec)))
        images = [frame for frame, _ in rendered]
        truth = np.array([cv2.countNonZero(mask) >= 50 for _, mask in rendered[learn:]])
        yield name, images, truth


def _delay(events, span: Span, within: int) -> int | None:
    for e in events:
        if e.kind == span.kind and span.start <= e.start_frame <= span.start + within:
            return e.start_frame - span.start
    return None


def _table(found, false_events, args) -> str:
    lines = ["| kind | strength | spans | detected | median delay (frames) | longest |",
             "|---|---|---:|---:|---:|---:|"]
    for kind in KINDS:
        for strength in STRENGTHS[kind]:
            delays = found.get((kind, strength), [])
            hits = [d for d in delays if d is not None]
            pct = 100 * len(hits) / len(delays) if delays else float("nan")
            med = f"{statistics.median(hits):g}" if hits else "-"
            longest = f"{max(hits)}" if hits else "-"
            lines.append(f"| {kind} | {strength} | {len(delays)} | {pct:.0f}% | {med} | "
                         f"{longest} |")
    total = sum(len(v) for v in false_events.values())
    detail = ", ".join(f"{name} {len(v)}" + (f" ({', '.join(sorted({e.kind for e in v}))})"
                                             if v else "")
                       for name, v in false_events.items())
    lines.append("")
    lines.append(f"False scene events on the unaltered sequences ({args.plain} frames each "
                 f"from frame {args.start}): **{total}** ({detail}).")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
