"""Put a benchmark's Markdown table into its documentation page (and name its CPU).

A page marks each table it gets from a benchmark with two comments::

    <!-- table:NAME -->
    | ... the table ... |
    <!-- /table:NAME -->

and a benchmark run with ``--write-docs`` replaces what lies between them
(``docs/accuracy.md``: ``accuracy``; ``docs/speed.md``: ``speed``).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def cpu_name() -> str:
    """The CPU's model name, for a benchmark's setup line (Linux; else what Python says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown CPU"


def replace_table(text: str, name: str, table: str) -> str:
    """*text* with the lines between the markers of table *name* replaced by *table*.

    Raises ValueError when the page does not hold exactly one pair of markers for
    *name*, in that order.
    """
    start, end = f"<!-- table:{name} -->", f"<!-- /table:{name} -->"
    pattern = re.compile(rf"^{re.escape(start)}[ \t]*\n.*?^{re.escape(end)}[ \t]*$",
                         re.DOTALL | re.MULTILINE)
    if text.count(start) != 1 or text.count(end) != 1 or not pattern.search(text):
        raise ValueError(f"the page needs one {start} ... {end} pair, on lines of their own")
    return pattern.sub(lambda _: f"{start}\n{table.strip()}\n{end}", text)


def write_table(page: str | Path, name: str, table: str) -> Path:
    """Replace table *name* in *page* (a path, or a file name under docs/), atomically."""
    path = Path(page)
    if not path.is_absolute() and not path.exists():
        path = DOCS / path
    text = replace_table(path.read_text(encoding="utf-8"), name, table)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
