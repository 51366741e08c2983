"""``--serve``: the run in a browser, for machines without a display.

:class:`LiveServer` is an HTTP server (aiohttp, the optional extra ``web``) in
a thread of its own with its own event loop; :meth:`LiveServer.feed` gives
each source's pipeline a consumer.  The frame loop never waits for a viewer:

* a feed keeps only the latest frame of its source, and hands it to an
  encoder thread at most ``max_fps`` times a second, and only while someone
  watches (a page open, a stream read in the last few seconds): the JPEG
  encoding is the cost, and nobody pays it for nobody;
* viewers fetch the latest JPEG (``/frame/N/PANE.jpg``, a long poll with
  ``?after=SEQ``) or read an MJPEG stream (``/stream/N/PANE.mjpg``); a slow
  or stalled viewer gets fewer frames, never a queue that the loop fills;
* status lines and event records (:meth:`LiveServer.event`, fed by
  :class:`~bgsub.live.events.LiveEvents`) reach the page by Server-Sent
  Events (``/events``), the last :data:`HISTORY` of them replayed on connect.

Pause and reset (``POST /source/N/pause``, ``/source/N/reset``) set flags that
the source's feed reads in the pipeline's thread, as the window's keys do.

Security: a token, when set, is asked of every request, by ``?token=`` once
(it then lives in an HttpOnly SameSite=Strict cookie) or by that cookie; a
wrong or missing one gets 403.  Write actions need a custom header (a page
of another site cannot send one without the CORS preflight this server never
answers), and change no file.  Every outside string reaches the page as
text, never as markup; source names are redacted (no password).
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import cv2
import numpy as np

from ..io.display import DrawFn
from ..io.sources import redact
from ..model.step import FrameResult

__all__ = ["LiveServer", "ServeError", "parse_address", "needs_token", "new_token", "PANES",
           "HISTORY"]

logger = logging.getLogger("bgsub")

PANES = ("frame", "mask")
HISTORY = 200  # records replayed to a page that connects
WATCH_SECONDS = 3.0  # a frame fetched this recently means someone watches
_STREAM_BUFFER = 1 << 16  # bytes of kernel send buffer for an MJPEG stream (doubled by Linux)
COOKIE = "bgsub_token"
HEADER = "X-Bgsub"  # asked of write actions: a cross-site form or image cannot send it


class ServeError(Exception):
    """A ``--serve`` that cannot be: a bad address, a port in use, aiohttp missing."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) as ``(host, port)``; raises :class:`ServeError`."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif "[" in host or "]" in host:  # an IPv6 address's brackets, unpaired: no host
        host = ""
    if "@" in host:  # user:password@host: not echoed (no password in any output)
        raise ServeError(f"--serve ***@{text.rpartition('@')[2]}: expected HOST:PORT, with no "
                         "user or password (the page asks for --serve-token instead)")
    # ASCII digits only: "²" is a digit to str.isdigit, not to int()
    if not sep or not host or not (port.isascii() and port.isdigit()) \
            or not 0 <= int(port) <= 65535:
        raise ServeError(f"--serve {text}: expected HOST:PORT with a port from 0 to 65535 "
                         f"(e.g. --serve 127.0.0.1:8080)")
    return host, int(port)


def needs_token(host: str) -> bool:
    """Whether binding *host* needs a token: any address but the loopback ones."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return True


def _host_of(host: str) -> str:
    """The host of a ``Host`` header, without its port (``[::1]:8080`` -> ``::1``)."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


class _Source:
    """What the server knows of one source: its latest JPEGs, status and flags."""

    def __init__(self, n: int, name: str, clips: Path | None) -> None:
        self.n = n
        self.name = redact(name)
        self.clips = clips
        self.clip_names: set[str] = set()
        self.jpegs: dict[str, bytes] = {}
        self.seq = 0
        self.status: dict[str, Any] = {"source": n, "state": "starting"}
        self.paused = False
        self.reset_asked = False
        self.resume = threading.Event()


class LiveServer:
    """The ``--serve`` server: start it, give each source a :meth:`feed`, close it at the end.

    Parameters
    ----------
    host, port : str, int
        Where to listen (port 0: any free one; :attr:`port` says which).
    token : str, optional
        Asked of every request when set.
    draw : callable
        How a frame is drawn with its mask (:func:`bgsub.io.display.drawer`).
    stop : threading.Event, optional
        The run's stop: a paused feed gives way to it.
    max_fps : float
        The most frames a second encoded per source.
    quality : int
        JPEG quality.
    """

    def __init__(self, host: str, port: int, token: str | None, draw: DrawFn,
                 stop: threading.Event | None = None, max_fps: float = 10.0,
                 quality: int = 75) -> None:
        try:
            import aiohttp  # noqa: F401  (the optional extra)
        except ImportError:
            raise ServeError("--serve needs the optional extra web (pip install "
                             "'bgsub[web]', which brings aiohttp)") from None
        self.host, self.port, self.token = host, port, token
        self.draw = draw
        self.stop = stop or threading.Event()
        self.max_fps = max_fps
        self.quality = quality
        self.sources: list[_Source] = []
        self.ended = False
        self._history: collections.deque = collections.deque(maxlen=HISTORY)
        self._next_id = 0
        self._ready = 0  # MJPEG streams waiting for a newer frame (not stalled in a write)
        self._last_view = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._frame_changed: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._pending: dict[int, tuple] = {}  # source -> the frame waiting for the encoder
        self._encode = threading.Condition()
        self._encoder: threading.Thread | None = None
        self._closing = False

    # -- the server's thread -------------------------------------------------------------

    def start(self) -> None:
        """Listen (raises :class:`ServeError` when it cannot) and serve in a thread."""
        ready = threading.Event()
        box: dict[str, BaseException] = {}

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                runner = loop.run_until_complete(self._listen())
            except BaseException as exc:
                box["error"] = exc
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_until_complete(self._wind_down())
            finally:
                loop.run_until_complete(runner.cleanup())
                loop.close()

        self._thread = threading.Thread(target=serve, name="bgsub-serve", daemon=True)
        self._thread.start()
        ready.wait()
        if "error" in box:
            exc = box["error"]
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ServeError(f"--serve {self.address}: cannot listen there ({reason})")
        self._encoder = threading.Thread(target=self._encode_loop, name="bgsub-serve-encode",
                                         daemon=True)
        self._encoder.start()

    async def _wind_down(self) -> None:
        await self._stopped.wait()
        self._changed.set()  # the streams see the stop and end
        self._frame_changed.set()
        await asyncio.sleep(0.3)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The page's address (without the token)."""
        return f"http://{self.address}/"

    async def _listen(self):
        from aiohttp import web

        self._changed = asyncio.Event()
        self._frame_changed = asyncio.Event()
        self._stopped = asyncio.Event()
        app = web.Application(middlewares=[self._guard])
        app.add_routes([web.get("/", self._page), web.get("/events", self._events),
                        web.get("/frame/{n}/{pane}.jpg", self._frame),
                        web.get("/stream/{n}/{pane}.mjpg", self._stream),
                        web.get("/clips/{n}/{name}", self._clip),
                        web.post("/source/{n}/{action}", self._action)])
        # no access log: an address may hold the token; a stalled viewer delays the end by
        # half a second at most
        try:
            runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                   shutdown_timeout=0.5)
            site_options = {}
        except TypeError:  # aiohttp before 3.10 sets it on the site
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            site_options = {"shutdown_timeout": 0.5}
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, **site_options)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 (port 0)
        return runner

    def close(self, linger: float = 0.0) -> None:
        """Tell the pages the run ended, serve *linger* seconds more (until stopped), stop."""
        if self._thread is None:
            return
        self.mark_ended()
        start = time.monotonic()
        # half a second at least, for the pages to hear of the end; a signal cuts a linger
        while time.monotonic() - start < max(0.5, linger):
            if self.stop.is_set() and time.monotonic() - start > 0.5:
                break
            time.sleep(0.05)
        with self._encode:
            self._closing = True
            self._encode.notify_all()
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stopped.set)
            except RuntimeError:
                pass
        self._thread.join(10)
        self._thread = None

    # -- the pipeline's side -------------------------------------------------------------

    def add_source(self, name: str, clips: Path | None = None) -> int:
        """Register a source (its redacted name, its clips folder); its number."""
        self.sources.append(_Source(len(self.sources), name, clips))
        # a page opened before this source was: it loads again, with it
        self._publish({"kind": "sources", "count": len(self.sources)})
        return len(self.sources) - 1

    def feed(self, n: int, on_reset: Callable[[], None],
             drops: Callable[[], int] = lambda: 0) -> "_Feed":
        """The consumer of source *n*; *on_reset* starts its model afresh (in its thread)."""
        return _Feed(self, self.sources[n], on_reset, drops)

    def watching(self) -> bool:
        """Whether someone watches: a stream ready for a newer frame, or a frame fetched
        lately.  A stream whose reader stalls (its socket full) waits in its write and
        makes nothing encoded; a page fetches its frames."""
        return self._ready > 0 or time.monotonic() - self._last_view < WATCH_SECONDS

    def event(self, n: int, record: dict[str, Any]) -> None:
        """Pass an event record of source *n* to the pages (any thread)."""
        record = dict(record)
        record["source_name"] = self.sources[n].name
        record.pop("source", None)
        clip = record.pop("clip", None)
        source = self.sources[n]
        if clip and source.clips is not None and record.get("type") == "end":
            name = Path(clip).name
            source.clip_names.add(name)
            record["clip_url"] = f"/clips/{n}/{quote(name)}"
        self._publish({"kind": "event", "source": n, "record": record})

    def mark_ended(self) -> None:
        """The sources ended: the pages say so."""
        if not self.ended:
            self.ended = True
            for source in self.sources:
                source.status = {**source.status, "state": "ended", "paused": False}
                self._publish({"kind": "status", "source": source.n, "status": source.status})
            self._publish({"kind": "ended"})

    def _publish(self, message: dict[str, Any]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._append, message)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def _append(self, message: dict[str, Any]) -> None:
        self._next_id += 1
        message["id"] = self._next_id
        if message["kind"] in ("status", "sources"):  # only the latest of its kind is kept
            for old in list(self._history):
                if old["kind"] == message["kind"] and old.get("source") == message.get("source"):
                    self._history.remove(old)
        self._history.append(message)
        self._changed.set()
        self._changed = asyncio.Event()

    def _offer(self, source: _Source, annotated: np.ndarray | None, frame: np.ndarray,
               mask: np.ndarray) -> None:
        with self._encode:
            self._pending[source.n] = (source, annotated, frame, mask)
            self._encode.notify()

    def _encode_loop(self) -> None:
        while True:
            with self._encode:
                while not self._pending and not self._closing:
                    self._encode.wait()
                if self._closing:
                    return
                n = next(iter(self._pending))
                source, annotated, frame, mask = self._pending.pop(n)
            if annotated is None:
                annotated = self.draw(frame, mask)
            jpegs = {"frame": _jpeg(annotated, self.quality), "mask": _jpeg(mask, self.quality)}
            loop = self._loop
            if loop is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(self._new_frame, source, jpegs)
                except RuntimeError:
                    return

    def _new_frame(self, source: _Source, jpegs: dict[str, bytes]) -> None:
        source.jpegs = jpegs
        source.seq += 1
        self._frame_changed.set()
        self._frame_changed = asyncio.Event()

    # -- the HTTP side (the server's loop) -----------------------------------------------

    def _token_ok(self, request) -> bool:
        if self.token is None:
            return True
        given = request.cookies.get(COOKIE) or request.query.get("token") or ""
        return secrets.compare_digest(given.encode(), self.token.encode())

    async def _guard_impl(self, request, handler):
        from aiohttp import web

        if self.token is None and needs_token(_host_of(request.host)):
            # no token: only for pages reached by a loopback name, never by a site's own name
            # resolved to this machine (DNS rebinding)
            raise web.HTTPForbidden(text="403: without a token, the page answers to a "
                                    "loopback address only\n")
        if not self._token_ok(request):
            raise web.HTTPForbidden(text="403: a valid token is needed (open the address "
                                    "bgsub printed, with its ?token=)\n")
        if self.token is not None and "token" in request.query and request.method == "GET":
            # the token moves into a cookie and out of the address bar
            rest = {k: v for k, v in request.query.items() if k != "token"}
            response = web.HTTPSeeOther(request.rel_url.with_query(rest))
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict",
                                path="/")
            raise response
        if request.method == "POST" and request.headers.get(HEADER) != "1":
            raise web.HTTPForbidden(text=f"403: a write action needs the header {HEADER}: 1\n")
        return await handler(request)

    @property
    def _guard(self):
        from aiohttp import web

        @web.middleware
        async def guard(request, handler):
            return await self._guard_impl(request, handler)

        return guard

    def _source(self, request) -> _Source:
        from aiohttp import web

        text = request.match_info["n"]
        if not text.isdigit() or int(text) >= len(self.sources):
            raise web.HTTPNotFound(text="no such source\n")
        return self.sources[int(text)]

    async def _page(self, request):
        from aiohttp import web

        names = [{"n": s.n, "name": s.name, "clips": s.clips is not None} for s in self.sources]
        # JSON in a script element: "<" escaped, so no outside string can close it
        data = json.dumps(names).replace("<", "\\u003c").replace(">", "\\u003e") \
            .replace("&", "\\u0026")
        page = PAGE.replace("/*SOURCES*/[]", data).replace("/*PANES*/[]", json.dumps(PANES))
        return web.Response(text=page, content_type="text/html", headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; "
                                       "style-src 'unsafe-inline'; script-src 'unsafe-inline'",
            "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    async def _frame(self, request):
        from aiohttp import web

        source = self._source(request)
        pane = request.match_info["pane"]
        if pane not in PANES:
            raise web.HTTPNotFound(text="no such pane\n")
        self._last_view = time.monotonic()
        after = request.query.get("after", "")
        after = int(after) if after.isdigit() else -1
        deadline = time.monotonic() + 5.0
        while (source.seq <= after or pane not in source.jpegs) and not self._stopped.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._last_view = time.monotonic()
            try:
                await asyncio.wait_for(self._frame_changed.wait(), min(left, 1.0))
            except asyncio.TimeoutError:
                pass
        if pane not in source.jpegs or source.seq <= after:  # none newer: ask again
            return web.Response(status=204, headers={"Cache-Control": "no-store"})
        return web.Response(body=source.jpegs[pane], content_type="image/jpeg",
                            headers={"X-Frame-Seq": str(source.seq),
                                     "Cache-Control": "no-store"})

    async def _stream(self, request):
        from aiohttp import web

        source = self._source(request)
        pane = request.match_info["pane"]
        if pane not in PANES:
            raise web.HTTPNotFound(text="no such pane\n")
        response = web.StreamResponse(headers={
            "Content-Type": "multipart/x-mixed-replace; boundary=frame",
            "Cache-Control": "no-store"})
        await response.prepare(request)
        connection = request.transport.get_extra_info("socket") if request.transport else None
        if connection is not None:  # a reader that stops reading is seen within a few frames,
            # not after the kernel's send buffer (grown to megabytes) has filled
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _STREAM_BUFFER)
        sent = 0
        try:
            while not self._stopped.is_set():
                if source.seq > sent and pane in source.jpegs:
                    sent = source.seq
                    jpg = source.jpegs[pane]
                    # a reader that stalls blocks here, on its own: it misses frames
                    await response.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                         b"Content-Length: %d\r\n\r\n" % len(jpg) + jpg
                                         + b"\r\n")
                    continue
                waits = [asyncio.ensure_future(self._frame_changed.wait()),
                         asyncio.ensure_future(self._stopped.wait())]
                self._ready += 1
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    self._ready -= 1
                    for wait in waits:
                        wait.cancel()
        except (ConnectionError, asyncio.CancelledError):
            pass
        return response

    async def _events(self, request):
        from aiohttp import web

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-store"})
        await response.prepare(request)
        seen = 0
        try:
            while True:
                fresh = [m for m in self._history if m["id"] > seen]
                for message in fresh:
                    seen = message["id"]
                    await response.write(b"data: " + json.dumps(message).encode() + b"\n\n")
                if self._stopped.is_set():
                    break
                changed = self._changed
                try:
                    await asyncio.wait_for(changed.wait(), 15.0)
                except asyncio.TimeoutError:
                    await response.write(b": keep-alive\n\n")
        except (ConnectionError, asyncio.CancelledError):
            pass
        return response

    async def _clip(self, request):
        from aiohttp import web

        source = self._source(request)
        name = request.match_info["name"]
        # only the clips of events this run announced, by their plain names
        if source.clips is None or name not in source.clip_names:
            raise web.HTTPNotFound(text="no such clip\n")
        path = source.clips / name
        if not path.is_file():
            raise web.HTTPNotFound(text="no such clip\n")
        return web.FileResponse(path, headers={"Content-Type": "video/mp4"})

    async def _action(self, request):
        from aiohttp import web

        source = self._source(request)
        action = request.match_info["action"]
        if action == "pause":
            source.paused = not source.paused
            if not source.paused:
                source.resume.set()
        elif action == "reset":
            source.reset_asked = True
        else:
            raise web.HTTPNotFound(text="no such action\n")
        source.status = {**source.status, "paused": source.paused}
        self._append({"kind": "status", "source": source.n, "status": source.status})
        return web.json_response({"source": source.n, "paused": source.paused,
                                  "reset": source.reset_asked})


class _Feed:
    """One source's consumer: its status, its latest frame for the encoder, its flags."""

    STATUS_EVERY = 0.5  # seconds between status lines

    def __init__(self, server: LiveServer, source: _Source, on_reset: Callable[[], None],
                 drops: Callable[[], int]) -> None:
        self.server = server
        self.source = source
        self.on_reset = on_reset
        self.drops = drops
        self._last_offer = 0.0
        self._last_status = 0.0
        self._times: collections.deque = collections.deque(maxlen=64)
        self._recoveries = 0
        self._recovering = False

    def write(self, result: FrameResult) -> None:
        source, server = self.source, self.server
        now = time.monotonic()
        self._times.append(now)
        self._recoveries += result.recovering and not self._recovering
        self._recovering = result.recovering
        if source.reset_asked:
            source.reset_asked = False
            self.on_reset()
        if now - self._last_status >= self.STATUS_EVERY:
            self._last_status = now
            self._status(result)
        if server.watching() and now - self._last_offer >= 1.0 / server.max_fps:
            self._last_offer = now
            # copies: the encoder works in its own thread, at its own pace
            annotated = None if result.annotated is None else result.annotated.copy()
            frame = None if annotated is not None else result.frame.copy()
            server._offer(source, annotated, frame, result.mask.copy())  # noqa: SLF001
        if source.paused:  # as the window's space key: this source waits
            self._status(result)
            source.resume.clear()
            while source.paused and not server.stop.is_set():
                source.resume.wait(0.1)
            self._status(result)

    def _status(self, result: FrameResult) -> None:
        times = self._times
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and \
            times[-1] > times[0] else 0.0
        status = {"source": self.source.n, "state": "paused" if self.source.paused else
                  "running", "paused": self.source.paused, "frame": result.index,
                  "fps": round(fps, 1), "foreground": round(100 * result.foreground_fraction, 2),
                  "recoveries": self._recoveries, "recovering": bool(result.recovering),
                  "dropped": int(self.drops())}
        self.source.status = status
        self.server._publish({"kind": "status", "source": self.source.n,  # noqa: SLF001
                              "status": status})

    def close(self) -> None:
        self.source.status = {**self.source.status, "state": "ended"}
        self.server._publish({"kind": "status", "source": self.source.n,  # noqa: SLF001
                              "status": self.source.status})


def new_token() -> str:
    """A fresh token for ``--serve`` (URL-safe)."""
    return secrets.token_urlsafe(18)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bgsub</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px system-ui, sans-serif; margin: 0; background: #1d1f21; color: #ddd; }
header { padding: 8px 16px; background: #111; display: flex; gap: 16px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0; }
#run.ended { color: #f0a040; font-weight: bold; }
main { display: flex; flex-wrap: wrap; gap: 16px; padding: 16px; }
section.source { background: #26292c; padding: 8px; border-radius: 4px; }
section.source h2 { font-size: 15px; margin: 0 0 6px; word-break: break-all; }
.panes { display: flex; gap: 6px; flex-wrap: wrap; }
.panes figure { margin: 0; }
.panes figcaption { font-size: 12px; color: #999; }
.panes img { display: block; width: 320px; min-height: 60px; background: #000; }
.status { font-family: ui-monospace, monospace; font-size: 12px; margin: 6px 0; }
button { margin-right: 6px; }
aside { padding: 0 16px 16px; }
#events { list-style: none; padding: 0; margin: 0; font-family: ui-monospace, monospace;
          font-size: 12px; max-height: 40vh; overflow: auto; }
#events li { padding: 2px 0; border-bottom: 1px solid #333; }
a { color: #8ab4f8; }
</style></head>
<body data-frames="0" data-events="0" data-state="starting">
<header><h1>bgsub</h1><span id="run">running</span></header>
<main id="sources"></main>
<aside><h2>Events</h2><ul id="events"></ul></aside>
<script>
"use strict";
const SOURCES = /*SOURCES*/[];
const PANES = /*PANES*/[];
const HEADERS = {"X-Bgsub": "1"};
let frames = 0, events = 0, live = true;
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);  // text, never markup
  if (cls) e.className = cls;
  return e;
}
const statusOf = {};
for (const s of SOURCES) {
  const box = el("section", undefined, "source");
  box.appendChild(el("h2", s.name));
  const status = el("div", "starting", "status");
  statusOf[s.n] = status;
  box.appendChild(status);
  const panes = el("div", undefined, "panes");
  for (const pane of PANES) {
    const fig = el("figure");
    const img = el("img");
    img.alt = pane + " of " + s.name;
    img.dataset.pane = pane;
    fig.appendChild(img);
    fig.appendChild(el("figcaption", pane));
    panes.appendChild(fig);
    poll(s.n, pane, img, -1);
  }
  box.appendChild(panes);
  for (const action of ["pause", "reset"]) {
    const b = el("button", action);
    b.onclick = () => fetch("/source/" + s.n + "/" + action,
                            {method: "POST", headers: HEADERS, credentials: "same-origin"});
    box.appendChild(b);
  }
  document.getElementById("sources").appendChild(box);
}
async function poll(n, pane, img, seq) {
  while (live) {
    try {
      const r = await fetch("/frame/" + n + "/" + pane + ".jpg?after=" + seq,
                            {credentials: "same-origin", cache: "no-store"});
      if (r.status === 200) {
        seq = parseInt(r.headers.get("X-Frame-Seq") || "0", 10);
        const url = URL.createObjectURL(await r.blob());
        const old = img.src;
        img.src = url;
        if (old.startsWith("blob:")) URL.revokeObjectURL(old);
        frames += 1;
        document.body.dataset.frames = frames;
      } else if (r.status !== 204) {
        await new Promise(ok => setTimeout(ok, 1000));
      }
    } catch (e) {
      await new Promise(ok => setTimeout(ok, 1000));
    }
  }
}
function showStatus(n, s) {
  const box = statusOf[n];
  if (!box) return;
  if (s.frame === undefined) { box.textContent = s.state; return; }
  box.textContent = s.state + "  frame " + s.frame + "  " + s.fps.toFixed(1) + " fps  " +
    s.foreground.toFixed(2) + "% foreground  " + s.recoveries + " recoveries  " +
    s.dropped + " dropped" + (s.recovering ? "  recovering" : "");
}
function showEvent(n, r) {
  const li = el("li");
  const scene = r.type === "scene";
  const ended = scene ? r.state === "end" : r.type === "end";
  const when = ended ? r.start + " to " + r.end + (scene ? "" : " (" + r.duration + " s)")
    : r.start;
  const what = scene ? "scene " + r.kind + " " + r.state : "event " + r.event + " " + r.type;
  li.appendChild(el("span", r.source_name + "  " + what + "  " + when));
  if (r.clip_url) {
    li.appendChild(document.createTextNode("  "));
    const a = el("a", "clip");
    a.href = r.clip_url;  // the server URL-encodes the name
    li.appendChild(a);
  }
  const list = document.getElementById("events");
  list.insertBefore(li, list.firstChild);
  events += 1;
  document.body.dataset.events = events;
}
const stream = new EventSource("/events");
stream.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  if (msg.kind === "sources" && msg.count !== SOURCES.length) location.reload();
  else if (msg.kind === "status") showStatus(msg.source, msg.status);
  else if (msg.kind === "event") showEvent(msg.source, msg.record);
  else if (msg.kind === "ended") {
    const run = document.getElementById("run");
    run.textContent = "ended: the sources ended, the server stops";
    run.className = "ended";
    document.body.dataset.state = "ended";
    live = false;
    stream.close();
  }
};
document.body.dataset.state = "running";
</script>
</body></html>
"""
