"""``--serve``: the run's page, its frames and events, its token, its end, and a real browser.

The runs read a live MJPEG stream on 127.0.0.1 (:class:`~bgsub.eval.synthetic.MjpegServer`,
a box crossing a still scene every few seconds) or a short synthetic file;
the server listens on 127.0.0.1, on a free port that bgsub prints.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kit import ROOT, bgsub, cli_env, events_recording

pytest.importorskip("aiohttp", reason="--serve needs the optional extra web (pip install "
                    "'bgsub[web]')")

from bgsub.eval.synthetic import EventSpec, MjpegServer, render_events  # noqa: E402
from bgsub.live.server import needs_token, parse_address, ServeError  # noqa: E402

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
SECRET = "s3cretPass"
TIMEOUT = 600  # seconds: a loaded machine compiles the kernels first


class Run:
    """A ``bgsub ... --serve 127.0.0.1:0`` subprocess: its address, stderr, and its end."""

    def __init__(self, *args, cwd) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bgsub", "--no-display", "--serve", "127.0.0.1:0",
             *map(str, args)], cwd=cwd, env=cli_env(), stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        first = self.proc.stderr.readline()
        self.lines.append(first)
        found = re.match(r"bgsub: serving (http://127\.0\.0\.1:\d+/)\n", first)
        assert found, first + self.proc.stderr.read()
        self.url = found.group(1)
        threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True).start()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(120)
        time.sleep(0.2)  # the reader thread takes the last lines
        return code

    @property
    def stderr(self) -> str:
        return "".join(self.lines)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch(url: str, method: str = "GET", headers: dict | None = None, timeout: float = 60):
    """(status, headers, body) of a request, whatever the status."""
    request = urllib.request.Request(url, method=method, headers=headers or {},
                                     data=b"" if method == "POST" else None)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def frame(url: str, after: int = -1, deadline: float = TIMEOUT,
          headers: dict | None = None) -> tuple[int, bytes]:
    """The next frame's (sequence number, JPEG) after *after*, waiting for the first one."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        status, got, body = fetch(f"{url}frame/0/frame.jpg?after={after}", headers=headers)
        if status == 200:
            return int(got["X-Frame-Seq"]), body
        assert status in (204, 404), status  # 404: the source is not open yet
        if status == 404:
            time.sleep(0.5)
    raise AssertionError("no frame came")


def messages(url: str, until, headers: dict | None = None, deadline: float = TIMEOUT):
    """The event stream's messages up to the first for which *until* is true (or the deadline)."""
    seen = []
    request = urllib.request.Request(url + "events", headers=headers or {})
    end = time.monotonic() + deadline
    with urllib.request.urlopen(request, timeout=30) as stream:
        for raw in stream:
            if raw.startswith(b"data: "):
                seen.append(json.loads(raw[6:]))
                if until(seen[-1]):
                    return seen
            if time.monotonic() > end:
                break
    raise AssertionError(f"the stream ended or timed out without it: {seen[-5:]}")


def is_end_event(message) -> bool:
    return message["kind"] == "event" and message["record"]["type"] == "end"


@pytest.fixture(scope="module")
def camera():
    # a crossing every 8 s: more than post_roll apart, so each is an event of its own
    spec = EventSpec(frames=240, crossings=((60, 89),))
    server = MjpegServer([f for f, _ in render_events(spec)], fps=30)
    yield server
    server.close()


@pytest.fixture(scope="module")
def live(camera, tmp_path_factory):
    """A run of the camera (its URL with a password) with clips, served."""
    folder = tmp_path_factory.mktemp("live")
    url = camera.url.replace("http://", f"http://viewer:{SECRET}@")
    run = Run(url, "--quiet", "--clips", folder / "clips", cwd=folder)
    yield run
    run.stop()


def test_the_page_shows_the_source_without_its_password_and_new_frames_come(live):
    seq, first = frame(live.url)
    status, headers, page = fetch(live.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = page.decode()
    assert SECRET not in page and "viewer:***@127.0.0.1" in page
    later, second = frame(live.url, seq)
    assert later > seq and second != first and second[:2] == b"\xff\xd8"  # two JPEGs
    status, _, mask = fetch(f"{live.url}frame/0/mask.jpg")
    assert status == 200 and mask[:2] == b"\xff\xd8"
    assert fetch(f"{live.url}frame/1/frame.jpg")[0] == 404
    # a site's own name resolved to this machine (DNS rebinding) gets nothing
    assert fetch(live.url, headers={"Host": "attacker.example:80"})[0] == 403
    assert fetch(live.url, headers={"Host": "localhost"})[0] == 200
    assert fetch(f"{live.url}frame/0/secret.jpg")[0] == 404


def test_an_event_reaches_the_stream_with_its_clip(live):
    seen = messages(live.url, is_end_event)
    record = next(m for m in seen if is_end_event(m))["record"]
    assert SECRET not in json.dumps(seen)
    assert record["source_name"].startswith("http://viewer:***@")
    statuses = [m["status"] for m in seen if m["kind"] == "status"]
    assert statuses and {"fps", "foreground", "recoveries", "dropped"} <= set(statuses[-1])
    assert re.fullmatch(r"/clips/0/[A-Za-z0-9._%-]+\.mp4", record["clip_url"])
    for _ in range(50):  # the clip's writer closes it just after the event's end
        status, headers, body = fetch(live.url.rstrip("/") + record["clip_url"])
        if status == 200 and len(body) > 1000:
            break
        time.sleep(0.2)
    assert status == 200 and headers["Content-Type"] == "video/mp4"
    # only the clips of announced events, by name
    assert fetch(f"{live.url}clips/0/..%2F..%2Fetc%2Fpasswd")[0] == 404
    assert fetch(f"{live.url}clips/0/other.mp4")[0] == 404


def test_pause_and_reset_need_a_post_with_the_header(live):
    frame(live.url)
    assert fetch(f"{live.url}source/0/pause", "POST")[0] == 403  # no header: a form could
    assert fetch(f"{live.url}source/0/pause")[0] in (404, 405)  # GET acts on nothing
    status, _, body = fetch(f"{live.url}source/0/pause", "POST", {"X-Bgsub": "1"})
    assert status == 200 and json.loads(body)["paused"] is True
    time.sleep(1.0)
    seq, _ = frame(live.url)
    status, _, _ = fetch(f"{live.url}frame/0/frame.jpg?after={seq}")
    assert status == 204  # paused: no newer frame within the long poll's 5 s
    status, _, body = fetch(f"{live.url}source/0/pause", "POST", {"X-Bgsub": "1"})
    assert status == 200 and json.loads(body)["paused"] is False
    assert frame(live.url, seq, 60)[0] > seq
    status, _, body = fetch(f"{live.url}source/0/reset", "POST", {"X-Bgsub": "1"})
    assert status == 200 and json.loads(body)["reset"] is True
    assert fetch(f"{live.url}source/0/erase", "POST", {"X-Bgsub": "1"})[0] == 404


async def _browse(url: str, profile: Path, shot: Path) -> tuple[dict, str]:
    """Open *url* in headless Chromium, wait for frames and an event while the box crosses,
    then take the page's text and a screenshot (over the DevTools protocol, with aiohttp:
    the page streams for ever, so a load-time ``--dump-dom`` would see no frame yet)."""
    import aiohttp

    proc = subprocess.Popen([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                             "--disable-quic", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update",
                             "--disable-sync", f"--user-data-dir={profile}",
                             "--remote-debugging-port=0", "--remote-allow-origins=*",
                             "--window-size=1000,640", url],
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if found:
                break
        assert found, "chromium did not start"
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                async with session.get(f"http://127.0.0.1:{found.group(1)}/json/list") as r:
                    pages = [t for t in await r.json() if t["type"] == "page"]
                if pages:
                    break
                await asyncio.sleep(0.2)
            async with session.ws_connect(pages[0]["webSocketDebuggerUrl"],
                                          max_msg_size=0) as ws:
                ids = iter(range(1, 1 << 30))

                async def call(method, **params):
                    n = next(ids)
                    await ws.send_json({"id": n, "method": method, "params": params})
                    while True:
                        message = await ws.receive_json(timeout=60)
                        if message.get("id") == n:
                            return message["result"]

                async def value(expression):
                    result = await call("Runtime.evaluate", expression=expression,
                                        returnByValue=True)
                    return result["result"].get("value")

                data = {}
                end = time.monotonic() + 120
                while time.monotonic() < end:
                    data = json.loads(await value(
                        "JSON.stringify(document.body ? Object.assign({status: "
                        "(document.querySelector('.status') || {}).textContent}, "
                        "document.body.dataset) : {})"))
                    if int(data.get("frames", 0)) >= 2 and int(data.get("events", 0)) >= 1 \
                            and " 0.00% foreground" not in data.get("status", " 0.00% foreground"):
                        break  # seen frames and an event, and the box is crossing now
                    await asyncio.sleep(0.2)
                await call("Emulation.setDeviceMetricsOverride", width=1000, height=640,
                           deviceScaleFactor=1, mobile=False)
                await asyncio.sleep(0.3)  # the newest frame is drawn
                html = await value("document.documentElement.outerHTML")
                png = (await call("Page.captureScreenshot", format="png"))["data"]
                shot.write_bytes(base64.b64decode(png))
                return data, html
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(BROWSER is None, reason="no chromium installed (Debian: apt-get install "
                    "chromium); the browser check of --serve needs it")
def test_a_browser_shows_the_frames_and_the_events(live, tmp_path):
    import cv2

    messages(live.url, is_end_event)  # an event has happened: the page replays it
    shot = tmp_path / "serve.png"
    data, html = asyncio.run(_browse(live.url, tmp_path / "profile", shot))
    assert int(data["frames"]) >= 2 and int(data["events"]) >= 1, data
    assert html.count('src="blob:') == 2  # both panes show a fetched image
    assert re.search(r"<li><span>http://viewer:\*\*\*@127\.0\.0\.1:\d+/  event \d+ end ",
                     html), html[-3000:]
    assert SECRET not in html
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (640, 1000)
    # the frame's textured scene is on screen: many distinct colours, not a blank pane
    assert len(set(image[100:340, 20:340].reshape(-1, 3)[:, 1].tolist())) > 60
    if os.environ.get("BGSUB_WRITE_DOCS") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "serve.png")


def test_the_page_hears_of_the_end_and_the_server_stops_after_the_linger(tmp_path):
    clip = events_recording(tmp_path, EventSpec(frames=120), name="a<b>&'\"x.mp4")
    run = Run(clip, "--quiet", "--serve-linger", "3", cwd=tmp_path)
    for _ in range(100):  # the page once the source is open
        status, _, page = fetch(run.url)
        if b"x.mp4" in page:
            break
        time.sleep(0.1)
    # the name is data: in the page's JSON with its markup characters escaped
    assert b"a<b>" not in page and b"a\\u003cb\\u003e\\u0026'\\\"x.mp4" in page
    seen = messages(run.url, lambda m: m["kind"] == "ended")
    ended = time.monotonic()
    assert any(m["kind"] == "status" and m["status"]["state"] == "ended" for m in seen)
    assert run.proc.wait(120) == 0
    assert time.monotonic() - ended > 2.0  # it lingered
    with pytest.raises(OSError):
        urllib.request.urlopen(run.url, timeout=10)


def test_a_token_is_asked_of_every_request(tmp_path):
    token = "tok-Zq9xW3kP7"
    camera = MjpegServer([f for f, _ in render_events(EventSpec(frames=30))], fps=30)
    run = Run(camera.url, "--quiet", "--serve-token", token, cwd=tmp_path)
    try:
        assert fetch(run.url)[0] == 403
        assert fetch(run.url + "?token=wrong")[0] == 403
        assert fetch(run.url + "frame/0/frame.jpg")[0] == 403
        assert fetch(run.url + "events")[0] == 403
        assert fetch(run.url + "source/0/pause", "POST", {"X-Bgsub": "1"})[0] == 403
        status, headers, _ = fetch(run.url + "?token=" + token)
        assert status == 303 and headers["Location"] == "/"  # the token leaves the address
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        jar = {"Cookie": cookie.split(";")[0]}
        frame(run.url, headers=jar)  # the source is open
        assert fetch(run.url, headers=jar)[0] == 200
        assert fetch(run.url, headers={"Cookie": "bgsub_token=wrong"})[0] == 403
        assert fetch(run.url + "source/0/pause", "POST", jar)[0] == 403  # no header
        status, _, _ = fetch(run.url + "source/0/reset", "POST", {**jar, "X-Bgsub": "1"})
        assert status == 200
    finally:
        run.stop()
        camera.close()
    assert token not in run.stderr  # the command line's token is never shown


def test_an_address_off_loopback_gets_a_generated_token_printed_once(monkeypatch, capsys):
    import argparse

    import bgsub.cli.run as run
    from bgsub.config import Config

    monkeypatch.setattr(run, "needs_token", lambda host: True)  # as for 0.0.0.0
    args = argparse.Namespace(serve="127.0.0.1:0", serve_token=None, serve_linger=0.0)
    server = run._server(args, Config(), threading.Event())
    try:
        line = capsys.readouterr().err
        found = re.fullmatch(r"bgsub: serving (http://127\.0\.0\.1:\d+/)\?token=([\w-]{20,})\n",
                             line)
        assert found, line
        assert fetch(found.group(1))[0] == 403
        assert fetch(found.group(1) + "?token=" + found.group(2))[0] == 303
    finally:
        server.close()


def test_loopback_needs_no_token_any_other_address_does():
    assert not needs_token("127.0.0.1") and not needs_token("::1")
    assert not needs_token("localhost") and not needs_token("127.8.0.1")
    assert needs_token("0.0.0.0") and needs_token("192.168.1.4") and needs_token("::")
    assert needs_token("camera-box.local")
    assert parse_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_address("[::1]:0") == ("::1", 0)
    for bad in ("8080", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", ":8080"):
        with pytest.raises(ServeError, match="expected HOST:PORT"):
            parse_address(bad)


@pytest.fixture
def busy_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize("args, says", [
    (["--serve", "nonsense"], "--serve nonsense: expected HOST:PORT"),
    (["--serve", "127.0.0.1:70000"], "expected HOST:PORT with a port from 0 to 65535"),
    (["--serve", "127.0.0.1:0", "--serve-linger", "-1"], "--serve-linger must be seconds"),
    (["--serve-token", "x"], "--serve-token and --serve-linger need --serve"),
    (["--serve", "127.0.0.1:0", "--serve-token", " "], "--serve-token must not be empty"),
    ("busy", "cannot listen there"),
])
def test_a_bad_serve_is_one_line_before_any_frame(args, says, busy_port, tmp_path):
    clip = events_recording(tmp_path, EventSpec(frames=10))
    if args == "busy":
        args = ["--serve", f"127.0.0.1:{busy_port}"]
    r = bgsub(clip, "--no-display", "--stats", "stats.csv", *args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("bgsub: ") and r.stderr.count("\n") == 1 and says in r.stderr
    assert not (tmp_path / "stats.csv").exists()  # no frame was read


def test_without_the_extra_serve_says_what_to_install(tmp_path):
    clip = events_recording(tmp_path, EventSpec(frames=10))
    code = ("import sys; sys.modules['aiohttp'] = None; from bgsub.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", code, str(clip), "--no-display", "--serve",
                        "127.0.0.1:0"], cwd=tmp_path, env=cli_env(), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr == ("bgsub: error: --serve needs the optional extra web (pip install "
                        "'bgsub[web]', which brings aiohttp)\n")


def test_a_stream_whose_reader_stops_reading_makes_nothing_encoded():
    """A viewer that connects to the MJPEG stream and reads nothing costs the loop nothing
    once its socket is full: the server stops encoding for it."""
    from bgsub.config import Config
    from bgsub.io.display import drawer
    from bgsub.live.server import LiveServer
    from bgsub.model.step import FrameStep

    config = Config()
    step = FrameStep.from_config(config, fps=30.0)
    server = LiveServer("127.0.0.1", 0, None, drawer(config.display))
    server.start()
    server.add_source("s")
    feed = server.feed(0, step.reset)
    spec = EventSpec(width=640, height=480, frames=60, crossings=((10, 50),), size=(60, 80))
    frames = [frame for frame, _ in render_events(spec)]
    index = 0

    def run(seconds: float) -> None:
        nonlocal index
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            feed.write(step(index, frames[index % len(frames)]))
            index += 1
            time.sleep(0.01)

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(b"GET /stream/0/frame.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    try:
        run(4.0)  # frames are encoded for the stream until its socket is full
        source = server.sources[0]
        assert source.seq > 0
        stalled = source.seq
        run(3.0)
        assert source.seq == stalled and not server.watching()
    finally:
        sock.close()
        server.close()
