"""Configuration: one typed source of truth, mirrored by ``config.toml``.

Every setting lives in a dataclass field with its default and its validation.
``config.toml`` at the repository root mirrors these dataclasses (a test keeps
the two in sync), and the command line overrides single values.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

from .errors import BgsubError
from .regions import RegionError, check_polygon
from .timecode import Duration, DurationError, parse_duration

__all__ = ["ConfigError", "ModelConfig", "SourceConfig", "PostprocessConfig", "DisplayConfig",
           "OutputConfig", "PipelineConfig", "ScanConfig", "EventsConfig", "Config", "load_config",
           "apply_overrides", "resolve_config", "replace_section", "as_mapping"]


class ConfigError(BgsubError, ValueError):
    """An invalid configuration value, key or file (a user error)."""


RHO_MODES = ("alpha_over_weight", "gaussian")
COVARIANCE_TYPES = ("spherical", "diagonal")
INIT_MODES = ("first-frame", "em", "random")
KERNEL_SHAPES = ("ellipse", "rect", "cross")
MAX_THREADS = 256  # a bound on thread counts asked for (pipeline.masker_threads, threads=)


@dataclass(frozen=True)
class ModelConfig:
    """Parameters of the per-pixel Stauffer–Grimson mixture.

    The documentation's model page (``docs/model.md``) says what each
    parameter does in the model; its configuration reference gives each
    default, unit and range and what the default rests on.  Every value is
    validated: an invalid one raises :class:`ConfigError` naming it.

    Parameters
    ----------
    k : int
        Gaussians per pixel (1..8).
    learning_rate : float
        alpha in [0, 1]: the weight of the newest frame in a background
        pixel's running averages (early frames use ``max(alpha, 1/t)``).
    match_threshold : float
        lambda > 0: a value matches a component within this many standard
        deviations (of one channel).
    background_ratio : float
        T in (0, 1): components ranked by weight/sigma are background until
        their cumulative weight exceeds T.
    init_weight : float
        Weight in (0, 1) of a component created for an unmatched value.
    init_variance : float
        Variance (grey levels squared) of a new component.
    min_variance, max_variance : float
        Clamp of every variance; ``min_variance <= init_variance <= max_variance``,
        each in (0, 65025].
    rho : {"alpha_over_weight", "gaussian"}
        Learning rate of the matched component's mean and variance: ``alpha / w``
        or the paper's ``alpha * eta(x | mu, sigma)``.
    covariance : {"spherical", "diagonal"}
        One variance per component shared by the channels, or one per channel.
    outlier_weight : float
        epsilon in (0, 1): the weight of a uniform outlier term in the
        likelihood behind ``log_likelihood`` and ``foreground_probability``.
    recovery_drop : float
        A drop of the log-likelihood, in nats per pixel (>= 0; 0: off), that
        starts a recovery when ``recovery_cells`` of an 8x8 grid's cells drop
        at once.
    recovery_cells : float
        The fraction of the grid's cells, in (0, 1], that must drop together.
    recovery_rate : float
        Learning rate in (0, 1] during a recovery.
    recovery_frames : int
        Length of a recovery, in frames (1..100000).
    init : {"first-frame", "em", "random"}
        How the model starts: from the first frame, or refitted by batch EM
        (initialised by k-means or at random, see :mod:`bgsub.model.em`) over
        the first ``init_frames`` frames.
    init_frames : int
        Frames collected for the EM bootstrap (2..1000; memory: H*W*C bytes each).
    em_max_iter : int
        Most EM iterations of the bootstrap (1..10000).
    em_tol : float
        The bootstrap's EM stops when a pixel's mean log-likelihood gains less (> 0).
    shadows : bool
        Mark moving cast shadows among the foreground pixels of colour frames.
    shadow_value : int
        Mask value of a shadow pixel, 0..254 (0 folds shadows into the background).
    shadow_ratio_min : float
        The darkest shadow, in (0, 1): the fraction of the light it keeps.
    shadow_threshold : float
        tau_c > 0: a shadow's colour lies within this many standard deviations
        of the darkened background colour.
    shadow_texture : bool
        On a grey background, tell a shadow by the floor's texture.
    absorb_seconds : float
        Selective update: how long a stopped object stays foreground, in
        seconds (0, 1e7] (see :func:`bgsub.model.masker.absorption_frames`).
    fps : float
        Frames per second, in (0, 1000], that ``absorb_seconds`` is counted in
        when the source gives none.
    flicker_reference : float
        The flicker level in [0, 1] from which a foreground pixel learns at
        ``learning_rate`` (0: never).
    flicker_threshold : float
        How much a pixel's match threshold widens with its flicker level V
        above ``flicker_threshold_from``: lambda (1 + flicker_threshold
        max(V - flicker_threshold_from, 0)); 0: never.
    flicker_threshold_from : float
        The flicker level in [0, 1) above which lambda widens.
    neighbour_radius : int
        Radius, 0..3, of the neighbour match (0: off).
    neighbour_flicker : float
        The flicker level in [0, 1] from which the neighbour match applies.
    ghost_frames : int
        Frames, 0..100000, after which a ghost is released (0: off).
    ghost_rate : float
        Learning rate in (0, 1] of a released ghost's pixels.
    ghost_contrast : float
        A blob is a ghost when the frame's contrast across its outline is
        below this fraction, in (0, 1), of the background image's.
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
    flicker_threshold: float = 0.0
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

    1. median filter (a larger one where the raw mask blinks), 2. opening,
    3. closing, 4. removal of small blobs, 5. hole filling.  The steps act on
    the foreground (255); shadow pixels (127) stay 127 unless a step makes them
    foreground (see :mod:`bgsub.model.postprocess`).

    The defaults were chosen on CDnet highway and four synthetic scenes
    (small and noisy, shaking, rippling water; ``benchmarks/``); see
    ``config.toml`` for the figures behind each.

    Parameters
    ----------
    median_size : int
        Side of the square median window: 0 or 1 off, else odd in 3..99.
    blink_size : int
        Side of the median window where the raw mask blinks away from the
        objects of the last masks (a waving background): 0 or 1 off, else odd
        in 3..99.
    blink_level : float
        The share of recent frames in which a pixel blinked from which
        *blink_size* applies, in (0, 1).
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

    median_size: int = 5
    blink_size: int = 15
    blink_level: float = 0.05
    open_size: int = 3
    close_size: int = 9
    kernel_shape: str = "ellipse"
    min_blob_area: int = 0
    fill_holes: bool = True
    max_hole_area: int = 0

    def __post_init__(self) -> None:
        _check_types(self, "postprocess")
        for name in ("median_size", "blink_size", "open_size", "close_size"):
            size = getattr(self, name)
            if not (size in (0, 1) or 3 <= size <= 99 and size % 2 == 1):
                raise ConfigError(f"postprocess.{name} must be 0 or 1 (off) or an odd integer "
                                  f"in 3..99, got {size}")
        if not 0 < self.blink_level < 1:
            raise ConfigError(f"postprocess.blink_level must be in (0, 1), got "
                              f"{self.blink_level}")
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
        return cls(median_size=0, blink_size=0, open_size=0, close_size=0, min_blob_area=0,
                   fill_holes=False)

    @property
    def active(self) -> bool:
        """Whether any step is on (otherwise the mask passes through unchanged)."""
        return (self.median_size > 1 or self.blink_size > 1 or self.open_size > 1
                or self.close_size > 1 or self.min_blob_area > 0 or self.fill_holes)


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


_DURATIONS = ("min_event_length", "pre_roll", "post_roll", "flicker_window", "speck_window",
              "chunk_warmup")


@dataclass(frozen=True)
class ScanConfig:
    """How ``bgsub scan`` finds motion events in recorded video (see :mod:`bgsub.scan.detector`).

    Durations are written as frames (``45``), seconds (``"1.5s"``) or
    timecodes (``"00:00:01.5"``), see :mod:`bgsub.timecode`, and read once,
    into :class:`~bgsub.timecode.Duration` values.

    Parameters
    ----------
    threshold : float
        A frame has motion when this share, in (0, 1], of the watched
        pixels is foreground (after post-processing) ...
    min_area : int
        ... or when its largest foreground blob covers this many pixels of
        the source frame (0: off).
    min_event_length : Duration
        Motion lasting this long without a break starts an event (at least
        one frame).
    pre_roll, post_roll : Duration
        An event includes this much video before its motion and after it; it
        ends after ``post_roll`` without motion.  Events closer than the
        rolls are one event.
    flicker : float
        Pixels whose raw mask (the model's, before post-processing) changed
        in more than this share, in [0, 1], of the recent frames are not
        scored: leaves, water, rain (0: off).
    flicker_window : Duration
        How far back "recent" reaches (the time constant of that share's
        running average; at least one frame).
    speck : float
        A blob of the (post-processed) foreground that covers less than this
        share, in [0, 1), of the watched pixels is a *speck*: leaves in a
        gust, glints on water, the model's noise (0: off).
    speck_share : float
        Pixels where specks were seen in more than this share, in (0, 1], of
        the recent frames are not scored, nor those within 2 pixels of them:
        a tree's crown or a lake, found from where it keeps leaving specks,
        and left out even while it is still.  A person or a car is one large
        blob, not specks, so the places they pass stay scored.
    speck_window : Duration
        How far back "recent" reaches for specks (the time constant of that
        share's running average; at least one frame).
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
    chunk_warmup : Duration
        Video before each chunk that its model learns from first (a
        duration; at least the events' rolls are always taken).
    connect_timeout : float
        Seconds to wait for a cluster's scheduler (``--scheduler``) to
        answer, > 0.
    scene : bool
        Detect scene events (the camera covered, moved, defocused, a change
        of light, rain or snow; see :mod:`bgsub.scan.scene`), in a scan and
        in a live run's events.
    weather_blob : float
        While rain or snow is seen (a weather scene event), a frame has
        motion only with a foreground blob that covers this share, in
        [0, 1), of the watched pixels and has lasted 0.2 s, overlapping
        itself from frame to frame: a person walking in the rain is one
        lasting blob, the streaks and flakes are many small, short-lived
        ones; and the flicker check and the speck map stop learning, as
        rain would make every pixel blink and leave specks everywhere (0:
        off, the usual rules hold).
    min_confidence : float
        Motion events of a lower confidence, in [0, 1], are dropped from a
        scan (no clip, thumbnail or row; counted); 0 keeps every event.
    """

    threshold: float = 0.001
    min_area: int = 0
    min_event_length: Duration = Duration(seconds=0.1)
    pre_roll: Duration = Duration(seconds=1.5)
    post_roll: Duration = Duration(seconds=2.0)
    flicker: float = 0.06
    flicker_window: Duration = Duration(seconds=1.5)
    speck: float = 0.001
    speck_share: float = 0.005
    speck_window: Duration = Duration(seconds=10.0)
    downscale: int = 0
    frame_skip: int = 0
    regions: tuple[tuple[float, ...], ...] = ()
    exclude: tuple[tuple[float, ...], ...] = ()
    region_mask: str = ""
    draw_region: bool = True
    jobs: int = 0
    chunk_minutes: float = 30.0
    chunk_warmup: Duration = Duration(seconds=30.0)
    connect_timeout: float = 10.0
    scene: bool = True
    weather_blob: float = 0.0015
    min_confidence: float = 0.0

    def __post_init__(self) -> None:
        for name in _DURATIONS:  # read once, here: the scan takes Duration values
            value = getattr(self, name)
            try:
                duration = parse_duration(value, f"scan.{name}")
            except DurationError as exc:
                raise ConfigError(str(exc)) from None
            if name in ("min_event_length", "flicker_window", "speck_window") and (
                    duration.count == 0 or duration.seconds == 0):
                raise ConfigError(f"scan.{name} must be at least one frame, got "
                                  f"{duration.setting()!r}")
            object.__setattr__(self, name, duration)
        _check_types(self, "scan")
        _check_range("scan.threshold", self.threshold, 0.0, 1.0, "(0, 1]", hi_open=False)
        if self.min_area < 0:
            raise ConfigError(f"scan.min_area must be >= 0 (0 = off), got {self.min_area}")
        _check_range("scan.flicker", self.flicker, 0.0, 1.0, "[0, 1]", lo_open=False,
                     hi_open=False)
        _check_range("scan.speck", self.speck, 0.0, 1.0, "[0, 1)", lo_open=False)
        _check_range("scan.speck_share", self.speck_share, 0.0, 1.0, "(0, 1]", hi_open=False)
        _check_range("scan.weather_blob", self.weather_blob, 0.0, 1.0, "[0, 1)",
                     lo_open=False)
        _check_range("scan.min_confidence", self.min_confidence, 0.0, 1.0, "[0, 1]",
                     lo_open=False, hi_open=False)
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
    during_scene : str
        What becomes of a motion event that overlaps a scene event (see
        :mod:`bgsub.scan.scene`): ``"keep"`` it as it is; ``"mark"`` it with
        the kinds of the scene events it overlaps (the default: nothing is
        lost, a person walking in the rain stays an event, and whoever reads
        the events decides); ``"drop"`` it from a scan (table, clip,
        thumbnail) when its motion starts within a covered, moved, lighting
        or defocused scene event (the scene change is its "motion"; weather
        never drops one).  A live run marks instead of dropping: its start
        line is out before the scene event is recognised.
    """

    clip_quality: int = 90
    max_commands: int = 4
    command_timeout: float = 30.0
    during_scene: str = "mark"

    def __post_init__(self) -> None:
        _check_types(self, "events")
        if not 50 <= self.clip_quality <= 100:
            raise ConfigError(f"events.clip_quality must be in 50..100, got {self.clip_quality}")
        if not 1 <= self.max_commands <= 64:
            raise ConfigError(f"events.max_commands must be in 1..64, got {self.max_commands}")
        _check_range("events.command_timeout", self.command_timeout, 0.0, 86400.0,
                     "(0, 86400]", hi_open=False)
        if self.during_scene not in ("keep", "mark", "drop"):
            raise ConfigError(f"events.during_scene must be \"keep\", \"mark\" or \"drop\", "
                              f"got {self.during_scene!r}")


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


# What each setting means, one to three lines: the comments of config.toml and the
# documentation's configuration reference are made from these (docs/configref.py), and
# tests/test_docs.py keeps the three in step.  Kept apart from the fields themselves, each
# field's metadata is filled in from this table when the module loads.

def _doc(text: str, unit: str = "", valid: str = "") -> dict[str, str]:
    return {"doc": text, "unit": unit, "range": valid}


_FIELD_DOCS: dict[type, dict[str, dict[str, str]]] = {
    SourceConfig: {
        "width": _doc("Frame width to request from a camera; 0: the camera's", "pixels", ">= 0"),
        "height": _doc("Frame height to request from a camera; 0: the camera's", "pixels",
                       ">= 0"),
        "fps": _doc("Frame rate to request from a camera; 0: the camera's", "frames/s",
                    "0..1000"),
        "open_timeout": _doc("Wait for a stream to connect or deliver a frame", "seconds",
                             "(0, 3600]"),
        "queue_size": _doc("Frames the reader thread may decode ahead of the masker", "frames",
                           ">= 1"),
        "reconnect": _doc("Reopen a camera or stream that stops delivering (files never)"),
        "reconnect_limit": _doc("Attempts after each drop before an error; 0: for ever", "",
                                ">= 0"),
        "reconnect_delay": _doc("Wait before the first attempt, doubled after each failure",
                                "seconds", "(0, 3600]"),
        "reconnect_max_delay": _doc("Longest wait between two attempts", "seconds",
                                    "reconnect_delay..86400"),
    },
    ModelConfig: {
        "k": _doc("Gaussians per pixel", "", "1..8"),
        "learning_rate": _doc("alpha: weight of the newest frame in a background pixel's "
                              "averages", "", "[0, 1]"),
        "match_threshold": _doc("lambda: a value matches within this many standard deviations",
                                "", "> 0"),
        "background_ratio": _doc("T: top-ranked components are background up to this weight",
                                 "", "(0, 1)"),
        "init_weight": _doc("Weight of a component created for an unmatched value", "",
                            "(0, 1)"),
        "init_variance": _doc("Variance of a new component", "grey levels squared",
                              "min_variance..max_variance"),
        "min_variance": _doc("Floor of every variance", "grey levels squared", "(0, 65025]"),
        "max_variance": _doc("Ceiling of every variance", "grey levels squared", "(0, 65025]"),
        "rho": _doc("Rate of the matched component's mean and variance: alpha / w, or the "
                    "paper's", "", '"alpha_over_weight", "gaussian"'),
        "covariance": _doc("One variance per component, or one per channel", "",
                           '"spherical", "diagonal"'),
        "outlier_weight": _doc("epsilon: weight of a uniform outlier term in the likelihood",
                               "", "(0, 1)"),
        "recovery_drop": _doc("A log-likelihood drop this large starts a recovery; 0: off",
                              "nats per pixel", ">= 0"),
        "recovery_rate": _doc("Learning rate during a recovery", "", "(0, 1]"),
        "recovery_frames": _doc("Length of a recovery", "frames", "1..100000"),
        "recovery_cells": _doc("Share of an 8x8 grid's cells that must drop at once", "",
                               "(0, 1]"),
        "init": _doc("How the model starts: the first frame, or a batch EM fit", "",
                     '"first-frame", "em", "random"'),
        "init_frames": _doc("Frames collected for the EM bootstrap", "frames", "2..1000"),
        "em_max_iter": _doc("Most EM iterations of the bootstrap", "", "1..10000"),
        "em_tol": _doc("The bootstrap's EM stops below this gain", "nats per pixel", "> 0"),
        "shadows": _doc("Mark moving cast shadows in colour frames"),
        "shadow_value": _doc("Mask value of a shadow pixel; 0 folds shadows into the "
                             "background", "", "0..254"),
        "shadow_ratio_min": _doc("The darkest shadow: the share of the light it keeps", "",
                                 "(0, 1)"),
        "shadow_threshold": _doc("tau_c: a shadow's colour lies within this many standard "
                                 "deviations", "", "> 0"),
        "shadow_texture": _doc("On grey backgrounds, tell shadows by the floor's texture"),
        "absorb_seconds": _doc("How long a stopped object stays foreground", "seconds",
                               "(0, 1e7]"),
        "fps": _doc("Frame rate for absorb_seconds when the source gives none",
                    "frames/s", "(0, 1000]"),
        "flicker_reference": _doc("Flicker level from which foreground learns at alpha; 0: "
                                  "never", "", "[0, 1]"),
        "flicker_threshold": _doc("Lambda widens by this per unit of flicker above "
                                  "flicker_threshold_from; 0: off", "", "[0, 100]"),
        "flicker_threshold_from": _doc("Flicker level above which lambda widens", "", "[0, 1)"),
        "neighbour_radius": _doc("Neighbour match radius; 0: off", "pixels", "0..3"),
        "neighbour_flicker": _doc("Flicker level from which the neighbour match applies", "",
                                  "[0, 1]"),
        "ghost_frames": _doc("A ghost is released after this many frames; 0: off", "frames",
                             "0..100000"),
        "ghost_rate": _doc("Learning rate of a released ghost's pixels", "", "(0, 1]"),
        "ghost_contrast": _doc("A ghost's outline has less frame contrast than this share",
                               "", "(0, 1)"),
    },
    PostprocessConfig: {
        "median_size": _doc("Median window side; 0 or 1: off", "pixels", "odd, 3..99"),
        "blink_size": _doc("Median window where the mask blinks; 0 or 1: off",
                           "pixels", "odd, 3..99"),
        "blink_level": _doc("Blink rate from which blink_size applies", "", "(0, 1)"),
        "open_size": _doc("Opening (removes specks) element side; 0 or 1: off", "pixels",
                          "odd, 3..99"),
        "close_size": _doc("Closing (bridges gaps) element side; 0 or 1: off", "pixels",
                           "odd, 3..99"),
        "kernel_shape": _doc("Shape of both elements", "", '"ellipse", "rect", "cross"'),
        "min_blob_area": _doc("Smaller foreground blobs are removed; 0: off", "pixels",
                              ">= 0"),
        "fill_holes": _doc("Fill background regions enclosed by foreground"),
        "max_hole_area": _doc("Fill only holes up to this size; 0: any", "pixels", ">= 0"),
    },
    DisplayConfig: {
        "max_width": _doc("The panes are scaled down to fit this width", "pixels", ">= 64"),
        "show_background": _doc("Show the background model as a pane"),
        "show_probability": _doc("Show the foreground probability as a pane (costs time)"),
        "min_blob_area": _doc("Boxes around foreground blobs of at least this size", "pixels",
                              ">= 1"),
        "tint": _doc("Strength of the red tint over foreground pixels", "", "[0, 1]"),
    },
    OutputConfig: {
        "queue_size": _doc("Frames that may wait for the writer thread", "frames", ">= 1"),
        "checkpoint_every": _doc("Save the model (--save-model) this often on a live "
                                 "source; 0: at the end", "seconds", "[0, 1e7]"),
    },
    PipelineConfig: {
        "masker_threads": _doc("Masker threads of the bgsub command; 0: auto", "",
                               "0..256"),
        "io_nice": _doc("Nice steps (Linux) of the reader and writer threads", "", "0..19"),
    },
    ScanConfig: {
        "threshold": _doc("A frame has motion when this share of watched pixels is "
                          "foreground", "", "(0, 1]"),
        "min_area": _doc("A frame also has motion when its largest blob is this large; 0: "
                         "off", "source pixels", ">= 0"),
        "min_event_length": _doc("Motion lasting this long starts an event", "duration",
                                 ">= 1 frame"),
        "pre_roll": _doc("Video an event includes before its motion", "duration", ">= 0"),
        "post_roll": _doc("An event ends after this long without motion", "duration", ">= 0"),
        "flicker": _doc("Pixels whose raw mask flickers more are not scored; 0: off", "", "[0, 1]"),
        "flicker_window": _doc("Time constant of the flicker share", "duration",
                               ">= 1 frame"),
        "speck": _doc("Foreground blobs under this share of watched pixels are specks; 0: "
                      "off", "", "[0, 1)"),
        "speck_share": _doc("Pixels with specks in more than this share of recent frames "
                            "are not scored", "", "(0, 1]"),
        "speck_window": _doc("Time constant of the speck share", "duration", ">= 1 frame"),
        "downscale": _doc("Score frames N times smaller each way; 0: auto, at most 640 wide", "",
                          "0..64"),
        "frame_skip": _doc("Frames skipped after each scored frame", "frames", "0..1000"),
        "regions": _doc("Polygons [x0, y0, x1, y1, ...] to score; none: the whole frame",
                        "source pixels"),
        "exclude": _doc("Polygons not to score", "source pixels"),
        "region_mask": _doc('Image whose white pixels are watched; "": none', "path"),
        "draw_region": _doc("Outline the region on thumbnails"),
        "jobs": _doc("Files scanned at once; 0: auto", "", "0..256"),
        "chunk_minutes": _doc("On a cluster, split longer files into chunks; 0: never",
                              "minutes", ">= 0"),
        "chunk_warmup": _doc("Video each chunk's model learns from first", "duration",
                             ">= 0"),
        "connect_timeout": _doc("Wait for a cluster's scheduler to answer", "seconds", "> 0"),
        "scene": _doc("Detect scene events: covered, moved, defocused, lighting, weather"),
        "weather_blob": _doc("Rain, snow: motion needs a lasting blob this large; 0: off",
                             "share of the watched pixels", "[0, 1)"),
        "min_confidence": _doc("Drop unsure events", "", "[0, 1]"),
    },
    EventsConfig: {
        "clip_quality": _doc("JPEG quality of the pre-roll frames held in memory", "",
                             "50..100"),
        "max_commands": _doc("--on-event commands that may run at once", "", "1..64"),
        "command_timeout": _doc("An --on-event command is stopped after this long",
                                "seconds", "(0, 86400]"),
        "during_scene": _doc("Motion events during scene events: kept, marked, or dropped "
                             "from a scan", "", '"keep", "mark", "drop"'),
    },
}

for _cls, _docs in _FIELD_DOCS.items():
    for _field in fields(_cls):
        if _field.name in _docs:  # a field without one is caught by tests/test_docs.py
            _field.metadata = types.MappingProxyType(_docs[_field.name])
del _cls, _docs, _field


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


def as_mapping(obj: Any) -> Any:
    """A configuration (or a section) as the plain values ``config.toml`` holds.

    Like :func:`dataclasses.asdict`, with each :class:`~bgsub.timecode.Duration`
    written as a setting writes it (``45``, ``"1.5s"``): what files and
    digests record.
    """
    if isinstance(obj, Duration):
        return obj.setting()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: as_mapping(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return type(obj)(as_mapping(v) for v in obj)
    return obj


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
    data = {f.name: {g.name: getattr(getattr(config, f.name), g.name)
                     for g in fields(getattr(config, f.name))} for f in fields(config)}
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
