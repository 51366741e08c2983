"""The tests' own command runner (kit.bgsub): a command forked from the fork server is the
plain ``python -m bgsub`` as far as a test can see."""

import hashlib
import subprocess
import time

import pytest

import kit


def _both(*args, cwd):
    forked = kit.bgsub(*args, cwd=cwd)
    kit.FORK_SERVER = False
    try:
        plain = kit.bgsub(*args, cwd=cwd)
    finally:
        kit.FORK_SERVER = True
    return forked, plain


def _tree(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("args", [
    ["--version"],
    ["missing.mp4", "--no-display"],  # a user error: one line on stderr, status 2
    ["run", "--set", "model.k=0", "x.mp4"],  # a bad setting
    ["scan", "--help"],
])
def test_a_forked_command_writes_and_exits_as_the_plain_one(tmp_path, args):
    forked, plain = _both(*args, cwd=tmp_path)
    assert (forked.returncode, forked.stdout, forked.stderr) == \
        (plain.returncode, plain.stdout, plain.stderr)


def test_a_forked_run_writes_the_files_of_the_plain_one(tmp_path):
    sample = kit.ROOT / "videos" / "sample.mp4"
    runs = {}
    for fork in (True, False):
        kit.FORK_SERVER = fork
        try:
            folder = tmp_path / str(fork)
            folder.mkdir()
            runs[fork] = kit.bgsub(sample, "--no-display", "--quiet", "--mask-dir", "masks",
                                   "--stats", "stats.csv", cwd=folder)
        finally:
            kit.FORK_SERVER = True
        assert runs[fork].returncode == 0, runs[fork].stderr
    assert runs[True].stderr == runs[False].stderr == ""
    masks = [_tree(tmp_path / str(fork) / "masks") for fork in (True, False)]
    assert len(masks[0]) == 200 and masks[0] == masks[1]
    stats = [(tmp_path / str(fork) / "stats.csv").read_text().splitlines() for fork in (True, False)]
    assert len(stats[0]) == 201 and stats[0] == stats[1]


def test_a_forked_command_past_its_timeout_is_killed(tmp_path):
    with kit.stream_server() as port:  # a stream that never sends a frame
        start = time.monotonic()
        with pytest.raises(subprocess.TimeoutExpired):
            kit.bgsub(f"rtsp://127.0.0.1:{port}/live", "--no-display", "--set",
                      "source.open_timeout=60", cwd=tmp_path, timeout=1)
        assert time.monotonic() - start < 10
        # the server is free again: the next command runs at once
        assert kit.bgsub("--version", cwd=tmp_path).returncode == 0
