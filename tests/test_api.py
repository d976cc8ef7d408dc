"""The public API contract: names, results, errors with their fixes."""

from __future__ import annotations

import asyncio
import functools
import inspect
import warnings

import pytest

import explorer
from examples import bank, counter
from explorer import strategies


def test_all_is_complete() -> None:
    public = {n for n in dir(explorer) if not n.startswith("_")}
    public -= {"annotations", "importlib", "TYPE_CHECKING", "Any"}  # module plumbing
    public = {n for n in public if not inspect.ismodule(getattr(explorer, n))}
    assert public == set(explorer.__all__) - {"__version__"}
    for name in explorer.__all__:
        assert hasattr(explorer, name)
    for name in strategies.__all__:
        assert hasattr(strategies, name)


def test_exception_hierarchy() -> None:
    assert issubclass(explorer.ScheduleFailure, AssertionError)
    for cls in (explorer.ScheduleFailure, explorer.UsageError, explorer.EscapeError,
                explorer.InvalidScheduleError, explorer.ReplayDivergence,
                explorer.RuntimeSelfTestError):
        assert issubclass(cls, explorer.ExplorerError)
    assert issubclass(explorer.UsageError, TypeError)
    assert issubclass(explorer.InvalidScheduleError, ValueError)
    assert issubclass(explorer.ReplayDivergence, ValueError)


def test_passing_exploration_result() -> None:
    result = explorer.explore(counter.lost_update_fixed, strategy="random", max_schedules=50,
                              seed=1)
    assert result.schedules == 50
    assert result.failure is None
    assert result.ok
    assert not result.exhausted
    assert result.strategy == {"name": "random", "seed": 1}
    assert "50 random schedules (seed 1)" in result.coverage
    assert 1 <= result.distinct <= 50
    assert result.steps > 0


def test_run_returns_the_outcome_without_raising() -> None:
    result = explorer.run(bank.double_spend, schedule="v1:0=1,1=1")
    assert not result.passed
    assert result.outcome.kind == "assertion"
    assert str(result.schedule) == "v1:0=1,1=1"
    assert len(result.trace) == result.steps


def test_replay_of_a_passing_schedule_returns() -> None:
    result = explorer.replay(bank.double_spend, "v1:")
    assert result.passed


def test_arguments_are_passed_to_the_scenario() -> None:
    async def scenario(a: int, b: int) -> None:
        await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))
        assert a + b == 3

    assert explorer.explore(scenario, 1, 2, max_schedules=3).ok
    assert explorer.run(scenario, 1, 2).passed
    assert explorer.explore(functools.partial(scenario, 1, 2), max_schedules=3).ok


# ---------------------------------------------------------------------- errors


def test_sync_function_is_refused() -> None:
    def not_async() -> None:
        pass

    with pytest.raises(explorer.UsageError, match="not an async function; define it with"):
        explorer.explore(not_async)


def test_coroutine_object_is_refused_without_a_never_awaited_warning() -> None:
    coro = counter.lost_update()
    with pytest.raises(explorer.UsageError, match=r"write explore\(main\), not"):
        explorer.explore(coro)  # type: ignore[arg-type]


def test_callable_returning_a_non_coroutine_is_refused() -> None:
    with pytest.raises(explorer.UsageError, match="returned int, not a coroutine"):
        explorer.explore(lambda: 3)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"strategy": "sideways"}, "unknown strategy 'sideways'; use one of: .*random.*systematic"),
    ({"runtime": "curio"}, "unknown runtime 'curio'"),
    ({"max_schedules": 0}, "max_schedules must be a positive integer"),
    ({"max_steps": -5}, "max_steps must be a positive integer"),
])
def test_bad_arguments_name_the_problem(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(explorer.UsageError, match=match):
        explorer.explore(counter.lost_update, **kwargs)  # type: ignore[arg-type]


def test_always_outside_a_run_is_refused() -> None:
    with pytest.raises(explorer.UsageError, match="outside a controlled run"):
        explorer.always(lambda: True)


def test_always_needs_a_callable() -> None:
    async def scenario() -> None:
        explorer.always(True)  # type: ignore[arg-type]

    result = explorer.run(scenario)
    assert result.outcome.kind == "exception"
    assert "zero-argument callable" in result.outcome.message


def test_strict_replay_reports_where_the_schedule_diverged() -> None:
    with pytest.raises(explorer.ReplayDivergence) as info:
        explorer.replay(bank.double_spend, "v1:0=9")
    err = info.value
    assert (err.point, err.expected, err.available) == (0, 9, 2)
    assert "at scheduling point 0 it asks for candidate 9, but only 2" in str(err)
    assert "strict=False" in str(err)


def test_replay_past_the_end_of_the_run_diverges() -> None:
    with pytest.raises(explorer.ReplayDivergence, match="the run ended after"):
        explorer.replay(bank.double_spend, "v1:500=1")


def test_tolerant_replay_continues_with_default_choices() -> None:
    result = explorer.run(bank.double_spend, schedule="v1:0=9", strict=False)
    assert result.divergences == [(0, 9, 2)]
    assert result.passed


def test_nested_explore_inside_a_scenario_is_refused() -> None:
    async def scenario() -> None:
        explorer.run(counter.lost_update)

    result = explorer.run(scenario)
    assert result.outcome.kind == "exception"
    assert "call them from a test, not from the scenario" in result.outcome.message


def test_time_budget_stops_exploration() -> None:
    result = explorer.explore(counter.lost_update_fixed, max_schedules=10_000, max_time=0)
    assert result.schedules == 1
    assert not result.exhausted


async def _sequential() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_health_warning_when_nothing_runs_concurrently() -> None:
    with pytest.warns(explorer.HealthWarning, match="without a single scheduling point"):
        explorer.explore(_sequential, max_schedules=5)


class _AlwaysStock(strategies.RandomWalk):
    def choose(self, count: int, view: object) -> int:
        return 0


def test_health_warning_when_every_schedule_is_the_same() -> None:
    with pytest.warns(explorer.HealthWarning, match="all 20 schedules of .* were identical"):
        explorer.explore(counter.lost_update_fixed, strategy=_AlwaysStock(1),
                         max_schedules=20)


def test_a_short_exploration_of_identical_schedules_is_not_a_health_problem() -> None:
    # A sampler may repeat the stock order a few times by chance; warning then would make
    # the warning depend on the seed.
    with warnings.catch_warnings():
        warnings.simplefilter("error", explorer.HealthWarning)
        result = explorer.explore(counter.lost_update_fixed, strategy=_AlwaysStock(1),
                                  max_schedules=19)
    assert result.ok and result.distinct == 1


def test_health_warning_near_the_step_bound() -> None:
    with pytest.warns(explorer.HealthWarning, match="more than half of max_steps=30"):
        explorer.explore(counter.lost_update_fixed, max_schedules=3, max_steps=30, seed=1)


def test_unseeded_random_search_follows_the_global_random_state() -> None:
    import random

    random.seed(1234)
    first = explorer.explore(counter.lost_update_fixed, max_schedules=2).strategy["seed"]
    random.seed(1234)
    second = explorer.explore(counter.lost_update_fixed, max_schedules=2).strategy["seed"]
    assert first == second


def test_lazy_exports_match_all() -> None:
    assert set(explorer.__all__) - {"__version__"} == set(explorer._WHERE)
