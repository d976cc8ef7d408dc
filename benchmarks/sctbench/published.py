"""Published schedules-to-first-bug figures for the C originals of the SCTBench ports.

One source for the ``published`` columns of the sctbench benchmark section
(:mod:`benchmarks.sctbench.section`) and for docs/strategies.md. Every figure is copied
from the source named by its ``source`` key (see :data:`REFERENCES`, which also says where
in the source it is); none is estimated or derived here. The figures are for the C
programs, which are instrumented differently from our asyncio ports and, for reorder_20
and twostage_20, split their threads differently (see :data:`VARIANTS`), so they give
orientation, not an exact comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Source = Literal["ZH25", "WN22", "TDB16"]
Unit = Literal["mean-of-20", "first-bug", "maple"]


@dataclass(frozen=True)
class Reference:
    cite: str
    """The publication."""
    where: str
    """Where the figures are: repository and path, table."""


@dataclass(frozen=True)
class Figure:
    """One published figure for one program and one tool."""

    tool: str
    """The tool or strategy, as the source names it."""
    value: int | None
    """Schedules (see :data:`UNITS`); None: the source reports that the tool did not find
    the bug (SURW artifact: "-", fewer than two of the 20 runs found it)."""
    unit: Unit
    source: Source
    sd: int | None = None
    """Standard deviation over the runs, when the source gives one."""
    partial: bool = False
    """Found in some runs only (the SURW artifact's "*": the mean is over those runs)."""
    found: bool = True
    """Maple only: whether Maple found the bug (``value`` is then its number of runs)."""

    def text(self) -> str:
        """The figure as a table cell: "17", "3225*", "✗"; Maple: "✓ 20", "✗ 11"."""
        if self.unit == "maple":
            return f"{'✓' if self.found else '✗'} {self.value}"
        if self.value is None:
            return "✗"
        return f"{self.value}{'*' if self.partial else ''}"


REFERENCES: Final[dict[Source, Reference]] = {
    "ZH25": Reference(
        cite="H. Zhao, D. Wolff, U. Mathur and A. Roychoudhury, \"Selectively Uniform "
             "Concurrency Testing\", ASPLOS 2025 (doi:10.1145/3669940.3707214)",
        where="its artifact, github.com/zhaohuanqdcn/SURW: stats/period/out.tex, the "
              "SCTBench/ConVul table written by scripts/analyze/eval_period.py from the raw "
              "runs in stats/period/ (columns SURW, PCT-3, PCT-10, POS, RW; the ablations "
              "N-U and N-S are not copied here)",
    ),
    "WN22": Reference(
        cite="C. Wen, M. He, B. Wu, Z. Xu and S. Qin, \"Controlled Concurrency Testing via "
             "Periodical Scheduling\" (PERIOD), ICSE 2022",
        where="its SCTBench results (the paper's Table 2), as transcribed in the "
              "\"PERIOD (reported)\" column of the RFF artifact, github.com/dylanjwolff/RFF: "
              "scripts/data-analysis/prior_work.csv (D. Wolff, Z. Shi, G. J. Duck, U. Mathur "
              "and A. Roychoudhury, \"Greybox Fuzzing for Concurrency Testing\", ASPLOS 2024)",
    ),
    "TDB16": Reference(
        cite="P. Thomson, A. F. Donaldson and A. Betts, \"Concurrency Testing Using "
             "Controlled Schedulers: An Empirical Study\", ACM TOPC 2016 (PPoPP 2014: "
             "\"Concurrency Testing Using Schedule Bounding: an Empirical Study\")",
        where="the SCTBench repository, github.com/mc-imperial/sctbench: "
              "benchmarks/mapleRes.txt and benchmarks/maple.csv, the study's results for the "
              "Maple tool (found or not, runs, seconds); the study's per-program IPB, IDB, "
              "DFS, PCT and Rand results are not in the repository",
    ),
}

UNITS: Final[dict[Unit, str]] = {
    "mean-of-20": "mean number of schedules to the first failing one over 20 runs of at most "
                  "10,000 schedules each (for SURW and PCT the count includes their one "
                  "profiling run); * not every run found the bug, and the mean is over those "
                  "that did; ✗ fewer than two of the 20 runs found it",
    "first-bug": "schedules PERIOD's systematic search explored up to and including the "
                 "first failing one, as reported in the paper",
    "maple": "✓ or ✗: whether Maple (Yu et al., OOPSLA 2012) exposed the bug; the number: "
             "the schedules (runs) the study reports for it",
}

SURW_TOOLS: Final = ("RW", "PCT-3", "POS", "SURW")
"""The ZH25 columns shown in the table, in the order of our strategies random, pct, pos,
surw (PCT-10 is kept in :data:`FIGURES` but not shown)."""


def _zh25(figures: dict[str, tuple[int, int] | tuple[int, int, str] | None]
          ) -> list[Figure]:
    out = []
    for tool, entry in figures.items():
        if entry is None:
            out.append(Figure(tool, None, "mean-of-20", "ZH25"))
        else:
            out.append(Figure(tool, entry[0], "mean-of-20", "ZH25", sd=entry[1],
                              partial=len(entry) == 3))
    return out


def _period(schedules: int) -> Figure:
    return Figure("PERIOD", schedules, "first-bug", "WN22")


def _maple(found: bool, runs: int) -> Figure:
    return Figure("Maple", runs, "maple", "TDB16", found=found)


P = "*"
"""Marks a ZH25 figure found in some runs only."""

FIGURES: Final[dict[str, list[Figure]]] = {
    "account": [
        *_zh25({"SURW": (6, 5), "PCT-3": (4, 2), "PCT-10": (4, 3), "POS": (4, 3),
                "RW": (18, 24)}),
        _period(2), _maple(True, 20)],
    "bluetooth_driver": [
        *_zh25({"SURW": (70, 55), "PCT-3": (112, 73), "PCT-10": (83, 86), "POS": (36, 29),
                "RW": (215, 225)}),
        _period(9), _maple(False, 11)],
    "circular_buffer": [_period(17), _maple(False, 17)],
    "lazy01": [
        *_zh25({"SURW": (2, 0), "PCT-3": (5, 3), "PCT-10": (5, 3), "POS": (5, 3),
                "RW": (21, 21)}),
        _period(3), _maple(True, 1)],
    "queue": [_period(25), _maple(True, 2)],
    "reorder_3": [
        *_zh25({"SURW": (7, 7), "PCT-3": (185, 199), "PCT-10": (148, 191), "POS": (86, 70),
                "RW": None}),
        _period(6), _maple(False, 10)],
    "reorder_5": [
        *_zh25({"SURW": (10, 9), "PCT-3": (647, 517), "PCT-10": (1094, 1216),
                "POS": (2169, 2182), "RW": None}),
        _period(12), _maple(False, 11)],
    "reorder_10": [
        *_zh25({"SURW": (17, 11), "PCT-3": (3225, 2426, P), "PCT-10": (4462, 3266, P),
                "POS": None, "RW": None}),
        _period(27), _maple(False, 11)],
    "reorder_20": [
        *_zh25({"SURW": (6, 4), "PCT-3": (3005, 2680), "PCT-10": (3297, 2877, P),
                "POS": None, "RW": None}),
        _period(39), _maple(False, 11)],
    "stack": [
        *_zh25({"SURW": (5, 3), "PCT-3": (3, 2), "PCT-10": (3, 1), "POS": (2, 1),
                "RW": (176, 136)}),
        _period(2), _maple(False, 10)],
    "token_ring": [
        *_zh25({"SURW": (8, 6), "PCT-3": (8, 6), "PCT-10": (8, 8), "POS": (9, 11),
                "RW": (13, 13)}),
        _period(4), _maple(True, 5)],
    "twostage": [
        *_zh25({"SURW": (8, 4), "PCT-3": (13, 14), "PCT-10": (9, 10), "POS": (15, 12),
                "RW": (464, 581)}),
        _period(3), _maple(True, 8)],
    "twostage_20": [
        *_zh25({"SURW": (6, 3), "PCT-3": (159, 151), "PCT-10": (101, 92), "POS": (156, 137),
                "RW": None})],
    "wronglock": [
        *_zh25({"SURW": (7, 7), "PCT-3": (51, 50), "PCT-10": (20, 20), "POS": (10, 14),
                "RW": (36, 42)}),
        _period(10), _maple(True, 6)],
}
"""Published figures by port name (the C program is CS.<name>_bad, or CS/<name> in PERIOD's
and the SURW artifact's naming). Programs without any: twostage_3, twostage_5 and
twostage_10 (see :data:`MISSING`)."""

VARIANTS: Final[dict[str, str]] = {
    "reorder_20": "the C reorder_20 has 10 setters and 10 checkers; the gather port 19 setters "
                  "and one checker: the figures are shown beside reorder_c_10+10, the port "
                  "in the C shape and split (reorder_3, 5 and 10 have one checker in both)",
    "twostage_20": "the C twostage_20 (added by PERIOD's benchmark set, not in SCTBench) "
                   "starts 10 writers and 10 readers by default; the gather port 19 writers "
                   "and one reader: the figures are shown beside twostage_c_10+10",
}
"""Ports whose thread split differs from the C program the figures are for."""

MISSING: Final[tuple[tuple[tuple[str, ...], str], ...]] = (
    (("twostage_3", "twostage_5", "twostage_10"),
     "no published figure: these have no C counterpart (SCTBench has twostage, one writer "
     "and one reader, and twostage_100; PERIOD's set adds twostage_20 and twostage_50)"),
    (("queue", "circular_buffer"),
     "no ZH25 figure: the SURW artifact leaves them out of its SCTBench runs"),
    (("twostage_20",),
     "no PERIOD or Maple figure: it is not in SCTBench, and its PERIOD cell is blank in the "
     "RFF transcription"),
)
"""Programs lacking some or all published figures, and why."""


def figure(program: str, tool: str) -> Figure | None:
    for f in FIGURES.get(program, []):
        if f.tool == tool:
            return f
    return None


COLUMNS: Final = (
    "ZH25 rw / pct-3 / pos / surw",
    "PERIOD (WN22)",
    "Maple (TDB16)",
)
"""Headers of the published columns of the table, in the order of :func:`cells`."""


def cells(program: str | None) -> tuple[str, str, str]:
    """The published cells of a table row: ZH25's four figures, PERIOD's, Maple's; "—"
    where the source has no figure for the program (None: no C program matches)."""
    if program is None:
        return ("—", "—", "—")
    zh = [figure(program, tool) for tool in SURW_TOOLS]
    zh25 = " / ".join(f.text() for f in zh if f is not None) if any(zh) else "—"
    period, maple = figure(program, "PERIOD"), figure(program, "Maple")
    return (zh25, period.text() if period else "—", maple.text() if maple else "—")


def notes() -> list[str]:
    """Markdown lines for under the table: what the columns mean, the references, the
    caveats."""
    lines = [
        "Published columns: figures reported for the C programs these are ported from, for "
        "orientation only. Our programs are our own asyncio ports (the gather ports start "
        "their tasks together; the C-shaped ports create them one by one as the C harnesses "
        "do; in both, only awaits are scheduling points), while the C programs are scheduled at "
        "every lock operation and thread creation and (ZH25, PERIOD) at shared-memory "
        "accesses, so neither the schedule counts nor the search spaces are the same. "
        "\"—\": the source has no figure for the program.",
        "",
        *(f"- {key}: {ref.cite}; {ref.where}." for key, ref in REFERENCES.items()),
        "",
        f"- ZH25 ({' / '.join(SURW_TOOLS)}): {UNITS['mean-of-20']}.",
        f"- PERIOD: {UNITS['first-bug']}.",
        f"- Maple: {UNITS['maple']}.",
        *(f"- {name}: {why}." for name, why in VARIANTS.items()),
        *(f"- {', '.join(names)}: {why}." for names, why in MISSING),
    ]
    return lines
