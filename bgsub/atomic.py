"""Writing a file so that it is either complete or absent: a temporary name, then a rename.

A run killed halfway (Ctrl-C, SIGTERM, a crash, a power cut) must never
leave a half-written table, clip or record under its real name, where the
next run would take it for a finished one.  :func:`atomic_path` gives a
temporary path in the same folder (a rename within one file system is
atomic) and moves it into place only when the writing succeeded.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "write_text_atomically"]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside *path*; on success it replaces *path*, else it goes.

    The temporary name keeps the extension (``.name.partial.mp4``), so tools
    that choose a format by extension (FFmpeg, OpenCV) still can, and it
    starts with a dot, so a folder listing does not show it as a result.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_text_atomically(path: str | Path, text: str) -> None:
    """Write *text* (UTF-8) to *path* atomically, flushed to disk before the rename."""
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
