"""The package's shape: data flows one way, no module imports one that imports it back."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bgsub"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The bgsub modules a module imports at import time (not under TYPE_CHECKING)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("bgsub")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not target.startswith("bgsub"):
                continue
            found.add(target)
            for alias in node.names:  # "from . import run" imports the module bgsub.cli.run
                if (PACKAGE.parent / f"{target}.{alias.name}".replace(".", "/")).with_suffix(
                        ".py").exists():
                    found.add(f"{target}.{alias.name}")
    return found - {name}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules} for name, path in
            modules.items()}


def test_no_import_cycles():
    g = graph()
    # a package's __init__ re-exports its modules: importing a submodule runs it first,
    # which is not a cycle of the modules themselves
    edges = {m: {d for d in deps if not (m.startswith(d + ".") and d in g)} for m, deps in
             g.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for d in edges[m]:
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(d):] + [d]))
            if d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in edges:
        if m not in state:
            visit(m)


def test_the_masker_knows_no_files_windows_or_commands():
    g = graph()
    seen, todo = set(), ["bgsub.model.masker"]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(g[m])
    assert not seen & {"bgsub.io.sources", "bgsub.io.sinks", "bgsub.io.display", "bgsub.io.pipeline",
                       "bgsub.cli", "bgsub.eval.cdnet"}, seen


def test_dask_is_loaded_only_for_a_cluster_scan():
    # the scan command and the distributed module import it inside the functions that
    # run on a cluster: a local scan, and the core install, never need it
    import subprocess
    import sys

    code = ("import sys, bgsub, bgsub.cli, bgsub.cli.scan, bgsub.scan.cluster\n"
            "from bgsub.cli import main\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
            "assert not loaded, loaded\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=PACKAGE.parent, timeout=120)
    assert r.returncode == 0, r.stderr
