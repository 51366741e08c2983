"""What the tests' fork server (tests/forkserver.py) imports once: the command's libraries.

Every ``bgsub`` a test runs as a plain command pays about a second importing
NumPy, OpenCV, Numba and the package, and setting up Numba's target, before it
reads its first argument; a process forked from the server starts with them.
Nothing here starts a thread of ours or loads a kernel: each command loads or
builds its kernels itself, as a fresh process does.
"""

import cv2  # noqa: F401
import numba  # noqa: F401
import numpy  # noqa: F401
from numba.core.registry import cpu_target

import bgsub.cli  # noqa: F401
import bgsub.cli.common  # noqa: F401
import bgsub.cli.evaluate  # noqa: F401
import bgsub.cli.run  # noqa: F401
import bgsub.cli.scan  # noqa: F401

# Numba's target (its typing and lowering registries) is set up on the first
# kernel a process loads: about half a second, the same in every process
cpu_target.target_context.refresh()
cpu_target.typing_context.refresh()
