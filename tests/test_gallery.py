"""Every gallery example: the bug is found within its bound and replays, the fix passes."""

from __future__ import annotations

import functools
import gc
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import examples
import explorer
from examples.gallery import Example, all_examples, trio_examples

EXAMPLES = all_examples()

# A uniform random walk keeps breaking the symmetry a livelock needs: it takes several
# consecutive "wrong" choices to get both handlers in step, and from then on any random
# deviation lets one of them through.
RANDOM_MISSES = {
    "polite-livelock": "random walk (seed 0, 2000 schedules) never keeps the two polite "
                       "handlers in step long enough; the systematic search finds it",
}

# Packages only the optional ``web`` and ``services`` extras install.
OPTIONAL = {"anyio", "fastapi", "httpx", "pydantic", "starlette", "sqlalchemy", "aiosqlite",
            "aiohttp", "redis", "uvicorn", "greenlet"}


def _slow(example: Example) -> bool:
    """Services examples run real drivers and protocol stacks: a few hundred schedules
    take seconds, so they run with ``--run-slow`` (``make test``)."""
    return example.module.startswith("examples.services.")


# A found pool race ends its run while the other request still holds a connection; the
# run's end cancels that request, as asyncio.run does, and SQLAlchemy warns when the
# garbage collector later finalises the connection, in whichever test runs then. Expected
# of that buggy example: the services tests ignore that one warning, and the example's
# tests collect their garbage before they end (pytest applies an item's filters to its
# teardown too).
ABANDONS_CONNECTIONS = "pool-nested-checkout"
SERVICES_MARKS = [pytest.mark.slow, pytest.mark.filterwarnings(
    "ignore:The garbage collector is trying to clean up non-checked-in connection"
    ":sqlalchemy.exc.SAWarning")]


@pytest.fixture(autouse=True)
def _services_garbage(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    callspec = getattr(request.node, "callspec", None)
    example = callspec.params.get("example") if callspec is not None else None
    if isinstance(example, Example) and example.name == ABANDONS_CONNECTIONS:
        gc.collect()


def by_name(marks: dict[str, str] | None = None) -> list[Any]:
    return [pytest.param(example, id=example.name,
                         marks=([pytest.mark.skip(reason=marks[example.name])]
                                if marks and example.name in marks else [])
                         + (SERVICES_MARKS if _slow(example) else []))
            for example in EXAMPLES]


def explore(example: Example, scenario: Callable[[], Any], **options: Any) -> Any:
    return explorer.explore(scenario, max_steps=example.max_steps, raise_on_failure=False,
                            **example.options(), **options)


def test_names_are_unique_and_kebab_case() -> None:
    names = [example.name for example in EXAMPLES]
    assert len(names) == len(set(names))
    for name in names:
        assert name == name.lower() and " " not in name and "_" not in name, name


@functools.cache
def _searched(example: Example) -> tuple[explorer.ExploreResult, explorer.ExploreResult]:
    """The example's two systematic searches within its bound, as ``make demo`` makes
    them (:func:`examples.demo.search`), made once per session: the bound tests below and
    the demo test read the same results (the services examples' searches take seconds)."""
    from examples import demo

    return demo.search(example)


@pytest.mark.parametrize("example", by_name())
def test_bug_is_found_within_the_bound_and_replays(example: Example) -> None:
    result, _ = _searched(example)
    failure = result.failure
    assert failure is not None, f"not found within {result.coverage}"
    assert failure.kind == example.kind, failure
    # Found within the deviation bound; then shrunk to the fewest switches, which can
    # take more deviations (a task kept going through its awaits deviates at each).
    shrink = failure.shrink
    assert shrink is not None and shrink.switches is not None
    assert 1 <= shrink.original_deviations <= example.bound
    assert shrink.switches <= (shrink.original_switches or 0)
    with pytest.raises(explorer.ScheduleFailure) as again:
        explorer.replay(example.buggy, str(failure.schedule), max_steps=example.max_steps)
    assert again.value.outcome.signature() == failure.outcome.signature()


@pytest.mark.parametrize("example", by_name())
def test_fixed_version_passes_within_the_bound(example: Example) -> None:
    _, result = _searched(example)
    assert result.failure is None, result.failure
    assert result.exhausted, result.coverage


@pytest.mark.parametrize("example", by_name(RANDOM_MISSES))
def test_random_walk_finds_the_bug(example: Example) -> None:
    # Finding is what is checked here; shrinking is (test_shrink.py, the bound tests).
    result = explore(example, example.buggy, strategy="random", seed=0, max_schedules=2000,
                     shrink=False)
    assert result.failure is not None, f"not found in {result.schedules} random schedules"
    assert result.failure.kind == example.kind, result.failure


SERVICES = [pytest.param(example, id=example.name, marks=SERVICES_MARKS)
            for example in EXAMPLES if _slow(example)]


# The bar, whole, for one services example: the default strategy finds the race
# within 2,000 schedules, the fixed version passes 300 of them, and (in the bound tests
# above, this example's bound being 2) a systematic search within 2 deviations. The
# others' fixed versions, each already proved exhaustively within its bound above, pass
# 100 default schedules: those add many-deviation schedules, at a third of the cost.
FULL_BAR = "orm-lost-update"


@pytest.mark.parametrize("example", SERVICES)
def test_default_strategy_finds_the_services_bug(example: Example) -> None:
    """The default strategy (seed 0) finds each race within 2,000 schedules, and each
    fixed version passes 300 (:data:`FULL_BAR`) or 100 schedules of it."""
    found = explore(example, example.buggy, max_schedules=2000, seed=0, shrink=False)
    assert found.failure is not None, f"not found in {found.schedules} default schedules"
    assert found.failure.kind == example.kind, found.failure
    budget = 300 if example.name == FULL_BAR else 100
    proof = explore(example, example.fixed, max_schedules=budget, seed=0)
    assert proof.failure is None, proof.failure
    assert proof.schedules == budget


def test_the_full_bar_example_is_searched_within_two_deviations() -> None:
    services = {example.name: example for example in EXAMPLES if _slow(example)}
    if not services:
        pytest.skip("the optional services extra is not installed")
    assert services[FULL_BAR].bound == 2


def _example_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(examples.__path__, "examples.")
                  if not info.ispkg)


def _pairs(module: Any) -> list[tuple[Callable[..., Any], Callable[..., Any]]]:
    """Module-level zero-argument async functions ``name`` with a ``name_fixed`` twin."""
    def scenario(fn: Any) -> bool:
        return (inspect.iscoroutinefunction(fn) and fn.__module__ == module.__name__
                and not inspect.signature(fn).parameters)

    return [(fn, getattr(module, f"{name}_fixed"))
            for name, fn in vars(module).items()
            if scenario(fn) and scenario(getattr(module, f"{name}_fixed", None))]


@pytest.mark.parametrize("name", _example_modules())
def test_every_example_pair_is_in_the_gallery(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] in OPTIONAL:
            pytest.skip(f"optional dependency {exc.name} is not installed")
        raise
    registered = {(example.buggy, example.fixed) for example in EXAMPLES + trio_examples()}
    missing = [f"{buggy.__name__}/{fixed.__name__}" for buggy, fixed in _pairs(module)
               if (buggy, fixed) not in registered]
    assert not missing, f"{name} defines scenario pairs missing from the gallery: {missing}"


def test_demo_features_existing_examples() -> None:
    from examples.demo import FEATURED

    names = {example.name for example in all_examples()}
    assert set(FEATURED) <= names


@pytest.mark.slow
def test_demo_finds_every_race_and_verifies_every_fix(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    from examples import demo

    # The searches the bound tests made already are not made twice; the demo's own
    # work (a stock run of each example, its verdicts, the featured failures in full)
    # is all done here.
    assert demo.main([], explore=_searched) == 0
    out = capsys.readouterr().out
    total = len(all_examples()) + len(trio_examples())
    assert f"{total} of {total} races found and their fixes verified." in out
    assert "Why: what ran out of turn to make it fail:" in out
