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

It is written atomically (:func:`bgsub.files.write_atomically`): a crash
while saving leaves the previous checkpoint as it was.  Reading a file of
another format version, a damaged or truncated one, or one whose state does
not fit its own shape raises :class:`CheckpointError` saying which; a model
is never silently wrong.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..files import not_a_file, write_atomically


__all__ = ["CheckpointError", "FORMAT", "encode", "decode", "write", "read"]

MAGIC = b"BGSUBMDL"
FORMAT = 2  # the file format this bgsub writes and reads (2: flicker words, cell averages)
_FIXED = struct.Struct("<8sII")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: not one, another format, damaged, inconsistent."""


def encode(state: dict[str, Any]) -> bytes:
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


def decode(data: bytes, name: str = "checkpoint") -> dict[str, Any]:
    """A masker's state (for ``__setstate__``) from checkpoint bytes (*name* for messages)."""
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
    return {**header, "arrays": arrays}


def write(path: str | Path, state: dict[str, Any]) -> None:
    """Write a masker's state (``__getstate__``) as a checkpoint to *path*, atomically."""
    write_atomically(Path(path), encode(state))


def read(path: str | Path) -> dict[str, Any]:
    """A masker's state (for ``__setstate__``) from the checkpoint at *path*."""
    path = Path(path)
    kind = not_a_file(path)
    if kind is not None:  # opening a FIFO would wait for a writer, deaf to signals
        raise CheckpointError(f"{path}: is {kind} (expected a checkpoint file)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror})") from None
    return decode(data, str(path))
