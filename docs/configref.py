"""config.toml and the configuration reference, both made from ``bgsub/config.py``.

Every setting is a field of one of the configuration dataclasses; its metadata
(``doc``, ``unit``, ``range``) says what it does.  From that one source come

* ``config.toml``'s comments, one to three lines a key, with every default
  (``python docs/configref.py --write`` rewrites the file, ``--check`` says
  whether it is current), and
* the tables of the documentation's configuration reference (``docs/hooks.py``
  puts them in place of the ``<!-- config:SECTION -->`` markers).

``tests/test_docs.py`` keeps the three in step.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bgsub.config import Config  # noqa: E402
from bgsub.timecode import Duration  # noqa: E402

TOML = ROOT / "config.toml"
WIDTH = 79

HEADER = """\
# bgsub configuration: every key with its default; a key left out takes it.
# Read from ./config.toml or --config FILE; --set section.key=value overrides.
# What each default rests on: docs/reference/configuration.md.
"""


def sections() -> list[tuple[str, type]]:
    """The ``[section]`` names of config.toml and their dataclasses, in order."""
    return [(f.name, f.default_factory) for f in dataclasses.fields(Config)]  # type: ignore[misc]


def summary(cls: type) -> str:
    """The first line of a section's docstring, as plain text."""
    line = inspect.getdoc(cls).splitlines()[0]
    line = re.sub(r" \(see :[a-z]+:`[^`]*`\)", "", line)
    return re.sub(r":[a-z]+:`~?([^`]*)`", r"\1", line).replace("``", "")


def toml_value(value: Any) -> str:
    """*value* written as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Duration):  # as a setting writes it: 45, "1.5s"
        return toml_value(value.setting())
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def describe(field: dataclasses.Field) -> tuple[str, str]:
    """A field's description, and its unit and range ("" when it has neither)."""
    meta = field.metadata
    valid = meta.get("range", "")
    if valid:
        valid = ("one of " if valid.startswith('"') else "") + valid
    extra = ", ".join(part for part in (meta.get("unit", ""), valid) if part)
    return meta["doc"], f"({extra})" if extra else ""


def comment(text: str) -> list[str]:
    """*text* as comment lines of at most WIDTH characters."""
    return [f"# {line}\n" for line in textwrap.wrap(text, WIDTH - 2, break_on_hyphens=False,
                                                      break_long_words=False)]


def config_toml() -> str:
    """The text of config.toml: every section and key, its default and comment."""
    out = [HEADER]
    defaults = Config()
    for name, cls in sections():
        out.append("\n")
        out.extend(comment(summary(cls)))
        out.append(f"[{name}]\n")
        for field in dataclasses.fields(cls):
            doc, extra = describe(field)
            # the unit and range are never cut between two lines
            text = f"{doc} {extra.replace(' ', chr(0xA0))}" if extra else doc
            out.extend(line.replace(chr(0xA0), " ") for line in comment(text))
            out.append(f"{field.name} = {toml_value(getattr(getattr(defaults, name), field.name))}\n")
    return "".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference_table(name: str) -> str:
    """The Markdown table of one section: key, default, unit, range, what it does."""
    cls = dict(sections())[name]
    defaults = getattr(Config(), name)
    lines = [f"*{summary(cls)}*", "",
             "| key | default | unit | range | what it does |", "|---|---|---|---|---|"]
    for field in dataclasses.fields(cls):
        meta = field.metadata
        default = toml_value(getattr(defaults, field.name))
        lines.append(f'| <span id="{name}.{field.name}">`{name}.{field.name}`</span> '
                     f"| `{_cell(default)}` | {_cell(meta.get('unit', ''))} "
                     f"| {_cell(meta.get('range', ''))} | {_cell(meta['doc'])} |")
    return "\n".join(lines)


def fill_markers(markdown: str) -> str:
    """*markdown* with each ``<!-- config:SECTION -->`` replaced by that section's table."""
    for name, _ in sections():
        markdown = markdown.replace(f"<!-- config:{name} -->", reference_table(name))
    return markdown


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write or check config.toml from bgsub/config.py.")
    ap.add_argument("--write", action="store_true", help="rewrite config.toml")
    ap.add_argument("--check", action="store_true", help="exit 1 when config.toml is stale")
    args = ap.parse_args(argv)
    text = config_toml()
    if args.write:
        TOML.write_text(text, encoding="utf-8")
    elif args.check:
        if TOML.read_text(encoding="utf-8") != text:
            print("config.toml is stale: python docs/configref.py --write", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
