"""Explored tests: an ``async def`` test run by :func:`explorer.explore`, once per schedule.

:func:`explored` turns an async test into a plain one for any test runner; the pytest
plugin (:mod:`explorer.pytest_plugin`) does the same for tests marked
``@pytest.mark.explore``. Both hand the engine a :class:`BoundTest`: the test with its
arguments bound, that still *is* the test as far as the engine can tell. The engine names a
scenario after ``__module__`` and ``__qualname__`` and reads ``@explorer.reproduce`` and
``@explorer.pin`` from attributes of the callable it is given; a ``functools.partial`` hides
those attributes, a :class:`BoundTest` forwards them.

This module imports nothing from the engine at import time: it is imported by the pytest
plugin, which every pytest run in an environment with the explorer installed loads. The
settings are checked by :class:`~explorer._settings.Settings`, like those of every other
front end, when the test runs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final, ParamSpec

from explorer._settings import Settings

_P = ParamSpec("_P")

#: Set on the function :func:`explored` returns, so the pytest plugin can recognise it.
EXPLORED_ATTR: Final = "__explorer_explored__"
#: The settings given to :func:`explored`, kept on the function it returns, so the command
#: line explores an ``@explored`` test the same way (under the same runtime, for one).
SETTINGS_ATTR: Final = "__explorer_settings__"


class BoundTest:
    """``fn(*args, **kwargs)`` as a zero-argument scenario that keeps ``fn``'s identity.

    Its ``__module__`` and ``__qualname__`` are ``fn``'s, with ``suffix`` appended to the
    qualified name (the pytest plugin appends ``[params]`` for a parametrized test, so
    each parametrization has its own corpus entries). Any other attribute is read from
    ``attributes`` (default ``fn``), so ``@explorer.reproduce`` and ``@explorer.pin`` on
    the test take effect.
    """

    def __init__(self, fn: Callable[..., Coroutine[Any, Any, Any]], args: tuple[Any, ...] = (),
                 kwargs: Mapping[str, Any] | None = None, *, suffix: str = "",
                 attributes: object = None) -> None:
        self._fn = fn
        self._attributes = fn if attributes is None else attributes
        self._args = args
        self._kwargs = dict(kwargs or {})
        self.__module__ = getattr(fn, "__module__", None) or "?"
        qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
        self.__qualname__ = f"{qualname or '?'}{suffix}"
        self.__name__ = self.__qualname__.rsplit(".", 1)[-1]

    def __call__(self) -> Coroutine[Any, Any, Any]:
        return self._fn(*self._args, **self._kwargs)

    def __getattr__(self, name: str) -> Any:
        # Not self._attributes: before __init__ has set it, that would recurse.
        source = self.__dict__.get("_attributes")
        if source is None:
            raise AttributeError(name)
        return getattr(source, name)

    def __repr__(self) -> str:
        return f"<explored test {self.__module__}.{self.__qualname__}>"


def explored(**settings: Any) -> Callable[[Callable[_P, Coroutine[Any, Any, Any]]],
                                          Callable[_P, None]]:
    """Turn an ``async def`` test into a plain test that explores it with ``settings``.

    The returned function has the test's name and signature, so pytest still passes it
    the fixtures it asks for; calling it runs ``explorer.explore(test bound to those
    arguments, **settings)``, which raises :class:`~explorer.ScheduleFailure` on failure.
    Fixture values are created once and shared by every schedule: keep the state the
    scenario races on inside the test body. Settings are those of
    :class:`~explorer.Settings` (``runtime="trio"`` for a trio test) and ``profile``;
    mistakes are reported when the test runs.
    """

    def decorate(fn: Callable[_P, Coroutine[Any, Any, Any]]) -> Callable[_P, None]:
        @functools.wraps(fn)
        def explored_test(*args: _P.args, **kwargs: _P.kwargs) -> None:
            __tracebackhide__ = True
            from explorer._engine import explore, scenario_name
            from explorer._errors import UsageError

            chosen = Settings.merged(settings, where=f"@explored on {scenario_name(fn)}")
            if not inspect.iscoroutinefunction(fn):
                raise UsageError(
                    f"@explored needs an 'async def' test, but {scenario_name(fn)} is a "
                    f"plain function. Write 'async def {fn.__name__}(...)', or drop "
                    "@explored for a test that has no awaits to schedule.")
            # Decorators above @explored (such as @explorer.reproduce) set attributes on
            # this wrapper, those below on fn; functools.wraps copied the latter here.
            explore(BoundTest(fn, args, kwargs, attributes=explored_test), settings=chosen)

        setattr(explored_test, EXPLORED_ATTR, True)
        setattr(explored_test, SETTINGS_ATTR, dict(settings))
        return explored_test

    return decorate
