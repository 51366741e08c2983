"""A first run: the user is told when kernels compile, and the fps leaves the compile out."""

import importlib.util
import logging
import time
from types import SimpleNamespace

import numpy as np
from numba import types

from bgsub.io.pipeline import run_pipeline
from bgsub.model.kernels import build

KERNEL = """
from numba import njit

@njit(cache=True)
def twice(a):
    return a * 2
"""


class _Reader:
    def __init__(self, n):
        self.items = [(i, np.zeros((2, 2), np.uint8)) for i in range(n)] + [None]

    def get(self, timeout):
        return self.items.pop(0)


def _result():
    return SimpleNamespace(reset=False, foreground_fraction=0.0, log_likelihood=float("nan"),
                           recovering=False)


def test_a_slow_first_frame_does_not_lower_the_reported_fps():
    """The first frame (a compile, on a first run) takes 1 s, the 20 after it 10 ms each."""
    calls = []

    def step(index, frame):
        time.sleep(1.0 if not calls else 0.01)
        calls.append(index)
        return _result()

    summary = run_pipeline(_Reader(21), step)
    assert summary.processed == 21
    assert summary.first_seconds >= 1.0
    assert 40 < summary.fps <= 100  # 20 frames in about 0.2 s (0.2 s + 1 s would be 17)
    assert "fps mean after the first frame" in summary.line()


def _module(tmp_path, name):
    """A fresh import of a module with one cached kernel (its cache beside it, in tmp_path)."""
    (tmp_path / f"{name}.py").write_text(KERNEL)
    spec = importlib.util.spec_from_file_location(f"{name}_{time.monotonic_ns()}",
                                                  tmp_path / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_user_is_told_before_a_compile_and_not_when_the_cache_has_it(tmp_path, caplog):
    signature = (types.int64,)
    first = _module(tmp_path, "kernel_a").twice
    assert build.is_cached(first, signature) is False
    with caplog.at_level(logging.INFO, logger="bgsub"):
        build.prepare([(first, signature, False, 12.4)])
    notices = [r.getMessage() for r in caplog.records if r.name == "bgsub"]
    assert notices == ["compiling kernels for this CPU, once: about 12 s"]
    assert first(21) == 42 and first.stats.cache_misses[signature] == 1
    caplog.clear()
    again = _module(tmp_path, "kernel_a").twice  # another process would see the same
    assert build.is_cached(again, signature) is True
    with caplog.at_level(logging.INFO, logger="bgsub"):
        build.prepare([(again, signature, False, 12.4)])
    assert [r for r in caplog.records if r.name == "bgsub"] == []
    assert again.stats.cache_hits[signature] == 1


def test_when_the_cache_cannot_be_asked_a_timer_tells_a_long_compile(tmp_path, caplog,
                                                                      monkeypatch):
    kernel = _module(tmp_path, "kernel_b").twice
    monkeypatch.setattr(build, "is_cached", lambda d, s: None)
    monkeypatch.setattr(build, "_NOTICE_AFTER", 0.05)
    monkeypatch.setattr(kernel, "compile", lambda sig: time.sleep(0.5))
    with caplog.at_level(logging.INFO, logger="bgsub"):
        build.prepare([(kernel, (types.int64,), False, 3.0)])
    assert [r.getMessage() for r in caplog.records if r.name == "bgsub"] == [
        "compiling kernels for this CPU, once: about 3 s"]
    caplog.clear()
    monkeypatch.setattr(kernel, "compile", lambda sig: None)  # quick: no notice
    monkeypatch.setattr(build, "_NOTICE_AFTER", 0.3)
    with caplog.at_level(logging.INFO, logger="bgsub"):
        build.prepare([(kernel, (types.int64,), False, 3.0)])
    time.sleep(0.4)
    assert [r for r in caplog.records if r.name == "bgsub"] == []


def test_the_first_frame_announces_the_kernels_it_and_the_next_frames_compile(monkeypatch):
    """What a first frame prepares: the frame kernel and every pass the next frames run,
    with an estimate in the tens of seconds (what compiling them costs)."""
    from bgsub.config import ModelConfig
    from bgsub.model import backend as backend_module
    from bgsub.model.kernels import ghosts, neighbours, queries

    prepared = []
    monkeypatch.setattr(build, "prepare", prepared.append)
    cpu = backend_module.CpuBackend(ModelConfig(), threads=1)
    cpu.allocate(48 * 64, 3, 64)
    x = np.zeros(48 * 64 * 3, np.uint8)
    cpu._prepare(x, np.zeros(48 * 64, np.uint8), True)
    (needs,) = prepared
    dispatchers = [d for d, _, _, _ in needs]
    assert dispatchers[1:] == [neighbours.neighbour_pass, queries.cell_log_likelihood,
                               ghosts.track_ghosts]
    assert [vectorized for _, _, vectorized, _ in needs] == [True, False, False, False]
    assert 20 <= sum(seconds for _, _, _, seconds in needs) <= 120


def test_two_threads_preparing_the_same_kernels_tell_the_user_once(tmp_path, caplog):
    import threading

    kernel = _module(tmp_path, "kernel_c").twice
    real = kernel.compile
    barrier = threading.Barrier(2)

    def slow_compile(signature):  # a compile long enough for the other thread to ask meanwhile
        time.sleep(0.3)
        return real(signature)

    kernel.compile = slow_compile

    def prepare():
        barrier.wait()
        build.prepare([(kernel, (types.int64,), False, 2.0)])

    with caplog.at_level(logging.INFO, logger="bgsub"):
        threads = [threading.Thread(target=prepare) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert [r.getMessage() for r in caplog.records if r.name == "bgsub"] == [
        "compiling kernels for this CPU, once: about 2 s"]
    assert kernel.stats.cache_misses[(types.int64,)] == 1


def test_the_frames_after_the_first_call_what_it_prepared(monkeypatch):
    """No kernel compiles after the first frame: the passes run with the types prepared."""
    from bgsub import MixtureMasker

    prepared = []
    real = build.prepare
    monkeypatch.setattr(build, "prepare", lambda needs: (prepared.extend(needs), real(needs)))
    masker = MixtureMasker(threads=1)
    rng = np.random.default_rng(5)
    masker.apply(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    assert len(prepared) == 4
    compiled = {d: set(d.overloads) for d, _, _, _ in prepared}
    for d, signature, _, _ in prepared:
        assert tuple(signature) in compiled[d]
    for _ in range(8):  # the log-likelihood from the second, the ghost test every fourth
        masker.apply(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    assert {d: set(d.overloads) for d in compiled} == compiled
