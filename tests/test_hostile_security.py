"""Hostile names and files: spoofed lines, passwords in URLs, checkpoints that lie.

(The report's links to hostile names are checked in a browser in test_report.py.)
"""

from __future__ import annotations

import csv
import json
import os

import pytest

from bgsub.eval.synthetic import EventSpec
from bgsub.text import one_line
from kit import bgsub, events_recording

SPOOF = "bad\nbgsub: 0 failed.mp4"


@pytest.mark.parametrize("text, shown", [
    ("plain name.mp4", "plain name.mp4"),
    ("café über.mp4", "café über.mp4"),
    (SPOOF, "bad\\nbgsub: 0 failed.mp4"),
    ("a\tb\rc\x1b[31md\x7f.mp4", "a\\tb\\rc\\e[31md\\x7f.mp4"),
    ("line\u2028sep\u202eevil.mp4", "line\\u2028sep\\u202eevil.mp4"),
    (os.fsdecode(b"caf\xe9.mp4"), "caf\\xe9.mp4"),  # not UTF-8: the byte itself
    ("C:\\videos\\a.mp4", "C:\\videos\\a.mp4"),
])
def test_one_line_escapes_what_could_break_or_disguise_a_line(text, shown):
    assert one_line(text) == shown
    assert len(one_line(text).splitlines()) == 1 and one_line(text).isprintable()


@pytest.fixture(scope="module")
def spoofed(tmp_path_factory):
    """A scan of a folder with a spoofing non-video and a recording with events, both
    named with a newline."""
    root = tmp_path_factory.mktemp("spoof")
    folder = root / "cam"
    folder.mkdir()
    (folder / SPOOF).write_bytes(b"\x00\x00\x00\x20ftypisom" + os.urandom(2000))
    events_recording(folder, EventSpec(frames=150, crossings=((50, 69),)),
                     name="ev\nbgsub: x\tz.mp4")
    out = root / "out"
    r = bgsub("scan", folder, "--output-dir", out, "--events", out / "found.csv", cwd=root)
    return r, out


def test_a_name_with_a_newline_stays_on_its_own_line_on_stderr(spoofed):
    r, _ = spoofed
    assert r.returncode == 3, r.stderr  # one failed, one scanned
    lines = r.stderr.splitlines()
    assert not any(line.startswith("bgsub: 0 failed") for line in lines), r.stderr
    assert any("bad\\nbgsub: 0 failed.mp4" in line for line in lines), r.stderr
    assert "Traceback" not in r.stderr


def test_a_name_with_a_newline_keeps_an_event_to_one_line_on_stdout_and_in_the_csv(spoofed):
    r, out = spoofed
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].count("\t") == 4, r.stdout
    assert lines[0].split("\t")[0].endswith("ev\\nbgsub: x\\tz.mp4")
    text = (out / "found.csv").read_text()
    assert len(text.splitlines()) == 2, text  # the header and the event
    row = next(csv.DictReader(text.splitlines()))
    assert row["file"].endswith("/ev\\nbgsub: x\\tz.mp4")
    # the JSON table holds the name as it is
    document = json.loads((out / "found.json").read_text())
    assert {f["file"].rsplit("/", 1)[1] for f in document["files"]} == {
        SPOOF, "ev\nbgsub: x\tz.mp4"}
