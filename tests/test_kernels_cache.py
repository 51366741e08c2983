"""Numba's compiled kernels are cached per user, also when the package cannot be written to,
and a second copy of the same package (a reinstall, another checkout) loads them."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import bgsub

# the frame kernel of a grey k = 1 model, the quickest to compile (a masker's first
# frame also compiles the passes after it, which the cache treats alike)
PROBE = """
from bgsub.model.kernels import frame_kernel
stats = frame_kernel(1, 1, 1, True, 0).stats
print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


def test_kernels_are_cached_in_the_user_cache_when_the_package_is_read_only(tmp_path):
    """A read-only install compiles once, into the user's cache directory, and loads after;
    so does another copy of the same sources elsewhere.

    The copy's ``__pycache__`` is a plain file, so nothing can be written next
    to the sources even by root (for whom read-only permissions do not
    count); the permissions are taken away as well.
    """
    package = tmp_path / "site" / "bgsub"
    shutil.copytree(Path(bgsub.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    other = tmp_path / "checkout" / "bgsub"
    shutil.copytree(package, other)
    tree = [package, *package.rglob("*")]
    for folder in [p for p in tree if p.is_dir()]:
        (folder / "__pycache__").write_text("")
    tree = [package, *package.rglob("*")]
    for path in tree:
        path.chmod(0o555 if path.is_dir() else 0o444)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=str(package.parent), XDG_CACHE_HOME=str(tmp_path / "cache"),
               PYTHONDONTWRITEBYTECODE="1")
    try:
        runs = [subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                               text=True, timeout=900, cwd=tmp_path) for _ in range(2)]
        env["PYTHONPATH"] = str(other.parent)
        runs.append(subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                                   text=True, timeout=300, cwd=tmp_path))
    finally:
        for path in tree:
            path.chmod(0o755 if path.is_dir() else 0o644)
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert run.stderr == ""  # no warnings from LLVM or Numba
    (hits1, misses1), (hits2, misses2), (hits3, misses3) = (map(int, r.stdout.split())
                                                            for r in runs)
    assert (hits1, misses1) == (0, 1)  # compiled the first time...
    assert (hits2, misses2) == (1, 0)  # ...and loaded from the cache the second
    assert (hits3, misses3) == (1, 0)  # ...and by the other copy
    assert list((tmp_path / "cache" / "numba").rglob("*.nbi"))
    assert not list(package.rglob("*.nbi"))
    assert not list(other.rglob("*.nbi"))
