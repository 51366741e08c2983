"""Text from outside (file names, URLs, stream titles) shown in a one-line record.

A file may be called ``bad\\nbgsub: 0 failed.mp4``: printed as it is, its
name starts a line of its own on stderr that looks like bgsub's, or splits a
line of a table in two.  :func:`one_line` shows such a name with its control
characters escaped, as ``ls -b`` and Python's ``repr`` do, so that one
record always stays one line and says what the name holds.
"""

from __future__ import annotations

import unicodedata

__all__ = ["one_line"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\f": "\\f", "\b": "\\b",
          "\a": "\\a", "\x1b": "\\e"}
# control characters, format characters (a bidirectional override reorders
# what follows it), line and paragraph separators, and the lone surrogates
# that stand for the bytes of a name that is not UTF-8
_ESCAPED = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for a byte that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def one_line(text: object) -> str:
    """*text* (``str()`` of it) with every character that could break or disguise a line escaped.

    Control characters become ``\\n``, ``\\t``, ``\\r``, ``\\e``, ``\\xNN``;
    format characters, line and paragraph separators ``\\uNNNN``; the
    undecodable bytes of a file name (surrogate escapes) ``\\xNN``.  Other
    text, a backslash included, is left as it is, so that ordinary names and
    Windows paths read as they are.

    Examples
    --------
    >>> one_line("bad\\nbgsub: 0 failed.mp4")
    'bad\\\\nbgsub: 0 failed.mp4'
    >>> one_line("caf\\u00e9 1.mp4")
    'café 1.mp4'
    """
    text = str(text)
    if text.isprintable():  # the usual name: nothing to look at twice
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _ESCAPED else c for c in text)
