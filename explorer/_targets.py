"""Naming scenarios from the outside: command-line targets and project configuration.

Invariant: a :class:`TargetRef` is plain data (strings), never a function. Worker processes
and cluster machines receive the reference and import the scenario themselves, so nothing
is pickled but names.

A target is one of::

    path/to/file.py::function          a file (also a pytest node id: tests/test_x.py::test_y)
    path/to/file.py                    every function in the file marked @pytest.mark.explore
    package.module:function            an importable module and a (dotted) attribute
    package.module.function            the dotted name a corpus entry records

A file is imported the way pytest's default ``prepend`` import mode does: its directory
(or the top of its package, for a file inside directories with ``__init__.py``) goes on
``sys.path`` and the module gets its dotted name from there, so a scenario explored from
the command line has the same name as when pytest runs it, and corpus entries match.

Options for a target come from its ``@pytest.mark.explore(...)`` marker (or the settings of
its ``@explored(...)`` decorator) or its entry in ``[tool.explorer] targets`` of
``pyproject.toml``; command-line flags override both. They are settings layers (see
:mod:`explorer._settings`, which checks them): plain names and numbers, never objects.
One option is the ``runtime`` (``"asyncio"`` or ``"trio"``): a test marked with
pytest-trio's ``@pytest.mark.trio`` (or in a module marked so) defaults to ``"trio"``, as
under the pytest plugin.
"""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import os
import subprocess
import sys
import tomllib
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from explorer._errors import ExplorerError, UsageError
from explorer._settings import NAMES, Settings

MARKER: Final = "explore"
TRIO_MARKER: Final = "trio"  # pytest-trio's: makes runtime="trio" the default


class TargetError(ExplorerError, LookupError):
    """A target cannot be parsed, imported or explored; the message says which and why."""


@dataclass(frozen=True)
class TargetRef:
    """A scenario named by ``module`` and ``attr`` (dotted), plus where to import it from.

    ``spec`` is how the user wrote it (for messages); ``paths`` are directories to put on
    ``sys.path`` first; ``options`` are defaults from configuration or the pytest marker;
    ``file`` is the source file a file target names (the import must find that one).
    """

    spec: str
    module: str
    attr: str
    paths: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    file: str | None = None

    @property
    def canonical(self) -> str:
        """``module:attr`` when the attribute is known, else the dotted name."""
        return f"{self.module}:{self.attr}" if self.attr else self.module

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec, "module": self.module, "attr": self.attr,
                "paths": list(self.paths), "options": dict(self.options), "file": self.file}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TargetRef:
        return cls(str(data["spec"]), str(data["module"]), str(data["attr"]),
                   tuple(str(p) for p in data.get("paths", ())), dict(data.get("options", {})),
                   data.get("file"))


@dataclass(frozen=True)
class Resolved:
    """An imported target: the function, its scenario name, and its effective options."""

    ref: TargetRef
    fn: Callable[..., Any]
    name: str
    options: Mapping[str, Any]


def module_for_file(path: Path) -> tuple[str, Path]:
    """The dotted module name of ``path`` and the directory it is importable from."""
    path = path.resolve()
    parts = [path.stem]
    base = path.parent
    while (base / "__init__.py").is_file():
        parts.insert(0, base.name)
        base = base.parent
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts), base


def parse_target(spec: str, *, cwd: Path | None = None) -> TargetRef:
    """Parse a target string (see the module docstring) without importing anything."""
    text = spec.strip()
    cwd = cwd or Path.cwd()
    if not text:
        raise TargetError("an empty target; write path/to/file.py::function or "
                          "package.module:function")
    if "[" in text:
        raise TargetError(f"target {spec!r} names a parametrized test; the command line can "
                          "only explore functions that take no arguments: run it with pytest, "
                          "or give the scenario its own module-level function")
    file_part, sep, rest = text.partition("::")
    if sep or file_part.endswith(".py"):
        path = Path(file_part)
        path = path if path.is_absolute() else cwd / path
        if not path.is_file():
            raise TargetError(f"target {spec!r}: no file {file_part} (relative to {cwd}); "
                              "check the path, or run from the project root")
        module, base = module_for_file(path)
        attr = ".".join(p for p in rest.split("::") if p)
        return TargetRef(text, module, attr, (str(base),), file=str(path.resolve()))
    module, colon, attr = text.partition(":")
    if colon:
        if not module or not attr or not _dotted(module) or not _dotted(attr):
            raise TargetError(f"target {spec!r} is not package.module:function")
        return TargetRef(text, module, attr)
    if not _dotted(text) or "." not in text:
        raise TargetError(f"target {spec!r} is not a target: write path/to/file.py::function, "
                          "package.module:function or package.module.function")
    return TargetRef(text, text, "")


def _dotted(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def add_paths(paths: Iterable[str]) -> None:
    """Put directories at the front of ``sys.path`` (once each)."""
    for entry in reversed(list(paths)):
        if entry not in sys.path:
            sys.path.insert(0, entry)


TEST_FILES: Final = ("test_*.py", "*_test.py", "conftest.py")
"""pytest's default ``python_files`` (and conftest): the files whose asserts it rewrites."""


def is_test_file(path: str) -> bool:
    name = os.path.basename(path)
    return any(fnmatch.fnmatch(name, pattern) for pattern in TEST_FILES)


class _RewritingLoader(importlib.machinery.SourceFileLoader):
    """Loads a test file with pytest's assertion rewriting, so that a failed ``assert``
    says what pytest says (``assert [200, 200] == [200, 409]``), not ``AssertionError``
    with no message. The rewritten code is never cached: the ``__pycache__`` entry of a
    plain import stays the plain one."""

    def get_code(self, fullname: str) -> types.CodeType:
        from _pytest.assertion.rewrite import rewrite_asserts

        path = self.get_filename(fullname)
        source = self.get_data(path)
        tree = ast.parse(source, filename=path)
        rewrite_asserts(tree, source, path, None)  # honours a PYTEST_DONT_REWRITE docstring
        return compile(tree, path, "exec", dont_inherit=True)


class _RewritingFinder(importlib.abc.MetaPathFinder):
    """Finds modules as the path finder does; test files get :class:`_RewritingLoader`."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        origin = spec.origin if spec is not None else None
        if spec is None or origin is None or not origin.endswith(".py") or \
                not is_test_file(origin):
            return None
        return importlib.util.spec_from_file_location(
            fullname, origin, loader=_RewritingLoader(fullname, origin),
            submodule_search_locations=spec.submodule_search_locations)


@contextlib.contextmanager
def rewriting_asserts() -> Iterator[None]:
    """While inside, test files (see :data:`TEST_FILES`) are imported with pytest's
    assertion rewriting, as pytest imports them; other modules import as usual."""
    try:
        import _pytest.assertion.rewrite  # noqa: F401 - pytest is optional for targets
    except ImportError:
        yield
        return
    finder = _RewritingFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(finder)


def _import_module(name: str) -> Any:
    with rewriting_asserts():
        return importlib.import_module(name)


def _import(ref: TargetRef, module: str) -> Any:
    try:
        imported = _import_module(module)
    except ImportError as exc:
        if exc.name is not None and module.startswith(exc.name) and (
                module == exc.name or module.startswith(exc.name + ".")):
            raise TargetError(f"target {ref.spec!r}: no module named {exc.name!r}; check the "
                              "spelling, install the project, or run from the project root "
                              "(or add it to [tool.explorer] pythonpath)") from None
        raise TargetError(f"target {ref.spec!r}: importing {module} failed: "
                          f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise TargetError(f"target {ref.spec!r}: importing {module} raised "
                          f"{type(exc).__name__}: {exc}") from exc
    location = getattr(imported, "__file__", None)
    if ref.file and location:
        actual = Path(location).resolve()
        if actual != Path(ref.file):
            raise TargetError(f"target {ref.spec!r}: a different module named {module} was "
                              f"already imported from {actual}; rename one of them")
    return imported


def _lookup(ref: TargetRef, obj: Any, attr: str) -> Any:
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"target {ref.spec!r}: {ref.module} has no attribute "
                              f"{attr!r}") from None
    return obj


def resolve(ref: TargetRef) -> Resolved:
    """Import the target and check it is a scenario: an async function taking no arguments."""
    from explorer._engine import scenario_name
    from explorer._explored import EXPLORED_ATTR, SETTINGS_ATTR

    add_paths(ref.paths)
    fn = _lookup(ref, _import(ref, ref.module), ref.attr) if ref.attr else _resolve_dotted(ref)
    explored: dict[str, Any] = {}
    if getattr(fn, EXPLORED_ATTR, False) and callable(getattr(fn, "__wrapped__", None)):
        # An @explored test: explore the async function it wraps, with its settings.
        explored = {k: v for k, v in dict(getattr(fn, SETTINGS_ATTR, None) or {}).items()
                    if _fits(k, v)}
        fn = fn.__wrapped__
    if not callable(fn):
        raise TargetError(f"target {ref.spec!r} is a {type(fn).__name__}, not an async "
                          "function")
    if not inspect.iscoroutinefunction(fn):
        raise TargetError(f"target {ref.spec!r} is not an async function; a scenario is "
                          "defined with 'async def'")
    required = [p.name for p in inspect.signature(fn).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                                       p.POSITIONAL_OR_KEYWORD,
                                                       p.KEYWORD_ONLY)]
    if required:
        raise TargetError(f"target {ref.spec!r} takes arguments ({', '.join(required)}); a "
                          "command-line target must take none: wrap it in a scenario "
                          "function without arguments (fixtures need pytest)")
    return Resolved(ref, fn, scenario_name(fn),
                    {**explored, **marker_options(fn), **ref.options})


def _resolve_dotted(ref: TargetRef) -> Any:
    parts = ref.module.split(".")
    for split in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:split])
        try:
            module = _import_module(name)
        except ImportError:
            continue
        return _lookup(ref, module, ".".join(parts[split:]))
    # Not importable as it stands: a test module in tests/ without __init__.py is
    # importable only the way pytest imports it, from its own directory.
    root = find_pyproject(Path.cwd())
    found = locate(ref.module, root.parent if root is not None else Path.cwd())
    if found is not None:
        add_paths(found.paths)
        return _lookup(found, _import(found, found.module), found.attr)
    raise TargetError(f"target {ref.spec!r}: no module of {ref.module} can be imported; "
                      "check the spelling, or run from the project root")


_SKIPPED_DIRS: Final = frozenset({"node_modules", "__pycache__", "site-packages", "venv",
                                  "build", "dist"})


def project_files(root: Path, name: str) -> Iterator[Path]:
    """Files called ``name`` under ``root``, skipping hidden directories, virtual
    environments and build output (a project's own code is not there)."""
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs
                            if not d.startswith(".") and d not in _SKIPPED_DIRS)
        if name in files:
            yield Path(directory) / name


def locate(scenario: str, root: Path) -> TargetRef | None:
    """The file target of a recorded scenario name (``test_cart.test_no_oversell``)
    under the project ``root``: the file whose module name, as pytest imports it, is the
    name's module part. None if there is no such file (or more than one)."""
    parts = scenario.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    for split in range(len(parts) - 1, 0, -1):
        module, attr = ".".join(parts[:split]), parts[split:]
        matches = [path for path in project_files(root, f"{parts[split - 1]}.py")
                   if module_for_file(path)[0] == module]
        if len(matches) == 1:
            return parse_target(f"{node_path(matches[0], root)}::{'::'.join(attr)}",
                                cwd=root)
        if matches:
            return None  # two files of one name: say nothing rather than guess
    return None


def node_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with forward slashes, as pytest writes node ids
    (the absolute path when it is outside the root)."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def needs_pytest(ref: TargetRef) -> bool:
    """Whether a file target is a test only pytest can set up: its function takes
    arguments (fixtures), or a ``conftest.py`` between the project root and the file may
    hold autouse fixtures or hooks. Read from the source, without importing it."""
    if ref.file is None or not ref.attr:
        return False
    path = Path(ref.file)
    root = find_pyproject(path.parent)
    top = root.parent if root is not None else path.parent
    directory = path.parent
    while True:
        if (directory / "conftest.py").is_file():
            return True
        if directory == top or directory == directory.parent:
            break
        directory = directory.parent
    return takes_fixtures(ref)


def takes_fixtures(ref: TargetRef) -> bool:
    """Whether a file target's test function takes arguments (fixtures, for pytest to
    give), read from the source without importing it."""
    if ref.file is None or not ref.attr:
        return False
    path = Path(ref.file)
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return False  # the import reports it, with pytest's help or without
    body: list[ast.stmt] = tree.body
    node: ast.stmt | None = None
    for name in ref.attr.split("."):
        node = next((n for n in body if isinstance(n, ast.ClassDef | ast.FunctionDef
                                                   | ast.AsyncFunctionDef)
                     and n.name == name), None)
        if node is None:
            return False
        body = node.body if isinstance(node, ast.ClassDef) else []
    if isinstance(node, ast.ClassDef) or node is None:
        return False
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    required = len(positional) - len(args.defaults) + sum(
        1 for default in args.kw_defaults if default is None)
    if "." in ref.attr:  # a test method: pytest makes the instance
        return True
    return required > 0


def node_id(scenario: str, root: Path) -> str | None:
    """The pytest node id of a recorded scenario name, relative to ``root``; None when
    no single file of the project defines it."""
    found = locate(scenario, root)
    return found.spec if found is not None else None


def replay_command(scenario: str, schedule: str, runtime: str = "asyncio", *,
                   root: Path | None = None, node: str | None = None) -> str:
    """The ``explorer replay`` line that replays ``schedule`` of ``scenario`` when run
    from the project ``root``: with the test's pytest node id (``node``, else found under
    ``root``), which works whether or not the test directory is a package; the recorded
    name only when no file of the project defines it."""
    import shlex

    target = node or (node_id(scenario, root) if root is not None else None) or scenario
    flag = f" --runtime {runtime}" if runtime != "asyncio" else ""
    # A schedule is quoted even when the shell would not need it: the line reads as the
    # documentation writes it, and a pasted schedule with a ';' or '|' stays one word.
    quoted = f"'{schedule}'" if "'" not in schedule else shlex.quote(schedule)
    return f"explorer replay {shlex.quote(target)} {quoted}{flag}"


def marker_options(fn: Any) -> dict[str, Any]:
    """Explore options from ``@pytest.mark.explore(...)``: the module's marker, overridden
    by the function's (the closest marker wins, as in the pytest plugin). Without a
    ``runtime`` among them, a ``@pytest.mark.trio`` on the function or its module makes it
    ``"trio"``."""
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    options: dict[str, Any] = {}
    trio = False
    for owner in (module, fn):
        for mark in _marks(owner):
            name = getattr(mark, "name", None)
            if name == MARKER:
                options.update({k: v for k, v in getattr(mark, "kwargs", {}).items()
                                if _fits(k, v)})
            trio = trio or name == TRIO_MARKER
    if trio:
        options.setdefault("runtime", "trio")
    return options


def _fits(key: str, value: Any) -> bool:
    """A setting the command line can pass on to worker processes (a Strategy instance,
    for one, is not); :class:`~explorer._settings.Settings` checks its value."""
    return (key in NAMES or key == "profile") and isinstance(value, str | int | float | bool)


def _marks(owner: Any) -> list[Any]:
    marks = getattr(owner, "pytestmark", ())
    return list(marks) if isinstance(marks, list | tuple) else [marks]


def is_marked(fn: Any, module: Any = None) -> bool:
    """Marked itself, or a ``test_`` function in a module marked as a whole."""
    if any(getattr(m, "name", None) == MARKER for m in _marks(fn)):
        return True
    return getattr(fn, "__name__", "").startswith("test") and any(
        getattr(m, "name", None) == MARKER for m in _marks(module))


def expand(ref: TargetRef) -> list[TargetRef]:
    """A whole-file target becomes one target per marked async function in it."""
    if ref.attr or not ref.paths:
        return [ref]
    add_paths(ref.paths)
    module = _import(ref, ref.module)
    names = [name for name, obj in vars(module).items()
             if inspect.iscoroutinefunction(obj) and is_marked(obj, module)
             and getattr(obj, "__module__", None) == ref.module]
    file_part = ref.spec.partition("::")[0]
    return [TargetRef(f"{file_part}::{name}", ref.module, name, ref.paths, ref.options,
                      ref.file) for name in names]


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ProjectConfig:
    """``[tool.explorer]`` of the project's ``pyproject.toml`` (all keys optional)."""

    root: Path
    targets: tuple[TargetRef, ...] = ()
    corpus: Path | None = None
    pythonpath: tuple[str, ...] = ()
    testpaths: tuple[str, ...] = ()
    source: Path | None = None
    profile: str | None = None
    """The settings profile of every target (``explorer explore --profile`` overrides it)."""


def find_pyproject(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(start: Path | None = None, *, path: Path | None = None) -> ProjectConfig:
    """Read ``[tool.explorer]`` from ``path`` or the nearest ``pyproject.toml``."""
    start = (start or Path.cwd()).resolve()
    source = path or find_pyproject(start)
    if source is None:
        return ProjectConfig(start)
    root = source.resolve().parent
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TargetError(f"{source}: cannot be read as TOML ({exc}); fix the file") from None
    tool = data.get("tool", {})
    section = tool.get("explorer", {}) if isinstance(tool, dict) else None
    if not isinstance(section, dict):
        raise TargetError(f"{source}: [tool.explorer] must be a table")
    pythonpath = tuple(str(root / p) for p in _strings(source, section, "pythonpath"))
    listed = section.get("targets", [])
    if not isinstance(listed, list):  # a bare string would be read letter by letter
        raise TargetError(f"{source}: [tool.explorer] targets must be a list, got "
                          f"{listed!r}; write targets = [\"pkg.mod:fn\"]")
    targets = tuple(_config_target(source, root, item, pythonpath) for item in listed)
    corpus = section.get("corpus")
    if corpus is not None and not isinstance(corpus, str):
        raise TargetError(f"{source}: [tool.explorer] corpus must be a string (a directory)")
    profile = section.get("profile")
    if profile is not None and not isinstance(profile, str):
        raise TargetError(f"{source}: [tool.explorer] profile must be a string (a profile "
                          f"name such as \"ci\"), got {profile!r}")
    pytest_table = tool.get("pytest", {})
    pytest_section = pytest_table.get("ini_options", {}) if isinstance(pytest_table, dict) else {}
    testpaths = pytest_section.get("testpaths", []) if isinstance(pytest_section, dict) else []
    if isinstance(testpaths, str):  # pytest reads a string as whitespace-separated paths
        testpaths = testpaths.split()
    elif not isinstance(testpaths, list):  # pytest refuses it, and says so when it runs
        testpaths = []
    return ProjectConfig(root, targets, root / corpus if corpus else None, pythonpath,
                         tuple(str(root / p) for p in testpaths if isinstance(p, str)), source,
                         profile)


def _strings(source: Path, section: Mapping[str, Any], key: str) -> list[str]:
    value = section.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TargetError(f"{source}: [tool.explorer] {key} must be a list of strings")
    return value


def _config_target(source: Path, root: Path, item: Any,
                   pythonpath: tuple[str, ...]) -> TargetRef:
    options: dict[str, Any] = {}
    if isinstance(item, dict) and isinstance(item.get("target"), str):
        spec = item["target"]
        options = {k: v for k, v in item.items() if k != "target"}
        where = f"{source}: [tool.explorer] targets: {spec!r}"
        for key, value in options.items():
            if not _fits(key, value):  # a TOML table or array: no setting takes one
                raise TargetError(f"{where}: unknown or mistyped option {key} = {value!r}; "
                                  f"options are {', '.join(NAMES)} and profile")
        try:  # checked now, but profiles registered later are checked when it is explored
            Settings.merged({k: v for k, v in options.items() if k != "profile"},
                            where=where)
        except UsageError as err:
            raise TargetError(str(err)) from None
    else:
        spec = item
    if not isinstance(spec, str):
        raise TargetError(f"{source}: [tool.explorer] targets entries must be strings or "
                          "tables with a \"target\" key, like {target = \"pkg.mod:fn\", "
                          f"strategy = \"systematic\"}}; got {item!r}")
    ref = parse_target(spec, cwd=root)
    return TargetRef(ref.spec, ref.module, ref.attr, (*ref.paths, str(root), *pythonpath),
                     options, ref.file)


# --------------------------------------------------------------------------- pytest


@dataclass(frozen=True)
class Collected:
    """Node ids of tests marked ``@pytest.mark.explore``, and what went wrong collecting."""

    node_ids: tuple[str, ...]
    problems: tuple[str, ...] = ()


def collect_marked(root: Path, paths: Iterable[str] = (), *, timeout: float = 300.0
                   ) -> Collected:
    """Run ``pytest --collect-only -q -m explore`` in a subprocess, in ``root``.

    A subprocess keeps the collection's imports, plugins and ``sys.path`` changes out of
    this process, and a collection error in one file does not hide the others.
    """
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", MARKER,
               "-p", "no:cacheprovider", "--continue-on-collection-errors",
               f"--rootdir={root}", *paths]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run(command, cwd=root, capture_output=True, text=True,
                              timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return Collected((), (f"pytest collection in {root} took more than {timeout:g}s; "
                              "pass targets explicitly",))
    ids = tuple(line.strip() for line in done.stdout.splitlines()
                if "::" in line and not line.startswith((" ", "=", "_")))
    problems: list[str] = []
    if done.returncode not in (0, 5):  # 5: no tests collected
        tail = [line for line in (done.stdout + done.stderr).splitlines()
                if line.startswith(("ERROR", "E "))][:5]
        problems.append(f"pytest collection in {root} exited with {done.returncode}"
                        + (": " + "; ".join(tail) if tail else ""))
    return Collected(ids, tuple(problems))


def node_targets(root: Path, node_ids: Iterable[str]) -> tuple[list[TargetRef], list[str]]:
    """Targets for collected node ids; parametrized or class-based tests are skipped."""
    refs: list[TargetRef] = []
    skipped: list[str] = []
    for node in node_ids:
        if "[corpus " in node:  # the plugin's replay items; the nightly job verifies those
            continue
        try:
            refs.append(parse_target(node, cwd=root))
        except TargetError as err:
            skipped.append(str(err))
    return refs, skipped
