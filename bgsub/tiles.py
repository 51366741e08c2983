"""Sharing a frame's tiles out between threads, without waiting for late ones.

The frame kernel (:func:`bgsub.kernels.frame.frame_kernel`) works on a range of
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
"""

from __future__ import annotations

import threading

import numba

__all__ = ["TileRunner", "shared_runner"]

CHUNKS_PER_THREAD = 2  # a thread's chunk: this fraction of the tiles left per thread
MIN_TILES_PER_CHUNK = 4  # below this (4096 pixels), a chunk costs more to hand out than it saves
IDLE_SECONDS = 10.0  # a helper with no frame for this long ends; the next frame starts it again


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
        self._finished = threading.Condition(self._lock)
        self._job = None
        self._generation = 0
        self._next = self._active = 0
        self._error: BaseException | None = None
        self._helpers: list[threading.Thread] = []

    def run(self, kernel, args: tuple, n_tiles: int) -> None:
        """Process tiles ``0 .. n_tiles - 1`` with ``kernel(*args, t_start, t_stop)``."""
        # alone, too small to share, or another thread's frame is in progress
        if (self.threads == 1 or n_tiles < 2 * MIN_TILES_PER_CHUNK
                or not self._busy.acquire(blocking=False)):
            kernel(*args, 0, n_tiles)
            return
        try:
            self._start_helpers()
            with self._lock:
                self._job = (kernel, args, n_tiles)
                self._next = 0
                self._active = 0
                self._error = None
                self._generation += 1
                self._wake.notify_all()
            self._work()
            with self._lock:
                while self._next < n_tiles or self._active:
                    self._finished.wait()
                self._job = None
                error = self._error
            if error is not None:
                raise error
        finally:
            self._busy.release()

    def _work(self) -> None:
        """Take chunks until none are left.

        Chunks shrink as the frame runs out (guided scheduling): a thread
        takes 1 / (CHUNKS_PER_THREAD * threads) of the tiles left, at least
        MIN_TILES_PER_CHUNK.  Large chunks first keep the handing out cheap;
        small ones last keep a thread from waiting long for the other's
        final chunk.
        """
        while True:
            with self._lock:
                if self._job is None:
                    return
                kernel, args, n_tiles = self._job
                start = self._next
                if start >= n_tiles:
                    return
                left = n_tiles - start
                size = max(MIN_TILES_PER_CHUNK, -(-left // (CHUNKS_PER_THREAD * self.threads)))
                self._next = stop = min(n_tiles, start + size)
                self._active += 1
            try:
                kernel(*args, start, stop)
            except BaseException as exc:  # re-raised in the calling thread
                with self._lock:
                    self._error = self._error or exc
            with self._lock:
                self._active -= 1
                if self._active == 0 and self._next >= n_tiles:
                    self._finished.notify_all()

    def _helper(self, seen: int) -> None:
        """Help with every frame from generation *seen* on; end after IDLE_SECONDS without one.

        Idle helpers end so that a runner of many threads that is no longer
        used (a masker dropped, a camera stopped) does not keep them for ever.
        """
        me = threading.current_thread()
        while True:
            with self._lock:
                if self._generation == seen and not self._wake.wait_for(
                        lambda: self._generation != seen, IDLE_SECONDS):
                    self._helpers.remove(me)
                    return
                seen = self._generation
            self._work()

    def _start_helpers(self) -> None:
        with self._lock:
            while len(self._helpers) < self.threads - 1:
                helper = threading.Thread(target=self._helper, args=(self._generation,),
                                          name="bgsub-tiles", daemon=True)
                self._helpers.append(helper)
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
