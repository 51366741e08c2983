"""The documentation: one source per fact, sizes, the benchmarks' tables, and the built site.

config.toml's comments and the configuration reference are made from the
configuration dataclasses' field metadata (docs/configref.py); these tests keep
the three in step, keep README.md and config.toml short and free of a
development journal, and build the site (when MkDocs is installed), serve it on
127.0.0.1 and follow every internal link, and look at it in headless Chromium.
"""

from __future__ import annotations

import dataclasses
import functools
import html.parser
import http.server
import importlib.util
import re
import shutil
import subprocess
import sys
import threading
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from bgsub.config import Config, config_from_mapping
from kit import ROOT, cli_env

DOCS = ROOT / "docs"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
MKDOCS = importlib.util.find_spec("mkdocs") is not None


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


configref = load("configref", DOCS / "configref.py")
doctables = load("doctables", ROOT / "benchmarks" / "doctables.py")


def every_field():
    for name, cls in configref.sections():
        for field in dataclasses.fields(cls):
            yield name, field


# --- one source per fact ---------------------------------------------------------------

def test_every_setting_has_a_description_a_unit_and_a_range():
    for section, field in every_field():
        meta = field.metadata
        assert meta.get("doc", "").strip(), f"{section}.{field.name} has no metadata doc"
        assert "unit" in meta and "range" in meta, f"{section}.{field.name}"
        assert "\n" not in meta["doc"] and len(meta["doc"]) <= 100, f"{section}.{field.name}"


def test_config_toml_holds_every_field_with_its_default():
    data = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    assert list(data) == [name for name, _ in configref.sections()]
    for section, field in every_field():
        assert field.name in data[section], f"{section}.{field.name} missing from config.toml"
    for section, values in data.items():
        assert list(values) == [f.name for f in dataclasses.fields(dict(configref.sections())[section])]
    assert config_from_mapping(data) == Config()


def test_config_toml_is_written_from_the_metadata():
    """Each key's comment is its metadata, one to three lines: python docs/configref.py --write."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    assert text == configref.config_toml(), "stale: run python docs/configref.py --write"
    lines = text.splitlines()
    keys = [i for i, line in enumerate(lines) if re.match(r"^[a-z_]+ = ", line)]
    assert len(keys) == sum(1 for _ in every_field())
    for i in keys:
        above = 0
        while lines[i - above - 1].startswith("# "):
            above += 1
        assert 1 <= above <= 3, lines[i]
        assert all(len(line) <= 79 for line in lines[i - above:i])


def test_the_reference_lists_every_field_with_its_default():
    page = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    filled = configref.fill_markers(page)
    assert "<!-- config:" not in filled, "a marker names no section"
    for section, field in every_field():
        default = configref.toml_value(getattr(getattr(Config(), section), field.name))
        row = re.search(rf"^\| <span id=\"{section}\.{field.name}\">.*$", filled, re.MULTILINE)
        assert row, f"{section}.{field.name} is not in the configuration reference"
        assert f"`{default}`" in row.group() and field.metadata["doc"] in row.group()


# --- short texts about the product --------------------------------------------------------

def test_readme_and_config_toml_fit_in_8_kb():
    assert (ROOT / "README.md").stat().st_size <= 8192
    assert (ROOT / "config.toml").stat().st_size <= 8192


# a development journal's marks: "this machine", "this session", a commit or its hash
JOURNAL = re.compile(r"\bthis\b[\w -]{0,12}\b(machine|session)\b|\bcommit\b"
                     r"|\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b", re.IGNORECASE)


def project_texts():
    return [ROOT / "README.md", ROOT / "config.toml", *sorted(DOCS.rglob("*.md"))]


def test_the_texts_describe_the_product_not_how_it_was_made():
    for path in project_texts():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not JOURNAL.search(line), f"{path.relative_to(ROOT)}:{number}: {line}"


def test_the_journal_check_catches_what_it_is_for():
    assert JOURNAL.search("measured from its commit (dafb3cf)")
    assert JOURNAL.search("on this 2-core machine")
    assert JOURNAL.search("alternating with e2b4f50 in this session")
    assert not JOURNAL.search("F 0.8682 against 0.8683, 1920x1080, 2.19x, `bgsub-scan-events`")


def sh_blocks(text: str) -> list[str]:
    return [line.strip() for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL)
            for line in block.splitlines()]


def test_ci_runs_the_readme_commands():
    readme = sh_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    for command in ('python -m pip install -e ".[test,dask]"', "bgsub videos/sample.mp4",
                    "python -m pytest"):
        assert command in readme, command
        assert command in ci, command
    assert any(line.startswith("NO_MKDOCS_2_WARNING=1 mkdocs build --strict") for line in ci)


def test_the_readme_links_lead_somewhere():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if not urllib.parse.urlsplit(link).scheme]
    assert "docs/reference/configuration.md" in local and "CHANGELOG.md" in local
    for link in local:
        assert (ROOT / link).is_file(), link


# --- the benchmarks' tables ----------------------------------------------------------------

PAGE = """# Speed

Text before.

<!-- table:speed -->
| a | b |
|---|---|
| 1 | 2 |
<!-- /table:speed -->

Text after, <!-- table:speed --> quoted inline.
"""


def test_a_benchmark_replaces_only_its_table():
    out = doctables.replace_table(PAGE.replace("Text after, <!-- table:speed --> quoted inline.",
                                               "Text after."), "speed",
                                  "| a | b |\n|---|---|\n| 3 | 4 |\n")
    assert out == ("# Speed\n\nText before.\n\n<!-- table:speed -->\n| a | b |\n|---|---|\n"
                   "| 3 | 4 |\n<!-- /table:speed -->\n\nText after.\n")
    # replacing again with the same table changes nothing
    assert doctables.replace_table(out, "speed", "| a | b |\n|---|---|\n| 3 | 4 |") == out


def test_a_page_without_exactly_one_pair_of_markers_is_refused():
    with pytest.raises(ValueError, match="table:accuracy"):
        doctables.replace_table(PAGE, "accuracy", "| x |")
    with pytest.raises(ValueError, match="one"):
        doctables.replace_table(PAGE, "speed", "| x |")  # a second opening marker
    with pytest.raises(ValueError):
        doctables.replace_table("<!-- /table:speed -->\n<!-- table:speed -->\n", "speed", "| x |")


def test_write_table_rewrites_a_page_in_place(tmp_path):
    page = tmp_path / "speed.md"
    page.write_text(PAGE.replace(" <!-- table:speed --> quoted inline", ""), encoding="utf-8")
    assert doctables.write_table(page, "speed", "| z |") == page
    assert "<!-- table:speed -->\n| z |\n<!-- /table:speed -->" in page.read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["speed.md"]  # no temporary left


@pytest.mark.parametrize("page, name", [
    ("accuracy.md", "accuracy"), ("accuracy.md", "leave-one-out"), ("accuracy.md", "mechanisms"),
    ("accuracy.md", "events"), ("accuracy.md", "trees"), ("speed.md", "speed"),
    ("scan.md", "confidence"), ("scene.md", "rain"), ("scene.md", "scene"), ("serve.md", "serve")])
def test_the_pages_hold_the_tables_the_benchmarks_write(page, name):
    text = (DOCS / page).read_text(encoding="utf-8")
    table = re.search(rf"<!-- table:{name} -->\n(.*?)\n<!-- /table:{name} -->", text, re.DOTALL)
    # a block may open with the run's setup line, but it holds a table: a header and its rule
    assert table and re.search(r"^\| .*\|\n\|(---\|)+", table.group(1), re.MULTILINE)
    assert doctables.replace_table(text, name, table.group(1)) == text


def docs_table(page: str, name: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.search(rf"<!-- table:{name} -->\n(.*?)\n<!-- /table:{name} -->", text,
                     re.DOTALL).group(1).splitlines()


def test_the_benchmarks_write_the_pages_tables_in_their_shape(monkeypatch):
    """Given a row's numbers, each benchmark writes the line the page holds for them."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import accuracy_table
    import bench_fps

    speed = docs_table("speed.md", "speed")
    assert speed[0].startswith("Setup: ") and speed[1] == ""  # the run's setup above its table
    speed = speed[2:]
    for size in ("640x480", "1920x1080"):
        row = next(line for line in speed if line.startswith(f"| {size} | BGR |"))
        cells = [c.strip("* ") for c in row.strip("|").split("|")]
        ours, mog2, ratio, state, copy = (float(cells[i]) for i in (2, 3, 4, 5, 6))
        written = bench_fps.markdown_table([(size, "BGR", ours, mog2, ratio, state, copy)])
        assert written.splitlines()[:2] == speed[:2]
        assert written.splitlines()[2] == row

    accuracy = docs_table("accuracy.md", "accuracy")
    row = next(line for line in accuracy if line.startswith("| highway | bgsub |"))
    values = [float(c.strip("* ")) for c in row.strip("|").split("|")[2:]]
    metrics = {key: value for (key, _), value in zip(accuracy_table.METRICS, values)}
    data = {"sequences": [{"name": "highway", "results": {"bgsub": metrics}}],
            "mean": {"bgsub": metrics}}
    written = accuracy_table.table(data).splitlines()
    assert written[:2] == accuracy[:2] and written[2] == row


# --- the site, built, served and looked at ---------------------------------------------------

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built with --strict and served on 127.0.0.1: its base URL and folder."""
    if not MKDOCS:
        pytest.skip('mkdocs is not installed (python -m pip install -e ".[docs]"); '
                    "the site's build and link checks need it")
    out = tmp_path_factory.mktemp("site")
    env = cli_env(NO_MKDOCS_2_WARNING="1", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                        str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", out
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _Links(html.parser.HTMLParser):
    """The links (a, link, img, script) and the ids of a page."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        target = attrs.get("href") if tag in ("a", "link") else attrs.get("src")
        if target and tag in ("a", "link", "img", "script"):
            self.links.append(target)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200, url
        return response.read()


def parse(body: bytes) -> _Links:
    parser = _Links()
    parser.feed(body.decode("utf-8"))
    return parser


def test_every_internal_link_of_every_page_resolves(site):
    base, folder = site
    pages = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.html"))
    assert {"index.html", "reference/configuration/index.html", "reference/api/index.html",
            "accuracy/index.html", "speed/index.html", "changelog/index.html"} <= set(pages)
    parsed: dict[str, _Links] = {}

    def page(url: str) -> _Links:
        if url not in parsed:
            parsed[url] = parse(fetch(url))
        return parsed[url]

    checked = 0
    for name in pages:
        if name == "404.html":
            continue
        url = urllib.parse.urljoin(base, name)
        for link in page(url).links:
            parts = urllib.parse.urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("mailto:"):
                continue  # outside the site
            target = urllib.parse.urljoin(url, link)
            path = urllib.parse.urldefrag(target).url
            try:
                if path.endswith("/") or path.endswith(".html"):
                    ids = page(path).ids
                    fragment = urllib.parse.unquote(parts.fragment)
                    assert not fragment or fragment in ids, f"{name}: {link}: no #{fragment}"
                else:
                    fetch(path)
            except urllib.error.HTTPError as exc:
                pytest.fail(f"{name}: {link} -> {exc.code}")
            checked += 1
    assert checked > 500  # every page's navigation links every other page


def test_the_link_check_sees_a_broken_link(site, tmp_path):
    """The parser finds links and ids as the check above needs them."""
    links = parse(b'<a href="../x/#y">x</a><h2 id="y">y</h2><img src="i.png"><a name="n"></a>')
    assert links.links == ["../x/#y", "i.png"] and links.ids == {"y", "n"}
    base, _ = site
    with pytest.raises(urllib.error.HTTPError):
        fetch(urllib.parse.urljoin(base, "no-such-page/"))


def chromium(*args, tmp_path):
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                           *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(BROWSER is None, reason="no chromium installed (Debian: apt-get install "
                    "chromium); the site's browser check needs it")
def test_a_browser_shows_the_site(site, tmp_path):
    base, _ = site
    for path, title, content in [
            ("", "bgsub", "Three ways to use it"),
            ("reference/configuration/", "Configuration - bgsub", "model.k"),
            ("reference/api/", "API - bgsub", "MixtureMasker")]:
        url = urllib.parse.urljoin(base, path)
        r = chromium("--virtual-time-budget=5000", "--dump-dom", url, tmp_path=tmp_path)
        dom = r.stdout
        assert re.search(rf"<title>{re.escape(title)}</title>", dom), (url, r.stderr[-2000:])
        article = re.search(r"<article[^>]*>(.*?)</article>", dom, re.DOTALL)
        assert article and content in article.group(1), url
    shot = tmp_path / "index.png"
    chromium("--window-size=1200,900", f"--screenshot={shot}", base, tmp_path=tmp_path)
    assert shot.stat().st_size > 10_000  # a page, not a blank
