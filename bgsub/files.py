"""Output files that are complete or absent: checks before a run, atomic writes during it.

Every file bgsub writes goes first to a partial file beside it (same folder,
same extension, a hidden name) and takes its final name by an atomic rename
once it is complete and verified.  So an output is never half written under
its own name, a failed run leaves any earlier file of that name untouched,
and an output name that is a hard link to an input can only replace the
link, never the input's contents.  Devices (``/dev/null``) are written
directly; a FIFO, a socket or a block device is refused before anything
opens it (opening a FIFO blocks until a reader comes, deaf to signals).

Checks before the first frame: a known extension, a writable folder, no
output that is an input or another output (by file identity, so that hard
links and symbolic links count).  During a run, a full disk is noticed (a
video writer does not report it) and reported as the output's error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path
from typing import Iterable, Iterator

from .errors import SinkError  # shared by the wings that write files

__all__ = ["SinkError", "CODECS", "check_output_file", "check_writable_file",
           "check_output_dir", "identity", "check_not_inputs", "partial_path", "is_regular",
           "write_atomically", "write_text_atomically", "atomic_path", "disk_full", "local_url",
           "not_a_file"]

CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


def _nonempty(path: str | Path, option: str) -> Path:
    if not str(path).strip():
        raise SinkError(f"{option}: the name is empty (expected a file or folder name)")
    return Path(path)


def check_output_file(path: str | Path, option: str) -> Path:
    """Fail early, before any frame is processed, if *path* cannot be a video output."""
    path = _nonempty(path, option)
    if path.suffix.lower() not in CODECS:
        raise SinkError(f"{option} {path}: unknown video extension {path.suffix or '(none)'!r} "
                        f"(expected one of {', '.join(CODECS)})")
    return check_writable_file(path, option)


def check_writable_file(path: str | Path, option: str) -> Path:
    """Fail early if *path* cannot be created or overwritten, or is a FIFO or a socket."""
    path = _nonempty(path, option)
    if path.is_dir():
        raise SinkError(f"{option} {path}: is a folder (expected a file name)")
    if path.is_symlink() and not path.exists():
        raise SinkError(f"{option} {path}: is a link to {os.readlink(path)}, which does not "
                        "exist (expected a file name)")
    kind = not_a_file(path)
    if kind is not None and not kind.endswith("character device"):  # /dev/null is fine
        # opening a FIFO waits for a reader forever, deaf to signals
        raise SinkError(f"{option} {path}: is {kind} (expected a regular file name)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise SinkError(f"{option} {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or path.exists() and not os.access(path, os.W_OK):
        raise SinkError(f"{option} {path}: cannot be written (permission denied)")
    return path


def check_output_dir(path: str | Path, option: str) -> Path:
    """Create *path* if needed and fail early if it cannot hold the masks."""
    path = _nonempty(path, option)
    if path.exists() and not path.is_dir():
        raise SinkError(f"{option} {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"{option} {path}: cannot create the folder ({exc.strerror})") from None
    if not os.access(path, os.W_OK):
        raise SinkError(f"{option} {path}: cannot be written (permission denied)")
    return path


def identity(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of what *path* names (links followed), None when nothing is there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_not_inputs(outputs: dict[str, Path], inputs: Iterable[str | Path]) -> None:
    """Refuse an output that is one of *inputs* or another output, whatever its name.

    Identity, not the name, decides: a hard link or a symbolic link to an
    input is that input.  The first input is the run's source.
    """
    inputs = list(inputs)
    read = {}
    for path in inputs:
        key = identity(path)
        if key is not None:
            read.setdefault(key, Path(path))
    seen: dict[object, str] = {}
    for option, path in outputs.items():
        key = identity(path) or Path(path).resolve()  # a file not there yet: by its name
        if key in read:
            if Path(path) != read[key]:
                what = f"the input {read[key]} under another name (a link)"
            elif read[key] == Path(inputs[0]):
                what = "the source itself"
            else:
                what = "an input of this run"
            raise SinkError(f"{option} {path} is {what}: refusing to overwrite it")
        if key in seen:
            raise SinkError(f"{option} {path} is also given to {seen[key]}: each output "
                            "needs its own file")
        seen[key] = option


def is_regular(path: Path) -> bool:
    """Whether *path* is a regular file or names nothing yet (so a partial file may replace it)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True


_NAME_MAX = 255  # bytes in a file name on Linux's file systems


def partial_path(path: Path) -> Path:
    """Where *path* is written until complete: hidden, beside it, with its extension.

    The name is absolute, so that FFmpeg, which writes videos, never takes
    the start of a file name with a colon (``2024-06-01T12:00:00.mp4``) for
    a protocol.
    """
    path = Path(os.path.abspath(path))
    name = f".{path.stem}.bgsub-partial{path.suffix}"
    if len(os.fsencode(name)) > _NAME_MAX:
        # a legal name near NAME_MAX: its partial name would not be (ENAMETOOLONG);
        # the stem is cut, and made unique again by a digest of the whole path
        digest = hashlib.sha1(os.fsencode(path)).hexdigest()[:8]
        tail = f"_{digest}.bgsub-partial{path.suffix}"
        stem = path.stem
        while stem and len(os.fsencode(f".{stem}{tail}")) > _NAME_MAX:
            stem = stem[:-1]
        name = f".{stem}{tail}"
    return path.with_name(name)


def local_url(path: str | Path) -> str:
    """*path* as FFmpeg (PyAV, OpenCV) must be given a local file: an absolute path.

    FFmpeg reads ``NAME:rest`` as protocol ``NAME``; cameras name their
    recordings ``2024-06-01T12:00:00.mp4``, which would be protocol
    ``2024-06-01T12``.  An absolute path starts with ``/`` and is always a file.
    """
    return os.path.abspath(path)


def not_a_file(path: str | Path) -> str | None:
    """What *path* is when it exists and is neither a regular file nor a folder, else None.

    ``"a FIFO (named pipe)"``, ``"a socket"``, ``"a character device"``...
    Never blocks: the status is read, nothing is opened (opening a FIFO
    waits for a writer forever, and ignores signals meanwhile).  Check it
    before opening a file given as an input.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return _kind(mode)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield the partial path of *path* to write; on success it replaces *path*, else it goes.

    For a name that is not a regular file (``/dev/null``) the name
    itself is yielded: there is nothing to rename.
    """
    path = Path(path)
    if not is_regular(path):
        yield path
        return
    partial = partial_path(path)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        _remove(partial)


def write_atomically(path: str | Path, data: bytes) -> None:
    """Write *data* to *path* completely or not at all (OSError says why).

    The data reach the disk before the rename: a power cut leaves the old
    file or the new one, never an empty one.
    """
    with atomic_path(path) as target:
        with open(target, "wb") as f:
            f.write(data)
            f.flush()
            if target != Path(path):
                os.fsync(f.fileno())


def write_text_atomically(path: str | Path, text: str) -> None:
    """:func:`write_atomically` for UTF-8 text."""
    write_atomically(path, text.encode("utf-8"))


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def disk_full(path: Path) -> bool:
    """Whether the file system holding *path* has no room left for its owner's writes."""
    try:
        st = os.statvfs(path.parent if str(path.parent) else ".")
    except OSError:
        return False
    free = st.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else st.f_bavail
    return free == 0
