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

from examples import bank, counter, signal, transfer


@dataclass(frozen=True)
class Example:
    name: str
    hazard: str
    buggy: Callable[[], Any]
    fixed: Callable[[], Any]
    kind: str
    bound: int = 2
    max_steps: int = 20_000

    @property
    def module(self) -> str:
        return self.buggy.__module__


CORE: list[Example] = [
    Example("lost-update", "lost update on a shared counter", counter.lost_update,
            counter.lost_update_fixed, "assertion"),
    Example("double-spend", "check-then-act double spend on a balance", bank.double_spend,
            bank.double_spend_fixed, "assertion"),
    Example("lock-order-deadlock", "lock-order deadlock between two handlers", transfer.abba,
            transfer.abba_fixed, "deadlock"),
    Example("lost-wakeup", "lost wake-up: a cancelled waiter swallows a notification",
            signal.lost_wakeup, signal.lost_wakeup_fixed, "deadlock"),
]


def web_examples() -> list[Example]:
    """The FastAPI/Starlette examples, when the optional ``web`` extra is installed."""
    try:
        from examples.web import EXAMPLES
    except ImportError:
        return []
    return list(EXAMPLES)


def all_examples() -> list[Example]:
    return CORE + web_examples()
