"""Model checkpoints: a masker's whole state in one file, checked when read back.

A live camera's model takes minutes to learn its scene; a checkpoint lets a
restarted run carry on where the last one stopped.  The file holds the
16-bit state, the configuration, the frames learned, the recovery and
log-likelihood tracking (and the bootstrap frames of an unfinished EM
start), a format version and a SHA-256 checksum of the state::

    b"BGSUBMDL"  format version (uint32 LE)  header length (uint32 LE)
    header: UTF-8 JSON (bgsub version, config, shape, tracking, the arrays'
            names, dtypes, shapes and sizes, the payload's SHA-256)
    payload: the arrays' bytes, one after the other

It is written atomically (:func:`bgsub.outputs.write_atomically`): a crash
while saving leaves the previous checkpoint as it was.  Reading a file of
another format version, a damaged or truncated one, or one whose state does
not fit its own shape raises :class:`CheckpointError` saying which; a model
is never silently wrong.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import __version__
from .outputs import SinkError, write_atomically

if TYPE_CHECKING:
    from .masker import MixtureMasker
    from .step import FrameResult

__all__ = ["CheckpointError", "FORMAT", "save", "load", "to_bytes", "from_bytes",
           "Checkpointer"]

MAGIC = b"BGSUBMDL"
FORMAT = 2  # the file format this bgsub writes and reads (2: flicker words, cell averages)
_FIXED = struct.Struct("<8sII")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: not one, another format, damaged, inconsistent."""


def to_bytes(masker: MixtureMasker) -> bytes:
    """The checkpoint of *masker* as bytes."""
    return _encode(masker.__getstate__())


def _encode(state: dict[str, Any]) -> bytes:
    """A masker's state (``__getstate__``, already a copy) as checkpoint bytes."""
    state = dict(state)
    arrays = state.pop("arrays")
    names, chunks, offset = [], [], 0
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        names.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape),
                      "offset": offset, "nbytes": array.nbytes})
        chunks.append(array.tobytes())
        offset += array.nbytes
    payload = b"".join(chunks)
    header = json.dumps({**state, "bgsub": __version__, "arrays": names,
                         "sha256": hashlib.sha256(payload).hexdigest()}).encode()
    return _FIXED.pack(MAGIC, FORMAT, len(header)) + header + payload


def from_bytes(data: bytes, cls: type[MixtureMasker], name: str = "checkpoint",
               threads: int | None = None) -> MixtureMasker:
    """A masker of class *cls* from checkpoint bytes (*name* for messages)."""
    if len(data) < _FIXED.size or data[:8] != MAGIC:
        raise CheckpointError(f"{name}: not a bgsub model checkpoint")
    _, version, header_length = _FIXED.unpack_from(data)
    if version != FORMAT:
        raise CheckpointError(f"{name}: a checkpoint of format {version}; this bgsub "
                              f"({__version__}) reads format {FORMAT}")
    end = _FIXED.size + header_length
    if len(data) < end:
        raise CheckpointError(f"{name}: the checkpoint is truncated (its header is cut)")
    try:
        header = json.loads(data[_FIXED.size:end])
    except ValueError:
        raise CheckpointError(f"{name}: the checkpoint's header is damaged") from None
    payload = data[end:]
    expected = sum(entry["nbytes"] for entry in header["arrays"])
    if len(payload) != expected:
        raise CheckpointError(f"{name}: the checkpoint is truncated ({len(payload)} of "
                              f"{expected} bytes of state)")
    if hashlib.sha256(payload).hexdigest() != header["sha256"]:
        raise CheckpointError(f"{name}: the checkpoint is damaged (its checksum does not "
                              "match)")
    arrays = {}
    for entry in header.pop("arrays"):
        chunk = payload[entry["offset"]:entry["offset"] + entry["nbytes"]]
        arrays[entry["name"]] = np.frombuffer(chunk, np.dtype(entry["dtype"])).reshape(
            entry["shape"]).copy()
    header.pop("sha256")
    header.pop("bgsub")
    masker = cls.__new__(cls)
    try:
        masker.__setstate__({**header, "arrays": arrays, "threads": threads
                             if threads is not None else header.get("threads")})
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{name}: the checkpoint does not hold a usable model "
                              f"({exc})") from None
    return masker


def save(masker: MixtureMasker, path: str | Path) -> None:
    """Write *masker*'s checkpoint to *path*, atomically."""
    write_atomically(Path(path), to_bytes(masker))


def load(path: str | Path, cls: type[MixtureMasker],
         threads: int | None = None) -> MixtureMasker:
    """Read a checkpoint into a masker of class *cls* (:meth:`MixtureMasker.load`).

    *threads* overrides the thread count it was saved with.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror})") from None
    return from_bytes(data, cls, str(path), threads)


class Checkpointer:
    """A pipeline consumer that saves the model every *every* seconds, in a thread.

    The model's state is copied under the masker's lock (milliseconds even
    for 1080p), then hashed and written atomically by a thread of its own, so
    that masking never waits for the disk.  ``close()`` waits for a save in
    progress; a save that failed raises :class:`~bgsub.outputs.SinkError`
    naming *option* and *path*.
    """

    def __init__(self, masker: Callable[[], MixtureMasker], path: Path, every: float,
                 option: str = "--save-model") -> None:
        self.masker = masker
        self.path = Path(path)
        self.every = every
        self.option = option
        self.saves = 0
        self._last = time.monotonic()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, result: FrameResult) -> None:
        self._raise()
        if self.every <= 0 or time.monotonic() - self._last < self.every:
            return
        if self._thread is not None and self._thread.is_alive():
            return  # the last save is still being written: the next frame will do
        self._last = time.monotonic()
        state = self.masker().__getstate__()
        self._thread = threading.Thread(target=self._save, args=(state,),
                                        name="bgsub-checkpoint", daemon=True)
        self._thread.start()

    def _save(self, state: dict[str, Any]) -> None:
        try:
            write_atomically(self.path, _encode(state))
            self.saves += 1
        except OSError as exc:
            self._error = SinkError(f"{self.option} {self.path}: cannot be written "
                                    f"({exc.strerror})")

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
        self._raise()
