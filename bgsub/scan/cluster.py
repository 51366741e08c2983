"""Scanning files on a Dask cluster (``pip install "bgsub[dask]"``).

A cluster scan cuts the work into **tasks**: a file, or a stretch of a file
longer than ``scan.chunk_minutes`` (:func:`plan_chunks`).  Each task is a
:func:`~bgsub.scan.scanner.scan_file` on a worker (:func:`scan_task`), with the
configuration resolved once on the client and sent with it, and the
masker's threads set by the client; a stretch's model first learns from
``scan.chunk_warmup`` of video before it, unscored.  The client puts a
file's stretches back together with :func:`~bgsub.scan.scanner.merge_results`,
which joins the events cut at the stretches' ends as one pass finds them.

Faults: a task never raises for its file's own errors (a corrupt file, a
path the worker cannot read, a worker of another bgsub version): it
returns them, so that Dask, which re-runs a task whose worker died, never
re-runs one for its file.  A file is therefore reported once, and a task
lost with its worker is run again elsewhere, its result counted once.

Dask is imported only here, and only when a function that needs it is
called: ``import bgsub`` and a scan in one process never load it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from ..config import Config, resolve_config
from ..errors import BgsubError
from ..io.sources import redact
from .scanner import ScanOptions, ScanResult, decode_threads, merge_results, scan_file
from ..timecode import Duration

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["ClusterError", "Chunk", "TaskOutput", "FileOutcome", "plan_chunks", "scan_task",
           "connect", "check_versions", "task_threads", "iter_scan", "scan_files",
           "local_cluster"]

logger = logging.getLogger("bgsub")

#: the topic the tasks report their frames done on (Dask's structured events)
PROGRESS_TOPIC = "bgsub-scan-progress"

#: seconds between a task's progress reports (and its checks for a stop)
REPORT_INTERVAL = 1.0


class ClusterError(BgsubError):
    """The cluster cannot do the scan: no scheduler answers, no workers, another bgsub."""


def _need_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ClusterError('a cluster scan needs Dask: pip install "bgsub[dask]"') from None


@dataclass(frozen=True)
class Chunk:
    """One task: a file, or a stretch of it (frames, zero-based; ``end`` excluded).

    Attributes
    ----------
    path : str
        The file as given (events and results name it so).
    location : str
        Where workers open it: the absolute path on the client, which
        workers see where the storage is shared and mounted alike.
    index, count : int
        The stretch's place in its file: 0, 1, ... of ``count``.
    start, end : int or Duration, optional
        The stretch's frames (or the options' start and end, where the
        file's rate is not known); None: the file's start, its end.
    warmup : int
        Frames before ``start`` the model learns from, unscored.
    frames : int, optional
        Frames in the stretch, where known (for the progress).
    """

    path: str
    location: str
    index: int = 0
    count: int = 1
    start: int | Duration | None = None
    end: int | Duration | None = None
    warmup: int = 0
    frames: int | None = None


def _warmup_frames(config: Config, fps: float) -> int:
    """``scan.chunk_warmup`` in frames, and never less than the events' durations.

    The first events of a stretch must be seen as one pass sees them: an
    event that started in the warm-up, or a pre-roll that reaches into it.
    """
    scan = config.scan
    frames = [duration.frames(fps) for duration in (scan.chunk_warmup, scan.min_event_length,
                                                    scan.pre_roll, scan.post_roll)]
    return max(frames[0], sum(frames[1:]))


def plan_chunks(path: str | Path, config: Config, fps: float | None, frame_count: int | None,
                start: int = 0, end: int | None = None) -> list[Chunk]:
    """The tasks of one file: itself, or stretches of at most ``scan.chunk_minutes``.

    *fps* and *frame_count* come from the file's header (None where it
    could not be read: the file is then one task, and the worker says
    what is wrong with it).  *start* and *end* (frames) bound the part
    scanned.  Stretches are of equal length, on multiples of the frames
    each score stands for (``frame_skip + 1``), so that the frames scored
    are those of one pass; the last one runs to the end of the file,
    whatever its header says.

    >>> from bgsub.config import Config, replace_section
    >>> config = Config()
    >>> config = dataclasses.replace(config, scan=replace_section(config.scan,
    ...                              chunk_minutes=1, chunk_warmup="10s"))
    >>> [(c.start, c.end, c.warmup) for c in plan_chunks("a.mp4", config, 30.0, 4000)]
    [(0, 1334, 0), (1334, 2667, 300), (2667, None, 300)]
    """
    location = str(Path(path).resolve())
    minutes = config.scan.chunk_minutes
    if not fps or not frame_count or minutes <= 0:
        return [Chunk(str(path), location, start=start or None, end=end)]
    stop = frame_count if end is None else min(end, frame_count)
    length = stop - start
    # min(): a chunk length past the file's (1e308 minutes: inf frames) is the whole file
    limit = max(1, math.floor(min(minutes * 60 * fps, max(length, 1))))
    count = math.ceil(length / limit) if length > 0 else 1
    if count <= 1:
        return [Chunk(str(path), location, start=start or None, end=end,
                      frames=max(0, length))]
    step = config.scan.frame_skip + 1
    cuts = [start + math.ceil(length * k / count / step) * step for k in range(count)]
    warmup = _warmup_frames(config, fps)
    chunks = []
    for k, first in enumerate(cuts):
        last = cuts[k + 1] if k + 1 < count else end  # the last: to the file's real end
        chunks.append(Chunk(str(path), location, k, count, first, last,
                            min(warmup, first),
                            (last if last is not None else stop) - first))
    return chunks


@dataclass
class TaskOutput:
    """What a task sends back: its result or its file's error, and the thumbnails' images.

    Attributes
    ----------
    chunk : Chunk
    result : ScanResult, optional
        None when the file could not be scanned.
    error : str, optional
        Why not, one line.
    thumbnails : dict
        JPEG bytes by peak frame, for the events found (with thumbnails
        asked for).
    worker : str
        The worker that ran it.
    """

    chunk: Chunk
    result: ScanResult | None = None
    error: str | None = None
    thumbnails: dict[int, bytes] = field(default_factory=dict)
    worker: str = ""


def _worker_version() -> str:
    from .._version import __version__
    return __version__


def _file_errors() -> tuple[type[BaseException], ...]:
    from .clips import ClipError
    from ..regions import RegionError
    from ..io.sources import SourceError
    return SourceError, RegionError, ClipError, OSError, ValueError


class _Reporter:
    """A task's progress: frames done, to the client every second; and a stop the client asks.

    The frames are those of the task's stretch (its warm-up's not counted), so that
    the client's sum over the tasks under way never passes the frames to scan.
    """

    def __init__(self, task: str, run: str | None, step: int, stop: threading.Event,
                 warmup: int = 0) -> None:
        self.task, self.run, self.step, self.stop = task, run, step, stop
        self.warmup = warmup
        self.last = 0.0
        self.worker = None
        self.stop_event = None
        try:
            from distributed import Event, get_worker
            self.worker = get_worker()
            if run is not None:
                self.stop_event = Event(f"bgsub-stop-{run}")
        except (ImportError, ValueError):  # not on a worker (called in-process)
            pass

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < REPORT_INTERVAL:
            return
        self.last = now
        if self.worker is not None:
            self.worker.log_event(PROGRESS_TOPIC, {"task": self.task,
                                                   "frames": max(0, done * self.step
                                                                 - self.warmup)})
        if self.stop_event is not None:
            try:
                if self.stop_event.is_set():
                    self.stop.set()
            except Exception:  # the scheduler is going away: the client stops us anyway
                pass

    def close(self) -> None:
        pass


def scan_task(chunk: Chunk, config: Config, threads: int | dict[str, int] | None,
              version: str, *, thumbnails: tuple[int, int] | None = None,
              task: str = "", run: str | None = None) -> TaskOutput:
    """Scan one :class:`Chunk` on a worker (a Dask task; callable in-process as well).

    Parameters
    ----------
    chunk : Chunk
    config : Config
        Resolved on the client: workers read no config.toml.
    threads : int or dict
        The masker's and decoder's threads; a dict: by worker host (the
        client's share of each machine's cores), 1 for a host not in it.
    version : str
        The client's bgsub version: a worker of another refuses the task.
    thumbnails : tuple of int, optional
        The source's frame size, to make each event's thumbnail at (None:
        no thumbnails; ``(0, 0)``: without the region drawn).
    task : str
        The task's name in the progress reports.
    run : str, optional
        The run whose stop (a Dask ``Event``) the task checks as it goes.

    Returns
    -------
    TaskOutput
        Never raises for the file's own errors, so that Dask never runs a
        task again because of its file.
    """
    import cv2

    mine = _worker_version()
    host = ""
    try:
        from distributed import get_worker
        worker = get_worker()
        name, host = worker.address, worker.ip
    except (ImportError, ValueError):
        name = "local"
    if mine != version:
        return TaskOutput(chunk, error=f"the worker {name} runs bgsub {mine}, the client "
                          f"{version}: install the same version on every machine",
                          worker=name)
    if isinstance(threads, dict):
        threads = threads.get(host, 1)
    threads = max(1, threads or 1)
    cv2.setNumThreads(1)  # the tasks are the parallelism; OpenCV's idle pool would spin
    options = ScanOptions(start=chunk.start, end=chunk.end, warmup=chunk.warmup,
                          threads=threads, decode_threads=decode_threads())
    images: dict[int, bytes] = {}
    on_event = None
    if thumbnails is not None:
        on_event = _thumbnailer(config, thumbnails, images)
    stop = threading.Event()
    reporter = _Reporter(task, run, config.scan.frame_skip + 1, stop, chunk.warmup)
    try:
        result = scan_file(chunk.location, config, options, on_event=on_event,
                           progress=reporter, stop=stop)
    except _file_errors() as exc:
        from .clips import ClipError
        from ..regions import RegionError
        from ..io.sources import SourceError
        message = str(exc) if isinstance(exc, (SourceError, RegionError, ClipError)) \
            else f"{type(exc).__name__}: {exc}"
        message = message.replace(chunk.location, chunk.path)  # as the client names it
        return TaskOutput(chunk, error=message, worker=name)
    if stop.is_set():  # the run was stopped: half a stretch is no result
        return TaskOutput(chunk, error="stopped", worker=name)
    # named as the client named the file, not by where this worker opened it
    result.path = chunk.path
    result.events = [dataclasses.replace(e, file=chunk.path) for e in result.events]
    return TaskOutput(chunk, result, thumbnails=images, worker=name)


def _thumbnailer(config: Config, size: tuple[int, int], images: dict[int, bytes]):
    import cv2

    from .clips import thumbnail
    from ..regions import outlines
    from .scanner import region_of

    scan = config.scan

    def on_event(event, frame, moving) -> None:
        shapes = ()
        if scan.draw_region and size[0] > 0:  # on the scored frames' grid
            shapes = outlines(region_of(scan), (size[0] / frame.shape[1],
                                                size[1] / frame.shape[0]))
        ok, data = cv2.imencode(".jpg", thumbnail(frame, moving, shapes))
        if ok:
            images[event.peak_frame] = data.tobytes()

    return on_event


# --- the client's side -------------------------------------------------------------------

def connect(address: str, timeout: float) -> Client:
    """A client of the scheduler at *address*; :class:`ClusterError` if none answers in time."""
    _need_dask()
    from distributed import Client

    shown = redact(address)  # an address may hold a password: never in a message
    scheme = address.split("://", 1)[0].lower() if "://" in address else "tcp"
    if scheme == "tls":
        raise ClusterError(f"{shown}: TLS (tls://) schedulers are not supported: give a "
                           "tcp:// address (over a VPN or an SSH tunnel for a network "
                           "that is not trusted)")
    if scheme == "tcp":
        _greeted(address, shown, timeout)
    box: dict[str, Any] = {}

    def connecting() -> None:  # Dask's own timeout does not cover every way to hang
        try:
            box["client"] = Client(address, timeout=timeout, set_as_default=False)
        except BaseException as exc:  # raised again below
            box["error"] = exc

    helper = threading.Thread(target=connecting, name="bgsub-connect", daemon=True)
    helper.start()
    helper.join(timeout + 5)
    if helper.is_alive():
        raise ClusterError(f"{shown}: no Dask scheduler answered within {timeout:g} s "
                           "(scan.connect_timeout)")
    try:
        if "error" in box:
            raise box["error"]
        return box["client"]
    except (OSError, TimeoutError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ClusterError(f"no Dask scheduler answered at {shown} within {timeout:g} s "
                           f"(scan.connect_timeout): {redact(reason, address)}") from None
    except ValueError as exc:  # not an address at all
        raise ClusterError(f"{shown}: not a scheduler address ({redact(str(exc), address)}); "
                           "expected tcp://HOST:PORT") from None
    except (MemoryError, Exception) as exc:  # what Dask makes of a server that is no scheduler
        raise ClusterError(f"{shown}: no Dask scheduler there ({type(exc).__name__}); "
                           "expected the address of a scheduler, tcp://HOST:8786") from None


def _greeted(address: str, shown: str, timeout: float) -> None:
    """ClusterError unless *address* (tcp) answers as a Dask scheduler does, at once.

    A scheduler greets each connection with its handshake, a message of a
    few frames (its first 8 bytes: their count).  A web server waits for a
    request, and Dask would wait with it, or read its reply as a message's
    length (exabytes).
    """
    import socket
    import struct
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise ClusterError(f"{shown}: not a scheduler address; expected tcp://HOST:PORT")
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(min(timeout, 5.0))
            greeting = b""
            while len(greeting) < 8:
                chunk = sock.recv(8 - len(greeting))
                if not chunk:
                    break
                greeting += chunk
    except socket.timeout:
        raise ClusterError(f"{shown}: the server there is no Dask scheduler (it sent no "
                           "greeting); expected the address of a scheduler, tcp://HOST:8786"
                           ) from None
    except OSError as exc:
        raise ClusterError(f"no Dask scheduler answered at {shown} within {timeout:g} s "
                           f"(scan.connect_timeout): {exc.strerror or exc}") from None
    frames = struct.unpack("<Q", greeting)[0] if len(greeting) == 8 else 0
    if not 1 <= frames <= 64:
        raise ClusterError(f"{shown}: the server there is no Dask scheduler (its greeting "
                           "is not Dask's); expected the address of a scheduler, "
                           "tcp://HOST:8786")


def check_versions(client: Client) -> list[str]:
    """Refuse workers that run another bgsub (or none); return the workers' addresses.

    Raises
    ------
    ClusterError
        When there is no worker, or a worker's bgsub is not this one's.
    """
    from .._version import __version__

    workers = list(client.scheduler_info().get("workers", {}))
    if not workers:
        raise ClusterError("the cluster has no workers (start some: dask worker ADDRESS)")
    # a worker that dies while it is asked (a killed process, a lost machine) is
    # Dask's to replace, not the scan's end: its answer is an OSError
    # (CommClosedError), and the scan goes on with the others
    versions = {w: v for w, v in client.run(_worker_version, on_error="return").items()
                if not isinstance(v, OSError)}
    for v in versions.values():
        if isinstance(v, ImportError):
            raise ClusterError(f"a worker cannot import bgsub ({v}): install bgsub "
                               f"{__version__} on every worker") from None
        if isinstance(v, BaseException):
            raise v
    other = {w: v for w, v in versions.items() if v != __version__}
    if other:
        shown = ", ".join(f"{w} has {v}" for w, v in sorted(other.items())[:3])
        raise ClusterError(f"workers run another bgsub than this {__version__} ({shown}"
                           f"{', ...' if len(other) > 3 else ''}): install the same version "
                           "on every machine")
    return workers


def task_threads(client: Client) -> dict[str, int]:
    """Each worker host's masker threads per task: its cores over the tasks it runs at once."""
    info = client.scheduler_info().get("workers", {})
    # a worker gone meanwhile answers with an error: its host's other workers tell
    # its cores (one core when none is left to tell)
    cores = {w: c for w, c in client.run(os.cpu_count, on_error="return").items()
             if isinstance(c, int)}
    slots: dict[str, int] = {}
    cpus: dict[str, int] = {}
    for address, worker in info.items():
        host = worker.get("host") or address
        slots[host] = slots.get(host, 0) + max(1, worker.get("nthreads", 1))
        # a host's cores as any of its workers reported them
        cpus[host] = max(cpus.get(host, 1), cores.get(address) or 1)
    return {host: max(1, cpus[host] // slots[host]) for host in slots}


@dataclass
class FileOutcome:
    """A file's end: its result (stretches merged) or its error, and its thumbnails.

    Attributes
    ----------
    path : str
    result : ScanResult, optional
    error : str, optional
    thumbnails : dict
        JPEG bytes by the peak frame of the merged events.
    """

    path: str
    result: ScanResult | None = None
    error: str | None = None
    thumbnails: dict[int, bytes] = field(default_factory=dict)


def _probe(path: str | Path, config: Config) -> tuple[float | None, int | None]:
    """The file's rate and frame count from its header, as the client sees it."""
    from ..io.avsource import VideoFile
    from ..io.sources import SourceError

    try:
        source = VideoFile(path)
    except (SourceError, OSError):
        return None, None  # a worker says why
    source.close()
    return source.info.fps, source.info.frame_count


def iter_scan(client: Client, paths: Iterable[str | Path], config: Config, *,
              options: ScanOptions | None = None, threads: int | dict[str, int] | None = None,
              thumbnails: Callable[[str], tuple[int, int] | None] | None = None,
              progress: Callable[[str, int], None] | None = None,
              stop: threading.Event | None = None,
              probe: Callable[[str], tuple[float | None, int | None]] | None = None
              ) -> Iterator[tuple[int, FileOutcome, list[str]]]:
    """Scan *paths* on the cluster; yield ``(index, outcome, task names)`` as each file is done.

    The engine under :func:`scan_files` and ``bgsub scan --workers``:
    *options* bound the part of each file scanned (its ``start`` and
    ``end``); *threads* as :func:`scan_task` takes them (default: each
    host's share, :func:`task_threads`); *thumbnails(path)* the frame size
    to make a file's thumbnails at (None: none); *progress(task, frames)*
    is called (in another thread) with a task's frames done so far;
    setting *stop* cancels the tasks not done and ends the iteration.
    Files come out in the order they are done.
    """
    from distributed import Event

    from .._version import __version__

    options = options or ScanOptions()
    check_versions(client)
    if threads is None:
        threads = task_threads(client)
    run = f"{os.getpid()}-{time.time_ns()}"
    files: list[str] = [str(p) for p in paths]
    plans: list[list[Chunk]] = []
    for path in files:
        fps, count = (probe or (lambda p: _probe(p, config)))(path)
        first = 0 if options.start is None or not fps else options.start.frames(fps)
        end = None if options.end is None or not fps else options.end.frames(fps)
        plans.append(plan_chunks(path, config, fps, count, first, end) if fps else
                     [Chunk(path, str(Path(path).resolve()), start=options.start,
                            end=options.end)])
    if progress is not None:  # before the tasks: their first reports come at once
        client.subscribe_topic(PROGRESS_TOPIC, lambda event: progress(
            event[1]["task"], event[1]["frames"]))
    names = {}
    futures = {}
    for index, chunks in enumerate(plans):
        for chunk in chunks:
            name = f"bgsub-scan-{run}-{index}-{chunk.index}"
            names.setdefault(index, []).append(name)
            future = client.submit(scan_task, chunk, config, threads, __version__,
                                   thumbnails=thumbnails(chunk.path) if thumbnails else None,
                                   task=name, run=run, key=name, pure=False)
            futures[future] = (index, chunk)
    stopper = Event(f"bgsub-stop-{run}", client=client)
    done: dict[int, list[TaskOutput]] = {}
    # the futures' callbacks run in the client's thread; this one waits for them in short
    # steps, so that a stop (Ctrl-C) is seen within a tenth of a second
    finished: queue.Queue = queue.Queue()
    for future in futures:
        future.add_done_callback(finished.put)
    try:
        while futures:
            if stop is not None and stop.is_set():
                break
            try:
                future = finished.get(timeout=0.1)
            except queue.Empty:
                continue
            index, chunk = futures.pop(future)
            output = _output_of(future, chunk)
            parts = done.setdefault(index, [])
            parts.append(output)
            if len(parts) == len(plans[index]):
                yield index, _outcome(files[index], parts, config), names[index]
                done.pop(index)
    finally:
        if futures:  # stopped (or the caller stopped iterating): cancel what is left
            try:
                stopper.set()  # the tasks under way end at their next report
            except Exception:  # the cluster is gone already
                pass
            client.cancel(list(futures), force=True)
        if progress is not None:
            client.unsubscribe_topic(PROGRESS_TOPIC)


def _output_of(future, chunk: Chunk) -> TaskOutput:
    """A finished task's output; a task that failed as a whole (its worker died too often) too."""
    if future.status == "finished":
        return future.result()
    try:
        future.result()
        reason = future.status
    except Exception as exc:  # KilledWorker, a bug in the task: this file fails, once
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return TaskOutput(chunk, error=f"the task failed on the cluster ({reason})")


def _outcome(path: str, parts: list[TaskOutput], config: Config) -> FileOutcome:
    errors = [p for p in parts if p.error is not None]
    if errors:
        first = min(errors, key=lambda p: p.chunk.index)
        where = "" if first.chunk.count == 1 else \
            f" (stretch {first.chunk.index + 1} of {first.chunk.count})"
        return FileOutcome(path, error=f"{first.error}{where}")
    images = {k: v for p in parts for k, v in p.thumbnails.items()}
    if len(parts) == 1:
        return FileOutcome(path, parts[0].result, thumbnails=images)
    result = merge_results([p.result for p in parts], config)
    result.path = path
    return FileOutcome(path, result,
                       thumbnails={e.peak_frame: images[e.peak_frame] for e in result.events
                                   if e.peak_frame in images})


def scan_files(client: Client, paths: Iterable[str | Path],
               config: Config | str | Path | None = None, *, options: ScanOptions | None = None,
               errors: str = "raise") -> list[ScanResult]:
    """Scan video files on a Dask cluster: what :func:`~bgsub.scan.scanner.scan_file` gives, per file.

    Parameters
    ----------
    client : distributed.Client
        A client of the cluster.  Its workers must see the files at the
        same paths as this process (shared storage), and run this bgsub.
    paths : iterable of str or Path
        The video files.
    config : Config, str or Path, optional
        The configuration or the TOML file to read it from (default:
        ``./config.toml`` when present, else the defaults), read here once
        and sent to the workers.
    options : ScanOptions, optional
        ``start`` and ``end``, as for each file (the threads are set per
        worker host: its cores over its tasks at once).
    errors : {"raise", "skip"}
        A file that cannot be scanned raises :class:`ClusterError` naming
        it (once every file is done), or is left out with a warning.

    Returns
    -------
    list of ScanResult
        In the order of *paths*.  A file longer than
        ``scan.chunk_minutes`` is scanned in stretches side by side and
        merged (:func:`~bgsub.scan.scanner.merge_results`): its events are those of
        one pass, within a frame where they cross a stretch's end.

    Raises
    ------
    ClusterError
        When a worker runs another bgsub, or files could not be scanned.

    Examples
    --------
    >>> from distributed import Client, LocalCluster                 # doctest: +SKIP
    >>> from bgsub.scan.cluster import scan_files                     # doctest: +SKIP
    >>> with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, \\
    ...         Client(cluster) as client:                           # doctest: +SKIP
    ...     results = scan_files(client, ["cam1/0001.mp4", "cam1/0002.mp4"])
    >>> [len(r.events) for r in results]                             # doctest: +SKIP
    [3, 0]
    """
    _need_dask()
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
    config = config if isinstance(config, Config) else resolve_config(config)
    files = [str(p) for p in paths]
    results: dict[int, ScanResult] = {}
    failed: list[str] = []
    for index, outcome, _ in iter_scan(client, files, config, options=options):
        if outcome.result is not None:
            results[index] = outcome.result
        else:
            failed.append(f"{outcome.path}: {outcome.error}")
            logger.warning("%s: %s", outcome.path, outcome.error)
    if failed and errors == "raise":
        raise ClusterError(f"{len(failed)} of {len(files)} files could not be scanned: "
                           + "; ".join(failed))
    return [results[i] for i in sorted(results)]


class _AsOurs(logging.Handler):
    """Dask's log records as bgsub's: one line each, ``dask: ...``; errors as warnings."""

    def __init__(self, debug: bool) -> None:
        super().__init__(logging.DEBUG if debug else logging.ERROR)
        self.debug = debug

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage().strip().splitlines()
        except Exception:  # a record that cannot be formatted: nothing to say
            return
        level = record.levelno if self.debug else logging.WARNING
        logger.log(level, "dask: %s", text[0] if text else record.name)


@contextlib.contextmanager
def dask_logs_as_ours(debug: bool = False) -> Iterator[None]:
    """While in it, this process's Dask logs through bgsub's logger, never raw.

    Dask's own handler writes ``distributed.scheduler - ERROR - ...`` lines,
    tracebacks included, straight to stderr; here each record becomes one
    ``bgsub: warning: dask: ...`` line (without *debug*, errors only: Dask's
    warnings about the tasks a stop cancels are no news).
    """
    dask_logger = logging.getLogger("distributed")
    saved = dask_logger.handlers[:], dask_logger.propagate, dask_logger.level
    dask_logger.handlers = [_AsOurs(debug)]
    dask_logger.propagate = False
    dask_logger.setLevel(logging.DEBUG if debug else logging.ERROR)
    try:
        yield
    finally:
        dask_logger.handlers, dask_logger.propagate, _ = saved
        dask_logger.setLevel(saved[2])


def local_cluster(workers: int, *, quiet: bool = False) -> Any:
    """A cluster of *workers* processes on this machine, one task at a time each.

    Its scheduler's HTTP server (dashboard or not) takes a free port: two runs at once
    do not warn about 8787.  Its worker processes ignore SIGINT: a Ctrl-C at a terminal
    goes to every process of the group, and would kill each worker in the middle of its
    task, with a traceback; the client stops them instead (:func:`iter_scan`'s *stop*,
    then closing the cluster).  They start with SIGINT ignored (called from the main
    thread, this one ignores it while they start: a Ctrl-C then is lost) and ignore it
    for good once Dask runs this module's :func:`dask_setup` in them, as a preload
    (workers restarted later, after a crash, only from then).  *quiet*: the workers
    log only what stops them (their output reaches stderr raw).
    """
    _need_dask()
    import dask
    from distributed import LocalCluster

    # the workers' own logs reach stderr raw: quiet, only what stops them
    settings = {"distributed.nanny.pre-spawn-environ.DASK_LOGGING__DISTRIBUTED": "critical"} \
        if quiet else {}
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        with dask.config.set(settings):
            return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                dashboard_address=":0", host="127.0.0.1",
                                preload=[__name__])
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)


def dask_setup(worker: Any) -> None:
    """Dask's hook in a worker that preloads this module: SIGINT is the client's to handle.

    :func:`local_cluster`'s workers preload it.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
