"""The public API: construction, configuration, input checks."""

from pathlib import Path

import numpy as np
import pytest

import bgsub
from bgsub import ConfigError, FrameSizeError, MixtureMasker, ModelConfig

ROOT = Path(__file__).resolve().parents[1]


def test_public_names():
    for name in ("MixtureMasker", "ModelConfig", "load_config", "ConfigError",
                 "FrameSizeError", "absorption_frames", "Postprocessor", "PostprocessConfig"):
        assert hasattr(bgsub, name)


def test_keyword_parameters_and_from_config(tmp_path):
    m = MixtureMasker(k=5, learning_rate=0.01)
    assert m.config.k == 5 and m.config.learning_rate == 0.01
    assert m.config.match_threshold == ModelConfig().match_threshold
    path = tmp_path / "c.toml"
    path.write_text("[model]\nk = 2\nbackground_ratio = 0.8\n")
    m = MixtureMasker.from_config(path)
    assert (m.config.k, m.config.background_ratio) == (2, 0.8)
    assert m.apply(np.zeros((4, 5, 3), np.uint8)).shape == (4, 5)
    assert m.state()["w"].shape == (2, 20)


@pytest.mark.parametrize("params,needle", [
    ({"k": 0}, "model.k"),
    ({"k": 2.5}, "model.k must be int"),
    ({"learning_rate": 1.5}, "model.learning_rate must be in [0, 1]"),
    ({"learning_rate": float("nan")}, "model.learning_rate"),
    ({"background_ratio": 1.0}, "model.background_ratio must be in (0, 1)"),
    ({"match_threshold": 0}, "model.match_threshold"),
    ({"init_variance": 5.0, "min_variance": 10.0}, "min_variance <= init_variance"),
    ({"rho": "fast"}, "model.rho must be one of"),
    ({"max_variance": 1e39, "init_variance": 1e39}, "model.init_variance must be in"),
    ({"em_max_iter": 10**12}, "model.em_max_iter must be in 1..10000"),
    ({"init": "kmeans"}, "model.init must be one of"),
    ({"covariance": "full"}, "model.covariance must be one of"),
    ({"learning_rate": "0.1"}, "model.learning_rate must be float"),
    ({"shadows": "yes"}, "model.shadows must be bool"),
    ({"shadow_value": 255}, "model.shadow_value must be in 0..254"),
    ({"shadow_value": -1}, "model.shadow_value must be in 0..254"),
    ({"shadow_value": 127.0}, "model.shadow_value must be int"),
    ({"shadow_ratio_min": 1.0}, "model.shadow_ratio_min must be in (0, 1)"),
    ({"shadow_ratio_min": 0.0}, "model.shadow_ratio_min must be in (0, 1)"),
    ({"shadow_threshold": 0.0}, "model.shadow_threshold"),
    ({"shadow_threshold": float("nan")}, "model.shadow_threshold"),
])
def test_invalid_parameters_raise(params, needle):
    with pytest.raises(ConfigError) as err:
        MixtureMasker(**params)
    assert needle in str(err.value)


def test_unknown_parameter_names_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown model parameter 'alpha'; valid: k, "):
        MixtureMasker(alpha=0.1)


def test_bad_frames_raise_clear_errors():
    m = MixtureMasker()
    with pytest.raises(TypeError, match="numpy array"):
        m.apply([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="frame must be uint8, got float32"):
        m.apply(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError,
                       match=r"grey \(H, W\) or BGR \(H, W, 3\), got shape \(4, 4, 4\)"):
        m.apply(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        m.apply(np.zeros((0, 4), np.uint8))
    m.apply(np.zeros((4, 6, 3), np.uint8))
    with pytest.raises(ValueError, match=r"must be BGR \(H, W, 3\) like the earlier frames, "
                                         r"got grey \(H, W\)"):
        m.apply(np.zeros((4, 6), np.uint8))
    with pytest.raises(FrameSizeError, match="frame size 7x4 differs from the model's 6x4") as e:
        m.apply(np.zeros((4, 7, 3), np.uint8))
    # the sizes are data: no one has to read them back out of the message
    assert (e.value.expected, e.value.got) == ((4, 6, 3), (4, 7, 3))
    assert e.value.change == "frame size 7x4 differs from the model's 6x4"
    with pytest.raises(ValueError, match="learning_rate must be in"):
        m.apply(np.zeros((4, 6, 3), np.uint8), learning_rate=-0.1)
    with pytest.raises(ValueError, match="out must be"):
        m.apply(np.zeros((4, 6, 3), np.uint8), out=np.zeros((4, 6), np.float32))
    assert m.frames_learned == 1  # none of the rejected frames was learned


def test_reset_accepts_a_new_size():
    m = MixtureMasker()
    m.apply(np.zeros((4, 6, 3), np.uint8))
    m.reset()
    assert m.frame_shape is None and m.frames_learned == 0
    assert m.apply(np.zeros((8, 3), np.uint8)).shape == (8, 3)
    assert m.background_image().shape == (8, 3)


def test_out_parameter_and_non_contiguous_frames():
    rng = np.random.default_rng(0)
    big = rng.integers(0, 255, (20, 40, 3)).astype(np.uint8)
    view = big[:, ::2]  # not contiguous
    a, b = MixtureMasker(), MixtureMasker()
    out = np.empty((20, 20), np.uint8)
    for _ in range(3):
        result = a.apply(view, out=out)
        assert result is out
        np.testing.assert_array_equal(out, b.apply(np.ascontiguousarray(view)))
    # (H, W, 1) is taken as grey
    c = MixtureMasker()
    assert c.apply(np.zeros((5, 5, 1), np.uint8)).shape == (5, 5)
    assert c.background_image().shape == (5, 5)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_masks_and_state_do_not_depend_on_the_thread_count(threads):
    """Each thread count shares the frame out differently; the results are the same bits."""
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (96, 160, 3)).astype(np.uint8)  # 15 tiles of 1024 pixels
    default, counted = MixtureMasker(), MixtureMasker(threads=threads)
    assert counted.threads == threads
    for t in range(12):
        frame = base.copy()
        frame[20:60, 10 * t:10 * t + 40] = 255 - frame[20:60, 10 * t:10 * t + 40]  # a mover
        noise = rng.integers(-6, 7, frame.shape)
        frame = np.clip(frame + noise, 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(counted.apply(frame), default.apply(frame))
    for name, value in default.state().items():
        np.testing.assert_array_equal(counted.state()[name], value)
    np.testing.assert_array_equal(counted.background_image(), default.background_image())
    np.testing.assert_array_equal(counted.foreground_probability(),
                                  default.foreground_probability())
    assert np.count_nonzero(default.apply(frame) == 255) > 0  # the mover is found


@pytest.mark.parametrize("threads", [0, -1, 257, 1.5, True, "2"])
def test_invalid_thread_counts_raise(threads):
    with pytest.raises(ValueError, match=r"threads must be an integer in 1\.\.256 or None"):
        MixtureMasker(threads=threads)


def test_learning_rate_zero_before_any_frame_builds_nothing():
    m = MixtureMasker()
    assert np.count_nonzero(m.apply(np.zeros((3, 3), np.uint8), learning_rate=0)) == 0
    assert m.frame_shape is None


ONE_THREAD_ONLY = r"""
import os
import numpy as np
import numba
from bgsub import MixtureMasker
before = len(os.listdir("/proc/self/task"))  # what the imports started (OpenBLAS, ...)
m = MixtureMasker(threads=1, init="em", init_frames=4, em_max_iter=3)
rng = np.random.default_rng(0)
frames = [rng.integers(0, 256, (96, 160, 3)).astype(np.uint8) for _ in range(6)]
ones = [m.apply(f) for f in frames]  # the EM bootstrap, then online learning
m.background_image()
m.foreground_probability()
after = len(os.listdir("/proc/self/task"))
two = MixtureMasker(threads=2, init="em", init_frames=4, em_max_iter=3)
same = all(np.array_equal(a, two.apply(f)) for a, f in zip(ones, frames))
print(before, after, same, numba.threading_layer())
"""

LAYER_PROBE = r"""
import numpy as np, numba
@numba.njit(parallel=True)
def f(a):
    s = 0
    for i in numba.prange(a.shape[0]):
        s += a[i]
    return s
f(np.arange(10))
print(numba.threading_layer())
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
@pytest.mark.parametrize("layer", ["tbb", "omp", "workqueue"])
def test_one_thread_means_one_thread_for_every_method(tmp_path, layer):
    """threads=1 starts no thread under any of Numba's threading layers; masks do not change.

    Which layer Numba picks depends on the machine (TBB where libtbb12 is
    installed, then OpenMP, then its own workqueue); the promise must hold
    for all of them.
    """
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_THREADING_LAYER": layer}
    probe = subprocess.run([sys.executable, "-c", LAYER_PROBE], capture_output=True, text=True,
                           timeout=300, env=env)
    if probe.returncode != 0:
        pytest.skip(f"Numba's {layer} threading layer does not load here (for tbb: the "
                    "libtbb12 package)")
    script = tmp_path / "one.py"
    script.write_text(ONE_THREAD_ONLY)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    before, after, same, used = r.stdout.split()
    assert used == layer
    assert after == before  # no tile helper, no Numba or OpenMP or TBB worker
    assert same == "True"  # and two threads give the same masks


def test_idle_helper_threads_end():
    """A runner of many threads that is no longer used does not keep its helpers."""
    import threading
    import time

    from bgsub.model import tiles

    saved = tiles.IDLE_SECONDS
    tiles.IDLE_SECONDS = 0.2
    try:
        runner = tiles.TileRunner(threads=16)
        m = MixtureMasker(threads=16)
        m._backend._runner = runner  # this test's own runner, not the shared one
        m.apply(np.zeros((128, 160, 3), np.uint8))  # 20 tiles: the helpers start
        assert 1 <= len(runner._helpers) <= 15
        deadline = time.monotonic() + 10
        while runner._helpers and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runner._helpers == []
        assert not [t for t in threading.enumerate() if t.name == "bgsub-tiles"
                    and t in runner._helpers]
        m.apply(np.zeros((128, 160, 3), np.uint8))  # and they come back when needed
        assert runner._helpers
    finally:
        tiles.IDLE_SECONDS = saved


def test_numpy_integers_are_taken_for_integer_settings():
    m = MixtureMasker(k=np.int64(4), threads=np.int32(1), shadow_value=np.uint8(100))
    assert (m.config.k, m.threads, m.config.shadow_value) == (4, 1, 100)
    assert type(m.config.k) is int


def test_out_may_be_the_frame_itself():
    rng = np.random.default_rng(8)
    a, b = MixtureMasker(), MixtureMasker()
    for t in range(4):
        frame = rng.integers(0, 256, (30, 40), dtype=np.uint8)
        expected = a.apply(frame.copy())
        np.testing.assert_array_equal(b.apply(frame, out=frame), expected)
