"""The cluster scan on this machine: 1 vs 2 workers, a long file in stretches vs whole.

Run: python benchmarks/bench_distributed.py [--rounds 3] [--json out.json]

On LocalClusters of worker processes (bgsub.scan.cluster.local_cluster, as
``bgsub scan --workers N`` starts them), each started and warmed (the
kernels loaded in every worker) before it is timed:

* a folder of generated 640x360 clips with 1 worker (2 masker threads) and
  with 2 workers (1 thread each): the throughput ratio;
* one long generated file scanned whole and in stretches (chunk_minutes),
  on 2 workers: the ratio; and on 1 worker, where the stretches run one
  after the other, what the stretches cost beyond their frames: the
  warm-up's frames (masked, not scored); and a task's fixed cost (opening
  the file, a new model, the result's round trip), from tasks of one frame;
* Dask's own cost per task: empty tasks submitted and gathered.

Times are medians over the rounds; the machine may be shared (the load
average is printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distributed import Client  # noqa: E402

from bgsub.config import Config, replace_section  # noqa: E402
from bgsub.scan.cluster import local_cluster, plan_chunks, scan_files  # noqa: E402
from bgsub.scan.scanner import ScanOptions  # noqa: E402
from bgsub.eval.synthetic import EventSpec, write_events_video  # noqa: E402


def _noop(i):
    return i


def timed(client, paths, config):
    began = time.perf_counter()
    results = scan_files(client, paths, config)
    return time.perf_counter() - began, results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--clip-frames", type=int, default=240)
    p.add_argument("--long-frames", type=int, default=1800)
    p.add_argument("--chunks", type=int, default=4)
    p.add_argument("--warmup", default="5s", help="scan.chunk_warmup for the long file")
    p.add_argument("--json", help="write the figures here too")
    args = p.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    size = dict(width=640, height=360, size=(72, 96))
    clips = []
    for i in range(args.clips):
        path = folder / f"clip{i:02d}.mp4"
        crossings = ((40, 100),) if i % 2 == 0 else ()
        write_events_video(str(path), EventSpec(frames=args.clip_frames, crossings=crossings,
                                                seed=i, **size))
        clips.append(path)
    long = folder / "long.mp4"
    n = args.long_frames
    write_events_video(str(long), EventSpec(frames=n, crossings=tuple(
        (a, a + 60) for a in range(100, n - 100, 400)), **size))
    config = Config()
    chunked = dataclasses.replace(config, scan=replace_section(
        config.scan, chunk_minutes=n / args.chunks / 30 / 60 + 1e-9, chunk_warmup=args.warmup))
    plan = plan_chunks(long, chunked, 30.0, n)
    warm_frames = sum(c.warmup for c in plan)
    print(f"clips: {args.clips} x {args.clip_frames} frames 640x360; long file: {n} frames "
          f"in {len(plan)} stretches, {warm_frames} warm-up frames in all", flush=True)

    times: dict[str, list[float]] = {}
    start_times = []
    for _ in range(args.rounds):
        for workers in (1, 2):
            began = time.perf_counter()
            with local_cluster(workers) as cluster, Client(cluster,
                                                           set_as_default=False) as client:
                scan_files(client, clips[:workers], config)  # every worker loads its kernels
                start_times.append(time.perf_counter() - began)
                times.setdefault(f"folder_{workers}", []).append(timed(client, clips, config)[0])
                times.setdefault(f"whole_{workers}", []).append(timed(client, [long], config)[0])
                times.setdefault(f"chunks_{workers}", []).append(
                    timed(client, [long], chunked)[0])
                if workers == 1:  # tasks of one frame, one after the other: a task's fixed cost
                    began = time.perf_counter()
                    scan_files(client, clips * 2, config, options=ScanOptions(end=1))
                    times.setdefault("one_frame_task", []).append(
                        (time.perf_counter() - began) / (2 * len(clips)))
                if workers == 2:
                    futures = client.map(_noop, range(2000), pure=False)
                    began = time.perf_counter()
                    futures = client.map(_noop, range(2000, 4000), pure=False)
                    client.gather(futures)
                    times.setdefault("noop", []).append((time.perf_counter() - began) / 2000)
        print({k: round(v[-1], 4) for k, v in times.items()}, flush=True)
    t = {k: statistics.median(v) for k, v in times.items()}
    folder_frames = args.clips * args.clip_frames
    per_frame_1 = t["whole_1"] / n  # one task at a time, the machine's cores
    figures = {
        "load_average": os.getloadavg()[0],
        "cluster_start_s": statistics.median(start_times),
        "folder_fps_1_worker": folder_frames / t["folder_1"],
        "folder_fps_2_workers": folder_frames / t["folder_2"],
        "folder_ratio_2_over_1": t["folder_1"] / t["folder_2"],
        "long_whole_fps_2_workers": n / t["whole_2"],
        "long_chunks_fps_2_workers": n / t["chunks_2"],
        "long_ratio_chunks_over_whole": t["whole_2"] / t["chunks_2"],
        "ms_per_frame_1_worker": per_frame_1 * 1000,
        "warmup_share": warm_frames / n,
        "chunks_over_whole_1_worker": t["chunks_1"] / t["whole_1"],
        "warmup_s_per_stretch": warm_frames / max(1, len(plan) - 1) * per_frame_1,
        "fixed_s_per_task": t["one_frame_task"],
        "dask_ms_per_empty_task": t["noop"] * 1000,
    }
    for key, value in figures.items():
        print(f"{key}: {value:.4g}")
    if args.json:
        Path(args.json).write_text(json.dumps({"times": times, "figures": figures}, indent=1))


if __name__ == "__main__":
    main()
