"""Fixtures of an explored test, set up and torn down for every schedule.

pytest sets a test's fixtures up once per test item; an explored test runs its body once per
schedule. A fixture value shared by every schedule carries state from one schedule to the
next, and the explorer then reports a real race as ``nondeterminism``. So, when the pytest
plugin takes an explored test over, :func:`plan_fixtures` takes the *user's* function-scoped
fixtures (defined in the user's own files: ``conftest.py``, test modules) out of pytest's
hands, and :class:`FixturedTest` sets them up inside the scenario, on the controlled event
loop, before every schedule's test body and tears them down after it, last set up first torn
down. An async fixture's awaits therefore run under the explorer, and each schedule gets
fresh objects.

Contract:

- A managed fixture is called as pytest calls it: a plain function, a generator (the code
  after ``yield`` is its teardown), a coroutine function or an async generator, whichever
  plugin (pytest-asyncio in auto or strict mode, anyio) would otherwise have run it. Its
  arguments resolve as pytest resolves them: managed fixtures from this schedule, the others
  from pytest's request; ``request`` is a per-schedule request whose ``param``,
  ``addfinalizer`` and ``getfixturevalue`` work per schedule (anything else is pytest's).
- pytest's own fixtures and those of installed plugins (``tmp_path``, ``monkeypatch``,
  ``capsys``, ``anyio_backend`` ...) keep pytest's one value per test item, and so do
  wider-scoped fixtures (class, module, package, session). A function-scoped fixture of a
  plugin that depends on a managed fixture is managed too, so that no fixture is ever set up
  both ways.
- The wider-scoped fixtures of the user's own files that the test uses are listed in
  :attr:`FixturePlan.shared`, so the plugin can warn about them by name and name them when a
  failure looks like state carried over between schedules.

Imported only once a session collected an explored test; it imports pytest and the
standard library only.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Final

import pytest

from explorer._explored import BoundTest
from explorer._locations import is_user_file

if TYPE_CHECKING:
    from _pytest.fixtures import FixtureDef, FixtureRequest

#: Fixtures that configure how a test runs rather than hold state: never warned about.
CONFIGURATION_FIXTURES: Final = frozenset({"anyio_backend"})


@dataclasses.dataclass(frozen=True)
class FixturePlan:
    """Which fixtures of one explored test are set up per schedule (``managed``, in pytest's
    closure order) and which wider-scoped user fixtures it shares (``shared``: name and
    scope)."""

    managed: tuple[str, ...] = ()
    shared: tuple[tuple[str, str], ...] = ()

    def describe_shared(self) -> str:
        """``the module-scoped fixture 'db'`` or a list of them."""
        names = [f"the {scope}-scoped fixture {name!r}" for name, scope in self.shared]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _fixture_function(fixturedef: FixtureDef[Any]) -> Callable[..., Any]:
    func: Callable[..., Any] = fixturedef.func
    return getattr(func, "__func__", func)


def _is_user_fixture(fixturedef: FixtureDef[Any]) -> bool:
    try:
        source = inspect.getsourcefile(_fixture_function(fixturedef))
    except TypeError:  # a builtin or a callable object: not the user's code
        return False
    return source is not None and is_user_file(source)


def plan_fixtures(item: pytest.Function) -> FixturePlan:
    """Decide, for ``item``, which fixtures run per schedule, and take them out of pytest's
    setup (``item.fixturenames``): pytest then never sets them up itself."""
    definitions = item._fixtureinfo.name2fixturedefs
    managed: list[str] = []
    shared: list[tuple[str, str]] = []
    for name in item.fixturenames:
        defs = definitions.get(name)
        if not defs:
            continue  # "request", or a name nothing defines (pytest reports that itself)
        fixturedef = defs[-1]
        if not _is_user_fixture(fixturedef):
            continue
        if fixturedef.scope == "function":
            managed.append(name)
        elif name not in CONFIGURATION_FIXTURES:
            shared.append((name, fixturedef.scope))
    # A function-scoped fixture of a plugin that uses a managed fixture must be managed too:
    # pytest would otherwise set the managed one up once more to give it a value.
    grew = True
    while grew:
        grew = False
        for name in item.fixturenames:
            defs = definitions.get(name)
            if (name in managed or not defs or defs[-1].scope != "function"
                    or not set(defs[-1].argnames) & set(managed)):
                continue
            managed.append(name)
            grew = True
    order = {name: n for n, name in enumerate(item.fixturenames)}
    managed.sort(key=order.__getitem__)
    if managed:
        item.fixturenames = [name for name in item.fixturenames if name not in managed]
    return FixturePlan(tuple(managed), tuple(shared))


_NO_PARAM: Final = object()


class ScheduleRequest:
    """The ``request`` a managed fixture receives: per schedule for ``param``,
    ``addfinalizer`` and ``getfixturevalue``; pytest's request for everything else."""

    def __init__(self, base: FixtureRequest, fixtures: ScheduleFixtures, fixturename: str,
                 param: object) -> None:
        self._base = base
        self._fixtures = fixtures
        self.fixturename = fixturename
        self.scope = "function"
        if param is not _NO_PARAM:
            self.param = param

    def addfinalizer(self, finalizer: Callable[[], object]) -> None:
        self._fixtures.finalizers.append(finalizer)

    def getfixturevalue(self, argname: str) -> Any:
        if argname in self._fixtures.plan.managed:
            if argname in self._fixtures.values:
                return self._fixtures.values[argname]
            raise pytest.UsageError(
                f"fixture {self.fixturename!r} called request.getfixturevalue({argname!r}) "
                f"for a fixture the explorer sets up per schedule, before {argname!r} was "
                f"set up in this schedule; request it as an argument instead: "
                f"def {self.fixturename}({argname}, ...)")
        return self._base.getfixturevalue(argname)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


class ScheduleFixtures:
    """The managed fixtures of one schedule: their values and their teardowns."""

    def __init__(self, item: pytest.Function, plan: FixturePlan) -> None:
        self.item = item
        self.plan = plan
        self.values: dict[str, Any] = {}
        # Teardowns and request.addfinalizer callbacks, run last first; a teardown may
        # return an awaitable (an async generator's), which is awaited.
        self.finalizers: list[Callable[[], object]] = []

    async def setup(self) -> dict[str, Any]:
        """Set every managed fixture up; the values by name."""
        for name in self.plan.managed:
            await self._value(name, -1)
        return dict(self.values)

    async def _value(self, name: str, index: int) -> Any:
        if index == -1 and name in self.values:
            return self.values[name]
        defs = self.item._fixtureinfo.name2fixturedefs[name]
        if index == -1 and name not in self.plan.managed:
            return self.item._request.getfixturevalue(name)
        fixturedef = defs[index]
        kwargs: dict[str, Any] = {}
        for arg in fixturedef.argnames:
            if arg == "request":
                param = getattr(getattr(self.item, "callspec", None), "params", {}).get(
                    name, _NO_PARAM)
                kwargs[arg] = ScheduleRequest(self.item._request, self, name, param)
            elif arg == name:  # an override that requests the fixture it overrides
                kwargs[arg] = await self._value(name, index - 1)
            else:
                kwargs[arg] = await self._value(arg, -1)
        value = await self._call(fixturedef, kwargs)
        if index == -1:
            self.values[name] = value
        return value

    async def _call(self, fixturedef: FixtureDef[Any], kwargs: Mapping[str, Any]) -> Any:
        from _pytest.fixtures import resolve_fixture_function

        func = resolve_fixture_function(fixturedef, self.item._request)
        name = fixturedef.argname
        if inspect.isasyncgenfunction(func):
            agen = func(**kwargs)
            try:
                value = await _AsyncGenStep(agen)
            except StopAsyncIteration:
                raise ValueError(f"fixture {name!r} did not yield a value") from None
            self.finalizers.append(lambda: _finish_async(name, agen))
            return value
        if inspect.isgeneratorfunction(func):
            gen = func(**kwargs)
            try:
                value = next(gen)
            except StopIteration:
                raise ValueError(f"fixture {name!r} did not yield a value") from None
            self.finalizers.append(lambda: _finish(name, gen))
            return value
        value = func(**kwargs)
        if inspect.isawaitable(value):
            value = await value
        return value

    async def teardown(self, *, quiet: bool = False) -> None:
        """Run every teardown, last set up first; then raise the first error (unless
        ``quiet``: the test body already failed, and its error is the one to report)."""
        first: BaseException | None = None
        while self.finalizers:
            finalizer = self.finalizers.pop()
            try:
                result = finalizer()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # noqa: BLE001 - every teardown runs; the first error is raised
                first = first or exc
        if first is not None and not quiet:
            raise first


class _AsyncGenStep:
    """Awaiting it runs an async generator to its next ``yield`` (as ``agen.__anext__()``
    does), while the task's await chain stays readable: the runtimes follow ``ag_frame``
    and ``ag_await`` through it into the fixture's own frame, where an ``asend`` object
    would end the chain (and steps would be attributed to this module, not the fixture)."""

    def __init__(self, agen: Any) -> None:
        self._agen = agen
        self._inner = agen.__anext__().__await__()

    @property
    def ag_frame(self) -> Any:
        return self._agen.ag_frame

    @property
    def ag_await(self) -> Any:
        return self._agen.ag_await

    def __await__(self) -> _AsyncGenStep:
        return self

    def __iter__(self) -> _AsyncGenStep:
        return self

    def __next__(self) -> Any:
        return self._inner.send(None)

    def send(self, value: object) -> Any:
        return self._inner.send(value)

    def throw(self, *args: Any) -> Any:
        return self._inner.throw(*args)

    def close(self) -> None:
        self._inner.close()


def _finish(name: str, gen: Any) -> None:
    try:
        next(gen)
    except StopIteration:
        return
    raise ValueError(f"fixture {name!r} has more than one 'yield'; a fixture yields its "
                     "value once, and the code after that yield is its teardown")


async def _finish_async(name: str, agen: Any) -> None:
    try:
        await _AsyncGenStep(agen)
    except StopAsyncIteration:
        return
    raise ValueError(f"fixture {name!r} has more than one 'yield'; a fixture yields its "
                     "value once, and the code after that yield is its teardown")


class FixturedTest(BoundTest):
    """An explored test whose managed fixtures are set up anew for every schedule, inside
    the run; the other arguments are the values pytest gave (``kwargs``).

    When every managed fixture is a plain function (no ``yield``, no ``async``), nothing
    in its setup can yield to the loop, so it is called just before the run instead and
    the run is the test's own coroutine: the trace then starts in the test, exactly as for
    a test without fixtures. A setup that raises fails the run with that exception; a
    fixture that registers a finalizer gets it run after the test body, in the run."""

    def __init__(self, fn: Callable[..., Coroutine[Any, Any, Any]], item: pytest.Function,
                 plan: FixturePlan, kwargs: Mapping[str, Any], *, suffix: str = "") -> None:
        super().__init__(fn, (), kwargs, suffix=suffix)
        self._item = item
        self._plan = plan
        self._argnames = tuple(item._fixtureinfo.argnames)
        definitions = item._fixtureinfo.name2fixturedefs
        self._plain = all(_is_plain(_fixture_function(fixturedef))
                          for name in plan.managed for fixturedef in definitions[name])

    def __call__(self) -> Coroutine[Any, Any, Any]:
        if not self._plain:
            return self._run()
        fixtures = ScheduleFixtures(self._item, self._plan)
        setup = fixtures.setup()
        try:
            setup.send(None)
        except StopIteration as done:
            values: dict[str, Any] = done.value
        except Exception as exc:  # noqa: BLE001 - it is the run's outcome, raised in the run
            return _raise(exc)
        else:  # a plain fixture returned an awaitable after all: it needs the loop
            setup.close()
            return self._run()
        if fixtures.finalizers:
            return self._body(fixtures, values)
        return self._fn(**self._arguments(values))

    def _arguments(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {**self._kwargs, **{k: v for k, v in values.items() if k in self._argnames}}

    async def _run(self) -> Any:
        fixtures = ScheduleFixtures(self._item, self._plan)
        try:
            values = await fixtures.setup()
        except GeneratorExit:
            raise  # the run is being closed: nothing may be awaited any more
        except BaseException:
            await fixtures.teardown(quiet=True)
            raise
        return await self._body(fixtures, values)

    async def _body(self, fixtures: ScheduleFixtures, values: Mapping[str, Any]) -> Any:
        try:
            result = await self._fn(**self._arguments(values))
        except GeneratorExit:
            raise
        except BaseException:
            await fixtures.teardown(quiet=True)
            raise
        await fixtures.teardown()
        return result


def _is_plain(func: Callable[..., Any]) -> bool:
    return not (inspect.isgeneratorfunction(func) or inspect.iscoroutinefunction(func)
                or inspect.isasyncgenfunction(func))


async def _raise(exc: BaseException) -> None:
    raise exc
