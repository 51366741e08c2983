"""Sharing a frame's tiles out between threads, without waiting for late ones.

The frame kernel (:func:`bgsub.model.kernels.frame.frame_kernel`) works on a range of
tiles and releases the GIL.  :class:`TileRunner` cuts a frame into chunks of
tiles; the calling thread and a few helper threads take chunks from a shared
counter until none are left.  The call returns once every chunk is done.

Why not Numba's ``prange``: its parallel region ends at a barrier that every
worker thread must reach, even one that got no work.  On a machine with as
many busy threads as cores (the pipeline's reader and writer, a video
player, another program), a worker that is not running when the region
starts holds the frame up for a scheduler time slice, several milliseconds:
measured on 2 cores with one other busy process, a 320x240 frame took 6-8 ms
instead of 0.6 ms.  Here a helper that wakes late finds no chunk left, and
nobody waits for it.

The frame kernel and the neighbour pass take their chunks themselves
(*scheduled* kernels: one call per thread, chunks claimed with atomic
operations, :func:`bgsub.model.kernels.spin.take_chunk`): handing chunks out in
Python needs the GIL between chunks, and a thread that finds the other
holding it sleeps.  Between frames a helper spins (:mod:`bgsub.model.kernels.spin`,
without the GIL) for up to ``SPIN_SECONDS`` before it sleeps, and the caller
spins for the helpers' last chunks: waking a sleeping thread takes the operating system
tens of microseconds (about 45 us on the benchmarks' 2-core machine), a
tenth of a 640x480 frame.  A helper spins only while frames come that fast
(the last gap between two frames was shorter than the spin), and only when
the runner has no more threads than the machine has cores, so that a
masker waiting for its source burns no CPU.  For the same reason the
runner's threads take turns in Python (see :func:`bgsub.model.kernels.spin.enter_python`):
one that leaves Numba while another is in Python would otherwise sleep on the GIL.
"""

from __future__ import annotations

import functools
import os
import threading
import time

import numba
import numpy as np

from .kernels import spin
from .kernels.spin import CHUNKS_PER_THREAD, MIN_TILES_PER_CHUNK
from .kernels.spin import CLAIM as _CLAIM, DONE as _DONE, GEN as _GEN, NEXT as _NEXT
from .kernels.spin import PYTHON as _PYTHON

__all__ = ["TileRunner", "shared_runner"]

IDLE_SECONDS = 10.0  # a helper with no frame for this long ends; the next frame starts it again
SPIN_SECONDS = 300e-6  # the longest spin for the next frame or the helpers' chunks
CLAIM_SECONDS = 50e-6  # the longest wait for a turn in Python (spin.enter_python)


@functools.cache
def _pauses(seconds: float) -> int:
    """Spins of bgsub.model.kernels.spin that last about *seconds* here."""
    return max(1, int(seconds * spin.pauses_per_second()))


class TileRunner:
    """Runs ``kernel(*args, t_start, t_stop)`` over all tiles, on this thread and helpers.

    Parameters
    ----------
    threads : int, optional
        Threads in all, the caller's included; default Numba's thread count
        (``NUMBA_NUM_THREADS``, by default the number of CPUs).
    """

    def __init__(self, threads: int | None = None) -> None:
        self.threads = max(1, int(threads or numba.config.NUMBA_NUM_THREADS))
        self._busy = threading.Lock()  # one frame at a time
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._job = None
        self._generation = 0
        self._next = 0
        self._error: BaseException | None = None
        self._helpers: list[threading.Thread] = []
        # the generation and the helpers' finished tiles, for the spins
        self._ctl = np.zeros(8, np.int64)
        self._ctl[_PYTHON] = 1  # the caller, whichever thread it is
        self._idle_ctl = np.zeros(8, np.int64)  # for a scheduled kernel run alone
        self._may_spin = self.threads <= (os.cpu_count() or 1)
        self._spin_now = False  # frames come faster than a spin lasts
        self._last_end = -1.0
        self._owed = 0  # tiles of an interrupted frame that helpers may still report
        self._sleeping = 0  # helpers asleep on self._wake

    def run(self, kernel, args: tuple, n_tiles: int, scheduled: bool = False,
            share: bool = True) -> None:
        """Process tiles ``0 .. n_tiles - 1`` with ``kernel(*args, t_start, t_stop)``.

        ``share=False`` runs them all on the calling thread.

        A *scheduled* kernel takes its chunks itself: it is called once per
        thread as ``kernel(*args, ctl, threads, base, n_tiles)``, takes chunks
        with :func:`bgsub.model.kernels.spin.take_chunk` and adds the tiles it
        finished to ``ctl[DONE]``, all without the GIL (with ``threads`` 1 it
        processes ``t_start .. t_stop - 1`` itself).  Handing chunks out in
        Python instead takes the GIL between chunks, and a thread that finds
        the other holding it sleeps (about 45 us here) several times a frame.
        """
        # alone, too small to share, or another thread's frame is in progress
        if (not share or self.threads == 1 or n_tiles < 2 * MIN_TILES_PER_CHUNK
                or not self._busy.acquire(blocking=False)):
            if scheduled:
                kernel(*args, self._idle_ctl, 1, 0, n_tiles)
            else:
                kernel(*args, 0, n_tiles)
            return
        mine = base = 0
        completed = False
        try:
            now = time.perf_counter()
            self._spin_now = self._may_spin and now - self._last_end < SPIN_SECONDS
            if len(self._helpers) < self.threads - 1:
                self._start_helpers()
            if self._owed:
                self._collect_owed()
            with self._lock:
                # a scheduled job's tile 0 is where the tiles handed out
                # stand now (see spin.take_chunk)
                base = int(self._ctl[_NEXT])
                self._job = (kernel, args, n_tiles, scheduled, base)
                self._next = 0
                self._error = None
                self._generation += 1
                self._ctl[_DONE] = 0
                if self._sleeping:
                    self._wake.notify_all()
            mine = self._work(publish=True)
            # the helpers' chunks: spin, then sleep in short steps (a helper
            # that took a chunk and lost its CPU may be a while)
            target = n_tiles - mine
            if not spin.wait_done(self._ctl, target, _pauses(SPIN_SECONDS)):
                while not spin.wait_at_least(self._ctl, _DONE, target, 1):
                    time.sleep(50e-6)
            completed = True
            with self._lock:
                self._job = None
                error = self._error
            if error is not None:
                raise error
        finally:
            if not completed:  # interrupted: no more chunks, and the next frame
                with self._lock:  # waits for the helpers' reports of theirs
                    self._job = None
                    if scheduled:  # the tiles left can be claimed by no one now
                        claimed = spin.raise_to(self._ctl, _NEXT, base + n_tiles) - base
                        self._owed = min(claimed, n_tiles)
                    else:
                        self._owed = self._next - mine
            self._last_end = time.perf_counter()
            self._busy.release()

    def _collect_owed(self) -> None:
        """After an interrupted frame, wait (briefly) for the helpers to report its chunks.

        Their reports would otherwise count towards this frame.  At most 0.1 s:
        a chunk takes a millisecond or so, and the count owed may be high by
        the caller's own chunk that the interrupt cut short.
        """
        if self._owed:
            deadline = time.monotonic() + 0.1
            while self._ctl[_DONE] < self._owed and time.monotonic() < deadline:
                time.sleep(100e-6)
            self._owed = 0

    def _work(self, publish: bool = False) -> int:
        """Take chunks until none are left; returns how many tiles this thread counted.

        Chunks shrink as the frame runs out (guided scheduling): a thread
        takes 1 / (CHUNKS_PER_THREAD * threads) of the tiles left, at least
        MIN_TILES_PER_CHUNK.  Large chunks first keep the handing out cheap;
        small ones last keep a thread from waiting long for the other's
        final chunk.  With *publish* (the caller), the generation goes to
        the spinning helpers just before the first chunk starts, so that
        they find the GIL free when they come for it.  A scheduled kernel
        takes its chunks and counts its tiles itself: one call, 0 returned.
        """
        done = 0
        while True:
            with self._lock:
                if self._job is None:
                    return done
                kernel, args, n_tiles, scheduled, base = self._job
                start = self._next
                if not scheduled:  # (a scheduled kernel: one call per thread)
                    if start >= n_tiles:
                        return done
                    left = n_tiles - start
                    size = max(MIN_TILES_PER_CHUNK,
                               -(-left // (CHUNKS_PER_THREAD * self.threads)))
                    self._next = stop = min(n_tiles, start + size)
                if publish:
                    self._ctl[_GEN] = self._generation
                    publish = False
            try:
                if scheduled:
                    kernel(*args, self._ctl, self.threads, base, n_tiles)
                else:
                    kernel(*args, start, stop)
            except BaseException as exc:  # re-raised in the calling thread
                with self._lock:
                    self._error = self._error or exc
                if scheduled:  # its tiles will never be counted: release the caller
                    spin.bump(self._ctl, _DONE, n_tiles)
                    spin.bump(self._ctl, _PYTHON, 1)  # it left Python and did not come back
            if not scheduled:
                done += stop - start
            else:
                return done

    def _helper(self, seen: int) -> None:
        """Help with every frame after generation *seen*; end after IDLE_SECONDS without one.

        Between frames: report the tiles done and spin for the next
        generation (without the GIL), then sleep.  Idle helpers end so that a
        runner of many threads that is no longer used (a masker dropped, a
        camera stopped) does not keep them for ever.
        """
        me = threading.current_thread()
        done = 0
        while True:
            pauses = _pauses(SPIN_SECONDS) if self._spin_now else 0
            spin.report_and_wait(self._ctl, done, seen, pauses)
            done = 0
            slept = False
            with self._lock:
                if self._generation == seen:
                    spin.leave_python(self._ctl)  # asleep, it leaves the turn to the others
                    slept = True
                    self._sleeping += 1
                    woken = self._wake.wait_for(lambda: self._generation != seen, IDLE_SECONDS)
                    self._sleeping -= 1
                    if not woken:
                        self._helpers.remove(me)
                        return
                seen = self._generation
            if slept:
                spin.enter_python(self._ctl)
            done = self._work()

    def _start_helpers(self) -> None:
        self._ctl[_CLAIM] = _pauses(CLAIM_SECONDS)
        with self._lock:
            while len(self._helpers) < self.threads - 1:
                helper = threading.Thread(target=self._helper, args=(self._generation,),
                                          name="bgsub-tiles", daemon=True)
                self._helpers.append(helper)
                spin.bump(self._ctl, _PYTHON, 1)  # it starts in Python
                helper.start()


_shared: dict[int, TileRunner] = {}
_shared_lock = threading.Lock()


def shared_runner(threads: int | None = None) -> TileRunner:
    """The process's runner for *threads* threads (None: Numba's count), made on first use.

    Maskers that ask for the same count share its helper threads.
    """
    count = max(1, int(threads or numba.config.NUMBA_NUM_THREADS))  # None and N alike
    with _shared_lock:
        runner = _shared.get(count)
        if runner is None:
            runner = _shared[count] = TileRunner(count)
        return runner
