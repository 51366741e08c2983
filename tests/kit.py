"""What many test files share: the command as a subprocess, one environment policy, fixtures' makers.

Import it as ``from kit import bgsub, noisy`` (``tests/`` is on the path, see conftest.py).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

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
