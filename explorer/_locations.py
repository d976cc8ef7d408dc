"""Source locations of the scenario author's code, for every runtime.

Contract: a file is *user code* unless it belongs to the standard library, an installed
package (site-packages, dist-packages, the user site), a frozen module, or the explorer
itself (its package and its strategies). Stories, traces, deadlock reports and escape
messages attribute what happened to the nearest user frame; every helper here falls back
to the nearest frame of any kind when no user frame exists, except :func:`caller_location`,
which returns ``None``. Code that is neither the user's nor the async runtime's own
(``asyncio``, ``trio``, ``anyio``, the explorer) is *foreign*: a task suspended in foreign
code below its deepest user frame is inside a library call (:func:`library_call`).

Nothing here knows about asyncio or trio: the runtimes hand over frames (a task's await
chain, a traceback, the current call stack) and get :class:`Location` s
back.
"""

from __future__ import annotations

import importlib.util
import os
import site
import sys
from collections.abc import Callable
from types import CodeType, CoroutineType, FrameType, GeneratorType
from typing import Any, Final

from explorer._records import FrozenRecord


class Location(FrozenRecord):
    """A source position: where a task was suspended, resumed, failed or waited.

    A frozen record, compared, hashed and shown by its fields; ``dataclasses.replace``
    and ``dataclasses.fields`` accept it (:mod:`explorer._records`)."""

    __slots__ = ("filename", "function", "lineno")

    filename: str
    lineno: int
    function: str

    def __init__(self, filename: str, lineno: int, function: str) -> None:
        object.__setattr__(self, "filename", filename)
        object.__setattr__(self, "lineno", lineno)
        object.__setattr__(self, "function", function)

    # Written out, as the dataclass's are, rather than the record's generic ones: strategies
    # hash locations (in sites) and traces compare them, often.
    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            that: Any = other
            return (self.filename, self.lineno, self.function) == (
                that.filename, that.lineno, that.function)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.filename, self.lineno, self.function))

    @property
    def short(self) -> str:
        """``file.py:12`` — the form used in messages and traces."""
        return f"{os.path.basename(self.filename)}:{self.lineno}"

    def __str__(self) -> str:
        return f"{self.short} ({self.function})"

    def to_json(self) -> dict[str, Any]:
        return {"file": os.path.basename(self.filename), "line": self.lineno,
                "function": self.function}


def _strategies_dir() -> str:
    # strategies/ sits beside explorer/ in a checkout and inside it when installed from a
    # wheel (it is installed as explorer.strategies); ask the import system where it is,
    # without importing the package.
    spec = importlib.util.find_spec("explorer.strategies")
    locations = spec.submodule_search_locations if spec is not None else None
    return next(iter(locations)) if locations else os.path.join(PACKAGE_DIR, "strategies")


PACKAGE_DIR: Final = os.path.dirname(os.path.abspath(__file__))
"""The explorer package's own directory: its frames are never the user's."""
STRATEGIES_DIR: Final = _strategies_dir()
"""Where ``explorer.strategies`` lives (found without importing it)."""


def _stdlib_dir() -> str:
    # os's directory, not sysconfig's "stdlib" path: loading sysconfig's configuration data
    # costs a first exploration about 2 ms. An interpreter without the file (a frozen os
    # and no known stdlib directory, as in some embedded builds) asks sysconfig after all.
    where: str | None = getattr(os, "__file__", None)
    if where:
        return os.path.dirname(os.path.abspath(where))
    import sysconfig

    return os.path.abspath(sysconfig.get_paths()["stdlib"])


STDLIB_DIR: Final = _stdlib_dir()
"""The standard library's directory."""


def _library_prefixes() -> tuple[str, ...]:
    # sysconfig's four install paths without sysconfig: stdlib is os's directory, purelib
    # and platlib are the site-packages directories site lists, and platstdlib is their
    # parent (``<prefix>/lib/python3.X``, ``<prefix>\Lib``).
    installed = site.getsitepackages()
    prefixes = {STDLIB_DIR, PACKAGE_DIR, STRATEGIES_DIR}
    prefixes.update(installed)
    prefixes.update(os.path.dirname(os.path.abspath(p)) for p in installed)
    if site.ENABLE_USER_SITE and site.USER_SITE:
        prefixes.add(site.USER_SITE)
    return tuple(sorted(os.path.join(os.path.abspath(p), "") for p in prefixes if p))


_LIBRARY = _library_prefixes()
_SITE_MARKERS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
# Answers per file name: asked for every frame of every traced step.
_user_cache: dict[str, bool] = {}


def is_user_file(filename: str) -> bool:
    """True for the scenario author's code: not the stdlib, installed packages or us."""
    found = _user_cache.get(filename)
    if found is None:
        path = os.path.abspath(filename)
        found = not (filename.startswith("<frozen") or path.startswith(_LIBRARY)
                     or any(m in path for m in _SITE_MARKERS))
        _user_cache[filename] = found
    return found


def frame_location(frame: FrameType) -> Location:
    """Where ``frame`` is now (its first line if it has not started)."""
    code = frame.f_code
    return Location(code.co_filename, frame.f_lineno or code.co_firstlineno,
                    getattr(code, "co_qualname", code.co_name))


def user_location(frames: list[FrameType]) -> Location | None:
    """The deepest frame in user code, else the deepest frame at all (``frames`` run
    outermost first, as an await chain does); a harness frame (:data:`HARNESS`) stands
    for the user location it holds."""
    for frame in reversed(frames):
        if is_user_file(frame.f_code.co_filename):
            return frame_location(frame)
    harness = harness_location(frames)
    if harness is not None:
        return harness[0]
    return frame_location(frames[-1]) if frames else None


# Code objects of the explorer's own harness coroutines that run user operations (a
# linearizability check's callers and its scenario), mapped to the name of the local that
# holds the user Location the frame stands for (None: none) and whether that location is
# only where the work was asked for (shown as a library wait is), not code the task runs.
# A chain with no user frame that goes through one of them is shown at that location,
# never at the harness's or the runtime's line below it: they are not what the user wrote.
HARNESS: dict[CodeType, tuple[str, bool]] = {}


def harness_location(frames: list[FrameType]) -> tuple[Location, bool] | None:
    """The user location the deepest :data:`HARNESS` frame of ``frames`` stands for (its
    local named there) and whether it is foreign; None without one, or when it holds
    none. Only asked for chains with no user frame: a dictionary lookup per frame."""
    for frame in reversed(frames):
        marked = HARNESS.get(frame.f_code)
        if marked is not None:
            found = frame.f_locals.get(marked[0])
            return (found, marked[1]) if isinstance(found, Location) else None
    return None


def _package_dir(name: str) -> str | None:
    spec = importlib.util.find_spec(name)  # found without importing the package
    locations = spec.submodule_search_locations if spec is not None else None
    return os.path.join(os.path.abspath(next(iter(locations))), "") if locations else None


_RUNTIME_PACKAGES: Final = ("asyncio", "trio", "anyio")
_RUNTIME: Final = tuple(sorted({p for p in map(_package_dir, _RUNTIME_PACKAGES) if p}
                               | {os.path.join(PACKAGE_DIR, "")}))
# Answers per file name, as for _user_cache: asked for every frame of the current task.
_foreign_cache: dict[str, bool] = {}


def is_foreign_file(filename: str) -> bool:
    """True for code that is neither the user's nor the async runtime's own: the stdlib
    outside ``asyncio``, and installed packages other than ``trio`` and ``anyio``
    (``redis``, ``httpx``, ``starlette``, ``sqlalchemy``...). The explorer's own frames
    count as the runtime's."""
    found = _foreign_cache.get(filename)
    if found is None:
        found = not is_user_file(filename) and not os.path.abspath(filename).startswith(
            _RUNTIME)
        _foreign_cache[filename] = found
    return found


class LibraryCall(FrozenRecord):
    """A library call a task is suspended inside (see :func:`library_call`).

    Two descriptions of one task compare equal exactly when they are the same call: ``key``
    is made of the identities of the calling user frame, the instruction it is suspended
    at and the call's outermost frame. ``anchor`` holds that outermost frame, so that
    while a description is kept its frame's identity cannot be reused by a later call (a
    loop calling the same function from the same line). ``caller`` is where the user's
    code made the call (None when the task's own coroutine is the library's), ``entry``
    the call's outermost frame: details for people. Only ``key`` is compared."""

    __slots__ = ("anchor", "caller", "entry", "key")
    _compared = ("key",)
    _shown = ("key", "caller", "entry")

    key: tuple[int, int, int]
    caller: Location | None
    entry: Location | None
    anchor: object

    def __init__(self, key: tuple[int, int, int], caller: Location | None = None,
                 entry: Location | None = None, anchor: object = None) -> None:
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "caller", caller)
        object.__setattr__(self, "entry", entry)
        object.__setattr__(self, "anchor", anchor)


def library_call(frames: list[FrameType]) -> LibraryCall | None:
    """The library call an await chain (``frames``, outermost first) is suspended inside,
    or None when it is suspended at one of the user's own scheduling points.

    A chain is inside a library call when a frame deeper than its deepest user frame (any
    frame, when it has none: a task whose coroutine is the library's, such as
    ``gather(client.post(...))``) is foreign (:func:`is_foreign_file`). So ``await
    asyncio.sleep(0)``, ``await lock.acquire()``, ``await event.wait()``, ``await
    queue.get()``, trio's and anyio's primitives and the runtime's own streams awaited
    from user code are not library calls: they are the scheduling points the user
    reasons about. ``await r.get(key)`` through redis-py, ``await client.post(...)``
    through httpx until the request reaches the user's endpoint, and an SQLAlchemy
    session call are. User code called back from a library (an endpoint, a
    dependency) starts a new deepest user frame: what it awaits is judged afresh.

    Costs one walk over ``frames``, with one cached test per file."""
    deepest = -1
    for i in range(len(frames) - 1, -1, -1):
        if is_user_file(frames[i].f_code.co_filename):
            deepest = i
            break
    below = frames[deepest + 1:]
    if not any(is_foreign_file(frame.f_code.co_filename) for frame in below):
        return None
    if deepest < 0:
        entry = frames[0]
        return LibraryCall((0, -1, id(entry)), None, frame_location(entry), entry)
    caller = frames[deepest]
    entry = below[0]
    return LibraryCall((id(caller), caller.f_lasti, id(entry)), frame_location(caller),
                       frame_location(entry), entry)


def traceback_location(exc: BaseException) -> Location | None:
    """Where an exception was raised, as the deepest user-code frame of its traceback."""
    tb = exc.__traceback__
    best: Location | None = None
    last: Location | None = None
    while tb is not None:
        loc = Location(tb.tb_frame.f_code.co_filename, tb.tb_lineno,
                       getattr(tb.tb_frame.f_code, "co_qualname", tb.tb_frame.f_code.co_name))
        last = loc
        if is_user_file(loc.filename):
            best = loc
        tb = tb.tb_next
    return best or last


def caller_location(depth: int = 1) -> Location | None:
    """The nearest user-code frame on the current (synchronous) call stack, from
    ``depth`` frames up (1: the function calling this one) outwards; ``None`` if none."""
    frame: FrameType | None = sys._getframe(depth)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            return frame_location(frame)
        frame = frame.f_back
    return None


class Attribution(FrozenRecord):
    """Where a suspended task stands, for people (see :func:`attribute`).

    ``location`` is the deepest user frame (as :func:`user_location` gives it); ``foreign``
    says the chain has no user frame at all, so ``location`` is a library's; ``site`` is
    the deepest frame in the file of the task's outermost user frame when ``location`` is
    in another file (the handler line that called a helper module); ``call`` names the
    library call the deepest user frame is inside (``Redis.execute_command (redis)``), or,
    for a chain with no user frame, the library coroutine the task runs."""

    __slots__ = ("call", "foreign", "location", "site")

    location: Location | None
    foreign: bool
    site: Location | None
    call: str | None

    def __init__(self, location: Location | None, foreign: bool = False,
                 site: Location | None = None, call: str | None = None) -> None:
        object.__setattr__(self, "location", location)
        object.__setattr__(self, "foreign", foreign)
        object.__setattr__(self, "site", site)
        object.__setattr__(self, "call", call)


def _package(filename: str) -> str:
    """The top-level package or module a library file belongs to (``redis``, ``asyncio``)."""
    if os.path.abspath(filename).startswith(os.path.join(PACKAGE_DIR, "")):
        return "explorer"
    parts = os.path.abspath(filename).split(os.sep)
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            index = len(parts) - 1 - parts[::-1].index(marker)
            if index + 1 < len(parts):
                return parts[index + 1].removesuffix(".py")
    stdlib = os.path.join(STDLIB_DIR, "")
    path = os.path.abspath(filename)
    if path.startswith(stdlib):
        return path[len(stdlib):].split(os.sep)[0].removesuffix(".py")
    return os.path.basename(filename).removesuffix(".py")


def _call_name(frame: FrameType) -> str:
    code = frame.f_code
    name = str(getattr(code, "co_qualname", code.co_name)).rpartition("<locals>.")[2]
    return f"{name} ({_package(code.co_filename)})"


def attribute(frames: list[FrameType]) -> Attribution:
    """Attribute an await chain (``frames``, outermost first) to the user's code: its
    deepest user frame, the handler-file line above a helper module, and the library
    call it is inside when that call is foreign code (:func:`is_foreign_file`: not the
    runtime's own primitives, whose waits the step's operation already names)."""
    user = [i for i, frame in enumerate(frames) if is_user_file(frame.f_code.co_filename)]
    if not user:
        if not frames:
            return Attribution(None)
        harness = harness_location(frames)
        if harness is not None:
            return Attribution(*harness)
        entry = frames[0]  # the coroutine the task runs: a library's, or the runtime's
        call = _call_name(entry) if is_foreign_file(entry.f_code.co_filename) else None
        return Attribution(frame_location(frames[-1]), True, None, call)
    deepest = frames[user[-1]]
    location = frame_location(deepest)
    home = frames[user[0]].f_code.co_filename
    site = None
    if deepest.f_code.co_filename != home:
        site = next(frame_location(frames[i]) for i in reversed(user)
                    if frames[i].f_code.co_filename == home)
    call = None
    if user[-1] + 1 < len(frames):
        callee = frames[user[-1] + 1]
        if is_foreign_file(callee.f_code.co_filename):
            call = _call_name(callee)
    return Attribution(location, False, site, call)


_CHAIN_DEPTH: Final = 200
"""Links walked at most past an uncommon link of an await chain (such links could loop)."""


def chain_offsets(append: Callable[[int], object], link: Any, end: type | None = None) -> None:
    """``append`` the instruction offset of every frame of the await chain from ``link``,
    outermost first, stopping at a link without a frame (a done coroutine, or a link of
    type ``end``: what ``await future`` leaves, recognised by its type rather than by
    failed attribute lookups). Offsets, not lines: the same at the same await, read
    without decoding the line table, and two awaits on one line differ. Coroutines and
    generators are read without probing, and without a bound: a coroutine being awaited
    cannot be awaited again, so their chains cannot loop; other links (async generators,
    coroutine-like objects) are probed, at most :data:`_CHAIN_DEPTH` of them. What the
    runtimes' step hashes read (:mod:`explorer._asyncio._stephash`, trio's scheduler)."""
    while link is not None:
        kind = type(link)
        if kind is CoroutineType:
            frame, link = link.cr_frame, link.cr_await
        elif kind is GeneratorType:
            frame, link = link.gi_frame, link.gi_yieldfrom
        elif kind is end:
            return
        else:
            _probed_offsets(append, link)
            return
        if frame is None:
            return
        append(frame.f_lasti)


def _probed_offsets(append: Callable[[int], object], link: Any) -> None:
    for _ in range(_CHAIN_DEPTH):
        frame = (getattr(link, "cr_frame", None) or getattr(link, "gi_frame", None)
                 or getattr(link, "ag_frame", None))
        if frame is None:
            return
        append(frame.f_lasti)
        link = (getattr(link, "cr_await", None) or getattr(link, "gi_yieldfrom", None)
                or getattr(link, "ag_await", None))
        if link is None:
            return
