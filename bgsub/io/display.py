"""Drawing the results and showing them in an OpenCV HighGUI window.

:func:`annotate` draws a frame with its mask (the ``--output`` video and the
window's first pane); :class:`Display` is the HighGUI window;
:class:`Window` is the pipeline's consumer that shows each result in it and
answers the keys.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Callable

import cv2
import numpy as np
from numba import njit

from ..labels import foreground

if TYPE_CHECKING:
    from ..config import DisplayConfig
    from ..model.step import FrameResult

__all__ = ["annotate", "annotated", "drawer", "compose", "display_unavailable_reason",
           "Display", "Window", "DrawFn", "KEY_QUIT", "KEY_PAUSE", "KEY_RESET", "KEY_SNAPSHOT"]

logger = logging.getLogger("bgsub")

#: draw(frame, mask) -> the annotated BGR frame
DrawFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

KEY_QUIT = (ord("q"), 27)  # q, Esc
KEY_PAUSE = ord(" ")
KEY_RESET = ord("r")
KEY_SNAPSHOT = ord("s")


@njit(cache=True, nogil=True, inline="always")
def _blend(out, i, keep, add):
    for c in range(3):
        out[3 * i + c] = (np.int32(out[3 * i + c]) * keep + add[c]) >> 8


@njit(cache=True, nogil=True)
def _tint_foreground(out, fg, fg_words, keep, add):
    """Blend the BGR pixels of *out* (flat) where *fg* (flat) is set toward red.

    Each channel becomes ``(v * keep + add[c]) >> 8``: the blend in 8-bit
    fixed point.  *fg_words* is fg's first whole 8-byte words: a mask is
    mostly background, passed 8 pixels at a time.
    """
    whole = fg_words.shape[0]
    for j in range(whole):
        if fg_words[j] != 0:
            for i in range(8 * j, 8 * j + 8):
                if fg[i]:
                    _blend(out, i, keep, add)
    for i in range(8 * whole, fg.shape[0]):
        if fg[i]:
            _blend(out, i, keep, add)


def annotate(frame: np.ndarray, mask: np.ndarray, tint: float = 0.5,
             min_blob_area: int = 40) -> np.ndarray:
    """The frame with foreground pixels tinted red and boxes around blobs.

    A blob gets a box when the area inside its outline is at least
    *min_blob_area* pixels.  The tint is laid over the foreground pixels
    only (a mask is mostly background); OpenCV finds the outlines.
    """
    out = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    fg = foreground(mask)  # shadows are not foreground
    if tint > 0:
        keep = round(256 * (1.0 - tint))
        red = np.array([0, 0, 255 * (256 - keep)], np.int32) + 128  # + 128: rounds
        flat = fg.reshape(-1)
        _tint_foreground(out.reshape(-1), flat, flat[:flat.size // 8 * 8].view(np.uint64),
                         np.int32(keep), red)
    contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for contour in contours:
        if cv2.contourArea(contour) >= min_blob_area:
            x, y, w, h = cv2.boundingRect(contour)
            # one pixel outside the blob, so the tint of its edge stays visible
            cv2.rectangle(out, (x - 1, y - 1), (x + w, y + h), (0, 255, 0), 1)
    return out


def drawer(config: DisplayConfig) -> DrawFn:
    """:func:`annotate` with the tint and box size of a display configuration."""
    return functools.partial(annotate, tint=config.tint, min_blob_area=config.min_blob_area)


def annotated(result: FrameResult, draw: DrawFn) -> np.ndarray:
    """The result's annotated frame, drawn with *draw* by the first consumer that needs it."""
    if result.annotated is None:
        result.annotated = draw(result.frame, result.mask)
    return result.annotated


_FONT = cv2.FONT_HERSHEY_SIMPLEX
_STRIP = 22  # pixels: the height of a text strip, on screen
_TEXT_SCALE = 0.5  # OpenCV's scale of the text in a strip: 11-12 pixel letters


def compose(rows: list[list[np.ndarray]], max_width: int, texts: list[str] | None = None,
            titles: list[str] | None = None) -> np.ndarray:
    """Rows of panes as one image: each row's panes side by side, labelled, with a status line.

    Each row (one source) is scaled to *max_width* (never up); then a strip
    above it carries its status text (*texts*), and a strip above each pane
    its title (*titles*: frame, mask, ...).  The text is drawn after the
    scaling, in strips of its own: it keeps its size and stays legible at
    any window size, and never covers a pane or the boxes drawn in it.  Grey
    panes are shown as BGR; panes of one row share the first pane's height.
    """
    texts = texts or [""] * len(rows)
    out = []
    for panes, text in zip(rows, texts):
        h = panes[0].shape[0]
        bgr = [p if p.ndim == 3 else cv2.cvtColor(p, cv2.COLOR_GRAY2BGR) for p in panes]
        bgr = [p if p.shape[0] == h else cv2.resize(p, (round(p.shape[1] * h / p.shape[0]), h),
                                                     interpolation=cv2.INTER_AREA) for p in bgr]
        widths = [p.shape[1] for p in bgr]
        row = np.hstack(bgr)
        scale = min(1.0, max_width / row.shape[1])
        if scale < 1.0:
            row = cv2.resize(row, (max_width, max(1, round(row.shape[0] * scale))),
                             interpolation=cv2.INTER_AREA)
        parts = []
        if text:
            parts.append(_strip(row.shape[1], [(0, text)]))
        if titles:
            starts = np.cumsum([0, *widths[:-1]]) * scale
            parts.append(_strip(row.shape[1], list(zip(starts.round().astype(int), titles))))
        parts.append(row)
        out.append(np.vstack(parts))
    width = max(image.shape[1] for image in out)
    return np.vstack([np.pad(image, ((0, 0), (0, width - image.shape[1]), (0, 0)))
                      for image in out])


def _strip(width: int, labels: list[tuple[int, str]]) -> np.ndarray:
    """A dark strip *width* pixels wide with each label at its x (cut at the next one)."""
    strip = np.full((_STRIP, width, 3), 32, np.uint8)
    for i, (x, label) in enumerate(labels):
        end = labels[i + 1][0] if i + 1 < len(labels) else width
        room = end - x - 10
        while label and cv2.getTextSize(label, _FONT, _TEXT_SCALE, 1)[0][0] > room:
            label = label[:-3] + ".." if len(label) > 3 else ""  # cut what does not fit
        cv2.putText(strip, label, (x + 5, 16), _FONT, _TEXT_SCALE, (235, 235, 235), 1,
                    cv2.LINE_AA)
    return strip


def display_unavailable_reason() -> str | None:
    """Why no window can be opened here, or None when one can be tried.

    On Linux, opencv-python's HighGUI is Qt on X11 (XWayland under Wayland),
    and Qt aborts the whole process when it cannot reach the X server: no
    exception to catch, no summary, buffered output lost.  So the X server
    named by DISPLAY is asked first, the way Qt will (libxcb).  OpenCV builds
    with another toolkit (GTK, which also speaks Wayland) fail with a
    catchable error instead, and are left to try.
    """
    if not sys.platform.startswith("linux"):
        return None
    display = os.environ.get("DISPLAY")
    qt_xcb = _highgui_is_qt_xcb()
    if not display:
        if os.environ.get("WAYLAND_DISPLAY") and not qt_xcb:
            return None
        return "no display available (DISPLAY is not set)"
    error = _x_connection_error(display) if qt_xcb else None
    return None if error is None else f"no display available ({error})"


def _highgui_is_qt_xcb() -> bool:
    """Whether this OpenCV's windows are Qt's X11 (xcb) ones, as in opencv-python's wheels."""
    platforms = os.path.join(os.path.dirname(cv2.__file__), "qt", "plugins", "platforms")
    return os.path.isdir(platforms) and any(name.startswith("libqxcb")
                                            for name in os.listdir(platforms))


X_PROBE_TIMEOUT = 5.0  # seconds an X server has to answer before it counts as unreachable


def _x_connection_error(display: str) -> str | None:
    """Why the X server *display* cannot be reached, or None when it can.

    libxcb's connect has no timeout: a server (or a port) that accepts the
    connection and never answers would block it for ever, deaf to signals.
    So it runs in a helper thread, and a server that has not answered within
    :data:`X_PROBE_TIMEOUT` seconds is unreachable (the helper is left to
    itself).
    """
    box: dict[str, str | None] = {}
    helper = threading.Thread(target=lambda: box.setdefault("error", _xcb_connect(display)),
                              name="bgsub-x-probe", daemon=True)
    helper.start()
    helper.join(X_PROBE_TIMEOUT)
    if helper.is_alive():
        return f"the X server DISPLAY={display} does not answer within {X_PROBE_TIMEOUT:g} s"
    return box.get("error")


def _xcb_connect(display: str) -> str | None:
    """Connect to *display* with libxcb, as Qt will; why it failed, or None."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return "libxcb.so.1 is missing, which OpenCV's Qt windows need"
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)
    try:
        if xcb.xcb_connection_has_error(connection):
            return f"cannot connect to the X server DISPLAY={display}"
    finally:
        xcb.xcb_disconnect(connection)
    return None


class Display:
    """One window showing composed panes (see :func:`compose`); keys come from
    HighGUI or from a test.

    Parameters
    ----------
    key_source : callable, optional
        Called as ``key_source(delay_ms)`` instead of ``cv2.waitKey`` and must
        return a key code or -1; tests drive the window with it.
    title : str
        Window title.
    """

    def __init__(self, key_source: Callable[[int], int] | None = None,
                 title: str = "bgsub") -> None:
        self.title = title
        self._key_source = key_source
        self._open = False
        self.last_image: np.ndarray | None = None

    def open(self) -> str | None:
        """Open the window; return why it cannot be opened, or None on success."""
        reason = display_unavailable_reason()
        if reason is not None:
            return reason
        # opencv-python's Qt ships no fonts and complains on every window unless
        # it is pointed at the system's
        for fonts in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts"):
            if os.path.isdir(fonts):
                os.environ.setdefault("QT_QPA_FONTDIR", fonts)
                break
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE)
        except cv2.error as exc:
            return f"no display available ({str(exc).strip().splitlines()[-1]})"
        self._open = True
        return None

    def show(self, image: np.ndarray, delay_ms: int = 1) -> int:
        """Show *image* and return the key pressed (-1 for none)."""
        self.last_image = image
        cv2.imshow(self.title, image)
        key = self._key_source(delay_ms) if self._key_source else cv2.waitKey(delay_ms)
        return key & 0xFF if key >= 0 else -1

    def poll(self, delay_ms: int = 50) -> int:
        """Wait for a key without a new image (while paused)."""
        key = self._key_source(delay_ms) if self._key_source else cv2.waitKey(delay_ms)
        return key & 0xFF if key >= 0 else -1

    def close(self) -> None:
        if self._open:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self._open = False


class Window:
    """The run's window: a row per source (the drawn frame, the mask, the background, the
    probability), labelled, with each source's status line; it answers the keys.

    The pipelines run in threads of their own; each hands its results to its
    :meth:`feed` (a consumer), which waits until the window has shown the
    result, so every frame is shown once, as the pipeline makes it.
    :meth:`run` is the window's loop, in the main thread (HighGUI's): it shows
    what the feeds bring and answers the keys: q or Esc set *stop*, r calls
    *on_reset*, s saves the shown image as ``bgsub-snapshot-NNNNNN.png`` in
    the current folder (N the first source's frame), space pauses every
    source (keys keep working while paused; the readers' queues fill and
    wait).

    Parameters
    ----------
    display : Display
        The open window.
    config : DisplayConfig
        Panes and size.
    draw : callable
        How a frame is drawn with its mask (:func:`drawer`).
    stop : threading.Event
        Set to stop the run (q, or a signal from outside).
    on_reset : callable
        Called for r: start every model afresh.
    names : list of str
        The sources, one row each.
    """

    def __init__(self, display: Display, config: DisplayConfig, draw: DrawFn,
                 stop: threading.Event, on_reset: Callable[[], None],
                 names: list[str] | None = None) -> None:
        self.display = display
        self.config = config
        self.draw = draw
        self.stop = stop
        self.on_reset = on_reset
        self.names = names or [""]
        self.snapshots: list[str] = []
        self.quit_by_key = False
        self.paused = False
        self._cond = threading.Condition()
        self._latest: list[FrameResult | None] = [None] * len(self.names)
        self._pending: set[int] = set()
        self._shown = [0] * len(self.names)
        self._start: list[float | None] = [None] * len(self.names)

    @property
    def needs(self) -> frozenset[str]:
        return frozenset(name for name, on in (("background", self.config.show_background),
                                               ("probability", self.config.show_probability))
                         if on)

    def feed(self, row: int = 0) -> "_Feed":
        """The consumer of source *row*: hands each result to the window and waits for it."""
        return _Feed(self, row)

    def _post(self, row: int, result: FrameResult) -> None:
        annotated(result, self.draw)  # drawn in the pipeline's thread, shared with the sinks
        with self._cond:
            self._latest[row] = result
            self._pending.add(row)
            self._cond.notify_all()
            while row in self._pending and not self.stop.is_set():
                self._cond.wait(0.1)

    def run(self, running: Callable[[], bool]) -> None:
        """Show results and answer keys while *running()* and not stopped (main thread)."""
        while running() and not self.stop.is_set():
            with self._cond:
                if not self._pending:
                    self._cond.wait(0.05)
                fresh = bool(self._pending)
            if fresh and not self.paused:
                key = self.show()
            else:  # waiting for a frame (10 ms steps), or paused (50 ms)
                key = self.display.poll(50 if self.paused else 10)
            self._key(key)
            if not self.paused:
                with self._cond:
                    self._pending.clear()
                    self._cond.notify_all()
        with self._cond:  # nobody waits for the window any more
            self._pending.clear()
            self._cond.notify_all()

    def show(self) -> int:
        """Compose every source's latest result and show it; the key pressed."""
        rows, texts = [], []
        now = time.perf_counter()
        titles = ["frame", "mask"] + (["background"] if self.config.show_background else []) + (
            ["probability"] if self.config.show_probability else [])
        for i, result in enumerate(self._latest):
            if result is None:
                continue
            if self._start[i] is None:
                self._start[i] = now
            elapsed = now - self._start[i]
            fps = self._shown[i] / elapsed if elapsed > 0 else 0.0
            self._shown[i] += 1
            name = f"{self.names[i]}  " if self.names[i] else ""
            texts.append(f"{name}frame {result.index}  {fps:.1f} fps  log-lik "
                         f"{result.log_likelihood:.2f}"
                         + ("  recovering" if result.recovering else ""))
            panes = [result.annotated, result.mask]
            if self.config.show_background:
                panes.append(result.background)
            if self.config.show_probability:
                panes.append(np.rint(result.probability * 255.0).astype(np.uint8))
            rows.append(panes)
        if not rows:
            return self.display.poll(10)
        return self.display.show(compose(rows, self.config.max_width, texts, titles))

    def _key(self, key: int) -> None:
        if key in KEY_QUIT:
            self.quit_by_key = True
            self.stop.set()
        elif key == KEY_RESET:
            self.on_reset()
        elif key == KEY_SNAPSHOT and self.display.last_image is not None:
            first = next((r.index for r in self._latest if r is not None), 0)
            self._snapshot(first)
        elif key == KEY_PAUSE:
            self.paused = not self.paused

    def _snapshot(self, index: int) -> None:
        name = f"bgsub-snapshot-{index:06d}.png"
        if not cv2.imwrite(name, self.display.last_image):
            logger.warning("cannot write the snapshot %s in the current folder", name)
        elif name not in self.snapshots:
            self.snapshots.append(name)

    def close(self) -> None:
        with self._cond:
            self._pending.clear()
            self._cond.notify_all()
        self.display.close()


class _Feed:
    """One source's consumer of a :class:`Window`."""

    def __init__(self, window: Window, row: int) -> None:
        self.window = window
        self.row = row

    @property
    def needs(self) -> frozenset[str]:
        return self.window.needs

    def write(self, result: FrameResult) -> None:
        self.window._post(self.row, result)

    def close(self) -> None:
        pass
