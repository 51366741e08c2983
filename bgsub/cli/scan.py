"""``bgsub scan``: find the motion events in recorded video files.

Each file goes through :func:`bgsub.scan.scanner.scan_file` (the shared frame step
in :func:`~bgsub.io.pipeline.run_pipeline`, then the event detector), several
files at once when there are several and cores to spare.  As each file is
done, its thumbnails (written as its events complete) and clips
(:mod:`bgsub.scan.clips`) are followed by its record (:mod:`bgsub.scan.tables`),
atomically: a run started again skips the files already done.  At the end
the run's events table and HTML report (:mod:`bgsub.scan.report`) cover every
file, those of earlier runs included.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import dataclasses
import errno
import hashlib
import logging
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numba
from tqdm import tqdm

from ..errors import BgsubError
from ..files import SinkError, atomic_path, check_not_inputs
from ..files import identity as file_identity
from ..text import one_line
from ..io.avsource import VideoFile
from ..scan.clips import ClipError, clip_extension, cut_clip, thumbnail
from ..config import Config, apply_overrides, replace_section
from ..io.progress import Progress
from ..regions import RegionError, outlines, parse_polygon
from ..scan.report import write_report
from ..scan.scanner import (ScanOptions, ScanResult, decode_threads, find_videos, region_of,
                            scan_file)
from ..io.sinks import check_output_dir, check_writable_file
from ..io.sources import SourceError
from ..model.step import FrameStep
from ..scan.tables import (failure_record, identity, is_done, read_record, record_of,
                      settings_digest, write_events, write_record)
from ..timecode import DURATION_FORMS, DurationError, parse_duration
from .common import UsageError, config_of, run_command, stop_on_signals

__all__ = ["add_parser", "main", "EXIT_FAILED"]

logger = logging.getLogger("bgsub")

#: some files could not be scanned (the others were)
EXIT_FAILED = 3

DESCRIPTION = ("Find the motion events in recorded video: files, folders (searched "
               "recursively) or glob patterns.  Writes an events table (CSV and JSON), a clip "
               "and a thumbnail per event and an HTML report; a run started again with the "
               "same output folder skips the files already done.")
EPILOG = ("Durations (--start, --end, scan.pre_roll, ...) are frames (45), seconds (1.5s) or "
          "timecodes (00:00:01.5).  The detector's settings are the [scan] section of "
          "config.toml (--set scan.threshold=0.004).  Exit status: 0 every file scanned, 3 some "
          "could not be read (the others were), 2 bad input, 130 SIGINT, 143 SIGTERM.")

# the flags that set a [scan] key
_SCAN_FLAGS = (("downscale", "--downscale"), ("frame_skip", "--frame-skip"),
               ("jobs", "--jobs"))


def add_parser(commands, parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = commands.add_parser("scan", parents=[parent], help="find the motion events in "
                            "recorded video files", description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="video file, folder (searched recursively) or glob pattern")
    p.add_argument("--output-dir", metavar="DIR",
                   help="where clips, thumbnails, records, the table and the report go "
                        "(default: clips, thumbnails and records next to each input, the "
                        "table and the report in the current folder)")
    p.add_argument("--events", metavar="FILE.csv",
                   help="the events table (default: events.csv); the JSON goes beside it "
                        "(FILE.json)")
    p.add_argument("--report", metavar="FILE.html", help="the HTML report (default: "
                   "report.html)")
    p.add_argument("--scan-only", action="store_true",
                   help="write the tables only: no clips, thumbnails or report")
    p.add_argument("--region", action="append", metavar="X0,Y0,X1,Y1,...",
                   help="score only inside this polygon (source pixels; repeatable: their "
                        "union); replaces scan.regions")
    p.add_argument("--exclude", action="append", metavar="X0,Y0,X1,Y1,...",
                   help="do not score inside this polygon (repeatable); replaces scan.exclude")
    p.add_argument("--region-mask", metavar="IMAGE",
                   help="score only where this image is white (replaces scan.region_mask)")
    p.add_argument("--downscale", type=int, metavar="N",
                   help="score frames N times smaller each way (0: auto, at most 640 wide)")
    p.add_argument("--frame-skip", type=int, metavar="N",
                   help="skip N frames after each scored frame")
    p.add_argument("--start", metavar="TIME", help="start this far into each file")
    p.add_argument("--end", metavar="TIME", help="stop this far into each file")
    p.add_argument("--continuous", action="store_true",
                   help="the inputs, in order, are one camera's consecutive recordings: the "
                        "model carries on from file to file")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="files scanned at once (default scan.jobs: one per CPU when there are "
                        "several files)")
    cluster = p.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=int, nargs="?", const=0, metavar="N",
                         help="scan in N worker processes of a Dask cluster on this machine "
                              "(needs bgsub[dask]; without N: as many as keep the cores busy); "
                              "long files are cut into scan.chunk_minutes stretches")
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="scan on the Dask cluster whose scheduler is at ADDRESS "
                              "(tcp://HOST:8786; needs bgsub[dask]); its workers must see the "
                              "files at the same paths")
    p.set_defaults(run=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Run the parsed ``bgsub scan`` arguments; return the exit status."""
    # --quiet: the events on stdout and the errors, nothing else
    return run_command(args, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    with stop_on_signals() as stop:
        code = _scan(args, stop)
    if stop.signum is not None:
        logger.info("stopped by %s; the files done are recorded, a new run carries on",
                    signal.Signals(stop.signum).name)
        return 128 + stop.signum
    return code


def _config(args: argparse.Namespace) -> Config:
    """--config and --set, then the flags that set [scan] keys."""
    config = config_of(args)
    for key, flag in _SCAN_FLAGS:
        value = getattr(args, key)
        if value is not None:
            config = apply_overrides(config, [f"scan.{key}={value}"], flag)
    changes: dict[str, Any] = {}
    if args.region:
        changes["regions"] = tuple(parse_polygon(t, "--region") for t in args.region)
    if args.exclude:
        changes["exclude"] = tuple(parse_polygon(t, "--exclude") for t in args.exclude)
    if args.region_mask is not None:
        changes["region_mask"] = args.region_mask
    if changes:
        config = dataclasses.replace(config, scan=replace_section(config.scan, **changes))
    if config.scan.region_mask:
        region_of(config.scan).read_mask_image()  # unreadable: an error before any scan
    return config


def _options(args: argparse.Namespace) -> ScanOptions:
    """--start and --end, read once: the scan takes them as Duration values."""
    bounds = {}
    for name, flag in (("start", "--start"), ("end", "--end")):
        value = getattr(args, name)
        if value is not None:
            try:
                bounds[name] = parse_duration(value, flag)
            except DurationError:
                raise UsageError(f"{flag} {value!r}: expected {DURATION_FORMS}") from None
    start, end = bounds.get("start"), bounds.get("end")
    if end is not None:
        if not (end.count or end.seconds):
            raise UsageError(f"--end {args.end!r}: nothing would be scanned (expected a time "
                             "after the start)")
        # frames against frames, seconds against seconds; mixed, each file's rate decides
        before = start is not None and (
            (end.count is not None and start.count is not None and end.count <= start.count)
            or (end.seconds is not None and start.seconds is not None
                and end.seconds <= start.seconds))
        if before:
            raise UsageError(f"--end {args.end!r} is not after --start {args.start!r}: "
                             "nothing would be scanned")
    return ScanOptions(**bounds)


@dataclass
class _File:
    """One input file: where its outputs go and, once known, its record."""

    path: Path
    name: str
    folder: Path
    record: dict[str, Any] | None = None
    resumed: bool = False
    frames: int | None = None  # frames in it, when known from its header
    fps: float | None = None  # its rate, when its header could be read
    size: tuple[int, int] | None = None  # its frames' width and height, once known
    written: list[Path] = field(default_factory=list)  # its thumbnails and clips so far

    @property
    def record_path(self) -> Path:
        return self.folder / f"{self.name}.scan.json"


_NAME_BYTES = 200  # the longest output name stem, in UTF-8 bytes


def _visible(stem: str) -> str:
    """*stem* with a leading ``.`` made ``_``: outputs are never hidden files.

    ``..mp4`` gave ``..event001.jpg``, hidden, and named like the partial
    files (``.NAME.bgsub-partial.EXT``) that bgsub writes and removes.
    """
    return "_" + stem[1:] if stem.startswith(".") else stem


def _names(paths: list[Path], folders: list[Path]) -> list[str]:
    """A name per file, unique within its output folder: the stem, else more of the path.

    A stem beginning with ``.`` begins with ``_`` instead (:func:`_visible`);
    should that make it another file's name, both take more of their path.
    """
    names = [_visible(p.stem) for p in paths]
    groups: dict[tuple[Path, str], list[int]] = {}
    for i, (folder, name) in enumerate(zip(folders, names)):
        groups.setdefault((folder.resolve(), name.lower()), []).append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        for i in members:  # cam1/0001.mp4 and cam2/0001.mp4 become cam1_0001, cam2_0001
            parent = paths[i].resolve().parent.name
            digest = hashlib.sha1(str(paths[i].resolve()).encode()).hexdigest()[:6]
            names[i] = f"{parent}_{paths[i].stem}_{digest}" if parent else \
                _visible(f"{paths[i].stem}_{digest}")
    for i, name in enumerate(names):
        # the outputs add up to about 30 bytes (".NAME.event001.bgsub-partial.webm"):
        # a name near NAME_MAX (255 bytes) is cut, made unique again by its path's digest
        if len(os.fsencode(name)) > _NAME_BYTES:
            digest = hashlib.sha1(os.fsencode(paths[i].resolve())).hexdigest()[:8]
            cut = name[:_NAME_BYTES - 9]
            while len(os.fsencode(cut)) > _NAME_BYTES - 9:  # whole characters only
                cut = cut[:-1]
            names[i] = f"{cut}_{digest}"
    return names


def _files(args: argparse.Namespace) -> list[_File]:
    if not args.inputs:
        raise UsageError("no input given: expected video files, folders or glob patterns "
                         "(see bgsub scan --help)")
    for text in args.inputs:
        if not Path(text).exists() and not any(c in text for c in "*?["):
            raise UsageError(f"{text}: no such file or folder (expected a video file, a folder "
                             "or a glob pattern)")
    paths, empty = find_videos(args.inputs)
    if not paths:
        raise UsageError(f"no video files found in {', '.join(args.inputs)} (looked for "
                         ".mp4, .mkv, .avi, .mov, .ts and other video extensions)")
    for text in empty:
        logger.warning("%s: no video files found there", text)
    if args.output_dir is not None:  # an empty name is an error, not "beside the inputs"
        root = check_output_dir(args.output_dir, "--output-dir")
        folders = [root] * len(paths)
    else:
        folders = [p.parent for p in paths]
        for folder in sorted(set(folders)):
            if not os.access(folder, os.W_OK):
                raise UsageError(f"{folder}: cannot write the outputs next to the inputs there "
                                 "(permission denied); give --output-dir DIR")
    return [_File(p, n, f) for p, n, f in zip(paths, _names(paths, folders), folders)]


class _RunProgress:
    """The run's bar: frames of every file, with the events found and the files done."""

    def __init__(self, files: list[_File], quiet: bool) -> None:
        known = [f.frames for f in files if f.frames]
        self.bar = Progress(sum(known) or None, quiet=quiet, desc="scan")
        self.lock = threading.Lock()
        self.done = 0  # frames of the files finished
        self.current: dict[int, int] = {}
        self.events = 0
        self.files_done = 0
        self.files = len(files)
        self.retired: set = set()  # the keys of files done (a cluster's late reports)

    def for_file(self, key: int, step: int) -> _FileProgress:
        return _FileProgress(self, key, step)

    def advance(self, key: int | str, frames: int) -> None:
        with self.lock:
            if key in self.retired:
                return
            self.current[key] = frames
            self.bar.update(self.done + sum(self.current.values()))

    def finished(self, key: int, frames: int, events: int, tasks: tuple[str, ...] = ()
                 ) -> None:
        """A file is done; *tasks*: the keys its stretches reported their frames under."""
        with self.lock:
            for done in (key, *tasks):
                self.current.pop(done, None)
                self.retired.add(done)
            self.done += frames
            self.events += events
            self.files_done += 1
            self.bar.note(f"{self.files_done}/{self.files} files, {self.events} events")
            self.bar.update(self.done + sum(self.current.values()))

    def close(self) -> None:
        self.bar.close()


@dataclass
class _FileProgress:
    run: _RunProgress
    key: int
    step: int

    def update(self, done: int) -> None:
        self.run.advance(self.key, done * self.step)

    def close(self) -> None:
        pass


@dataclass
class _Plan:
    """What every file's scan shares."""

    config: Config
    options: ScanOptions
    settings: str
    scan_only: bool
    stop: threading.Event
    progress: _RunProgress
    step: FrameStep | None = None  # --continuous: one model for every file
    inputs: set[Path] = field(default_factory=set)


def _scan(args: argparse.Namespace, stop) -> int:
    config = _config(args)
    options = _options(args)
    on_cluster = args.workers is not None or args.scheduler is not None
    if on_cluster and args.continuous:
        raise UsageError("--continuous carries one model from file to file in order: it "
                         "cannot be shared out over a cluster (--workers, --scheduler)")
    if on_cluster and args.jobs is not None:
        raise UsageError("--jobs shares out a scan in this process; on a cluster give "
                         "--workers N")
    if args.workers is not None and not 0 <= args.workers <= 1024:
        raise UsageError(f"--workers must be in 1..1024 (without N: auto), got {args.workers}")
    files = _files(args)
    base = Path(args.output_dir) if args.output_dir else Path(".")
    events_path = check_writable_file(base / "events.csv" if args.events is None
                                      else args.events, "--events")
    if events_path.suffix.lower() != ".csv":
        raise UsageError(f"--events {events_path}: expected a .csv file name (the JSON goes "
                         "beside it)")
    report_path = None
    if not args.scan_only:
        report_path = check_writable_file(base / "report.html" if args.report is None
                                          else args.report, "--report")
    _check_outputs(files, events_path, report_path)
    cpus = numba.config.NUMBA_NUM_THREADS
    settings = settings_digest(config, options, {"scan_only": args.scan_only,
                                                 "continuous": args.continuous})
    todo = []
    for file in files:
        record = read_record(file.record_path)
        if is_done(record, identity(file.path), settings, file.folder):
            file.record, file.resumed = record, True
        else:
            todo.append(file)
    if len(files) > len(todo):
        logger.info("%d of %d files already scanned with these settings (their records are "
                    "in place): skipped", len(files) - len(todo), len(files))
    if on_cluster:
        return _scan_on_cluster(args, files, todo, config, options, settings, stop,
                                events_path, report_path)
    jobs = 1 if args.continuous else config.scan.jobs or min(cpus, max(1, len(todo)))
    jobs = min(jobs, max(1, len(todo)))
    threads = max(1, cpus // jobs)
    # FFmpeg's decoding threads do not follow the jobs: a damaged frame's repair (error
    # concealment) depends on them, and a file's results must not depend on its neighbours
    options = dataclasses.replace(options, threads=threads, decode_threads=decode_threads())
    for file in todo:
        _probe(file)
    progress = _RunProgress(todo, args.quiet)
    # --continuous: one model for every file, in order
    step = FrameStep.from_config(config, threads=threads, keep_raw=config.scan.flicker > 0,
                                 blinking=config.scan.speck > 0) if args.continuous else None
    plan = _Plan(config, options, settings, args.scan_only, stop, progress, step=step,
                 inputs={f.path.resolve() for f in files})
    began = time.perf_counter()
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # the scans are the parallelism; OpenCV's idle workers would spin
    try:
        _run_files(todo, plan, jobs)
    finally:
        cv2.setNumThreads(opencv_threads)
        progress.close()
    return _conclude(files, todo, config, time.perf_counter() - began, events_path, report_path)


def _writing(write, option: str, path: Path) -> None:
    """Call *write*; an OSError becomes a SinkError naming the output (the disk full, say)."""
    try:
        write()
    except OSError as exc:
        reason = "the disk is full" if exc.errno == errno.ENOSPC else \
            exc.strerror or str(exc)
        raise SinkError(f"{option} {path}: cannot be written ({reason})") from None


def _same_file(a: Path, b: Path) -> bool:
    """Whether *a* and *b* name one file: by identity where it exists, else by path."""
    return (file_identity(a) or a.resolve()) == (file_identity(b) or b.resolve())


def _check_outputs(files: list[_File], events_path: Path, report_path: Path | None) -> None:
    """Refuse, before any scan, an output that is an input, another output or a file's own.

    The run's table (CSV and JSON) and report must be none of the inputs,
    none of each other, and none of a file's record, thumbnails or clips;
    a file's record must be no input.  SinkError says which.
    """
    named = {"--events": events_path,
             "--events (its JSON beside it)": events_path.with_suffix(".json")}
    if report_path is not None:
        named["--report"] = report_path
    check_not_inputs(named, [f.path for f in files])
    read = {file_identity(f.path) for f in files}
    for file in files:
        pattern = re.compile(re.escape(file.name) + r"\.event\d{3,}\.[^.]+", re.IGNORECASE)
        folder = file.folder.resolve()
        if file_identity(file.record_path) in read - {None}:
            raise SinkError(f"{file.record_path}: the record of {file.path} would overwrite an "
                            "input; give --output-dir DIR")
        for option, path in named.items():
            if _same_file(path, file.record_path):
                raise SinkError(f"{option} {path} is the record of {file.path}: each output "
                                "needs its own file")
            if path.resolve().parent == folder and pattern.fullmatch(path.name):
                raise SinkError(f"{option} {path} is the name of a thumbnail or clip of "
                                f"{file.path}: each output needs its own file")


def _conclude(files: list[_File], todo: list[_File], config: Config, elapsed: float,
              events_path: Path, report_path: Path | None) -> int:
    """The run's table, report and summary, over every file done; the exit status."""
    records = [(f.record, f.folder) for f in files if f.record is not None]
    _writing(lambda: write_events(events_path, records, config), "--events", events_path)
    if report_path is not None:
        _writing(lambda: write_report(report_path, records, config.scan.threshold),
                 "--report", report_path)
    _summary(files, todo, elapsed, events_path, report_path)
    failed = [f for f in files if f.record is not None and f.record["status"] != "scanned"]
    return EXIT_FAILED if failed else 0


def _scan_on_cluster(args: argparse.Namespace, files: list[_File], todo: list[_File],
                     config: Config, options: ScanOptions, settings: str, stop,
                     events_path: Path, report_path: Path | None) -> int:
    """--workers, --scheduler: the files' tasks on a Dask cluster, their outputs written here.

    Workers scan and send back results and thumbnail images; this process
    writes every output (thumbnails, clips, records, table, report) as on
    one machine, each file's record once all its stretches are done, so
    that a run stopped and started again carries on as a local one does.
    """
    from ..scan import cluster as dask_scan

    dask_scan._need_dask()  # a one-line error, before anything is done
    with dask_scan.dask_logs_as_ours(args.debug):
        return _cluster_scan(args, files, todo, config, options, settings, stop, events_path,
                             report_path)


def _cluster_scan(args: argparse.Namespace, files: list[_File], todo: list[_File],
                  config: Config, options: ScanOptions, settings: str, stop,
                  events_path: Path, report_path: Path | None) -> int:
    from ..scan import cluster as dask_scan

    if args.scheduler is not None:
        client = dask_scan.connect(args.scheduler, config.scan.connect_timeout)
        cluster, threads = None, None  # each host's share: set once its workers are known
    else:
        for file in todo:
            _probe(file)
        tasks = sum(len(dask_scan.plan_chunks(f.path, config, f.fps, f.frames))
                    for f in todo)
        cpus = numba.config.NUMBA_NUM_THREADS
        # workers x masker threads <= cores: a worker per task up to one per core
        workers = args.workers or min(cpus, max(1, tasks))
        threads = max(1, cpus // workers)
        cluster = dask_scan.local_cluster(workers, quiet=not args.debug)
        from distributed import Client
        client = Client(cluster, set_as_default=False)
    try:
        if args.scheduler is not None:
            for file in todo:
                _probe(file)
        progress = _RunProgress(todo, args.quiet)
        plan = _Plan(config, options, settings, args.scan_only, stop, progress,
                     inputs={f.path.resolve() for f in files})
        by_path = {str(f.path): f for f in todo}
        began = time.perf_counter()
        try:
            outcomes = dask_scan.iter_scan(
                client, [f.path for f in todo], config, options=options, threads=threads,
                thumbnails=None if args.scan_only else lambda p: by_path[p].size or (0, 0),
                progress=progress.advance, stop=stop,
                probe=lambda p: (by_path[p].fps, by_path[p].frames))
            for index, outcome, tasks in outcomes:
                _finish(todo[index], index, plan,
                        lambda file, key, plan, outcome=outcome: _outputs_of(file, outcome, plan),
                        tuple(tasks))
        finally:
            progress.close()
        elapsed = time.perf_counter() - began
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return _conclude(files, todo, config, elapsed, events_path, report_path)


def _write_thumbnail(path: Path, data: bytes) -> None:
    """A thumbnail's JPEG bytes, atomically; a full disk is a :class:`ClipError` saying so.

    Written here rather than by ``cv2.imwrite``, which says only that it failed:
    a disk with a few kB left is not empty, and was not recognised as full.
    """
    try:
        with atomic_path(path) as temporary:
            temporary.write_bytes(data)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ClipError(f"{path}: the thumbnail could not be written (the disk is full)") \
                from None
        raise


def _outputs_of(file: _File, outcome, plan: _Plan) -> dict[str, Any]:
    """A file's outputs and record from what the cluster found in it."""
    if outcome.error is not None:
        raise SourceError(outcome.error)
    outputs: dict[int, dict[str, Any]] = {}
    for event in outcome.result.events:
        image = outcome.thumbnails.get(event.peak_frame)
        if plan.scan_only or image is None:
            continue
        name = f"{file.name}.event{event.number:03d}.jpg"
        if (file.folder / name).resolve() in plan.inputs:
            raise ClipError(f"{file.folder / name}: the thumbnail would overwrite an input")
        _write_thumbnail(file.folder / name, image)
        file.written.append(file.folder / name)
        outputs.setdefault(event.number, {})["thumbnail"] = name
    return _write_outputs(file, outcome.result, plan, outputs)


def _probe(file: _File) -> None:
    """What a file's header says: its frames (for the progress bar) and frame size."""
    try:
        source = VideoFile(file.path)
    except SourceError:
        return  # the scan says why
    source.close()
    file.frames, file.size = source.info.frame_count, (source.width, source.height)
    file.fps = source.info.fps


def _run_files(todo: list[_File], plan: _Plan, jobs: int) -> None:
    """Scan every file of *todo*, *jobs* at once, in order of the list."""
    if jobs == 1:
        for key, file in enumerate(todo):
            if plan.stop.is_set():
                return
            _finish(file, key, plan)
        return
    with concurrent.futures.ThreadPoolExecutor(jobs, thread_name_prefix="bgsub-scan") as pool:
        futures = [pool.submit(_finish, file, key, plan) for key, file in enumerate(todo)]
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()
        except BaseException:
            plan.stop.set()  # a bug in one scan: the others stop too, then it is reported
            raise
        finally:
            for future in futures:
                future.cancel()


def _finish(file: _File, key: int, plan: _Plan, scan=None, tasks: tuple[str, ...] = ()
            ) -> None:
    """Scan one file, write its outputs and its record; a failure is recorded as such.

    *scan* (default :func:`_scan_one`) gives the record, or None when the run
    stopped before the file's end; *tasks* are the keys its cluster tasks
    reported progress under.
    """
    if scan is None and plan.stop.is_set():
        return
    try:
        if file.record_path.is_dir():  # found before the scan, not after it
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR),
                                    str(file.record_path))
        record = (scan or _scan_one)(file, key, plan)
    except (SourceError, RegionError, ClipError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            message = f"an output could not be written (the disk is full: {exc})"
        elif isinstance(exc, IsADirectoryError) and exc.filename:
            # an output's name (its record, a thumbnail, a clip) is taken by a folder
            message = f"{exc.filename}: is a folder (expected a file name)"
        elif isinstance(exc, BgsubError):
            message = str(exc)
        else:
            message = f"{type(exc).__name__}: {exc}"
        for path in file.written:  # a failed file leaves none of its outputs
            try:
                path.unlink()
            except OSError:
                pass
        logger.error("%s: %s; listed as failed", file.path, message.removeprefix(f"{file.path}: "))
        record = failure_record(file.path, file.name, message)
    if record is None:  # stopped before the end of the file: not done
        for path in file.written:  # no record names them: a new run writes them again
            try:
                path.unlink()
            except OSError:
                pass
        plan.progress.finished(key, 0, 0, tasks)
        return
    file.record = record
    if record["status"] == "scanned" and not record.get("frames_scored"):
        # recorded as scanned, with nothing in it: say so, as run does
        logger.warning("%s: no frame was scanned (--start past its end, or no frame could be "
                       "read); it has no events", file.path)
    frames = round(record["seconds"] * record["fps"]) if record["status"] == "scanned" else 0
    plan.progress.finished(key, frames, len(record["events"]), tasks)
    for event in record["events"]:  # above the bar, on stdout: the run's product
        tqdm.write(f"{one_line(record['file'])}\t{event['event']}\t{event['start_timecode']}\t"
                   f"{event['end_timecode']}\t{event['duration']:.2f}s", file=sys.stdout)
    sys.stdout.flush()


def _scan_one(file: _File, key: int, plan: _Plan) -> dict[str, Any] | None:
    scan = plan.config.scan
    outputs: dict[int, dict[str, Any]] = {}

    def on_event(event, frame, moving) -> None:
        if plan.scan_only:
            return
        name = f"{file.name}.event{event.number:03d}.jpg"
        shapes = ()
        if scan.draw_region and file.size is not None:  # on the scored frames' grid
            shapes = outlines(region_of(scan), (file.size[0] / frame.shape[1],
                                                file.size[1] / frame.shape[0]))
        image = thumbnail(frame, moving, shapes)
        if (file.folder / name).resolve() in plan.inputs:
            raise ClipError(f"{file.folder / name}: the thumbnail would overwrite an input")
        ok, encoded = cv2.imencode(".jpg", image)
        if not ok:
            raise OSError(errno.EIO, f"cannot encode the thumbnail {file.folder / name}")
        _write_thumbnail(file.folder / name, encoded.tobytes())
        file.written.append(file.folder / name)
        outputs.setdefault(event.number, {})["thumbnail"] = name

    step_frames = scan.frame_skip + 1
    result: ScanResult = scan_file(file.path, plan.config, plan.options, on_event=on_event,
                                   progress=plan.progress.for_file(key, step_frames),
                                   stop=plan.stop, step=plan.step)
    if plan.stop.is_set():
        return None
    return _write_outputs(file, result, plan, outputs)


def _write_outputs(file: _File, result: ScanResult, plan: _Plan,
                   outputs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """A scanned file's clips, then its record (its thumbnails are in *outputs* already)."""
    for first, count in result.damaged:  # as run reports them
        frames = f"frame {first}" if count == 1 else f"frames {first}-{first + count - 1}"
        why = "could not be read: the file ends early (truncated or damaged), or its " \
            "header overstates its length" if first > result.last_frame else \
            "could not be decoded"
        logger.warning("%s of %s %s; skipped", frames, file.path, why)
    if not plan.scan_only:
        extension = clip_extension(file.path)
        for event in result.events:
            target = file.folder / f"{file.name}.event{event.number:03d}{extension}"
            if target.resolve() in plan.inputs:
                raise ClipError(f"{target}: the clip would overwrite an input")
            try:
                clip = cut_clip(file.path, target, event.start_time, event.end_time,
                                result.fps, (event.start_frame, event.end_frame))
            except ClipError as exc:
                if not exc.missing:  # an output that cannot be written: the file fails
                    raise
                # the source lacks the event's frames (damaged, truncated): the other
                # events, their clips and the record stand
                why = str(exc).removeprefix(f"{target}: ")
                logger.warning("%s: event %d's clip could not be cut (%s); the event is "
                               "listed without it", file.path, event.number, why)
                outputs.setdefault(event.number, {})["clip_error"] = why
                continue
            file.written.append(target)
            outputs.setdefault(event.number, {}).update(
                clip=target.name, clip_start=round(clip.start, 6), clip_copied=clip.copied)
    record = record_of(result, file.name, identity(file.path), plan.settings, outputs)
    write_record(file.record_path, record)
    return record


def _summary(files: list[_File], todo: list[_File], elapsed: float, events_path: Path,
             report_path: Path | None) -> None:
    records = [f.record for f in files if f.record is not None]
    scanned = [r for r in records if r["status"] == "scanned"]
    failed = [r for r in records if r["status"] != "scanned"]
    with_motion = sum(1 for r in scanned if r["events"])
    events = sum(len(r["events"]) for r in scanned)
    hours = sum(r["seconds"] for r in scanned) / 3600
    new = [f.record for f in todo if f.record is not None and f.record["status"] == "scanned"]
    frames = sum(r["seconds"] * r["fps"] for r in new)
    seconds = sum(r["seconds"] for r in new)
    resumed = sum(1 for f in files if f.resumed)
    logger.info("%d files scanned (%d from earlier runs), %d with motion, %d failed; %d events "
                "in %.2f hours of video; %.1f fps, %.1fx real time", len(scanned), resumed,
                with_motion, len(failed), events, hours,
                frames / elapsed if elapsed > 0 else 0.0,
                seconds / elapsed if elapsed > 0 else 0.0)
    kinds = collections.Counter(e["kind"] for r in scanned for e in r.get("scene") or [])
    dropped = sum(r.get("dropped", 0) for r in scanned)
    if kinds:
        logger.info("%d scene events (%s)%s", sum(kinds.values()),
                    ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())),
                    f"; {dropped} motion events dropped as theirs" if dropped else "")
    unconfident = sum(r.get("below_confidence") or 0 for r in scanned)
    if unconfident:
        logger.info("%d motion events dropped under scan.min_confidence", unconfident)
    for record in failed:
        logger.info("failed: %s (%s)", record["file"], record["error"])
    if len(records) < len(files):
        logger.info("%d files not scanned (stopped before them)", len(files) - len(records))
    written = f"events: {events_path} and {events_path.with_suffix('.json')}"
    if report_path is not None:
        written += f"; report: {report_path}"
    logger.info("%s", written)
