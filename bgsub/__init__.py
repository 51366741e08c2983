"""bgsub: real-time background subtraction with a per-pixel Gaussian mixture."""

from .config import Config, ConfigError, ModelConfig, PostprocessConfig, load_config
from .masker import FrameSizeError, MixtureMasker, absorption_frames
from .postprocess import Postprocessor

__version__ = "0.1.0"

__all__ = ["MixtureMasker", "FrameSizeError", "absorption_frames", "ModelConfig", "Config",
           "ConfigError", "load_config", "__version__", "Postprocessor", "PostprocessConfig"]
