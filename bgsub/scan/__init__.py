"""The scan wing: motion events in recorded video (``bgsub scan``).

* :mod:`~bgsub.scan.scanner`: :func:`scan_file` and the motion scorer;
* :mod:`~bgsub.scan.detector`: the event state machine (start, join, end);
* :mod:`~bgsub.scan.clips`: clips and thumbnails of events;
* :mod:`~bgsub.scan.tables`, :mod:`~bgsub.scan.report`: per-file records, events tables,
  the HTML report;
* :mod:`~bgsub.scan.cluster`: scanning on a Dask cluster.

The public names load on first use, so that importing one module of the
wing (the live events use the detector) does not load PyAV.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {name: "scanner" for name in
            ("scan_file", "iter_events", "ScanOptions", "ScanResult", "MotionEvent",
             "find_videos")}

__all__ = [*_EXPORTS]

if TYPE_CHECKING:
    from .scanner import MotionEvent, ScanOptions, ScanResult, find_videos, iter_events, scan_file


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bgsub.scan' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
