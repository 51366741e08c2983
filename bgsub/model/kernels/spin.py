"""Waiting without the GIL or the kernel: atomic counters and bounded spins (Numba).

Waking a thread that sleeps on a lock takes the kernel tens of microseconds
(90 us for a round trip between two Python threads on the 2-core machine of
the benchmarks), and a thread that wants the GIL while another holds it
sleeps the same way.  :class:`bgsub.model.tiles.TileRunner` hands a frame's tiles to
its helpers several hundred times a second, so its waits between frames are
short spins here instead: a thread spins with the GIL released, on a counter
that the other side changes with an atomic operation, and sleeps on a
condition variable only when the spin runs out.

The spins count pause instructions rather than time (Numba has no clock);
:func:`pauses_per_second` calibrates them.
"""

from __future__ import annotations

import platform
import time

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["add", "compare_and_swap", "load", "pause", "report_and_wait", "wait_at_least",
           "wait_done", "pauses_per_second", "take_chunk", "first_chunk", "next_chunk",
           "out_of_python", "back_to_python", "bump", "raise_to", "enter_python", "leave_python",
           "GEN", "DONE", "NEXT", "PYTHON", "CLAIM", "CHUNKS_PER_THREAD", "MIN_TILES_PER_CHUNK"]

# a tile runner's control counters (bgsub.model.tiles): the frame's generation, the
# tiles finished, the next tile to hand out, the runner's threads in Python
# (see enter_python), and the longest wait (in pauses) to enter it
GEN, DONE, NEXT, PYTHON, CLAIM = 0, 1, 2, 3, 4
CHUNKS_PER_THREAD = 2  # a thread's chunk: this fraction of the tiles left per thread
MIN_TILES_PER_CHUNK = 4  # below this (4096 pixels), a chunk costs more to hand out than it saves

_MACHINE = platform.machine().lower()
_X86 = _MACHINE in ("x86_64", "amd64", "i386", "i686")
_ARM = _MACHINE in ("aarch64", "arm64")


def _item_pointer(context, builder, aryty, ary, i):
    arr = context.make_array(aryty)(context, builder, ary)
    return cgutils.get_item_pointer(context, builder, aryty, arr, [i], wraparound=False)


@intrinsic
def add(typingctx, ary, i, value):
    """``ary[i] += value`` as one atomic operation (int64 array); returns the old value."""
    if not (isinstance(ary, types.Array) and ary.dtype == types.int64):
        return None
    sig = types.int64(ary, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _item_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")

    return sig, codegen


@intrinsic
def compare_and_swap(typingctx, ary, i, expected, value):
    """``ary[i] = value`` if it holds *expected*, atomically; returns whether it did."""
    if not (isinstance(ary, types.Array) and ary.dtype == types.int64):
        return None
    sig = types.boolean(ary, types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _item_pointer(context, builder, signature.args[0], args[0], args[1])
        pair = builder.cmpxchg(ptr, args[2], args[3], "seq_cst", "seq_cst")
        return builder.extract_value(pair, 1)

    return sig, codegen


@intrinsic
def load(typingctx, ary, i):
    """``ary[i]`` read afresh from memory every time (an atomic load, acquire)."""
    if not (isinstance(ary, types.Array) and ary.dtype == types.int64):
        return None
    sig = types.int64(ary, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _item_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return sig, codegen


@intrinsic
def pause(typingctx):
    """The CPU's spin-wait hint (x86 ``pause``, Arm ``yield``; none elsewhere)."""
    sig = types.void()

    # the spin-wait hint: it saves power and lets a hyper-thread sibling run
    def codegen(context, builder, signature, args):
        if _X86:
            builder.call(cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause"), [])
        elif _ARM:
            builder.call(cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(32)]),
                "llvm.aarch64.hint"), [ir.Constant(ir.IntType(32), 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, cache=True)
def bump(ctl, at, value):
    """``ctl[at] += value`` atomically, from Python; returns the old value."""
    return add(ctl, at, value)


@njit(nogil=True, cache=True)
def raise_to(ctl, at, value):
    """``ctl[at] = max(ctl[at], value)`` atomically, from Python; returns the old value."""
    while True:
        old = load(ctl, at)
        if old >= value or compare_and_swap(ctl, at, old, value):
            return old


# Taking turns in Python.  A runner's threads leave Numba for Python
# several times a frame, each time taking the GIL; one that finds another
# holding it sleeps, and waking it costs tens of microseconds.  So they take
# turns: ``ctl[PYTHON]`` counts the runner's threads that are in Python (the
# caller starts there), and a thread about to go back waits, spinning
# without the GIL, until none is.  The count is lowered inside the Numba
# call, where the GIL is already released, and raised before the call
# returns and takes it again.  The wait is bounded (``ctl[CLAIM]`` pauses):
# a thread in Python for long (another job, a plain Python kernel, the
# caller's own work between frames) only makes the others go ahead and
# contend for the GIL as they would without the count.

# (calls, not inlined: they stay out of the way of LLVM's work on the frame
# kernel's loops)
@njit(cache=True, nogil=True)
def _leave(ctl):
    add(ctl, PYTHON, -1)


@njit(cache=True, nogil=True)
def _enter(ctl):
    for _ in range(load(ctl, CLAIM)):
        now = load(ctl, PYTHON)
        if now <= 0 and compare_and_swap(ctl, PYTHON, now, now + 1):
            return
        pause()
    add(ctl, PYTHON, 1)


@njit(nogil=True, cache=True)
def leave_python(ctl):
    """From Python, before a thread blocks (a lock, a sleep): it no longer counts as in Python."""
    _leave(ctl)


@njit(nogil=True, cache=True)
def enter_python(ctl):
    """From Python, after a thread blocked: wait for the others to leave Python, then count."""
    _enter(ctl)


@njit(nogil=True, cache=True)
def report_and_wait(ctl, done, seen, pauses):
    """Add *done* to ``ctl[DONE]``, then wait while ``ctl[GEN] == seen``, at most *pauses*.

    Returns ``ctl[GEN]``: *seen* when the spin ran out.  The calling thread
    is out of Python meanwhile (see enter_python): the thread that changed
    the generation may still hold the GIL for a moment, and wanting it then
    would put this one to sleep.
    """
    _leave(ctl)
    add(ctl, DONE, done)
    gen = seen
    for _ in range(pauses):
        gen = load(ctl, GEN)
        if gen != seen:
            break
        pause()
    _enter(ctl)
    return load(ctl, GEN)


@njit(nogil=True, cache=True)
def wait_done(ctl, target, pauses):
    """Wait until ``ctl[DONE] >= target``, at most *pauses*, out of Python; True if it is."""
    _leave(ctl)
    reached = False
    for _ in range(pauses):
        if load(ctl, DONE) >= target:
            reached = True
            break
        pause()
    _enter(ctl)
    return reached or load(ctl, DONE) >= target


@njit(nogil=True, cache=True)
def wait_at_least(ctl, at, target, pauses):
    """Wait until ``ctl[at] >= target``, at most *pauses*; returns whether it is."""
    for _ in range(pauses):
        if load(ctl, at) >= target:
            return True
        pause()
    return load(ctl, at) >= target


@njit(cache=True)
def take_chunk(ctl, base, n_tiles, threads, per_thread=CHUNKS_PER_THREAD):
    """The next chunk ``(start, stop)`` of a job's tiles 0..n_tiles-1; ``(n_tiles, n_tiles)``: none.

    ``ctl[NEXT]`` counts the tiles handed out over all jobs (it only grows);
    the job's tile 0 is its value *base* when the job began.  Guided: 1 /
    (per_thread * threads) of the tiles left, at least
    MIN_TILES_PER_CHUNK, claimed with a compare-and-swap: a thread still in
    an earlier job's call, which has no tile left, can never claim one of
    this job's, as an atomic add could.
    """
    while True:
        at = load(ctl, NEXT)
        start = at - base
        if start >= n_tiles or start < 0:
            return n_tiles, n_tiles
        size = max(MIN_TILES_PER_CHUNK, -(-(n_tiles - start) // (per_thread * threads)))
        if compare_and_swap(ctl, NEXT, at, at + size):
            return start, min(n_tiles, start + size)


@njit(cache=True)
def first_chunk(ctl, t_start, t_stop, threads, per_thread=CHUNKS_PER_THREAD):
    """A scheduled kernel's first chunk: taken from ``ctl`` (threads > 1; ``t_start``
    is then the job's base and ``t_stop`` its tile count), or all of ``t_start ..
    t_stop - 1`` (one thread).  Chunks are 1 / (per_thread * threads) of the
    tiles left (see take_chunk)."""
    if threads <= 1:
        return t_start, t_stop
    return take_chunk(ctl, t_start, t_stop, threads, per_thread)


@njit(cache=True)
def next_chunk(ctl, t_start, t_stop, threads, c_start, c_stop, per_thread=CHUNKS_PER_THREAD):
    """Count the chunk ``c_start .. c_stop - 1`` done and take the next (see first_chunk)."""
    if threads <= 1:
        return t_stop, t_stop
    add(ctl, DONE, c_stop - c_start)
    return take_chunk(ctl, t_start, t_stop, threads, per_thread)


@njit(cache=True)
def out_of_python(ctl, threads):
    """A scheduled kernel's first step: the GIL is released by now (see enter_python)."""
    if threads > 1:
        _leave(ctl)


@njit(cache=True)
def back_to_python(ctl, threads):
    """A scheduled kernel's last step: wait for a turn in Python (see enter_python)."""
    if threads > 1:
        _enter(ctl)


def pauses_per_second() -> float:
    """How many spins of :func:`wait_at_least` take a second here (best of a few)."""
    ctl = np.zeros(1, np.int64)
    wait_at_least(ctl, 0, 1, 10)  # compiled (or loaded) before the clock starts
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        wait_at_least(ctl, 0, 1, 20000)
        best = min(best, time.perf_counter() - t0)
    return 20000 / max(best, 1e-9)
