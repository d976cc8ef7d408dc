"""``make demo``: explore the bundled example scenarios, print each race the explorer finds
and show that the fixed versions pass.

Run with ``python -m examples.demo``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import explorer
from examples import bank, counter, signal, transfer

CASES: list[tuple[str, Callable[..., Any], Callable[..., Any]]] = [
    ("check-then-act double spend", bank.double_spend, bank.double_spend_fixed),
    ("lost update on a counter", counter.lost_update, counter.lost_update_fixed),
    ("lock-order deadlock", transfer.abba, transfer.abba_fixed),
    ("lost wake-up after cancellation", signal.lost_wakeup, signal.lost_wakeup_fixed),
]
BOUND = 2


def rule(title: str) -> str:
    return f"\n{'=' * 8} {title} {'=' * max(4, 78 - len(title))}"


def main() -> int:
    missed = 0
    for title, buggy, fixed in CASES:
        print(rule(title))
        stock = explorer.run(buggy)
        print(f"stock asyncio order: {stock.outcome.kind}")
        result = explorer.explore(buggy, strategy="systematic", deviation_bound=BOUND,
                                  raise_on_failure=False)
        if result.failure is None:
            missed += 1
            print(f"NOT FOUND within {result.coverage}")
            continue
        print(f"found after {result.schedules} schedule(s):\n")
        print(result.failure)
        checked = explorer.explore(fixed, strategy="systematic", deviation_bound=BOUND,
                                   raise_on_failure=False)
        verdict = "passes" if checked.failure is None else "FAILS"
        print(f"\nfixed version ({fixed.__name__}) {verdict}: {checked.coverage}")
        missed += checked.failure is not None
    print(rule("summary"))
    print(f"{len(CASES) - missed} of {len(CASES)} races found, and their fixes verified.")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
