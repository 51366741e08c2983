"""Building kernels: thread-safe, and stderr survives it."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import os, sys, threading
    import numpy as np
    from bgsub import MixtureMasker

    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (40, 50, 3), dtype=np.uint8) for _ in range(6)]

    def masks(k, shape_frames, threads_out=None):
        m = MixtureMasker(k=k, threads=1)
        return [m.apply(f) for f in shape_frames]

    results = {}
    barrier = threading.Barrier(2)

    def worker(k, grey):
        barrier.wait()  # both build their kernels at the same moment
        fs = [f[:, :, 0].copy() for f in frames] if grey else frames
        results[k] = masks(k, fs)

    threads = [threading.Thread(target=worker, args=(2, False)),
               threading.Thread(target=worker, args=(5, True))]
    for t in threads: t.start()
    for t in threads: t.join()
    alone = {2: masks(2, frames), 5: masks(5, [f[:, :, 0].copy() for f in frames])}
    same = all(np.array_equal(a, b) for k in (2, 5) for a, b in zip(results[k], alone[k]))
    os.write(2, b"fd2 still here\\n")
    print("sys.stderr still here", file=sys.stderr, flush=True)
    print("same" if same else "differ", flush=True)
""")


def test_two_threads_building_two_shapes_keep_stderr_and_their_masks(tmp_path):
    """Two maskers of different shapes build and run in two threads at once.

    The kernels are built with stderr filtered; done without a lock, the two
    threads' redirections used to leave fd 2 on a deleted temporary file.  An
    empty Numba cache makes both compile for real, so that the builds overlap.
    """
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=600, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "same"
    assert "fd2 still here" in run.stderr
    assert "sys.stderr still here" in run.stderr
    assert "loop not vectorized" not in run.stderr  # LLVM's remarks are dropped


def test_a_thread_writing_to_stderr_while_a_kernel_builds_is_not_lost():
    script = textwrap.dedent("""
        import sys, threading, time
        import numpy as np
        from bgsub import MixtureMasker
        stop = threading.Event()
        def chatter():
            i = 0
            while not stop.is_set():
                print(f"line {i}", file=sys.stderr, flush=True)
                i += 1
                time.sleep(0.001)
            print(f"last {i}", file=sys.stderr, flush=True)
        t = threading.Thread(target=chatter)
        t.start()
        MixtureMasker(k=4, threads=1).apply(np.zeros((8, 8, 3), np.uint8))
        stop.set()
        t.join()
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    last = int(lines[-1].split()[1])
    assert lines == [f"line {i}" for i in range(last)] + [f"last {last}"]
