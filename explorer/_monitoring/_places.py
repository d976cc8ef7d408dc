"""Which code is watched: code objects classified once, by the file they come from.

USER code (the scenario's own) gets instruction and call events. TRUSTED code (the
explorer, its strategies, asyncio) runs unwatched: what it does is recorded by the
runtime. HELPER code (``enum``, ``abc``, ``typing``, ``_collections_abc``,
``contextlib``) is transparent. FOREIGN code (the rest of the standard library and
``site-packages``) makes a step UNKNOWN when user code runs it.

The directories are found without importing anything: the explorer's own directory from
this file's path, its strategies (installed as ``explorer.strategies``; in a checkout a
symbolic link to ``strategies/`` beside it) from the import system's spec, all by real
path. Classifications are cached per code object on the session state.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
import site
import sys
import sysconfig
import types
from typing import Final, NamedTuple

from explorer._monitoring._state import STATE

USER, TRUSTED, HELPER, FOREIGN = 0, 1, 2, 3

_HELPER_MODULES: Final = ("enum", "abc", "typing", "_collections_abc", "contextlib")
# Functions of helper modules that change process-wide state: not transparent.
_NOT_HELPERS: Final = frozenset({"_RedirectStream.__enter__", "_RedirectStream.__exit__",
                                 "chdir.__enter__", "chdir.__exit__"})
_EXPLORER: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Places(NamedTuple):
    """Directory prefixes (with a trailing separator) and helper files, by real path."""

    trusted: tuple[str, ...]
    foreign: tuple[str, ...]
    helpers: frozenset[str]


def _norm(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _strategies_dir() -> str:
    spec = importlib.util.find_spec("explorer.strategies")
    locations = spec.submodule_search_locations if spec is not None else None
    return next(iter(locations)) if locations else os.path.join(_EXPLORER, "strategies")


@functools.cache
def places() -> Places:
    """Where trusted, foreign and helper code lives in this process (computed once)."""
    trusted = {_norm(_EXPLORER), _norm(_strategies_dir()),
               os.path.dirname(_norm(asyncio.__file__ or ""))}
    paths = sysconfig.get_paths()
    foreign = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")
               if key in paths}
    foreign.update(site.getsitepackages())
    foreign.add(site.getusersitepackages())
    helpers = set()
    for name in _HELPER_MODULES:
        module = sys.modules.get(name) or __import__(name)
        filename = getattr(module, "__file__", None)
        if filename:
            helpers.add(_norm(filename))
        helpers.add(f"<frozen {name}>")
    return Places(tuple(d + os.sep for d in sorted(trusted)),
                  tuple(_norm(d) + os.sep for d in sorted(foreign) if d),
                  frozenset(helpers))


def code_kind(code: types.CodeType) -> int:
    """USER, TRUSTED, HELPER or FOREIGN, by the file the code object comes from."""
    key = id(code)
    kind = STATE.kinds.get(key)
    if kind is None:
        kind = STATE.kinds[key] = classify(code.co_filename, code.co_qualname, places())
        STATE.keep.append(code)  # its id stays its own while the session lasts
    return kind


def classify(filename: str, qualname: str, where: Places) -> int:
    """The kind of a code object of ``qualname`` defined in ``filename``."""
    if filename.startswith("<"):
        if filename in where.helpers and qualname not in _NOT_HELPERS:
            return HELPER
        return FOREIGN if filename.startswith("<frozen") else USER
    path = _norm(filename)
    if path.startswith(where.trusted):
        return TRUSTED
    if path in where.helpers and qualname not in _NOT_HELPERS:
        return HELPER
    if path.startswith(where.foreign):
        return FOREIGN
    return USER
