"""SIGINT and SIGTERM while the command starts and ends (outside a run's own handling).

Kept apart from :mod:`bgsub.cli.common` so that the handlers are in place
before the libraries load: this module imports nothing heavy.
"""

from __future__ import annotations

__all__ = ["Signalled", "signalled", "raised_signal", "keep_swallowed_signals",
           "take_swallowed"]


class Signalled(KeyboardInterrupt):
    """SIGINT or SIGTERM outside a command's own handling of signals."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# Every signal the handler raised, in order: C code (NumPy's import of its
# extensions) can turn the Signalled into an ImportError that no longer carries it
_raised: list[int] = []


def signalled(signum, _frame):
    """The handler while the command starts and ends: raise :class:`Signalled`."""
    _raised.append(signum)
    raise Signalled(signum)


def raised_signal() -> int | None:
    """The first signal :func:`signalled` raised as :class:`Signalled` (None: none)."""
    return _raised[0] if _raised else None


# Signals whose Signalled was raised where Python cannot pass an exception on
# (a weakref callback of the import machinery, a __del__): Python would print
# "Exception ignored in ..." with a traceback and carry on.  They are kept
# here instead, and the command stops at its next chance (take_swallowed).
_swallowed: list[int] = []


def keep_swallowed_signals(previous):
    """A :data:`sys.unraisablehook` that keeps a swallowed :class:`Signalled` and
    passes anything else to *previous*."""
    def hook(unraisable):
        if isinstance(unraisable.exc_value, Signalled):
            _swallowed.append(unraisable.exc_value.signum)
        else:
            previous(unraisable)
    return hook


def take_swallowed() -> int | None:
    """The first SIGINT or SIGTERM that arrived while starting and could not stop the
    command where it landed (None: none); it is forgotten once taken."""
    signum = _swallowed[0] if _swallowed else None
    _swallowed.clear()
    return signum
