"""The package's layout: wings over shared bottom modules, imports going downward only.

Read from the source with :mod:`ast` (every import, including those inside
functions and under ``TYPE_CHECKING``), so that a lazy import cannot hide an
upward dependency or a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bgsub"

# floor of each wing: a module may import its own wing and lower floors only
FLOORS = {
    "bottom": 0,  # _version, errors, labels, timecode, regions, files, config
    "model": 1,
    "io": 2,
    "scan": 3,
    "eval": 3,
    "live": 4,
    "cli": 5,
    "top": 6,  # bgsub/__init__.py (the public names) and __main__
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _wing(module: str) -> str:
    parts = module.split(".")
    if module in ("bgsub", "bgsub.__main__", "bgsub.opencv"):
        return "top"
    if len(parts) > 2 or parts[1] in FLOORS and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return "bottom"


def _imports(path: Path) -> set[str]:
    """The bgsub modules *path* imports (a name imported from a package counts as its module)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "bgsub")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "bgsub":
                target = node.module
            else:
                continue
            found.add(target)
            for alias in node.names:  # from .pkg import module
                candidate = f"{target}.{alias.name}"
                if _exists(candidate):
                    found.add(candidate)
    found.discard(module)
    return found


def _exists(module: str) -> bool:
    path = PACKAGE.parent / module.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def test_the_graph_is_read():
    assert "bgsub.model.masker" in GRAPH["bgsub.model.step"]
    assert "bgsub.model.kernels.layout" in GRAPH["bgsub.model.kernels.frame"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_downward(module):
    wing = _wing(module)
    for target in sorted(GRAPH[module]):
        other = _wing(target)
        assert FLOORS[other] < FLOORS[wing] or other == wing, (
            f"{module} ({wing}) imports {target} ({other}): a wing imports only its own "
            "modules and lower floors")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "bgsub"))
def test_nothing_imports_the_package_init(module):
    assert "bgsub" not in GRAPH[module], (
        f"{module} imports bgsub/__init__.py (the public names); import the module itself")


def test_no_circle():
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(GRAPH.get(node, ())):
            if target not in GRAPH:
                continue
            if state.get(target) == 1:
                circle = path[path.index(target):] + [target]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
