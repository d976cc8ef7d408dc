"""``python -m benchmarks.heldout.userterms``: failures in the user's terms, measured on
held-out scenarios whose awaits pass through real library stacks.

Cases: :mod:`~benchmarks.heldout.quota` (redis-py's asyncio client over a fakeredis
server, check-then-act on a key) and :mod:`~benchmarks.heldout.signup` (Starlette over
``httpx.ASGITransport``, the second request running ahead through three awaits). For each:

- **found**: ``explore(buggy, max_schedules=2000, seed=s)`` under the default strategy for
  seeds 0..4: the schedule at which the failure was found (``found_after``) and the median;
- **shrunk**: each seed's failure as shrunk: switches, deviations, runs, and whether the
  shrinker proved it minimal;
- **story**: the explanation items of each seed's failure, how many, and whether each names
  a line of the scenario's own file; for the web case, whether the story names the request
  (method and path) or its handler;
- **fixed**: ``explore(fixed, max_schedules=300, seed=0)`` passes.

The bar: median found <= 50, every failure proven minimal, at most 2 items each naming a
line of the scenario's file, and the web story naming the request. Numbers are
measurements; nothing here is asserted by the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import explorer
from benchmarks.heldout import quota, signup

Scenario = Callable[[], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Case:
    buggy: Scenario
    fixed: Scenario
    source: str
    names: tuple[str, ...] = ()  # any of these in the story names the request


CASES = {
    "redis-py quota (fakeredis)": Case(quota.buggy, quota.fixed, quota.__file__),
    "Starlette signup over httpx ASGI": Case(signup.buggy, signup.fixed, signup.__file__,
                                             ("POST /signup", "→ signup")),
}


def measure(name: str, case: Case, seeds: int) -> bool:
    base = os.path.basename(case.source)
    found: list[int | None] = []
    ok = True
    print(f"\n## {name}\n")
    print("| seed | found after | shrunk | runs | proven | items | all items name "
          f"{base} | names the request |")
    print("|---:|---:|---|---:|---|---:|---|---|")
    for seed in range(seeds):
        result = explorer.explore(case.buggy, seed=seed, max_schedules=2000,
                                  raise_on_failure=False)
        failure = result.failure
        if failure is None:
            found.append(None)
            print(f"| {seed} | not found | | | | | | |")
            ok = False
            continue
        found.append(failure.found_after)
        items = failure.to_json()["explanation"]
        assert isinstance(items, list)
        own = all(f"{base}:" in str(item) for item in items)
        story = "\n".join(map(str, items))
        named = any(n in story for n in case.names) if case.names else None
        shrink = failure.shrink
        proven = bool(shrink and shrink.proven_minimal)
        print(f"| {seed} | {failure.found_after} | {failure.simplicity()} | "
              f"{shrink.runs if shrink else '-'} | {'yes' if proven else 'no'} | "
              f"{len(items)} | {'yes' if own else 'no'} | "
              f"{'-' if named is None else 'yes' if named else 'no'} |")
        ok = ok and proven and 1 <= len(items) <= 2 and own and named is not False
        if seed == 0:
            print("\nStory of seed 0:\n")
            for item in items:
                print(f"    {item}")
            print()
    counts = [n if n is not None else 10**9 for n in found]
    median = statistics.median(counts)
    print(f"\nfound after: {found}; median {median:g}")
    fixed = explorer.explore(case.fixed, seed=0, max_schedules=300, raise_on_failure=False)
    print(f"fixed: {'passes' if fixed.failure is None else 'FAILS'} "
          f"({fixed.schedules} schedules)")
    return ok and median <= 50 and fixed.failure is None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    verdicts = {name: measure(name, case, args.seeds) for name, case in CASES.items()}
    print()
    for name, ok in verdicts.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
