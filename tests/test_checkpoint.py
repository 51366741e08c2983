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
    # (flipped, not zeroed: the state's last arrays may be zeros already)
    (lambda b: b[:-100] + bytes(x ^ 0xFF for x in b[-100:]),
     "the checkpoint is damaged (its checksum does not match)"),
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


def ghost_scene(h, w, n, seed=1):
    """Frames whose model carries every kind of state from frame to frame: an object at
    the top right that leaves (its ghost is released), a patch that flickers (the
    neighbour match), a mover with a shadow (the texture test)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([80 + 60 * np.sin(xx / 9.0), 100 + 0.5 * yy + 0 * xx,
                     120 + 40 * np.cos(yy / 7.0) + 0 * xx], -1)
    out = []
    for t in range(n):
        f = base + rng.normal(0, 3, base.shape)
        if t < 12:
            f[0:10, w - 14:w] = (230, 40, 40)
        f[h - 8:h, 0:10] = (200, 200, 60) if rng.random() < 0.5 else (60, 60, 200)
        x = (3 * t) % (w - 12)
        f[h // 2 - 4:h // 2 + 4, x:x + 10] = 250
        f[h // 2 + 4:h // 2 + 8, x:x + 10] *= 0.6
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return out


# sizes: one tile and a part, a width that is no multiple of the 8-pixel groups
# or cells, and rows longer than a tile
@pytest.mark.parametrize("shape", [(37, 61), (48, 64), (33, 1029)])
def test_a_restored_model_is_the_model_from_the_first_frame_on(tmp_path, shape):
    """Saved (and pickled) at every frame, in every phase of the ghost test's
    schedule, with ghosts counted and released: the same masks, bit for bit."""
    seq = ghost_scene(*shape, 46)
    # flicker_reference 0.15: with the shipped 0.05 the leaving object's pixels, which
    # flicker as it goes, are learned before the ghost test releases them
    live = MixtureMasker(ghost_frames=8, learning_rate=0.01, neighbour_flicker=0.15,
                         flicker_reference=0.15, threads=1)
    restored = []  # (model, how, frames left to compare)
    released = flickering = shadows = 0
    for t, frame in enumerate(seq):
        expected = live.apply(frame)
        for model, how, _ in restored:
            np.testing.assert_array_equal(model.apply(frame), expected, err_msg=f"{how}, t={t}")
        restored = [(m, how, left - 1) for m, how, left in restored if left > 1]
        if 12 <= t < 38:
            backend = live._backend
            released += backend.released().any()
            flickering += (backend._aux & 0x7FFF).max() >= 0.15 * 0x7FFF
            shadows += (expected == 127).any()
            live.save(tmp_path / "m.ckpt")
            restored.append((MixtureMasker.load(tmp_path / "m.ckpt"), f"saved at {t}", 8))
            restored.append((pickle.loads(pickle.dumps(live)), f"pickled at {t}", 8))
    # what the model carried at the saves: ghosts released, flicker past the
    # neighbour match's gate, shadows
    assert released >= 2 and flickering >= 2 and shadows >= 2


HIGHWAY = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "highway",
                       "input")


def test_a_restored_highway_model_is_the_model(tmp_path):
    """CDnet highway, saved after frames 500-559: the next frames' masks are the same."""
    import cv2

    folder = next((p for p in ("/work/shared/data/highway/input", HIGHWAY)
                   if os.path.isdir(p)), None)
    if folder is None:
        pytest.skip("the CDnet highway frames (shared/data/highway/input) are not here")
    seq = [cv2.imread(os.path.join(folder, f"in{i:06d}.jpg")) for i in range(500, 600)]
    live = MixtureMasker()
    for frame in seq[:60]:
        live.apply(frame)
    live.save(tmp_path / "m.ckpt")
    loaded = MixtureMasker.load(tmp_path / "m.ckpt")
    unpickled = pickle.loads(pickle.dumps(live))
    for t, frame in enumerate(seq[60:], 560):
        expected = live.apply(frame)
        np.testing.assert_array_equal(loaded.apply(frame), expected, err_msg=f"frame {t}")
        np.testing.assert_array_equal(unpickled.apply(frame), expected, err_msg=f"frame {t}")
