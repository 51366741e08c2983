"""bgsub: real-time background subtraction with a per-pixel Gaussian mixture.

The public names load on first use (PEP 562), so that ``import bgsub`` and
the ``bgsub`` command start without loading Numba and OpenCV until they are
needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> the module that defines it
_EXPORTS = {
    "MixtureMasker": "model.masker", "FrameSizeError": "model.masker",
    "absorption_frames": "model.masker",
    "Config": "config", "ConfigError": "config", "ModelConfig": "config",
    "PostprocessConfig": "config", "load_config": "config",
    "Postprocessor": "model.postprocess",
    "FrameStep": "model.step", "FrameResult": "model.step",
    # the scan brings PyAV (FFmpeg) along
    "scan_file": "scan.scanner", "iter_events": "scan.scanner", "ScanOptions": "scan.scanner",
    "ScanResult": "scan.scanner", "MotionEvent": "scan.scanner",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .config import Config, ConfigError, ModelConfig, PostprocessConfig, load_config
    from .model.masker import FrameSizeError, MixtureMasker, absorption_frames
    from .model.postprocess import Postprocessor
    from .scan.scanner import MotionEvent, ScanOptions, ScanResult, iter_events, scan_file
    from .model.step import FrameResult, FrameStep


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bgsub' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
