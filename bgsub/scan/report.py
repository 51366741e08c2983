"""The scan's HTML report: which files had motion, and each file's timeline and events.

One self-contained HTML file (no script or style from elsewhere; the
thumbnails and clips are linked by relative paths, so the report moves with
its folder).  Names are data: escaped in the page's text, percent-encoded in
links, which always start ``./`` (a file called ``javascript:alert(1).mp4``
links to itself, not to a script).  At the top, a table of every file: scanned with motion,
scanned without, or failed (with the reason).  Then per file with events an
activity timeline, an SVG of the highest score in each stretch of time with
the events shaded and the threshold drawn, and the events with their
thumbnails, times, confidence and clips.  Between the two, a table of every
motion event of the run, the most confident first; a click on a column's
header sorts by that column (a small inline script: without it, the table
stays in that order).

Made from the files' records (:mod:`bgsub.scan.tables`), so a run that resumes
reports the files an earlier run scanned as well.
"""

from __future__ import annotations

import html
import os
import urllib.parse
from pathlib import Path
from typing import Any

from .._version import __version__
from ..files import write_text_atomically
from ..text import one_line
from ..timecode import timecode

__all__ = ["write_report", "render_report"]

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; } td, th { padding: .2em .7em; border-bottom: 1px solid #ddd;
  text-align: left; } th { background: #eee; }
.motion { color: #b00; font-weight: 600; } .none { color: #777; } .failed { color: #fff;
  background: #b00; padding: 0 .4em; border-radius: 3px; }
svg.timeline { width: 100%; height: 70px; background: #fff; border: 1px solid #ccc; }
.events { display: flex; flex-wrap: wrap; gap: .8em; }
.event { background: #fff; border: 1px solid #ccc; padding: .4em; width: 330px; }
.event img { width: 320px; height: auto; display: block; background: #ddd; min-height: 40px; }
#broken { display: none; color: #b00; }
.scene-list { color: #6a1b9a; }
#events th { cursor: pointer; } #events td.num { text-align: right; }
"""

# counts thumbnails that do not load (a report moved without its folder),
# and says so on the page; the count is also the page's data-broken-images
_SCRIPT = """
window.addEventListener("load", function () {
  var broken = 0;
  document.querySelectorAll("img").forEach(function (img) {
    if (!img.complete || img.naturalWidth === 0) broken++;
  });
  document.body.dataset.brokenImages = String(broken);
  document.body.dataset.loaded = "yes";
  if (broken) {
    var note = document.getElementById("broken");
    note.textContent = broken + " thumbnail(s) could not be loaded: keep the report in " +
      "the folder it was written to.";
    note.style.display = "block";
  }
});
// the events table: a click on a header sorts by its column (numbers by data-sort),
// a second click reverses; the page's own order is by confidence, highest first
document.addEventListener("DOMContentLoaded", function () {
  var table = document.getElementById("events");
  if (!table) return;
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var down = th.dataset.order !== "descending";
      var key = function (row) {
        var cell = row.cells[column], v = cell.dataset.sort;
        return v === undefined ? cell.textContent : (v === "" ? -Infinity : parseFloat(v));
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var c = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
        return down ? -c : c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
      table.querySelectorAll("th").forEach(function (other) { delete other.dataset.order; });
      th.dataset.order = down ? "descending" : "ascending";
      table.dataset.sorted = th.dataset.key + " " + th.dataset.order;
    });
  });
});
"""


def _text(value: Any) -> str:
    """A value of a record (read back from a file: not to be trusted) as the page's text."""
    return html.escape(one_line(value))


def _link(folder: Path, name: str | None, base: Path) -> str | None:
    """The relative URL of *folder* / *name* from *base* (None for no name).

    Percent-encoded (a name's ``#``, ``?``, ``%``, ``:``, newline are data, not
    URL syntax; the bytes of a name that is not UTF-8 go as they are) and
    starting ``./``, so that no name reads as a scheme (``javascript:``).
    """
    if not name:
        return None
    relative = os.path.relpath(folder / name, base).replace(os.sep, "/")
    return "./" + urllib.parse.quote(os.fsencode(relative), safe="/")


def _timeline(record: dict[str, Any], threshold: float) -> str:
    """The activity timeline of one file as inline SVG."""
    first, last = record["first_frame"], record["last_frame"]
    span = max(1, last - first + 1)
    activity = record.get("activity") or {"first": first, "width": 1, "values": []}
    values = activity["values"]
    top = max([threshold * 3, *values]) or 1.0
    width, height = 1000.0, 60.0

    def x(frame: float) -> float:
        return (frame - first) / span * width

    def y(value: float) -> float:
        return height - min(1.0, value / top) * (height - 4)

    parts = [f'<svg class="timeline" viewBox="0 0 {width:g} {height:g}" '
             'preserveAspectRatio="none" role="img" aria-label="activity timeline">']
    for event in record["events"]:
        x0, x1 = x(event["start_frame"]), x(event["end_frame"] + 1)
        parts.append(f'<rect class="event-span" x="{x0:.2f}" y="0" width="{max(x1 - x0, 0.5):.2f}" '
                     f'height="{height:g}" fill="#f4b400" fill-opacity="0.35">'
                     f'<title>event {_text(event["event"])}: '
                     f'{_text(event["start_timecode"])} - {_text(event["end_timecode"])}'
                     '</title></rect>')
    for n, event in enumerate(record.get("scene") or [], 1):
        x0, x1 = x(event["start_frame"]), x(event["end_frame"] + 1)
        parts.append(f'<rect class="scene-span" data-kind="{html.escape(str(event["kind"]))}" '
                     f'x="{x0:.2f}" y="{height - 8:g}" width="{max(x1 - x0, 0.5):.2f}" '
                     f'height="8" fill="#8e24aa" fill-opacity="0.7"><title>scene event {n}: '
                     f'{html.escape(str(event["kind"]))} {event["start_timecode"]} - '
                     f'{event["end_timecode"]}</title></rect>')
    if values:
        step = activity["width"]
        points = []
        for i, value in enumerate(values):
            left = activity["first"] + i * step
            points.append(f"{x(left):.2f},{y(value):.2f} {x(left + step):.2f},{y(value):.2f}")
        parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#1565c0" '
                     'stroke-width="1.2" vector-effect="non-scaling-stroke"/>')
    parts.append(f'<line x1="0" x2="{width:g}" y1="{y(threshold):.2f}" y2="{y(threshold):.2f}" '
                 'stroke="#b00" stroke-dasharray="4 3" vector-effect="non-scaling-stroke">'
                 '<title>threshold</title></line>')
    parts.append("</svg>")
    return "".join(parts)


def _number(value: Any) -> float | None:
    """A number read back from a record (not to be trusted): None when it is none, or NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def _confidence(event: dict[str, Any]) -> float | None:
    """An event's confidence as read back from a record (None: not measured)."""
    return _number(event.get("confidence"))


def _cell(value: float | None, shown: str) -> str:
    """A numeric cell of the events table: sorted by its number (none: lowest)."""
    key = "" if value is None else f"{value:.6f}"
    return f'<td class="num" data-sort="{key}">{shown if value is not None else "-"}</td>'


def _events_table(records: list[tuple[dict[str, Any], Path]]) -> list[str]:
    """Every motion event of the run, the most confident first (not measured: last)."""
    rows = []
    for i, (record, _) in enumerate(records):
        if record["status"] != "scanned":
            continue
        for event in record["events"]:
            rows.append((i, record, event))
    if not rows:
        return []
    rows.sort(key=lambda r: -(_confidence(r[2]) if _confidence(r[2]) is not None else -1.0))
    out = ['<table id="events"><thead><tr><th data-key="file">file</th>'
           '<th data-key="event">event</th><th data-key="start">start</th>'
           '<th data-key="duration">duration (s)</th><th data-key="peak">peak (%)</th>'
           '<th data-key="confidence">confidence</th></tr></thead><tbody>']
    for i, record, event in rows:
        number, start = _number(event.get("event")), _number(event.get("start_time"))
        if start is None:  # an older record's: its frame still orders a file's events
            start = _number(event.get("start_frame"))
        duration, peak = _number(event.get("duration")), _number(event.get("peak_score"))
        confidence = _confidence(event)
        out.append(f'<tr><td><a href="#file{i}">{_text(record["file"])}</a></td>'
                   + _cell(number, _text(event.get("event")))
                   + _cell(start, _text(event.get("start_timecode")))
                   + _cell(duration, f"{duration or 0:.1f}")
                   + _cell(peak, f"{100 * (peak or 0):.2f}")
                   + _cell(confidence, f"{confidence or 0:.2f}").replace(
                       'class="num"', 'class="num confidence"') + "</tr>")
    out.append("</tbody></table>")
    return out


def render_report(records: list[tuple[dict[str, Any], Path]], base: Path, threshold: float,
                  title: str = "bgsub scan") -> str:
    """The report's HTML for *records* (each with its folder), links relative to *base*."""
    esc = html.escape
    scanned = [r for r, _ in records if r["status"] == "scanned"]
    with_motion = [r for r in scanned if r["events"]]
    failed = [r for r, _ in records if r["status"] != "scanned"]
    events = sum(len(r["events"]) for r in scanned)
    scene = sum(len(r.get("scene") or []) for r in scanned)
    hours = sum(r.get("seconds", 0.0) for r in scanned) / 3600
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{esc(title)}</title><style>{_STYLE}</style>",
           f"<script>{_SCRIPT}</script></head><body>",
           f"<h1>{esc(title)}</h1>",
           f'<p id="summary">{len(records)} files: {len(with_motion)} with motion, '
           f"{len(scanned) - len(with_motion)} without, {len(failed)} failed; {events} events "
           f"and {scene} scene events in {hours:.2f} hours of video. "
           f"Made by bgsub {esc(__version__)}.</p>",
           '<p id="broken"></p>',
           '<table id="files"><tr><th>file</th><th>motion</th><th>events</th>'
           "<th>length</th></tr>"]
    for i, (record, _) in enumerate(records):
        if record["status"] != "scanned":
            state = (f'<span class="failed">failed</span> '
                     f'{_text(record.get("error") or "")}')
            count = length = ""
        elif record["events"]:
            state = f'<a class="motion" href="#file{i}">motion</a>'
            count, length = str(len(record["events"])), timecode(record["seconds"])
        else:
            state = '<span class="none">none</span>'
            count, length = "0", timecode(record["seconds"])
        out.append(f'<tr data-status="{esc(record["status"])}"><td>{_text(record["file"])}</td>'
                   f"<td>{state}</td><td>{count}</td><td>{length}</td></tr>")
    out.append("</table>")
    out += _events_table(records)
    for i, (record, folder) in enumerate(records):
        if record["status"] != "scanned" or not (record["events"] or record.get("scene")):
            continue
        out.append(f'<section class="file" id="file{i}"><h2>{_text(record["file"])}</h2>')
        out.append(f'<p>{len(record["events"])} events in {timecode(record["seconds"])} '
                   f'({_text(record["width"])}x{_text(record["height"])}, '
                   f'{record["fps"]:g} fps)</p>')
        out.append(_timeline(record, threshold))
        if record.get("scene"):
            out.append('<p class="scene-list">scene events: ' + "; ".join(
                f'{esc(str(e["kind"]))} {e["start_timecode"]} - {e["end_timecode"]}'
                for e in record["scene"]) + "</p>")
        out.append('<div class="events">')
        for event in record["events"]:
            image = _link(folder, event.get("thumbnail"), base)
            clip = _link(folder, event.get("clip"), base)
            out.append('<div class="event">')
            if image:
                out.append(f'<img src="{esc(image)}" alt="event {_text(event["event"])}, '
                           f'peak frame {_text(event["peak_frame"])}" loading="eager">')
            out.append(f'<div>event {_text(event["event"])}: '
                       f'{_text(event["start_timecode"])} - {_text(event["end_timecode"])} '
                       f'({event["duration"]:.1f} s), peak {100 * event["peak_score"]:.2f}% '
                       f'at frame {_text(event["peak_frame"])}')
            if _confidence(event) is not None:
                out.append(f', confidence {_confidence(event):.2f}')
            if clip:
                out.append(f' · <a href="{esc(clip)}">clip</a>')
            out.append("</div></div>")
        out.append("</div></section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(path: Path, records: list[tuple[dict[str, Any], Path]], threshold: float) -> None:
    """Write the report for *records* to *path*, atomically."""
    write_text_atomically(path, render_report(records, path.parent, threshold))
