"""The gallery: every bundled example race, with its fixed version and how to search it.

Each :class:`Example` names a hazard, the buggy scenario, the fixed scenario, the failure
kind the explorer must report for the buggy one, and the deviation bound within which the
systematic search finds the bug and proves the fix. Tests, ``make demo`` and ``make bench``
all read this list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from examples import (
    auth,
    bank,
    cache,
    counter,
    livelock,
    pool,
    privilege,
    ratelimit,
    signal,
    stampede,
    starvation,
    transfer,
)


@dataclass(frozen=True)
class Example:
    name: str
    hazard: str
    buggy: Callable[[], Any]
    fixed: Callable[[], Any]
    kind: str
    bound: int = 2
    max_steps: int = 20_000
    runtime: str = "asyncio"
    # The bug needs an injected network fault (a lost response, a reset): explore with
    # ``faults=True`` (see :meth:`options`).
    faults: bool = False
    # The scenario reaches servers by names only the simulated network serves
    # (``redis.internal``): it cannot run on a stock event loop.
    network: bool = False

    @property
    def module(self) -> str:
        return self.buggy.__module__

    def options(self) -> dict[str, Any]:
        """The keyword arguments every exploration of this example needs."""
        return {"runtime": self.runtime, **({"faults": True} if self.faults else {})}


CORE: list[Example] = [
    Example("lost-update", "lost update on a shared counter", counter.lost_update,
            counter.lost_update_fixed, "assertion"),
    Example("double-spend", "check-then-act double spend on a balance", bank.double_spend,
            bank.double_spend_fixed, "assertion"),
    Example("lock-order-deadlock", "lock-order deadlock between two handlers", transfer.abba,
            transfer.abba_fixed, "deadlock"),
    Example("lost-wakeup", "lost wake-up: a cancelled waiter swallows a notification",
            signal.lost_wakeup, signal.lost_wakeup_fixed, "deadlock"),
    Example("auth-bypass", "authentication bypass: a request outlives its session's logout",
            auth.logout_race, auth.logout_race_fixed, "assertion", bound=3),
    Example("privilege-escalation", "privilege escalation: an admin action after a demotion",
            privilege.role_race, privilege.role_race_fixed, "assertion", bound=3),
    Example("rate-limit-bypass", "rate limiter bypass: token bucket read-modify-write",
            ratelimit.burst, ratelimit.burst_fixed, "assertion", bound=3),
    Example("torn-cache-entry", "information disclosure through a half-updated cache entry",
            cache.torn_entry, cache.torn_entry_fixed, "assertion", bound=3),
    Example("cache-stampede", "cache stampede: concurrent misses all recompute",
            stampede.stampede, stampede.stampede_fixed, "assertion", bound=3),
    Example("pool-double-checkout", "connection pool hands one connection to two handlers",
            pool.shared_connection, pool.shared_connection_fixed, "assertion", bound=3),
    Example("polite-livelock", "livelock: two polite handlers back off forever",
            livelock.polite_pair, livelock.polite_pair_fixed, "livelock", bound=3,
            max_steps=2000),
    Example("spin-lock-starvation", "starvation: an unfair spin lock lets newcomers barge",
            starvation.barging, starvation.barging_fixed, "assertion", bound=3),
]


def web_examples() -> list[Example]:
    """The FastAPI/Starlette examples, when the optional ``web`` extra is installed."""
    try:
        from examples.web import EXAMPLES
    except ImportError:
        return []
    return list(EXAMPLES)


def services_examples() -> list[Example]:
    """Databases, Redis and HTTP services started inside the scenario, when the optional
    ``web`` and ``services`` extras are installed."""
    try:
        from examples.services import EXAMPLES
    except ImportError:
        return []
    return list(EXAMPLES)


def trio_examples() -> list[Example]:
    """The core hazards in trio form (run with ``runtime="trio"``)."""
    from examples.trio import EXAMPLES

    return list(EXAMPLES)


def linearizable_examples() -> list[Any]:
    """Races written as an object or app and its operations, with no scenario and no
    assertion, checked with ``explorer.check_linearizable``
    (:class:`examples.linearizable.LinearizableExample`; the FastAPI coupon among them)."""
    from examples.linearizable import examples

    return examples()


def unfaulted_examples() -> list[Example]:
    """The asyncio examples whose bug needs no injected fault: the ones every strategy and
    the strategy-wide tests run as they are (an example that needs ``faults=True`` is
    explored with it by its own tests; ``dpor`` refuses faults)."""
    return [example for example in all_examples() if not example.faults]


def all_examples() -> list[Example]:
    """Every asyncio example (core, web and services); the trio forms are in
    :func:`trio_examples`."""
    return CORE + web_examples() + services_examples()
