"""Linearizability checking: what finding a gallery bug costs with no assertion, and what
the checker adds to every run (``python -m benchmarks.run --only linearizability``).

1. Finding: for each gallery race written as an object or app (:mod:`examples.linearizable`)
   with a hand-written counterpart in the gallery, schedules and seconds until the first
   failure under :func:`explorer.check_linearizable` (generated scenarios, no assertion)
   beside :func:`explorer.explore` of the hand-written scenario (one scenario, its
   assertion), both with the default strategy, over the same seeds, alternating the two in
   one process; medians and the ratio of medians.
2. Checker cost: the fixed forms checked with a fixed budget; microseconds per run in all,
   the histories checked and the sequential executions the check needed (memoised per
   scenario), beside the per-run cost of exploring the hand-written fixed scenario.

Numbers are measurements of this machine under its load; counts of schedules are not
affected by load, times are (compare the ratios). No test asserts them.
"""

from __future__ import annotations

import functools
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import explorer
from examples.gallery import Example, all_examples
from examples.linearizable import LinearizableExample, examples


@dataclass(frozen=True)
class Search:
    """One search for a bug: the schedule of the first failure (None: not found) counted
    within its scenario, the scenarios run until then (1 for a hand-written scenario), all
    the schedules the call ran, of them the runs shrinking the scenario and the failing
    schedule (a check's ``shrink_runs``; 0 for ``explore``), and the seconds it took
    (shrinking included)."""

    schedule: int | None
    scenario: int
    total: int
    seconds: float
    shrinking: int = 0


def _timed(call: Callable[[], Any], *, generated: bool) -> Search:
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    failure = result.failure
    return Search(int(failure.found_after) if failure is not None else None,
                  int(result.scenarios) if generated else 1, int(result.schedules), seconds,
                  int(result.shrink_runs) if generated else 0)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _cell(searches: list[Search], *, generated: bool) -> str:
    found = [s for s in searches if s.schedule is not None]
    missed = len(searches) - len(found)
    if not found:
        return f"not found ({missed} seeds)"
    schedules = [s.schedule for s in found if s.schedule is not None]
    text = f"{statistics.median(schedules):g} ({min(schedules)}-{max(schedules)})"
    if generated:
        text = f"scenario {statistics.median([s.scenario for s in found]):g}, " + text
    return text + (f", {missed} missed" if missed else "")


def finding_rows(seeds: int, cap: int) -> list[str]:
    gallery = {example.name: example for example in all_examples()}
    rows = []
    for lin in examples():
        hand = gallery.get(lin.counterpart or "")
        if hand is None:
            continue
        checked: list[Search] = []
        written: list[Search] = []
        for seed in range(seeds):  # alternate the two so load drifts hit both alike
            checked.append(_timed(functools.partial(_check, lin, seed, cap), generated=True))
            written.append(_timed(functools.partial(_explore, hand, seed, cap),
                                  generated=False))
        seconds = (_median([s.seconds for s in checked]),
                   _median([s.seconds for s in written]))
        total = _median([float(s.total) for s in checked])
        shrinking = _median([float(s.shrinking) for s in checked])
        searched = _median([float(s.total - s.shrinking) for s in checked])
        rows.append(f"| {lin.name} | {hand.name} | {_cell(checked, generated=True)} "
                    f"| {total:,.0f} | {searched:,.0f} + {shrinking:,.0f} "
                    f"| {_cell(written, generated=False)} "
                    f"| {seconds[0] * 1000:.0f} ms | {seconds[1] * 1000:.0f} ms "
                    f"| {seconds[0] / seconds[1]:.1f}x |")
        print(f"  searched {lin.name}", file=sys.stderr)
    return rows


def _check(lin: LinearizableExample, seed: int, cap: int) -> Any:
    (factory, operations), _ = lin.checks()
    return explorer.check_linearizable(factory, operations, seed=seed,
                                       schedules_per_scenario=cap, raise_on_failure=False)


def _explore(example: Example, seed: int, cap: int) -> Any:
    return explorer.explore(example.buggy, seed=seed, max_schedules=cap,
                            max_steps=example.max_steps, raise_on_failure=False,
                            **example.options())


@dataclass(frozen=True)
class Cost:
    name: str
    runs: int
    histories: int
    sequential: int
    us_per_run: float
    hand_us_per_run: float | None


def checker_cost(lin: LinearizableExample, hand: Example | None, scenarios: int,
                 per_scenario: int, rounds: int) -> Cost:
    _, (factory, operations) = lin.checks()
    checked: list[float] = []
    written: list[float] = []
    result: Any = None
    for _ in range(rounds):
        start = time.perf_counter()
        result = explorer.check_linearizable(factory, operations, seed=0,
                                             max_scenarios=scenarios,
                                             schedules_per_scenario=per_scenario,
                                             raise_on_failure=False)
        checked.append((time.perf_counter() - start) / max(1, result.schedules))
        if hand is not None:
            start = time.perf_counter()
            explored = explorer.explore(hand.fixed, seed=0, strategy="random",
                                        max_schedules=per_scenario,
                                        max_steps=hand.max_steps, raise_on_failure=False,
                                        **hand.options())
            written.append((time.perf_counter() - start) / max(1, explored.schedules))
    return Cost(lin.name, result.schedules, result.histories, result.sequential_runs,
                _median(checked) * 1e6, _median(written) * 1e6 if written else None)


def section(seeds: int, cap: int, rounds: int) -> list[str]:
    seeds = min(seeds, 10)
    lines = [
        "## Linearizability: bugs found with no assertion",
        "",
        "Gallery races written as objects and apps (`examples/linearizable.py`): "
        "`check_linearizable` generates the concurrent scenarios and judges every run "
        "against one-at-a-time executions; beside it, `explore` of the gallery's "
        f"hand-written scenario with its assertion. Default strategy, seeds 0-{seeds - 1}, "
        f"cap {cap} schedules per scenario (and per exploration). The failing schedule's "
        "number as median (min-max), for the check within the failing generated scenario, "
        "after the median number of scenarios shown; the check's runs in all, then split "
        "as `search_schedules` + `shrink_runs` (the scenarios explored until the "
        "violation, each first with a small budget of up to 10 schedules, then its cap; "
        "then the smaller candidate scenarios, each with twice the budget that met the "
        "violation, at least 20, and the final scenario confirmed and its schedule "
        "shrunk); median seconds per call (confirming and shrinking included), "
        "alternating the two in one process.",
        "",
        "| object form | hand-written | check_linearizable: failing schedule | check: runs "
        "in all | searched + shrinking | explore: failing schedule | seconds (check) "
        "| seconds (explore) | check / explore |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *finding_rows(seeds, cap),
        "",
        f"Checker cost: the fixed forms, 10 scenarios x 20 schedules, {rounds} rounds, "
        "median. Per run means everything (the run under the controlled scheduler, the "
        "sequential executions it needed, the search over orders); the hand-written "
        "column is `explore` of the gallery's fixed scenario (`random`, 20 schedules).",
        "",
        "| object form | runs | histories checked | sequential executions | µs per run "
        "| hand-written µs per run |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    gallery = {example.name: example for example in all_examples()}
    for lin in examples():
        cost = checker_cost(lin, gallery.get(lin.counterpart or ""), 10, 20, rounds)
        hand = f"{cost.hand_us_per_run:,.0f}" if cost.hand_us_per_run is not None else "-"
        lines.append(f"| {cost.name} | {cost.runs:,} | {cost.histories:,} "
                     f"| {cost.sequential:,} | {cost.us_per_run:,.0f} | {hand} |")
        print(f"  measured {lin.name}", file=sys.stderr)
    return lines
