"""The package's shape: no import circles, no oversized modules.

Imports are read with `ast`, so every one counts: at module level, under `if TYPE_CHECKING:`, and
deferred inside a function (a deferred import hides a circle from the interpreter, not from the
reader). `from package import name` depends on the submodule `package.name` when there is one,
otherwise on the package's `__init__`; importing a submodule is not counted as depending on its
parent packages, which every package's own `__init__` would otherwise turn into a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "torrentpy"
MAX_MODULE_LINES = 700
# Lifecycle, event dispatch, announces, resume saves and the seeding goal only (issue 9).
MAX_TORRENT_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The torrentpy modules `name` imports, anywhere in its source."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in known else source)
    return {m for m in found if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, …, a], or None (iterative DFS, colours white/grey/black)."""
    state: dict[str, int] = {}
    for start in sorted(graph):
        if state.get(start):
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                stack.pop()
                path.pop()
                state[node] = 2
                continue
            nxt = todo.pop(0)
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(graph[nxt])))
    return None


def test_the_cycle_finder_finds_a_planted_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _find_cycle(graph) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_import_reader_sees_type_checking_and_deferred_imports() -> None:
    graph = _graph()
    # engine/host.py imports net.peer only under TYPE_CHECKING; storage/files.py imports the layout
    # at module level: both edges must be seen, or the circle check below proves nothing.
    assert "torrentpy.net.peer" in graph["torrentpy.engine.host"]
    assert "torrentpy.storage.layout" in graph["torrentpy.storage.files"]
    assert "torrentpy.protocol.events" in graph["torrentpy.protocol"]


def test_no_import_circle_among_torrentpy_modules() -> None:
    cycle = _find_cycle(_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_no_module_over_700_lines() -> None:
    lengths = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    too_long = {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def test_torrent_keeps_to_its_lifecycle() -> None:
    n = len((PACKAGE / "engine" / "torrent.py").read_text().splitlines())
    assert n <= MAX_TORRENT_LINES, f"engine/torrent.py has {n} lines, the bound is {MAX_TORRENT_LINES}"
