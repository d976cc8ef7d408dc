"""The ``sctbench`` benchmark section: schedules to the first bug, per strategy, on the
asyncio ports of SCTBench's CS programs (:mod:`benchmarks.sctbench.programs`).

For every program and strategy: the number of schedules until the first failing one, over
``seeds`` seeds (0, 1, ...), each search capped at ``cap`` schedules. A seed that does not
find the bug within the cap counts as "more than the cap", so a median above the cap means
most seeds missed. Searches run without shrinking (shrinking happens after the bug is
found and does not change the count).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import explorer
from benchmarks.sctbench import (
    ALL_PROGRAMS,
    C_SHAPE,
    DEEP,
    SIZES,
    Program,
    by_name,
    published,
)

STRATEGIES = ("random", "pct", "pos", "surw", "coverage", "symmetric", "rff", "portfolio")


@dataclass(frozen=True)
class Cell:
    counts: tuple[int | None, ...]  # schedules to the first failure per seed; None: missed
    cap: int
    seconds: float

    @property
    def misses(self) -> int:
        return sum(c is None for c in self.counts)

    @property
    def median(self) -> float:
        """Median over all seeds, a miss counting as more than the cap."""
        return statistics.median(c if c is not None else self.cap + 1 for c in self.counts)

    def text(self) -> str:
        found = [c for c in self.counts if c is not None]
        if not found:
            return f"> {self.cap}"
        median = self.median
        head = f"> {self.cap}" if median > self.cap else f"{median:g}"
        text = f"{head} ({min(found)}-{max(found)})"
        return text + (f", {self.misses} missed" if self.misses else "")


def schedules_to_bug(program: Program, strategy: str, seed: int, cap: int) -> int | None:
    result = explorer.explore(program.buggy, strategy=strategy, seed=seed, max_schedules=cap,
                              raise_on_failure=False, shrink=False)
    return result.failure.found_after if result.failure is not None else None


def measure(job: tuple[str, str, int, int]) -> tuple[str, str, Cell]:
    name, strategy, seeds, cap = job
    program = by_name(name)
    start = time.perf_counter()
    counts = tuple(schedules_to_bug(program, strategy, seed, cap) for seed in range(seeds))
    return name, strategy, Cell(counts, cap, time.perf_counter() - start)


SAMPLED_CAP = 200
"""The cap of the strategies other than :data:`FULL_CAP` ones on the C-shaped ports with
more than five tasks: they miss those bugs at any cap we can afford (a random walk, PCT,
POS, the coverage-guided and the symmetric walk: 0 to 4 of 10 seeds found reorder_c_9+1
within 300 schedules), and running them to the full cap takes hours."""

FULL_CAP = ("surw", "rff", "portfolio")
"""The strategies measured with the full cap on every program."""


def cap_for(program: Program, strategy: str, cap: int) -> int:
    if program.shape == "c" and program.tasks > 5 and strategy not in FULL_CAP:
        return min(cap, SAMPLED_CAP)
    return cap


def run(seeds: int, cap: int, workers: int = 2,
        strategies: Sequence[str] = STRATEGIES) -> dict[tuple[str, str], Cell]:
    jobs = [(p.name, s, seeds, cap_for(p, s, cap)) for p in ALL_PROGRAMS for s in strategies]
    # The slowest jobs first, so the workers finish together.
    jobs.sort(key=lambda j: (j[1] == "random", -by_name(j[0]).tasks))
    cells: dict[tuple[str, str], Cell] = {}
    results: Iterator[tuple[str, str, Cell]]
    if workers <= 1:
        results = map(measure, jobs)
    else:
        pool = ProcessPoolExecutor(workers)
        results = pool.map(measure, jobs)
    try:
        for name, strategy, cell in results:
            cells[name, strategy] = cell
    finally:
        if workers > 1:
            pool.shutdown()
    return cells


def section(seeds: int, cap: int, workers: int = 2) -> list[str]:
    start = time.perf_counter()
    cells = run(seeds, cap, workers)
    print(f"  sctbench measured in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    lines = [
        "## SCTBench ports: schedules until the first bug, per strategy",
        "",
        f"Median (min-max) over {seeds} seeds, cap {cap} schedules per search; a seed that "
        "misses counts as more than the cap. `pct` is depth 3 with per-task priorities; `rff` "
        "records declared footprints (primitives only: the ports declare no state); "
        "`portfolio` is the default of `explore`. Programs: asyncio ports of SCTBench's CS "
        "programs (`benchmarks/sctbench/programs.py`), in two shapes. The `gather` ports "
        "start all tasks at once: reorder_N and twostage_N have N tasks, N - 1 writers and one "
        "checker. The C-shaped ports (`reorder_c_S+C`, `twostage_c_W+R`) keep the C "
        "originals' harness: main creates the S (or W) writers one by one, a scheduling "
        "point after each creation, then the C (or R) checkers, then joins them in order "
        "(`tasks` does not count main); their published figures are those of the C program "
        f"with that split. On the C-shaped ports with more than five tasks, the strategies "
        f"other than {', '.join(FULL_CAP)} run with cap {SAMPLED_CAP} (they miss those "
        "bugs at any affordable cap). Command: `python -m benchmarks.run --only sctbench`.",
        "",
        "| program | tasks | " + " | ".join((*STRATEGIES, *published.COLUMNS)) + " |",
        "|---|---:|" + "---:|" * (len(STRATEGIES) + len(published.COLUMNS)),
    ]
    for program in ALL_PROGRAMS:
        row = [cells[program.name, s].text() for s in STRATEGIES]
        row += published.cells(program.published_key)
        lines.append(f"| {program.name} | {program.tasks} | " + " | ".join(row) + " |")
    lines += ["", *_verdict(cells, cap), "", *published.notes()]
    return lines


CHECK_SEEDS = 100


def _second_look(name: str, cap: int) -> str:
    """Both medians over more seeds, for the program where the portfolio did worst."""
    program = by_name(name)
    medians = []
    for strategy in ("random", "portfolio"):
        counts = [schedules_to_bug(program, strategy, seed, cap) for seed in range(CHECK_SEEDS)]
        medians.append(statistics.median(c if c is not None else cap + 1 for c in counts))
    return (f"Over {CHECK_SEEDS} seeds on {name}: random walk {medians[0]:g}, portfolio "
            f"{medians[1]:g} ({medians[1] / medians[0]:.2f}x).")


def _verdict(cells: dict[tuple[str, str], Cell], cap: int) -> list[str]:
    missed = [p.name for p in ALL_PROGRAMS if cells[p.name, "portfolio"].misses]
    ratios = sorted(((cells[p.name, "portfolio"].median / cells[p.name, "random"].median,
                      p.name) for p in ALL_PROGRAMS), reverse=True)
    worst, where = ratios[0]
    lines = [
        "Portfolio (the default): "
        + ("finds every bug within the cap with every seed"
           if not missed else f"misses a bug with some seed on {', '.join(missed)}")
        + f"; worst median relative to the random walk: {worst:.2f}x ({where}). "
        + _second_look(where, cap)
    ]
    for family in DEEP:
        medians = [f"{cells[f'{family}_{n}', 'portfolio'].median:g}" for n in SIZES]
        randoms = [f"{cells[f'{family}_{n}', 'random'].median:g}" for n in SIZES]
        lines.append(f"{family}_N for N = {', '.join(map(str, SIZES))}: portfolio median "
                     f"{' / '.join(medians)}, random walk {' / '.join(randoms)}.")
    shaped = []
    for program in C_SHAPE:
        surw, portfolio = cells[program.name, "surw"], cells[program.name, "portfolio"]
        figure = published.figure(program.published_key or "", "SURW")
        theirs = f", published SURW {figure.text()}" if figure is not None else ""
        shaped.append(f"{program.name} {surw.median:g} / {portfolio.median:g}{theirs}")
    lines.append("C-shaped ports, median schedules of surw / the portfolio: "
                 + "; ".join(shaped) + ".")
    return lines
