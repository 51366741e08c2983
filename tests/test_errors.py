"""Every error a user can cause ends the same way under every command that can meet it.

One line on stderr starting ``bgsub:``, exit status 2, no traceback (the
README's promise), whichever command (``bgsub run``, ``bgsub scan``,
``bgsub eval``) and whichever wing raised it: they are all
:class:`bgsub.errors.BgsubError`, caught in one place.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kit import bgsub

COMMANDS = ("run", "scan", "eval")


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """A folder with a tiny clip, a tiny CDnet sequence and some bad files."""
    root = tmp_path_factory.mktemp("errors")
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(6)]
    writer = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0,
                             (64, 48))
    for frame in frames:
        writer.write(frame)
    writer.release()
    seq = root / "seq"
    (seq / "input").mkdir(parents=True)
    (seq / "groundtruth").mkdir()
    for i, frame in enumerate(frames, start=1):
        cv2.imwrite(str(seq / "input" / f"in{i:06d}.jpg"), frame)
        cv2.imwrite(str(seq / "groundtruth" / f"gt{i:06d}.png"), np.zeros((48, 64), np.uint8))
    (seq / "temporalROI.txt").write_text("2 6\n")
    (root / "bad.toml").write_text("[model]\nk = 99\n")
    (root / "broken.toml").write_text("[model\nk = 3\n")
    (root / "damaged.ckpt").write_bytes(b"BGSUBMDL" + bytes(40))
    (root / "out").mkdir()
    return root


def command_line(command: str, case: list[str], inputs: str | None = None) -> list[str]:
    """*command* on its usual input (or *inputs*), with the arguments of *case*."""
    if command == "run":
        return ["run", inputs or "clip.avi", "--no-display", *case]
    if command == "scan":
        return ["scan", inputs or "clip.avi", "--output-dir", "out", "--scan-only", *case]
    return ["eval", inputs or "seq", *case]


# case -> its arguments under each command that accepts it
SHARED = {
    "bad config file": ["--config", "bad.toml"],
    "config file that is no TOML": ["--config", "broken.toml"],
    "missing config file": ["--config", "missing.toml"],
    "bad --set value": ["--set", "model.k=0"],
    "unknown --set key": ["--set", "model.nope=1"],
    "--set without a section": ["--set", "k=3"],
    "bad duration": ["--set", "scan.pre_roll=1.5m"],
    "bad region polygon": ["--set", "scan.regions=[[0, 0, 10]]"],
    "unknown option": ["--no-such-option"],
}
OUTPUTS = {  # an output in a folder that does not exist
    "run": ["--stats", "nowhere/stats.csv"],
    "scan": ["--events", "nowhere/events.csv"],
    "eval": ["--json", "nowhere/scores.json"],
}
MISSING_INPUT = {"run": "missing.mp4", "scan": "missing.mp4", "eval": "missing-sequence"}
REGION_MASK = {  # the run watches regions only for its events
    "run": ["--events", "events.jsonl", "--set", "scan.region_mask=missing.png"],
    "scan": ["--set", "scan.region_mask=missing.png"],
}

CASES = (
    [(name, command, command_line(command, args))
     for name, args in SHARED.items() for command in COMMANDS]
    + [("unwritable output", command, command_line(command, args))
       for command, args in OUTPUTS.items()]
    + [("missing input", command, command_line(command, [], inputs))
       for command, inputs in MISSING_INPUT.items()]
    + [("missing region mask", command, command_line(command, args))
       for command, args in REGION_MASK.items()]
    + [("damaged --load-model", "run", command_line("run", ["--load-model", "damaged.ckpt"]))]
)


@pytest.mark.parametrize("name,command,argv", CASES,
                         ids=[f"{command}: {name}" for name, command, _ in CASES])
def test_a_user_error_is_one_line_and_status_2_under_every_command(place, name, command, argv):
    r = bgsub(*argv, cwd=place)
    lines = r.stderr.splitlines()
    assert r.returncode == 2, (argv, r.stderr)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    assert len(lines) == 1 and lines[0].startswith("bgsub: "), r.stderr
    assert not (place / "nowhere").exists()


def test_the_reproduced_case_names_the_missing_mask(place):
    """``run --events x --set scan.region_mask=missing.png`` was an internal error (exit 1)."""
    r = bgsub("clip.avi", "--no-display", "--events", "x", "--set",
              "scan.region_mask=missing.png", cwd=place)
    assert r.returncode == 2, r.stderr
    assert "missing.png" in r.stderr and "internal error" not in r.stderr


def test_every_user_error_class_is_a_bgsub_error_with_status_2():
    from bgsub.cli.common import UsageError
    from bgsub.errors import BgsubError
    from bgsub.config import ConfigError
    from bgsub.eval.cdnet import CdnetError
    from bgsub.files import SinkError
    from bgsub.io.sources import SourceError
    from bgsub.model.checkpoint import CheckpointError
    from bgsub.model.masker import FrameSizeError
    from bgsub.regions import RegionError
    from bgsub.scan.clips import ClipError
    from bgsub.scan.cluster import ClusterError
    from bgsub.timecode import DurationError

    classes = (UsageError, ConfigError, CdnetError, SinkError, SourceError, CheckpointError,
               FrameSizeError, RegionError, ClipError, ClusterError, DurationError)
    for cls in classes:
        error = cls((4, 6), (4, 7)) if cls is FrameSizeError else cls("what is wrong")
        assert isinstance(error, BgsubError) and error.exit_status == 2, cls
        if cls is not FrameSizeError:  # which words its shapes make
            assert str(error) == "what is wrong"
    # documented (and caught by callers) as ValueError: they stay ValueErrors
    for cls in (ConfigError, CdnetError, CheckpointError, FrameSizeError, RegionError,
                DurationError):
        assert issubclass(cls, ValueError), cls
