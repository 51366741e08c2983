"""Configuration: one typed source of truth, mirrored by ``config.toml``.

Every setting lives in a dataclass field with its default and its validation.
``config.toml`` at the repository root mirrors these dataclasses (a test keeps
the two in sync), and the command line overrides single values.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import math
import numbers
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

from .regions import RegionError, check_polygon
from .timecode import parse_duration

__all__ = ["ConfigError", "ModelConfig", "SourceConfig", "PostprocessConfig", "DisplayConfig",
           "OutputConfig", "PipelineConfig", "ScanConfig", "EventsConfig", "Config", "load_config",
           "apply_overrides", "resolve_config", "replace_section"]


class ConfigError(ValueError):
    """An invalid configuration value, key or file (a user error)."""


RHO_MODES = ("alpha_over_weight", "gaussian")
COVARIANCE_TYPES = ("spherical", "diagonal")
INIT_MODES = ("first-frame", "em", "random")
KERNEL_SHAPES = ("ellipse", "rect", "cross")
MAX_THREADS = 256  # a bound on thread counts asked for (pipeline.masker_threads, threads=)


@dataclass(frozen=True)
class ModelConfig:
    """Parameters of the per-pixel Stauffer–Grimson mixture.

    Parameters
    ----------
    k : int
        Gaussians per pixel (1..8).
    learning_rate : float
        alpha in [0, 1]: the weight of the newest frame in every running
        average.  Early frames use ``max(alpha, 1/t)`` (t = frames learned so
        far, counting the current one) so a fresh model settles at once.
    match_threshold : float
        lambda > 0: a value matches a component when its mean squared
        per-channel distance to the mean is below ``lambda**2 * variance``.
    background_ratio : float
        T in (0, 1): components, ranked by weight/sigma, belong to the
        background until their cumulative weight exceeds T.
    init_weight : float
        Weight in (0, 1) given to a component created for an unmatched value
        (before the weights are renormalised).
    init_variance : float
        Variance (grey levels squared) of a newly created component.
    min_variance, max_variance : float
        Clamp for every variance; ``min_variance <= init_variance <= max_variance``.
    rho : {"alpha_over_weight", "gaussian"}
        Learning rate of the matched component's mean and variance:
        ``alpha / w`` (default) or the paper's ``alpha * eta(x | mu, sigma)``.
    covariance : {"spherical", "diagonal"}
        One variance per component shared by the channels (Stauffer and
        Grimson's sigma^2 I), or one per channel.
    outlier_weight : float
        epsilon in (0, 1): the weight of a uniform outlier term in the
        likelihood ``p(x) = (1 - eps) sum_j w_j N_j(x) + eps / 256**C`` used by
        ``log_likelihood`` and ``foreground_probability``.
    recovery_drop : float
        When the mean log-likelihood falls this many nats per pixel below its
        running average in at least ``recovery_cells`` of the cells of an 8x8
        grid over the frame at once (lights switched on, camera bumped), the
        model learns at ``recovery_rate`` for ``recovery_frames`` frames.  0
        turns this off.
    recovery_cells : float
        The fraction of the grid's cells, in (0, 1], that must drop together:
        a change of the whole scene, never one object, however close.
    recovery_rate : float
        Learning rate in (0, 1] during a recovery.
    recovery_frames : int
        Length of a recovery, in frames (>= 1).
    init : {"first-frame", "em", "random"}
        How the model starts.  "first-frame": from the first frame and the
        1/t warm-up.  "em" and "random": the same while the first
        ``init_frames`` frames are collected, then each pixel's mixture is
        refitted to them by batch EM (initialised by k-means or at random,
        see :mod:`bgsub.model.em`) and learning carries on online.
    init_frames : int
        Frames collected for the EM bootstrap (2..1000; memory: H*W*C bytes each).
    em_max_iter : int
        Most EM iterations of the bootstrap.
    em_tol : float
        The bootstrap's EM stops when a pixel's mean log-likelihood gains less.
    shadows : bool
        Mark moving cast shadows among the foreground pixels of colour frames
        (see :mod:`bgsub.model.kernels.shadows`).
    shadow_value : int
        Mask value of a shadow pixel, 0..254: 127 by default (OpenCV's
        convention), 0 folds shadows into the background.
    shadow_ratio_min : float
        The darkest shadow, in (0, 1): a shadow keeps at least this fraction
        of a background component's light (and at most all of it).
    shadow_threshold : float
        tau_c > 0: a shadow's colour lies within this many standard
        deviations (of one channel, scaled by the brightness ratio) of the
        darkened background colour; a background colour closer than that to
        grey gets no shadows by colour alone.
    shadow_texture : bool
        On a grey background, a darker pixel is a shadow when the frame's
        brightness around it (5x5) is a scaled copy of the background's:
        normalised cross-correlation >= 0.4 and ratio spread <= 0.2.
    absorb_seconds : float
        Selective update: how long a stopped object (a person who waits, a
        parked car) stays foreground, in seconds > 0.  Foreground pixels learn
        at the rate that takes this long (see :func:`bgsub.model.masker.absorption_frames`),
        background ones at ``learning_rate``.
    fps : float
        Frames per second that ``absorb_seconds`` is counted in when the
        source gives none (the command line uses the source's).
    flicker_reference : float
        A pixel's flicker level is the running mean (gain 1/32) of whether
        its own classification changed since the last frame.  A foreground
        pixel learns at ``learning_rate`` from this level on, proportionally
        less below it (waves, leaves, shaking edges: they go on being learned
        as background).  0: foreground always learns at the selective rate.
    flicker_threshold : float
        >= 0: a pixel's match threshold grows with its flicker level V (0..1,
        last frame's) above ``flicker_threshold_from``: lambda (1 +
        flicker_threshold max(V - flicker_threshold_from, 0)), so that what
        waves or ripples (leaves, water) matches the values it swings
        through, while a still object (V near 0) or a lane that traffic
        crosses now and then keeps lambda.  0: off.
    flicker_threshold_from : float
        The flicker level in [0, 1) above which lambda widens.
    neighbour_radius : int
        0..3: a foreground pixel whose flicker level is at least
        ``neighbour_flicker`` is background when it matches a background
        component of a pixel within this radius (jitter, waving branches).  0
        turns this off.
    neighbour_flicker : float
        The flicker level in [0, 1] from which the neighbour test applies.
    ghost_frames : int
        Ghost release: a foreground blob (on a grid of 8x8 cells) whose outline
        is an edge of the background image but not of the frame (what an
        object that left uncovers) is let go after this many frames in a row;
        0 turns this off.  (Tested every 4th frame, each test counting for 4.)
    ghost_rate : float
        Learning rate in (0, 1] of a released ghost's pixels.
    ghost_contrast : float
        A blob is a ghost when the frame's contrast across its outline is
        below this fraction of the background image's, in (0, 1).
    """

    k: int = 3
    learning_rate: float = 0.002
    match_threshold: float = 2.5
    background_ratio: float = 0.6
    init_weight: float = 0.02
    init_variance: float = 100.0
    min_variance: float = 81.0
    max_variance: float = 1600.0
    rho: str = "alpha_over_weight"
    covariance: str = "spherical"
    outlier_weight: float = 0.01
    recovery_drop: float = 3.0
    recovery_rate: float = 0.1
    recovery_frames: int = 30
    recovery_cells: float = 0.75
    init: str = "first-frame"
    init_frames: int = 50
    em_max_iter: int = 30
    em_tol: float = 1e-3
    shadows: bool = True
    shadow_value: int = 127
    shadow_ratio_min: float = 0.35
    shadow_threshold: float = 2.5
    shadow_texture: bool = True
    absorb_seconds: float = 100.0
    fps: float = 25.0
    flicker_reference: float = 0.05
    flicker_threshold: float = 4.0
    flicker_threshold_from: float = 0.2
    neighbour_radius: int = 1
    neighbour_flicker: float = 0.15
    ghost_frames: int = 10
    ghost_rate: float = 0.01
    ghost_contrast: float = 0.5

    def __post_init__(self) -> None:
        _check_types(self, "model")
        if not 1 <= self.k <= 8:
            raise ConfigError(f"model.k must be an integer in 1..8, got {self.k}")
        _check_range("model.learning_rate", self.learning_rate, 0.0, 1.0, "[0, 1]",
                      lo_open=False, hi_open=False)
        _check_range("model.match_threshold", self.match_threshold, 0.0, math.inf, "> 0")
        _check_range("model.background_ratio", self.background_ratio, 0.0, 1.0, "(0, 1)")
        _check_range("model.init_weight", self.init_weight, 0.0, 1.0, "(0, 1)")
        for name in ("init_variance", "min_variance", "max_variance"):
            # grey levels squared: beyond 255^2 nothing can be told apart anyway,
            # and far beyond float32 overflows
            _check_range(f"model.{name}", getattr(self, name), 0.0, 65025.0, "(0, 65025]",
                         hi_open=False)
        if not self.min_variance <= self.init_variance <= self.max_variance:
            raise ConfigError(
                "model variances must satisfy min_variance <= init_variance <= max_variance, "
                f"got {self.min_variance} <= {self.init_variance} <= {self.max_variance}")
        if self.covariance not in COVARIANCE_TYPES:
            raise ConfigError(f"model.covariance must be one of "
                              f"{', '.join(map(repr, COVARIANCE_TYPES))}, got {self.covariance!r}")
        _check_range("model.outlier_weight", self.outlier_weight, 0.0, 1.0, "(0, 1)")
        _check_range("model.recovery_drop", self.recovery_drop, 0.0, math.inf, ">= 0",
                     lo_open=False)
        _check_range("model.recovery_rate", self.recovery_rate, 0.0, 1.0, "(0, 1]",
                     hi_open=False)
        if not 1 <= self.recovery_frames <= 100000:
            raise ConfigError(f"model.recovery_frames must be in 1..100000, got "
                              f"{self.recovery_frames}")
        if self.init not in INIT_MODES:
            raise ConfigError(f"model.init must be one of {', '.join(map(repr, INIT_MODES))}, "
                              f"got {self.init!r}")
        if not 2 <= self.init_frames <= 1000:
            raise ConfigError(f"model.init_frames must be in 2..1000, got {self.init_frames}")
        if not 1 <= self.em_max_iter <= 10000:
            raise ConfigError(f"model.em_max_iter must be in 1..10000, got {self.em_max_iter}")
        _check_range("model.em_tol", self.em_tol, 0.0, math.inf, "> 0")
        if self.rho not in RHO_MODES:
            raise ConfigError(
                f"model.rho must be one of {', '.join(map(repr, RHO_MODES))}, got {self.rho!r}")
        if not 0 <= self.shadow_value <= 254:
            # 255 is foreground: a shadow must stay distinguishable from it
            raise ConfigError(f"model.shadow_value must be in 0..254, got {self.shadow_value}")
        _check_range("model.shadow_ratio_min", self.shadow_ratio_min, 0.0, 1.0, "(0, 1)")
        _check_range("model.shadow_threshold", self.shadow_threshold, 0.0, math.inf, "> 0")
        _check_range("model.recovery_cells", self.recovery_cells, 0.0, 1.0, "(0, 1]",
                     hi_open=False)
        _check_range("model.absorb_seconds", self.absorb_seconds, 0.0, 1e7, "(0, 1e7]",
                     hi_open=False)
        _check_range("model.fps", self.fps, 0.0, 1000.0, "(0, 1000]", hi_open=False)
        _check_range("model.flicker_reference", self.flicker_reference, 0.0, 1.0, "[0, 1]",
                     lo_open=False, hi_open=False)
        _check_range("model.flicker_threshold", self.flicker_threshold, 0.0, 100.0,
                     "[0, 100]", lo_open=False, hi_open=False)
        _check_range("model.flicker_threshold_from", self.flicker_threshold_from, 0.0, 1.0,
                     "[0, 1)", lo_open=False)
        if not 0 <= self.neighbour_radius <= 3:
            raise ConfigError(f"model.neighbour_radius must be in 0..3, got "
                              f"{self.neighbour_radius}")
        _check_range("model.neighbour_flicker", self.neighbour_flicker, 0.0, 1.0, "[0, 1]",
                     lo_open=False, hi_open=False)
        if not 0 <= self.ghost_frames <= 100000:
            raise ConfigError(f"model.ghost_frames must be in 0..100000, got "
                              f"{self.ghost_frames}")
        _check_range("model.ghost_rate", self.ghost_rate, 0.0, 1.0, "(0, 1]", hi_open=False)
        _check_range("model.ghost_contrast", self.ghost_contrast, 0.0, 1.0, "(0, 1)")


@dataclass(frozen=True)
class SourceConfig:
    """Where frames come from.

    Parameters
    ----------
    width, height : int
        Frame size to request from a camera (0: the camera's default).
    fps : float
        Frame rate to request from a camera (0: the camera's default).
    open_timeout : float
        Seconds to wait for a stream URL to connect or to deliver a frame.
    queue_size : int
        Frames the reader thread may read ahead of the masker.
    reconnect : bool
        Reopen a camera or a stream that stops delivering frames (files are
        never reopened).
    reconnect_limit : int
        Attempts after each drop before giving up with an error; 0 tries for
        ever.
    reconnect_delay, reconnect_max_delay : float
        Seconds before the first attempt, doubled after each failure up to
        the maximum.
    """

    width: int = 0
    height: int = 0
    fps: float = 0.0
    open_timeout: float = 10.0
    queue_size: int = 8
    reconnect: bool = True
    reconnect_limit: int = 0
    reconnect_delay: float = 1.0
    reconnect_max_delay: float = 60.0

    def __post_init__(self) -> None:
        _check_types(self, "source")
        for name in ("width", "height"):
            if getattr(self, name) < 0:
                raise ConfigError(f"source.{name} must be >= 0, got {getattr(self, name)}")
        _check_range("source.fps", self.fps, 0.0, 1000.0, "[0, 1000]", lo_open=False,
                     hi_open=False)
        _check_range("source.open_timeout", self.open_timeout, 0.0, 3600.0, "(0, 3600]",
                     hi_open=False)
        if self.queue_size < 1:
            raise ConfigError(f"source.queue_size must be >= 1, got {self.queue_size}")
        if self.reconnect_limit < 0:
            raise ConfigError(f"source.reconnect_limit must be >= 0 (0 = for ever), got "
                              f"{self.reconnect_limit}")
        _check_range("source.reconnect_delay", self.reconnect_delay, 0.0, 3600.0, "(0, 3600]",
                      hi_open=False)
        _check_range("source.reconnect_max_delay", self.reconnect_max_delay, 0.0, 86400.0,
                     "(0, 86400]", hi_open=False)
        if self.reconnect_max_delay < self.reconnect_delay:
            raise ConfigError("source.reconnect_max_delay must be >= source.reconnect_delay, "
                              f"got {self.reconnect_max_delay} < {self.reconnect_delay}")


@dataclass(frozen=True)
class PostprocessConfig:
    """Clean-up of the foreground mask, applied in this order (each step optional).

    1. median filter, 2. opening, 3. closing, 4. removal of small blobs,
    5. hole filling.  The steps act on the foreground (255); shadow pixels
    (127) stay 127 unless a step makes them foreground (see
    :mod:`bgsub.model.postprocess`).

    The defaults were chosen on CDnet highway and four synthetic scenes
    (small and noisy, shaking, rippling water; ``benchmarks/``); see
    ``config.toml`` for the figures behind each.

    Parameters
    ----------
    median_size : int
        Side of the square median window: 0 or 1 off, else odd in 3..99.
    open_size, close_size : int
        Side of the structuring element of the opening (erosion then dilation:
        removes specks thinner than it) and of the closing (dilation then
        erosion: bridges gaps narrower than it): 0 or 1 off, else odd in 3..99.
    kernel_shape : {"ellipse", "rect", "cross"}
        Shape of both structuring elements.
    min_blob_area : int
        Foreground blobs (8-connected) of fewer pixels are removed; 0 off.
    fill_holes : bool
        Turn background regions fully enclosed by foreground (4-connected, not
        touching the frame's edge) into foreground.
    max_hole_area : int
        Only holes of at most this many pixels are filled; 0 fills every hole.
    """

    median_size: int = 7
    open_size: int = 3
    close_size: int = 9
    kernel_shape: str = "ellipse"
    min_blob_area: int = 0
    fill_holes: bool = True
    max_hole_area: int = 0

    def __post_init__(self) -> None:
        _check_types(self, "postprocess")
        for name in ("median_size", "open_size", "close_size"):
            size = getattr(self, name)
            if not (size in (0, 1) or 3 <= size <= 99 and size % 2 == 1):
                raise ConfigError(f"postprocess.{name} must be 0 or 1 (off) or an odd integer "
                                  f"in 3..99, got {size}")
        if self.kernel_shape not in KERNEL_SHAPES:
            raise ConfigError(f"postprocess.kernel_shape must be one of "
                              f"{', '.join(map(repr, KERNEL_SHAPES))}, got {self.kernel_shape!r}")
        for name in ("min_blob_area", "max_hole_area"):
            if getattr(self, name) < 0:
                raise ConfigError(f"postprocess.{name} must be >= 0 (0 = off), got "
                                  f"{getattr(self, name)}")

    @classmethod
    def off(cls) -> PostprocessConfig:
        """Every step off: masks pass through as the model made them."""
        return cls(median_size=0, open_size=0, close_size=0, min_blob_area=0, fill_holes=False)

    @property
    def active(self) -> bool:
        """Whether any step is on (otherwise the mask passes through unchanged)."""
        return (self.median_size > 1 or self.open_size > 1 or self.close_size > 1
                or self.min_blob_area > 0 or self.fill_holes)


@dataclass(frozen=True)
class DisplayConfig:
    """The HighGUI window.

    Parameters
    ----------
    max_width : int
        The panes side by side are scaled down to fit this many pixels.
    show_background : bool
        Show the background model as a pane.
    show_probability : bool
        Show the soft foreground probability as a pane (costs time per frame).
    min_blob_area : int
        Boxes are drawn around foreground blobs of at least this many pixels.
    tint : float
        Strength in [0, 1] of the red tint laid over foreground pixels.
    """

    max_width: int = 1600
    show_background: bool = True
    show_probability: bool = False
    min_blob_area: int = 40
    tint: float = 0.5

    def __post_init__(self) -> None:
        _check_types(self, "display")
        if self.max_width < 64:
            raise ConfigError(f"display.max_width must be >= 64, got {self.max_width}")
        if self.min_blob_area < 1:
            raise ConfigError(f"display.min_blob_area must be >= 1, got {self.min_blob_area}")
        _check_range("display.tint", self.tint, 0.0, 1.0, "[0, 1]", lo_open=False,
                     hi_open=False)


@dataclass(frozen=True)
class OutputConfig:
    """Writers.

    Parameters
    ----------
    queue_size : int
        Frames that may wait for the writer thread before masking waits.
    checkpoint_every : float
        Seconds between two saves of the model (``--save-model``) during a
        run on a camera or a stream; 0 saves only at the end.
    """

    queue_size: int = 32
    checkpoint_every: float = 300.0

    def __post_init__(self) -> None:
        _check_types(self, "output")
        if self.queue_size < 1:
            raise ConfigError(f"output.queue_size must be >= 1, got {self.queue_size}")
        _check_range("output.checkpoint_every", self.checkpoint_every, 0.0, 1e7,
                     "[0, 1e7] (0 = only at the end)", lo_open=False)


@dataclass(frozen=True)
class PipelineConfig:
    """How the ``bgsub`` command shares the CPU between its stages.

    Parameters
    ----------
    masker_threads : int
        Threads, 0..256, that share out each frame's pixels in the masker.
        0 (auto): every CPU but one when the run writes outputs, whose writer
        thread (annotation, encoding) and the reader thread (decoding) take
        about a core between them; every CPU otherwise; at least 1.
    io_nice : int
        Nice steps, 0..19, that the reader and writer threads run below the
        process's priority (Linux), so that they yield to the masker when they
        share its core; 0 leaves them at the process's priority.
    """

    masker_threads: int = 0
    io_nice: int = 10

    def __post_init__(self) -> None:
        _check_types(self, "pipeline")
        if not 0 <= self.masker_threads <= MAX_THREADS:
            raise ConfigError(f"pipeline.masker_threads must be in 0..{MAX_THREADS} (0 = auto), "
                              f"got {self.masker_threads}")
        if not 0 <= self.io_nice <= 19:
            raise ConfigError(f"pipeline.io_nice must be in 0..19, got {self.io_nice}")


_DURATIONS = ("min_event_length", "pre_roll", "post_roll", "flicker_window", "chunk_warmup")


@dataclass(frozen=True)
class ScanConfig:
    """How ``bgsub scan`` finds motion events in recorded video (see :mod:`bgsub.scan.detector`).

    Durations are frames (``45``), seconds (``"1.5s"``) or timecodes
    (``"00:00:01.5"``), see :mod:`bgsub.timecode`.

    Parameters
    ----------
    threshold : float
        A frame has motion when this share, in (0, 1], of the watched
        pixels is foreground (after post-processing) ...
    min_area : int
        ... or when its largest foreground blob covers this many pixels of
        the source frame (0: off).
    min_event_length : int or str
        Motion lasting this long without a break starts an event (at least
        one frame).
    pre_roll, post_roll : int or str
        An event includes this much video before its motion and after it; it
        ends after ``post_roll`` without motion.  Events closer than the
        rolls are one event.
    flicker : float
        Pixels whose raw mask (the model's, before post-processing) changed
        in more than this share, in [0, 1], of the recent frames are not
        scored: leaves, water, rain (0: off).
    flicker_window : int or str
        How far back "recent" reaches (the time constant of that share's
        running average; at least one frame).
    downscale : int
        Frames are scored this many times smaller in each direction; 0
        (auto): the smallest factor that makes them at most 640 pixels wide.
    frame_skip : int
        Frames skipped after each scored frame (0: score every frame).
    regions, exclude : list of polygons
        Polygons ``[x0, y0, x1, y1, ...]`` in source pixels: only the
        regions' union (the whole frame without any) minus the excluded ones
        is scored; the model learns everywhere.
    region_mask : str
        An image whose white pixels are watched ("" for none).
    draw_region : bool
        Thumbnails outline the region.
    jobs : int
        Files scanned at once, 0..256; 0 (auto): one per CPU when there are
        several files, each sharing out its masking over the CPUs left.
    chunk_minutes : float
        On a cluster (``--workers``, ``--scheduler``), a file longer than
        this is scanned in chunks of at most this length, side by side (0:
        never split).
    chunk_warmup : int or str
        Video before each chunk that its model learns from first (a
        duration; at least the events' rolls are always taken).
    connect_timeout : float
        Seconds to wait for a cluster's scheduler (``--scheduler``) to
        answer, > 0.
    """

    threshold: float = 0.0025
    min_area: int = 0
    min_event_length: int | str = "0.1s"
    pre_roll: int | str = "1.5s"
    post_roll: int | str = "2s"
    flicker: float = 0.06
    flicker_window: int | str = "1.5s"
    downscale: int = 0
    frame_skip: int = 0
    regions: tuple[tuple[float, ...], ...] = ()
    exclude: tuple[tuple[float, ...], ...] = ()
    region_mask: str = ""
    draw_region: bool = True
    jobs: int = 0
    chunk_minutes: float = 30.0
    chunk_warmup: int | str = "30s"
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in _DURATIONS:
            value = getattr(self, name)
            if isinstance(value, datetime.time):  # TOML's reading of an unquoted 00:00:01.5
                object.__setattr__(self, name, value.isoformat())
        _check_types(self, "scan")
        _check_range("scan.threshold", self.threshold, 0.0, 1.0, "(0, 1]", hi_open=False)
        if self.min_area < 0:
            raise ConfigError(f"scan.min_area must be >= 0 (0 = off), got {self.min_area}")
        for name in _DURATIONS:
            try:
                duration = parse_duration(getattr(self, name), f"scan.{name}")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            if name in ("min_event_length", "flicker_window") and (
                    duration.count == 0 or duration.seconds == 0):
                raise ConfigError(f"scan.{name} must be at least one frame, got "
                                  f"{getattr(self, name)!r}")
        _check_range("scan.flicker", self.flicker, 0.0, 1.0, "[0, 1]", lo_open=False,
                     hi_open=False)
        if not 0 <= self.downscale <= 64:
            raise ConfigError(f"scan.downscale must be in 0..64 (0 = auto), got {self.downscale}")
        if not 0 <= self.frame_skip <= 1000:
            raise ConfigError(f"scan.frame_skip must be in 0..1000, got {self.frame_skip}")
        for name in ("regions", "exclude"):
            for i, polygon in enumerate(getattr(self, name)):
                try:
                    check_polygon(polygon, f"scan.{name}[{i}]")
                except RegionError as exc:
                    raise ConfigError(str(exc)) from None
        if not 0 <= self.jobs <= MAX_THREADS:
            raise ConfigError(f"scan.jobs must be in 0..{MAX_THREADS} (0 = auto), got {self.jobs}")
        if not (math.isfinite(self.chunk_minutes) and self.chunk_minutes >= 0):
            raise ConfigError(f"scan.chunk_minutes must be >= 0 (0 = never split), got "
                              f"{self.chunk_minutes}")
        if not (math.isfinite(self.connect_timeout) and self.connect_timeout > 0):
            raise ConfigError(f"scan.connect_timeout must be > 0 seconds, got "
                              f"{self.connect_timeout}")


@dataclass(frozen=True)
class EventsConfig:
    """Events of a live run (``bgsub run --events/--clips/--on-event``).

    What makes an event (threshold, durations, regions, flicker) is the
    ``[scan]`` section's: a live camera and a recording are judged alike.

    Parameters
    ----------
    clip_quality : int
        JPEG quality, 50..100, of the frames the pre-roll buffer holds (a
        clip has to start before its event was recognised).
    max_commands : int
        ``--on-event`` commands that may run at once, 1..64; an event that
        would start one more is not passed on, with a warning.
    command_timeout : float
        Seconds an ``--on-event`` command may run before it is stopped.
    """

    clip_quality: int = 90
    max_commands: int = 4
    command_timeout: float = 30.0

    def __post_init__(self) -> None:
        _check_types(self, "events")
        if not 50 <= self.clip_quality <= 100:
            raise ConfigError(f"events.clip_quality must be in 50..100, got {self.clip_quality}")
        if not 1 <= self.max_commands <= 64:
            raise ConfigError(f"events.max_commands must be in 1..64, got {self.max_commands}")
        _check_range("events.command_timeout", self.command_timeout, 0.0, 86400.0,
                     "(0, 86400]", hi_open=False)


@dataclass(frozen=True)
class Config:
    """The whole configuration, one field per ``config.toml`` section."""

    source: SourceConfig = field(default_factory=SourceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    events: EventsConfig = field(default_factory=EventsConfig)


def _check_types(obj: Any, section: str) -> None:
    """Check every field of a section against its annotation, converting where lossless.

    Any annotation works: int, float, str, bool, Path, ``X | None``,
    ``tuple[X, ...]`` (TOML arrays and lists become tuples: a section stays
    hashable) and nestings of these.  An int is taken for a float, a string
    for a Path.
    """
    for f in fields(obj):
        value = getattr(obj, f.name)
        converted = _conform(value, _hints(type(obj))[f.name], f"{section}.{f.name}")
        if converted is not value:
            object.__setattr__(obj, f.name, converted)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _conform(value: Any, tp: Any, name: str) -> Any:
    """*value* as an instance of *tp*; ConfigError naming *name* when it is none."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _conform(value, option, name)
            except ConfigError:
                pass
        raise ConfigError(f"{name} must be {_describe(tp)}, got {type(value).__name__} "
                          f"{value!r}")
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be {_describe(tp)}, got {type(value).__name__} "
                              f"{value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{name} must be {_describe(tp)}, got {len(value)} values")
            items = [_conform(v, a, f"{name}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_type = args[0] if args else Any
            items = [_conform(v, item_type, f"{name}[{i}]") for i, v in enumerate(value)]
        return tuple(items)
    if tp is Any:
        return value
    if tp is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)  # an int, or a NumPy number
    if tp is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)  # a NumPy integer
    if tp is Path and isinstance(value, str):
        return Path(value)
    if isinstance(value, bool) and tp is not bool or not isinstance(value, tp):
        raise ConfigError(f"{name} must be {_describe(tp)}, got {type(value).__name__} "
                          f"{value!r}")
    return value


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("None" if a is type(None) else _describe(a)
                           for a in typing.get_args(tp))
    if origin in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"a list of {_describe(args[0])}" if args else "a list"
    return getattr(tp, "__name__", str(tp))


def _check_range(name: str, value: float, lo: float, hi: float, expect: str,
                 lo_open: bool = True, hi_open: bool = True) -> None:
    ok = math.isfinite(value) or hi == math.inf and value == math.inf
    ok = ok and (value > lo if lo_open else value >= lo)
    ok = ok and (value < hi if hi_open else value <= hi)
    if not ok:
        raise ConfigError(f"{name} must be in {expect}, got {value}")


_SECTIONS: dict[str, type] = {f.name: f.default_factory for f in fields(Config)}  # type: ignore[misc]


def config_from_mapping(data: Mapping[str, Any], source: str = "configuration") -> Config:
    """Build a validated :class:`Config` from a nested mapping (a parsed TOML file).

    Unknown sections and keys raise :class:`ConfigError` naming the valid ones.
    """
    sections = {}
    for name, values in data.items():
        if name not in _SECTIONS:
            raise ConfigError(f"{source}: unknown section [{name}]; valid sections: "
                              f"{', '.join(_SECTIONS)}")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: [{name}] must be a table of settings")
        cls = _SECTIONS[name]
        valid = [f.name for f in fields(cls)]
        for key in values:
            if key not in valid:
                raise ConfigError(f"{source}: unknown key {name}.{key}; valid keys in "
                                  f"[{name}]: {', '.join(valid)}")
        try:
            sections[name] = cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return Config(**sections)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML configuration file.

    Raises
    ------
    ConfigError
        When the file is missing or unreadable, is not valid TOML (the message
        carries the line), or holds an unknown key or an invalid value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return config_from_mapping(data, str(path))


_SECTION_NAMES = {cls: name for name, cls in _SECTIONS.items()}


def replace_section(section: Any, **changes: Any) -> Any:
    """A copy of a configuration section (ModelConfig, PostprocessConfig, ...) with *changes*.

    The copy is validated again; an unknown name raises :class:`ConfigError`
    naming the valid ones, the same way for every section.
    """
    valid = [f.name for f in fields(section)]
    for key in changes:
        if key not in valid:
            name = _SECTION_NAMES.get(type(section), type(section).__name__)
            raise ConfigError(f"unknown {name} parameter {key!r}; valid: {', '.join(valid)}")
    return dataclasses.replace(section, **changes)


def resolve_config(path: str | Path | None = None, overrides: Sequence[str] = (),
                   option: str = "--set") -> Config:
    """The configuration a command runs with: a file, then ``section.key=value`` overrides.

    *path* None reads ``./config.toml`` when it exists, else takes the
    built-in defaults; *option* names where the overrides came from in error
    messages.  Every command and benchmark resolves its configuration here.
    """
    if path is not None:
        config = load_config(path)
    elif Path("config.toml").is_file():
        config = load_config("config.toml")
    else:
        config = Config()
    return apply_overrides(config, list(overrides), option) if overrides else config


def apply_overrides(config: Config, overrides: list[str], option: str = "--set") -> Config:
    """Apply ``section.key=value`` overrides (the CLI's ``--set``) to *config*.

    *option* names where the overrides came from in error messages.

    The value is read as a TOML value (``5``, ``0.01``, ``true``, ``"text"``);
    anything that is not one is taken as a bare string (``rho=gaussian``).
    """
    data = dataclasses.asdict(config)
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"{option} expects section.key=value, got {item!r}")
        if section not in data:
            raise ConfigError(f"{option} {item}: unknown section [{section}]; valid sections: "
                              f"{', '.join(data)}")
        if name not in data[section]:
            valid = ", ".join(data[section]) or "(none)"
            raise ConfigError(f"{option} {item}: unknown key {section}.{name}; valid keys in "
                              f"[{section}]: {valid}")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        data[section][name] = value
    return config_from_mapping(data, option)
