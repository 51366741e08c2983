"""Synthetic scenes with exact ground truth: the bundled sample and test clips.

A textured background under sensor noise and a slow illumination drift, a
"waving" region whose pixels hop between a few values (leaves, water), and
moving objects, one of which stops for a while.  Everything is drawn from a
seeded generator, so a scene and its ground truth are reproduced exactly.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

import cv2
import numpy as np

__all__ = ["SceneSpec", "SAMPLE", "render", "write_video", "EventSpec", "render_events",
           "write_events_video", "MjpegServer"]


@dataclass(frozen=True)
class SceneSpec:
    """Parameters of a synthetic scene."""

    width: int = 320
    height: int = 240
    frames: int = 200
    fps: float = 25.0
    seed: int = 2024
    noise: float = 3.0  # sensor noise, grey levels
    drift: float = 0.06  # illumination gain swings by +- this much
    stop_from: int = 70  # the second object stops for frames [stop_from, stop_to)
    stop_to: int = 130


SAMPLE = SceneSpec()


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    coarse = rng.integers(40, 215, (h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8)
    smooth = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    fine = rng.normal(0, 12, (h, w, 3)).astype(np.float32)
    return np.clip(smooth + cv2.GaussianBlur(fine, (0, 0), 1.0), 0, 255)


def _objects(spec: SceneSpec) -> list[dict]:
    w, h = spec.width, spec.height
    return [  # colour (BGR), size, path: start and velocity in pixels per frame
        {"colour": (40, 40, 220), "size": (w // 8, h // 8), "start": (-w // 8, h * 0.60),
         "velocity": (w / 90, 0.0)},
        {"colour": (220, 200, 40), "size": (w // 7, h // 9), "start": (w, h * 0.25),
         "velocity": (-w / 110, 0.0), "stop": True},
        {"colour": (30, 160, 30), "size": (w // 12, h // 6), "start": (w * 0.15, h),
         "velocity": (w / 400, -h / 70)},
    ]


def _position(obj: dict, t: int, spec: SceneSpec) -> tuple[float, float]:
    moving_t = t
    if obj.get("stop"):
        # frozen during the stop, then carries on from where it stood
        moving_t = min(t, spec.stop_from) + max(0, t - spec.stop_to)
    return (obj["start"][0] + obj["velocity"][0] * moving_t,
            obj["start"][1] + obj["velocity"][1] * moving_t)


def render(spec: SceneSpec = SAMPLE) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(frame, ground_truth)`` pairs: uint8 BGR frames, masks of 0 and 255."""
    rng = np.random.default_rng(spec.seed)
    h, w = spec.height, spec.width
    base = _texture(rng, h, w)
    # the waving region: vertical stripes swaying sideways, so each pixel takes
    # a few values in turn (a multimodal background)
    wave = np.zeros((h, w), bool)
    wave[h // 12:h // 12 + h // 4, w * 2 // 3:w * 2 // 3 + w // 4] = True
    stripes = np.where((np.arange(w + 16) // 4) % 2 == 0, 70.0, 190.0).astype(np.float32)
    objects = _objects(spec)
    for t in range(spec.frames):
        frame = base.copy()
        shift = int(round(4 * np.sin(2 * np.pi * t / 9.0))) + 8
        sway = stripes[shift:shift + w][None, :].repeat(h, 0)
        frame[wave] = np.stack([sway, sway * 0.8 + 20, sway * 0.6 + 30], -1)[wave]
        gain = 1.0 + spec.drift * np.sin(2 * np.pi * t / spec.frames)
        frame *= gain
        gt = np.zeros((h, w), np.uint8)
        for obj in objects:
            x, y = _position(obj, t, spec)
            x0, y0 = int(round(x)), int(round(y))
            x1, y1 = x0 + obj["size"][0], y0 + obj["size"][1]
            xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if xa < xb and ya < yb:
                frame[ya:yb, xa:xb] = obj["colour"]
                gt[ya:yb, xa:xb] = 255
        frame += rng.normal(0, spec.noise, frame.shape).astype(np.float32)
        yield np.clip(np.rint(frame), 0, 255).astype(np.uint8), gt


def write_video(path: str, spec: SceneSpec = SAMPLE) -> int:
    """Write the scene's frames to *path* (codec from the extension); return the count."""
    from ..files import CODECS  # one table of codecs

    suffix = path[path.rfind("."):].lower()
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*CODECS[suffix]), spec.fps,
                             (spec.width, spec.height))
    if not writer.isOpened():
        raise OSError(f"cannot open a video writer for {path}")
    count = 0
    try:
        for frame, _ in render(spec):
            writer.write(frame)
            count += 1
    finally:
        writer.release()
    return count


@dataclass(frozen=True)
class EventSpec:
    """A still scene that something crosses now and then: a recording with known events.

    ``crossings`` are ``(first, last)`` frames (inclusive) during which a
    box of ``size`` pixels crosses the frame from left to right; between
    them nothing moves but the sensor noise and, with ``waving`` > 0, the
    foliage of a tree filling the top ``waving`` rows, which sways in gusts
    by up to ``sway`` pixels (each frame a fresh, smooth random displacement:
    leaves do not move in step).  The box crosses at mid height of the rows
    below the foliage.
    """

    width: int = 160
    height: int = 120
    frames: int = 120
    fps: float = 30.0
    seed: int = 7
    noise: float = 2.0
    crossings: tuple[tuple[int, int], ...] = ((40, 69),)
    size: tuple[int, int] = (18, 24)
    waving: int = 0
    sway: float = 3.0


def _displacement(rng: np.random.Generator, h: int, w: int, amplitude: float) -> np.ndarray:
    """A smooth random field of offsets (pixels), fresh for every frame."""
    coarse = rng.normal(0, amplitude, (h // 16 + 1, w // 16 + 1)).astype(np.float32)
    return cv2.resize(cv2.GaussianBlur(coarse, (0, 0), 0.8), (w, h),
                      interpolation=cv2.INTER_CUBIC)


def render_events(spec: EventSpec = EventSpec()) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(frame, ground_truth)`` of an :class:`EventSpec` scene (BGR, 0/255 masks)."""
    rng = np.random.default_rng(spec.seed)
    h, w = spec.height, spec.width
    base = _texture(rng, h, w)
    bw, bh = spec.size
    y0 = spec.waving + (h - spec.waving - bh) // 2
    if spec.waving:
        grain = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 1.2)
        grain = (grain - grain.mean()) / grain.std()
        leaves = np.stack([40 + 25 * grain, 110 + 45 * grain, 50 + 25 * grain], -1)
        ys, xs = np.mgrid[0:spec.waving, 0:w].astype(np.float32)
        phase = rng.uniform(0, 2 * np.pi)
    for t in range(spec.frames):
        frame = base.copy()
        if spec.waving:
            gust = spec.sway * (0.6 + 0.4 * np.sin(2 * np.pi * t / 97 + phase))
            dx = _displacement(rng, spec.waving, w, gust)
            dy = _displacement(rng, spec.waving, w, gust)
            frame[:spec.waving] = cv2.remap(leaves, xs + dx, ys + dy, cv2.INTER_LINEAR,
                                            borderMode=cv2.BORDER_REFLECT)
        gt = np.zeros((h, w), np.uint8)
        for first, last in spec.crossings:
            if first <= t <= last:
                # from just outside the left edge to just outside the right one
                x = round(-bw + (w + bw) * (t - first + 0.5) / (last - first + 1))
                xa, xb = max(x, 0), min(x + bw, w)
                if xa < xb:
                    frame[y0:y0 + bh, xa:xb] = (30, 40, 200)
                    gt[y0:y0 + bh, xa:xb] = 255
        frame += rng.normal(0, spec.noise, frame.shape).astype(np.float32)
        yield np.clip(np.rint(frame), 0, 255).astype(np.uint8), gt


def write_events_video(path: str, spec: EventSpec = EventSpec(), gop: int = 30,
                       frames: range | None = None, crf: int = 18) -> int:
    """Write an :class:`EventSpec` scene as H.264 (PyAV), a key frame every *gop* frames.

    The container follows the extension (``.mp4``, ``.mkv``, ...).  *frames*
    picks a stretch of the scene (default: all of it); ``crf=0`` is lossless
    (frames decode the same whatever file they are in).  Returns the frames
    written.
    """
    import av  # only the scan's tests and benchmarks need it

    count = 0
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=round(spec.fps))
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0",
                          "crf": str(crf), "preset": "veryfast"}
        for t, (frame, _) in enumerate(render_events(spec)):
            if frames is not None and t not in frames:
                continue
            image = av.VideoFrame.from_ndarray(frame, format="bgr24")
            for packet in stream.encode(image):
                out.mux(packet)
            count += 1
        for packet in stream.encode():
            out.mux(packet)
    return count


class MjpegServer:
    """A live camera on 127.0.0.1: an HTTP MJPEG stream of the given frames, looped.

    For tests and benchmarks (nothing reaches another address).  Each
    connection gets ``batches[i]`` frames (the i-th connection; the last
    entry repeats, None means for ever), paced at *fps* (None: as fast as the
    client reads), and is then closed (a dropped stream) or, with
    ``stall=True``, held open and silent.  After the last batch, the server
    stops listening when ``batches`` ends with a number.  ``sent`` holds the
    send time of every frame.

    Parameters
    ----------
    frames : iterable of ndarray or bytes
        BGR frames (encoded once, as JPEG) or JPEG bytes.
    fps : float, optional
    batches : list of int or None
    stall : bool
    """

    def __init__(self, frames: Iterable, fps: float | None = None,
                 batches: list[int | None] | None = None, stall: bool = False) -> None:
        self.jpegs = [f if isinstance(f, bytes) else
                      cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
                      for f in frames]
        self.fps = fps
        self.batches = list(batches) if batches is not None else [None]
        self.stall = stall
        self.sent: list[float] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        threading.Thread(target=self._serve, name="mjpeg-server", daemon=True).start()

    def _serve(self) -> None:
        count = 0
        for number, batch in enumerate(self._batches()):
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; "
                             b"boundary=frame\r\n\r\n")
                start, i = time.monotonic(), 0
                while batch is None or i < batch:
                    if self.fps:
                        wait = start + i / self.fps - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                    jpg = self.jpegs[count % len(self.jpegs)]
                    conn.sendall(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                 b"%d\r\n\r\n" % len(jpg) + jpg + b"\r\n")
                    self.sent.append(time.monotonic())
                    i += 1
                    count += 1
                if self.stall:
                    time.sleep(3600)
            except OSError:
                pass
            finally:
                conn.close()
        self.close()

    def _batches(self) -> Iterator[int | None]:
        yield from self.batches[:-1]
        last = self.batches[-1]
        if last is None:
            while True:
                yield None
        yield last

    def close(self) -> None:
        """Stop listening."""
        self._sock.close()
