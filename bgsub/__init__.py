"""bgsub: real-time background subtraction with a per-pixel Gaussian mixture."""

import importlib

from .config import Config, ConfigError, ModelConfig, PostprocessConfig, load_config
from .masker import FrameSizeError, MixtureMasker, absorption_frames
from .postprocess import Postprocessor

__version__ = "0.1.0"

__all__ = ["MixtureMasker", "FrameSizeError", "absorption_frames", "ModelConfig", "Config",
           "ConfigError", "load_config", "__version__", "Postprocessor", "PostprocessConfig",
           "scan_file", "iter_events", "ScanOptions", "ScanResult", "MotionEvent"]

# the scan brings PyAV (FFmpeg) along: imported when first asked for, so that
# "import bgsub" stays light for everything else
_SCAN_NAMES = ("scan_file", "iter_events", "ScanOptions", "ScanResult", "MotionEvent")


def __getattr__(name: str):
    if name in _SCAN_NAMES:
        # by name: the package itself depends on none of the scan's modules
        return getattr(importlib.import_module(".scan", __name__), name)
    raise AttributeError(f"module 'bgsub' has no attribute {name!r}")
