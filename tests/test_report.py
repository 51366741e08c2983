"""The scan's HTML report: its content, and how a real browser shows it (headless Chromium)."""

import html
import json
import os
import re
import shutil
import subprocess
import urllib.parse

import cv2
import numpy as np
import pytest

from bgsub.scan.report import render_report, write_report

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


def event(number, start, end, thumbnail=None, clip=None):
    return {"event": number, "start_frame": start, "end_frame": end, "peak_frame": start + 5,
            "peak_score": 0.02, "duration": (end - start + 1) / 30,
            "start_timecode": f"00:00:{start / 30:06.3f}", "end_timecode": f"00:00:{end / 30:06.3f}",
            "thumbnail": thumbnail, "clip": clip}


def scanned(name, events, values):
    return {"file": f"/cam/{name}", "status": "scanned", "events": events, "seconds": 10.0,
            "fps": 30.0, "width": 160, "height": 120, "first_frame": 0, "last_frame": 299,
            "activity": {"first": 0, "width": 10, "values": values}}


@pytest.fixture
def records(tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    image = np.zeros((120, 160, 3), np.uint8)
    image[40:80, 60:100] = (0, 0, 255)
    cv2.imwrite(str(shots / "a.event001.jpg"), image)
    cv2.imwrite(str(shots / "a.event002.jpg"), image)
    values = [0.0] * 30
    values[5:9] = [0.01, 0.03, 0.02, 0.01]
    return [
        (scanned("a.mp4", [event(1, 40, 100, "a.event001.jpg", "a.event001.mp4"),
                           event(2, 200, 260, "a.event002.jpg")], values), shots),
        (scanned("b.mp4", [], [0.0] * 30), shots),
        ({"file": "/cam/c.mp4", "status": "failed", "error": "not a video <file>",
          "events": [], "seconds": 0.0}, shots),
    ]


def test_the_report_holds_the_files_table_timelines_and_events(records, tmp_path):
    page = render_report(records, tmp_path, threshold=0.003)
    assert "3 files: 1 with motion, 1 without, 1 failed; 2 events" in page
    assert re.search(r'data-status="failed"><td>/cam/c.mp4</td><td><span class="failed">'
                     r'failed</span> not a video &lt;file&gt;', page)  # escaped
    assert page.count("<svg") == 1 and page.count('class="event-span"') == 2
    # events shaded where they are: frames 40..100 of 300 on a 1000 wide timeline
    assert 'x="133.33" y="0" width="203.33"' in page
    assert 'src="./shots/a.event001.jpg"' in page and 'href="./shots/a.event001.mp4"' in page
    assert "<script src" not in page and "http" not in page.split("</style>")[1]


def chromium(*args, tmp_path):
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-quic", "--no-first-run", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(BROWSER is None, reason="no chromium installed (Debian: apt-get install "
                    "chromium); the report's browser check needs it")
def test_a_browser_shows_the_report_with_its_thumbnails(records, tmp_path):
    report = tmp_path / "report.html"
    write_report(report, records, 0.003)
    r = chromium("--virtual-time-budget=5000", "--dump-dom", report.as_uri(), tmp_path=tmp_path)
    body = re.search(r"<body[^>]*>", r.stdout)
    assert body, r.stderr[-2000:]
    # the page's own check ran: every thumbnail loaded
    assert 'data-loaded="yes"' in body.group() and 'data-broken-images="0"' in body.group()
    shot = tmp_path / "shot.png"
    chromium("--window-size=1000,800", f"--screenshot={shot}", report.as_uri(),
             tmp_path=tmp_path)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (800, 1000)
    # the thumbnails' red squares are on screen
    red = (image[:, :, 2] > 200) & (image[:, :, 1] < 60) & (image[:, :, 0] < 60)
    assert red.sum() > 2 * 1000
    # moved without its thumbnails, the report says they are missing
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "report.html").write_text(report.read_text())
    r = chromium("--virtual-time-budget=5000", "--dump-dom", (moved / "report.html").as_uri(),
                 tmp_path=tmp_path)
    assert 'data-broken-images="2"' in r.stdout and "could not be loaded" in r.stdout


# names that are URL syntax or break a line: a scheme, a fragment, a percent
# sign that reads as an escape, a newline, a query, a non-UTF-8 byte
HOSTILE = ["javascript:document.title='pwned';({}).mp4", "a#1.mp4", "b%41.mp4", "c\nd.mp4",
           "d?x=1 e.mp4", "caf\udce9.mp4"]


@pytest.fixture
def hostile(tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    image = np.zeros((120, 160, 3), np.uint8)
    image[40:80, 60:100] = (0, 0, 255)
    ok, jpeg = cv2.imencode(".jpg", image)
    records = []
    for name in HOSTILE:
        stem = name[:-4]
        (shots / f"{stem}.event001.jpg").write_bytes(jpeg.tobytes())
        (shots / f"{stem}.event001.mp4").write_bytes(b"clip")
        records.append((scanned(name, [event(1, 40, 100, f"{stem}.event001.jpg",
                                             f"{stem}.event001.mp4")], [0.0] * 30), shots))
    return records


def test_names_in_links_are_relative_urls_and_text_is_escaped(hostile, tmp_path):
    page = render_report(hostile, tmp_path, threshold=0.003)
    links = [html.unescape(v) for v in re.findall(r'(?:href|src)="([^"#][^"]*)"', page)]
    assert len(links) == 2 * len(HOSTILE)
    for link in links:
        # no scheme, no fragment or query: the whole link is the file's path
        parts = urllib.parse.urlsplit(link)
        assert link.startswith("./") and not parts.scheme and not parts.fragment \
            and not parts.query, link
        assert (tmp_path / os.fsdecode(urllib.parse.unquote_to_bytes(link))).is_file(), link
    assert "javascript:" not in "".join(links)
    # the page's text shows the names on one line each, escaped
    assert "c\\nd.mp4" in page and "c\nd" not in page
    assert "title=&#x27;pwned&#x27;" in page


@pytest.mark.skipif(BROWSER is None, reason="no chromium installed (Debian: apt-get install "
                    "chromium); the report's browser check needs it")
def test_a_browser_follows_hostile_names_to_their_files(hostile, tmp_path):
    report = tmp_path / "report.html"
    write_report(report, hostile, 0.003)
    # the same page with a check added: where the browser resolves each link
    check = tmp_path / "check.html"
    script = """<script>window.addEventListener("load", function () {
      var links = [];
      document.querySelectorAll("a[href^='./'], a[href^='javascript'], img").forEach(
        function (e) { var u = new URL(e.href || e.src, document.baseURI);
                       var path = u.pathname;
                       try { path = decodeURIComponent(path); } catch (err) {}
                       links.push(u.protocol + path); });
      document.body.dataset.links = JSON.stringify(links);
    });</script>"""
    check.write_text(report.read_text().replace("</body>", script + "</body>"))
    r = chromium("--virtual-time-budget=5000", "--dump-dom", check.as_uri(), tmp_path=tmp_path)
    body = re.search(r"<body[^>]*>", r.stdout)
    assert body, r.stderr[-2000:]
    # every thumbnail loaded, the page said nothing about a moved report
    assert 'data-loaded="yes"' in body.group() and 'data-broken-images="0"' in body.group()
    assert '<p id="broken"></p>' in r.stdout
    links = json.loads(html.unescape(re.search(r'data-links="([^"]*)"', body.group())[1]))
    assert len(links) == 2 * len(HOSTILE)
    for link in links:
        assert link.startswith("file:" + str(tmp_path / "shots") + "/"), link
    # the decoded paths are the files' (the non-UTF-8 one aside, which does not decode)
    expected = {f"file:{tmp_path / 'shots'}/{name[:-4]}.event001.{ext}"
                for name in HOSTILE if name.isprintable() or "\n" in name for ext in ("jpg", "mp4")}
    assert expected <= set(links)
    assert "pwned" not in re.search(r"<title>[^<]*</title>", r.stdout)[0]


def test_a_record_read_back_cannot_put_markup_in_the_page(tmp_path):
    """Records are files a resumed run reads back: every value of theirs is text."""
    hostile = event(1, 40, 100, "a.event001.jpg")
    hostile["start_timecode"] = "<script>alert(1)</script>"
    hostile["peak_frame"] = '"><img src=x onerror=alert(1)>'
    record = scanned("a.mp4", [hostile], [0.0] * 30)
    record["width"] = "<b>w</b>"
    page = render_report([(record, tmp_path)], tmp_path, threshold=0.003)
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>w" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
