"""The naive baseline: stock asyncio with random ``await asyncio.sleep(0)`` jitter.

Without a controlled scheduler, the usual way to shake out races is to perturb timing:
here every ``asyncio.sleep`` call first yields a random number (0 to 2) of extra times,
by monkeypatching, and the scenario is re-run on a stock loop until it fails. Deadlocks
and livelocks cannot be observed that way except through a real-time timeout, which is
counted as a failure.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import explorer

TIMEOUT = 0.2  # real seconds a run may take before it counts as hung


@contextmanager
def jitter(rng: random.Random) -> Iterator[None]:
    original = asyncio.sleep

    async def jittery_sleep(delay: float, result: Any = None) -> Any:
        for _ in range(rng.randint(0, 2)):
            await original(0)
        return await original(delay, result)

    asyncio.sleep = jittery_sleep  # type: ignore[assignment]
    try:
        yield
    finally:
        asyncio.sleep = original


def runs_to_failure(scenario: Callable[[], Any], seed: int, cap: int) -> int | str | None:
    """Runs until the first failure (``None`` if none within ``cap``; ``"n/a"`` if the
    scenario needs the controlled runtime, for example for ``explorer.always``)."""
    rng = random.Random(seed)
    loop = asyncio.new_event_loop()
    try:
        with jitter(rng):
            for run in range(1, cap + 1):
                try:
                    loop.run_until_complete(asyncio.wait_for(scenario(), TIMEOUT))
                except explorer.UsageError:
                    return "n/a"
                except (Exception, AssertionError):  # noqa: BLE001 - any failure counts
                    return run
        return None
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
