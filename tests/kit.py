"""What many test files share: the command as a subprocess, one environment policy, fixtures' makers.

Import it as ``from kit import bgsub, noisy`` (``tests/`` is on the path, see conftest.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment a command runs in: this one, without a display (runs are headless)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(extra)
    return env


def bgsub(*args, cwd, timeout: float = 300, env: dict[str, str] | None = None,
          **popen) -> subprocess.CompletedProcess:
    """Run ``python -m bgsub ARGS`` in *cwd* and capture its text output (never raises on a status)."""
    return subprocess.run([sys.executable, "-m", "bgsub", *map(str, args)], cwd=cwd,
                          env=cli_env() if env is None else env, capture_output=True,
                          text=True, timeout=timeout, check=False, **popen)


def noisy(rng: np.random.Generator, image: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """*image* with Gaussian noise of *sigma*, rounded and clipped to uint8."""
    return np.clip(np.rint(image + rng.normal(0, sigma, image.shape)), 0, 255).astype(np.uint8)


def config_with(**scan):
    """The default configuration with the ``[scan]`` settings *scan* changed."""
    from bgsub.config import Config, replace_section

    config = Config()
    return dataclasses.replace(config, scan=replace_section(config.scan, **scan))


def events_recording(folder: Path, spec, name: str = "recording.mp4", **write) -> Path:
    """A synthetic recording of *spec* (an :class:`~bgsub.eval.synthetic.EventSpec`) in *folder*."""
    from bgsub.eval.synthetic import write_events_video

    path = Path(folder) / name
    assert write_events_video(str(path), spec, **write) == spec.frames
    return path


def read_video(path) -> list[np.ndarray]:
    """Every frame of the video at *path*, decoded by OpenCV as a player would."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "200k") -> Iterator[Path]:
    """A tmpfs of *size* mounted at *folder* (made here), unmounted afterwards; a skip
    saying why where none can be mounted (it needs root and mount)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)
