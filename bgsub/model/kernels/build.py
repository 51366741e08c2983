"""Compiling the frame kernels: LLVM options for their vector loops, one compilation at a time.

The options are global to LLVM, and LLVM reports on stderr every loop it
cannot vectorise at the width forced on it: both concern the whole process.
So a kernel is compiled under Numba's own compiler lock (no other Numba
compilation, in any thread, can run meanwhile and be built with these options)
and with stderr passed through a filter that drops LLVM's loop remarks and
forwards everything else, so what other threads write meanwhile still
reaches stderr.  Where the process has no stderr (a service, ``2>&-``), there
is nothing to filter.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

import llvmlite.binding as llvm
from numba.core.compiler_lock import global_compiler_lock

__all__ = ["compile_vectorized"]

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

# "remark: <unknown>:0:0: loop not vectorized: ..." and the warning that the
# forced width could not be applied: LLVM's diagnostics without a location.
# LLVM writes one in pieces ("remark: ", then the rest), unbuffered: a line
# another thread writes at that instant can be glued into it and go with it.
_LLVM_DIAGNOSTIC = re.compile(rb"^(remark|warning): <unknown>:\d+:\d+: |<unknown>:\d+:\d+: "
                              rb"(loop not vectorized|the optimizer was unable)")


def compile_vectorized(dispatcher, signature) -> None:
    """Compile (or load from Numba's cache) *dispatcher* for *signature* with the options."""
    with global_compiler_lock:
        for name, (value, _) in _OPTIONS.items():
            llvm.set_option("", f"-{name}={value}")
        try:
            with _llvm_diagnostics_dropped():
                dispatcher.compile(signature)
        finally:
            for name, (_, default) in _OPTIONS.items():
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
            _write(target, b"".join(line + b"\n" for line in lines
                                    if not _LLVM_DIAGNOSTIC.search(line)))
        if pending and not _LLVM_DIAGNOSTIC.search(pending):
            _write(target, pending)
    finally:
        os.close(read_end)


def _write(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except OSError:  # a closed pipe: what cannot be shown is dropped, never blocks
            return
