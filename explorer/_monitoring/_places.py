"""Which code is watched: code objects classified once, by the file they come from.

USER code (the scenario's own) gets instruction and call events, and so does LIBRARY
code (the rest of the standard library, and the installed packages of the web stack:
httpx, Starlette, FastAPI, anyio, pydantic, ...), so that a request's steps through a
framework are recorded as precisely as the handler's own. TRUSTED code (the explorer,
its strategies, asyncio, trio) runs unwatched: what it does is recorded by the runtime. HELPER
code (``enum``, ``abc``, ``typing``, ``_collections_abc``, ``contextlib``, and ``re``,
whose only state is a cache of compiled patterns) is transparent. MODELLED code (``json``)
runs unwatched when a rule describes the call that entered it. FOREIGN code (other
installed packages, frozen modules) makes a step UNKNOWN when user code runs it.

The directories are found without importing anything: the explorer's own directory from
this file's path, its strategies (installed as ``explorer.strategies``; in a checkout a
symbolic link to ``strategies/`` beside it) from the import system's spec, all by real
path. Classifications are cached per code object on the session state. A session can
stop watching the web stack (:func:`stop_watching_packages`, decided by
:func:`explorer._monitoring._hooks.end_of_run`): its code is FOREIGN from then on.
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

USER, TRUSTED, HELPER, FOREIGN, LIBRARY, MODELLED = 0, 1, 2, 3, 4, 5
WATCHED: Final = (USER, LIBRARY)
"""The kinds of code that get instruction and call events."""

# re is transparent: its module state is the cache of compiled patterns (a pattern is
# an immutable function of its source and flags), and reordering or refilling that cache
# changes no result; it reads the strings it is given, which are immutable.
_HELPER_MODULES: Final = ("enum", "abc", "typing", "_collections_abc", "contextlib", "re",
                          "re._compiler", "re._parser", "re._casefix", "re._constants")
# Modules whose functions are described by rules (explorer._monitoring._builtins): their
# code runs unwatched when a rule described the call that entered it, and makes the step
# UNKNOWN when watched code entered it any other way. json's encoder and decoder are C
# code reading (or making) whole values: a rule records that as a deep read.
_MODELLED_MODULES: Final = ("json", "json.encoder", "json.decoder", "json.scanner")
# Functions of watched modules modelled the same way, with the code only they run:
# ``inspect.getblock`` (its rule: a pure function of its list of lines) tokenizes those
# lines with the C tokenizer (``inspect.getsource``, which FastAPI runs on each
# endpoint's first request).
_MODELLED_FUNCTIONS: Final = (
    ("inspect", ("getblock", "BlockFinder.__init__", "BlockFinder.tokeneater")),
    ("tokenize", ("generate_tokens", "_generate_tokens_from_c_tokenizer")))
# Installed packages whose code is watched like the scenario's: the web stack a request
# runs through (client, ASGI framework, validation), so that its steps are recorded
# precisely. Other installed packages stay foreign: watching them costs a Python callback
# per instruction, and a database driver's steps end UNKNOWN anyway (C code, threads).
_LIBRARY_PACKAGES: Final = (
    "httpx", "httpcore", "h11", "idna", "sniffio", "anyio", "starlette", "fastapi",
    "pydantic", "typing_extensions", "annotated_types", "typing_inspection", "multipart",
    "python_multipart", "opentelemetry")
# Functions of helper modules that change process-wide state: not transparent.
_NOT_HELPERS: Final = frozenset({"_RedirectStream.__enter__", "_RedirectStream.__exit__",
                                 "chdir.__enter__", "chdir.__exit__"})
# The methods attrs generates for trio's classes (Task, CancelScope, ...) have no file:
# attrs names them "<attrs generated <method> trio.<module>.<class>>".
_ATTRS_GENERATED: Final = "<attrs generated "
_TRUSTED_PACKAGES: Final = ("trio", "outcome")
_TRUSTED_PREFIXES: Final = tuple(f"{name}." for name in _TRUSTED_PACKAGES)
_EXPLORER: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Places(NamedTuple):
    """Directory prefixes (with a trailing separator) and files, by real path: trusted
    code; installed packages (``foreign``: site-packages, unwatched but for ``libraries``);
    helper and modelled files; the standard library (``standard``, watched) and the
    installed packages that are watched (``libraries``)."""

    trusted: tuple[str, ...]
    foreign: tuple[str, ...]
    helpers: frozenset[str]
    modelled: frozenset[str] = frozenset()
    standard: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()
    modelled_functions: frozenset[tuple[str, str]] = frozenset()  # (file, qualname)


@functools.lru_cache(maxsize=4096)
def _norm(path: str) -> str:
    # Cached: every session classifies the code objects it meets anew, and resolving the
    # same few hundred files' links again each time was a measurable part of short ones.
    return os.path.normcase(os.path.realpath(path))


def _strategies_dir() -> str:
    spec = importlib.util.find_spec("explorer.strategies")
    locations = spec.submodule_search_locations if spec is not None else None
    return next(iter(locations)) if locations else os.path.join(_EXPLORER, "strategies")


def _files(modules: tuple[str, ...]) -> list[str]:
    """The source files of ``modules``, by real path."""
    files = []
    for name in modules:
        module = sys.modules.get(name) or importlib.import_module(name)
        filename = getattr(module, "__file__", None)
        if filename:
            files.append(_norm(filename))
    return files


@functools.cache
def places() -> Places:
    """Where trusted, foreign, library and helper code lives in this process (computed
    once)."""
    trusted = {_norm(_EXPLORER), _norm(_strategies_dir()),
               os.path.dirname(_norm(asyncio.__file__ or ""))}
    # trio is a runtime like asyncio: the trio runtime records what its primitives,
    # task starts and wake-ups do (explorer._trio._footprints), and its scheduler state
    # is per run, not the scenario's shared state; outcome carries its wake-up values.
    trusted.update(d.rstrip(os.sep) for d in _package_dirs(_TRUSTED_PACKAGES))
    paths = sysconfig.get_paths()
    installed = {paths[key] for key in ("purelib", "platlib") if key in paths}
    installed.update(site.getsitepackages())
    installed.add(site.getusersitepackages())
    standard = {paths[key] for key in ("stdlib", "platstdlib") if key in paths}
    helpers = {*_files(_HELPER_MODULES), *(f"<frozen {name}>" for name in _HELPER_MODULES)}
    return Places(tuple(d + os.sep for d in sorted(trusted)),
                  tuple(_norm(d) + os.sep for d in sorted(installed) if d),
                  frozenset(helpers), frozenset(_files(_MODELLED_MODULES)),
                  tuple(_norm(d) + os.sep for d in sorted(standard) if d),
                  tuple(sorted(_package_dirs(_LIBRARY_PACKAGES))),
                  frozenset((path, qualname) for module, qualnames in _MODELLED_FUNCTIONS
                            for path in _files((module,)) for qualname in qualnames))


def _package_dirs(names: tuple[str, ...]) -> list[str]:
    """The directories of the installed packages ``names`` (found without importing
    them; those not installed are left out)."""
    dirs: list[str] = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        if spec.submodule_search_locations:
            dirs.extend(_norm(location) + os.sep for location in spec.submodule_search_locations)
        elif spec.origin:
            dirs.append(_norm(spec.origin))  # a single-module distribution
    return dirs


def code_kind(code: types.CodeType) -> int:
    """USER, TRUSTED, HELPER, LIBRARY or FOREIGN, by the file the code object comes from."""
    key = id(code)
    kind = STATE.kinds.get(key)
    if kind is None:
        where = places()
        if STATE.packages_off:  # the session stopped watching the web stack: foreign
            where = where._replace(libraries=())
        kind = STATE.kinds[key] = classify(code.co_filename, code.co_qualname, where)
        STATE.keep.append(code)  # its id stays its own while the session lasts
        if kind == LIBRARY and in_packages(code.co_filename, where):
            STATE.packaged.add(key)
    return kind


def in_packages(filename: str, where: Places) -> bool:
    """Whether ``filename`` belongs to one of the watched installed packages."""
    return not filename.startswith("<") and _norm(filename).startswith(where.libraries) \
        if where.libraries else False


def stop_watching_packages() -> list[types.CodeType]:
    """Classify the watched installed packages' code as FOREIGN from now on (this
    session); returns their code objects classified so far, whose events the caller
    switches off."""
    STATE.packages_off = True
    codes = [code for code in STATE.keep if id(code) in STATE.packaged]
    for code in codes:
        STATE.kinds[id(code)] = FOREIGN
    STATE.packaged.clear()
    return codes


def classify(filename: str, qualname: str, where: Places) -> int:
    """The kind of a code object of ``qualname`` defined in ``filename``."""
    if filename.startswith("<"):
        if filename.startswith(_ATTRS_GENERATED) \
                and filename.split(" ", 3)[-1].startswith(_TRUSTED_PREFIXES):
            return TRUSTED  # trio's attrs classes: trusted, as trio is
        if filename in where.helpers and qualname not in _NOT_HELPERS:
            return HELPER
        return FOREIGN if filename.startswith("<frozen") else USER
    path = _norm(filename)
    if path.startswith(where.trusted):
        return TRUSTED
    if path in where.helpers and qualname not in _NOT_HELPERS:
        return HELPER
    if path in where.modelled or (path, qualname) in where.modelled_functions:
        return MODELLED
    if path.startswith(where.libraries):
        return LIBRARY
    if path.startswith(where.foreign):
        return FOREIGN  # an installed package whose code is not watched
    if path.startswith(where.standard):
        return LIBRARY
    return USER
