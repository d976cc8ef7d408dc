"""``python -m benchmarks.heldout.bar``: the services Bar measured on the held-out scenarios.

For each case (:data:`CASES`: the three scenarios of :mod:`~benchmarks.heldout.stock`,
:mod:`~benchmarks.heldout.seats` and :mod:`~benchmarks.heldout.wallet` as written, plus
variants: a second client that browses first, so that the stock schedule passes and the
race needs a deviation; the seat server's audit written through ``asyncio.to_thread``;
and "strict cleanup", which only changes how the servers are shut down):

- **stock asyncio**: the buggy and the fixed version once each under ``asyncio.run`` with
  real threads and sockets, to show the bug is real and the fix holds outside the explorer
  (a single run of the buggy version may pass: that depends on real timing).
- **found**: the buggy version under the default strategy, ``explore(buggy,
  max_schedules=2000, seed=s)`` for each seed: the failure kind and the 1-based schedule
  at which it was found (``found_after``), and the shrunk schedule.
- **fixed**: ``explore(fixed, max_schedules=300, seed=s)`` for each seed must pass.
- **systematic**: ``explore(fixed, strategy=Systematic(deviation_bound=2))`` must pass;
  the schedules it ran and whether it exhausted the space within ``--systematic-cap``.
- **escape**: the fixed version extended with a connection to an address nothing in the
  scenario serves (127.0.0.1:9, a name, ``http://example.invalid/``) must end as
  ``escape``; the message is printed.
- **faults**: ``explore(fixed, max_schedules=300, seed=0, faults=True)``, then the same
  with each kind alone (``faults={"reset"}``, ...): what happens.

``--quick`` runs seeds 0..1 for the buggy versions, seed 0 for the fixed ones and caps the
systematic search at 2,000 schedules. Numbers are measurements; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import explorer
from benchmarks.heldout import seats, stock, wallet
from explorer.strategies import Systematic

Scenario = Callable[[], Coroutine[Any, Any, None]]
FAULT_KINDS = ("refused", "reset", "dropped", "unanswered")


@dataclass(frozen=True)
class Case:
    """One held-out scenario: its buggy and fixed versions, and the fixed version extended
    with connections to unserved addresses (empty: not measured for this case)."""

    buggy: Scenario
    fixed: Scenario
    unserved: tuple[Scenario, ...] = ()


# The plain cases are the code as written; the "strict cleanup" cases differ only in how
# they shut their servers down (the order docs/services.md advises), so that a false
# leaked_task in the plain ones does not hide the rest of the measurements.
CASES: dict[str, Case] = {
    "sqlalchemy-stock": Case(stock.buggy, stock.fixed, (stock.unserved,)),
    "sqlalchemy-stock browse-first": Case(stock.buggy_browse, stock.fixed_browse),
    "streams-seats": Case(seats.buggy, seats.fixed, (seats.unserved, seats.unserved_name)),
    "streams-seats strict-cleanup": Case(seats.buggy_strict, seats.fixed_strict),
    "streams-seats browse-first": Case(seats.buggy_browse, seats.fixed_browse),
    "streams-seats browse-first strict-cleanup": Case(seats.buggy_browse_strict,
                                                      seats.fixed_browse_strict),
    "streams-seats to_thread-audit": Case(seats.buggy_file, seats.fixed_file),
    "streams-seats to_thread-audit strict-cleanup": Case(seats.buggy_file_strict,
                                                         seats.fixed_file_strict),
    "aiohttp-wallet": Case(wallet.buggy, wallet.fixed, (wallet.unserved, wallet.unserved_port)),
    "aiohttp-wallet strict-cleanup": Case(wallet.buggy_strict, wallet.fixed_strict),
}


@dataclass
class Row:
    """What one exploration gave, for the table."""

    what: str
    seed: int | None
    ok: bool
    schedules: int
    seconds: float
    kind: str = "pass"
    found_after: int | None = None
    schedule: str = ""
    exhausted: bool = False
    message: str = ""
    strategy: str = ""
    notes: list[str] = field(default_factory=list)

    def cell(self) -> str:
        if self.ok:
            end = ", exhausted" if self.exhausted else ""
            return f"pass ({self.schedules} schedules{end}, {self.seconds:.1f}s)"
        return (f"{self.kind} at #{self.found_after} [{self.strategy}] "
                f"shrunk {self.schedule} ({self.seconds:.1f}s)")


def _explore(what: str, fn: Scenario, seed: int | None, **options: Any) -> Row:
    started = time.perf_counter()
    try:
        result = explorer.explore(fn, seed=seed, raise_on_failure=False, **options)
    except Exception as error:  # noqa: BLE001 - a crash of the explorer is a result here
        return Row(what, seed, False, 0, time.perf_counter() - started, kind="CRASH",
                   message="".join(traceback.format_exception(error)))
    seconds = time.perf_counter() - started
    failure = result.failure
    if failure is None:
        return Row(what, seed, True, result.schedules, seconds, exhausted=result.exhausted)
    return Row(what, seed, False, result.schedules, seconds, kind=failure.kind,
               found_after=failure.found_after, schedule=str(failure.schedule),
               exhausted=result.exhausted, message=failure.outcome.message,
               strategy=str(failure.strategy.get("name", "")), notes=[str(failure)])


def _stock_asyncio(fn: Scenario) -> str:
    try:
        asyncio.run(fn())
    except AssertionError as error:
        return f"fails: {error}"
    except Exception as error:  # noqa: BLE001 - reported, not raised
        return f"error: {type(error).__name__}: {error}"
    return "passes"


def measure(name: str, case: Case, args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    print(f"\n=== {name} ({case.buggy.__module__}.{case.buggy.__name__} / "
          f"{case.fixed.__name__}) ===", flush=True)
    for version, fn in (("buggy", case.buggy), ("fixed", case.fixed)):
        print(f"stock asyncio.run, {version}: {_stock_asyncio(fn)}", flush=True)

    def emit(row: Row) -> None:
        rows.append(row)
        seed = "" if row.seed is None else f" seed {row.seed}"
        print(f"{row.what}{seed}: {row.cell()}", flush=True)
        if row.kind == "CRASH" or (not row.ok and row.what != "found"
                                   and row.kind != "escape"):
            text = row.notes[0] if row.notes else row.message
            if row.what.startswith("faults") and row.kind != "CRASH":
                text = "\n".join(text.splitlines()[:8])  # the story's head is enough
            print("    " + text.replace("\n", "\n    "), flush=True)

    for seed in range(args.buggy_seeds):
        emit(_explore("found", case.buggy, seed, max_schedules=2000))
    for seed in range(args.fixed_seeds):
        emit(_explore("fixed", case.fixed, seed, max_schedules=300))
    emit(_explore("systematic", case.fixed, None,
                  strategy=Systematic(deviation_bound=2), max_schedules=args.systematic_cap))
    for unserved in case.unserved:
        escape = _explore("escape", unserved, 0, max_schedules=50)
        emit(escape)
        print(f"    {unserved.__name__}: {escape.message}", flush=True)
    emit(_explore("faults", case.fixed, 0, max_schedules=300, faults=True))
    for kind in FAULT_KINDS:
        emit(_explore(f"faults:{kind}", case.fixed, 0, max_schedules=300, faults={kind}))
    return rows


def table(results: dict[str, list[Row]]) -> str:
    lines = ["| scenario | buggy: found at schedule (seed: #n) | fixed, 300 schedules "
             "| systematic, 2 deviations | unserved address | faults=True (fixed) |",
             "|---|---|---|---|---|---|"]
    for name, rows in results.items():
        found = ", ".join(f"{r.seed}: not found" if r.ok else f"{r.seed}: #{r.found_after}"
                          if r.kind == "assertion" else f"{r.seed}: {r.kind} #{r.found_after}"
                          for r in rows if r.what == "found")
        fixed = ", ".join(f"{r.seed}: {'pass' if r.ok else r.kind}"
                          for r in rows if r.what == "fixed")
        system = next(r for r in rows if r.what == "systematic")
        system_cell = (f"pass, {system.schedules}"
                       f"{' (exhausted)' if system.exhausted else ' (cap reached)'}"
                       if system.ok else f"{system.kind} at #{system.found_after}")
        escape = ", ".join(r.kind for r in rows if r.what == "escape") or "-"
        faults_cell = "; ".join(
            f"{r.what.removeprefix('faults').removeprefix(':') or 'all'}: "
            + ("pass" if r.ok else f"{r.kind} #{r.found_after} {r.schedule}")
            for r in rows if r.what.startswith("faults"))
        lines.append(f"| {name} | {found} | {fixed} | {system_cell} | {escape} "
                     f"| {faults_cell} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true",
                        help="seeds 0..1 (buggy) and 0 (fixed), systematic capped at 2,000")
    parser.add_argument("--only", choices=sorted(CASES), action="append",
                        help="run only this scenario (repeatable)")
    parser.add_argument("--systematic-cap", type=int, default=None,
                        help="max schedules of the systematic search (default 50,000; "
                             "2,000 with --quick)")
    args = parser.parse_args(argv)
    args.buggy_seeds, args.fixed_seeds = (2, 1) if args.quick else (5, 3)
    if args.systematic_cap is None:
        args.systematic_cap = 2_000 if args.quick else 50_000
    results = {name: measure(name, case, args) for name, case in CASES.items()
               if not args.only or name in args.only}
    print("\n" + table(results))


if __name__ == "__main__":
    main()
