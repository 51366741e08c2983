"""The one error type of everything a user can get wrong, and the errors several wings share.

Every error a user can cause (a bad setting, a missing input, an output
that cannot be written, a damaged model file, ...) is a :class:`BgsubError`:
its message is the one line a person sees, and :attr:`~BgsubError.exit_status`
the status a command exits with.  Each wing defines its own errors where
it raises them (``ConfigError`` in :mod:`bgsub.config`, ``SourceError`` in
:mod:`bgsub.io.sources`, ...), all derived from :class:`BgsubError`; the
command line catches :class:`BgsubError` in one place
(:func:`bgsub.cli.common.guarded`).  Any other exception is a bug.

This module is at the bottom of the package: it imports nothing of bgsub.
"""

from __future__ import annotations

__all__ = ["BgsubError", "SinkError"]


class BgsubError(Exception):
    """An error a user can cause and fix: its message says what is wrong and what is expected.

    Attributes
    ----------
    exit_status : int
        The status a command exits with (2: bad input, as the README promises);
        a subclass may set another.

    Examples
    --------
    >>> str(BgsubError("--output x.txt: unknown video extension '.txt'"))
    "--output x.txt: unknown video extension '.txt'"
    >>> BgsubError("any").exit_status
    2
    """

    exit_status: int = 2


class SinkError(BgsubError):
    """An output that cannot be written, or whose writing failed (a user-facing error)."""
