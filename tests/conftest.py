import os
import subprocess
import sys
from pathlib import Path

# tests import the plain reference (tests/naive.py) as a top-level module
sys.path.insert(0, str(Path(__file__).parent))

# The kernel shapes the default run builds (k, channels, variances, learn, rho, shadows,
# texture; texture with shadows, as the defaults have it): each takes 10-30 s of
# CPU to compile the first time.  Built before the test workers start, two at a
# time, so that two workers never compile the same one at once and no test
# waits for a compilation; with one process (-n 0 or 1) there is nothing to
# gain, and the tests compile what they use.
SHAPES = [(k, c, v, learn, rho, shadows, shadows)
          for (k, c, v, rho, shadows) in [(3, 3, 1, 0, True), (3, 1, 1, 0, False),
                                           (3, 3, 3, 0, True), (1, 3, 1, 0, True),
                                           (2, 3, 1, 0, True), (5, 3, 1, 0, True),
                                           (3, 3, 1, 1, True), (3, 3, 1, 0, False)]
          for learn in (True, False)]

WARM_UP = r"""
import sys
import numpy as np
from bgsub.model.kernels import frame_kernel
shapes = eval(sys.argv[1])
for shape in shapes:
    frame_kernel(*shape)
if sys.argv[2] == "1":  # and everything else that compiles on first use
    from bgsub import MixtureMasker, Postprocessor
    from bgsub.io.display import annotate
    from bgsub.model.em import fit_mixtures
    rng = np.random.default_rng(0)
    for shape, params in [((40, 48, 3), {}), ((40, 48), {}), ((40, 48, 3), {"covariance": "diagonal"}),
                          ((40, 48, 3), {"init": "em", "init_frames": 3, "threads": 1})]:
        m = MixtureMasker(**params)
        for _ in range(4):
            mask = m.apply(rng.integers(0, 256, shape, dtype=np.uint8))
        m.background_image(); m.foreground_probability()
        Postprocessor(min_blob_area=3, max_hole_area=5).apply(mask)
        annotate(np.zeros((40, 48, 3), np.uint8), mask)
    fit_mixtures(rng.integers(0, 256, (50, 6, 3), dtype=np.uint8), 2)
    # the post-processing's blink gate too, as a first run's helper process warms it
    from bgsub.config import PostprocessConfig
    from bgsub.model.postprocess import warm_up
    warm_up(PostprocessConfig())
    # and what a run and a scan compile: the display's tint, the scan's scores and
    # scene detectors (else each test process would compile them, several at once)
    import contextlib, io, os, tempfile
    from bgsub.cli import main
    from bgsub.eval.synthetic import EventSpec, write_events_video
    with tempfile.TemporaryDirectory() as folder:
        video = os.path.join(folder, "warm.mp4")
        write_events_video(video, EventSpec(frames=90, crossings=((20, 60),)))
        with contextlib.redirect_stdout(io.StringIO()):  # the scan's event line
            assert main(["scan", video, "--output-dir", os.path.join(folder, "scan"),
                         "--quiet"]) == 0
            assert main([video, "--no-display", "--quiet", "--output",
                         os.path.join(folder, "run.mp4")]) == 0
"""


def pytest_configure(config):
    """Build the default run's kernels before any test runs (in the main process only).

    The test workers compile without a helper process (they already keep the
    cores busy); the tests of the helper turn it on."""
    if hasattr(config, "workerinput"):
        from bgsub.model.kernels import build
        build.HELPER = False
        return
    if os.environ.get("BGSUB_NO_WARM_UP"):
        return
    workers = getattr(config.option, "numprocesses", None)  # xdist's -n: a count, "auto"
    if workers is None or workers in (0, 1):
        return
    halves = [SHAPES[0::2], SHAPES[1::2]]
    jobs = [subprocess.Popen([sys.executable, "-c", WARM_UP, repr(half), str(i)])
            for i, half in enumerate(halves)]
    for job in jobs:
        job.wait()
