"""The layering rules of docs/design.md, checked on the source.

Imports are read from the syntax tree, not by importing: every ``import`` statement counts,
at module level or inside a function (a lazy import is still a dependency), and so do the
ones under ``if TYPE_CHECKING:`` (a circle of type hints is still a circle to a reader).
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNTIMES = ("explorer._asyncio", "explorer._trio")
MAX_LINES = 1000


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    lineno: int
    lazy: bool  # inside a function body: runs when called, not when imported


def _modules() -> dict[str, Path]:
    """Module name -> file, for the package and the strategies (installed as
    ``explorer.strategies`` from the top-level ``strategies/`` directory)."""
    found: dict[str, Path] = {}
    trees = [(ROOT / "explorer", "explorer"), (ROOT / "strategies", "explorer.strategies")]
    for base, prefix in trees:
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base)
            if rel.parts[0] == "strategies" and prefix == "explorer":
                continue  # the checkout's link to ../strategies
            parts = [prefix, *rel.with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package modules an import statement loads (the module itself for
    ``from pkg import submodule``, the package for ``from pkg import name``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = module.split(".")
        if MODULES[module].name != "__init__.py":
            package.pop()
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    subs = [f"{base}.{alias.name}" for alias in node.names]
    named = [sub for sub in subs if sub in MODULES]
    return named if len(named) == len(subs) else [*named, base]


def _edges() -> Iterator[Edge]:
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))

        def visit(node: ast.AST, lazy: bool, module: str = module) -> Iterator[Edge]:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.Import | ast.ImportFrom):
                    for target in _targets(module, child):
                        if target.startswith("strategies"):  # the name it must not use
                            target = "top-level " + target
                        yield Edge(module, target, child.lineno, lazy)
                inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef
                                           | ast.Lambda)
                yield from visit(child, inner)

        yield from visit(tree, False)


EDGES = list(_edges())


def _inside(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _where(edge: Edge) -> str:
    return f"{MODULES[edge.source].relative_to(ROOT)}:{edge.lineno} imports {edge.target}"


def test_the_checker_sees_the_package() -> None:
    assert {"explorer", "explorer._engine", "explorer.strategies",
            "explorer.strategies._dpor", "explorer._asyncio._loop",
            "explorer._trio._runner"} <= set(MODULES)
    assert any(e.source == "explorer._engine" and e.target == "explorer._schedule"
               for e in EDGES)
    assert any(e.lazy and e.target == "explorer._trio._runner" for e in EDGES)


def test_no_import_cycles() -> None:
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    graph.add_edges_from((e.source, e.target) for e in EDGES
                         if e.target in MODULES and e.target != e.source)
    circles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not circles, "import circles (lazy and TYPE_CHECKING imports count):\n" + "\n".join(
        " <-> ".join(c) for c in circles)


def test_runtimes_are_loaded_lazily_and_only_from_outside() -> None:
    """Nothing outside a runtime package imports it at module level (the engine loads the
    runtime it is asked for when it is asked), and neither runtime imports the other."""
    wrong = [_where(e) for e in EDGES
             if _inside(e.target, RUNTIMES) and not e.lazy
             and not _inside(e.source, RUNTIMES)]
    for runtime in RUNTIMES:
        other = tuple(r for r in RUNTIMES if r != runtime)
        wrong += [_where(e) for e in EDGES
                  if _inside(e.source, (runtime,)) and _inside(e.target, other)]
    assert not wrong, "\n".join(wrong)


def test_strategies_know_no_runtime() -> None:
    """A strategy sees candidate counts and descriptions only."""
    wrong = [_where(e) for e in EDGES if _inside(e.source, ("explorer.strategies",))
             and _inside(e.target, (*RUNTIMES, "explorer._monitoring"))]
    assert not wrong, "\n".join(wrong)


def test_strategies_are_imported_as_explorer_strategies() -> None:
    wrong = [_where(e) for e in EDGES if e.target.startswith("top-level ")]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_source_file_over_a_thousand_lines(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module].relative_to(ROOT)} has {lines} lines"


def test_explore_and_the_cli_share_the_default_strategy() -> None:
    from typer.main import get_command

    from explorer import cli, explore

    default = inspect.signature(explore).parameters["strategy"].default
    command = get_command(cli.app)
    explore_command = command.commands["explore"]  # type: ignore[attr-defined]
    option = next(p for p in explore_command.params if p.name == "strategy")
    assert option.default in (default, None)
    if option.default is None:  # taken from the shared settings when not given
        from explorer._settings import Settings

        assert Settings().strategy == default


def test_every_package_is_installed() -> None:
    """pyproject.toml lists the packages by hand (one is mapped from ``strategies/``): a new
    subpackage missing from the list would be absent from a built wheel."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    packages = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert packages == listed
