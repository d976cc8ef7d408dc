"""``make demo``: explore the gallery's example races, print a few failures in full and a
one-line verdict for every example, and show that each fixed version passes.

Run with ``python -m examples.demo`` (``--all`` prints every failure in full).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import explorer
from examples.gallery import Example, all_examples, trio_examples

# Shown in full by default: one of each family of hazard.
FEATURED = ("double-spend", "auth-bypass", "lock-order-deadlock", "lost-wakeup",
            "fastapi-rate-limit-bypass", "orm-lost-update", "redis-session-revoked",
            "payment-double-charge")

FEATURED_LINEARIZABLE = ("fastapi-coupon-double-redeem",)


def rule(title: str) -> str:
    return f"\n{'=' * 8} {title} {'=' * max(4, 78 - len(title))}"


Search = Callable[[Example], tuple[explorer.ExploreResult, explorer.ExploreResult]]
"""Explores an example: (the search for its bug, the search that proves its fix)."""


def search(example: Example) -> tuple[explorer.ExploreResult, explorer.ExploreResult]:
    """Systematic search within the example's deviation bound, for the buggy version and
    for the fixed one (the gallery's tests make the same two searches)."""
    def systematic(scenario: Callable[[], Any]) -> explorer.ExploreResult:
        return explorer.explore(scenario, strategy="systematic",
                                deviation_bound=example.bound, max_steps=example.max_steps,
                                max_schedules=20_000, raise_on_failure=False,
                                **example.options())

    return systematic(example.buggy), systematic(example.fixed)


def check(example: Example, verbose: bool, explore: Search = search) -> tuple[bool, str]:
    """Explore the buggy and the fixed version with ``explore``; return (as expected,
    one-line verdict)."""
    runtime = example.runtime
    stock = explorer.run(example.buggy, max_steps=example.max_steps,
                         runtime=runtime).outcome.kind
    found, proof = explore(example)
    failure = found.failure
    if verbose:
        print(rule(f"{example.name}: {example.hazard}"))
        print(f"stock {example.runtime} order: {stock}"
              + (" (explored with faults=True: network faults are decisions)"
                 if example.faults else ""))
        if failure is not None:
            print(f"found after {found.schedules} schedule(s):\n\n{failure}")
        verdict = "passes" if proof.failure is None else "FAILS"
        print(f"\nfixed version ({example.fixed.__name__}) {verdict}: {proof.coverage}")
    ok = (failure is not None and failure.kind == example.kind and proof.failure is None
          and proof.exhausted)
    if failure is None:
        line = f"NOT FOUND within {found.coverage}"
    else:
        schedule = str(failure.schedule)
        if len(schedule) > 60:  # a starvation keeps one task going: a long schedule
            schedule = f"{schedule[:50]}... (replay string in the full report)"
        line = (f"{failure.kind} after {found.schedules} schedule(s), "
                f"{failure.simplicity()}, {schedule}; fixed version "
                f"{'passes' if proof.failure is None else 'FAILS'} "
                f"{proof.schedules} schedules within {example.bound} deviation(s)")
    return ok, line


def main(argv: list[str] | None = None, *, explore: Search = search) -> int:
    """Run the demo; ``explore`` makes each example's two searches (a caller that has
    made them already, such as the gallery's tests, passes them in)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--all", action="store_true", help="print every failure in full")
    args = parser.parse_args(argv)
    examples = all_examples() + trio_examples()
    verdicts = []
    for example in examples:
        verdicts.append((example, *check(example, args.all or example.name in FEATURED,
                                         explore)))
    print(rule("summary: every example in the gallery"))
    width = max(len(e.name) for e in examples)
    for example, ok, line in verdicts:
        print(f"{'ok ' if ok else 'BAD'} {example.name:<{width}}  {line}")
    bad = sum(1 for _, ok, _ in verdicts if not ok)
    print(f"\n{len(verdicts) - bad} of {len(verdicts)} races found and their fixes verified.")
    return 1 if bad + linearizability(args.all) else 0


def linearizability(verbose: bool) -> int:
    """Check the gallery's races written as objects and apps, with no assertion; print a
    verdict for each (the coupon's failure in full); return how many were not as
    expected."""
    from examples.gallery import linearizable_examples

    print(rule("no assertion: objects and apps checked for linearizability"))
    bad = 0
    for example in linearizable_examples():
        (buggy, operations), (fixed, fixed_operations) = example.checks()
        found = explorer.check_linearizable(buggy, operations, seed=0, max_scenarios=10,
                                            schedules_per_scenario=30,
                                            raise_on_failure=False)
        proof = explorer.check_linearizable(fixed, fixed_operations, seed=0,
                                            max_scenarios=10, schedules_per_scenario=30,
                                            raise_on_failure=False)
        failure = found.failure
        if failure is not None and (verbose or example.name in FEATURED_LINEARIZABLE):
            print(f"\n{example.name}: {example.hazard}\n\n{failure}\n")
        ok = failure is not None and failure.kind == "not_linearizable" and proof.ok
        bad += not ok
        verdict = (f"{failure.kind} in {found.schedules} schedule(s)" if failure is not None
                   else f"NOT FOUND ({found.coverage})")
        print(f"{'ok ' if ok else 'BAD'} {example.name}  {verdict}; fixed version "
              f"{'passes' if proof.ok else 'FAILS'} {proof.schedules} schedules")
    return bad


if __name__ == "__main__":
    sys.exit(main())
