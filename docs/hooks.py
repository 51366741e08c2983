"""MkDocs hooks: the pages made from the code and the repository.

* ``reference/configuration.md``: each ``<!-- config:SECTION -->`` marker becomes
  the table of that section's keys, made from the configuration dataclasses'
  field metadata (``docs/configref.py``);
* ``changelog.md``: the repository's ``CHANGELOG.md``, so that the site shows it
  without a copy to keep in step.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mkdocs.structure.files import File

HERE = Path(__file__).resolve().parent


def _configref():
    spec = importlib.util.spec_from_file_location("bgsub_docs_configref", HERE / "configref.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def on_files(files, config):
    changelog = (HERE.parent / "CHANGELOG.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "changelog.md", content=changelog))
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "reference/configuration.md":
        return _configref().fill_markers(markdown)
    return markdown
