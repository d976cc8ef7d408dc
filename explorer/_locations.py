"""Source locations of the scenario author's code, for every runtime.

Contract: a file is *user code* unless it belongs to the standard library, an installed
package (site-packages, dist-packages, the user site), a frozen module, or the explorer
itself (its package and its strategies). Stories, traces, deadlock reports and escape
messages attribute what happened to the nearest user frame; every helper here falls back
to the nearest frame of any kind when no user frame exists, except :func:`caller_location`,
which returns ``None``.

Nothing here knows about asyncio or trio: the runtimes hand over frames (a task's await
chain, a traceback, the current call stack) and get :class:`Location` s
back.
"""

from __future__ import annotations

import importlib.util
import os
import site
import sys
import sysconfig
from dataclasses import dataclass
from types import FrameType
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Location:
    """A source position: where a task was suspended, resumed, failed or waited."""

    filename: str
    lineno: int
    function: str

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


def _library_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    prefixes = {paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"],
                PACKAGE_DIR, STRATEGIES_DIR}
    prefixes.update(site.getsitepackages())
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
    outermost first, as an await chain does)."""
    for frame in reversed(frames):
        if is_user_file(frame.f_code.co_filename):
            return frame_location(frame)
    return frame_location(frames[-1]) if frames else None


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
