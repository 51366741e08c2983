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

from .labels import foreground

if TYPE_CHECKING:
    from .config import DisplayConfig
    from .step import FrameResult

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


def compose(panes: list[np.ndarray], max_width: int, text: str = "") -> np.ndarray:
    """Panes side by side (grey ones as BGR), scaled down to max_width, with text."""
    bgr = [p if p.ndim == 3 else cv2.cvtColor(p, cv2.COLOR_GRAY2BGR) for p in panes]
    row = np.hstack(bgr)
    if row.shape[1] > max_width:
        scale = max_width / row.shape[1]
        row = cv2.resize(row, (max_width, max(1, round(row.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    if text:
        cv2.putText(row, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(row, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return row


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
    """The pipeline's window: the drawn frame, the mask, the background and the probability.

    A consumer (``write(result)`` per frame, ``close()``) that shows each
    result in *display* with the frame number, the rate and the
    log-likelihood, and answers the keys: q or Esc set *stop*, r calls
    *on_reset*, s saves the shown image as ``bgsub-snapshot-NNNNNN.png`` in
    the current folder, space pauses (keys keep working while paused; the
    reader's queue fills and waits).  Put it before the file sinks: the frame
    it draws is shared with them.
    """

    def __init__(self, display: Display, config: DisplayConfig, draw: DrawFn,
                 stop: threading.Event, on_reset: Callable[[], None]) -> None:
        self.display = display
        self.config = config
        self.draw = draw
        self.stop = stop
        self.on_reset = on_reset
        self.snapshots: list[str] = []
        self.quit_by_key = False
        self._start: float | None = None
        self._shown = 0

    @property
    def needs(self) -> frozenset[str]:
        return frozenset(name for name, on in (("background", self.config.show_background),
                                               ("probability", self.config.show_probability))
                         if on)

    def write(self, result: FrameResult) -> None:
        now = time.perf_counter()
        if self._start is None:
            self._start = now
        elapsed = now - self._start
        fps = self._shown / elapsed if elapsed > 0 else 0.0
        self._shown += 1
        text = (f"frame {result.index}  {fps:.1f} fps  log-lik {result.log_likelihood:.2f}"
                + ("  recovering" if result.recovering else ""))
        panes = [annotated(result, self.draw), result.mask]
        if self.config.show_background:
            panes.append(result.background)
        if self.config.show_probability:
            panes.append(np.rint(result.probability * 255.0).astype(np.uint8))
        key = self.display.show(compose(panes, self.config.max_width, text))
        paused = False
        while True:
            if key in KEY_QUIT:
                self.quit_by_key = True
                self.stop.set()
                return
            if key == KEY_RESET:
                self.on_reset()
            elif key == KEY_SNAPSHOT and self.display.last_image is not None:
                self._snapshot(result.index)
            elif key == KEY_PAUSE:
                paused = not paused
            if not paused or self.stop.is_set():  # a signal ends a pause too
                return
            key = self.display.poll(50)

    def _snapshot(self, index: int) -> None:
        name = f"bgsub-snapshot-{index:06d}.png"
        if not cv2.imwrite(name, self.display.last_image):
            logger.warning("cannot write the snapshot %s in the current folder", name)
        elif name not in self.snapshots:
            self.snapshots.append(name)

    def close(self) -> None:
        self.display.close()
