"""What a scan writes down: a record per file, and the events table of a run.

A file's **record** (``NAME.scan.json``, beside its clips and thumbnails)
holds everything found in it: its events, rate, length, timeline, and what
identifies the scan (the file's size and time, a digest of the settings).
It is written last, atomically, once the file's clips and thumbnails are
written: a record exists only for a file that is completely done, and a run
started again skips exactly those files (:func:`is_done`).

The run's **events table** puts every file's events in one CSV
(:data:`COLUMNS`) and one JSON file (with a schema name and version, and
per file its status and its scene events), both written atomically.  A
file's scene events (:mod:`bgsub.scan.scene`) are in its record and its
entry of the JSON table, under ``"scene"``: kind, frames, times, score and
evidence; each motion event there lists, under ``"scene"``, the kinds of the
scene events it overlaps (``events.during_scene``), and ``"dropped"`` counts
the motion events dropped as a scene change's own.  Each motion event has a
``confidence`` in [0, 1] (:func:`bgsub.scan.detector.confidence`; empty, or
null, when not measured), with the ``probability`` and ``motion_frames`` it
comes from; ``"below_confidence"`` counts the events dropped under
``scan.min_confidence``.  Times are in seconds from
the file's start (``end_time`` is the end of the last frame) and as
``HH:MM:SS.mmm`` timecodes; frames are zero-based and inclusive; boxes are
in the source's pixels; clip and thumbnail paths are relative to the
table's folder.  The CSV keeps one event to a line: the control characters
of a name (a newline, a tab) are escaped there (:func:`bgsub.text.one_line`),
while the JSON holds every name exactly.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from .._version import __version__
from ..files import write_text_atomically
from ..config import Config, as_mapping
from .scanner import MotionEvent, ScanOptions, ScanResult
from ..text import one_line
from .scene import overlapping
from ..timecode import timecode

__all__ = ["SCHEMA", "SCHEMA_VERSION", "COLUMNS", "settings_digest", "identity",
           "record_of", "failure_record", "read_record", "is_done", "write_record",
           "event_rows", "write_events", "scene_rows"]

SCHEMA = "bgsub-scan"
SCHEMA_VERSION = 1

#: the events table's columns, in order
COLUMNS = ("file", "event", "start_frame", "end_frame", "start_time", "end_time", "duration",
           "start_timecode", "end_timecode", "duration_timecode", "motion_start_frame",
           "motion_end_frame", "peak_frame", "peak_time", "peak_score", "largest_blob",
           "confidence", "box_x", "box_y", "box_width", "box_height", "fps", "clip", "clip_start",
           "thumbnail")
# the columns that hold names from outside (see bgsub.text.one_line)
_NAMES = frozenset({"file", "clip", "thumbnail"})


def settings_digest(config: Config, options: ScanOptions, extra: dict[str, Any]) -> str:
    """A digest of everything that decides a file's results and outputs.

    The masks' and scores' settings, the scan options and *extra* (which
    outputs are wanted); not how the work is shared out (``scan.jobs``,
    threads, a cluster's stretches and its timeout), which changes no
    result, or none by more than a frame where a stretch ends.
    """
    scan = as_mapping(config.scan)  # durations as written: "1.5s", 45
    for key in ("jobs", "chunk_minutes", "chunk_warmup", "connect_timeout"):
        scan.pop(key)
    options_dict = as_mapping(options)
    for key in ("threads", "decode_threads"):
        options_dict.pop(key)
    text = json.dumps({"version": __version__, "model": dataclasses.asdict(config.model),
                       "postprocess": dataclasses.asdict(config.postprocess), "scan": scan,
                       "options": options_dict, "extra": extra}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def identity(path: Path) -> dict[str, Any]:
    """What tells a file apart from an edited or replaced one: where it is, its size and time."""
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _event_dict(event: MotionEvent, outputs: dict[str, Any]) -> dict[str, Any]:
    box = event.box or (None, None, None, None)
    return {
        "event": event.number,
        "start_frame": event.start_frame, "end_frame": event.end_frame,
        "start_time": round(event.start_time, 6), "end_time": round(event.end_time, 6),
        "duration": round(event.duration, 6),
        "start_timecode": timecode(event.start_time), "end_timecode": timecode(event.end_time),
        "duration_timecode": timecode(event.duration),
        "motion_start_frame": event.motion_start_frame,
        "motion_end_frame": event.motion_end_frame,
        "peak_frame": event.peak_frame, "peak_time": round(event.peak_frame / event.fps, 6),
        "peak_score": round(event.peak_score, 6), "largest_blob": event.largest,
        "confidence": _finite(event.confidence), "probability": _finite(event.probability),
        "motion_frames": event.motion_frames,
        "box_x": box[0], "box_y": box[1], "box_width": box[2], "box_height": box[3],
        "fps": event.fps,
        "clip": outputs.get("clip"), "clip_start": outputs.get("clip_start"),
        "clip_copied": outputs.get("clip_copied"), "clip_error": outputs.get("clip_error"),
        "thumbnail": outputs.get("thumbnail"),
    }


def _finite(value: float) -> float | None:
    """A measurement for the record: 4 decimals, None when not measured (NaN)."""
    return round(value, 4) if math.isfinite(value) else None


def record_of(result: ScanResult, name: str, ident: dict[str, Any], settings: str,
              outputs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """A scanned file's record; *outputs* maps event numbers to their clip and thumbnail.

    Clip and thumbnail paths are file names in the record's folder.
    """
    return {
        "schema": SCHEMA, "version": SCHEMA_VERSION, "name": name, "file": result.path,
        "identity": ident, "settings": settings, "status": "scanned", "error": None,
        "fps": result.fps, "width": result.width, "height": result.height,
        "downscale": result.downscale, "first_frame": result.first_frame,
        "last_frame": result.last_frame, "frames_scored": result.frames,
        "seconds": round(result.seconds, 6), "scan_seconds": round(result.scan_seconds, 3),
        "decode_errors": result.decode_errors,
        # the stretches that could not be read, [first frame, frames], as run warns of them
        "damaged": [[first, count] for first, count in result.damaged],
        "activity": {"first": result.activity.first, "width": result.activity.width,
                     "values": [round(v, 5) for v in result.activity.values]},
        "events": [_marked(_event_dict(e, outputs.get(e.number, {})), result)
                   for e in result.events],
        "scene": [_scene_dict(e, result.fps) for e in result.scene],
        "dropped": result.dropped,
        "below_confidence": result.unconfident,
    }


def _marked(row: dict[str, Any], result: ScanResult) -> dict[str, Any]:
    """A motion event's row with the kinds of the scene events it overlaps, under "scene"
    (unless ``events.during_scene`` keeps events as they are)."""
    if result.during_scene != "keep":
        row["scene"] = sorted({e.kind for e in overlapping(result.scene, row["start_frame"],
                                                             row["end_frame"])})
    return row


def _scene_dict(event, fps: float) -> dict[str, Any]:
    start, end = event.start_frame / fps, (event.end_frame + 1) / fps
    return {"kind": event.kind, "start_frame": event.start_frame,
            "end_frame": event.end_frame, "start_time": round(start, 6),
            "end_time": round(end, 6), "start_timecode": timecode(start),
            "end_timecode": timecode(end), "score": round(event.score, 4),
            "evidence": event.evidence}


def scene_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A file's scene events (its scene table), each with the file; none for older records."""
    return [{"file": record["file"], **e} for e in record.get("scene") or []]


def failure_record(path: Path, name: str, error: str) -> dict[str, Any]:
    """The record of a file that could not be scanned (kept in memory, never written)."""
    return {"schema": SCHEMA, "version": SCHEMA_VERSION, "name": name, "file": str(path),
            "status": "failed", "error": error, "events": [], "seconds": 0.0,
            "frames_scored": 0}


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at *path*, or None when there is none or it is not one of ours."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA \
            or record.get("version") != SCHEMA_VERSION:
        return None
    return record


def is_done(record: dict[str, Any] | None, ident: dict[str, Any], settings: str,
            folder: Path) -> bool:
    """Whether *record* is this file's, scanned with these settings, its outputs all there."""
    if record is None or record.get("status") != "scanned":
        return False
    if record.get("identity") != ident or record.get("settings") != settings:
        return False
    names = [e.get(key) for e in record.get("events", []) for key in ("clip", "thumbnail")]
    return all((folder / n).is_file() for n in names if n)


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write a file's record atomically."""
    write_text_atomically(path, json.dumps(record, indent=1) + "\n")


def _relative(folder: Path, name: str | None, base: Path) -> str | None:
    return None if not name else os.path.relpath(folder / name, base)


def event_rows(records: Iterable[tuple[dict[str, Any], Path]], base: Path
               ) -> list[dict[str, Any]]:
    """Every event of the *records* (each with its folder) as table rows, paths from *base*."""
    rows = []
    for record, folder in records:
        for event in record.get("events", []):
            row = {"file": record["file"], **event}
            row["clip"] = _relative(folder, event.get("clip"), base)
            row["thumbnail"] = _relative(folder, event.get("thumbnail"), base)
            rows.append(row)
    return rows


def write_events(csv_path: Path, records: list[tuple[dict[str, Any], Path]],
                 config: Config) -> Path:
    """The run's events table: *csv_path* and the JSON beside it; returns the JSON's path.

    Records come in the run's order of files.
    """
    base = csv_path.parent
    per_file = [event_rows([item], base) for item in records]
    rows = [row for file_rows in per_file for row in file_rows]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        # one event one line: a name's control characters escaped (the JSON
        # table holds the names as they are)
        writer.writerow({k: "" if row.get(k) is None else
                         one_line(row[k]) if k in _NAMES else row[k] for k in COLUMNS})
    write_text_atomically(csv_path, buffer.getvalue())
    json_path = csv_path.with_suffix(".json")
    files = []
    for (record, _), file_rows in zip(records, per_file):
        entry = {k: record.get(k) for k in ("file", "name", "status", "error", "fps", "width",
                                            "height", "first_frame", "last_frame",
                                            "frames_scored", "seconds", "decode_errors",
                                            "below_confidence", "damaged")}
        entry["events"] = file_rows
        entry["scene"] = scene_rows(record)
        files.append(entry)
    document = {"schema": SCHEMA + "-events", "version": SCHEMA_VERSION,
                "generator": f"bgsub {__version__}", "columns": list(COLUMNS),
                "scan": as_mapping(config.scan), "files": files}
    write_text_atomically(json_path, json.dumps(document, indent=1) + "\n")
    return json_path
