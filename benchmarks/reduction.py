"""Partial-order reduction: schedules explored with and without it, the number of
equivalence classes they fall into (by brute force), and what recording footprints costs
per run.

:func:`canonical_class` and :func:`all_runs` are also what the tests compare DPOR with.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import explorer
from benchmarks import scenarios
from explorer._asyncio._runner import AsyncioRuntime
from explorer._runtime import RunMode, Runtime
from explorer.strategies import DPOR, Fixed

CAP = 50_000
CLASSES_CAP = 5_000  # schedules a brute-force class count may take


# ---------------------------------------------------------------- equivalence classes

def _conflicting_pairs(steps: Sequence[Any]) -> set[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of steps whose recorded accesses conflict (the same
    object and item, or the whole object, at least one writing; the unknown access
    ``(0, None, "w")`` conflicts with any step that touches something)."""
    by_object: dict[int, list[tuple[int, object, str]]] = {}
    unknown: list[int] = []
    touching: list[int] = []
    for j, step in enumerate(steps):
        if step.footprint:
            touching.append(j)
        for obj, item, mode in step.footprint:
            if obj == 0:
                unknown.append(j)
            else:
                by_object.setdefault(obj, []).append((j, item, mode))
    pairs: set[tuple[int, int]] = set()
    for accesses in by_object.values():
        for a, (i, item, mode) in enumerate(accesses):
            for j, other_item, other_mode in accesses[a + 1:]:
                if i != j and (mode == "w" or other_mode == "w") and (
                        item is None or other_item is None or item == other_item):
                    pairs.add((i, j))
    for u in unknown:
        pairs.update((min(u, k), max(u, k)) for k in touching if k != u)
    return pairs


def _enabler(steps: Sequence[Any], names: list[Hashable], k: int | None) -> Hashable:
    """The name of the event that enabled another. Callbacks that only read shared state
    (gather's completion callbacks of children that succeeded) commute, and whichever of
    them runs last completes the gather and wakes its waiter: which one it was is not
    part of the class."""
    if k is None:
        return None
    step = steps[k]
    if step.process == "loop" and any(mode == "r" for _obj, _item, mode in step.footprint):
        return ("a commuting callback",)
    return names[k]


def canonical_class(steps: Sequence[Any]) -> Hashable:
    """A canonical form of a run's equivalence class (its Mazurkiewicz trace), from its
    step records (process, footprint, enabler, point).

    Independent of :mod:`explorer.strategies._dpor`: events are named without positions — a task's
    n-th step ``(task, n)``, a plain callback ``("callback", <name of the step that queued
    it>, k)`` for the k-th one that step queued — and the form is the set of events, who
    enabled each, and the order of every pair of conflicting events (other than two steps
    of one task, which program order fixes). Two runs have the same form exactly when one
    is the other with adjacent independent steps swapped.
    """
    names: list[Hashable] = []
    per_task: dict[str, int] = {}
    queued: dict[int | None, int] = {}
    for step in steps:
        if step.process == "loop":
            k = queued.get(step.enabler, 0)
            queued[step.enabler] = k + 1
            parent = names[step.enabler] if step.enabler is not None else None
            names.append(("callback", parent, k))
        else:
            n = per_task.get(step.process, 0)
            per_task[step.process] = n + 1
            names.append((step.process, n))
    enabled_by = frozenset(
        (names[j], _enabler(steps, names, step.enabler)) for j, step in enumerate(steps))
    ordered = frozenset(
        (names[i], names[j]) for i, j in _conflicting_pairs(steps)
        if steps[i].process != steps[j].process or steps[i].process == "loop")
    return frozenset(names), enabled_by, ordered


def all_runs(scenario: Callable[[], Any], *, cap: int = CLASSES_CAP,
             max_steps: int = 10_000, runtime: Runtime | None = None,
             footprints: str = "declared") -> list[list[Any]] | None:
    """The step records of every schedule of ``scenario``, failing ones included, by
    depth-first enumeration of the decisions at every scheduling point (footprints under
    the ``footprints`` contract, on ``runtime``: asyncio unless given); ``None`` when
    there are more than ``cap`` schedules."""
    runtime = runtime if runtime is not None else AsyncioRuntime()
    runs: list[list[Any]] = []
    todo: list[list[int]] = [[]]
    with runtime.session(footprints=True):
        while todo:
            if len(runs) >= cap:
                return None
            prefix = todo.pop()
            counts: list[int] = []

            def choose(count: int, view: Any, prefix: list[int] = prefix,
                       counts: list[int] = counts) -> int:
                k = len(counts)
                counts.append(count)
                return prefix[k] if k < len(prefix) else 0

            record = runtime.run(scenario, choose,
                                 RunMode(max_steps=max_steps, footprints=footprints))
            runs.append(list(record.footprints or []))
            for k in range(len(prefix), len(counts)):
                todo.extend([*record.decisions[:k], other] for other in range(1, counts[k]))
    return runs


def equivalence_classes(scenario: Callable[[], Any], *,
                        cap: int = CLASSES_CAP) -> set[Hashable] | None:
    """The canonical classes (:func:`canonical_class`) of all schedules of ``scenario``,
    by brute force; ``None`` when there are more than ``cap`` schedules."""
    runs = all_runs(scenario, cap=cap)
    return None if runs is None else {canonical_class(steps) for steps in runs}


def disjoint_writers(n: int) -> Callable[[], Any]:
    """n tasks each update their own key of a declared dict (the keys exist beforehand:
    adding new keys would also change the dict's iteration order, which they share)."""
    async def scenario() -> None:
        data = explorer.shared(dict.fromkeys(range(n), 0))

        async def writer(key: int) -> None:
            await asyncio.sleep(0)
            data[key] = key

        await asyncio.gather(*(writer(k) for k in range(n)))

    return scenario


def locked_counter(tasks: int, increments: int) -> Callable[[], Any]:
    return functools.partial(scenarios.locked_counter, tasks, increments, declared=True)


def lastzero(n: int) -> Callable[[], Any]:
    """One reader scans an array from the end for the last zero while n writers each set
    their slot from the previous one (a classic DPOR benchmark, in asyncio)."""
    async def scenario() -> None:
        array = explorer.shared({i: 0 for i in range(n + 1)})

        async def reader() -> None:
            i = n
            while array[i] != 0:
                await asyncio.sleep(0)
                i -= 1

        async def writer(j: int) -> None:
            await asyncio.sleep(0)
            array[j] = array[j - 1] + 1

        await asyncio.gather(reader(), *(writer(j) for j in range(1, n + 1)))

    return scenario


def sigma(n: int) -> Callable[[], Any]:
    """n tasks each write their own slot of an array, then one task sums it."""
    async def scenario() -> None:
        array = explorer.shared({i: 0 for i in range(n)})

        async def writer(j: int) -> None:
            await asyncio.sleep(0)
            array[j] = j + 1

        await asyncio.gather(*(writer(j) for j in range(n)))
        assert sum(array[i] for i in range(n)) == n * (n + 1) // 2

    return scenario


PROGRAMS: list[tuple[str, Callable[[], Any]]] = [
    *((f"disjoint keys, {n} tasks", disjoint_writers(n)) for n in (2, 4, 6)),
    *((f"locked counter {t} x {i}", locked_counter(t, i))
      for t, i in ((2, 2), (3, 1), (3, 2), (3, 3))),
    *((f"lastzero {n}", lastzero(n)) for n in (2, 3, 4)),
    *((f"sigma {n}", sigma(n)) for n in (2, 4, 6)),
]


def _brute_force(scenario: Callable[[], Any]) -> tuple[str, str]:
    """Every schedule (what systematic search runs to cover the program) and the
    equivalence classes among them, or ``> CAP`` when there are too many."""
    runs = all_runs(scenario, cap=CAP)
    if runs is None:
        return f"> {CAP:,}", "?"
    return f"{len(runs):,}", f"{len({canonical_class(steps) for steps in runs}):,}"


def _dpor(scenario: Callable[[], Any]) -> tuple[str, str]:
    """DPOR's schedules (and blocked runs, if any) and its milliseconds per run."""
    start = time.perf_counter()
    result = explorer.explore(scenario, strategy=DPOR(declared=True), max_schedules=CAP,
                              raise_on_failure=False)
    seconds = time.perf_counter() - start
    text = f"{result.schedules:,}" + ("" if result.exhausted else " (cap, not done)")
    blocked = result.statistics.get("sleep_blocked", 0)
    runs = result.schedules + result.probes
    # A handful of runs measures the first call's fixed costs rather than a run's.
    return (text + (f" (+{blocked:,} blocked)" if blocked else ""),
            f"{seconds / runs * 1e3:.2f}" if runs >= 5 else "-")


def per_run_cost(rounds: int = 5, runs: int = 1000) -> tuple[float, float]:
    """Microseconds per run of the 3 x 3 locked counter, footprints off and on (stock
    schedule, ``DPOR(declared=True)``'s recording): medians of ``rounds`` rounds of
    ``runs`` runs each way, in one process. Rounds alternate which side goes first, so a
    fixed order does not bias the ratio."""
    scenario = locked_counter(3, 3)
    runtime = AsyncioRuntime()
    timings: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(rounds):
        for on in ((False, True) if round_ % 2 == 0 else (True, False)):
            with runtime.session(footprints=on):
                start = time.perf_counter()
                for _ in range(runs):
                    fixed = Fixed([])
                    fixed.start_run()
                    runtime.run(scenario, fixed.choose, RunMode(
                        max_steps=10_000, footprints="declared" if on else None))
                timings[on].append((time.perf_counter() - start) / runs * 1e6)
    return statistics.median(timings[False]), statistics.median(timings[True])


def section() -> list[str]:
    lines = [
        "## Partial-order reduction",
        "",
        f"Schedules run to cover each program completely (cap {CAP:,}): every schedule "
        "(what naive systematic search runs), the equivalence classes among them (each "
        "schedule's canonical Mazurkiewicz trace, by brute force), and DPOR with declared "
        "shared state (`explorer.strategies.DPOR(declared=True)`: optimal DPOR, wakeup "
        "trees and sleep sets), with its milliseconds per run (analysis included, this "
        "machine). \"blocked\" runs would be sleep-set-blocked runs, repeats of a class "
        "not counted as schedules. Disjoint keys and sigma update existing keys and join "
        "their writers with `gather`, whose completion callbacks commute for children "
        "that succeed: one class whatever the number of writers.",
        "",
        "| program | all schedules | classes | dpor (declared) | ms per run |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, scenario in PROGRAMS:
        schedules, classes = _brute_force(scenario)
        dpor, per_run = _dpor(scenario)
        lines.append(f"| {name} | {schedules} | {classes} | {dpor} | {per_run} |")
    off, on = per_run_cost()
    lines += ["", f"Footprint recording on the 3 x 3 locked counter: {off:.0f} us per run "
                  f"off, {on:.0f} us on (**{on / off:.2f}x**)."]
    return lines


# ---------------------------------------------------------------- automatic footprints

class _Cell:
    def __init__(self) -> None:
        self.value = 0


def _auto_disjoint_attributes(n: int) -> Callable[[], Any]:
    """n tasks each update an attribute of their own object, twice, across awaits."""
    async def scenario() -> None:
        cells = [_Cell() for _ in range(n)]

        async def worker(cell: _Cell) -> None:
            await asyncio.sleep(0)
            cell.value = cell.value + 1
            await asyncio.sleep(0)
            cell.value += 1

        await asyncio.gather(*(worker(cell) for cell in cells))

    return scenario


def _auto_disjoint_keys(n: int) -> Callable[[], Any]:
    """n tasks each update their own key of one plain dict (its keys made up front)."""
    async def scenario() -> None:
        data = dict.fromkeys(range(n), 0)

        async def worker(key: int) -> None:
            await asyncio.sleep(0)
            data[key] = data[key] + 1
            await asyncio.sleep(0)
            data[key] += 1

        await asyncio.gather(*(worker(key) for key in range(n)))

    return scenario


def automatic_footprints_section(rounds: int = 5, runs: int = 1000) -> list[str]:
    """Python 3.12+: what ``DPOR(footprints="auto")`` costs per run (the 3 x 3 locked
    counter with footprints off, declared and automatic; median of ``rounds`` alternating
    rounds of ``runs`` runs, in this process) and what it saves (schedules to cover small
    programs with undeclared shared state, conservative mode against automatic)."""
    import platform
    import sys

    lines = ["## Automatic footprints (Python 3.12+)", ""]
    if sys.version_info < (3, 12):
        return [*lines, f"Skipped: needs sys.monitoring (Python 3.12+); this is "
                        f"{platform.python_version()}."]
    runtime = AsyncioRuntime()
    modes = {"off": (False, None), "declared": (True, "declared"), "auto": (False, "auto")}
    timings: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode, (declared, footprints) in modes.items():
            scenario = functools.partial(scenarios.locked_counter, 3, 3, declared=declared)
            with runtime.session(footprints=footprints is not None):
                start = time.perf_counter()
                for _ in range(runs):
                    fixed = Fixed([])
                    fixed.start_run()
                    runtime.run(scenario, fixed.choose, RunMode(
                        max_steps=10_000, footprints=footprints))
                timings[mode].append((time.perf_counter() - start) / runs * 1e6)
    off, declared_cost, auto = (statistics.median(timings[mode]) for mode in modes)
    lines += [
        f"Per run, 3 x 3 locked counter, CPython {platform.python_version()} (median of "
        f"{rounds} rounds of {runs:,} runs): footprints off {off:.0f} us; declared "
        f"(`explorer.shared` dict) {declared_cost:.0f} us (**{declared_cost / off:.2f}x**); "
        f"automatic (plain dict) {auto:.0f} us (**{auto / off:.2f}x**, "
        f"{auto / declared_cost:.2f}x declared).",
        "",
        "Schedules to cover each program completely (cap "
        f"{CAP:,}), its shared state undeclared:",
        "",
        "| program | dpor (conservative) | dpor (auto) |",
        "|---|---:|---:|",
    ]
    programs: list[tuple[str, Callable[[], Any]]] = [
        *((f"disjoint attributes, {n} tasks", _auto_disjoint_attributes(n)) for n in (2, 3, 4)),
        *((f"disjoint dict keys, {n} tasks", _auto_disjoint_keys(n)) for n in (2, 3, 4)),
        *((f"locked counter {t} x {i} (plain dict)",
           functools.partial(scenarios.locked_counter, t, i)) for t, i in ((2, 2), (3, 2))),
    ]
    for name, scenario in programs:
        counts = []
        for strategy in (DPOR(), DPOR(footprints="auto")):
            result = explorer.explore(scenario, strategy=strategy, max_schedules=CAP,
                                      raise_on_failure=False)
            counts.append(f"{result.schedules:,}" + ("" if result.exhausted
                                                     else " (cap, not done)"))
        lines.append(f"| {name} | {counts[0]} | {counts[1]} |")
    return [*lines, "", *web_gallery_section()]


# ---------------------------------------------------------------- the web gallery

def web_gallery_section(cap: int = 20_000) -> list[str]:
    """Python 3.12+: the fixed FastAPI/Starlette gallery apps proven over their whole
    schedule space (no deviation bound): every schedule (``systematic``), conservative
    DPOR, and DPOR with automatic footprints, which watch the web stack's code (httpx,
    Starlette, FastAPI, anyio, pydantic) as well as the app's. Schedules and seconds."""
    import platform
    import sys

    lines = ["## Reduction through framework code (Python 3.12+)", ""]
    if sys.version_info < (3, 12):
        return [*lines, f"Skipped: needs sys.monitoring (Python 3.12+); this is "
                        f"{platform.python_version()}."]
    from examples.gallery import web_examples

    lines += [
        f"Fixed web gallery apps, every schedule (no deviation bound, cap {cap:,}), "
        f"CPython {platform.python_version()}: schedules (seconds).",
        "",
        "| fixed example | systematic | dpor (conservative) | dpor-auto | saved | "
        "buggy version, dpor-auto: schedules to the bug |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for example in web_examples():
        cells = []
        counts = []
        for strategy in ("systematic", DPOR(), DPOR(footprints="auto")):
            start = time.perf_counter()
            result = explorer.explore(example.fixed, strategy=strategy, max_schedules=cap,
                                      max_steps=example.max_steps, raise_on_failure=False)
            seconds = time.perf_counter() - start
            verdict = "" if result.exhausted and result.failure is None else (
                " FAILED" if result.failure is not None else " (cap)")
            cells.append(f"{result.schedules:,} ({seconds:.1f} s){verdict}")
            counts.append(result.schedules)
        buggy = explorer.explore(example.buggy, strategy=DPOR(footprints="auto"),
                                 max_schedules=cap, max_steps=example.max_steps,
                                 raise_on_failure=False)
        found = f"{buggy.schedules:,}" if buggy.failure is not None else "NOT FOUND"
        lines.append(f"| {example.name} | {' | '.join(cells)} | "
                     f"{counts[0] / max(counts[2], 1):.1f}x | {found} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.reduction --web --output FILE``: one section, to a file."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--web", action="store_true",
                        help="only the web gallery (reduction through framework code)")
    parser.add_argument("--output", type=Path, required=True,
                        help="where to write the Markdown (never BENCHMARKS.md by default)")
    args = parser.parse_args(argv)
    sections = [web_gallery_section()] if args.web else [
        section(), automatic_footprints_section()]  # (the latter ends with the web one)
    text = "\n".join(line for lines in sections for line in [*lines, ""])
    print(text)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
