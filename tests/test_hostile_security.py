"""Hostile names and files: spoofed lines, passwords in URLs, checkpoints that lie.

(The report's links to hostile names are checked in a browser in test_report.py.)
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from bgsub.eval.synthetic import EventSpec
from bgsub.text import one_line
from kit import bgsub, events_recording, read_video

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


# -- checkpoints that lie: every one a CheckpointError, before anything is allocated --

def _forge(path, change=None, payload=None, raw_header=None, tail=b""):
    """A checkpoint whose header *change* edits (or *raw_header* replaces), with a valid
    checksum over *payload* (default: the saved one), and *tail* bytes appended."""
    import hashlib
    import struct

    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    header = json.loads(data[16:16 + length])
    body = data[16 + length:] if payload is None else payload
    if change is not None:
        change(header)
    if isinstance(header, dict):
        header["sha256"] = hashlib.sha256(body).hexdigest()
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    out = path.with_name("forged.ckpt")
    out.write_bytes(data[:12] + struct.pack("<I", len(text)) + text + body + tail)
    return out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from bgsub import MixtureMasker

    rng = np.random.default_rng(0)
    m = MixtureMasker(threads=1)
    for _ in range(3):
        m.apply(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    path = tmp_path_factory.mktemp("ckpt") / "m.ckpt"
    m.save(path)
    return path


def _array(name):
    return lambda h: next(e for e in h["arrays"] if e["name"] == name)


def _set(key, value):
    def change(h):
        h[key] = value
    return change


def _entry(name, key, value):
    def change(h):
        _array(name)(h)[key] = value
    return change


def _negative(h):
    """The first array's nbytes negative, the last's raised to match: the sizes still add
    up."""
    first, last = h["arrays"][0], h["arrays"][-1]
    last["nbytes"] += first["nbytes"] + 8
    first["nbytes"] = -8


def _tracking(key, value):
    def change(h):
        h["tracking"][key] = value
    return change


FORGED = {
    "no arrays": (lambda h: h.pop("arrays"), "no 'arrays'"),
    "a list as header": (lambda h: h.clear(), None),  # replaced by a list below
    "an object dtype": (_entry("state", "dtype", "|O"), "dtype '|O'"),
    "a big-endian dtype": (_entry("ghosts", "dtype", ">i4"), "dtype '>i4'"),
    "a shape that does not fit": (_entry("state", "shape", [7, 3]), "does not hold shape"),
    "negative nbytes": (_negative, "bytes"),
    "string nbytes": (_entry("state", "nbytes", "10"), "bytes"),
    "an unknown array": (_entry("ghosts", "name", "extra"), "'extra'"),
    "a list as an array's name": (_entry("ghosts", "name", ["state"]), "['state']"),
    "a header nested too deep": (None, "header is damaged"),
    "a list of tracking": (_set("tracking", []), "'tracking' must be a mapping"),
    "a short likelihood average": (_tracking("log_likelihood_average", [0.5] * 5),
                                   "log_likelihood_average must be a list of 64"),
    "a string frame count": (_tracking("frames_learned", "7"), "frames_learned"),
    "an unknown setting": (lambda h: h["config"].update(colour=1), "model settings"),
    "a bad setting": (lambda h: h["config"].update(k=99), "model.k"),
    "a frame shape of 4000x4000": (_set("shape", [4000, 4000, 3]), "call for"),
    "a grey frame shape": (_set("shape", [24, 32]), "call for"),
    "no ghosts": (lambda h: h["arrays"].pop(), "arrays ['state']"),
}


@pytest.mark.parametrize("case", FORGED)
def test_a_checkpoint_with_a_valid_checksum_and_bad_content_is_refused(checkpoint, case):
    from bgsub import MixtureMasker
    from bgsub.model.checkpoint import CheckpointError

    change, message = FORGED[case]
    if case == "no ghosts":  # its bytes go too, so that the sizes still add up
        header_length = int.from_bytes(checkpoint.read_bytes()[12:16], "little")
        body = checkpoint.read_bytes()[16 + header_length:]
        ghosts = json.loads(checkpoint.read_bytes()[16:16 + header_length])["arrays"][-1]
        forged = _forge(checkpoint, change, payload=body[:ghosts["offset"]])
    elif case == "a list as header":
        forged = _forge(checkpoint, raw_header=b"[1, 2, 3]")
    elif case == "a header nested too deep":
        forged = _forge(checkpoint, raw_header=b"[" * 100000 + b"]" * 100000)
    else:
        forged = _forge(checkpoint, change)
    with pytest.raises(CheckpointError) as caught:
        MixtureMasker.load(forged)
    text = str(caught.value)
    assert text.startswith(str(forged) + ": ") and "\n" not in text
    if message:
        assert message in text, text


def test_a_checkpoint_longer_than_its_header_says_is_refused(checkpoint):
    from bgsub import MixtureMasker
    from bgsub.model.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="bytes of state where its header says"):
        MixtureMasker.load(_forge(checkpoint, tail=bytes(1000)))


NOT_REGULAR = r"""
import resource, sys
# a loader that reads /dev/zero to its end must fail here, not take the machine's memory
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
from bgsub import MixtureMasker
from bgsub.model.checkpoint import CheckpointError
for path in sys.argv[1:]:
    try:
        MixtureMasker.load(path)
    except CheckpointError as exc:
        print(exc, flush=True)
"""


def limited():
    """A child process's address space capped (a hostile checkpoint must not take the machine)."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


def test_a_checkpoint_that_is_no_regular_file_is_refused_without_reading(tmp_path):
    import subprocess
    import sys

    from kit import cli_env

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it blocks until a writer comes: never here
    # /dev/zero was read until the kernel killed the process
    r = subprocess.run([sys.executable, "-c", NOT_REGULAR, "/dev/zero", str(fifo),
                        str(tmp_path)], capture_output=True, text=True, timeout=120,
                       env=cli_env())
    lines = r.stdout.splitlines()
    assert len(lines) == 3 and all("not a regular file" in line for line in lines), (
        r.stdout, r.stderr[-2000:])


PEAK = r"""
import resource, sys
from bgsub import MixtureMasker
from bgsub.model.checkpoint import CheckpointError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    MixtureMasker.load(sys.argv[1])
except CheckpointError as exc:
    print(str(exc).splitlines()[0], file=sys.stderr)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.parametrize("shape", [[4000, 4000, 3], [20000, 20000, 3]])
def test_a_small_checkpoint_cannot_ask_for_gigabytes(checkpoint, shape):
    """The header's frame shape is checked against the state the file holds before the
    state is allocated (a 4000x4000 one grew the process by a gigabyte)."""
    import subprocess
    import sys

    from kit import cli_env

    forged = _forge(checkpoint, _set("shape", shape))
    r = subprocess.run([sys.executable, "-c", PEAK, str(forged)], capture_output=True,
                       text=True, timeout=300, env=cli_env(), preexec_fn=limited)
    assert "call for" in r.stderr, r.stderr
    assert int(r.stdout.split()[-1]) < 50, r.stdout  # MiB the load added at its peak


def test_the_command_refuses_a_forged_checkpoint_in_one_line(checkpoint, tmp_path):
    from bgsub.eval.synthetic import SceneSpec, write_video

    write_video(str(tmp_path / "small.avi"), SceneSpec(width=32, height=24, frames=3, seed=1))
    for case in ("a list as header", "an object dtype", "negative nbytes",
                 "a short likelihood average"):
        change, _ = FORGED[case]
        forged = (_forge(checkpoint, raw_header=b"[1, 2, 3]") if case == "a list as header"
                  else _forge(checkpoint, change))
        r = bgsub("small.avi", "--no-display", "--load-model", forged, "--mask-dir", "masks",
                  cwd=tmp_path)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, (case, r.stderr)
        assert lines[0].startswith(f"bgsub: error: {forged}: ") and "internal" not in lines[0]
        assert not (tmp_path / "masks").exists() or not any((tmp_path / "masks").iterdir())
    r = bgsub("small.avi", "--no-display", "--load-model", "/dev/zero", cwd=tmp_path,
              timeout=120, preexec_fn=limited)
    assert r.returncode == 2 and "not a regular file" in r.stderr, r.stderr


# -- passwords: none in any output, file names included -----------------------------------

def test_redact_hides_a_password_that_holds_an_at_sign():
    from bgsub.io.sources import redact

    assert redact("http://user:top@secret@127.0.0.1:8080/x failed") == (
        "http://user:***@127.0.0.1:8080/x failed")
    assert redact("rtsp://a:b@c@d@cam/x?q=a:b@c") == "rtsp://a:***@cam/x?q=a:b@c"
    # a library's message that quotes the address without its scheme
    assert redact("invalid address 'user:secret@host:1'", "tcp://user:secret@host:1") == (
        "invalid address 'user:***@host:1'")


def test_a_stream_password_with_an_at_sign_is_in_no_output(tmp_path):
    from bgsub.eval.synthetic import MjpegServer

    video = events_recording(tmp_path, EventSpec(frames=150, crossings=((50, 69),)))
    frames = read_video(video)
    server = MjpegServer(frames, fps=100, batches=[len(frames)])
    try:
        r = bgsub(f"http://user:pw1@s3cret@127.0.0.1:{server.port}/x", "--no-display",
                  "--events", "ev.jsonl", "--clips", "c", "--set", "source.reconnect=false",
                  "--set", "source.open_timeout=5", cwd=tmp_path, timeout=300)
    finally:
        server.close()
    lines = (tmp_path / "ev.jsonl").read_text().splitlines()
    assert lines and json.loads(lines[0])["source"] == (
        f"http://user:***@127.0.0.1:{server.port}/x"), lines
    clips = [p.name for p in (tmp_path / "c").iterdir()]
    assert clips, r.stderr
    for text in [r.stderr, r.stdout, *lines, *clips]:
        assert "s3cret" not in text and "pw1" not in text, text


def test_live_events_redact_the_name_they_are_given(tmp_path):
    from bgsub.config import Config
    from bgsub.live.events import LiveEvents

    events = LiveEvents("http://user:pw1@s3cret@127.0.0.1:1/x", Config(), 25.0,
                        clips=tmp_path / "c")
    try:
        assert events.name == "http://user:***@127.0.0.1:1/x"
        assert "s3cret" not in events._clips.prefix and "pw1" not in events._clips.prefix
    finally:
        events.close()


def test_a_scheduler_password_is_in_no_message(tmp_path):
    pytest.importorskip("distributed")
    video = events_recording(tmp_path, EventSpec(frames=20, crossings=()))
    for address in ("tcp://user:secret@127.0.0.1:1", "tcp://user:pw1@s3cret@127.0.0.1:1"):
        r = bgsub("scan", video, "--scheduler", address, "--set", "scan.connect_timeout=2",
                  cwd=tmp_path, timeout=300)
        assert r.returncode == 2, r.stderr
        assert "user:***@127.0.0.1:1" in r.stderr, r.stderr
        assert "s3cret" not in r.stderr + r.stdout and "pw1" not in r.stderr + r.stdout
