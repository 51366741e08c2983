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

import cv2  # noqa: F401  (its import sets variables of the environment: see _START_ENV)
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
    """Run ``python -m bgsub ARGS`` in *cwd* and capture its text output (never raises on a status).

    With the default environment and nothing else asked of the process, the
    command is a process forked from a server that has the libraries imported
    already (tests/preload.py), which saves each command about a second of
    imports; it is otherwise what ``python -m bgsub`` is: its own process,
    working folder, environment, standard streams and exit status.  A test
    that sets the environment or the process's pipes gets the plain command.
    """
    argv = [str(a) for a in args]
    if env is None and not popen and FORK_SERVER:
        done = _forked(argv, cwd, timeout)
        if done is not None:
            return done
    return subprocess.run([sys.executable, "-m", "bgsub", *argv], cwd=cwd,
                          env=cli_env() if env is None else env, capture_output=True,
                          text=True, timeout=timeout, check=False, **popen)


# kit.bgsub forks its commands from tests/forkserver.py (BGSUB_TEST_FORK_SERVER=0: never)
FORK_SERVER = os.environ.get("BGSUB_TEST_FORK_SERVER", "1") != "0"
_server: dict = {}
# the environment the server imports in: this process's as the tests start (a
# test that changes it, monkeypatch.setenv say, gets plain commands meanwhile),
# with what importing OpenCV adds to it (LD_LIBRARY_PATH, QT_QPA_*, imported
# above), as it does in the tests' process and in every command
_START_ENV = cli_env()


def _fork_server() -> tuple[str, dict[str, str]] | None:
    """This process's fork server: its socket and the environment it imported in (None: none)."""
    if "socket" not in _server:
        import atexit
        import tempfile

        folder = tempfile.mkdtemp(prefix="bgsub-forkserver-")
        path = os.path.join(folder, "socket")
        env = _START_ENV
        process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("forkserver.py")),
                                    path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   env={**env, "PYTHONPATH": os.pathsep.join(
                                       [str(Path(__file__).parent), env.get("PYTHONPATH", "")])})
        ready = process.stdout.readline() == b"ready\n"
        atexit.register(_stop_fork_server, process, folder)
        _server.update(socket=path if ready else None, env=env)
    if _server["socket"] is None:
        return None
    return _server["socket"], _server["env"]


def _stop_fork_server(process: subprocess.Popen, folder: str) -> None:
    import shutil

    process.stdin.close()  # the server leaves
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(folder, ignore_errors=True)


def _forked(argv: list[str], cwd, timeout: float) -> subprocess.CompletedProcess | None:
    """``python -m bgsub ARGV`` forked from the fork server (None: run it as a plain command)."""
    import json
    import signal
    import socket
    import tempfile

    server = _fork_server()
    env = cli_env()
    if server is None or _imports_see(server[1]) != _imports_see(env):
        return None  # the libraries were imported in another environment
    command = [sys.executable, "-m", "bgsub", *argv]
    request = json.dumps({"argv": argv, "cwd": str(Path(cwd).resolve()), "env": env})
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(server[0])
        socket.send_fds(connection, [request.encode() + b"\n"], [out.fileno(), err.fileno()])
        replies = connection.makefile("rb")
        pid = int(replies.readline())
        connection.settimeout(timeout)
        try:
            status = replies.readline()
        except TimeoutError:  # the server reaps it and serves the next one
            os.kill(pid, signal.SIGKILL)
            raise subprocess.TimeoutExpired(command, timeout, _text(out), _text(err)) from None
        return subprocess.CompletedProcess(command, int(status), _text(out), _text(err))


def _imports_see(env: dict[str, str]) -> dict[str, str]:
    """What of *env* the libraries may read as they are imported (not the name of the test)."""
    return {k: v for k, v in env.items() if k != "PYTEST_CURRENT_TEST"}


def _text(file) -> str:
    """What a command wrote to *file*, as ``subprocess.run(text=True)`` gives it."""
    file.seek(0)
    return file.read().decode().replace("\r\n", "\n").replace("\r", "\n")


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


def shared_video(factory: pytest.TempPathFactory, spec, suffix: str = ".avi") -> Path:
    """A synthetic video of *spec* (a :class:`~bgsub.eval.synthetic.SceneSpec`), written
    once per test run and shared by the tests and test processes that ask for it.

    Rendering is most of what a long test video costs (a 640x480 frame's
    noise alone takes 12 ms).  The file lives beside the test processes'
    temporary folders; the first to ask writes it under a lock, the others
    wait for it.  Callers read it and never change it.
    """
    import fcntl

    from bgsub.eval.synthetic import write_video

    base = factory.getbasetemp()
    # with pytest-xdist each process has a folder of its own, in the run's folder
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared-videos"
    folder.mkdir(exist_ok=True)
    name = "_".join(f"{v}" for v in dataclasses.astuple(spec)) + suffix
    path = folder / name
    with open(folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            partial = folder / f"partial-{os.getpid()}{suffix}"
            assert write_video(str(partial), spec) == spec.frames
            partial.rename(path)
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
def stream_server(hang_up: bool = False) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts one connection and sends nothing: it keeps
    it open, silent, or (*hang_up*) closes it at once; yields its port."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held = []

    def accept():
        connection, _ = server.accept()
        if hang_up:
            connection.close()
        else:
            held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        for connection in held:
            connection.close()


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
