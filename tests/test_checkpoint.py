"""Model checkpoints: the same masks after a round trip; damaged files are refused."""

import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bgsub import MixtureMasker
from bgsub.model.checkpoint import FORMAT, CheckpointError


def frames(n, channels, seed=2, shape=(40, 56)):
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 220, (*shape, channels)).astype(float)
    out = []
    for t in range(n):
        f = base + rng.normal(0, 4, base.shape)
        f[5:20, 2 * t % 40:2 * t % 40 + 10] = 250  # a mover
        f = np.clip(f, 0, 255).astype(np.uint8)
        out.append(f[:, :, 0] if channels == 1 else f)
    return out


@pytest.mark.parametrize("channels,covariance,init", [
    (3, "spherical", "first-frame"), (1, "spherical", "first-frame"),
    (3, "diagonal", "first-frame"), (3, "spherical", "em")])
def test_a_loaded_model_makes_the_same_masks(tmp_path, channels, covariance, init):
    seq = frames(40, channels)
    params = {"covariance": covariance, "init": init, "init_frames": 12}
    a = MixtureMasker(**params)
    for f in seq[:8]:  # the EM bootstrap is still collecting here
        a.apply(f)
    a.save(tmp_path / "m.ckpt")
    b = MixtureMasker.load(tmp_path / "m.ckpt")
    c = pickle.loads(pickle.dumps(a))
    assert b.config == a.config and b.frames_learned == a.frames_learned == 8
    for f in seq[8:]:
        expected = a.apply(f)
        np.testing.assert_array_equal(b.apply(f), expected)
        np.testing.assert_array_equal(c.apply(f), expected)
        assert b.log_likelihood == a.log_likelihood and b.recovering == a.recovering
    for name, value in a.state().items():
        np.testing.assert_array_equal(b.state()[name], value)


def test_an_empty_model_round_trips(tmp_path):
    MixtureMasker(k=4).save(tmp_path / "e.ckpt")
    m = MixtureMasker.load(tmp_path / "e.ckpt", threads=1)
    assert m.frame_shape is None and m.config.k == 4 and m.threads == 1


@pytest.fixture
def saved(tmp_path):
    m = MixtureMasker()
    for f in frames(5, 3):
        m.apply(f)
    path = tmp_path / "m.ckpt"
    m.save(path)
    return path


@pytest.mark.parametrize("damage,message", [
    (lambda b: b"PK\x03\x04" + b[4:], "not a bgsub model checkpoint"),
    (lambda b: b[:8] + (FORMAT + 1).to_bytes(4, "little") + b[12:],
     f"a checkpoint of format {FORMAT + 1}; this bgsub"),
    (lambda b: b[:len(b) // 2], "the checkpoint is truncated"),
    (lambda b: b[:30], "the checkpoint is truncated (its header is cut)"),
    (lambda b: b[:-100] + bytes(100), "the checkpoint is damaged (its checksum does not match)"),
    (lambda b: b"", "not a bgsub model checkpoint"),
])
def test_a_damaged_checkpoint_is_refused_with_a_reason(saved, damage, message):
    saved.write_bytes(damage(saved.read_bytes()))
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MixtureMasker.load(saved)
    with pytest.raises(CheckpointError, match="cannot be read"):
        MixtureMasker.load(saved.parent / "missing.ckpt")


SAVER = r"""
import sys
import numpy as np
from bgsub import MixtureMasker
m = MixtureMasker(threads=1)
rng = np.random.default_rng(0)
frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
i = 0
while True:
    m.apply(frame)
    m.save(sys.argv[1])
    i += 1
    if i == 2:
        print("saving", flush=True)
"""


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path):
    """Killed at a random moment, again and again: the checkpoint always loads whole."""
    path = tmp_path / "live.ckpt"
    learned = []
    for delay in (0.05, 0.13, 0.29, 0.41):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(path)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "saving"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        m = MixtureMasker.load(path)  # never a half-written file
        assert m.frame_shape == (480, 640, 3)
        learned.append(m.frames_learned)
    assert min(learned) >= 2
