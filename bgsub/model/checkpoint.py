"""Model checkpoints: a masker's whole state in one file, checked when read back.

A live camera's model takes minutes to learn its scene; a checkpoint lets a
restarted run carry on where the last one stopped.  The file holds the
16-bit state and flicker words, the ghost test's counts, the configuration,
the frames learned, the recovery and log-likelihood tracking (and the
bootstrap frames of an unfinished EM start), a format version and a SHA-256
checksum of the state::

    b"BGSUBMDL"  format version (uint32 LE)  header length (uint32 LE)
    header: UTF-8 JSON (bgsub version, config, shape, tracking, the arrays'
            names, dtypes, shapes and sizes, the payload's SHA-256)
    payload: the arrays' bytes, one after the other

It is written atomically (:func:`bgsub.files.write_atomically`): a crash
while saving leaves the previous checkpoint as it was.  Reading a file of
another format version, a damaged or truncated one, or one whose state does
not fit its own shape raises :class:`CheckpointError` saying which; a model
is never silently wrong.  A file is hostile until checked: the header is
checked whole, and its sizes against the file's length, before any of the
state is read or allocated, so a small file cannot ask for gigabytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import BgsubError
from ..files import not_a_file, write_atomically


__all__ = ["CheckpointError", "FORMAT", "ARRAYS", "encode", "decode", "write", "read"]

MAGIC = b"BGSUBMDL"
# the file format this bgsub writes and reads (2: flicker words, cell averages;
# 3: the ghost test's counts and schedule)
FORMAT = 3
_FIXED = struct.Struct("<8sII")
#: the arrays a checkpoint may hold, and the one dtype each is stored in
ARRAYS = {"state": "<u2", "ghosts": "<i4", "bootstrap": "|u1"}
_MAX_DIMENSIONS = 3


class CheckpointError(BgsubError, ValueError):
    """A checkpoint that cannot be used: not one, another format, damaged, inconsistent."""


def encode(state: dict[str, Any]) -> bytes:
    """A masker's state (``__getstate__``, already a copy) as checkpoint bytes."""
    state = dict(state)
    arrays = state.pop("arrays")
    names, chunks, offset = [], [], 0
    for name, array in arrays.items():
        array = np.ascontiguousarray(array, np.dtype(ARRAYS[name]))
        names.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape),
                      "offset": offset, "nbytes": array.nbytes})
        chunks.append(array.tobytes())
        offset += array.nbytes
    payload = b"".join(chunks)
    header = json.dumps({**state, "bgsub": __version__, "arrays": names,
                         "sha256": hashlib.sha256(payload).hexdigest()}).encode()
    return _FIXED.pack(MAGIC, FORMAT, len(header)) + header + payload


def _header_length(fixed: bytes, name: str) -> int:
    """The header's length, from the file's first bytes (magic, format, length)."""
    if len(fixed) < _FIXED.size or fixed[:8] != MAGIC:
        raise CheckpointError(f"{name}: not a bgsub model checkpoint")
    _, version, header_length = _FIXED.unpack_from(fixed)
    if version != FORMAT:
        raise CheckpointError(f"{name}: a checkpoint of format {version}; this bgsub "
                              f"({__version__}) reads format {FORMAT}")
    return header_length


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _header(raw: bytes, name: str) -> dict[str, Any]:
    """The header, its array table checked whole: the payload's size it promises is
    ``sum(entry["nbytes"])`` and can be trusted to describe the arrays."""
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError included; nested too deep
        raise CheckpointError(f"{name}: the checkpoint's header is damaged") from None

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{name}: the checkpoint's header is damaged ({what})")

    if not isinstance(header, dict):
        raise bad(f"a JSON {type(header).__name__}, not an object")
    for key, kind in (("arrays", list), ("sha256", str), ("bgsub", str)):
        if not isinstance(header.get(key), kind):
            raise bad(f"no {key!r} {kind.__name__}")
    offset, seen = 0, set()
    for entry in header["arrays"]:
        if not isinstance(entry, dict) or set(entry) != {"name", "dtype", "shape", "offset",
                                                          "nbytes"}:
            raise bad("an array entry must hold name, dtype, shape, offset and nbytes")
        array = entry["name"]
        if not isinstance(array, str) or array not in ARRAYS or array in seen:
            raise bad(f"an array named {array!r}: expected each of {', '.join(ARRAYS)} "
                      "at most once")
        seen.add(array)
        if entry["dtype"] != ARRAYS[array]:
            raise bad(f"{array!r} of dtype {entry['dtype']!r}; expected {ARRAYS[array]!r}")
        shape = entry["shape"]
        if (not isinstance(shape, list) or not 1 <= len(shape) <= _MAX_DIMENSIONS
                or not all(_is_count(v) for v in shape)):
            raise bad(f"{array!r} of shape {shape!r}")
        if not _is_count(entry["nbytes"]) or entry["offset"] != offset or \
                not _is_count(entry["offset"]):
            raise bad(f"{array!r} at offset {entry['offset']!r} of {entry['nbytes']!r} bytes")
        if entry["nbytes"] != math.prod(shape) * np.dtype(entry["dtype"]).itemsize:
            raise bad(f"{array!r} of {entry['nbytes']} bytes does not hold shape {shape}")
        offset += entry["nbytes"]
    return header


def _payload_size(header: dict[str, Any]) -> int:
    return sum(entry["nbytes"] for entry in header["arrays"])


def _state(header: dict[str, Any], payload: bytes, name: str) -> dict[str, Any]:
    """The state of a checked *header* and its payload (of the size the header promises)."""
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


def _sizes(total: int, header_length: int, payload: int, name: str) -> None:
    """Refuse a file whose length is not the header's promise (before reading the state)."""
    if total < _FIXED.size + header_length:
        raise CheckpointError(f"{name}: the checkpoint is truncated (its header is cut)")
    have = total - _FIXED.size - header_length
    if have < payload:
        raise CheckpointError(f"{name}: the checkpoint is truncated ({have} of {payload} "
                              "bytes of state)")
    if have > payload:
        raise CheckpointError(f"{name}: the checkpoint is damaged ({have} bytes of state "
                              f"where its header says {payload})")


def decode(data: bytes, name: str = "checkpoint") -> dict[str, Any]:
    """A masker's state (for ``__setstate__``) from checkpoint bytes (*name* for messages).

    The header is checked whole (its arrays' names, dtypes from :data:`ARRAYS`,
    shapes and sizes, which must add up to the bytes that follow it) before
    any array is made.
    """
    header_length = _header_length(data[:_FIXED.size], name)
    end = _FIXED.size + header_length
    if len(data) < end:
        raise CheckpointError(f"{name}: the checkpoint is truncated (its header is cut)")
    header = _header(data[_FIXED.size:end], name)
    _sizes(len(data), header_length, _payload_size(header), name)
    return _state(header, data[end:], name)


def write(path: str | Path, state: dict[str, Any]) -> None:
    """Write a masker's state (``__getstate__``) as a checkpoint to *path*, atomically."""
    write_atomically(Path(path), encode(state))


def _read_exactly(file, size: int) -> bytes:
    """*size* bytes of *file*, fewer only at its end (one read may return less)."""
    chunks, left = [], size
    while left > 0:
        chunk = file.read(min(left, 1 << 30))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read(path: str | Path) -> dict[str, Any]:
    """A masker's state (for ``__setstate__``) from the checkpoint at *path*.

    Only a regular file is read (a FIFO or a device such as ``/dev/zero`` is
    refused without waiting on it), and no more of it than its header
    promises, once the header is checked against the file's length.
    """
    path = Path(path)
    name = str(path)
    kind = not_a_file(path)
    if kind is not None:  # opening a FIFO would wait for a writer, deaf to signals
        raise CheckpointError(f"{name}: not a regular file but {kind}; a model checkpoint is "
                              "one (written by --save-model or MixtureMasker.save)")
    try:
        # O_NONBLOCK: opening a FIFO for reading would wait for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise CheckpointError(f"{name}: cannot be read ({exc.strerror})") from None
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
        file = os.fdopen(fd, "rb", buffering=0) if regular else None
    except OSError as exc:
        os.close(fd)
        raise CheckpointError(f"{name}: cannot be read ({exc.strerror})") from None
    if file is None:
        os.close(fd)
        raise CheckpointError(f"{name}: not a regular file; a model checkpoint is one "
                              "(written by --save-model or MixtureMasker.save)")
    try:
        with file:
            size = os.fstat(file.fileno()).st_size
            header_length = _header_length(_read_exactly(file, _FIXED.size), name)
            if size < _FIXED.size + header_length:
                raise CheckpointError(f"{name}: the checkpoint is truncated (its header is "
                                      "cut)")
            header = _header(_read_exactly(file, header_length), name)
            payload = _payload_size(header)
            _sizes(size, header_length, payload, name)
            data = _read_exactly(file, payload)
            if len(data) != payload:  # the file shrank since
                raise CheckpointError(f"{name}: the checkpoint is truncated ({len(data)} of "
                                      f"{payload} bytes of state)")
    except OSError as exc:
        raise CheckpointError(f"{name}: cannot be read ({exc.strerror})") from None
    return _state(header, data, name)
