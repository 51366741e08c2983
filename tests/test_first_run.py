"""A first run: the user is told when kernels compile, and the fps leaves the compile out."""

import importlib.util
import logging
import time
from types import SimpleNamespace

import numpy as np
import pytest
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


HELPED = """
from numba import njit

@njit(cache=True)
def first(a):
    return a * 2

@njit(cache=True)
def second(a):
    return a * 3

@njit(cache=True)
def third(a):
    return a * 4

class Arg:  # found only where this module's folder is on sys.path
    def __init__(self, n):
        self.n = n

def warm(arg):
    third(arg.n)
"""


def _helped_module(tmp_path, monkeypatch, name):
    """A module of three cached kernels that a helper process can import by name."""
    import sys

    (tmp_path / f"{name}.py").write_text(HELPED)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib.import_module(name)


def test_a_helper_process_compiles_some_kernels_while_this_one_compiles_the_others(
        tmp_path, monkeypatch, caplog):
    """With two cores, the heaviest kernel compiles here, the next in a helper process
    with the warm-up job; this process then loads them from the cache.  The notice
    gives the longer of the two shares, the helper's start included."""
    monkeypatch.setattr(build, "_cores", lambda: 2)
    monkeypatch.setattr(build, "HELPER", True)
    module = _helped_module(tmp_path, monkeypatch, "helped_a")
    signature = (types.int64,)
    started = []
    real_start = build._Helper.start.__func__

    def start(cls, kernels, warm_ups):
        started.append(([d for d, _, _, _ in kernels], list(warm_ups)))
        return real_start(cls, kernels, warm_ups)

    monkeypatch.setattr(build._Helper, "start", classmethod(start))
    arg = module.Arg(1)  # the helper unpickles it once it has this process's sys.path
    with caplog.at_level(logging.INFO, logger="bgsub"):
        with build.warming(("helped_a", "warm", (arg,), 2.0)):
            build.prepare([(module.first, signature, False, 10.0),
                           (module.second, signature, False, 6.0)])
    assert started == [([module.second], [("helped_a", "warm", (arg,), 2.0)])]
    assert [r.getMessage() for r in caplog.records if r.name == "bgsub"] == [
        "compiling kernels for this CPU, once: about 10 s"]  # max(10, 1.5 + 6 + 2)
    assert module.first.stats.cache_misses[signature] == 1  # compiled here
    assert module.second.stats.cache_hits[signature] == 1  # loaded: the helper compiled it
    assert module.first(2) == 4 and module.second(2) == 6
    assert module.third(2) == 8 and module.third.stats.cache_hits[signature] == 1  # warm-up


def test_without_a_second_core_or_with_little_to_share_everything_compiles_here(
        tmp_path, monkeypatch):
    monkeypatch.setattr(build, "HELPER", True)
    monkeypatch.setattr(build._Helper, "start", classmethod(lambda cls, k, w: 1 / 0))
    module = _helped_module(tmp_path, monkeypatch, "helped_b")
    signature = (types.int64,)
    monkeypatch.setattr(build, "_cores", lambda: 1)
    build.prepare([(module.first, signature, False, 10.0), (module.second, signature, False, 6.0)])
    monkeypatch.setattr(build, "_cores", lambda: 2)
    # the helper's share would be under _HELPER_MIN seconds
    build.prepare([(module.third, signature, False, 10.0), (module.third, (types.float64,),
                                                             False, 1.0)])
    for kernel in (module.first, module.second):
        assert kernel.stats.cache_misses[signature] == 1


def test_a_failing_helper_leaves_its_kernels_to_this_process(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(build, "_cores", lambda: 2)
    monkeypatch.setattr(build, "HELPER", True)
    monkeypatch.setattr(build, "_HELPER_CODE", "import sys; sys.stderr.write('broken\\n'); "
                                               "sys.exit(3)")
    module = _helped_module(tmp_path, monkeypatch, "helped_c")
    signature = (types.int64,)
    with caplog.at_level(logging.DEBUG, logger="bgsub"):
        build.prepare([(module.first, signature, False, 10.0),
                       (module.second, signature, False, 6.0)])
    assert module.second.stats.cache_misses[signature] == 1  # compiled here after all
    assert module.second(2) == 6
    assert any("failed (exit 3): broken" in r.getMessage() for r in caplog.records)


def test_a_helper_that_hangs_is_stopped_and_its_kernels_compile_here(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "_cores", lambda: 2)
    monkeypatch.setattr(build, "HELPER", True)
    monkeypatch.setattr(build, "_HELPER_CODE", "import time; time.sleep(60)")
    monkeypatch.setattr(build, "_HELPER_GRACE", 0.5)
    monkeypatch.setattr(build, "_HELPER_PATIENCE", 0.0)
    helpers = []
    real_start = build._Helper.start.__func__
    monkeypatch.setattr(build._Helper, "start", classmethod(
        lambda cls, k, w: helpers.append(real_start(cls, k, w)) or helpers[-1]))
    module = _helped_module(tmp_path, monkeypatch, "helped_e")
    signature = (types.int64,)
    t = time.monotonic()
    build.prepare([(module.first, signature, False, 10.0), (module.second, signature, False, 6.0)])
    assert len(helpers) == 1 and helpers[0]._process.returncode is not None
    assert time.monotonic() - t < 30
    assert module.second.stats.cache_misses[signature] == 1 and module.second(1) == 3


def test_an_interrupted_compile_stops_the_helper(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "_cores", lambda: 2)
    monkeypatch.setattr(build, "HELPER", True)
    monkeypatch.setattr(build, "_HELPER_CODE", "import time; time.sleep(60)")
    helpers = []
    real_start = build._Helper.start.__func__
    monkeypatch.setattr(build._Helper, "start", classmethod(
        lambda cls, k, w: helpers.append(real_start(cls, k, w)) or helpers[-1]))
    module = _helped_module(tmp_path, monkeypatch, "helped_d")

    def interrupted(dispatcher, signature, vectorized=True):
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "compile_vectorized", interrupted)
    try:
        build.prepare([(module.first, (types.int64,), False, 10.0),
                       (module.second, (types.int64,), False, 6.0)])
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interrupt was swallowed")
    (helper,) = helpers
    assert helper._process.returncode is not None  # killed and waited for


def test_the_helper_has_a_session_of_its_own_and_does_not_outlive_this_process(
        tmp_path, monkeypatch):
    """A Ctrl-C at the terminal is this process's to handle (the helper is in another
    session), and a helper whose parent is gone (its stdin closed) exits at once."""
    import os

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    helper = build._Helper.start([], [("time", "sleep", (60,), 1.0)])
    try:
        if os.name == "posix":
            assert os.getsid(helper._process.pid) != os.getsid(0)
        time.sleep(1.0)  # the job read, the warm-up sleeping
        assert helper._process.poll() is None
        t = time.monotonic()
        helper._stdin.close()  # as when this process dies
        assert helper._process.wait(timeout=20) == 1
        assert time.monotonic() - t < 20
    finally:
        helper.stop()


def test_the_helper_caches_only_its_kernels_not_the_helpers_they_inline(tmp_path, monkeypatch):
    """In a helper process, this package's functions other than its kernels neither read
    nor write Numba's cache: this process saves those alone (two writers of one
    function's entries can mix them up)."""
    from bgsub.model.kernels import layout

    sig = (types.Array(types.uint16, 1, "C"), types.Array(types.float32, 2, "C"),
           types.Array(types.float32, 3, "C"), types.Array(types.float32, 3, "C"),
           types.float32, types.float32)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    helper = build._Helper.start([(layout._decode, sig, False, 1.0)], [])
    try:
        _, err = helper._process.communicate(timeout=300)
    finally:
        helper.stop()
    assert helper._process.returncode == 0, err.decode()
    saved = sorted(p.name.split("-")[0] for p in tmp_path.rglob("*.nbi"))
    assert saved == ["layout._decode"], saved
    # it does call helpers of its module, compiled in the helper but not cached
    assert {"dec_w", "dec_mu", "dec_var"} <= set(layout._decode.py_func.__code__.co_names)


@pytest.mark.parametrize("k, channels, variances, variance", [
    (3, 3, 1, 15.0), (3, 1, 1, 15.0), (5, 3, 3, 15.0), (1, 3, 1, 1e6), (2, 3, 3, 0.01)])
def test_a_new_models_tile_is_what_encoding_empty_slots_gives(k, channels, variances, variance):
    """The state a new model starts from, made in NumPy, against the encoder's."""
    from bgsub.model.kernels import layout

    n = layout.BLOCK
    encoded = layout.encode_state(np.zeros((k, n)), np.zeros((k, channels, n)),
                                  np.full((k, variances, n), variance), 4.0, 5000.0)
    tile = layout.empty_tile(k, channels, variances, variance, 4.0, 5000.0)
    assert tile.dtype == np.uint16 and np.array_equal(tile, encoded)
    assert tile.any() == (variance > 4.0)  # the variance planes hold its code (0: the floor)
