"""The FastAPI and Starlette gallery examples, driven through httpx's ASGI transport.

For every web example: the systematic search finds the bug within the declared bound, of
the declared kind, off the stock order, and the failing schedule replays to the same
failure; the fixed app passes every schedule within the bound, the whole schedule space,
and a seeded random walk.
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("starlette")
pytest.importorskip("httpx")

import explorer
from examples.gallery import Example, web_examples
from examples.web import EXAMPLES

BY_NAME = [pytest.param(example, id=example.name) for example in EXAMPLES]


def test_examples_cover_both_frameworks_and_are_in_the_gallery() -> None:
    names = [example.name for example in EXAMPLES]
    assert len(names) == len(set(names))
    assert sum(name.startswith("starlette-") for name in names) >= 2
    assert sum(name.startswith("fastapi-") for name in names) >= 2
    assert all(name.startswith(("starlette-", "fastapi-")) for name in names)
    assert [example.name for example in web_examples()] == names


@pytest.mark.parametrize("example", BY_NAME)
def test_bug_is_found_within_the_bound_and_replays(example: Example) -> None:
    result = explorer.explore(example.buggy, strategy="systematic",
                              deviation_bound=example.bound, max_schedules=20_000,
                              max_steps=example.max_steps, raise_on_failure=False)
    failure = result.failure
    assert failure is not None, f"not found within {result.coverage}"
    assert failure.kind == example.kind, failure
    # Found within the deviation bound, then shrunk to the fewest switches (which can
    # take more deviations: a request kept going through its awaits deviates at each).
    assert failure.shrink is not None, failure
    assert 1 <= failure.shrink.original_deviations <= example.bound, failure
    with pytest.raises(explorer.ScheduleFailure) as again:
        explorer.replay(example.buggy, str(failure.schedule), max_steps=example.max_steps)
    assert again.value.outcome.signature() == failure.outcome.signature()


@pytest.mark.parametrize("example", BY_NAME)
def test_stock_order_passes(example: Example) -> None:
    assert explorer.run(example.buggy, max_steps=example.max_steps).passed
    assert explorer.run(example.fixed, max_steps=example.max_steps).passed


@pytest.mark.parametrize("example", BY_NAME)
def test_fixed_passes_the_bounded_systematic_search(example: Example) -> None:
    result = explorer.explore(example.fixed, strategy="systematic",
                              deviation_bound=example.bound, max_schedules=20_000,
                              max_steps=example.max_steps, raise_on_failure=False)
    assert result.failure is None, result.failure
    assert result.exhausted, result.coverage
    assert result.schedules > 1


@pytest.mark.parametrize("example", BY_NAME)
def test_fixed_passes_every_schedule(example: Example) -> None:
    result = explorer.explore(example.fixed, strategy="systematic", max_schedules=2_000,
                              max_steps=example.max_steps, raise_on_failure=False)
    assert result.failure is None, result.failure
    assert result.exhausted, result.coverage


@pytest.mark.parametrize("example", BY_NAME)
def test_fixed_passes_random_search(example: Example) -> None:
    result = explorer.explore(example.fixed, strategy="random", seed=0, max_schedules=200,
                              max_steps=example.max_steps, raise_on_failure=False)
    assert result.failure is None, result.failure
    assert result.schedules == 200
