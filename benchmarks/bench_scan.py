"""``bgsub scan`` against DVR-Scan: event quality, speed, many files, memory.

    python benchmarks/bench_scan.py [--data DIR] [--work DIR] [--dvr-scan PATH]
                                    [--only quality,speed,many] [--rounds N] [--json FILE]
                                    [--write-docs]

DVR-Scan is an anchor, not a dependency: install it in an environment of its
own (``python3 -m venv ../anchors && ../anchors/bin/pip install "dvr-scan==1.8.*"
opencv-contrib-python-headless``) and give its ``dvr-scan`` with
``--dvr-scan`` (default: ``$DVR_SCAN``, ``../anchors/bin/dvr-scan`` beside the
checkout, or the one on PATH).  Both tools run as commands in subprocesses,
alternating, so a spell of load on this shared machine hits both; every speed
figure is a ratio within one round, and the median over the rounds is given.

* **quality**: each CDnet sequence of ``--data`` (default
  ``../shared/data``) is encoded to H.264 at 30 fps with ffmpeg.  A frame
  *has motion* when its ground truth has at least 100 pixels of 255; each
  frame of the temporal ROI is scored as "inside an event" against "has
  motion", with no pre- or post-roll for either tool (DVR-Scan ``-so -tb 0
  -tp 0 -l 1``; bgsub ``--set scan.pre_roll=0 --set scan.post_roll=0``, its
  other settings the defaults, and once more with ``min_event_length=1`` as
  DVR-Scan's ``-l 1``).  DVR-Scan is also run with its defaults (``-so``
  alone: pre-roll 1.5 s, post-roll 2 s, events of 0.1 s or more), scored the
  same way.  The sequences include fall (trees waving in front of a road: the
  shared copy's frames 1-3000, scored within its temporal ROI, 1000-3000).
  Prints precision, recall and F per sequence.  Then the same on generated
  scenes with a tree swaying in gusts by 1.5, 3 and 5 pixels
  (:class:`bgsub.eval.synthetic.EventSpec`), where false events come from the
  wind: precision is what matters there.  ``--write-docs`` puts both tables
  into ``docs/accuracy.md`` (its ``table:events`` and ``table:trees``
  markers).
* **speed**: CDnet highway upscaled to 1920x1080 (H.264, ffmpeg's defaults),
  scanned for events only: ``dvr-scan -so`` against ``bgsub scan --scan-only``
  (defaults on both sides), then DVR-Scan ``-df 2`` against ``--downscale 2``;
  and the machine's pure decode rate of the file (PyAV, FFmpeg's threads, no
  conversion: the ceiling of a tool that looks at every frame).  Also F on
  this file with no rolls (bgsub scores it 640x360 by default).
* **many**: a folder of 100 generated 3-second clips (320x240, a third of
  them with something crossing): both tools on the folder (DVR-Scan takes
  them as one joined input), bgsub's per-file overhead (its time on the
  folder against its time on the same frames as one file; and a file's
  fixed cost: the first frame of each of the 100 files, one at a time,
  against one file's), and how busy it keeps the cores (CPU time over wall
  time and cores: on a machine others use too, the share it got).
* **memory**: peak resident memory of each command (``wait4``): the 1080p
  file, and folders of 20 and 100 clips (it must not grow with the files).

Encoded inputs are kept in ``--work`` (default ``$TMPDIR/bgsub-bench-scan``)
and reused by later runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from doctables import write_table

ROOT = Path(__file__).resolve().parents[1]
SEQUENCES = ("pedestrians", "office", "busStation", "highway", "fall")
MOTION_PIXELS = 100  # a frame has motion with at least this many ground-truth pixels of 255
FPS = 30


def run(command: list[str], cwd: Path | None = None) -> tuple[float, int, float, str]:
    """Run *command*; its wall seconds, peak RSS (KiB), CPU seconds and stdout."""
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if process.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(command)} failed with status {process.returncode}")
    return wall, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, text


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def bgsub_scan(*args: str) -> list[str]:
    return [sys.executable, "-m", "bgsub", "scan", *args]


# ---------------------------------------------------------------- quality

def timecode_seconds(text: str) -> float:
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def dvr_inside(output: str, frames: int) -> np.ndarray:
    """DVR-Scan's ``-q`` output (start,end,start,end,... timecodes) as per-frame flags."""
    inside = np.zeros(frames, bool)
    lines = [line for line in output.strip().splitlines() if line.strip()]
    values = [timecode_seconds(v) for v in lines[-1].split(",") if v] if lines else []
    for start, end in zip(values[0::2], values[1::2]):  # the end is exclusive
        inside[round(start * FPS):round(end * FPS)] = True
    return inside


def bgsub_inside(csv_path: Path, frames: int) -> np.ndarray:
    inside = np.zeros(frames, bool)
    for row in csv.DictReader(csv_path.open()):
        inside[int(row["start_frame"]):int(row["end_frame"]) + 1] = True
    return inside


def has_motion(seq: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Per input frame: whether it is scored (temporal ROI) and whether it has motion."""
    import cv2

    first, last = (int(v) for v in (seq / "temporalROI.txt").read_text().split()[:2])
    frames = len(list((seq / "input").glob("in*.jpg")))
    scored = np.zeros(frames, bool)
    motion = np.zeros(frames, bool)
    for number in range(first, last + 1):
        gt = cv2.imread(str(seq / "groundtruth" / f"gt{number:06d}.png"), cv2.IMREAD_GRAYSCALE)
        scored[number - 1] = True
        motion[number - 1] = int((gt == 255).sum()) >= MOTION_PIXELS
    return scored, motion, frames


def f_measure(inside: np.ndarray, scored: np.ndarray, motion: np.ndarray) -> dict:
    tp = int((inside & motion & scored).sum())
    fp = int((inside & ~motion & scored).sum())
    fn = int((~inside & motion & scored).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f": f}


NO_ROLLS = ("--set", "scan.pre_roll=0", "--set", "scan.post_roll=0")


def encode_sequence(seq: Path, target: Path) -> Path:
    if not target.exists():
        ffmpeg("-framerate", str(FPS), "-i", str(seq / "input" / "in%06d.jpg"), "-c:v",
               "libx264", "-pix_fmt", "yuv420p", str(target))
    return target


def quality(data: Path, work: Path, dvr: str) -> tuple[dict, str]:
    """Frame-level event P / R / F of both tools on the CDnet sequences; the Markdown table."""
    results = {}
    lines = ["| sequence | frames scored | with motion | DVR-Scan P / R / F "
             "| DVR-Scan, its defaults: F | bgsub P / R / F | bgsub, `min_event_length=1` F |",
             "|---|---|---|---|---|---|---|"]
    print("\n## Event quality (frame-level, no rolls)\n")
    print("\n".join(lines), flush=True)
    for name in SEQUENCES:
        seq = data / name
        if not (seq / "temporalROI.txt").exists():
            print(f"| {name} | (not found in {data}) | | | | | |")
            continue
        video = encode_sequence(seq, work / f"{name}.mp4")
        scored, motion, frames = has_motion(seq)
        _, _, _, text = run([dvr, "-i", str(video), "-so", "-tb", "0", "-tp", "0", "-l", "1",
                             "-q"])
        dvr_score = f_measure(dvr_inside(text, frames), scored, motion)
        # the command form of issue 25's figures: DVR-Scan's defaults (pre-roll 1.5 s,
        # post-roll 2 s, events of 0.1 s or more) against bgsub with no rolls
        _, _, _, text = run([dvr, "-i", str(video), "-so", "-q"])
        dvr_defaults = f_measure(dvr_inside(text, frames), scored, motion)
        out = work / f"out-{name}"
        scores = {}
        for label, extra in (("bgsub", ()), ("bgsub_l1", ("--set", "scan.min_event_length=1"))):
            shutil.rmtree(out, ignore_errors=True)
            run(bgsub_scan(str(video), "--scan-only", "--quiet", "--output-dir", str(out),
                           *NO_ROLLS, *extra))
            scores[label] = f_measure(bgsub_inside(out / "events.csv", frames), scored, motion)
        results[name] = {"frames_scored": int(scored.sum()), "with_motion": int(motion.sum()),
                         "dvr_scan": dvr_score, "dvr_scan_defaults": dvr_defaults, **scores}
        lines.append(quality_row(name, results[name]))
        print(lines[-1], flush=True)
    return results, "\n".join(lines)


def quality_row(name: str, result: dict) -> str:
    """One sequence's line of the events table (bgsub's F in bold)."""
    def prf(s, bold=False):
        f = f"**{s['f']:.3f}**" if bold else f"{s['f']:.3f}"
        return f"{s['precision']:.3f} / {s['recall']:.3f} / {f}"
    return (f"| {name} | {result['frames_scored']} | {result['with_motion']} | "
            f"{prf(result['dvr_scan'])} | {result['dvr_scan_defaults']['f']:.3f} | "
            f"{prf(result['bgsub'], bold=True)} | {result['bgsub_l1']['f']:.3f} |")


def trees(work: Path, dvr: str) -> tuple[dict, str]:
    """Event precision with a tree swaying in gusts (a generated stand-in for such footage)."""
    from bgsub.eval.synthetic import EventSpec, render_events, write_events_video

    results = {}
    lines = ["| sway | frames scored | with motion | DVR-Scan P / R / F | bgsub P / R / F | "
             "bgsub, `scan.flicker = 0`: P / R / F |",
             "|---|---|---|---|---|---|"]
    print("\n## A tree in the wind (generated: 320x240, 900 frames, two people crossing)\n")
    print("\n".join(lines), flush=True)
    for sway in (1.5, 3.0, 5.0):
        spec = EventSpec(width=320, height=240, frames=900, crossings=((200, 260), (500, 560)),
                         size=(30, 60), waving=108, sway=sway, noise=2.5, seed=3)
        video = work / f"tree{sway:g}.mp4"
        if not video.exists():
            write_events_video(str(video), spec, gop=250)
        counts = np.array([int((gt == 255).sum()) for _, gt in render_events(spec)])
        scored = np.arange(spec.frames) >= 100  # after the models' first seconds
        motion = counts >= MOTION_PIXELS
        _, _, _, text = run([dvr, "-i", str(video), "-so", "-tb", "0", "-tp", "0", "-l", "1",
                             "-q"])
        row = {"dvr_scan": f_measure(dvr_inside(text, spec.frames), scored, motion)}
        out = work / "out-trees"
        for label, extra in (("bgsub", ()), ("flicker_off", ("--set", "scan.flicker=0"))):
            shutil.rmtree(out, ignore_errors=True)
            run(bgsub_scan(str(video), "--scan-only", "--quiet", "--output-dir", str(out),
                           *NO_ROLLS, *extra))
            row[label] = f_measure(bgsub_inside(out / "events.csv", spec.frames), scored, motion)
        results[f"sway {sway:g}"] = row

        def prf(s):
            return f"{s['precision']:.2f} / {s['recall']:.2f} / {s['f']:.3f}"
        lines.append(f"| {sway:g} px | {int(scored.sum())} | {int((motion & scored).sum())} | "
                     f"{prf(row['dvr_scan'])} | {prf(row['bgsub'])} | {prf(row['flicker_off'])} |")
        print(lines[-1], flush=True)
    return results, "\n".join(lines)


# ---------------------------------------------------------------- speed

def decode_rate(video: Path) -> float:
    """Frames per second of decoding alone (FFmpeg's threads, no conversion)."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = time.perf_counter()
        frames = sum(1 for _ in container.decode(stream))
    return frames / (time.perf_counter() - start)


def make_1080p(data: Path, work: Path) -> Path:
    target = work / "highway1080.mp4"
    if not target.exists():
        print(f"(encoding {target}: a few minutes, once)", flush=True)
        ffmpeg("-framerate", str(FPS), "-i", str(data / "highway" / "input" / "in%06d.jpg"),
               "-vf", "scale=1920:1080", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(target))
    return target


def speed(data: Path, work: Path, dvr: str, rounds: int) -> dict:
    video = make_1080p(data, work)
    with av.open(str(video)) as container:
        frames = container.streams.video[0].frames
    out = work / "out-speed"
    pairs = {
        "defaults": ([dvr, "-i", str(video), "-so", "-q"],
                     bgsub_scan(str(video), "--scan-only", "--quiet", "--output-dir", str(out))),
        "downscale 2": ([dvr, "-i", str(video), "-so", "-q", "-df", "2"],
                        bgsub_scan(str(video), "--scan-only", "--quiet", "--output-dir",
                                   str(out), "--downscale", "2")),
    }
    rows: dict[str, list] = {key: [] for key in pairs}
    decode = []
    for r in range(rounds):
        decode.append(decode_rate(video))
        for key, (dvr_cmd, bgsub_cmd) in pairs.items():
            order = [("dvr", dvr_cmd), ("bgsub", bgsub_cmd)]
            if r % 2:
                order.reverse()
            times = {}
            for who, command in order:
                shutil.rmtree(out, ignore_errors=True)
                times[who] = run(command)
            rows[key].append(times)
            print(f"round {r + 1} {key}: DVR-Scan {frames / times['dvr'][0]:.1f} fps, bgsub "
                  f"{frames / times['bgsub'][0]:.1f} fps, ratio "
                  f"{times['dvr'][0] / times['bgsub'][0]:.2f}", flush=True)
        decode.append(decode_rate(video))
    result = {"frames": frames, "decode_fps": statistics.median(decode), "pairs": {}}
    print(f"\n## Speed: {video.name}, {frames} frames 1920x1080, {rounds} rounds (median)\n")
    print("| settings | DVR-Scan fps | bgsub fps | bgsub / DVR-Scan | bgsub / pure decode | "
          "peak RSS DVR-Scan | peak RSS bgsub |")
    print("|---|---|---|---|---|---|---|")
    for key, times in rows.items():
        dvr_fps = statistics.median(frames / t["dvr"][0] for t in times)
        bgsub_fps = statistics.median(frames / t["bgsub"][0] for t in times)
        ratio = statistics.median(t["dvr"][0] / t["bgsub"][0] for t in times)
        share = statistics.median(frames / t["bgsub"][0] / d for t, d in
                                  zip(times, decode[1::2]))
        rss = (max(t["dvr"][1] for t in times) / 1024, max(t["bgsub"][1] for t in times) / 1024)
        result["pairs"][key] = {"dvr_fps": dvr_fps, "bgsub_fps": bgsub_fps, "ratio": ratio,
                                "share_of_decode": share, "dvr_rss_mib": rss[0],
                                "bgsub_rss_mib": rss[1]}
        print(f"| {key} | {dvr_fps:.1f} | {bgsub_fps:.1f} | **{ratio:.2f}x** | {100 * share:.0f}% "
              f"| {rss[0]:.0f} MiB | {rss[1]:.0f} MiB |")
    result["load_average"] = os.getloadavg()[1]
    print(f"\nmachine load average over the last 5 minutes: {result['load_average']:.1f} "
          f"on {os.cpu_count()} CPUs (other work on the machine slows both tools)")
    print(f"pure decode (PyAV, FFmpeg's threads, no conversion): "
          f"{result['decode_fps']:.1f} fps (median)")
    # F on the 1080p file (scored 640x360 by default) against the original's
    seq = data / "highway"
    scored, motion, n = has_motion(seq)
    shutil.rmtree(out, ignore_errors=True)
    run(bgsub_scan(str(video), "--scan-only", "--quiet", "--output-dir", str(out), *NO_ROLLS))
    result["f_1080p"] = f_measure(bgsub_inside(out / "events.csv", n), scored, motion)
    print(f"bgsub F on the 1080p file, no rolls: {result['f_1080p']['f']:.3f}")
    return result


# ---------------------------------------------------------------- many files

def make_clips(work: Path, count: int) -> Path:
    from bgsub.eval.synthetic import EventSpec, write_events_video

    folder = work / f"clips{count}"
    if len(list(folder.glob("*.mp4"))) != count:
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            crossings = ((20 + i % 40, 59 + i % 40),) if i % 3 == 0 else ()
            write_events_video(str(folder / f"clip{i:03d}.mp4"), EventSpec(
                width=320, height=240, frames=90, seed=i, crossings=crossings))
    return folder


def joined(folder: Path, work: Path) -> Path:
    """The clips of *folder* as one file (stream copy): the same frames, one file."""
    target = work / f"{folder.name}-joined.mp4"
    if not target.exists():
        listing = work / f"{folder.name}.txt"
        listing.write_text("".join(f"file '{p}'\n" for p in sorted(folder.glob("*.mp4"))))
        ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(target))
    return target


def many(work: Path, dvr: str, rounds: int) -> dict:
    folder = make_clips(work, 100)
    small = make_clips(work, 20)
    single = joined(folder, work)
    cpus = os.cpu_count() or 1
    out = work / "out-many"
    samples: dict[str, list] = {"folder": [], "single": [], "dvr": [], "folder20": [],
                                "first_frames": [], "one_first_frame": []}
    commands = {
        "folder": bgsub_scan(str(folder), "--scan-only", "--quiet", "--output-dir", str(out)),
        "single": bgsub_scan(str(single), "--scan-only", "--quiet", "--output-dir", str(out)),
        "dvr": [dvr, "-i", *map(str, sorted(folder.glob("*.mp4"))), "-so", "-q"],
        "folder20": bgsub_scan(str(small), "--scan-only", "--quiet", "--output-dir", str(out)),
        # the fixed cost of a file: each clip's first frame only, one file at a time
        "first_frames": bgsub_scan(str(folder), "--scan-only", "--quiet", "--output-dir",
                                   str(out), "--end", "1", "--jobs", "1"),
        "one_first_frame": bgsub_scan(str(sorted(folder.glob("*.mp4"))[0]), "--scan-only",
                                      "--quiet", "--output-dir", str(out), "--end", "1"),
    }
    for r in range(rounds):
        for key, command in (commands.items() if r % 2 == 0 else reversed(commands.items())):
            shutil.rmtree(out, ignore_errors=True)
            samples[key].append(run(command))
    median = {k: statistics.median(s[0] for s in v) for k, v in samples.items()}
    frames = 100 * 90
    overhead = statistics.median((f[0] - s[0]) / 100 for f, s in zip(samples["folder"],
                                                                        samples["single"]))
    busy = statistics.median(f[2] / f[0] / cpus for f in samples["folder"])
    fixed = statistics.median((a[0] - b[0]) / 99 for a, b in zip(samples["first_frames"],
                                                                 samples["one_first_frame"]))
    result = {
        "files": 100, "frames": frames,
        "bgsub_folder_s": median["folder"], "bgsub_one_file_s": median["single"],
        "dvr_scan_folder_s": median["dvr"], "per_file_overhead_ms": 1000 * overhead,
        "per_file_fixed_ms": 1000 * fixed,
        "cores_busy": busy,
        "bgsub_rss_mib_100": max(s[1] for s in samples["folder"]) / 1024,
        "bgsub_rss_mib_20": max(s[1] for s in samples["folder20"]) / 1024,
        "dvr_rss_mib": max(s[1] for s in samples["dvr"]) / 1024,
        "ratio": statistics.median(d[0] / f[0] for d, f in zip(samples["dvr"],
                                                               samples["folder"])),
    }
    result["load_average"] = os.getloadavg()[1]
    print(f"\n## Many files: 100 clips of 90 frames (320x240), {rounds} rounds (median)\n")
    print(f"bgsub on the folder {median['folder']:.2f} s ({frames / median['folder']:.0f} fps), "
          f"on the same frames as one file {median['single']:.2f} s: "
          f"{result['per_file_overhead_ms']:.1f} ms per file; cores busy "
          f"{100 * busy:.0f}% of {cpus}")
    print(f"a file's fixed cost (open, model, threads, record; its first frame only, one "
          f"file at a time): {result['per_file_fixed_ms']:.1f} ms")
    print(f"DVR-Scan on the folder (joined input) {median['dvr']:.2f} s: bgsub "
          f"{result['ratio']:.2f}x")
    print(f"peak RSS: bgsub 100 clips {result['bgsub_rss_mib_100']:.0f} MiB, 20 clips "
          f"{result['bgsub_rss_mib_20']:.0f} MiB; DVR-Scan {result['dvr_rss_mib']:.0f} MiB")
    print(f"machine load average over the last 5 minutes: {result['load_average']:.1f} on "
          f"{cpus} CPUs: 'cores busy' is the share of the cores this scan got, not of what "
          "it could use")
    return result


def find_dvr_scan(given: str | None) -> str:
    candidates = [given, os.environ.get("DVR_SCAN"),
                  str(ROOT.parent / "anchors" / "bin" / "dvr-scan"), shutil.which("dvr-scan")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("DVR-Scan not found: install it in an environment of its own and give "
                     "--dvr-scan PATH (see this file's docstring)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--work", type=Path,
                        default=Path(tempfile.gettempdir()) / "bgsub-bench-scan")
    parser.add_argument("--dvr-scan")
    parser.add_argument("--only", default="quality,speed,many")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--write-docs", action="store_true",
                        help="put the quality tables into docs/accuracy.md")
    args = parser.parse_args()
    dvr = find_dvr_scan(args.dvr_scan)
    args.work.mkdir(parents=True, exist_ok=True)
    sections = set(args.only.split(","))
    version = subprocess.run([dvr, "--version"], capture_output=True, text=True)
    results = {"dvr_scan": (version.stdout.strip() or version.stderr.strip()).split("\n")[0]}
    if "quality" in sections:
        results["quality"], events = quality(args.data, args.work, dvr)
        if args.write_docs:
            print(f"wrote {write_table('accuracy.md', 'events', events)}", file=sys.stderr)
        results["trees"], swaying = trees(args.work, dvr)
        if args.write_docs:
            print(f"wrote {write_table('accuracy.md', 'trees', swaying)}", file=sys.stderr)
    if "speed" in sections:
        results["speed"] = speed(args.data, args.work, dvr, args.rounds)
    if "many" in sections:
        results["many"] = many(args.work, dvr, args.rounds)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
