"""Compiling the kernels: LLVM options for their vector loops, one compilation at a time,
and telling the user when a first use compiles.

The options are global to LLVM, and LLVM reports on stderr every loop it
cannot vectorise at the width forced on it: both concern the whole process.
So a kernel is compiled under Numba's own compiler lock (no other Numba
compilation, in any thread, can run meanwhile and be built with these options)
and with stderr passed through a filter that drops LLVM's loop remarks and
forwards everything else, so what other threads write meanwhile still
reaches stderr.  Where the process has no stderr (a service, ``2>&-``), there
is nothing to filter.

A first run on a machine compiles the kernels a frame needs (about 35 s of
CPU time), then loads them from Numba's disk cache.  :func:`prepare` compiles
a list of kernels before their first call and, when some are not in the
cache, first logs one line at INFO on the ``bgsub`` logger saying so and
about how long it takes.  Compiling is single-threaded; with two cores or
more, a helper process compiles part of the list (and post-processing's
kernels, :func:`warming`) meanwhile, which brings a first run from about
30 s to about 20 on 2 cores.

Numba's cache is per checkout: beside the sources, or under
``NUMBA_CACHE_DIR`` in a folder named after the sources' path.  So the
package's kernels are cached instead under ``<cache>/bgsub/<version>``, with
``<cache>`` ``NUMBA_CACHE_DIR`` or else Numba's per-user cache folder
(``~/.cache/numba``), and ``<version>`` a hash of the sources they are built
from: a reinstall or a second checkout of the same sources loads what the
first compiled, and another version compiles its own.  The hash covers the
kernel's module, every module of this package and the labels the kernels
inline, so a change in an inlined helper of another module (which Numba's own
freshness check, per source file, does not see) also compiles the kernels
anew.  Kernels of the package defined before this module is imported keep
Numba's own places.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import logging
import os
import pickle
import re
import subprocess
import sys
import threading
from typing import Sequence

import llvmlite.binding as llvm
from numba.core import caching, config
from numba.core.compiler_lock import global_compiler_lock
from numba.misc.appdirs import AppDirs

__all__ = ["compile_vectorized", "prepare", "is_cached", "signature_of", "NOTICE"]

logger = logging.getLogger("bgsub")

NOTICE = "compiling kernels for this CPU, once: about %d s"
# when Numba's cache cannot be asked, the notice comes if compiling has not
# finished after this many seconds (loading from the cache takes well under)
_NOTICE_AFTER = 1.5
# one preparation at a time: compiles are one at a time anyway (Numba's lock),
# and a second thread preparing the same kernels then finds them compiled
# instead of telling the user a second time
_PREPARING = threading.Lock()

# * -force-vector-width: the cost model rejects vectorising the learning
#   loop, over-costing the 16-bit conversions; measured, the vectorised loop
#   is several times faster.  Eight float32 lanes fill an AVX2 register.
# * -unroll-threshold: the component and channel loops must be unrolled
#   completely, or the pixel loop is not the innermost loop and is not
#   vectorised; the default size limit stops short of k = 5.
# * -unswitch-threshold: loop unswitching would otherwise split the component
#   loop on the pixel's match (invariant in that loop) into two copies, and
#   the vectoriser would then predicate every store lane by lane.
# Each option with the value used and LLVM's default, put back afterwards.
_OPTIONS = {"force-vector-width": (8, 0), "unroll-threshold": (4000, 300),
            "unswitch-threshold": (1, 50)}
# Every kernel :func:`prepare` builds is also compiled with LLVM's inliner told
# to inline whatever it can: the kernels' helpers are plain ``@njit`` functions
# (Numba's own ``inline="always"`` copies each call's Numba IR into the caller
# before type inference, which made the frame kernel's compile three times
# slower), and LLVM then inlines them all, to the same machine code.
_INLINE = {"inline-threshold": (100000, 225)}

# "remark: <unknown>:0:0: loop not vectorized: ..." and the warning that the
# forced width could not be applied: LLVM's diagnostics without a location.
# LLVM writes one in pieces ("remark: ", "<unknown>:0:0: ", the text), unbuffered:
# another thread's line written at that instant is glued into it, and the
# diagnostic's text can then begin a line of its own.  So the pieces are cut out
# of every line wherever they stand, and what is left, if anything, is kept.
_LLVM_PIECES = re.compile(rb"(?:remark|warning): (?=<unknown>:|$)|<unknown>:\d+:\d+: |"
                          rb"(?:loop not vectorized|the optimizer was unable)[^\n]*")


def _without_llvm_diagnostics(line: bytes) -> bytes | None:
    """*line* (without its newline) with LLVM's diagnostic pieces cut out; None when
    nothing else was in it."""
    kept = _LLVM_PIECES.sub(b"", line)
    if kept == line:
        return line
    return kept if kept.strip() else None


_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_KERNELS = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=None)
def _sources_hash(py_file: str) -> str:
    """A hash of what a kernel of *py_file* is built from: that module, the kernels'
    modules and the labels they inline."""
    digest = hashlib.sha256()
    paths = sorted(os.path.join(_KERNELS, name) for name in os.listdir(_KERNELS)
                   if name.endswith(".py"))
    for path in [py_file, *paths, os.path.join(_PACKAGE, "labels.py")]:
        with open(path, "rb") as f:
            digest.update(os.path.basename(path).encode() + b"\0" + f.read() + b"\0")
    return digest.hexdigest()


class _KernelCacheLocator(caching._CacheLocator):
    """Numba's cache for this package's kernels: per user, per version of their sources."""

    def __init__(self, py_func, py_file):
        self._lineno = py_func.__code__.co_firstlineno
        self._stamp = _sources_hash(os.path.abspath(py_file))
        root = config.CACHE_DIR or AppDirs(appname="numba", appauthor=False).user_cache_dir
        self._cache_path = os.path.join(root, "bgsub", self._stamp[:16])

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        return self._stamp

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        path = os.path.abspath(py_file)
        if not (path.startswith(_PACKAGE + os.sep) and os.path.isfile(path)):
            return None  # not this package's: Numba's own locators
        self = cls(py_func, py_file)
        try:
            self.ensure_cache_path()
        except OSError:  # not writable: Numba's own locators try their places
            return None
        return self


def _use_kernel_cache() -> None:
    """Put the kernels' locator first in Numba's list (before any kernel is defined)."""
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    locators = getattr(impl, "_locator_classes", None)
    if isinstance(locators, list) and _KernelCacheLocator not in locators:
        locators.insert(0, _KernelCacheLocator)


_use_kernel_cache()


def compile_vectorized(dispatcher, signature, vectorized: bool = True) -> None:
    """Compile (or load from Numba's cache) *dispatcher* for *signature* with the options
    (with only the inlining option when not *vectorized*)."""
    options = {**_OPTIONS, **_INLINE} if vectorized else _INLINE
    with global_compiler_lock:
        for name, (value, _) in options.items():
            llvm.set_option("", f"-{name}={value}")
        try:
            with _llvm_diagnostics_dropped() if vectorized else contextlib.nullcontext():
                dispatcher.compile(tuple(signature))
        finally:
            for name, (_, default) in options.items():
                llvm.set_option("", f"-{name}={default}")


@contextlib.contextmanager
def _llvm_diagnostics_dropped():
    """Route file descriptor 2 through a thread that drops LLVM's location-less diagnostics."""
    try:
        os.fstat(2)
    except OSError:  # no stderr at all
        yield
        return
    if sys.stderr is not None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward, args=(read_end, saved),
                                 name="bgsub-stderr-filter", daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        os.dup2(saved, 2)  # closes the pipe's last write end: the forwarder sees its end
        forwarder.join()
        os.close(saved)


def _forward(read_end: int, target: int) -> None:
    pending = b""
    try:
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = (_without_llvm_diagnostics(line) for line in lines)
            _write(target, b"".join(line + b"\n" for line in kept if line is not None))
        rest = _without_llvm_diagnostics(pending) if pending else None
        if rest is not None:
            _write(target, rest)
    finally:
        os.close(read_end)


def _write(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except OSError:  # a closed pipe: what cannot be shown is dropped, never blocks
            return


def signature_of(dispatcher, args: tuple) -> tuple:
    """The argument types *dispatcher* compiles for when called with *args*."""
    return tuple(dispatcher.typeof_pyval(a) for a in args)


def is_cached(dispatcher, signature) -> bool | None:
    """Whether *dispatcher* has *signature* compiled in this process or in Numba's disk cache.

    False for a dispatcher without a disk cache; None when the cache cannot be
    asked (its index is Numba's own, not a public interface).
    """
    signature = tuple(signature)
    if signature in dispatcher.overloads:
        return True
    cache = getattr(dispatcher, "_cache", None)
    try:
        if not getattr(cache, "_enabled", False):
            return False
        key = cache._index_key(signature, dispatcher.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # another Numba's internals: the caller falls back on a timer
        return None


def prepare(kernels: Sequence[tuple[object, tuple, bool, float]]) -> None:
    """Compile (or load from Numba's cache) each ``(dispatcher, signature, vectorized, seconds)``.

    *seconds* is what compiling the kernel costs on one core of a current
    machine; *vectorized* compiles it with :func:`compile_vectorized`.  When
    some are not in the cache, one line (:data:`NOTICE`, with about how long
    it takes) is logged at INFO on the ``bgsub`` logger before compiling; when
    the cache cannot be asked, the same line is logged if compiling has not
    finished after 1.5 s.

    With two cores or more, a helper process compiles some of the missing
    kernels meanwhile (those defined at a module's top level), and runs the
    jobs of :func:`warming`; this process then loads them from the cache
    (see :class:`_Helper`).
    """
    with _PREPARING:
        _prepare(kernels)


#: whether :func:`prepare` may compile in a helper process (tests turn it off and on)
HELPER = True
# seconds a helper process takes before it compiles (Python, NumPy and Numba
# imported); a helper is started only when it has at least _HELPER_MIN seconds
# of compiling to do besides
_HELPER_START = 1.5
_HELPER_MIN = 3.0
# a helper that has not finished after this many seconds and ten times its estimate is
# stopped (this process then compiles its share)
_HELPER_GRACE = 60.0
_HELPER_PATIENCE = 10.0
_WARM_UPS: contextvars.ContextVar[tuple] = contextvars.ContextVar("bgsub_warm_ups", default=())


@contextlib.contextmanager
def warming(*jobs: tuple[str, str, tuple, float]):
    """While in the block, a :func:`prepare` that starts a helper process also has it
    run each ``(module, function, args, seconds)``: a function that compiles kernels by
    calling them (post-processing's, on an empty mask), so that they are in
    the cache when this process first calls them.  *args* must pickle;
    *seconds* is what the job costs when nothing is cached."""
    token = _WARM_UPS.set(_WARM_UPS.get() + tuple(jobs))
    try:
        yield
    finally:
        _WARM_UPS.reset(token)


def _cores() -> int:
    """The CPUs this process may use: its affinity, within a cgroup's CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:  # "max 100000" or "QUOTA PERIOD"
            quota, period = f.read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def _address(dispatcher) -> tuple[str, str] | None:
    """``(module, name)`` under which a helper process finds *dispatcher*; None when it
    is not a module's top-level kernel (a kernel built by a function)."""
    func = getattr(dispatcher, "py_func", None)
    module = sys.modules.get(getattr(func, "__module__", None) or "")
    name = getattr(func, "__qualname__", "")
    if module is None or module.__name__ == "__main__" or "." in name \
            or getattr(module, name, None) is not dispatcher:
        return None
    return module.__name__, name


def _share(missing) -> tuple[list, list]:
    """The missing kernels (``(dispatcher, signature, vectorized, seconds)``) split into
    this process's and a helper's, the heaviest first to the one with less to do."""
    heaviest_first = sorted(missing, key=lambda k: -k[3])
    movable = [k for k in heaviest_first if _address(k[0]) is not None]
    own = [k for k in heaviest_first if _address(k[0]) is None]  # built by a function
    helped = []
    own_seconds = sum(k[3] for k in own)
    helper_seconds = _HELPER_START + sum(job[3] for job in _WARM_UPS.get())
    for kernel in movable:
        if own_seconds <= helper_seconds:
            own.append(kernel)
            own_seconds += kernel[3]
        else:
            helped.append(kernel)
            helper_seconds += kernel[3]
    if helper_seconds - _HELPER_START < _HELPER_MIN:
        return missing, []
    return own, helped


def _prepare(kernels) -> None:
    states = [is_cached(d, sig) for d, sig, _, _ in kernels]
    missing = [k for k, cached in zip(kernels, states) if cached is not True]
    own, helped = (_share(missing) if HELPER and False in states and None not in states
                   and _cores() >= 2 else (missing, []))
    warm_ups = _WARM_UPS.get() if helped else ()
    seconds = sum(k[3] for k in own)
    if helped:
        seconds = max(seconds, _HELPER_START + sum(k[3] for k in helped)
                      + sum(job[3] for job in warm_ups))
    timer = None
    if False in states:
        logger.info(NOTICE, max(1, round(seconds)))
    elif None in states:
        timer = threading.Timer(_NOTICE_AFTER, logger.info, (NOTICE, max(1, round(seconds))))
        timer.daemon = True
        timer.start()
    helper = _Helper.start(helped, warm_ups) if helped else None
    try:
        for dispatcher, signature, vectorized, _ in own:
            compile_vectorized(dispatcher, signature, vectorized)
        if helper is not None:
            helper.finish()
        # what the helper compiled loads from the cache (or, had it failed, compiles here)
        for dispatcher, signature, vectorized, _ in kernels:
            compile_vectorized(dispatcher, signature, vectorized)
    finally:
        if timer is not None:
            timer.cancel()
        if helper is not None:
            helper.stop()


# The helper process's code, given on its command line: the job comes on stdin,
# and sys.path is set before this package is imported; stdin then stays open,
# and its end (this process gone) ends the helper (read from the descriptor: a
# thread blocked in sys.stdin's buffer would hold its lock at exit).
_HELPER_CODE = (
    "import os, pickle, sys, threading\n"
    "job = pickle.load(sys.stdin.buffer)\n"
    "def orphaned():\n"
    "    while os.read(0, 4096):\n"
    "        pass\n"
    "    os._exit(1)\n"
    "threading.Thread(target=orphaned, daemon=True).start()\n"
    "sys.path[:] = job['path']\n"
    "from bgsub.model.kernels.build import _help\n"
    "sys.exit(_help(job))\n")
# the helper in a session of its own: a Ctrl-C at the terminal reaches this process
# only, which decides what to do (a command finishes the frame, then stops)
_DETACHED = ({"start_new_session": True} if os.name == "posix"
             else {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)})


class _Helper:
    """A process that compiles kernels into Numba's disk cache while this one compiles
    others.

    It compiles module-level kernels only (it finds them by module and name)
    and then runs the warm-up jobs.  Two processes must never save the same
    function's cache entries at once (Numba numbers a function's entries from
    its index, read then written: two writers can give one number to two
    signatures), and the kernels share helpers (``@njit`` functions LLVM
    inlines), each with cache entries of its own.  So in the helper process
    no function of this package reads or writes the cache but the kernels it
    was given and those of the warm-ups' modules (which this process does not
    compile meanwhile): it compiles the helpers it needs afresh, and this
    process, whose kernels compile the same helpers, saves theirs alone.
    A helper that fails costs nothing but the wait: this process compiles
    what is missing itself.  Its output goes to the DEBUG log.
    """

    def __init__(self, process: subprocess.Popen, seconds: float) -> None:
        self._process = process
        self._seconds = seconds

    @classmethod
    def start(cls, kernels, warm_ups) -> "_Helper | None":
        seconds = sum(k[3] for k in kernels) + sum(job[3] for job in warm_ups)
        job = {"path": list(sys.path),
               "kernels": [(*_address(d), pickle.dumps(tuple(sig)), vectorized)
                           for d, sig, vectorized, _ in kernels],
               # (module, name, args), the args pickled apart: they may need sys.path
               "warm_ups": [(module, name, pickle.dumps(args))
                            for module, name, args, _ in warm_ups]}
        try:
            data = pickle.dumps(job)
            process = subprocess.Popen([sys.executable, "-c", _HELPER_CODE],
                                       stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, **_DETACHED)
        except Exception as error:  # noqa: BLE001 (an argument that does not pickle, no Python)
            logger.debug("no helper process for compiling: %s", error)
            return None
        helper = cls(process, seconds)
        try:
            process.stdin.write(data)
            process.stdin.flush()
        except OSError as error:  # it died at once: its stderr says why
            logger.debug("the compiling helper did not take its job: %s", error)
        # stdin stays open until stop(): the helper exits when it closes, so that it
        # does not outlive this process (communicate() must not touch it)
        helper._stdin, process.stdin = process.stdin, None
        return helper

    def finish(self) -> None:
        """Wait for the helper (at most ten times what it should take, and a minute);
        a failure (logged at DEBUG) leaves its work to this process."""
        try:
            _, err = self._process.communicate(
                timeout=_HELPER_GRACE + _HELPER_PATIENCE * self._seconds)
        except subprocess.TimeoutExpired:
            self._process.kill()
            _, err = self._process.communicate()
        if self._process.returncode != 0:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
            logger.debug("the compiling helper failed (exit %s): %s",
                         self._process.returncode, " / ".join(tail))

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._stdin.close()
        if self._process.poll() is None:
            self._process.kill()
        self._process.communicate()


def _help(job) -> int:
    """The helper process: compile the job's kernels, run its warm-ups."""
    import importlib

    global HELPER
    HELPER = False  # a warm-up that prepares kernels compiles them here

    from numba.core.dispatcher import Dispatcher

    targets = [(getattr(importlib.import_module(module), name), pickle.loads(sig), vectorized)
               for module, name, sig, vectorized in job["kernels"]]
    warm_ups = [(getattr(importlib.import_module(module), name), pickle.loads(args))
                for module, name, args in job["warm_ups"]]
    # the cache stays on for the kernels given and for the warm-ups' modules only
    kept = {id(d) for d, _, _ in targets}
    kept_modules = {module for module, _, _ in job["warm_ups"]}
    package = __name__.split(".", 1)[0] + "."
    for module_name, module in list(sys.modules.items()):
        if module_name.startswith(package) and module_name not in kept_modules \
                and module is not None:
            for value in list(vars(module).values()):
                if isinstance(value, Dispatcher) and id(value) not in kept:
                    value._cache = caching.NullCache()
    for dispatcher, signature, vectorized in targets:
        compile_vectorized(dispatcher, signature, vectorized)
    for function, args in warm_ups:
        function(*args)
    return 0
